// The cpu conv concept (src/backends/conv.h).
//
// The whole-batch primitives (im2col, col2im) lay out cols [C·KH·KW, N·OH·OW] for one GEMM,
// as the cuda backend does. The cpu backend also runs the whole convolution itself, one image
// at a time:
//     forward:          y_n [OC, OH·OW]   = W [OC, C·KH·KW] · cols_n [C·KH·KW, OH·OW]
//     backward_input:   dx_n              = col2im(Wᵀ · dy_n)
//     backward_weight:  dW [OC, C·KH·KW]  = Σ_n dy_n · cols_nᵀ
// An image's columns (C·KH·KW · OH·OW floats: 100 KB for the 32 → 64 channel 4×4 layer at
// 14×14) stay in the core's L2 between the im2col that writes them and the GEMM that reads
// them, instead of a 13 MB matrix making a round trip through memory; the output lands in
// NCHW directly (no [OC, N·OH·OW] ↔ [N, OC, OH, OW] permutes); and the images are spread
// over the OpenMP threads dynamically, each GEMM single-threaded inside the parallel region,
// so a core taken by another process slows the step by its share instead of stalling every
// parallel region at its barrier.
//
// Order of the sums. forward and backward_input compute every output element with the same
// dot products as the whole-batch GEMM (one dot product over C·KH·KW, resp. over OC, then
// the plane-by-plane col2im sums in ascending (kh, kw)). backward_weight sums over the batch
// in fixed chunks of kImagesPerPartial images (one partial per chunk, chunks added in order),
// so its result depends on neither the thread count nor the schedule: deterministic, though
// not the same rounding as one GEMM with K = N·OH·OW.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backends/conv.h"
#include "backends/cpu/cpu.h"
#include "backends/cpu/strided_loop.h"
#include "backends/dispatch.h"
#include "backends/registry.h"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;
using backend::ptr;
using backend::ConvGeometry;

// The valid output columns [begin, end) of kernel column kw: those whose input column
// ow·stride − padding + kw lies inside the image.
void valid_range(std::int64_t out, std::int64_t size, std::int64_t stride,
                        std::int64_t offset, std::int64_t& begin, std::int64_t& end) {
  // ow·stride + offset >= 0  and  ow·stride + offset < size
  begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  end = size - offset <= 0 ? 0 : std::min(out, (size - offset + stride - 1) / stride);
  if (end < begin) end = begin;
}

// One row of one image's columns: line[oh·OW + ow] = image[c, oh·s − p + kh, ow·s − p + kw].
template <class T>
void im2col_row(const ConvGeometry& g, const T* channel, std::int64_t kh, std::int64_t kw,
                T* line) {
  std::int64_t ow_begin, ow_end;
  const std::int64_t shift = kw - g.padding;
  valid_range(g.out_w, g.width, g.stride, shift, ow_begin, ow_end);
  for (std::int64_t oh = 0; oh < g.out_h; ++oh, line += g.out_w) {
    const std::int64_t ih = oh * g.stride - g.padding + kh;
    if (ih < 0 || ih >= g.height) {
      std::fill(line, line + g.out_w, T(0));
      continue;
    }
    const T* src = channel + ih * g.width + shift;
    std::fill(line, line + ow_begin, T(0));
    if (g.stride == 1) {
      std::copy(src + ow_begin, src + ow_end, line + ow_begin);
    } else {
      for (std::int64_t ow = ow_begin; ow < ow_end; ++ow) line[ow] = src[ow * g.stride];
    }
    std::fill(line + ow_end, line + g.out_w, T(0));
  }
}

// cols[(c·KH + kh)·KW + kw, oh·OW + ow] of one image, rows `ld` elements apart.
template <class T>
void im2col_image(const ConvGeometry& g, const T* image, T* cols, std::int64_t ld) {
  for (std::int64_t c = 0; c < g.channels; ++c) {
    const T* channel = image + c * g.height * g.width;
    for (std::int64_t kh = 0; kh < g.kernel_h; ++kh)
      for (std::int64_t kw = 0; kw < g.kernel_w; ++kw)
        im2col_row(g, channel, kh, kw, cols + ((c * g.kernel_h + kh) * g.kernel_w + kw) * ld);
  }
}

// One image plane (n, c) = the sum of its rows' entries, in ascending (kh, kw, oh, ow) order:
// each pixel adds its contributions in ascending (kh, kw), the order the cuda gather uses.
template <class T>
void col2im_plane(const ConvGeometry& g, const T* cols, std::int64_t ld, std::int64_t c,
                  T* plane) {
  std::fill(plane, plane + g.height * g.width, T(0));
  for (std::int64_t kh = 0; kh < g.kernel_h; ++kh) {
    for (std::int64_t kw = 0; kw < g.kernel_w; ++kw) {
      const T* src = cols + ((c * g.kernel_h + kh) * g.kernel_w + kw) * ld;
      std::int64_t ow_begin, ow_end;
      const std::int64_t shift = kw - g.padding;
      valid_range(g.out_w, g.width, g.stride, shift, ow_begin, ow_end);
      for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
        const std::int64_t ih = oh * g.stride - g.padding + kh;
        if (ih < 0 || ih >= g.height) continue;
        T* dst = plane + ih * g.width + shift;
        const T* line = src + oh * g.out_w;
        for (std::int64_t ow = ow_begin; ow < ow_end; ++ow) dst[ow * g.stride] += line[ow];
      }
    }
  }
}

void im2col(const ConvGeometry& g, const Tensor& x, const Tensor& cols) {
  dispatch_floating(x.dtype(), "im2col", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(x);
    T* out = ptr<T>(cols);
    const std::int64_t ld = g.col_cols(), plane = g.out_h * g.out_w;
    const std::int64_t image = g.channels * g.height * g.width;
#pragma omp parallel for schedule(dynamic) if (cols.numel() > kParallelThreshold)
    for (std::int64_t n = 0; n < g.batch; ++n) im2col_image(g, in + n * image, out + n * plane, ld);
  });
}

void col2im(const ConvGeometry& g, const Tensor& cols, const Tensor& x) {
  dispatch_floating(x.dtype(), "col2im", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(cols);
    T* out = ptr<T>(x);
    const std::int64_t ld = g.col_cols(), plane = g.out_h * g.out_w;
    const std::int64_t area = g.height * g.width;
#pragma omp parallel for collapse(2) if (x.numel() > 4096)
    for (std::int64_t n = 0; n < g.batch; ++n)
      for (std::int64_t c = 0; c < g.channels; ++c)
        col2im_plane(g, in + n * plane, ld, c, out + (n * g.channels + c) * area);
  });
}

// Runs work(first, last, scratch) over [0, count) in pieces, each piece on one thread with
// its own scratch of `scratch_elems` elements. With more than one piece and more than one
// thread the pieces are handed out dynamically and each GEMM inside runs single-threaded
// (OpenBLAS's OpenMP build sees the enclosing parallel region); otherwise they run in order
// on the calling thread and OpenBLAS may thread each GEMM itself.
template <class T, class Work>
void for_each_piece(std::int64_t count, std::int64_t scratch_elems, const Work& work) {
  if (count > 1 && omp_get_max_threads() > 1) {
#pragma omp parallel
    {
      std::vector<T> scratch(static_cast<std::size_t>(scratch_elems));
#pragma omp for schedule(dynamic)
      for (std::int64_t i = 0; i < count; ++i) work(i, scratch.data());
    }
  } else {
    std::vector<T> scratch(static_cast<std::size_t>(scratch_elems));
    for (std::int64_t i = 0; i < count; ++i) work(i, scratch.data());
  }
}

template <class T>
constexpr DType dtype_of() {
  return sizeof(T) == 4 ? DType::f32 : DType::f64;
}

void conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y) {
  dispatch_floating(x.dtype(), "conv_forward", [&](auto z) {
    using T = decltype(z);
    const std::int64_t oc = w.shape()[0], k = g.col_rows(), p = g.out_h * g.out_w;
    const std::int64_t image = g.channels * g.height * g.width;
    const T* in = ptr<T>(x);
    const T* weight = ptr<T>(w);
    T* out = ptr<T>(y);
    for_each_piece<T>(g.batch, k * p, [&](std::int64_t n, T* cols) {
      im2col_image(g, in + n * image, cols, p);
      gemm(dtype_of<T>(), false, false, oc, p, k, 1.0, weight, k, cols, p, 0.0, out + n * oc * p, p);
    });
  });
}

void conv_backward_input(const ConvGeometry& g, const Tensor& dy, const Tensor& w,
                         const Tensor& dx) {
  dispatch_floating(dy.dtype(), "conv_backward_input", [&](auto z) {
    using T = decltype(z);
    const std::int64_t oc = w.shape()[0], k = g.col_rows(), p = g.out_h * g.out_w;
    const std::int64_t area = g.height * g.width;
    const T* grad = ptr<T>(dy);
    const T* weight = ptr<T>(w);
    T* out = ptr<T>(dx);
    for_each_piece<T>(g.batch, k * p, [&](std::int64_t n, T* dcols) {
      gemm(dtype_of<T>(), true, false, k, p, oc, 1.0, weight, k, grad + n * oc * p, p, 0.0, dcols, p);
      for (std::int64_t c = 0; c < g.channels; ++c)
        col2im_plane(g, dcols, p, c, out + (n * g.channels + c) * area);
    });
  });
}

// Images per partial sum of the weight gradient: large enough that each partial's GEMMs
// amortise its [OC, C·KH·KW] accumulator, small enough to spread a batch of 128 over cores.
constexpr std::int64_t kImagesPerPartial = 8;

void conv_backward_weight(const ConvGeometry& g, const Tensor& dy, const Tensor& x,
                          const Tensor& dw) {
  dispatch_floating(dy.dtype(), "conv_backward_weight", [&](auto z) {
    using T = decltype(z);
    const std::int64_t oc = dw.shape()[0], k = g.col_rows(), p = g.out_h * g.out_w;
    const std::int64_t image = g.channels * g.height * g.width, wsize = oc * k;
    const std::int64_t pieces = (g.batch + kImagesPerPartial - 1) / kImagesPerPartial;
    const T* grad = ptr<T>(dy);
    const T* in = ptr<T>(x);
    T* out = ptr<T>(dw);
    std::vector<T> partials(static_cast<std::size_t>(pieces > 1 ? pieces * wsize : 0));
    for_each_piece<T>(pieces, k * p, [&](std::int64_t piece, T* cols) {
      T* sum = pieces > 1 ? partials.data() + piece * wsize : out;
      const std::int64_t first = piece * kImagesPerPartial;
      const std::int64_t last = std::min(g.batch, first + kImagesPerPartial);
      for (std::int64_t n = first; n < last; ++n) {
        im2col_image(g, in + n * image, cols, p);
        gemm(dtype_of<T>(), false, true, oc, k, p, 1.0, grad + n * oc * p, p, cols, p,
             n == first ? 0.0 : 1.0, sum, k);
      }
    });
    if (pieces == 1) return;
#pragma omp parallel for schedule(static) if (wsize > kParallelThreshold)
    for (std::int64_t i = 0; i < wsize; ++i) {
      T total = partials[static_cast<std::size_t>(i)];
      for (std::int64_t piece = 1; piece < pieces; ++piece)
        total += partials[static_cast<std::size_t>(piece * wsize + i)];
      out[i] = total;
    }
  });
}

}  // namespace

void register_conv() {
  backend::Registry<backend::ConvTable>::add(
      DeviceType::cpu,
      {&im2col, &col2im, &conv_forward, &conv_backward_input, &conv_backward_weight});
}

}  // namespace latent::cpu
