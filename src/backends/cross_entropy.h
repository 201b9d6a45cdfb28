// The cross_entropy concept (kernels/cross_entropy.cuh; docs/cross_entropy.md).
// src/ops/cross_entropy.cpp validates arguments, allocates the outputs and looks up this
// table on the tensors' device.
//
// Every tensor is contiguous and lives on the table's device. logits and dlogits are
// float32 or float64 [rows, K] (any leading shape flattened, K ≥ 1); targets int32 [rows];
// loss and dloss [rows] and lse [rows, 2] of the logits' dtype: the row's log-sum-exp in its
// two parts (m, log s), m the row's max, lse = m + log s (kernels/cross_entropy.cuh says
// why). The caller allocates every output.
#pragma once

#include "backends/check.h"
#include "latent/tensor.h"

namespace latent::backend {

struct CrossEntropyTable {
  static constexpr const char* kConcept = "cross_entropy";
  // loss[r] = log Σ_k exp(logits[r, k]) − logits[r, targets[r]] and lse[r] = (m, log s),
  // one pass per row. A target outside [0, K) fails a check with
  // `target_message` at its row (no check when it is empty), inside the same pass; its loss
  // is NaN.
  void (*forward)(const Tensor& logits, const Tensor& targets, const Tensor& loss,
                  const Tensor& lse, const CheckMessage& target_message);
  // dlogits[r, k] = dloss[r]·(p − [k = targets[r]]), the softmax recomputed from the logits
  // and the forward's lse: p = exp((logits[r, k] − m) − log s).
  void (*backward)(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                   const Tensor& dloss, const Tensor& dlogits);
};

}  // namespace latent::backend
