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
// The slices' rows are padded to 132 words so that the transposed stores are conflict-free
// too (vq_store_word). The loads come in two template instances (float4, scalar) chosen by
// the host, the slice loop counts in 32 bits, the first and last slices of each tile are
// peeled off the inner loop (the first starts the sums, so nothing clears the accumulators;
// the fold runs after the last), and with an even number of slices per tile the inner loop
// runs two slices at fixed shared addresses (docs/vq.md, "The machine code").
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

#include <cmath>
#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/divmod.cuh"
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

// How the tiled kernel loads its slices (a template parameter: one instance per path, so
// the inner loop holds no run-time branch between them; the host picks the path).
constexpr int kVqLoadScalar = 0;  // any D and alignment: 4 scalar loads, each checked d < D
constexpr int kVqLoadVec4 = 1;    // float, 16-byte aligned, D % 4 == 0: one float4, checked d < D

// Shared slices are [depth][row] with a row pitch of 128 + 4 words: the 4 words of padding
// put the two depth halves (t % 2 = 0, 1) of a warp's stores 16 banks apart (see
// vq_store_word), so the transposed stores have no bank conflict; the 16-byte reads of the
// inner loop stay aligned (132·4 bytes is a multiple of 16).
constexpr int kVqTilePitch = kVqTileRows + 4;

// Row (or code) offset within a 128 tile of the i-th of a thread's 8 rows (codes).
LATENT_HOST_DEVICE LATENT_FORCEINLINE constexpr int vq_tile_offset(int t, int i) {
  return (i < 4 ? 0 : 64) + t * 4 + (i & 3);
}

// The shared word (in a [kVqTileDepth][kVqTilePitch] slice) that thread `thread` stores its
// j-th loaded value to: row (or code) thread / 2, depth (thread % 2)·4 + j. In one warp, for
// each j: the even lanes write 16 consecutive words at depth j, the odd lanes 16 at depth
// 4 + j, 4·132 ≡ 16 (mod 32) words further: banks b..b+15 and b+16..b+31, all 32 distinct
// (tests/vq_test.cpp, TiledSharedAccessesHaveNoBankConflicts, checks every warp and j).
// (`pitch` is a parameter only so that the test can show the unpadded 128's 2-way conflict.)
LATENT_HOST_DEVICE LATENT_FORCEINLINE constexpr int vq_store_word(int thread, int j,
                                                                  int pitch = kVqTilePitch) {
  return ((thread % 2) * 4 + j) * pitch + thread / 2;
}

// The first shared word of the 16-byte read of the inner loop: depth kk, the 4 rows (codes)
// t·4 + half·64 + {0..3} of thread coordinate t (ty for rows, tx for codes).
// In one warp the rows' reads are 2 distinct addresses (two ty, each broadcast to 16 lanes)
// and the codes' 16 (tx = 0..15): each quarter warp's 8 lanes read 8 consecutive float4s,
// 32 distinct banks (checked by the same test).
LATENT_HOST_DEVICE LATENT_FORCEINLINE constexpr int vq_read_word(int t, int kk, int half) {
  return kk * kVqTilePitch + vq_tile_offset(t, half * 4);
}

// Loads this thread's 4 consecutive depths of one slice: p[ds + j], j = 0..3, zero where
// ds + j ≥ limit. `p` already points at the thread's first depth (row start + (t % 2)·4) and
// limit = D − (t % 2)·4, so the slice start ds and the loop around it are the same for every
// thread of the block.
template <class T, int Load>
__device__ __forceinline__ void vq_load_slice(const T* __restrict__ p, int ds, int limit,
                                              T (&v)[4]) {
  if constexpr (Load != kVqLoadScalar) {
    static_assert(sizeof(T) == 4, "the vector paths are float only");
    float4 q = make_float4(0.f, 0.f, 0.f, 0.f);
    if (ds < limit) q = *reinterpret_cast<const float4*>(p + ds);
    v[0] = q.x;
    v[1] = q.y;
    v[2] = q.z;
    v[3] = q.w;
  } else {
    const T* q = p + ds;
    const int n = limit - ds;  // values of the 4 that lie inside the row
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = j < n ? q[j] : T(0);
  }
}

// `at` = the slice plus vq_store_word(threadIdx.x, 0); value j goes kVqTilePitch·j further.
template <class T>
__device__ __forceinline__ void vq_store_slice(T* __restrict__ at, const T (&v)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) at[j * kVqTilePitch] = v[j];
}

// acc[i][j] += Σ_kk a(kk, row i)·b(kk, code j) over one shared slice: 64 FMAs per depth for
// 4 16-byte shared reads. zs, es: the slices of Z and E, already offset by the thread's
// ty·4 and tx·4 (so every read is a register plus an immediate). First: the tile's first
// slice, whose first depth starts the sums, acc = 0 + a·b — the same expression and value as
// adding to a cleared accumulator, with no instructions to clear it.
template <bool First = false, class T>
__device__ __forceinline__ void vq_slice_fma(const T* __restrict__ zs, const T* __restrict__ es,
                                             T (&acc)[8][8]) {
#pragma unroll
  for (int kk = 0; kk < kVqTileDepth; ++kk) {
    T a[8], b[8];
    if constexpr (sizeof(T) == 4) {  // 16-byte reads: every slice row and t·4 are aligned
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float4 p = *reinterpret_cast<const float4*>(zs + vq_read_word(0, kk, h));
        const float4 q = *reinterpret_cast<const float4*>(es + vq_read_word(0, kk, h));
        a[h * 4 + 0] = p.x, a[h * 4 + 1] = p.y, a[h * 4 + 2] = p.z, a[h * 4 + 3] = p.w;
        b[h * 4 + 0] = q.x, b[h * 4 + 1] = q.y, b[h * 4 + 2] = q.z, b[h * 4 + 3] = q.w;
      }
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        a[i] = zs[vq_read_word(0, kk, i / 4) + i % 4];
        b[i] = es[vq_read_word(0, kk, i / 4) + i % 4];
      }
    }
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if (First && kk == 0) {
          acc[i][j] = T(0) + a[i] * b[j];
        } else {
          acc[i][j] += a[i] * b[j];
        }
      }
  }
}

// The shared memory of the tiled kernel: two buffers of kVqBuffer words, each a slice of Z
// then a slice of E. While one buffer is multiplied, the other receives the next slice.
constexpr int kVqSlice = kVqTileDepth * kVqTilePitch;
constexpr int kVqBuffer = 2 * kVqSlice;

// One step of the slice pipeline: load the slice at depth ds of the rows zp and ep into
// registers, multiply the shared slice at (zr, er) into acc, store the loaded slice at zw
// (its Z half; the E half follows kVqSlice words later) when `store`, then the barrier.
template <bool First, class T, int Load>
__device__ __forceinline__ void vq_slice_step(const T* __restrict__ zp, const T* __restrict__ ep,
                                              int ds, int limit, const T* __restrict__ zr,
                                              const T* __restrict__ er, T* __restrict__ zw,
                                              bool store, T (&acc)[8][8]) {
  T z_next[4], e_next[4];
  vq_load_slice<T, Load>(zp, ds, limit, z_next);
  vq_load_slice<T, Load>(ep, ds, limit, e_next);
  vq_slice_fma<First>(zr, er, acc);
  if (store) {
    vq_store_slice(zw, z_next);
    vq_store_slice(zw + kVqSlice, e_next);
  }
  __syncthreads();
}

// The last slice of a tile when S is odd: it lies in buffer 0, and the next tile's first slice
// goes into buffer 0 too (so that every tile starts there), after a barrier that waits for
// every thread to have read it.
template <class T, int Load>
__device__ __forceinline__ void vq_slice_step_in_place(const T* __restrict__ zp,
                                                       const T* __restrict__ ep, int ds,
                                                       int limit, const T* __restrict__ zr,
                                                       const T* __restrict__ er,
                                                       T* __restrict__ zw, bool store,
                                                       T (&acc)[8][8]) {
  T z_next[4], e_next[4];
  vq_load_slice<T, Load>(zp, ds, limit, z_next);
  vq_load_slice<T, Load>(ep, ds, limit, e_next);
  vq_slice_fma<false>(zr, er, acc);
  __syncthreads();
  if (store) {
    vq_store_slice(zw, z_next);
    vq_store_slice(zw + kVqSlice, e_next);
  }
  __syncthreads();
}

// s = norm − 2·acc, rounded once: the explicit fma on both sides (one FFMA on a GPU), the
// same value as the two-step form (2·acc is exact) unless 2·acc overflows.
template <class T>
__device__ __forceinline__ T vq_score(T norm, T acc) {
#if defined(__CUDA_ARCH__)
  return fma(T(-2), acc, norm);
#else
  return std::fma(T(-2), acc, norm);
#endif
}

// Blocks per SM the tiled kernel is compiled for (its register budget: 2 blocks of 256 threads
// leave 128 registers a thread). The float4 path with 32-bit offsets fits 128 with no spill;
// with 64-bit offsets (N·D or (K + 128)·D ≥ 2^31: inputs of 8 GB and more) it needs a few
// more, and the scalar path (D % 4 ≠ 0 or misaligned) and double more still: those run
// 1 block per SM rather than spill.
template <class T, int Load, class I>
constexpr int vq_tiled_blocks_per_sm() {
  return sizeof(T) == 4 && Load == kVqLoadVec4 && sizeof(I) == 4 ? 2 : 1;
}

// grid: (ceil(N / 128), splits); block: 256. Split s covers code tiles
// [s·tiles_per_split, min((s+1)·tiles_per_split, ceil(K/128))). With one split the winners go
// straight to `indices` (best_values == nullptr); otherwise split s writes its winner and
// value to best_values / indices at [s·N + row] for vq_argmin_merge_kernel.
// Load: kVqLoadScalar or kVqLoadVec4 (above). I: the type of the row and code offsets
// (row·D, code·D: once per tile), std::int32_t when N·D and (K + 128)·D fit in it (the host
// checks), else std::int64_t; the slice loop always counts in 32 bits.
// Rows past N and codes past K load the last row / code (clamped: always in bounds, so the
// loop needs no row check); those rows are never written and those codes get the norm +∞,
// so they never win.
//
// Loop structure, per code tile of S = ceil(D / 8) slices, each slice one vq_slice_step
// (prefetch the next slice into registers, multiply this one, store the prefetched one into
// the other buffer, one barrier): the first slice, whose first depth starts the sums (no
// instructions clear the accumulators), then the middle slices in an inner loop, then the
// last slice, which prefetches slice 0 of the next tile, and the fold after its barrier.
// Three loops over the tiles, one per shape, chosen once per launch: S even (every tile
// starts in buffer 0, so the inner loop, unrolled by two, reads and writes at fixed shared
// addresses: register + immediate, no address arithmetic), S odd ≥ 3 (the same, its last
// slice storing the next tile's first slice in place behind a second barrier), and S = 1
// (the buffers alternate from tile to tile). Machine code per slice: docs/vq.md, "The machine code",
// measured by tools/vq_argmin_sass.py.
//
template <class T, int Load, class I>
__global__ void __launch_bounds__(kVqThreads, vq_tiled_blocks_per_sm<T, Load, I>())
    vq_argmin_tiled_kernel(const T* __restrict__ z, const T* __restrict__ codes,
                           const T* __restrict__ norms, I N, I K, I D, I tiles_per_split,
                           T* __restrict__ best_values, std::int32_t* __restrict__ indices) {
  __shared__ __align__(16) T smem[2 * kVqBuffer];

  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const I row0 = static_cast<I>(blockIdx.x) * kVqTileRows;
  // Codes, code tiles and depths count in 32 bits (K, D < 2^31 − 128: the host checks).
  const int codes_n = static_cast<int>(K);
  const int code_tiles = (codes_n + kVqTileCodes - 1) / kVqTileCodes;
  const int first_tile = static_cast<int>(blockIdx.y) * static_cast<int>(tiles_per_split);
  const int last_tile = first_tile + static_cast<int>(tiles_per_split) < code_tiles
                            ? first_tile + static_cast<int>(tiles_per_split)
                            : code_tiles;

  // What this thread loads: row (code) threadIdx.x / 2 of the tile, depths ld + [0, 4) of
  // each slice; its pointers already include ld, so the slice start ds is block-uniform.
  const int store0 = vq_store_word(static_cast<int>(threadIdx.x), 0);
  const I load_row = static_cast<I>(threadIdx.x / 2);
  const int ld = static_cast<int>(threadIdx.x % 2) * 4;
  const int depth = static_cast<int>(D);  // D < 2^31 − 8 (the host checks)
  const int limit = depth - ld;
  const I z_row = row0 + load_row < N ? row0 + load_row : N - 1;
  const T* __restrict__ zp = z + (z_row * D + ld);
  auto code_row = [&](int tile) {
    const int k = tile * kVqTileCodes + static_cast<int>(load_row);
    return codes + (static_cast<I>(k < codes_n ? k : codes_n - 1) * D + ld);
  };

  T best[8];
  int best_k[8];
  T acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    best[i] = vq_infinity<T>();
    best_k[i] = kVqNoIndex;
  }

  // Fold a finished tile into the running minima, codes ascending, strict `<`.
  auto fold = [&](int tile) {
    const int code0 = tile * kVqTileCodes;
    T norm[8];
    if (code0 + kVqTileCodes <= codes_n) {  // a whole tile
      const T* np = norms + code0 + tx * 4;
      if constexpr (sizeof(T) == 4) {  // two 16-byte loads (the host checks the alignment)
        const float4 lo = *reinterpret_cast<const float4*>(np);
        const float4 hi = *reinterpret_cast<const float4*>(np + 64);
        norm[0] = lo.x, norm[1] = lo.y, norm[2] = lo.z, norm[3] = lo.w;
        norm[4] = hi.x, norm[5] = hi.y, norm[6] = hi.z, norm[7] = hi.w;
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) norm[j] = np[(j < 4 ? 0 : 64) + (j & 3)];
      }
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int k = code0 + vq_tile_offset(tx, j);
        norm[j] = k < codes_n ? norms[k] : vq_infinity<T>();
      }
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int k = code0 + vq_tile_offset(tx, j);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const T s = vq_score(norm[j], acc[i][j]);
        if (s < best[i]) {
          best[i] = s;
          best_k[i] = k;
        }
      }
    }
  };

  if (first_tile < last_tile) {
    // Prologue: slice 0 of the first tile into buffer 0.
    {
      T z_next[4], e_next[4];
      vq_load_slice<T, Load>(zp, 0, limit, z_next);
      vq_load_slice<T, Load>(code_row(first_tile), 0, limit, e_next);
      vq_store_slice(smem + store0, z_next);
      vq_store_slice(smem + kVqSlice + store0, e_next);
      __syncthreads();
    }
    // Where this thread reads (rows ty·4…, codes tx·4… of buffer 0) and stores.
    const T* __restrict__ zr = smem + vq_read_word(ty, 0, 0);
    const T* __restrict__ er = smem + kVqSlice + vq_read_word(tx, 0, 0);
    T* __restrict__ zw = smem + store0;
    const int slices = (depth + kVqTileDepth - 1) / kVqTileDepth;  // S ≥ 1
    const T* __restrict__ ep = code_row(first_tile);

    if (slices % 2 == 0) {
      // Even S: every tile starts in buffer 0 and slice s lies in buffer s % 2, so the
      // inner loop, unrolled by two, reads and writes at fixed addresses.
      for (int tile = first_tile; tile < last_tile; ++tile) {
        const bool more = tile + 1 < last_tile;
        vq_slice_step<true, T, Load>(zp, ep, kVqTileDepth, limit, zr, er, zw + kVqBuffer, true,
                                     acc);
        // Slices (1, 2), (3, 4), …, (S − 3, S − 2).
        for (int ds = 2 * kVqTileDepth; ds < depth - kVqTileDepth; ds += 2 * kVqTileDepth) {
          vq_slice_step<false, T, Load>(zp, ep, ds, limit, zr + kVqBuffer, er + kVqBuffer, zw,
                                        true, acc);
          vq_slice_step<false, T, Load>(zp, ep, ds + kVqTileDepth, limit, zr, er,
                                        zw + kVqBuffer, true, acc);
        }
        // Slice S − 1 (buffer 1), prefetching slice 0 of the next tile into buffer 0. After
        // the split's last tile this loads the last tile again, and drops it.
        ep = code_row(more ? tile + 1 : tile);
        vq_slice_step<false, T, Load>(zp, ep, 0, limit, zr + kVqBuffer, er + kVqBuffer, zw, more,
                                      acc);
        fold(tile);
      }
    } else {
      if (slices == 1) {
        // One slice per tile, prefetching slice 0 of the next tile: the buffers alternate
        // from tile to tile; `rd` is the one being multiplied.
        int rd = 0;
        for (int tile = first_tile; tile < last_tile; ++tile) {
          const bool more = tile + 1 < last_tile;
          ep = code_row(more ? tile + 1 : tile);
          vq_slice_step<true, T, Load>(zp, ep, 0, limit, zr + rd, er + rd,
                                       zw + (kVqBuffer - rd), more, acc);
          rd = kVqBuffer - rd;
          fold(tile);
        }
      } else {
        // Odd S ≥ 3: as for even S every tile starts in buffer 0 and slice s lies in buffer
        // s % 2 (fixed addresses); the last slice, in buffer 0, hands buffer 0 to the next
        // tile's first slice behind one more barrier.
        for (int tile = first_tile; tile < last_tile; ++tile) {
          const bool more = tile + 1 < last_tile;
          vq_slice_step<true, T, Load>(zp, ep, kVqTileDepth, limit, zr, er, zw + kVqBuffer,
                                       true, acc);
          // Slices (1, 2), (3, 4), …, (S − 4, S − 3).
          for (int s = 2; s + 1 <= slices - 2; s += 2) {
            vq_slice_step<false, T, Load>(zp, ep, s * kVqTileDepth, limit, zr + kVqBuffer,
                                          er + kVqBuffer, zw, true, acc);
            vq_slice_step<false, T, Load>(zp, ep, (s + 1) * kVqTileDepth, limit, zr, er,
                                          zw + kVqBuffer, true, acc);
          }
          // Slice S − 2 (buffer 1), storing slice S − 1 into buffer 0.
          vq_slice_step<false, T, Load>(zp, ep, (slices - 1) * kVqTileDepth, limit,
                                        zr + kVqBuffer, er + kVqBuffer, zw, true, acc);
          // Slice S − 1 (buffer 0), then slice 0 of the next tile into buffer 0.
          ep = code_row(more ? tile + 1 : tile);
          vq_slice_step_in_place<T, Load>(zp, ep, 0, limit, zr, er, zw, more, acc);
          fold(tile);
        }
      }
    }
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
    const I row = row0 + vq_tile_offset(ty, i);
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
// out[i, :] = codes[indices[i], :]. Grid-stride over the N·D outputs (`depth` divides by
// D). An index outside [0, K), which the op's device-side check reports, gives a row of NaN
// instead of a read outside the codebook. Bytes: 2·N·D elements + N indices; no FLOPs.
template <class T>
__global__ void vq_gather_kernel(const T* __restrict__ codes,
                                 const std::int32_t* __restrict__ indices, std::int64_t N,
                                 std::int64_t K, FastDivmod depth, T* __restrict__ out) {
  const std::int64_t D = depth.divisor;
  const std::int64_t total = N * D;
  for (std::int64_t e = grid_stride_begin();
       e < total; e += grid_stride_step()) {
    std::int64_t i, d;
    depth.divmod(e, i, d);
    const std::int32_t k = indices[i];
    out[e] = k >= 0 && k < K ? codes[static_cast<std::int64_t>(k) * D + d]
                             : static_cast<T>(NAN);
  }
}

}  // namespace latent::kernels
