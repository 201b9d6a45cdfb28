// Finite scalar quantization (FSQ, Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made
// Simple", ICLR 2024): every channel of a d-channel latent vector is squashed into a bounded
// range and rounded to one of L_c levels. The vector of rounded values is the code; read as a
// mixed-radix number it is the code's index in an implicit codebook of L_1·L_2·…·L_d entries,
// a codebook that is never stored and so can neither collapse nor go stale. Docs: docs/fsq.md.
//
// Forward, channel c with L = L_c levels and h = ⌊L/2⌋ (the standard variant):
//   half   = (L − 1)(1 + ε)/2,   ε = 1e-3
//   offset = 1/2 for even L, 0 for odd L
//   shift  = atanh(offset / half)                      (so that b(0) = 0)
//   b      = tanh(z + shift)·half − offset             ∈ (−h − ½, L − 1 − h + ½)
//   r      = round-half-to-even(b)                     ∈ {−h, …, L − 1 − h}
//   digit  = r + h                                     ∈ {0, …, L − 1}
//   code   = r / h                                     ∈ [−1, 1]
// The symmetric variant (every level set symmetric around 0, even L included):
//   digit  = ⌊(L − 1)(tanh(z) + 1)/2 + ½⌋,  code = (2·digit − (L − 1)) / (L − 1)
// Both: index = Σ_c digit_c · basis_c with basis = (1, L_1, L_1·L_2, …); decoding inverts it,
// digit_c = ⌊index / basis_c⌋ mod L_c. Every code is computed from its integer digit by one
// correctly rounded division, so quantizing and decoding give bitwise-equal codes.
//
// Backward: rounding passes the gradient straight through (its derivative is taken as 1),
// so dL/dz = dL/dcode · d(b/h)/dz = dL/dcode · (half/h)·(1 − tanh²(z + shift)); for the
// symmetric variant dL/dz = dL/dcode · (1 − tanh²(z)).
//
// Cost per element (float32): forward reads 4 bytes of z and writes 4 bytes of code, plus
// 4 bytes of index per row of d elements; about 25 FLOPs (a tanh, a multiply-add, a round,
// a division, an integer multiply-add). Backward reads 8 bytes and writes 4, about 20 FLOPs.
// Memory-bound by a wide margin, so what matters is moving the bytes once, coalesced.
//
// Launch shape: one CUDA thread owns one row (one latent vector), which makes the index a
// private sum and keeps every thread on the same channel c at the same time (the per-channel
// constants are read uniformly). Rows of d elements do not line up with 16-byte vectors, so
// a block of kFsqTileRows threads stages a tile of kFsqTileRows rows through shared memory:
// the tile moves between global and shared memory as 16-byte vectors, fully coalesced, and
// the threads then work on their rows in shared memory. One padding slot after every 128
// bytes of tile keeps "thread t reads element t·d + c" free of bank conflicts. Tiles are
// walked grid-stride, so one launch covers any number of rows.
//
// Versions: fsq_quantize_kernel writes codes and indices in one pass (the fused kernel); with
// indices == nullptr it writes codes only, and followed by fsq_codes_to_indices_kernel it is
// the unfused two-pass composition that bench/fsq_bench.cpp measures against the fused one.
#pragma once

#include "kernels/check.cuh"
#include "kernels/device.cuh"
#include "kernels/math.cuh"
#include "kernels/vec16.cuh"

#include <cmath>
#include <cstdint>
#include <vector>

namespace latent::kernels {

constexpr int kFsqMaxDims = 32;      // levels ≥ 2 with a product inside int32 allow at most 30
constexpr int kFsqTileRows = 128;    // rows per tile = threads per block
constexpr double kFsqEpsilon = 1e-3;

// The per-channel constants, computed once on the host (fsq_constants) and passed by value:
// the cpu backend and every kernel use the very same numbers.
template <class T>
struct FsqConstants {
  int dims;
  bool symmetric;
  std::int32_t levels[kFsqMaxDims];
  std::int32_t basis[kFsqMaxDims];       // mixed-radix place values (1, L_1, L_1·L_2, …)
  std::int32_t half_width[kFsqMaxDims];  // h = ⌊L/2⌋
  T half[kFsqMaxDims];                   // (L − 1)(1 + ε)/2
  T offset[kFsqMaxDims];                 // ½ for even L, else 0
  T shift[kFsqMaxDims];                  // atanh(offset / half); 0 when symmetric
  T slope[kFsqMaxDims];                  // half / h; 1 when symmetric
};

// Host side: levels were validated by the caller (each ≥ 2, product inside int32).
template <class T>
inline FsqConstants<T> fsq_constants(const std::vector<std::int64_t>& levels, bool symmetric) {
  FsqConstants<T> k{};
  k.dims = static_cast<int>(levels.size());
  k.symmetric = symmetric;
  std::int64_t place = 1;
  for (int c = 0; c < k.dims; ++c) {
    const std::int64_t L = levels[c];
    const double half = static_cast<double>(L - 1) * (1.0 + kFsqEpsilon) / 2.0;
    const double offset = L % 2 == 0 ? 0.5 : 0.0;
    k.levels[c] = static_cast<std::int32_t>(L);
    k.basis[c] = static_cast<std::int32_t>(place);
    k.half_width[c] = static_cast<std::int32_t>(L / 2);
    k.half[c] = static_cast<T>(half);
    k.offset[c] = static_cast<T>(offset);
    // atanh, not tan: the FSQ paper's published code writes tan(offset / half), which agrees
    // with atanh only to third order in offset/half: b(0) is then -1.4e-5 for L = 8 but
    // -0.04 for L = 2 (docs/fsq.md). (1 + ε), not the paper's (1 − ε): with (1 − ε),
    // offset/half = 0.5/0.4995 > 1 for L = 2 and atanh has no value.
    k.shift[c] = symmetric ? T(0) : static_cast<T>(std::atanh(offset / half));
    k.slope[c] = symmetric ? T(1) : static_cast<T>(half / static_cast<double>(L / 2));
    place *= L;
  }
  return k;
}

// ---------------------------------------------------------------- one channel, any backend
// Clamps to [0, top]; NaN goes to 0 (fmax returns its other operand).
LATENT_HOST_DEVICE inline std::int32_t fsq_clamp_digit(float x, float top) {
  return static_cast<std::int32_t>(fminf(fmaxf(x, 0.0f), top));
}
LATENT_HOST_DEVICE inline std::int32_t fsq_clamp_digit(double x, double top) {
  return static_cast<std::int32_t>(fmin(fmax(x, 0.0), top));
}

// The level (0 … L − 1) that z falls on in channel c. The clamp only matters for NaN and for
// L > 1000, where ε·(L − 1)/2 ≥ ½ would let the bound round one level past the end.
template <class T>
LATENT_HOST_DEVICE inline std::int32_t fsq_digit(const FsqConstants<T>& k, int c, T z) {
  const T top = static_cast<T>(k.levels[c] - 1);
  if (k.symmetric) {
    const T t = math_tanh(z);
    return fsq_clamp_digit(math_floor(top * (t + T(1)) * T(0.5) + T(0.5)), top);
  }
  const T bound = math_tanh(z + k.shift[c]) * k.half[c] - k.offset[c];
  return fsq_clamp_digit(math_rint(bound) + static_cast<T>(k.half_width[c]), top);
}

// The code value of a level: an exact integer over an exact integer, one rounding.
template <class T>
LATENT_HOST_DEVICE inline T fsq_code(const FsqConstants<T>& k, int c, std::int32_t digit) {
  if (k.symmetric) {
    const std::int32_t top = k.levels[c] - 1;
    return static_cast<T>(2 * digit - top) / static_cast<T>(top);
  }
  return static_cast<T>(digit - k.half_width[c]) / static_cast<T>(k.half_width[c]);
}

// The inverse of fsq_code: the nearest level to a code value (codes off the grid snap).
template <class T>
LATENT_HOST_DEVICE inline std::int32_t fsq_digit_of_code(const FsqConstants<T>& k, int c,
                                                         T code) {
  const T top = static_cast<T>(k.levels[c] - 1);
  if (k.symmetric) return fsq_clamp_digit(math_rint((code + T(1)) * top * T(0.5)), top);
  const T h = static_cast<T>(k.half_width[c]);
  return fsq_clamp_digit(math_rint(code * h) + h, top);
}

// d code / d z of the straight-through estimator.
template <class T>
LATENT_HOST_DEVICE inline T fsq_slope(const FsqConstants<T>& k, int c, T z) {
  const T t = math_tanh(z + k.shift[c]);
  return k.slope[c] * (T(1) - t * t);
}

// ---------------------------------------------------------------- tiles in shared memory

// Slot of tile element e: one padding slot after every 128 bytes (32 floats, 16 doubles),
// so that the 32 lanes of a warp reading elements t·d + c fall into distinct banks.
template <class T>
__device__ __forceinline__ int fsq_slot(int e) {
  constexpr int kBankRow = 128 / static_cast<int>(sizeof(T));
  return e + e / kBankRow;
}

// Dynamic shared memory of one tile of d-element rows.
template <class T>
inline std::size_t fsq_tile_bytes(int dims) {
  const int elements = kFsqTileRows * dims;
  const int bank_row = 128 / static_cast<int>(sizeof(T));
  return static_cast<std::size_t>(elements + elements / bank_row + 1) * sizeof(T);
}

// tile[slot(e)] = src[e] for e < count; 16-byte loads when `vectorized` (src 16-byte aligned).
template <class T, class Tile>
__device__ __forceinline__ void fsq_load_tile(Tile tile, const T* src, int count,
                                              bool vectorized) {
  constexpr int W = Vec16<T>::width;
  int done = 0;
  if (vectorized) {
    const int packs = count / W;
    const auto* src_v = reinterpret_cast<const typename Vec16<T>::type*>(src);
    for (int p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T> pack;
      pack.vector = src_v[p];
#pragma unroll
      for (int j = 0; j < W; ++j) tile[fsq_slot<T>(p * W + j)] = pack.lane[j];
    }
    done = packs * W;
  }
  for (int e = done + threadIdx.x; e < count; e += blockDim.x) tile[fsq_slot<T>(e)] = src[e];
}

// dst[e] = tile[slot(e)] (times factor[e] when factor is not null) for e < count; 16-byte
// accesses when `vectorized` (dst and factor 16-byte aligned).
template <class T, class Tile>
__device__ __forceinline__ void fsq_store_tile(T* dst, Tile tile, const T* factor, int count,
                                               bool vectorized) {
  constexpr int W = Vec16<T>::width;
  int done = 0;
  if (vectorized) {
    const int packs = count / W;
    auto* dst_v = reinterpret_cast<typename Vec16<T>::type*>(dst);
    const auto* factor_v = reinterpret_cast<const typename Vec16<T>::type*>(factor);
    for (int p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T> out;
      if (factor) {
        Pack<T> f;
        f.vector = factor_v[p];
#pragma unroll
        for (int j = 0; j < W; ++j) out.lane[j] = f.lane[j] * tile[fsq_slot<T>(p * W + j)];
      } else {
#pragma unroll
        for (int j = 0; j < W; ++j) out.lane[j] = tile[fsq_slot<T>(p * W + j)];
      }
      dst_v[p] = out.vector;
    }
    done = packs * W;
  }
  for (int e = done + threadIdx.x; e < count; e += blockDim.x) {
    const T v = tile[fsq_slot<T>(e)];
    dst[e] = factor ? factor[e] * v : v;
  }
}

// Rows of the tile that starts at row `row0`.
__device__ __forceinline__ int fsq_tile_rows(std::int64_t row0, std::int64_t rows) {
  return rows - row0 < kFsqTileRows ? static_cast<int>(rows - row0) : kFsqTileRows;
}

// ---------------------------------------------------------------- kernels
// z, codes: [rows, d] contiguous; indices: [rows] or nullptr (codes only). A NaN in z fails
// the device-side check `nan_check` (kernels/check.cuh; a null word: unchecked) at its
// element; ±Inf is a value like any other (it goes to the outermost level).
template <class T>
__global__ void __launch_bounds__(kFsqTileRows)
    fsq_quantize_kernel(FsqConstants<T> k, const T* z, T* codes, std::int32_t* indices,
                        std::int64_t rows, bool vectorized, CheckSite nan_check) {
  LATENT_DYNAMIC_SHARED(T, tile);
  const int d = k.dims;
  const std::int64_t tiles = (rows + kFsqTileRows - 1) / kFsqTileRows;
  for (std::int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const std::int64_t row0 = t * kFsqTileRows;
    const int tile_rows = fsq_tile_rows(row0, rows);
    fsq_load_tile(tile, z + row0 * d, tile_rows * d, vectorized);
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < tile_rows) {
      const int first = static_cast<int>(threadIdx.x) * d;
      std::int32_t index = 0;
      for (int c = 0; c < d; ++c) {
        const int s = fsq_slot<T>(first + c);
        const T value = static_cast<T>(tile[s]);
        if (value != value) check_fail(nan_check, (row0 + threadIdx.x) * d + c);
        const std::int32_t digit = fsq_digit(k, c, value);
        index += digit * k.basis[c];
        tile[s] = fsq_code(k, c, digit);
      }
      if (indices) indices[row0 + threadIdx.x] = index;
    }
    __syncthreads();
    fsq_store_tile(codes + row0 * d, tile, static_cast<const T*>(nullptr), tile_rows * d,
                   vectorized);
    __syncthreads();  // the next tile reuses the shared memory
  }
}

// dL_dz = dL_dcodes · fsq_slope(z); all [rows, d] contiguous.
template <class T>
__global__ void __launch_bounds__(kFsqTileRows)
    fsq_quantize_backward_kernel(FsqConstants<T> k, const T* z, const T* dL_dcodes, T* dL_dz,
                                 std::int64_t rows, bool vectorized) {
  LATENT_DYNAMIC_SHARED(T, tile);
  const int d = k.dims;
  const std::int64_t tiles = (rows + kFsqTileRows - 1) / kFsqTileRows;
  for (std::int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const std::int64_t row0 = t * kFsqTileRows;
    const int tile_rows = fsq_tile_rows(row0, rows);
    fsq_load_tile(tile, z + row0 * d, tile_rows * d, vectorized);
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < tile_rows) {
      const int first = static_cast<int>(threadIdx.x) * d;
      for (int c = 0; c < d; ++c) {
        const int s = fsq_slot<T>(first + c);
        tile[s] = fsq_slope(k, c, static_cast<T>(tile[s]));
      }
    }
    __syncthreads();
    fsq_store_tile(dL_dz + row0 * d, tile, dL_dcodes + row0 * d, tile_rows * d, vectorized);
    __syncthreads();
  }
}

// indices[r] = Σ_c digit_of_code(codes[r, c])·basis_c.
template <class T>
__global__ void __launch_bounds__(kFsqTileRows)
    fsq_codes_to_indices_kernel(FsqConstants<T> k, const T* codes, std::int32_t* indices,
                                std::int64_t rows, bool vectorized) {
  LATENT_DYNAMIC_SHARED(T, tile);
  const int d = k.dims;
  const std::int64_t tiles = (rows + kFsqTileRows - 1) / kFsqTileRows;
  for (std::int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const std::int64_t row0 = t * kFsqTileRows;
    const int tile_rows = fsq_tile_rows(row0, rows);
    fsq_load_tile(tile, codes + row0 * d, tile_rows * d, vectorized);
    __syncthreads();
    if (static_cast<int>(threadIdx.x) < tile_rows) {
      const int first = static_cast<int>(threadIdx.x) * d;
      std::int32_t index = 0;
      for (int c = 0; c < d; ++c)
        index += fsq_digit_of_code(k, c, static_cast<T>(tile[fsq_slot<T>(first + c)])) * k.basis[c];
      indices[row0 + threadIdx.x] = index;
    }
    __syncthreads();
  }
}

// codes[r, c] = fsq_code(digit_c of indices[r]). An index outside [0, size) gives a row of
// NaN (the op checks the indices first, on the device: src/ops/fsq.cpp).
template <class T>
__global__ void __launch_bounds__(kFsqTileRows)
    fsq_indices_to_codes_kernel(FsqConstants<T> k, const std::int32_t* indices, T* codes,
                                std::int64_t rows, std::int32_t size, bool vectorized) {
  LATENT_DYNAMIC_SHARED(T, tile);
  const int d = k.dims;
  const std::int64_t tiles = (rows + kFsqTileRows - 1) / kFsqTileRows;
  for (std::int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const std::int64_t row0 = t * kFsqTileRows;
    const int tile_rows = fsq_tile_rows(row0, rows);
    if (static_cast<int>(threadIdx.x) < tile_rows) {
      const int first = static_cast<int>(threadIdx.x) * d;
      const std::int32_t index = indices[row0 + threadIdx.x];
      const bool valid = index >= 0 && index < size;
      for (int c = 0; c < d; ++c) {
        const std::int32_t digit = (index / k.basis[c]) % k.levels[c];
        tile[fsq_slot<T>(first + c)] = valid ? fsq_code(k, c, digit) : static_cast<T>(NAN);
      }
    }
    __syncthreads();
    fsq_store_tile(codes + row0 * d, tile, static_cast<const T*>(nullptr), tile_rows * d,
                   vectorized);
    __syncthreads();
  }
}

}  // namespace latent::kernels
