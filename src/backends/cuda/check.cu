// The cuda check concept (src/backends/check.h): a check kernel (kernels/check.cuh) per
// check, recording the first failure in the current stream's check word; the host reads the
// word at the next check point (src/backends/cuda/device.cu).
#include <cstdint>

#include "backends/check.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "kernels/check.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 256;

void finite(const Tensor& x, backend::CheckMessage message) {
  const std::int64_t n = x.numel();
  if (n == 0) return;
  const kernels::CheckSite site = register_check_site(std::move(message));
  backend::dispatch_floating(x.dtype(), "check finite", [&](auto zero) {
    using T = decltype(zero);
    LATENT_LAUNCH(kernels::check_finite_kernel<T>, grid_for(n, kThreads), kThreads, 0,
                  stream(), backend::ptr<T>(x), n, site);
  });
  after_check();
}

void index_range(const Tensor& indices, std::int64_t low, std::int64_t high,
                 backend::CheckMessage message) {
  const std::int64_t n = indices.numel();
  if (n == 0) return;
  const kernels::CheckSite site = register_check_site(std::move(message));
  LATENT_LAUNCH(kernels::check_index_range_kernel<std::int32_t>, grid_for(n, kThreads), kThreads, 0,
                stream(), backend::ptr<std::int32_t>(indices), n, low, high, site);
  after_check();
}

}  // namespace

void register_check() {
  backend::Registry<backend::CheckTable>::add(DeviceType::cuda, {&finite, &index_range});
}

}  // namespace latent::cuda
