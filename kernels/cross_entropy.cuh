// Softmax cross-entropy fused over the vocabulary: the loss of a classifier (a transformer
// prior's next-token logits) without a probability tensor. Docs: docs/cross_entropy.md.
//
// Forward, row r of logits x [rows, K] with target t = targets[r] ∈ [0, K):
//   lse_r  = log Σ_k exp(x_k) = m + log Σ_k exp(x_k − m),   m = max_k x_k
//   loss_r = lse_r − x_t = (m − x_t) + log s,               s = Σ_k exp(x_k − m) ∈ [1, K]
// Subtracting the maximum keeps every exp in (0, 1], so nothing overflows whatever the
// logits' scale, and s ≥ 1 keeps log s away from −∞. The loss is formed as (m − x_t) + log s,
// not as lse − x_t: m − x_t is one rounding (exact when the two are within a factor of 2),
// so a row whose logits sit at 1e4 still gets a loss accurate to the last bits instead of
// ±ulp(1e4). For the same reason lse is saved in its two parts, lse[r] = (m, log s): the
// backward needs x − lse, and (x − m) − log s is accurate where x − (m + log s) is not.
//
// One pass (the online log-sum-exp, Milakov & Gimelshein, "Online normalizer calculation
// for softmax", 2018): a running pair (m, s) meets the elements one at a time,
//   x > m:  s ← s·exp(m − x) + 1,  m ← x       (the old sum is rescaled to the new max)
//   else:   s ← s + exp(x − m)
// one exp per element either way (exp(−|x − m|), cross_entropy_add), and two partial pairs
// merge as (m, s) ⊕ (m', s') = (max, s·exp(m − max) + s'·exp(m' − max)) (cross_entropy_merge),
// an associative operation, so lanes of a warp each scan part of the row and a shuffle tree
// combines them. The grouping depends on K only: bitwise repeatable run to run. The pair is
// kept as (m, s − 1) and log s formed as log1p(s − 1), so that a confident row (s = 1 + ε)
// keeps ε to full precision (LogSumExp).
//
// Non-finite logits: any NaN or ±Inf logit in a row makes that row's loss NaN (and its log s
// and gradient row). Every element adds x − x (0, or NaN for NaN and ±Inf) to s, so the
// rule holds whatever the order the elements are met in: on every backend and every lane
// split alike. (−Inf is not treated as a mask.) A target outside [0, K) fails the
// device-side check `target_check` (kernels/check.cuh) at its row, and the row's loss is NaN.
//
// Backward, g_r = dL/dloss_r, recomputing the softmax from x and the saved (m, log s):
//   dL/dx_{r,k} = g_r·(p_k − [k = t]),   p_k = exp((x_k − m) − log s)
// (softmax minus one-hot). x_k − m is exact near the max, so the large probabilities are
// accurate to a few ulps whatever the row's offset; exp(x_k − lse) with lse rounded to one
// word would carry its rounding, u·|lse|, into every probability (6e-4 relative for float32
// logits near 1e4; PyTorch's log_softmax backward has that error). The target's own term is
// g·expm1(−loss_r) = g·(p_t − 1), without the cancellation of 1 − 1 when the model is
// confident (p_t → 1).
//
// Cost per element (float32): forward reads 4 bytes, about 6 FLOPs (a subtract, an abs, an
// exp, a multiply-add, the poison add, two selects) and writes nothing per element: 4 bytes
// of target, 4 of loss and 8 of (m, log s) per row. The unfused composition (exp,
// sum, log and a gather of x_t) writes and reads the [rows, K] exponentials once more.
// Backward reads 4 bytes and writes 4 bytes per element (plus 20 bytes a row: target, x_t,
// m, log s, g), about 4 FLOPs (two subtracts, the exp, the multiply). Both are memory-bound
// above K ≈ 64.
//
// Launch shape: one warp per row, kCrossEntropyWarps warps per block, grid-stride over rows
// (any number of rows, capped grid). A warp per row, not a block: the rows of a prior are a
// few thousand logits at most (K = 256 … 16384), which a warp streams at full width, and
// the merge needs no shared memory or barrier, only five shuffles. The lanes stride over the
// row, consecutive lanes on consecutive 16-byte vectors (when K is a multiple of the vector
// width and the tensors are 16-byte aligned, so every row starts aligned), else on
// consecutive elements: every load of a warp is one coalesced transaction. Within a vector
// each of its W elements keeps its own (m, s) chain, merged at the end, so a lane has W
// independent exps in flight rather than one dependent chain.
#pragma once

#include <cstdint>

#include "kernels/check.cuh"
#include "kernels/device.cuh"
#include "kernels/grid.cuh"
#include "kernels/math.cuh"
#include "kernels/vec16.cuh"

namespace latent::kernels {

constexpr int kCrossEntropyWarps = 8;  // rows per block
constexpr int kCrossEntropyThreads = kCrossEntropyWarps * 32;

// ---------------------------------------------------------------- the per-element formulas
// The running pair of an online log-sum-exp: the largest element met so far, m, and
// r = s − 1, the sum of exp(x − m) over the elements met less the max's own term (which is
// exactly 1). Keeping the 1 out keeps the small terms: a confident row (one logit far above
// the rest) has s = 1 + ε, and 1 + ε rounded to the dtype loses ε's low bits, which
// log s = log1p(r) needs (log s ≈ ε is then the loss). The empty pair is (−∞, −1).
template <class A>
struct LogSumExp {
  A m;
  A r;
};

template <class A>
LATENT_HOST_DEVICE LATENT_FORCEINLINE LogSumExp<A> cross_entropy_empty() {
  return {-static_cast<A>(INFINITY), A(-1)};
}

LATENT_HOST_DEVICE LATENT_FORCEINLINE float cross_entropy_log1p(float x) { return ::log1pf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double cross_entropy_log1p(double x) { return ::log1p(x); }

// Meets one element x. exp(−|x − m|) is exp(x − m) when x ≤ m and exp(m − x) when x grows the
// max: one exp either way. A new max rescales: r ← (r + 1)·exp(m − x) (the old sum, whose
// max's term now counts as an ordinary one). From the empty pair: d = +∞, e = 0, r = 0,
// m = x. x − x is 0 for a finite x and NaN for NaN or ±Inf: the row's sum (and so its loss)
// becomes NaN.
template <class A>
LATENT_HOST_DEVICE LATENT_FORCEINLINE void cross_entropy_add(LogSumExp<A>& p, A x) {
  const A d = x - p.m;
  const bool grows = d > A(0);
  const A e = math_exp(-math_abs(d));
  p.r = (grows ? math_fma(p.r, e, e) : p.r + e) + (x - x);
  p.m = grows ? x : p.m;
}

// p ← p ⊕ q: the pair with the larger max keeps its r and takes the other's whole sum,
// (r' + 1)·exp(m' − m). Equal maxima (two empty pairs among them: −∞ − −∞ is NaN) scale by 1.
template <class A>
LATENT_HOST_DEVICE LATENT_FORCEINLINE void cross_entropy_merge(LogSumExp<A>& p,
                                                               LogSumExp<A> q) {
  const A d = p.m - q.m;
  const A e = d != d ? A(1) : math_exp(-math_abs(d));
  if (d >= A(0)) {
    p.r = p.r + math_fma(q.r, e, e);
  } else {
    p.r = q.r + math_fma(p.r, e, e);
    p.m = q.m;
  }
}

// log s of the merged pair.
template <class A>
LATENT_HOST_DEVICE LATENT_FORCEINLINE A cross_entropy_log_sum(LogSumExp<A> p) {
  return cross_entropy_log1p(p.r);
}

// The row's loss (m − x_t) + log s, from m and log s of the merged pair.
template <class A>
LATENT_HOST_DEVICE LATENT_FORCEINLINE A cross_entropy_loss(A m, A log_s, A target_logit) {
  return (m - target_logit) + log_s;
}

// dL/dx of one element x of a row (m, log s, loss): g·(p − [target]), p = exp((x − m) − log s);
// the target's own element g·expm1(−loss) (= g·(p_t − 1)).
template <class A>
LATENT_HOST_DEVICE LATENT_FORCEINLINE A cross_entropy_gradient(A x, A m, A log_s, A loss, A g,
                                                                bool target) {
  return target ? g * math_expm1(-loss) : g * math_exp((x - m) - log_s);
}

// ---------------------------------------------------------------- kernels
// The merge of the 32 lanes' pairs by a shuffle tree (fixed order); every lane gets the row's.
template <class T>
__device__ __forceinline__ LogSumExp<T> cross_entropy_warp_merge(LogSumExp<T> p) {
  for (int delta = 16; delta > 0; delta /= 2) {
    LogSumExp<T> q;
    q.m = __shfl_xor_sync(0xffffffffu, p.m, delta);
    q.r = __shfl_xor_sync(0xffffffffu, p.r, delta);
    // Both lanes of a pair compute the same merge in the same order (the lower lane's pair
    // first), so every lane ends with bitwise the same result.
    const bool lower = (threadIdx.x & delta) == 0;
    LogSumExp<T> a = lower ? p : q;
    cross_entropy_merge(a, lower ? q : p);
    p = a;
  }
  return p;
}

// logits [rows, K] contiguous, targets int32 [rows]; writes loss [rows] and lse [rows, 2]
// = (m, log s).
// vectorized: K % Vec16<T>::width == 0 and logits 16-byte aligned.
template <class T>
__global__ void __launch_bounds__(kCrossEntropyThreads)
    cross_entropy_forward_kernel(const T* __restrict__ logits,
                                 const std::int32_t* __restrict__ targets, std::int64_t rows,
                                 std::int64_t K, bool vectorized, T* __restrict__ loss,
                                 T* __restrict__ lse, CheckSite target_check) {
  constexpr int W = Vec16<T>::width;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kCrossEntropyWarps;
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * kCrossEntropyWarps +
                        static_cast<int>(threadIdx.x) / 32;
       r < rows; r += warps) {
    const T* row = logits + r * K;
    LogSumExp<T> p = cross_entropy_empty<T>();
    if (vectorized) {
      LogSumExp<T> part[W];
#pragma unroll
      for (int j = 0; j < W; ++j) part[j] = cross_entropy_empty<T>();
      const auto* packs = reinterpret_cast<const typename Vec16<T>::type*>(row);
      const std::int64_t count = K / W;
      for (std::int64_t v = lane; v < count; v += 32) {
        Pack<T> pack;
        pack.vector = packs[v];
#pragma unroll
        for (int j = 0; j < W; ++j) cross_entropy_add(part[j], pack.lane[j]);
      }
      p = part[0];
#pragma unroll
      for (int j = 1; j < W; ++j) cross_entropy_merge(p, part[j]);
    } else {
      for (std::int64_t k = lane; k < K; k += 32) cross_entropy_add(p, row[k]);
    }
    p = cross_entropy_warp_merge(p);
    if (lane == 0) {
      const std::int32_t t = targets[r];
      const bool valid = t >= 0 && t < K;
      if (!valid) check_fail(target_check, r);
      const T log_s = cross_entropy_log_sum(p);
      loss[r] = valid ? cross_entropy_loss(p.m, log_s, row[t]) : static_cast<T>(NAN);
      lse[2 * r] = p.m;
      lse[2 * r + 1] = log_s;
    }
  }
}

// dlogits[r, k] = dloss[r]·(p_k − [k = targets[r]]), p_k = exp((x_k − m) − log s) with
// (m, log s) = lse[r]; all contiguous. vectorized: K % width == 0 and logits, dlogits 16-byte aligned. A target
// outside [0, K) (the forward's check reported it) gets the softmax gradient without the
// one-hot term.
template <class T>
__global__ void __launch_bounds__(kCrossEntropyThreads)
    cross_entropy_backward_kernel(const T* __restrict__ logits,
                                  const std::int32_t* __restrict__ targets,
                                  const T* __restrict__ lse, const T* __restrict__ dloss,
                                  std::int64_t rows, std::int64_t K, bool vectorized,
                                  T* __restrict__ dlogits) {
  constexpr int W = Vec16<T>::width;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const std::int64_t warps = static_cast<std::int64_t>(gridDim.x) * kCrossEntropyWarps;
  for (std::int64_t r = static_cast<std::int64_t>(blockIdx.x) * kCrossEntropyWarps +
                        static_cast<int>(threadIdx.x) / 32;
       r < rows; r += warps) {
    const T* row = logits + r * K;
    T* out = dlogits + r * K;
    // The same words for the whole warp: broadcasts.
    const std::int64_t t = targets[r];
    const T x_t = t >= 0 && t < K ? row[t] : static_cast<T>(NAN);
    const T m = lse[2 * r], log_s = lse[2 * r + 1], g = dloss[r];
    const T l = cross_entropy_loss(m, log_s, x_t);
    if (vectorized) {
      const auto* in_v = reinterpret_cast<const typename Vec16<T>::type*>(row);
      auto* out_v = reinterpret_cast<typename Vec16<T>::type*>(out);
      const std::int64_t count = K / W;
      for (std::int64_t v = lane; v < count; v += 32) {
        Pack<T> x, y;
        x.vector = in_v[v];
#pragma unroll
        for (int j = 0; j < W; ++j)
          y.lane[j] = cross_entropy_gradient(x.lane[j], m, log_s, l, g, v * W + j == t);
        out_v[v] = y.vector;
      }
    } else {
      for (std::int64_t k = lane; k < K; k += 32)
        out[k] = cross_entropy_gradient(row[k], m, log_s, l, g, k == t);
    }
  }
}

}  // namespace latent::kernels
