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

#include "kernels/indexing.cuh"

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

// The geometry in the kernel's index type: std::int64_t, or std::int32_t when the input and
// the column matrix both have fewer than kIndex32Limit elements (conv_index32_fits).
template <class Index>
struct ConvGeometryT {
  Index batch, channels, height, width, kernel_h, kernel_w, stride, padding, out_h, out_w;
};
template <class Index>
LATENT_HOST_DEVICE inline ConvGeometryT<Index> narrow(const ConvGeometry& g) {
  return {static_cast<Index>(g.batch),    static_cast<Index>(g.channels),
          static_cast<Index>(g.height),   static_cast<Index>(g.width),
          static_cast<Index>(g.kernel_h), static_cast<Index>(g.kernel_w),
          static_cast<Index>(g.stride),   static_cast<Index>(g.padding),
          static_cast<Index>(g.out_h),    static_cast<Index>(g.out_w)};
}
inline bool conv_index32_fits(const ConvGeometry& g) {
  return index32_fits(g.batch * g.channels * g.height * g.width) &&
         index32_fits(g.col_rows() * g.col_cols());
}

template <class T, class Index>
__global__ void im2col_kernel(ConvGeometry geometry, const T* x, T* cols) {
  const auto g = narrow<Index>(geometry);
  const Index columns = g.batch * g.out_h * g.out_w;
  const Index total = g.channels * g.kernel_h * g.kernel_w * columns;
  for (Index i = static_cast<Index>(grid_stride_begin());
       i < total; i += static_cast<Index>(grid_stride_step())) {
    const Index column = i % columns, row = i / columns;
    const Index ow = column % g.out_w, oh = (column / g.out_w) % g.out_h;
    const Index n = column / (g.out_w * g.out_h);
    const Index kw = row % g.kernel_w, kh = (row / g.kernel_w) % g.kernel_h;
    const Index c = row / (g.kernel_w * g.kernel_h);
    const Index ih = oh * g.stride - g.padding + kh;
    const Index iw = ow * g.stride - g.padding + kw;
    const bool inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
    cols[i] = inside ? x[((n * g.channels + c) * g.height + ih) * g.width + iw] : T(0);
  }
}

template <class T, class Index>
__global__ void col2im_kernel(ConvGeometry geometry, const T* cols, T* x) {
  const auto g = narrow<Index>(geometry);
  const Index columns = g.batch * g.out_h * g.out_w;
  const Index total = g.batch * g.channels * g.height * g.width;
  for (Index i = static_cast<Index>(grid_stride_begin());
       i < total; i += static_cast<Index>(grid_stride_step())) {
    const Index iw = i % g.width, ih = (i / g.width) % g.height;
    const Index c = (i / (g.width * g.height)) % g.channels;
    const Index n = i / (g.width * g.height * g.channels);
    T acc = T(0);
    for (Index kh = 0; kh < g.kernel_h; ++kh) {
      const Index th = ih + g.padding - kh;
      if (th < 0 || th % g.stride != 0 || th / g.stride >= g.out_h) continue;
      const Index oh = th / g.stride;
      for (Index kw = 0; kw < g.kernel_w; ++kw) {
        const Index tw = iw + g.padding - kw;
        if (tw < 0 || tw % g.stride != 0 || tw / g.stride >= g.out_w) continue;
        const Index ow = tw / g.stride;
        const Index row = (c * g.kernel_h + kh) * g.kernel_w + kw;
        acc += cols[row * columns + (n * g.out_h + oh) * g.out_w + ow];
      }
    }
    x[i] = acc;
  }
}

}  // namespace latent::kernels
