// The cuda random concept (src/backends/random.h): the Philox fills of kernels/random.cuh.
#include <cstdint>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "backends/random.h"
#include "kernels/random.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 256;

dim3 grid(std::int64_t work_items) { return grid_for(work_items, kThreads); }

void uniform(const Tensor& dst, PhiloxKey key, double low, double high) {
  const std::int64_t n = dst.numel();
  dispatch_floating(dst.dtype(), "random_uniform", [&](auto z) {
    using T = decltype(z);
    LATENT_LAUNCH(kernels::random_uniform_kernel<T>, grid(n), kThreads, 0, stream(),
                  ptr<T>(dst), n, key.seed, key.offset, low, high - low);
  });
}

void normal(const Tensor& dst, PhiloxKey key) {
  const std::int64_t n = dst.numel();
  dispatch_floating(dst.dtype(), "random_normal", [&](auto z) {
    using T = decltype(z);
    LATENT_LAUNCH(kernels::random_normal_kernel<T>, grid((n + 3) / 4), kThreads, 0, stream(),
                  ptr<T>(dst), n, key.seed, key.offset);
  });
}

}  // namespace

void register_random() {
  backend::Registry<backend::RandomTable>::add(DeviceType::cuda, {&uniform, &normal});
}

}  // namespace latent::cuda
