// The cpu adam concept (src/backends/adam.h): kernels/adam.cuh's per-element update in an
// OpenMP loop.
#include <cstdint>

#include "backends/adam.h"
#include "backends/cpu/cpu.h"
#include "backends/cpu/strided_loop.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "kernels/adam.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_all;
using backend::dispatch_floating;
using backend::ptr;

void step(const kernels::AdamConstants& c, const Tensor& param, const Tensor& grad,
               const Tensor& exp_avg, const Tensor& exp_avg_sq) {
  dispatch_floating(param.dtype(), "adam_step", [&](auto z) {
    using T = decltype(z);
    T* p = ptr<T>(param);
    const T* g = ptr<T>(grad);
    T* m = ptr<T>(exp_avg);
    T* v = ptr<T>(exp_avg_sq);
    const std::int64_t n = param.numel();
#pragma omp parallel for if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) kernels::adam_element(c, p[i], g[i], m[i], v[i]);
  });
}

}  // namespace

void register_adam() {
  backend::Registry<backend::AdamTable>::add(DeviceType::cpu, {&step});
}

}  // namespace latent::cpu
