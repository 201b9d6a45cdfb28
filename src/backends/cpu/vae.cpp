// The cpu reference of the fused reparameterization + Gaussian KL (kernels/vae.cuh has
// the math). Plain loops, one OpenMP iteration per sample; each sample's KL is summed in
// float64 in element order, so the result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "backends/cpu/cpu.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "backends/vae.h"
#include "kernels/philox_normal.cuh"
#include "kernels/vae.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;
using backend::ptr;
using backend::ReparamConfig;

constexpr int kNonfiniteMu = 1, kNonfiniteLogvar = 2;

// ε for element i, drawing each Philox call once for its four elements.
class NormalStream {
 public:
  explicit NormalStream(PhiloxKey key) : key_(key) {}
  double at(std::int64_t i) {
    const std::uint64_t group = static_cast<std::uint64_t>(i) / 4;
    if (group != group_) {
      normals_ = kernels::philox_normal4(key_.seed, key_.offset, group);
      group_ = group;
    }
    return normals_.v[i % 4];
  }

 private:
  PhiloxKey key_;
  std::uint64_t group_ = std::numeric_limits<std::uint64_t>::max();
  kernels::Normal4 normals_{};
};

// Each element draws a normal (Philox and exactly rounded double polynomials, about 100 ns):
// rows are split over threads from this many elements (a batch of 128 spatial latents is
// 25,088). Rows are independent, so the results do not depend on the thread count.
constexpr std::int64_t kParallelNormals = 2048;

void reparam_kl_forward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                       const Tensor& z, const Tensor& kl) {
  const std::int64_t rows = mu.size(0), cols = mu.numel() / rows;
  const bool check = !config.nonfinite_mu_message.empty();
  int nonfinite = 0;
  dispatch_floating(mu.dtype(), "reparam_kl_forward", [&](auto zero) {
    using T = decltype(zero);
    const T* m = ptr<T>(mu);
    const T* l = ptr<T>(logvar);
    T* out_z = ptr<T>(z);
    T* out_kl = ptr<T>(kl);
    const T lo = static_cast<T>(config.logvar_min), hi = static_cast<T>(config.logvar_max);
#pragma omp parallel for reduction(| : nonfinite) if (mu.numel() > kParallelNormals)
    for (std::int64_t row = 0; row < rows; ++row) {
      NormalStream eps(config.key);
      double kl_sum = 0.0;
      for (std::int64_t i = row * cols; i < (row + 1) * cols; ++i) {
        const T mu_i = m[i], lv = l[i];
        if (check) {
          if (!std::isfinite(mu_i)) nonfinite |= kNonfiniteMu;
          if (!std::isfinite(lv)) nonfinite |= kNonfiniteLogvar;
        }
        const T lc = std::min(std::max(lv, lo), hi);
        if (out_z) out_z[i] = mu_i + std::exp(T(0.5) * lc) * static_cast<T>(eps.at(i));
        kl_sum += kernels::kl_term(mu_i, lc);  // the kernels' own term, bit for bit
      }
      if (out_kl) out_kl[row] = static_cast<T>(kl_sum);
    }
  });
  // The same priority as the device-side check: a bad logvar is reported before a bad mu.
  if ((nonfinite & kNonfiniteLogvar) != 0) LATENT_FAIL(config.nonfinite_logvar_message);
  if ((nonfinite & kNonfiniteMu) != 0) LATENT_FAIL(config.nonfinite_mu_message);
}

void reparam_kl_backward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                         const Tensor& dL_dz, const Tensor& dL_dkl, const Tensor& dL_dmu,
                         const Tensor& dL_dlogvar) {
  const std::int64_t rows = mu.size(0), cols = mu.numel() / rows;
  dispatch_floating(mu.dtype(), "reparam_kl_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* m = ptr<T>(mu);
    const T* l = ptr<T>(logvar);
    const T* dz = ptr<T>(dL_dz);
    const T* dkl = ptr<T>(dL_dkl);
    T* dmu = ptr<T>(dL_dmu);
    T* dlv = ptr<T>(dL_dlogvar);
    const T lo = static_cast<T>(config.logvar_min), hi = static_cast<T>(config.logvar_max);
#pragma omp parallel for if (mu.numel() > kParallelNormals)
    for (std::int64_t row = 0; row < rows; ++row) {
      NormalStream eps(config.key);
      const T g = dkl ? dkl[row] : T(0);
      for (std::int64_t i = row * cols; i < (row + 1) * cols; ++i) {
        const T mu_i = m[i], lv = l[i];
        const T lc = std::min(std::max(lv, lo), hi);
        T d_mu = T(0), d_lv = T(0);
        if (dz) {
          d_mu = dz[i];
          d_lv = dz[i] * T(0.5) * std::exp(T(0.5) * lc) * static_cast<T>(eps.at(i));
        }
        if (dkl) {
          d_mu += g * mu_i;
          d_lv += g * T(0.5) * std::expm1(lc);
        }
        dmu[i] = d_mu;
        dlv[i] = (lv >= lo && lv <= hi) ? d_lv : T(0);
      }
    }
  });
}

}  // namespace

void register_vae() {
  backend::Registry<backend::VaeTable>::add(DeviceType::cpu,
                                            {&reparam_kl_forward, &reparam_kl_backward});
}

}  // namespace latent::cpu
