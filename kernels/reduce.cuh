// Deterministic reductions: sum over any set of dims, and row argmax.
// Docs: docs/architecture.md (backends).
//
// sum: out[o] = Σ_r x[kept(o) + reduced(r)], where kept/reduced map output and reduction
// indices to offsets in x (StridedIndex, so any view reduces without a copy).
//   pass 1: block (o, c) sums the chunk c of output o's range into partial[o, c]
//   pass 2: one block per output sums its partials in chunk order
// (with many outputs and short ranges, one thread per output sums its range instead).
// Within a block every thread walks a fixed stride of the range, then a warp-shuffle tree
// and a shared-memory tree combine the threads in a fixed order. The grouping depends only
// on the sizes, never on timing, so results are bitwise repeatable run to run — no atomics.
// Bytes: 1 read per input element (+ 2·partials); FLOPs: 1 add per element.
//
// argmax_rows: one warp per row of a contiguous [rows, cols] matrix; each lane keeps a
// running (value, index), lanes merge with shuffles preferring the lower index on ties.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/grid.cuh"
#include "kernels/indexing.cuh"

namespace latent::kernels {

constexpr int kReduceThreads = 256;
constexpr int kWarp = 32;

// Σ and max of the 32 lanes' values by a butterfly of shuffles: every lane returns the same
// result (its bits fixed by the tree, not by timing). All 32 lanes must call it.
template <class T>
__device__ __forceinline__ T warp_all_sum(T value) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2)
    value += __shfl_xor_sync(0xffffffffu, value, delta);
  return value;
}
template <class T>
__device__ __forceinline__ T warp_all_max(T value) {
#pragma unroll
  for (int delta = kWarp / 2; delta > 0; delta /= 2) {
    const T other = __shfl_xor_sync(0xffffffffu, value, delta);
    value = other > value ? other : value;
  }
  return value;
}

// Sums `value` over the block; the result is valid in thread 0.
template <class T>
__device__ T block_sum(T value) {
  __shared__ T warp_sums[kReduceThreads / kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  for (int delta = kWarp / 2; delta > 0; delta /= 2)
    value += __shfl_down_sync(0xffffffffu, value, delta);
  if (lane == 0) warp_sums[warp] = value;
  __syncthreads();
  T total = T(0);
  if (warp == 0) {
    const int warps = (blockDim.x + kWarp - 1) / kWarp;
    total = lane < warps ? warp_sums[lane] : T(0);
    for (int delta = kWarp / 2; delta > 0; delta /= 2)
      total += __shfl_down_sync(0xffffffffu, total, delta);
  }
  __syncthreads();  // warp_sums may be reused by the caller's next block_sum
  return total;
}

// grid: outputs · chunks blocks; block: kReduceThreads. Block b sums chunk c = b % chunks of
// output o = b / chunks into partial[b] (partial may be the output itself when chunks = 1).
// Index: std::int64_t, or std::int32_t when every extent fits (index32_fits).
template <class T, class Index>
__global__ void sum_partials_kernel(const T* x, StridedIndexT<Index> kept,
                                    StridedIndexT<Index> reduced, Index reduce_count,
                                    Index chunks, Index chunk, T* partial) {
  const Index block = static_cast<Index>(blockIdx.x);
  const Index o = block / chunks, c = block % chunks;
  const Index base = kept.offset(o);
  const Index begin = c * chunk;
  const Index end = begin + chunk < reduce_count ? begin + chunk : reduce_count;
  T acc = T(0);
  for (Index r = begin + static_cast<Index>(threadIdx.x); r < end;
       r += static_cast<Index>(blockDim.x))
    acc += x[base + reduced.offset(r)];
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

// Many outputs, short reductions (e.g. a bias gradient over a small batch): one thread per
// output walks its range sequentially. Grid-stride over outputs.
template <class T, class Index>
__global__ void sum_per_thread_kernel(const T* x, StridedIndexT<Index> kept,
                                      StridedIndexT<Index> reduced, Index reduce_count,
                                      Index outputs, T* out) {
  for (Index o = static_cast<Index>(grid_stride_begin()); o < outputs;
       o += static_cast<Index>(grid_stride_step())) {
    const Index base = kept.offset(o);
    T acc = T(0);
    for (Index r = 0; r < reduce_count; ++r) acc += x[base + reduced.offset(r)];
    out[o] = acc;
  }
}

// grid: outputs (grid-stride); block: kReduceThreads. out[o] = Σ_c partial[o, c].
template <class T>
__global__ void sum_finish_kernel(const T* partial, std::int64_t chunks, std::int64_t outputs,
                                  T* out) {
  for (std::int64_t o = blockIdx.x; o < outputs; o += gridDim.x) {
    T acc = T(0);
    for (std::int64_t c = threadIdx.x; c < chunks; c += blockDim.x) acc += partial[o * chunks + c];
    acc = block_sum(acc);
    if (threadIdx.x == 0) out[o] = acc;
  }
}

// Does (value, index) beat (best, best_index) in an argmax? NaN beats every number (as in
// torch.argmax); among equals, and among NaNs, the lower index wins.
template <class T>
__device__ __forceinline__ bool argmax_beats(T value, std::int64_t index, T best,
                                             std::int64_t best_index) {
  const bool value_nan = value != value, best_nan = best != best;
  if (value_nan || best_nan) return value_nan && (!best_nan || index < best_index);
  return value > best || (value == best && index < best_index);
}

// One warp per row; block: 8 warps. out[row] = the lowest index of the row's maximum.
template <class T>
__global__ void argmax_rows_kernel(const T* x, std::int64_t rows, std::int64_t cols,
                                   std::int32_t* out) {
  const int lane = threadIdx.x % kWarp;
  const std::int64_t warps_per_block = blockDim.x / kWarp;
  for (std::int64_t row = blockIdx.x * warps_per_block + threadIdx.x / kWarp; row < rows;
       row += static_cast<std::int64_t>(gridDim.x) * warps_per_block) {
    const T* values = x + row * cols;
    T best = lane < cols ? values[lane] : values[0];
    std::int64_t best_index = lane < cols ? lane : 0;
    for (std::int64_t c = lane + kWarp; c < cols; c += kWarp) {
      if (argmax_beats(values[c], c, best, best_index)) {
        best = values[c];
        best_index = c;
      }
    }
    for (int delta = kWarp / 2; delta > 0; delta /= 2) {
      const T other = __shfl_down_sync(0xffffffffu, best, delta);
      const std::int64_t other_index = __shfl_down_sync(0xffffffffu, best_index, delta);
      if (argmax_beats(other, other_index, best, best_index)) {
        best = other;
        best_index = other_index;
      }
    }
    if (lane == 0) out[row] = static_cast<std::int32_t>(best_index);
  }
}

}  // namespace latent::kernels
