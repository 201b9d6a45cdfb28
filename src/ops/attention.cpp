// The attention ops: validate, allocate, dispatch on the device (src/backends/attention.h),
// record the recomputing backward. The math is in kernels/attention.cuh; docs/attention.md.
#include "latent/attention.h"

#include <cmath>

#include "backends/attention.h"
#include "backends/gemm.h"
#include "backends/registry.h"
#include "latent/autograd.h"

namespace latent {
namespace {

backend::AttentionShape check_qkv(const char* op, const Tensor& qkv, std::int64_t heads) {
  LATENT_CHECK(qkv.defined(), op, ": undefined qkv");
  LATENT_CHECK(is_floating(qkv.dtype()), op, ": expected float32 or float64 qkv, got ",
               dtype_name(qkv.dtype()), " of shape ", shape_str(qkv.shape()));
  LATENT_CHECK(qkv.dim() == 3, op, ": qkv must be [batch, tokens, 3·channels], got ",
               shape_str(qkv.shape()));
  LATENT_CHECK(heads >= 1, op, ": heads must be at least 1, got ", heads);
  const std::int64_t width = qkv.size(2);
  LATENT_CHECK(width > 0 && width % (3 * heads) == 0, op, ": the last dimension of qkv ",
               shape_str(qkv.shape()), " must be 3·heads·head_dim for heads = ", heads);
  backend::AttentionShape s;
  s.batch = qkv.size(0);
  s.tokens = qkv.size(1);
  s.heads = heads;
  s.head_dim = width / (3 * heads);
  LATENT_CHECK(s.tokens <= kAttentionMaxTokens, op, ": ", s.tokens,
               " tokens; the fused kernels hold at most ", kAttentionMaxTokens,
               " tokens of a sequence on the chip (qkv ", shape_str(qkv.shape()), ")");
  LATENT_CHECK(s.head_dim <= kAttentionMaxHeadDim, op, ": a head of ", s.head_dim,
               " channels; at most ", kAttentionMaxHeadDim, " (qkv ", shape_str(qkv.shape()),
               ", heads = ", heads, ")");
  return s;
}

}  // namespace

Tensor causal_self_attention(const Tensor& qkv, std::int64_t heads) {
  const backend::AttentionShape s = check_qkv("causal_self_attention", qkv, heads);
  const Tensor input = qkv.contiguous();
  Tensor out = empty({s.batch, s.tokens, s.channels()}, input.dtype(), input.device());
  Tensor lse = empty({s.batch, s.heads, s.tokens}, input.dtype(), input.device());
  if (out.numel() > 0) {
    backend::lookup<backend::AttentionTable>(input.device()).forward(input, out, lse, s);
  }
  const Tensor saved_qkv = input.detach();
  const Tensor saved_out = out.detach();
  return record(out, "causal_self_attention", {input},
                [saved_qkv, saved_out, lse, s](const Tensor& g) {
                  const Tensor dout = g.contiguous();
                  Tensor dqkv = empty_like(saved_qkv);
                  if (dqkv.numel() > 0) {
                    backend::lookup<backend::AttentionTable>(saved_qkv.device())
                        .backward(saved_qkv, saved_out, lse, dout, dqkv, s);
                  }
                  return std::vector<Tensor>{dqkv};
                });
}

Tensor causal_self_attention_unfused(const Tensor& qkv, std::int64_t heads) {
  const backend::AttentionShape s = check_qkv("causal_self_attention_unfused", qkv, heads);
  const Tensor input = qkv.detach().contiguous();
  const std::int64_t n = s.tokens, d = s.head_dim, C = s.channels();
  Tensor out = empty({s.batch, n, C}, input.dtype(), input.device());
  if (out.numel() == 0) return out;
  Tensor scores = empty({s.batch, s.heads, n, n}, input.dtype(), input.device());
  const auto& gemm = backend::lookup<backend::GemmTable>(input.device());
  const std::size_t size = dtype_size(input.dtype());
  const auto* base = static_cast<const unsigned char*>(input.data_ptr());
  auto* score_bytes = static_cast<unsigned char*>(scores.data_ptr());
  auto* out_bytes = static_cast<unsigned char*>(out.data_ptr());
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // Per sequence, all heads at once: head h's Q starts h·d elements into the row, its K at
  // C + h·d; both rows are 3C apart.
  for (std::int64_t b = 0; b < s.batch; ++b) {
    const unsigned char* q = base + b * n * 3 * C * size;
    gemm.gemm_strided_batched(input.dtype(), false, true, n, n, d, scale, q, 3 * C, d,
                              q + C * size, 3 * C, d, 0.0, score_bytes + b * s.heads * n * n * size,
                              n, n * n, s.heads);
  }
  backend::lookup<backend::AttentionTable>(input.device()).causal_softmax(scores, n);
  for (std::int64_t b = 0; b < s.batch; ++b) {
    const unsigned char* v = base + (b * n * 3 * C + 2 * C) * size;
    gemm.gemm_strided_batched(input.dtype(), false, false, n, d, n, 1.0,
                              score_bytes + b * s.heads * n * n * size, n, n * n, v, 3 * C, d,
                              0.0, out_bytes + b * n * C * size, C, d, s.heads);
  }
  return out;
}

Tensor attention_decode_step(const Tensor& qkv, const Tensor& keys, const Tensor& values,
                             std::int64_t position, std::int64_t heads) {
  const char* op = "attention_decode_step";
  LATENT_CHECK(qkv.defined() && keys.defined() && values.defined(), op, ": undefined tensor");
  LATENT_CHECK(qkv.dim() == 2, op, ": qkv must be [batch, 3·channels], got ",
               shape_str(qkv.shape()));
  const backend::AttentionShape step =
      check_qkv(op, qkv.reshape({qkv.size(0), 1, qkv.size(1)}), heads);
  const std::int64_t C = step.channels();
  LATENT_CHECK(keys.dim() == 3 && keys.size(0) == step.batch && keys.size(2) == C, op,
               ": the key cache must be [", step.batch, ", capacity, ", C, "], got ",
               shape_str(keys.shape()));
  LATENT_CHECK(values.shape() == keys.shape(), op, ": the value cache ",
               shape_str(values.shape()), " must have the key cache's shape ",
               shape_str(keys.shape()));
  LATENT_CHECK(keys.dtype() == qkv.dtype() && values.dtype() == qkv.dtype(), op,
               ": qkv, keys and values must share a dtype (", dtype_name(qkv.dtype()), ", ",
               dtype_name(keys.dtype()), ", ", dtype_name(values.dtype()), ")");
  LATENT_CHECK(keys.device() == qkv.device() && values.device() == qkv.device(), op,
               ": qkv is on ", qkv.device().str(), ", the caches on ", keys.device().str(),
               " and ", values.device().str());
  LATENT_CHECK(keys.is_contiguous() && values.is_contiguous(), op,
               ": the caches are written in place and must be contiguous");
  const std::int64_t capacity = keys.size(1);
  LATENT_CHECK(capacity <= kAttentionMaxTokens, op, ": a cache of ", capacity,
               " positions; at most ", kAttentionMaxTokens);
  LATENT_CHECK(position >= 0 && position < capacity, op, ": position ", position,
               " is outside the cache's ", capacity, " positions");
  const Tensor input = qkv.detach().contiguous();
  backend::AttentionShape s = step;
  s.tokens = capacity;
  Tensor out = empty({s.batch, C}, input.dtype(), input.device());
  if (out.numel() > 0) {
    backend::lookup<backend::AttentionTable>(input.device())
        .decode_step(input, keys, values, out, position, s);
  }
  return out;
}

}  // namespace latent
