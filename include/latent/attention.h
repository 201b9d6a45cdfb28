// Causal multi-head self-attention for short sequences (the transformer prior's, over the
// 49 + 1 tokens of a token grid). Docs: docs/attention.md; kernels: kernels/attention.cuh.
//
//   // x [B, T, C] → qkv [B, T, 3C] by one linear layer; heads H divide C
//   latent::Tensor y = latent::causal_self_attention(qkv, H);  // [B, T, C]
//
// qkv packs, per token, the queries of every head, then the keys, then the values: head h
// reads channels h·d … h·d + d − 1 of each third (d = C/H). Token i attends to tokens 0 … i,
// with scores scaled by 1/√d. The fused kernels hold one head of one sequence on the chip:
// T ≤ 64 tokens and d ≤ 64 channels per head.
#pragma once

#include <cstdint>

#include "latent/tensor.h"

namespace latent {

constexpr std::int64_t kAttentionMaxTokens = 64;
constexpr std::int64_t kAttentionMaxHeadDim = 64;

// The fused attention: qkv [B, T, 3C] (float32 or float64) → [B, T, C]. Differentiable in
// qkv; the backward recomputes the scores from qkv and the rows' saved log-sum-exp.
Tensor causal_self_attention(const Tensor& qkv, std::int64_t heads);

// The same attention as three passes through memory: scores = QKᵀ/√d by a strided batched
// GEMM ([B, H, T, T] written out), the causal softmax in place, then P·V by a second GEMM.
// The baseline of the tests and the benchmark; not differentiable (its result does not
// track gradients).
Tensor causal_self_attention_unfused(const Tensor& qkv, std::int64_t heads);

// One step of decoding with a key/value cache. qkv [B, 3C]: the projections of the token at
// `position` of each sequence; keys and values [B, capacity, C] (capacity ≤ 64) hold
// positions 0 … position − 1 from earlier steps. Writes this token's key and value into the
// cache (in place) and returns [B, C], its attention over positions 0 … position: the row
// `position` of causal_self_attention over the whole sequence, at the cost of one token.
// Not differentiable (for sampling).
Tensor attention_decode_step(const Tensor& qkv, const Tensor& keys, const Tensor& values,
                             std::int64_t position, std::int64_t heads);

}  // namespace latent
