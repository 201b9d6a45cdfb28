// The VAE primitives, on each device: the fused reparameterization + Gaussian KL
// (kernels/reparam.cuh) forward and backward. The ops in src/ops/vae.cpp validate, allocate
// and dispatch here on the tensors' device; src/backends/cpu/vae.cpp is the reference,
// src/backends/cuda/vae.cu launches the kernels (on a GPU, or under the SIMT executor).
//
// Shapes: mu, logvar (and z, dL_dz, dL_dmu, dL_dlogvar) are contiguous [N, D...] of one
// floating dtype; kl and dL_dkl are contiguous [N]. Element i of the flat tensor draws its
// ε from philox_normal(key.seed, key.offset, i) (kernels/philox_normal.cuh).
#pragma once

#include "latent/random.h"
#include "latent/tensor.h"

namespace latent {

struct ReparamConfig {
  PhiloxKey key;              // the stream of ε
  double logvar_min = -30.0;  // logvar is clamped to [logvar_min, logvar_max]
  double logvar_max = 20.0;
  bool check_finite = true;   // report non-finite mu / logvar (a flag, no extra pass)
};

// Bits returned by the forward primitives when check_finite is set.
constexpr int kReparamNonfiniteMu = 1;
constexpr int kReparamNonfiniteLogvar = 2;

namespace cpu {
// z = mu + exp(½·clamp(logvar))·ε (skipped when z is undefined) and
// kl[n] = ½ Σ_j (mu² + exp(ℓc) − ℓc − 1) over row n (skipped when kl is undefined).
// Returns the kReparamNonfinite* bits seen in mu and logvar (0 when check_finite is off).
int reparam_kl_forward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                       const Tensor& z, const Tensor& kl);
// dL_dmu, dL_dlogvar from dL_dz (undefined: none) and dL_dkl [N] (undefined: none).
void reparam_kl_backward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                         const Tensor& dL_dz, const Tensor& dL_dkl, const Tensor& dL_dmu,
                         const Tensor& dL_dlogvar);
}  // namespace cpu

namespace cuda {
int reparam_kl_forward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                       const Tensor& z, const Tensor& kl);
void reparam_kl_backward(const ReparamConfig& config, const Tensor& mu, const Tensor& logvar,
                         const Tensor& dL_dz, const Tensor& dL_dkl, const Tensor& dL_dmu,
                         const Tensor& dL_dlogvar);
}  // namespace cuda

}  // namespace latent
