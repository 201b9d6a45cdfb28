// Causal multi-head self-attention for short sequences, fused: the heart of the transformer
// prior that models a tokenizer's token grids (docs/attention.md, docs/prior.md).
//
// Input: the packed projections qkv [B, T, 3C] of a linear layer (C = H·d, H heads of d
// channels): token t's queries of every head, then its keys, then its values, so head h's
// query is qkv[b, t, h·d : h·d + d], its key at offset C, its value at 2C. Output o [B, T, C]
// with the heads side by side (what the output projection reads), and the row's log-sum-exp
// ℓ [B, H, T], the one number per row the backward needs.
//
// Forward, one head, scale α = 1/√d, causal: query i sees keys j ≤ i.
//   s_ij = α·q_i·k_j                  (j ≤ i)
//   m_i  = max_j s_ij,   l_i = Σ_j e^(s_ij − m_i),   ℓ_i = m_i + ln l_i
//   p_ij = e^(s_ij − ℓ_i)             (softmax; subtracting the max keeps e^x ≤ 1)
//   o_i  = Σ_j p_ij·v_j
// Backward (given g_i = dL/do_i; FlashAttention's recomputation: the scores are computed
// again from q, k and ℓ instead of being stored, T² numbers per head that would cost more
// memory traffic to keep than to redo):
//   D_i   = g_i·o_i                   (= Σ_j p_ij·(g_i·v_j))
//   dp_ij = g_i·v_j,   ds_ij = p_ij·(dp_ij − D_i)      (the softmax's Jacobian)
//   dq_i  = α·Σ_{j≤i} ds_ij·k_j,   dk_j = α·Σ_{i≥j} ds_ij·q_i,   dv_j = Σ_{i≥j} p_ij·g_i
//
// Cost per head (float32, T tokens, d channels): the forward reads 3·T·d inputs and writes
// T·d + T (16·T·d bytes plus ℓ), and does T(T+1)/2 score dot products and as many p·v
// products: ≈ 2·T²·d FLOPs (plus T²/2 exponentials). At T = 49, d = 32: 25 KiB moved for
// 154 kFLOP, ≈ 6 FLOPs per byte, so it sits between memory and compute bound, and what
// matters is that the T×T scores never leave the chip: the naive composition (two GEMMs
// around a softmax, kept beside the fused kernels for the tests and the benchmark) writes
// and reads them twice. The backward reads q, k, v, o, g and ℓ (20·T·d bytes), writes dqkv
// (12·T·d) and does ≈ 5·T²·d FLOPs (score, dp, dq, dk, dv).
//
// Launch shape: one block per (sequence, head): B·H blocks of kAttentionThreads = 128
// threads (4 warps). The head's q, k and v (T ≤ 64 rows of d ≤ 64) are staged in shared
// memory once, coalesced; then each warp takes query rows i = warp, warp + 4, …, and
//   - its lanes split the keys for the scores (lane j and j + 32: T ≤ 64), so the max and
//     the sum of the row are two warp shuffles reductions, no shared memory round trip;
//   - its lanes split the channels for the output (lane d and d + 32), reading the row's
//     probabilities from a per-warp slot of shared memory (a broadcast: every lane reads
//     the same p_ij) and v_j[d] from consecutive addresses.
// Keys (and, in the backward, values) are read down a column by 32 lanes at once, k_j[c]
// for j = lane: their rows are padded to an odd stride (attention_key_stride), so the 32
// addresses fall in 32 different banks. The backward keeps p and ds of the whole head in
// shared memory (2·T² words: the scores stay on the chip there too) and then forms dq, dk
// and dv with one thread per (row, channel), each a plain dot product over ≤ T rows, so
// every output element is written once, by one thread, in a fixed order: deterministic.
// Shared memory: the forward needs (2·T·d + T·stride + 4·64) words (≈ 20 KiB at T = 49,
// d = 32); the backward (2·T·d + 2·T·stride + 2·T² + 2·T) words, up to 97 KiB at T = d = 64
// in float32, so its launcher opts in to more than the default 48 KiB.
//
// Decoding with a key/value cache (attention_decode_kernel): to sample token t the model
// needs the attention of one new query against the keys and values of positions 0 … t, and
// those of 0 … t − 1 do not change. The kernel appends the new token's key and value to the
// cache [B, capacity, C] and attends over the cache: one warp per (sequence, head), lanes
// over the keys, then over the channels. A whole grid costs T such steps, each O(t·d),
// instead of T full forward passes.
//
// The naive composition (causal_softmax_kernel between two strided batched GEMMs, in
// src/ops/attention.cpp) is the same math written as three passes through device memory.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/math.cuh"
#include "kernels/reduce.cuh"

namespace latent::kernels {

constexpr int kAttentionMaxTokens = 64;   // lanes j and j + 32 of one warp cover the keys
constexpr int kAttentionMaxHeadDim = 64;  // lanes d and d + 32 cover the channels
constexpr int kAttentionThreads = 128;    // 4 warps per (sequence, head)
constexpr int kAttentionWarps = kAttentionThreads / 32;

// The row stride of keys and values in shared memory: odd, so that 32 lanes reading one
// column (row j = lane) hit 32 different banks.
LATENT_HOST_DEVICE LATENT_FORCEINLINE int attention_key_stride(int head_dim) {
  return head_dim | 1;
}

template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE std::size_t attention_forward_shared_bytes(int tokens,
                                                                                 int head_dim) {
  const int stride = attention_key_stride(head_dim);
  return sizeof(T) * (static_cast<std::size_t>(2 * tokens * head_dim + tokens * stride) +
                      kAttentionWarps * kAttentionMaxTokens);
}

template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE std::size_t attention_backward_shared_bytes(int tokens,
                                                                                  int head_dim) {
  const int stride = attention_key_stride(head_dim);
  return sizeof(T) * static_cast<std::size_t>(2 * tokens * head_dim + 2 * tokens * stride +
                                              2 * tokens * tokens + 2 * tokens);
}

template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE std::size_t attention_decode_shared_bytes(int head_dim) {
  return sizeof(T) * static_cast<std::size_t>(head_dim + kAttentionMaxTokens);
}

// dst[i·dst_stride + c] = src[i·src_stride + c] for i < tokens, c < head_dim: one head's rows,
// consecutive threads on consecutive channels (coalesced within each row).
template <class T>
__device__ __forceinline__ void attention_stage(T* dst, int dst_stride, const T* src,
                                                std::int64_t src_stride, int tokens,
                                                int head_dim) {
  for (int e = threadIdx.x; e < tokens * head_dim; e += blockDim.x) {
    const int i = e / head_dim;
    const int c = e - i * head_dim;
    dst[i * dst_stride + c] = src[i * src_stride + c];
  }
}

template <class T>
__device__ __forceinline__ T attention_dot(const T* a, const T* b, int n) {
  T acc = T(0);
  for (int c = 0; c < n; ++c) acc = math_fma(a[c], b[c], acc);
  return acc;
}

// One query row, by one warp: the scores of q against keys 0 … last (lane j takes keys j
// and j + 32), their softmax by two shuffle reductions, the probabilities into the warp's
// strip p_row, and o[c] = Σ_j p_j·v_j[c] with the lanes over the channels. Keys and values are
// rows `key_stride` and `value_stride` elements apart (shared memory in the forward, the
// cache in device memory when decoding). Returns the row's log-sum-exp (on every lane).
template <class T>
__device__ __forceinline__ T attention_row(const T* q, const T* keys, int key_stride,
                                           const T* values, int value_stride, int last,
                                           int head_dim, T scale, T* p_row, T* o) {
  const int lane = threadIdx.x % 32;
  const int j0 = lane, j1 = lane + 32;
  const T minus_infinity = -static_cast<T>(INFINITY);
  const T s0 = j0 <= last ? scale * attention_dot(q, keys + j0 * key_stride, head_dim) : minus_infinity;
  const T s1 = j1 <= last ? scale * attention_dot(q, keys + j1 * key_stride, head_dim) : minus_infinity;
  const T m = warp_all_max(s0 > s1 ? s0 : s1);  // finite: key 0 is always visible
  const T p0 = j0 <= last ? math_exp(s0 - m) : T(0);
  const T p1 = j1 <= last ? math_exp(s1 - m) : T(0);
  const T l = warp_all_sum(p0 + p1);
  p_row[j0] = p0;
  p_row[j1] = p1;
  __syncwarp();
  const T inverse = T(1) / l;
  for (int c = lane; c < head_dim; c += 32) {
    T acc = T(0);
    for (int j = 0; j <= last; ++j) acc = math_fma(p_row[j], values[j * value_stride + c], acc);
    o[c] = acc * inverse;
  }
  __syncwarp();  // the warp's next row rewrites p_row
  return m + math_log(l);
}

// qkv [B, T, 3C], out [B, T, C], lse [B, H, T]; grid B·H, block kAttentionThreads, dynamic
// shared memory attention_forward_shared_bytes<T>(T, d).
template <class T>
__global__ void __launch_bounds__(kAttentionThreads)
    causal_attention_forward_kernel(const T* qkv, T* out, T* lse, int tokens, int heads,
                                    int head_dim, T scale) {
  LATENT_DYNAMIC_SHARED(T, shared);
  const int channels = heads * head_dim;
  const int b = blockIdx.x / heads;
  const int h = blockIdx.x - b * heads;
  const std::int64_t qkv_stride = 3 * static_cast<std::int64_t>(channels);
  const T* head = qkv + static_cast<std::int64_t>(b) * tokens * qkv_stride + h * head_dim;
  const int key_stride = attention_key_stride(head_dim);
  T* q_s = shared;                           // [T][d]
  T* v_s = q_s + tokens * head_dim;          // [T][d]
  T* k_s = v_s + tokens * head_dim;          // [T][key_stride]
  T* p_s = k_s + tokens * key_stride;        // [warps][kAttentionMaxTokens]
  attention_stage(q_s, head_dim, head, qkv_stride, tokens, head_dim);
  attention_stage(k_s, key_stride, head + channels, qkv_stride, tokens, head_dim);
  attention_stage(v_s, head_dim, head + 2 * channels, qkv_stride, tokens, head_dim);
  __syncthreads();

  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  T* p_row = p_s + warp * kAttentionMaxTokens;
  for (int i = warp; i < tokens; i += kAttentionWarps) {
    T* o = out + (static_cast<std::int64_t>(b) * tokens + i) * channels + h * head_dim;
    const T row_lse = attention_row(q_s + i * head_dim, k_s, key_stride, v_s, head_dim, i,
                                    head_dim, scale, p_row, o);
    if (lane == 0) lse[(static_cast<std::int64_t>(b) * heads + h) * tokens + i] = row_lse;
  }
}

// The gradient dqkv [B, T, 3C] of L from dout = dL/dout [B, T, C]; qkv, out and lse are the
// forward's. Grid B·H, block kAttentionThreads, dynamic shared memory
// attention_backward_shared_bytes<T>(T, d).
template <class T>
__global__ void __launch_bounds__(kAttentionThreads)
    causal_attention_backward_kernel(const T* qkv, const T* out, const T* lse, const T* dout,
                                     T* dqkv, int tokens, int heads, int head_dim, T scale) {
  LATENT_DYNAMIC_SHARED(T, shared);
  const int channels = heads * head_dim;
  const int b = blockIdx.x / heads;
  const int h = blockIdx.x - b * heads;
  const std::int64_t qkv_stride = 3 * static_cast<std::int64_t>(channels);
  const std::int64_t first_row = static_cast<std::int64_t>(b) * tokens;
  const T* head = qkv + first_row * qkv_stride + h * head_dim;
  const int key_stride = attention_key_stride(head_dim);
  T* q_s = shared;                       // [T][d]
  T* g_s = q_s + tokens * head_dim;      // [T][d]     dL/do
  T* k_s = g_s + tokens * head_dim;      // [T][key_stride]
  T* v_s = k_s + tokens * key_stride;    // [T][key_stride]
  T* p_s = v_s + tokens * key_stride;    // [T][T]     p_ij
  T* ds_s = p_s + tokens * tokens;       // [T][T]     ds_ij
  T* lse_s = ds_s + tokens * tokens;     // [T]
  T* delta_s = lse_s + tokens;           // [T]        D_i = g_i·o_i
  attention_stage(q_s, head_dim, head, qkv_stride, tokens, head_dim);
  attention_stage(k_s, key_stride, head + channels, qkv_stride, tokens, head_dim);
  attention_stage(v_s, key_stride, head + 2 * channels, qkv_stride, tokens, head_dim);
  attention_stage(g_s, head_dim, dout + first_row * channels + h * head_dim,
                  static_cast<std::int64_t>(channels), tokens, head_dim);
  const T* head_lse = lse + (static_cast<std::int64_t>(b) * heads + h) * tokens;
  for (int i = threadIdx.x; i < tokens; i += blockDim.x) lse_s[i] = head_lse[i];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  // D_i = g_i·o_i, a warp per row (o is read once, here, from device memory).
  for (int i = warp; i < tokens; i += kAttentionWarps) {
    const T* o = out + (first_row + i) * channels + h * head_dim;
    const T* g = dout + (first_row + i) * channels + h * head_dim;
    T partial = T(0);
    for (int c = lane; c < head_dim; c += 32) partial = math_fma(g[c], o[c], partial);
    const T delta = warp_all_sum(partial);
    if (lane == 0) delta_s[i] = delta;
  }
  __syncthreads();

  // p and ds of every (i, j), recomputed; zero above the diagonal.
  for (int i = warp; i < tokens; i += kAttentionWarps) {
    const T* q = q_s + i * head_dim;
    const T* g = g_s + i * head_dim;
    for (int j = lane; j < tokens; j += 32) {
      T p = T(0), ds = T(0);
      if (j <= i) {
        const T s = scale * attention_dot(q, k_s + j * key_stride, head_dim);
        p = math_exp(s - lse_s[i]);
        const T dp = attention_dot(g, v_s + j * key_stride, head_dim);
        ds = p * (dp - delta_s[i]);
      }
      p_s[i * tokens + j] = p;
      ds_s[i * tokens + j] = ds;
    }
  }
  __syncthreads();

  // One thread per (row r, channel c): dq_r, dk_r and dv_r, each a sum in a fixed order.
  // The head's base again, from the block index: the 64-bit offset of the staging above, kept
  // live across the whole kernel instead, is what ptxas spilled in the float64 instance
  // (tools/kernel-report: no spills, no local memory).
  const unsigned block = blockIdx.x;
  T* dhead = dqkv + static_cast<std::int64_t>(block / heads) * tokens * qkv_stride +
             (block % heads) * head_dim;
  for (int e = threadIdx.x; e < tokens * head_dim; e += blockDim.x) {
    const int r = e / head_dim;
    const int c = e - r * head_dim;
    T dq = T(0), dk = T(0), dv = T(0);
    for (int j = 0; j <= r; ++j) dq = math_fma(ds_s[r * tokens + j], k_s[j * key_stride + c], dq);
    for (int i = r; i < tokens; ++i) {
      dk = math_fma(ds_s[i * tokens + r], q_s[i * head_dim + c], dk);
      dv = math_fma(p_s[i * tokens + r], g_s[i * head_dim + c], dv);
    }
    T* d_row = dhead + r * qkv_stride;
    d_row[c] = scale * dq;
    d_row[channels + c] = scale * dk;
    d_row[2 * channels + c] = dv;
  }
}

// One decoding step with a key/value cache. qkv [B, 3C]: the projections of the token at
// `position`; keys, values [B, capacity, C]: positions 0 … position − 1 filled by earlier
// steps. Writes this token's key and value at `position`, then out [B, C] = its attention
// over positions 0 … position. Grid B·H, one warp per block, dynamic shared memory
// attention_decode_shared_bytes<T>(d).
template <class T>
__global__ void __launch_bounds__(32)
    attention_decode_kernel(const T* qkv, T* keys, T* values, T* out, int position,
                            int capacity, int heads, int head_dim, T scale) {
  LATENT_DYNAMIC_SHARED(T, shared);
  const int channels = heads * head_dim;
  const int b = blockIdx.x / heads;
  const int h = blockIdx.x - b * heads;
  const T* token = qkv + static_cast<std::int64_t>(b) * 3 * channels + h * head_dim;
  const std::int64_t cache_first = static_cast<std::int64_t>(b) * capacity * channels + h * head_dim;
  T* head_keys = keys + cache_first;
  T* head_values = values + cache_first;
  T* q_s = shared;              // [d]
  T* p_row = q_s + head_dim;    // [kAttentionMaxTokens]
  const int lane = threadIdx.x;
  for (int c = lane; c < head_dim; c += 32) {
    q_s[c] = token[c];
    head_keys[static_cast<std::int64_t>(position) * channels + c] = token[channels + c];
    head_values[static_cast<std::int64_t>(position) * channels + c] = token[2 * channels + c];
  }
  __syncthreads();  // the cache rows just written are read by other lanes below
  attention_row(q_s, head_keys, channels, head_values, channels, position, head_dim, scale, p_row,
                out + static_cast<std::int64_t>(b) * channels + h * head_dim);
}

// The naive composition's middle pass: scores [rows, T] (rows = B·H·T, row r belongs to query
// i = r mod T) become causal softmax probabilities in place: p_ij = e^(s_ij − m_i)/l_i for
// j ≤ i, 0 for j > i. A warp per row, lanes over j; grid-stride over rows. The row index is
// 64-bit (rows·T may pass 2^31) but i = r mod T is kept by 32-bit steps, (r + warps) mod T =
// (i + warps mod T) mod T, so no row pays a 64-bit remainder.
template <class T>
__global__ void __launch_bounds__(256)
    causal_softmax_kernel(T* scores, std::int64_t rows, int tokens) {
  const int lane = threadIdx.x % 32;
  const unsigned block_warps = blockDim.x / 32, period = static_cast<unsigned>(tokens);
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * block_warps;
  // warps mod T and the first row's i, in 32 bits: gridDim.x mod T < 64, block_warps ≤ 32.
  const int step = static_cast<int>((gridDim.x % period) * block_warps % period);
  int i = static_cast<int>(((blockIdx.x % period) * block_warps + threadIdx.x / 32) % period);
  const T minus_infinity = -static_cast<T>(INFINITY);
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * block_warps + threadIdx.x / 32;
       r < rows; r += warps, i = i + step >= tokens ? i + step - tokens : i + step) {
    T* row = scores + r * tokens;
    T m = minus_infinity;
    for (int j = lane; j <= i; j += 32) m = row[j] > m ? row[j] : m;
    m = warp_all_max(m);
    T l = T(0);
    for (int j = lane; j <= i; j += 32) l += math_exp(row[j] - m);
    l = warp_all_sum(l);
    const T inverse = T(1) / l;
    for (int j = lane; j < tokens; j += 32) row[j] = j <= i ? math_exp(row[j] - m) * inverse : T(0);
  }
}

}  // namespace latent::kernels
