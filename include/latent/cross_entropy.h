// Softmax cross-entropy, fused over the vocabulary: the training loss of a classifier over
// K classes (a transformer prior's next-token logits). Docs: docs/cross_entropy.md; kernels:
// kernels/cross_entropy.cuh.
//
// One pass per row computes log Σ exp(logits) with the online log-sum-exp and subtracts the
// target's logit; no probability tensor is formed, forward or backward (the backward
// recomputes the softmax from the logits). Stable at any scale of the logits.
//
//   latent::Generator gen(0);
//   latent::Tensor logits = latent::randn({128, 49, 512}, gen);     // [batch, tokens, K]
//   latent::Tensor targets = ...;                                    // int32 [128, 49]
//   latent::Tensor nll = latent::cross_entropy_rows(logits, targets);  // [128, 49], nats
//   latent::Tensor loss = latent::cross_entropy(logits, targets);      // scalar mean
#pragma once

#include "latent/tensor.h"

namespace latent {

// The negative log-likelihood in nats of each row's target: logits [..., K] (float32 or
// float64, K ≥ 1), targets int32 [...] (the logits' shape without the last dimension), each
// in [0, K). Returns [...] in the logits' dtype: log Σ_k exp(logits[..., k]) −
// logits[..., target]. Differentiable in logits: dL/dlogits = dL/dloss·(softmax − one-hot).
// A row holding NaN or ±Inf gives NaN; a target outside [0, K) is an error naming its
// position and value (on cuda raised at the next check point, as every device-side check).
Tensor cross_entropy_rows(const Tensor& logits, const Tensor& targets);

// The mean of cross_entropy_rows over every row: a scalar, differentiable in logits. No
// rows (an empty batch) is an error.
Tensor cross_entropy(const Tensor& logits, const Tensor& targets);

}  // namespace latent
