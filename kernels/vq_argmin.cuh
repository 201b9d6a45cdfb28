// Nearest-codebook argmin: snap every encoder vector to its closest code.
// Docs: docs/vq.md ("Snapping to the nearest code").
//
// Forward. For N rows z_i of Z [N, D] and K codes e_k of a codebook E [K, D]:
//
//     idx_i = argmin_k ‖z_i − e_k‖²,   ties to the lowest k (as torch.argmin).
//
// Expanding the square, ‖z_i − e_k‖² = ‖z_i‖² + ‖e_k‖² − 2·z_i·e_k, and ‖z_i‖² is the same for
// every k, so the search only needs  s_ik = ‖e_k‖² − 2·z_i·e_k : a matrix product Z·Eᵀ plus a
// per-code bias. The fused kernel computes s_ik tile by tile like a GEMM and keeps a running
// (min, index) per row in registers, so the N×K matrix never exists anywhere. When the caller
// asks for the distance, it is recomputed for the winner only, directly as Σ_d (z_id − e_kd)²
// (no cancellation, never negative). There is no backward: the index is piecewise constant;
// gradients go around it (straight-through, src/ops/vq.cpp).
//
// Cost per (row, code) pair: D multiply-adds (2·D FLOPs) and one compare. We count
// FLOPs = 2·N·K·D + 3·N·K (the dot products, then bias, scale and compare). Bytes: Z and E are
// read once from DRAM per pass of the grid (N·D + K·D elements, re-read from L2 by every tile),
// the N indices written: the kernel is compute-bound once D is more than a few elements.
//
// Versions in this file (all validated against the cpu reference in tests/vq_test.cpp and
// timed side by side in bench/vq_bench.cpp):
//   vq_argmin_naive_kernel   one thread per row walks all K codes: the textbook loop
//   vq_argmin_rows_kernel    the second half of the cuBLAS baseline: S = −2·Z·Eᵀ comes from
//                            SGEMM, this kernel takes the row-argmin of ‖e_k‖² + S[i, k]
//   vq_argmin_tiled_kernel   the fused kernel (below): 128 rows × 128 codes per block
//   vq_argmin_merge_kernel   combines the per-split winners when the code range is split
//
// The tiled kernel. A block of 256 threads owns 128 rows of Z and walks the codes in tiles of
// 128 (all of them, or one of `splits` contiguous ranges: with few rows, splitting the codes
// over grid.y keeps every SM busy). The depth D is consumed 8 at a time: each step stages an
// 8×128 slice of Z and of E in shared memory (transposed, so a thread reads 4 consecutive rows
// or codes as one 16-byte word) and every thread accumulates an 8×8 register tile of dot
// products — 64 FMAs for 16 shared-memory loads, the ratio that makes a GEMM compute-bound.
// While it computes, the thread already holds the next slice in registers (loaded from
// global memory before the math), and stores it into the other shared buffer afterwards:
// one barrier per step, and the global loads overlap the FMAs. The thread's 8 rows are
// ty·4 + {0..3} and 64 + ty·4 + {0..3}, its 8 codes tx·4 + {0..3} and 64 + tx·4 + {0..3}
// (tx, ty ∈ [0, 16)): a quarter warp reading 8 consecutive float4s hits 32 distinct banks.
// After the last slice of a code tile the thread folds its 8×8 tile into 8 running
// (min, index) pairs, codes in increasing order with a strict `<`, so the first of equal
// values stays. At the end the 16 threads that share rows (tx = 0..15, one half-warp) merge
// with shuffles, preferring the lower index on equal values. A code whose score is not
// finite never wins; a row whose every score is non-finite (a NaN or Inf in z) gets index −1,
// which the host turns into an error (the op rejects a non-finite codebook before launching).
//
// Accuracy (docs/vq.md, "How exact is the argmin"): s_ik is computed in T with about D + 2
// roundings, so its error is at most δ_ik = γ_{D+2}·(‖e_k‖² + 2‖z_i‖‖e_k‖), γ_n = n·u/(1 − n·u),
// u = 2⁻²⁴ for float. The returned code's true distance exceeds the minimum by at most
// max_k 2·δ_ik: any index that differs from a float64 brute force is such a near-tie.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/grid.cuh"

namespace latent::kernels {

constexpr int kVqThreads = 256;      // threads per block of the tiled kernel
constexpr int kVqTileRows = 128;     // rows of Z per block
constexpr int kVqTileCodes = 128;    // codes per tile
constexpr int kVqTileDepth = 8;      // depth (D) per shared-memory slice
constexpr int kVqNoIndex = 0x7fffffff;  // "no candidate yet": loses every tie

template <class T>
__device__ __forceinline__ T vq_infinity();
template <>
__device__ __forceinline__ float vq_infinity<float>() {
  return __int_as_float(0x7f800000);
}
template <>
__device__ __forceinline__ double vq_infinity<double>() {
  return __longlong_as_double(0x7ff0000000000000LL);
}

template <class T>
__device__ __forceinline__ T vq_nan();
template <>
__device__ __forceinline__ float vq_nan<float>() {
  return __int_as_float(0x7fc00000);
}
template <>
__device__ __forceinline__ double vq_nan<double>() {
  return __longlong_as_double(0x7ff8000000000000LL);
}

// (value, index) beats (best, best_index): smaller, or equal with a lower index. A NaN value
// never wins.
template <class T>
__device__ __forceinline__ bool vq_better(T value, int index, T best, int best_index) {
  return value < best || (value == best && index < best_index);
}

// Exchanges (value, index) with the lane `delta` away (xor): float and index travel as one
// 64-bit word, a double and its index as two shuffles.
__device__ __forceinline__ void vq_shfl_xor_pair(float& value, int& index, int delta,
                                                 float& other, int& other_index) {
  const unsigned long long packed =
      (static_cast<unsigned long long>(__float_as_uint(value)) << 32) |
      static_cast<unsigned>(index);
  const unsigned long long got = __shfl_xor_sync(0xffffffffu, packed, delta);
  other = __uint_as_float(static_cast<unsigned>(got >> 32));
  other_index = static_cast<int>(static_cast<unsigned>(got & 0xffffffffu));
}
__device__ __forceinline__ void vq_shfl_xor_pair(double& value, int& index, int delta,
                                                 double& other, int& other_index) {
  other = __shfl_xor_sync(0xffffffffu, value, delta);
  other_index = __shfl_xor_sync(0xffffffffu, index, delta);
}

// The index to report for a row whose best value is `best`: −1 when it is not finite.
template <class T>
__device__ __forceinline__ std::int32_t vq_checked_index(T best, int index) {
  const T inf = vq_infinity<T>();
  return (best < inf && best > -inf) ? index : -1;
}

// ---------------------------------------------------------------- code norms
// norms[k] = ‖e_k‖², summed over d in order. Grid-stride, one thread per code.
template <class T>
__global__ void vq_code_norms_kernel(const T* __restrict__ codes, std::int64_t K, std::int64_t D,
                                     T* __restrict__ norms) {
  for (std::int64_t k = grid_stride_begin(); k < K;
       k += grid_stride_step()) {
    const T* e = codes + k * D;
    T acc = T(0);
    for (std::int64_t d = 0; d < D; ++d) acc += e[d] * e[d];
    norms[k] = acc;
  }
}

// ---------------------------------------------------------------- naive baseline
// One thread per row; Σ_d (z_d − e_kd)² for every code, straight from global memory.
template <class T>
__global__ void vq_argmin_naive_kernel(const T* __restrict__ z, const T* __restrict__ codes,
                                       std::int64_t N, std::int64_t K, std::int64_t D,
                                       std::int32_t* __restrict__ indices) {
  for (std::int64_t i = grid_stride_begin(); i < N;
       i += grid_stride_step()) {
    const T* row = z + i * D;
    T best = vq_infinity<T>();
    int best_k = kVqNoIndex;
    for (std::int64_t k = 0; k < K; ++k) {
      const T* e = codes + k * D;
      T dist = T(0);
      for (std::int64_t d = 0; d < D; ++d) {
        const T diff = row[d] - e[d];
        dist += diff * diff;
      }
      if (dist < best) {
        best = dist;
        best_k = static_cast<int>(k);
      }
    }
    indices[i] = vq_checked_index(best, best_k);
  }
}

// ---------------------------------------------------------------- cuBLAS baseline, part 2
// One warp per row of scores S [rows, K] (S = −2·Z·Eᵀ from SGEMM): the lowest index of the
// minimum of norms[k] + S[r, k]. Rows are offset by row0 in the output.
template <class T>
__global__ void vq_argmin_rows_kernel(const T* __restrict__ scores, const T* __restrict__ norms,
                                      std::int64_t rows, std::int64_t K, std::int64_t row0,
                                      std::int32_t* __restrict__ indices) {
  const int lane = threadIdx.x % 32;
  const std::int64_t warps_per_block = blockDim.x / 32;
  for (std::int64_t r = blockIdx.x * warps_per_block + threadIdx.x / 32; r < rows;
       r += static_cast<std::int64_t>(gridDim.x) * warps_per_block) {
    const T* s = scores + r * K;
    T best = vq_infinity<T>();
    int best_k = kVqNoIndex;
    for (std::int64_t k = lane; k < K; k += 32) {
      const T value = norms[k] + s[k];
      if (value < best) {
        best = value;
        best_k = static_cast<int>(k);
      }
    }
    for (int delta = 16; delta > 0; delta /= 2) {
      const T other = __shfl_down_sync(0xffffffffu, best, delta);
      const int other_k = __shfl_down_sync(0xffffffffu, best_k, delta);
      if (vq_better(other, other_k, best, best_k)) {
        best = other;
        best_k = other_k;
      }
    }
    if (lane == 0) indices[row0 + r] = vq_checked_index(best, best_k);
  }
}

// ---------------------------------------------------------------- the fused tiled kernel

// Loads this thread's 4 consecutive depths [d0 + (t%2)·4, +4) of row row0 + t/2 of a
// row-major [rows, D] matrix, zero outside it. `vec4`: the matrix is float, 16-byte aligned
// and D % 4 == 0, so the 4 values are one float4.
template <class T>
__device__ __forceinline__ void vq_load_slice(const T* __restrict__ m, std::int64_t rows,
                                              std::int64_t D, std::int64_t row0, std::int64_t d0,
                                              bool vec4, T (&v)[4]) {
  const std::int64_t row = row0 + threadIdx.x / 2;
  const std::int64_t d = d0 + (threadIdx.x % 2) * 4;
  if (row < rows && d < D) {
    const T* p = m + row * D + d;
    if constexpr (sizeof(T) == 4) {
      if (vec4) {
        const float4 q = *reinterpret_cast<const float4*>(p);
        v[0] = q.x;
        v[1] = q.y;
        v[2] = q.z;
        v[3] = q.w;
        return;
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = d + j < D ? p[j] : T(0);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = T(0);
  }
}

// Stores a slice loaded by vq_load_slice into tile[depth][row] (transposed).
template <class T>
__device__ __forceinline__ void vq_store_slice(T (*tile)[kVqTileRows], const T (&v)[4]) {
  const int row = threadIdx.x / 2, d = (threadIdx.x % 2) * 4;
#pragma unroll
  for (int j = 0; j < 4; ++j) tile[d + j][row] = v[j];
}

// Row (or code) offset within a 128 tile of the i-th of a thread's 8 rows (codes).
__device__ __forceinline__ int vq_tile_offset(int t, int i) {
  return (i < 4 ? 0 : 64) + t * 4 + (i & 3);
}

// grid: (ceil(N / 128), splits); block: 256. Split s covers code tiles
// [s·tiles_per_split, min((s+1)·tiles_per_split, ceil(K/128))). With one split the winners go
// straight to `indices` (best_values == nullptr); otherwise split s writes its winner and
// value to best_values / indices at [s·N + row] for vq_argmin_merge_kernel.
template <class T>
__global__ void __launch_bounds__(kVqThreads, sizeof(T) == 4 ? 2 : 1)
    vq_argmin_tiled_kernel(const T* __restrict__ z, const T* __restrict__ codes,
                           const T* __restrict__ norms, std::int64_t N, std::int64_t K,
                           std::int64_t D, std::int64_t tiles_per_split, bool vec4,
                           T* __restrict__ best_values, std::int32_t* __restrict__ indices) {
  __shared__ __align__(16) T z_tile[2][kVqTileDepth][kVqTileRows];
  __shared__ __align__(16) T e_tile[2][kVqTileDepth][kVqTileCodes];

  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * kVqTileRows;
  const std::int64_t code_tiles = (K + kVqTileCodes - 1) / kVqTileCodes;
  const std::int64_t first_tile = static_cast<std::int64_t>(blockIdx.y) * tiles_per_split;
  const std::int64_t last_tile =
      first_tile + tiles_per_split < code_tiles ? first_tile + tiles_per_split : code_tiles;
  const std::int64_t slices = (D + kVqTileDepth - 1) / kVqTileDepth;
  const std::int64_t steps = (last_tile > first_tile ? last_tile - first_tile : 0) * slices;

  T best[8];
  int best_k[8];
  T acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    best[i] = vq_infinity<T>();
    best_k[i] = kVqNoIndex;
#pragma unroll
    for (int j = 0; j < 8; ++j) acc[i][j] = T(0);
  }

  // Prologue: slice 0 of the first tile into buffer 0.
  T z_next[4], e_next[4];
  vq_load_slice(z, N, D, row0, 0, vec4, z_next);
  vq_load_slice(codes, K, D, first_tile * kVqTileCodes, 0, vec4, e_next);
  vq_store_slice(z_tile[0], z_next);
  vq_store_slice(e_tile[0], e_next);
  __syncthreads();

  std::int64_t tile = first_tile, slice = 0;  // what `step` multiplies
  for (std::int64_t step = 0; step < steps; ++step) {
    const int buffer = static_cast<int>(step & 1);
    const bool last_slice = slice == slices - 1;
    const std::int64_t next_tile = last_slice ? tile + 1 : tile;
    const std::int64_t next_slice = last_slice ? 0 : slice + 1;
    const bool prefetch = step + 1 < steps;
    if (prefetch) {  // the next slice, into registers, while this one is multiplied
      const std::int64_t next_d0 = next_slice * kVqTileDepth;
      vq_load_slice(z, N, D, row0, next_d0, vec4, z_next);
      vq_load_slice(codes, K, D, next_tile * kVqTileCodes, next_d0, vec4, e_next);
    }

#pragma unroll
    for (int kk = 0; kk < kVqTileDepth; ++kk) {
      T a[8], b[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        a[i] = z_tile[buffer][kk][vq_tile_offset(ty, i)];
        b[i] = e_tile[buffer][kk][vq_tile_offset(tx, i)];
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) acc[i][j] += a[i] * b[j];
    }

    if (last_slice) {  // fold the finished tile into the running minima, codes ascending
      const std::int64_t code0 = tile * kVqTileCodes;
      T norm[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const std::int64_t k = code0 + vq_tile_offset(tx, j);
        norm[j] = k < K ? norms[k] : vq_infinity<T>();
      }
#pragma unroll
      for (int i = 0; i < 8; ++i) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const T s = norm[j] - T(2) * acc[i][j];
          if (s < best[i]) {
            best[i] = s;
            best_k[i] = static_cast<int>(code0 + vq_tile_offset(tx, j));
          }
          acc[i][j] = T(0);
        }
      }
    }

    if (prefetch) {
      vq_store_slice(z_tile[buffer ^ 1], z_next);
      vq_store_slice(e_tile[buffer ^ 1], e_next);
    }
    __syncthreads();
    tile = next_tile;
    slice = next_slice;
  }

  // The 16 threads with the same ty (lanes 0–15 or 16–31 of one warp) hold the same rows.
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    for (int delta = 8; delta > 0; delta /= 2) {
      T other;
      int other_k;
      vq_shfl_xor_pair(best[i], best_k[i], delta, other, other_k);
      if (vq_better(other, other_k, best[i], best_k[i])) {
        best[i] = other;
        best_k[i] = other_k;
      }
    }
  }
  // Every lane now holds the merged winners; lane tx = i writes row i of the thread's 8.
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    if (tx != i) continue;
    const std::int64_t row = row0 + vq_tile_offset(ty, i);
    if (row >= N) continue;
    if (best_values == nullptr) {
      indices[row] = vq_checked_index(best[i], best_k[i]);
    } else {
      const std::int64_t slot = static_cast<std::int64_t>(blockIdx.y) * N + row;
      best_values[slot] = best[i];
      indices[slot] = best_k[i];
    }
  }
}

// Merges `splits` partial winners per row in split order (splits cover increasing code
// ranges, so keeping the first of equal values keeps the lowest index). Grid-stride over rows.
template <class T>
__global__ void vq_argmin_merge_kernel(const T* __restrict__ best_values,
                                       const std::int32_t* __restrict__ best_indices,
                                       std::int64_t N, std::int64_t splits,
                                       std::int32_t* __restrict__ indices) {
  for (std::int64_t i = grid_stride_begin(); i < N;
       i += grid_stride_step()) {
    T best = vq_infinity<T>();
    int best_k = kVqNoIndex;
    for (std::int64_t s = 0; s < splits; ++s) {
      const T value = best_values[s * N + i];
      const int k = best_indices[s * N + i];
      if (vq_better(value, k, best, best_k)) {
        best = value;
        best_k = k;
      }
    }
    indices[i] = vq_checked_index(best, best_k);
  }
}

// ---------------------------------------------------------------- winner distances
// distances[i] = Σ_d (z_id − e_{idx_i, d})², NaN where idx_i < 0. One warp per row; the lanes
// stride over d and combine with a fixed xor tree, so the result is repeatable.
template <class T>
__global__ void vq_winner_distance_kernel(const T* __restrict__ z, const T* __restrict__ codes,
                                          const std::int32_t* __restrict__ indices,
                                          std::int64_t N, std::int64_t D,
                                          T* __restrict__ distances) {
  const int lane = threadIdx.x % 32;
  const std::int64_t warps_per_block = blockDim.x / 32;
  for (std::int64_t i = blockIdx.x * warps_per_block + threadIdx.x / 32; i < N;
       i += static_cast<std::int64_t>(gridDim.x) * warps_per_block) {
    const std::int32_t k = indices[i];
    T acc = T(0);
    if (k >= 0) {
      const T* row = z + i * D;
      const T* e = codes + static_cast<std::int64_t>(k) * D;
      for (std::int64_t d = lane; d < D; d += 32) {
        const T diff = row[d] - e[d];
        acc += diff * diff;
      }
    }
    for (int delta = 16; delta > 0; delta /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, delta);
    if (lane == 0) distances[i] = k >= 0 ? acc : vq_nan<T>();
  }
}

// ---------------------------------------------------------------- the snap: z_q = E[idx]
// out[i, :] = codes[indices[i], :]. Grid-stride over the N·D outputs; indices were validated
// on the host. Bytes: 2·N·D elements + N indices; no FLOPs.
template <class T>
__global__ void vq_gather_kernel(const T* __restrict__ codes,
                                 const std::int32_t* __restrict__ indices, std::int64_t N,
                                 std::int64_t D, T* __restrict__ out) {
  const std::int64_t total = N * D;
  for (std::int64_t e = grid_stride_begin();
       e < total; e += grid_stride_step()) {
    const std::int64_t i = e / D, d = e - i * D;
    out[e] = codes[static_cast<std::int64_t>(indices[i]) * D + d];
  }
}

}  // namespace latent::kernels
