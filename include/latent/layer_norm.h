// Layer normalization over the last dimension. Docs: docs/layer_norm.md; kernels:
// kernels/layer_norm.cuh.
//
// Every row of C features (the last dimension; any leading shape) is normalized to mean 0
// and variance 1, then scaled and shifted per feature:
//   y = (x − mean(x)) / sqrt(var(x) + eps) · weight + bias     (var biased, as PyTorch)
//
//   latent::Generator gen(0);
//   latent::Tensor x = latent::randn({128, 49, 256}, gen);       // 128 images × 49 tokens
//   latent::Tensor w = latent::ones({256}), b = latent::zeros({256});
//   latent::Tensor y = latent::layer_norm(x, w, b);              // [128, 49, 256]
#pragma once

#include "latent/tensor.h"

namespace latent {

// Normalizes x [..., C] (float32 or float64, at least one dimension) over its last
// dimension. weight and bias are [C] of x's dtype and device, both defined (the affine
// part) or both undefined (y = x̂); eps > 0 and finite. Differentiable in x, weight and
// bias; deterministic (the same inputs give the same bits on the same device). An x with no
// elements gives an empty y.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

}  // namespace latent
