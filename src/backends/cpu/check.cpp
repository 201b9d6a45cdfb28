// The cpu check concept (src/backends/check.h): the host sees the data, so a failed check
// throws at once, naming the first failing element.
#include <cmath>
#include <cstdint>

#include "backends/check.h"
#include "backends/cpu/cpu.h"
#include "backends/dispatch.h"
#include "backends/registry.h"

namespace latent::cpu {
namespace {

void finite(const Tensor& x, backend::CheckMessage message) {
  backend::dispatch_floating(x.dtype(), "check finite", [&](auto zero) {
    using T = decltype(zero);
    const T* p = backend::ptr<T>(x);
    const std::int64_t n = x.numel();
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) LATENT_FAIL(message(i));
  });
}

void index_range(const Tensor& indices, std::int64_t low, std::int64_t high,
                 backend::CheckMessage message) {
  const std::int32_t* p = backend::ptr<std::int32_t>(indices);
  const std::int64_t n = indices.numel();
  for (std::int64_t i = 0; i < n; ++i)
    if (p[i] < low || p[i] >= high) LATENT_FAIL(message(i));
}

}  // namespace

void register_check() {
  backend::Registry<backend::CheckTable>::add(DeviceType::cpu, {&finite, &index_range});
}

}  // namespace latent::cpu
