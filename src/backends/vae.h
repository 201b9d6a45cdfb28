// The vae concept: the fused reparameterization + Gaussian KL (kernels/vae.cuh), forward and
// backward. src/ops/vae.cpp validates, allocates and looks up this table on the tensors'
// device; src/backends/cpu/vae.cpp is the reference, src/backends/cuda/vae.cu launches the
// kernels (on a GPU, or under the SIMT executor).
//
// Shapes: mu, logvar (and z, dL_dz, dL_dmu, dL_dlogvar) are contiguous [N, D...] of one
// floating dtype; kl and dL_dkl are contiguous [N]. Element i of the flat tensor draws its
// ε from philox_normal(key.seed, key.offset, i) (kernels/random.cuh).
#pragma once

#include <string>

#include "latent/random.h"
#include "latent/tensor.h"

namespace latent::backend {

struct ReparamConfig {
  PhiloxKey key;              // the stream of ε
  double logvar_min = -30.0;  // logvar is clamped to [logvar_min, logvar_max]
  double logvar_max = 20.0;
  // Non-finite mu / logvar fail a device-side check (the check concept) with these messages
  // (no extra pass: the forward kernel raises it); empty: no check.
  std::string nonfinite_mu_message, nonfinite_logvar_message;
};

struct VaeTable {
  static constexpr const char* kConcept = "vae";
  // z = mu + exp(½·clamp(logvar))·ε (skipped when z is undefined) and
  // kl[n] = ½ Σ_j (mu² + exp(ℓc) − ℓc − 1) over row n (skipped when kl is undefined).
  void (*reparam_kl_forward)(const ReparamConfig& config, const Tensor& mu,
                             const Tensor& logvar, const Tensor& z, const Tensor& kl);
  // dL_dmu, dL_dlogvar from dL_dz (undefined: none) and dL_dkl [N] (undefined: none).
  void (*reparam_kl_backward)(const ReparamConfig& config, const Tensor& mu,
                              const Tensor& logvar, const Tensor& dL_dz, const Tensor& dL_dkl,
                              const Tensor& dL_dmu, const Tensor& dL_dlogvar);
};

}  // namespace latent::backend
