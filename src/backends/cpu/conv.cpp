// The cpu conv concept (src/backends/conv.h). Float32 convolutions whose channels fill the
// vectors run as implicit GEMMs (src/backends/cpu/conv_implicit.h, docs/cpu.md); what
// follows is the general path, for float64 and the rest.
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
// Order of the sums (float32 goes through the implicit-GEMM tiles of
// src/backends/cpu/conv_implicit.h where the channels fill their vectors; this paragraph is
// about the im2col + GEMM path). forward and backward_input compute every output element
// with the same dot products as the whole-batch GEMM (one dot product over C·KH·KW, resp. over OC, then
// the plane-by-plane col2im sums in ascending (kh, kw)). backward_weight sums over the batch
// in fixed chunks of kImagesPerPartial images (one partial per chunk, chunks added in order),
// so its result depends on neither the thread count nor the schedule: deterministic, though
// not the same rounding as one GEMM with K = N·OH·OW.
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "backends/conv.h"
#include "backends/cpu/conv_implicit.h"
#include "backends/cpu/cpu.h"
#include "backends/cpu/strided_loop.h"
#include "backends/dispatch.h"
#include "backends/registry.h"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;
using backend::ptr;
using backend::ConvGeometry;

// The per-image loops work on one channel at a time, zero-padded into a small buffer of
// (H + 2p) × (W + 2p) elements (L1-resident for these images), so that every window tap
// reads or writes in bounds: no per-row range checks, no short fills, and with the stride a
// compile-time constant (1 and 2, the strides the models use) the inner loops are plain.
struct PaddedPlane {
  std::int64_t height, width;  // H + 2p, W + 2p
  std::int64_t size() const { return height * width; }
};
PaddedPlane padded_plane(const ConvGeometry& g) {
  return {g.height + 2 * g.padding, g.width + 2 * g.padding};
}

template <class T>
void pad_channel(const ConvGeometry& g, const T* channel, T* padded) {
  const PaddedPlane pp = padded_plane(g);
  std::fill(padded, padded + pp.size(), T(0));
  for (std::int64_t h = 0; h < g.height; ++h)
    std::copy(channel + h * g.width, channel + (h + 1) * g.width,
              padded + (h + g.padding) * pp.width + g.padding);
}

// line[oh·OW + ow] = padded[oh·s + kh, ow·s + kw] for one tap (kh, kw).
template <std::int64_t kStride, class T>
void gather_tap(const ConvGeometry& g, std::int64_t stride, const T* padded,
                std::int64_t padded_width, std::int64_t kh, std::int64_t kw, T* line) {
  const std::int64_t s = kStride > 0 ? kStride : stride;
  for (std::int64_t oh = 0; oh < g.out_h; ++oh, line += g.out_w) {
    const T* src = padded + (oh * s + kh) * padded_width + kw;
    for (std::int64_t ow = 0; ow < g.out_w; ++ow) line[ow] = src[ow * s];
  }
}

// padded[oh·s + kh, ow·s + kw] += line[oh·OW + ow] for one tap.
template <std::int64_t kStride, class T>
void scatter_tap(const ConvGeometry& g, std::int64_t stride, const T* line, T* padded,
                 std::int64_t padded_width, std::int64_t kh, std::int64_t kw) {
  const std::int64_t s = kStride > 0 ? kStride : stride;
  for (std::int64_t oh = 0; oh < g.out_h; ++oh, line += g.out_w) {
    T* dst = padded + (oh * s + kh) * padded_width + kw;
    for (std::int64_t ow = 0; ow < g.out_w; ++ow) dst[ow * s] += line[ow];
  }
}

template <std::int64_t kStride, class T>
void im2col_image_strided(const ConvGeometry& g, const T* image, T* cols, std::int64_t ld,
                          T* padded) {
  const PaddedPlane pp = padded_plane(g);
  for (std::int64_t c = 0; c < g.channels; ++c) {
    pad_channel(g, image + c * g.height * g.width, padded);
    for (std::int64_t kh = 0; kh < g.kernel_h; ++kh)
      for (std::int64_t kw = 0; kw < g.kernel_w; ++kw)
        gather_tap<kStride>(g, g.stride, padded, pp.width, kh, kw,
                            cols + ((c * g.kernel_h + kh) * g.kernel_w + kw) * ld);
  }
}

// cols[(c·KH + kh)·KW + kw, oh·OW + ow] = x[c, oh·s − p + kh, ow·s − p + kw] (0 outside) of
// one image, rows `ld` elements apart; `padded` holds padded_plane(g).size() elements.
template <class T>
void im2col_image(const ConvGeometry& g, const T* image, T* cols, std::int64_t ld, T* padded) {
  if (g.stride == 1) return im2col_image_strided<1>(g, image, cols, ld, padded);
  if (g.stride == 2) return im2col_image_strided<2>(g, image, cols, ld, padded);
  im2col_image_strided<0>(g, image, cols, ld, padded);
}

// One image plane (n, c) = the sum of its rows' entries, in ascending (kh, kw, oh, ow) order:
// each pixel adds its contributions in ascending (kh, kw), the order the cuda gather uses
// (starting from 0; contributions that fall on the padding are dropped with it).
template <std::int64_t kStride, class T>
void col2im_plane_strided(const ConvGeometry& g, const T* cols, std::int64_t ld,
                          std::int64_t c, T* plane, T* padded) {
  const PaddedPlane pp = padded_plane(g);
  std::fill(padded, padded + pp.size(), T(0));
  for (std::int64_t kh = 0; kh < g.kernel_h; ++kh)
    for (std::int64_t kw = 0; kw < g.kernel_w; ++kw)
      scatter_tap<kStride>(g, g.stride, cols + ((c * g.kernel_h + kh) * g.kernel_w + kw) * ld,
                           padded, pp.width, kh, kw);
  for (std::int64_t h = 0; h < g.height; ++h) {
    const T* src = padded + (h + g.padding) * pp.width + g.padding;
    std::copy(src, src + g.width, plane + h * g.width);
  }
}

template <class T>
void col2im_plane(const ConvGeometry& g, const T* cols, std::int64_t ld, std::int64_t c,
                  T* plane, T* padded) {
  if (g.stride == 1) return col2im_plane_strided<1>(g, cols, ld, c, plane, padded);
  if (g.stride == 2) return col2im_plane_strided<2>(g, cols, ld, c, plane, padded);
  col2im_plane_strided<0>(g, cols, ld, c, plane, padded);
}

// Runs work(i, scratch) for i in [0, count), each on one thread with that thread's scratch
// of `scratch_elems` elements. With more than one piece and more than one
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

void im2col(const ConvGeometry& g, const Tensor& x, const Tensor& cols) {
  dispatch_floating(x.dtype(), "im2col", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(x);
    T* out = ptr<T>(cols);
    const std::int64_t ld = g.col_cols(), plane = g.out_h * g.out_w;
    const std::int64_t image = g.channels * g.height * g.width;
    for_each_piece<T>(g.batch, padded_plane(g).size(), [&](std::int64_t n, T* padded) {
      im2col_image(g, in + n * image, out + n * plane, ld, padded);
    });
  });
}

void col2im(const ConvGeometry& g, const Tensor& cols, const Tensor& x) {
  dispatch_floating(x.dtype(), "col2im", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(cols);
    T* out = ptr<T>(x);
    const std::int64_t ld = g.col_cols(), plane = g.out_h * g.out_w;
    const std::int64_t area = g.height * g.width;
    for_each_piece<T>(g.batch, padded_plane(g).size(), [&](std::int64_t n, T* padded) {
      for (std::int64_t c = 0; c < g.channels; ++c)
        col2im_plane(g, in + n * plane, ld, c, out + (n * g.channels + c) * area, padded);
    });
  });
}

template <class T>
constexpr DType dtype_of() {
  return sizeof(T) == 4 ? DType::f32 : DType::f64;
}

// y [N, OC, OH, OW] = conv(x, w [OC, C·KH·KW]) through the implicit tiles (eligible only).
void implicit_forward(const ConvGeometry& g, const float* x, const float* w,
                      std::int64_t out_channels, float* y) {
  const implicit_conv::Plan plan = implicit_conv::make_plan(g, out_channels);
  const std::vector<float> weights_t = implicit_conv::transpose_weights(plan, w);
  const std::int64_t image = g.channels * g.height * g.width;
  for_each_piece<float>(g.batch, plan.padded_size, [&](std::int64_t n, float* padded) {
    implicit_conv::pad_image(plan, x + n * image, padded);
    implicit_conv::forward_image(plan, weights_t.data(), padded,
                                 y + n * plan.out_channels * plan.positions);
  });
}

void conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y) {
  if (x.dtype() == DType::f32 && implicit_conv::eligible(g, w.shape()[0])) {
    implicit_forward(g, ptr<float>(x), ptr<float>(w), w.shape()[0], ptr<float>(y));
    return;
  }
  dispatch_floating(x.dtype(), "conv_forward", [&](auto z) {
    using T = decltype(z);
    const std::int64_t oc = w.shape()[0], k = g.col_rows(), p = g.out_h * g.out_w;
    const std::int64_t image = g.channels * g.height * g.width;
    const T* in = ptr<T>(x);
    const T* weight = ptr<T>(w);
    T* out = ptr<T>(y);
    for_each_piece<T>(g.batch, k * p + padded_plane(g).size(), [&](std::int64_t n, T* cols) {
      im2col_image(g, in + n * image, cols, p, cols + k * p);
      gemm(dtype_of<T>(), false, false, oc, p, k, 1.0, weight, k, cols, p, 0.0, out + n * oc * p, p);
    });
  });
}

void conv_backward_input(const ConvGeometry& g, const Tensor& dy, const Tensor& w,
                         const Tensor& dx) {
  if (dy.dtype() == DType::f32 && implicit_conv::phase_gradient_eligible(g, w.shape()[0])) {
    // One stride-1 convolution per phase of the input pixels, by the forward tiles.
    const implicit_conv::PhaseGradient pg =
        implicit_conv::make_phase_gradient(g, w.shape()[0], ptr<float>(w));
    const float* grad = ptr<float>(dy);
    float* out = ptr<float>(dx);
    const std::int64_t image = g.channels * g.height * g.width;
    const std::int64_t per_output = w.shape()[0] * g.out_h * g.out_w;
    for_each_piece<float>(g.batch, pg.dy_size, [&](std::int64_t n, float* scratch) {
      implicit_conv::phase_gradient_image(pg, grad + n * per_output, scratch, out + n * image);
    });
    return;
  }
  if (dy.dtype() == DType::f32 && implicit_conv::input_gradient_eligible(g, w.shape()[0])) {
    const implicit_conv::Plan plan = implicit_conv::make_plan(g, w.shape()[0]);
    const std::vector<float> weights_k = implicit_conv::pad_weight_taps(plan, ptr<float>(w));
    const float* grad = ptr<float>(dy);
    float* out = ptr<float>(dx);
    const std::int64_t image = g.channels * g.height * g.width;
    for_each_piece<float>(g.batch, implicit_conv::input_gradient_scratch(plan),
                          [&](std::int64_t n, float* scratch) {
                            implicit_conv::input_gradient_image(
                                plan, weights_k.data(), grad + n * plan.out_channels * plan.positions,
                                scratch, out + n * image);
                          });
    return;
  }
  dispatch_floating(dy.dtype(), "conv_backward_input", [&](auto z) {
    using T = decltype(z);
    const std::int64_t oc = w.shape()[0], k = g.col_rows(), p = g.out_h * g.out_w;
    const std::int64_t area = g.height * g.width;
    const T* grad = ptr<T>(dy);
    const T* weight = ptr<T>(w);
    T* out = ptr<T>(dx);
    for_each_piece<T>(g.batch, k * p + padded_plane(g).size(), [&](std::int64_t n, T* dcols) {
      gemm(dtype_of<T>(), true, false, k, p, oc, 1.0, weight, k, grad + n * oc * p, p, 0.0, dcols, p);
      for (std::int64_t c = 0; c < g.channels; ++c)
        col2im_plane(g, dcols, p, c, out + (n * g.channels + c) * area, dcols + k * p);
    });
  });
}

// Images per partial sum of the weight gradient: large enough that each partial's GEMMs
// amortise its [OC, C·KH·KW] accumulator, small enough to spread a batch of 128 over cores.
constexpr std::int64_t kImagesPerPartial = 8;

// The weight gradient of one piece of images through the implicit tiles (float, eligible
// geometries): the piece's images padded and their output gradients transposed side by side
// in the scratch, then one pass of tiles over all of them.
void implicit_weight_piece(const implicit_conv::Plan& plan, const float* x, const float* dy,
                           std::int64_t first, std::int64_t count, float* scratch, float* sum) {
  const ConvGeometry& g = plan.g;
  const std::int64_t image = g.channels * g.height * g.width;
  float* dy_t = scratch + kImagesPerPartial * plan.padded_size;
  for (std::int64_t i = 0; i < count; ++i) {
    implicit_conv::pad_image(plan, x + (first + i) * image, scratch + i * plan.padded_size);
    implicit_conv::transpose_output_gradient(
        plan, dy + (first + i) * plan.out_channels * plan.positions,
        dy_t + i * plan.positions * plan.padded_channels);
  }
  implicit_conv::weight_gradient(plan, dy_t, scratch, count, sum);
}

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
    if constexpr (std::is_same_v<T, float>) {
      if (implicit_conv::eligible(g, oc)) {
        // Partials [K, padded OC] per piece, added in piece order and transposed into dw.
        const implicit_conv::Plan plan = implicit_conv::make_plan(g, oc);
        const std::int64_t tsize = k * plan.padded_channels;
        std::vector<float> sums(static_cast<std::size_t>(pieces * tsize));
        const std::int64_t scratch = kImagesPerPartial * (plan.padded_size + p * plan.padded_channels);
        for_each_piece<float>(pieces, scratch, [&](std::int64_t piece, float* buffer) {
          const std::int64_t first = piece * kImagesPerPartial;
          const std::int64_t count = std::min(g.batch, first + kImagesPerPartial) - first;
          implicit_weight_piece(plan, in, grad, first, count, buffer, sums.data() + piece * tsize);
        });
#pragma omp parallel for schedule(static) if (wsize > kParallelThreshold)
        for (std::int64_t t = 0; t < k; ++t) {
          for (std::int64_t o = 0; o < oc; ++o) {
            float total = sums[static_cast<std::size_t>(t * plan.padded_channels + o)];
            for (std::int64_t piece = 1; piece < pieces; ++piece)
              total += sums[static_cast<std::size_t>(piece * tsize + t * plan.padded_channels + o)];
            out[o * k + t] = total;
          }
        }
        return;
      }
    }
    std::vector<T> partials(static_cast<std::size_t>(pieces > 1 ? pieces * wsize : 0));
    for_each_piece<T>(pieces, k * p + padded_plane(g).size(), [&](std::int64_t piece, T* cols) {
      T* sum = pieces > 1 ? partials.data() + piece * wsize : out;
      const std::int64_t first = piece * kImagesPerPartial;
      const std::int64_t last = std::min(g.batch, first + kImagesPerPartial);
      for (std::int64_t n = first; n < last; ++n) {
        im2col_image(g, in + n * image, cols, p, cols + k * p);
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
