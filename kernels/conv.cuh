// im2col and col2im: the layout changes that turn a convolution into one GEMM.
// Docs: docs/architecture.md; the conv op that uses them: src/ops/conv.cpp.
//
//   im2col:  cols[(c·KH + kh)·KW + kw, (n·OH + oh)·OW + ow] = x[n, c, oh·s − p + kh, ow·s − p + kw]
//            (0 outside the image). One thread per column element: 1 read, 1 write.
//   col2im:  x[n, c, ih, iw] = Σ over (kh, kw) with ih = oh·s − p + kh, iw = ow·s − p + kw
//            of cols[…]. One thread per image element gathers its ≤ KH·KW contributions
//            in a fixed order: no atomics, deterministic. ≤ KH·KW reads, 1 write.
// Consecutive threads own consecutive columns (ow fastest), so writes of im2col and
// reads of col2im are coalesced; the strided side stays within one image row.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/grid.cuh"

namespace latent::kernels {

// Geometry of a 2-D convolution of a [N, C, H, W] input by a [OC, C, KH, KW] kernel.
struct ConvGeometry {
  std::int64_t batch, channels, height, width;
  std::int64_t kernel_h, kernel_w;
  std::int64_t stride, padding;
  std::int64_t out_h, out_w;
  LATENT_HOST_DEVICE std::int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  LATENT_HOST_DEVICE std::int64_t col_cols() const { return batch * out_h * out_w; }
};

template <class T>
__global__ void im2col_kernel(ConvGeometry g, const T* x, T* cols) {
  const std::int64_t columns = g.batch * g.out_h * g.out_w;
  const std::int64_t total = g.channels * g.kernel_h * g.kernel_w * columns;
  for (std::int64_t i = grid_stride_begin();
       i < total; i += grid_stride_step()) {
    const std::int64_t column = i % columns, row = i / columns;
    const std::int64_t ow = column % g.out_w, oh = (column / g.out_w) % g.out_h;
    const std::int64_t n = column / (g.out_w * g.out_h);
    const std::int64_t kw = row % g.kernel_w, kh = (row / g.kernel_w) % g.kernel_h;
    const std::int64_t c = row / (g.kernel_w * g.kernel_h);
    const std::int64_t ih = oh * g.stride - g.padding + kh;
    const std::int64_t iw = ow * g.stride - g.padding + kw;
    const bool inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
    cols[i] = inside ? x[((n * g.channels + c) * g.height + ih) * g.width + iw] : T(0);
  }
}

template <class T>
__global__ void col2im_kernel(ConvGeometry g, const T* cols, T* x) {
  const std::int64_t columns = g.batch * g.out_h * g.out_w;
  const std::int64_t total = g.batch * g.channels * g.height * g.width;
  for (std::int64_t i = grid_stride_begin();
       i < total; i += grid_stride_step()) {
    const std::int64_t iw = i % g.width, ih = (i / g.width) % g.height;
    const std::int64_t c = (i / (g.width * g.height)) % g.channels;
    const std::int64_t n = i / (g.width * g.height * g.channels);
    T acc = T(0);
    for (std::int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const std::int64_t th = ih + g.padding - kh;
      if (th < 0 || th % g.stride != 0 || th / g.stride >= g.out_h) continue;
      const std::int64_t oh = th / g.stride;
      for (std::int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const std::int64_t tw = iw + g.padding - kw;
        if (tw < 0 || tw % g.stride != 0 || tw / g.stride >= g.out_w) continue;
        const std::int64_t ow = tw / g.stride;
        const std::int64_t row = (c * g.kernel_h + kh) * g.kernel_w + kw;
        acc += cols[row * columns + (n * g.out_h + oh) * g.out_w + ow];
      }
    }
    x[i] = acc;
  }
}

}  // namespace latent::kernels
