// The cuda adam concept (src/backends/adam.h): one fused pass of kernels/adam.cuh.
#include <cstdint>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "backends/adam.h"
#include "kernels/adam.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 256;

dim3 grid(std::int64_t work_items) { return grid_for(work_items, kThreads); }

void step(const kernels::AdamConstants& c, const Tensor& param, const Tensor& grad,
               const Tensor& exp_avg, const Tensor& exp_avg_sq) {
  const std::int64_t n = param.numel();
  dispatch_floating(param.dtype(), "adam_step", [&](auto z) {
    using T = decltype(z);
    LATENT_LAUNCH(kernels::adam_step_kernel<T>, grid(n), kThreads, 0, stream(), c,
                  ptr<T>(param), ptr<T>(grad), ptr<T>(exp_avg), ptr<T>(exp_avg_sq), n);
  });
}

}  // namespace

void register_adam() {
  backend::Registry<backend::AdamTable>::add(DeviceType::cuda, {&step});
}

}  // namespace latent::cuda
