// The cpu conv concept (src/backends/conv.h): im2col and col2im over valid column ranges,
// one image plane per OpenMP iteration (col2im sums in a fixed order: deterministic).
#include <algorithm>
#include <cstdint>

#include "backends/conv.h"
#include "backends/cpu/cpu.h"
#include "backends/cpu/strided_loop.h"
#include "backends/dispatch.h"
#include "backends/registry.h"

namespace latent::cpu {
namespace {

using backend::dispatch_all;
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

void im2col(const ConvGeometry& g, const Tensor& x, const Tensor& cols) {
  dispatch_floating(x.dtype(), "im2col", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(x);
    T* out = ptr<T>(cols);
    const std::int64_t row_len = g.col_cols(), plane = g.out_h * g.out_w;
#pragma omp parallel for collapse(2) if (cols.numel() > kParallelThreshold)
    for (std::int64_t row = 0; row < g.col_rows(); ++row) {
      for (std::int64_t n = 0; n < g.batch; ++n) {
        const std::int64_t c = row / (g.kernel_h * g.kernel_w);
        const std::int64_t kh = (row / g.kernel_w) % g.kernel_h, kw = row % g.kernel_w;
        const T* image = in + (n * g.channels + c) * g.height * g.width;
        T* dst = out + row * row_len + n * plane;
        std::int64_t ow_begin, ow_end;
        valid_range(g.out_w, g.width, g.stride, kw - g.padding, ow_begin, ow_end);
        for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
          T* line = dst + oh * g.out_w;
          const std::int64_t ih = oh * g.stride - g.padding + kh;
          if (ih < 0 || ih >= g.height) {
            std::fill(line, line + g.out_w, T(0));
            continue;
          }
          const T* src = image + ih * g.width;
          const std::int64_t shift = kw - g.padding;
          std::fill(line, line + ow_begin, T(0));
          for (std::int64_t ow = ow_begin; ow < ow_end; ++ow) line[ow] = src[ow * g.stride + shift];
          std::fill(line + ow_end, line + g.out_w, T(0));
        }
      }
    }
  });
}

void col2im(const ConvGeometry& g, const Tensor& cols, const Tensor& x) {
  // Scatter form, one image plane per thread: every plane (n, c) adds the rows of its
  // channel in a fixed (kh, kw, oh, ow) order, so each pixel sums its contributions in
  // ascending (kh, kw) order — deterministic, and the order the cuda gather uses.
  dispatch_floating(x.dtype(), "col2im", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(cols);
    T* out = ptr<T>(x);
    const std::int64_t row_len = g.col_cols(), plane = g.out_h * g.out_w;
#pragma omp parallel for collapse(2) if (x.numel() > 4096)
    for (std::int64_t n = 0; n < g.batch; ++n) {
      for (std::int64_t c = 0; c < g.channels; ++c) {
        T* image = out + (n * g.channels + c) * g.height * g.width;
        std::fill(image, image + g.height * g.width, T(0));
        for (std::int64_t kh = 0; kh < g.kernel_h; ++kh) {
          for (std::int64_t kw = 0; kw < g.kernel_w; ++kw) {
            const std::int64_t row = (c * g.kernel_h + kh) * g.kernel_w + kw;
            const T* src = in + row * row_len + n * plane;
            std::int64_t ow_begin, ow_end;
            valid_range(g.out_w, g.width, g.stride, kw - g.padding, ow_begin, ow_end);
            for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
              const std::int64_t ih = oh * g.stride - g.padding + kh;
              if (ih < 0 || ih >= g.height) continue;
              T* dst = image + ih * g.width;
              const std::int64_t shift = kw - g.padding;
              const T* line = src + oh * g.out_w;
              for (std::int64_t ow = ow_begin; ow < ow_end; ++ow)
                dst[ow * g.stride + shift] += line[ow];
            }
          }
        }
      }
    }
  });
}

}  // namespace

void register_conv() {
  backend::Registry<backend::ConvTable>::add(DeviceType::cpu, {&im2col, &col2im});
}

}  // namespace latent::cpu
