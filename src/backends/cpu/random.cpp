// The cpu random concept (src/backends/random.h): the Philox fills of kernels/random.cuh as
// loops over the same counters, so cpu and cuda draw bitwise-identical numbers.
#include <cstdint>
#include <type_traits>

#include "backends/cpu/cpu.h"
#include "backends/cpu/strided_loop.h"
#include "backends/dispatch.h"
#include "backends/random.h"
#include "backends/registry.h"
#include "kernels/philox.cuh"
#include "kernels/philox_normal.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_all;
using backend::dispatch_floating;
using backend::ptr;

void uniform(const Tensor& dst, PhiloxKey key, double low, double high) {
  const std::int64_t n = dst.numel();
  const double scale = high - low;
  dispatch_floating(dst.dtype(), "random_uniform", [&](auto z) {
    using T = decltype(z);
    T* out = ptr<T>(dst);
#pragma omp parallel for if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) {
      if constexpr (std::is_same_v<T, float>) {
        out[i] = static_cast<float>(low + scale * kernels::philox_uniform_f32(
                                                      key.seed, key.offset, i));
      } else {
        out[i] = low + scale * kernels::philox_uniform_f64(key.seed, key.offset, i);
      }
    }
  });
}

void normal(const Tensor& dst, PhiloxKey key) {
  const std::int64_t n = dst.numel();
  const std::int64_t groups = (n + 3) / 4;
  dispatch_floating(dst.dtype(), "random_normal", [&](auto z) {
    using T = decltype(z);
    T* out = ptr<T>(dst);
#pragma omp parallel for if (n > kParallelThreshold)
    for (std::int64_t g = 0; g < groups; ++g) {
      // Box–Muller with exactly rounded arithmetic: bitwise the same on every backend.
      const kernels::Normal4 v = kernels::philox_normal4(key.seed, key.offset, g);
      for (int j = 0; j < 4 && g * 4 + j < n; ++j) out[g * 4 + j] = static_cast<T>(v.v[j]);
    }
  });
}

}  // namespace

void register_random() {
  backend::Registry<backend::RandomTable>::add(DeviceType::cpu, {&uniform, &normal});
}

}  // namespace latent::cpu
