// The cuda side of the VAE primitives (src/backends/vae.h): tiles, launch shapes and the
// launches of kernels/vae.cuh. Built by nvcc for a GPU, or by the host compiler for the
// SIMT executor (docs/simt.md).
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "backends/vae.h"
#include "kernels/vae.cuh"

namespace latent::cuda {
namespace {

using backend::dispatch_floating;
using backend::ptr;

using backend::ReparamConfig;

// A tile is at most 8192 elements: 256 threads × 8 groups of 4, enough work per block to
// hide latency, and small enough that a long row still spreads over many blocks.
constexpr std::int64_t kMaxChunk = 8192;
constexpr int kMaxThreads = kernels::kReduceThreads;  // block_sum's limit

bool aligned16(const Tensor& t) {
  return !t.defined() || reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 16 == 0;
}

struct Launch {
  kernels::ReparamShape shape;
  bool aligned = false;  // the kAligned instances: 16-byte vectors (kernels/vae.cuh)
  int threads = 32;
  dim3 grid;
};

// Calls body(std::bool_constant<aligned>{}): the aligned and the element-wise paths are
// separate kernel instances, not a branch inside one loop.
template <class Body>
void with_alignment(bool aligned, Body&& body) {
  if (aligned) {
    body(std::true_type{});
  } else {
    body(std::false_type{});
  }
}

// rows × row_length elements. With per_row = false (no KL involved) the whole tensor is one
// row, which gives every tile full 16-byte groups whatever the latent shape.
Launch plan(const ReparamConfig& config, const Tensor& mu, bool per_row,
            std::initializer_list<const Tensor*> operands) {
  Launch l;
  kernels::ReparamShape& s = l.shape;
  const std::int64_t rows = per_row ? mu.size(0) : 1;
  s.seed = config.key.seed;
  s.offset = config.key.offset;
  s.logvar_min = config.logvar_min;
  s.logvar_max = config.logvar_max;
  s.row_length = mu.numel() / rows;
  s.chunk = std::min(kMaxChunk, (s.row_length + 3) / 4 * 4);
  s.chunks = (s.row_length + s.chunk - 1) / s.chunk;
  s.by_chunks = kernels::FastDivmod(s.chunks);
  s.tiles = rows * s.chunks;
  // Every tile starts at a multiple of 4 elements when the rows do (chunk is one).
  bool aligned = rows == 1 || s.row_length % 4 == 0;
  for (const Tensor* t : operands) aligned = aligned && aligned16(*t);
  l.aligned = aligned;
  // One thread per group of 4 elements of a tile, rounded up to whole warps.
  const std::int64_t groups = s.chunk / 4;
  std::int64_t threads = 32;
  while (threads < groups && threads < kMaxThreads) threads *= 2;
  l.threads = static_cast<int>(threads);
  l.grid = grid_for(s.tiles * threads, l.threads);
  return l;
}

void reparam_kl_forward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                       const Tensor& z, const Tensor& kl) {
  const bool with_z = z.defined(), with_kl = kl.defined();
  LATENT_CHECK(with_z || with_kl, "cuda reparam_kl_forward: nothing to compute");
  const Launch l = plan(config, mu, with_kl, {&mu, &logvar, &z});
  const kernels::ReparamShape& s = l.shape;

  // Non-finite inputs fail these device-side checks (registered logvar first: it wins).
  kernels::CheckSite logvar_check, mu_check;
  if (!config.nonfinite_mu_message.empty()) {
    logvar_check = register_check_site(
        [m = config.nonfinite_logvar_message](std::int64_t) { return m; });
    mu_check =
        register_check_site([m = config.nonfinite_mu_message](std::int64_t) { return m; });
  }
  Tensor partial;
  if (with_kl && s.chunks > 1) partial = empty({s.tiles}, DType::f64, mu.device());
  double* partial_ptr = ptr<double>(partial);

  dispatch_floating(mu.dtype(), "reparam_kl_forward", [&](auto zero) {
    using T = decltype(zero);
    const T* m = ptr<T>(mu);
    const T* lv = ptr<T>(logvar);
    with_alignment(l.aligned, [&](auto aligned) {
      constexpr bool kAligned = decltype(aligned)::value;
      if (with_z && with_kl) {
        LATENT_LAUNCH((kernels::reparam_kl_forward_kernel<T, true, true, kAligned>), l.grid,
                      l.threads, 0, stream(), m, lv, ptr<T>(z), ptr<T>(kl), partial_ptr,
                      mu_check, logvar_check, s);
      } else if (with_z) {
        LATENT_LAUNCH((kernels::reparam_kl_forward_kernel<T, true, false, kAligned>), l.grid,
                      l.threads, 0, stream(), m, lv, ptr<T>(z), static_cast<T*>(nullptr),
                      partial_ptr, mu_check, logvar_check, s);
      } else {
        LATENT_LAUNCH((kernels::reparam_kl_forward_kernel<T, false, true, kAligned>), l.grid,
                      l.threads, 0, stream(), m, lv, static_cast<T*>(nullptr), ptr<T>(kl),
                      partial_ptr, mu_check, logvar_check, s);
      }
    });
    if (with_kl && s.chunks > 1) {
      const std::int64_t rows = mu.size(0);
      LATENT_LAUNCH(kernels::kl_finish_kernel<T>, grid_for(rows), 256, 0, stream(),
                    static_cast<const double*>(partial_ptr), rows, s.chunks, ptr<T>(kl));
    }
  });

  if (!config.nonfinite_mu_message.empty()) after_check();
}

void reparam_kl_backward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                         const Tensor& dL_dz, const Tensor& dL_dkl, const Tensor& dL_dmu,
                         const Tensor& dL_dlogvar) {
  const bool has_dz = dL_dz.defined(), has_dkl = dL_dkl.defined();
  LATENT_CHECK(has_dz || has_dkl, "cuda reparam_kl_backward: no gradient to propagate");
  const Launch l =
      plan(config, mu, has_dkl, {&mu, &logvar, &dL_dz, &dL_dmu, &dL_dlogvar});
  dispatch_floating(mu.dtype(), "reparam_kl_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* m = ptr<T>(mu);
    const T* lv = ptr<T>(logvar);
    const T* dz = ptr<T>(dL_dz);
    const T* dkl = ptr<T>(dL_dkl);
    T* dmu = ptr<T>(dL_dmu);
    T* dlv = ptr<T>(dL_dlogvar);
    with_alignment(l.aligned, [&](auto aligned) {
      constexpr bool kAligned = decltype(aligned)::value;
      if (has_dz && has_dkl) {
        LATENT_LAUNCH((kernels::reparam_kl_backward_kernel<T, true, true, kAligned>), l.grid,
                      l.threads, 0, stream(), m, lv, dz, dkl, dmu, dlv, l.shape);
      } else if (has_dz) {
        LATENT_LAUNCH((kernels::reparam_kl_backward_kernel<T, true, false, kAligned>), l.grid,
                      l.threads, 0, stream(), m, lv, dz, dkl, dmu, dlv, l.shape);
      } else {
        LATENT_LAUNCH((kernels::reparam_kl_backward_kernel<T, false, true, kAligned>), l.grid,
                      l.threads, 0, stream(), m, lv, dz, dkl, dmu, dlv, l.shape);
      }
    });
  });
}

}  // namespace

void register_vae() {
  backend::Registry<backend::VaeTable>::add(DeviceType::cuda,
                                            {&reparam_kl_forward, &reparam_kl_backward});
}

}  // namespace latent::cuda
