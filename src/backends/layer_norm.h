// The layer_norm concept (kernels/layer_norm.cuh; docs/layer_norm.md). src/ops/layer_norm.cpp
// validates arguments, allocates the outputs and looks up this table on the tensors' device.
//
// Every tensor is contiguous, of one dtype (float32 or float64) and lives on the table's
// device. x, y, dL_dy and dL_dx are [rows, cols] (any leading shape flattened into rows:
// cols = x.size(-1), rows = x.numel() / cols), with rows ≥ 1 and cols ≥ 1 (the op handles
// empty inputs itself); weight, bias, dL_dweight and dL_dbias are [cols]; mean and rstd are
// [rows]. The caller allocates every output; the entries may allocate scratch (the cuda
// backend's dγ, dβ partials). eps > 0 and finite. Results are bitwise repeatable.
#pragma once

#include "latent/tensor.h"

namespace latent::backend {

struct LayerNormTable {
  static constexpr const char* kConcept = "layer_norm";
  // y = (x − μ)·rstd·weight + bias per row, rstd = 1/sqrt(σ² + eps) (σ² biased); writes
  // mean = μ and rstd. weight and bias are both defined or both undefined (no affine part:
  // y = (x − μ)·rstd).
  void (*forward)(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                  const Tensor& y, const Tensor& mean, const Tensor& rstd);
  // From dL_dy and the forward's x, weight (undefined: no affine part), mean and rstd:
  // dL_dx = rstd·(g' − mean(g') − x̂·mean(g'·x̂)) with g' = dL_dy·weight, x̂ = (x − mean)·rstd;
  // dL_dweight = Σ_rows dL_dy·x̂ and dL_dbias = Σ_rows dL_dy. Each output may be undefined
  // (not wanted); the parameter gradients are summed in a fixed order (no atomics).
  void (*backward)(const Tensor& x, const Tensor& dL_dy, const Tensor& weight,
                   const Tensor& mean, const Tensor& rstd, const Tensor& dL_dx,
                   const Tensor& dL_dweight, const Tensor& dL_dbias);
};

}  // namespace latent::backend
