// Layer normalization (Ba, Kiros, Hinton, "Layer Normalization", 2016) over the last
// dimension: every row of C features (one token of a transformer) is shifted to mean 0 and
// scaled to variance 1, then given a learned per-feature scale γ and offset β. Docs:
// docs/layer_norm.md.
//
// Forward, row r of x [rows, C] (any leading shape flattened into rows), ε > 0:
//   μ      = (1/C) Σ_c x_c
//   σ²     = (1/C) Σ_c (x_c − μ)²                      (biased, as PyTorch)
//   rstd   = 1 / sqrt(σ² + ε)
//   x̂_c    = (x_c − μ)·rstd
//   y_c    = x̂_c·γ_c + β_c                              (γ = 1, β = 0 without the affine part)
// and mean[r] = μ, rstd[r] = rstd are written for the backward pass.
//
// μ and σ² come from ONE pass over the row. Σx² − (Σx)²/C would be one pass too, but it is a
// difference of two large, nearly equal numbers when |μ| ≫ σ (a row at 10⁴ with spread 1
// loses log2(10⁸) ≈ 27 bits: all of float's, and half of double's). Instead each lane keeps
// Welford's running (count n, mean m, M2 = Σ(x − m)²) over the elements it visits, and the
// 32 lanes merge theirs with Chan's parallel formula (welford_merge):
//   n = n_a + n_b,  δ = m_b − m_a,  m = m_a + δ·n_b/n,  M2 = M2_a + M2_b + δ²·n_a·n_b/n
// every term of which is a small quantity of its own, never a difference of large sums. With
// 16-byte loads a lane takes 4 floats (2 doubles) at a time, forms their mean and M2 in
// registers, and merges the group with one division (welford_merge) instead of one per
// element (welford_add, the scalar path). The pass also subtracts the row's first element K
// from every value before the statistics: it costs one add and makes the accumulated means
// small numbers of the row's own spread, so for a row at 10⁴ ± 1 in float32 the statistics
// (and y = ((x − K) − m)·rstd·γ + β, where x − K is exact) keep float's relative accuracy
// with respect to σ, not to |μ|. μ = K + m is rounded once, when it is stored.
//
// Backward, with g = dL/dy, g'_c = g_c·γ_c and the saved μ, rstd (x̂ = (x − μ)·rstd):
//   y = x̂·γ + β and x̂ depends on every x of the row through μ and rstd:
//     ∂x̂_j/∂x_i = rstd·(δ_ij − 1/C − x̂_i·x̂_j/C)
//   (∂μ/∂x_i = 1/C; ∂rstd/∂x_i = −rstd³·(x_i − μ)/C = −rstd²·x̂_i/C), so
//   dx_i = Σ_j g'_j ∂x̂_j/∂x_i = rstd·(g'_i − mean_c(g') − x̂_i·mean_c(g'·x̂))
//   dγ_c = Σ_rows g_c·x̂_c,   dβ_c = Σ_rows g_c
// The backward x̂ is recomputed from the saved μ, which is rounded to T: for a row with
// |μ|/σ ≫ 1 that costs u·|μ|/σ relative in dx and dγ (float32 at 10⁴ ± 1: about 10⁻³),
// as in every implementation that saves μ and rstd (PyTorch's included).
//
// Determinism: no atomics. Per row, each lane walks a fixed set of elements in a fixed
// order and the lanes merge in a fixed shuffle tree (warp_welford, warp_all_sum in kernels/reduce.cuh). dγ and dβ sum
// over rows in two kernels: layer_norm_param_partials_kernel sums fixed chunks of rows
// (layer_norm_chunk_rows: a function of the row count alone) into partials [chunks, C], and
// layer_norm_param_finish_kernel adds each column's partials in chunk order. Same inputs,
// same bits, run after run, whatever the grid.
//
// Precision: float64 data accumulates in double; float32 data accumulates in float (the
// statistics, the row sums of the backward, the column partials), whose error is a few u
// relative to σ thanks to the shift and the merges (the cpu reference accumulates in double).
// The counts n are held in T: exact up to 2^24 elements a row in float32.
//
// Cost per element (float32): forward reads x (4 B) and writes y (4 B), plus 8 B a row for μ
// and rstd and γ, β once (cached); about 12 FLOPs (the shift, the group's mean and M2 ≈ 5,
// its merge ≈ 2, the normalization 4). x is read twice, once per pass, but by the same warp
// right after the first read, from L1/L2: the compulsory traffic is 8 B. Backward reads x
// and g (8 B) and writes dx (4 B) in layer_norm_backward_kernel (≈ 10 FLOPs: g', x̂, the two
// row sums, dx), and the dγ, dβ partials read x and g again (8 B, ≈ 5 FLOPs) plus
// 2·chunks·C words of partials written and read: 20 B against a compulsory 12 B. Every kernel
// is memory-bound by a wide margin.
//
// Launch shape: one warp per row (layer_norm_forward_kernel, layer_norm_backward_kernel),
// kLayerNormWarps rows per block of kLayerNormThreads, grid-stride over rows. A warp is the
// unit that can combine its lanes with shuffles alone: no shared memory, no __syncthreads,
// and any C (lanes stride over the row: lane l takes elements l, l + 32, …, or 16-byte groups
// l, l + 32, … when C % 4 == 0 (2 for double) and the pointers are 16-byte aligned, the
// `Vectorized` instance). Rows of a few dozen to a few thousand features, a transformer's,
// keep a warp busy without idling a whole block on one row. The parameter partials use a
// 2-D grid: x over blocks of kLayerNormThreads columns (a thread per column, so a warp reads
// 128 contiguous bytes of a row), y grid-stride over the row chunks.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/math.cuh"
#include "kernels/reduce.cuh"
#include "kernels/vec16.cuh"

namespace latent::kernels {

constexpr int kLayerNormThreads = 256;                       // threads per block
constexpr int kLayerNormWarps = kLayerNormThreads / kWarp;   // rows per block at a time

// Rows per chunk of the dγ, dβ partials: about 256 chunks, each of 16 to 1024 rows. A
// function of the row count alone, so the summation order never depends on the device.
inline std::int64_t layer_norm_chunk_rows(std::int64_t rows) {
  std::int64_t chunk = (rows + 255) / 256;
  if (chunk < 16) chunk = 16;
  if (chunk > 1024) chunk = 1024;
  return chunk;
}
inline std::int64_t layer_norm_chunks(std::int64_t rows) {
  const std::int64_t chunk = layer_norm_chunk_rows(rows);
  return (rows + chunk - 1) / chunk;
}

// ---------------------------------------------------------------- per row, any backend

// rstd = 1 / sqrt(σ² + ε); σ² ≥ 0 by construction, the max only guards rounding.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T layer_norm_rstd(T variance, T eps) {
  const T v = variance > T(0) ? variance : T(0);
  return T(1) / math_sqrt(v + eps);
}

// dx_i = rstd·(g'_i − mean(g') − x̂_i·mean(g'·x̂)), g' = g·γ.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T layer_norm_dx(T gw, T xhat, T mean_gw, T mean_gw_xhat,
                                                      T rstd) {
  return rstd * (gw - mean_gw - xhat * mean_gw_xhat);
}

// Welford's running statistics of a set of values: count, mean, Σ(x − mean)².
template <class T>
struct WelfordStats {
  T count, mean, m2;
};

// Chan et al.'s merge of the statistics of two disjoint sets.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE WelfordStats<T> welford_merge(const WelfordStats<T>& a,
                                                                    const WelfordStats<T>& b) {
  const T n = a.count + b.count;
  const T weight = n > T(0) ? b.count / n : T(0);  // n_b / n
  const T delta = b.mean - a.mean;
  return {n, a.mean + delta * weight, a.m2 + b.m2 + delta * delta * a.count * weight};
}

// Welford's update with one more value.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE void welford_add(WelfordStats<T>& s, T v) {
  s.count += T(1);
  const T delta = v - s.mean;
  s.mean += delta / s.count;
  s.m2 += delta * (v - s.mean);
}

// ---------------------------------------------------------------- warp combines

constexpr unsigned kLayerNormFullMask = 0xffffffffu;

// Merges the 32 lanes' statistics in a fixed tree (lane l takes lane l + δ for δ = 16 … 1);
// every lane returns lane 0's result.
template <class T>
__device__ __forceinline__ WelfordStats<T> warp_welford(WelfordStats<T> s) {
  for (int delta = kWarp / 2; delta > 0; delta /= 2) {
    WelfordStats<T> other;
    other.count = __shfl_down_sync(kLayerNormFullMask, s.count, delta);
    other.mean = __shfl_down_sync(kLayerNormFullMask, s.mean, delta);
    other.m2 = __shfl_down_sync(kLayerNormFullMask, s.m2, delta);
    s = welford_merge(s, other);
  }
  s.count = __shfl_sync(kLayerNormFullMask, s.count, 0);
  s.mean = __shfl_sync(kLayerNormFullMask, s.mean, 0);
  s.m2 = __shfl_sync(kLayerNormFullMask, s.m2, 0);
  return s;
}

// The first row of this warp and the step between its rows (grid-stride).
__device__ __forceinline__ std::int64_t layer_norm_first_row() {
  return static_cast<std::int64_t>(blockIdx.x) * kLayerNormWarps + threadIdx.x / kWarp;
}
__device__ __forceinline__ std::int64_t layer_norm_row_step() {
  return static_cast<std::int64_t>(gridDim.x) * kLayerNormWarps;
}

// ---------------------------------------------------------------- kernels

// x, y: [rows, cols] contiguous; weight, bias: [cols] or both null (no affine part); mean,
// rstd: [rows]. Vectorized: cols % Vec16<T>::width == 0 and x, y, weight, bias 16-byte aligned.
template <class T, bool Affine, bool Vectorized>
__global__ void __launch_bounds__(kLayerNormThreads)
    layer_norm_forward_kernel(const T* x, const T* weight, const T* bias, T* y, T* mean,
                              T* rstd, std::int64_t rows, std::int64_t cols, T eps) {
  constexpr int W = Vec16<T>::width;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  for (std::int64_t row = layer_norm_first_row(); row < rows; row += layer_norm_row_step()) {
    const T* in = x + row * cols;
    T* out = y + row * cols;
    const T shift = in[0];  // K: every lane reads the same word
    // Pass 1: the statistics of x − K.
    WelfordStats<T> s{T(0), T(0), T(0)};
    if constexpr (Vectorized) {
      const std::int64_t packs = cols / W;
      const auto* in_v = reinterpret_cast<const typename Vec16<T>::type*>(in);
      for (std::int64_t p = lane; p < packs; p += kWarp) {
        Pack<T> pack;
        pack.vector = in_v[p];
        T sum = T(0);
#pragma unroll
        for (int j = 0; j < W; ++j) {
          pack.lane[j] -= shift;
          sum += pack.lane[j];
        }
        WelfordStats<T> group{T(W), sum * (T(1) / T(W)), T(0)};
#pragma unroll
        for (int j = 0; j < W; ++j) {
          const T d = pack.lane[j] - group.mean;
          group.m2 += d * d;
        }
        s = welford_merge(s, group);
      }
    } else {
      for (std::int64_t c = lane; c < cols; c += kWarp) welford_add(s, in[c] - shift);
    }
    s = warp_welford(s);
    const T centre = s.mean;  // the mean of x − K
    const T r = layer_norm_rstd(s.m2 / static_cast<T>(cols), eps);
    if (lane == 0) {
      mean[row] = shift + centre;
      rstd[row] = r;
    }
    // Pass 2: y = ((x − K) − m)·rstd·γ + β, the row again (from L1/L2).
    if constexpr (Vectorized) {
      const std::int64_t packs = cols / W;
      const auto* in_v = reinterpret_cast<const typename Vec16<T>::type*>(in);
      auto* out_v = reinterpret_cast<typename Vec16<T>::type*>(out);
      const auto* w_v = reinterpret_cast<const typename Vec16<T>::type*>(weight);
      const auto* b_v = reinterpret_cast<const typename Vec16<T>::type*>(bias);
      for (std::int64_t p = lane; p < packs; p += kWarp) {
        Pack<T> v;
        v.vector = in_v[p];
        if constexpr (Affine) {
          Pack<T> w, b;
          w.vector = w_v[p];
          b.vector = b_v[p];
#pragma unroll
          for (int j = 0; j < W; ++j) v.lane[j] = ((v.lane[j] - shift) - centre) * r * w.lane[j] + b.lane[j];
        } else {
#pragma unroll
          for (int j = 0; j < W; ++j) v.lane[j] = ((v.lane[j] - shift) - centre) * r;
        }
        out_v[p] = v.vector;
      }
    } else {
      for (std::int64_t c = lane; c < cols; c += kWarp) {
        const T xhat = ((in[c] - shift) - centre) * r;
        if constexpr (Affine) {
          out[c] = xhat * weight[c] + bias[c];
        } else {
          out[c] = xhat;
        }
      }
    }
  }
}

// dx = rstd·(g' − mean(g') − x̂·mean(g'·x̂)) per row, g' = g·γ (γ = 1 without the affine part:
// weight null). x, g, dx: [rows, cols] contiguous; mean, rstd: [rows]. Vectorized: cols %
// Vec16<T>::width == 0 and x, g, weight, dx 16-byte aligned.
template <class T, bool Affine, bool Vectorized>
__global__ void __launch_bounds__(kLayerNormThreads)
    layer_norm_backward_kernel(const T* x, const T* g, const T* weight, const T* mean,
                               const T* rstd, T* dx, std::int64_t rows, std::int64_t cols) {
  constexpr int W = Vec16<T>::width;
  using V = typename Vec16<T>::type;
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  const T inv_cols = T(1) / static_cast<T>(cols);
  for (std::int64_t row = layer_norm_first_row(); row < rows; row += layer_norm_row_step()) {
    const T* in = x + row * cols;
    const T* grad = g + row * cols;
    T* out = dx + row * cols;
    const T mu = mean[row], r = rstd[row];
    // Pass 1: Σ g' and Σ g'·x̂ over the row.
    T sum_gw = T(0), sum_gw_xhat = T(0);
    if constexpr (Vectorized) {
      const std::int64_t packs = cols / W;
      for (std::int64_t p = lane; p < packs; p += kWarp) {
        Pack<T> v, gv, w;
        v.vector = reinterpret_cast<const V*>(in)[p];
        gv.vector = reinterpret_cast<const V*>(grad)[p];
        if constexpr (Affine) w.vector = reinterpret_cast<const V*>(weight)[p];
#pragma unroll
        for (int j = 0; j < W; ++j) {
          T gw = gv.lane[j];
          if constexpr (Affine) gw *= w.lane[j];
          sum_gw += gw;
          sum_gw_xhat += gw * ((v.lane[j] - mu) * r);
        }
      }
    } else {
      for (std::int64_t c = lane; c < cols; c += kWarp) {
        T gw = grad[c];
        if constexpr (Affine) gw *= weight[c];
        sum_gw += gw;
        sum_gw_xhat += gw * ((in[c] - mu) * r);
      }
    }
    const T mean_gw = warp_all_sum(sum_gw) * inv_cols;
    const T mean_gw_xhat = warp_all_sum(sum_gw_xhat) * inv_cols;
    // Pass 2: dx.
    if constexpr (Vectorized) {
      const std::int64_t packs = cols / W;
      for (std::int64_t p = lane; p < packs; p += kWarp) {
        Pack<T> v, gv, w;
        v.vector = reinterpret_cast<const V*>(in)[p];
        gv.vector = reinterpret_cast<const V*>(grad)[p];
        if constexpr (Affine) w.vector = reinterpret_cast<const V*>(weight)[p];
#pragma unroll
        for (int j = 0; j < W; ++j) {
          T gw = gv.lane[j];
          if constexpr (Affine) gw *= w.lane[j];
          v.lane[j] = layer_norm_dx(gw, (v.lane[j] - mu) * r, mean_gw, mean_gw_xhat, r);
        }
        reinterpret_cast<V*>(out)[p] = v.vector;
      }
    } else {
      for (std::int64_t c = lane; c < cols; c += kWarp) {
        T gw = grad[c];
        if constexpr (Affine) gw *= weight[c];
        out[c] = layer_norm_dx(gw, (in[c] - mu) * r, mean_gw, mean_gw_xhat, r);
      }
    }
  }
}

// grid (⌈cols / kLayerNormThreads⌉, any), block kLayerNormThreads. For chunk k (grid-stride
// over blockIdx.y) and column c (one per thread): dweight_partial[k, c] = Σ g·x̂ and
// dbias_partial[k, c] = Σ g over the chunk's rows, in row order; either output may be null.
// With one chunk the partials are the gradients themselves.
template <class T>
__global__ void __launch_bounds__(kLayerNormThreads)
    layer_norm_param_partials_kernel(const T* x, const T* g, const T* mean, const T* rstd,
                                     T* dweight_partial, T* dbias_partial, std::int64_t rows,
                                     std::int64_t cols, std::int64_t chunk_rows,
                                     std::int64_t chunks) {
  const std::int64_t c = static_cast<std::int64_t>(blockIdx.x) * kLayerNormThreads + threadIdx.x;
  if (c >= cols) return;  // no barrier below
  for (std::int64_t k = blockIdx.y; k < chunks; k += gridDim.y) {
    const std::int64_t first = k * chunk_rows;
    const std::int64_t last = first + chunk_rows < rows ? first + chunk_rows : rows;
    T dw = T(0), db = T(0);
    for (std::int64_t row = first; row < last; ++row) {
      const T gv = g[row * cols + c];
      db += gv;
      dw += gv * ((x[row * cols + c] - mean[row]) * rstd[row]);
    }
    if (dweight_partial) dweight_partial[k * cols + c] = dw;
    if (dbias_partial) dbias_partial[k * cols + c] = db;
  }
}

// out[c] = Σ_k partial[k, c] in chunk order; a thread per column, grid-stride.
template <class T>
__global__ void __launch_bounds__(kLayerNormThreads)
    layer_norm_param_finish_kernel(const T* partial, std::int64_t chunks, std::int64_t cols,
                                   T* out) {
  for (std::int64_t c = grid_stride_begin(); c < cols; c += grid_stride_step()) {
    T acc = T(0);
    for (std::int64_t k = 0; k < chunks; ++k) acc += partial[k * cols + c];
    out[c] = acc;
  }
}

}  // namespace latent::kernels
