// The cuda conv concept (src/backends/conv.h): im2col and the gather form of col2im
// (kernels/conv.cuh), one thread per output element.
#include <cstdint>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/cuda/strided.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "backends/conv.h"
#include "kernels/conv.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 256;

dim3 grid(std::int64_t work_items) { return grid_for(work_items, kThreads); }
using backend::ConvGeometry;

void im2col(const ConvGeometry& g, const Tensor& x, const Tensor& cols) {
  dispatch_floating(x.dtype(), "im2col", [&](auto z) {
    using T = decltype(z);
    if (use_index32(0) && kernels::conv_index32_fits(g)) {
      LATENT_LAUNCH((kernels::im2col_kernel<T, std::int32_t>), grid(cols.numel()), kThreads, 0,
                    stream(), g, ptr<T>(x), ptr<T>(cols));
    } else {
      LATENT_LAUNCH((kernels::im2col_kernel<T, std::int64_t>), grid(cols.numel()), kThreads, 0,
                    stream(), g, ptr<T>(x), ptr<T>(cols));
    }
  });
}

void col2im(const ConvGeometry& g, const Tensor& cols, const Tensor& x) {
  dispatch_floating(x.dtype(), "col2im", [&](auto z) {
    using T = decltype(z);
    if (use_index32(0) && kernels::conv_index32_fits(g)) {
      LATENT_LAUNCH((kernels::col2im_kernel<T, std::int32_t>), grid(x.numel()), kThreads, 0,
                    stream(), g, ptr<T>(cols), ptr<T>(x));
    } else {
      LATENT_LAUNCH((kernels::col2im_kernel<T, std::int64_t>), grid(x.numel()), kThreads, 0,
                    stream(), g, ptr<T>(cols), ptr<T>(x));
    }
  });
}

}  // namespace

void register_conv() {
  // No whole-convolution entries: src/ops/conv.cpp composes im2col, cuBLAS and col2im.
  backend::Registry<backend::ConvTable>::add(DeviceType::cuda,
                                             {&im2col, &col2im, nullptr, nullptr, nullptr});
}

}  // namespace latent::cuda
