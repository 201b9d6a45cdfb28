// The attention concept (kernels/attention.cuh; docs/attention.md). src/ops/attention.cpp
// validates the arguments, allocates the outputs and looks up this table on the tensors'
// device.
//
// Every tensor is contiguous, float32 or float64 (all of one dtype) and on the table's
// device; shape.tokens ≤ kAttentionMaxTokens and shape.head_dim ≤ kAttentionMaxHeadDim were
// checked. C = heads·head_dim.
#pragma once

#include <cstdint>

#include "latent/tensor.h"

namespace latent::backend {

struct AttentionShape {
  std::int64_t batch = 0;
  std::int64_t tokens = 0;
  std::int64_t heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t channels() const { return heads * head_dim; }
};

struct AttentionTable {
  static constexpr const char* kConcept = "attention";
  // qkv [B, T, 3C] → out [B, T, C] and lse [B, H, T] (each row's log-sum-exp), causal.
  void (*forward)(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                  const AttentionShape& shape);
  // dqkv [B, T, 3C] from dout [B, T, C] and the forward's qkv, out and lse.
  void (*backward)(const Tensor& qkv, const Tensor& out, const Tensor& lse, const Tensor& dout,
                   const Tensor& dqkv, const AttentionShape& shape);
  // One token per sequence: qkv [B, 3C] of the token at `position`; writes its key and value
  // into keys, values [B, shape.tokens (the capacity), C] and out [B, C] = its attention over
  // positions 0 … position.
  void (*decode_step)(const Tensor& qkv, const Tensor& keys, const Tensor& values,
                      const Tensor& out, std::int64_t position, const AttentionShape& shape);
  // The naive composition's softmax: scores [B·H·T, T] in place, row r masked past r mod T.
  void (*causal_softmax)(const Tensor& scores, std::int64_t tokens);
};

}  // namespace latent::backend
