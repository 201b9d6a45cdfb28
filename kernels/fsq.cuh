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
//   v      = round-half-to-even(b)                     ∈ {−h, …, L − 1 − h}  (the level)
//   digit  = v + h                                     ∈ {0, …, L − 1}
//   code   = v / h                                     ∈ [−1, 1]
// The symmetric variant (every level set symmetric around 0, even L included):
//   v = digit = ⌊(L − 1)(tanh(z) + 1)/2 + ½⌋,  code = (2v − (L − 1)) / (L − 1)
// Both: index = Σ_c digit_c · basis_c with basis = (1, L_1, L_1·L_2, …); decoding inverts it,
// digit_c = ⌊index / basis_c⌋ mod L_c. Every code is the same function of its level (an
// integer held exactly in T): one correctly rounded quotient, computed without a division
// as q = n·(1/w) plus one FMA remainder and one FMA correction (fsq_divide), on every
// backend, so the cpu backend, the kernels, quantizing and decoding give bitwise-equal codes.
//
// Backward: rounding passes the gradient straight through (its derivative is taken as 1),
// so dL/dz = dL/dcode · d(b/h)/dz = dL/dcode · (half/h)·(1 − tanh²(z + shift)); for the
// symmetric variant dL/dz = dL/dcode · (1 − tanh²(z)).
//
// Cost per element (float32): forward reads 4 bytes of z and writes 4 bytes of code, plus
// 4 bytes of index per row of d elements; about 25 FLOPs (a tanh, a multiply-add, a round,
// a clamp, a multiply and two FMA for the quotient, an integer multiply-add). Backward reads
// 8 bytes and writes 4, about 20 FLOPs. Memory-bound by a wide margin, so what matters is
// moving the bytes once, coalesced — and keeping the per-element instructions few enough
// that issuing them never becomes the limit: the quantize kernel's channel loop is ≈ 36
// sm_90 instructions per element (tools/kernel-report; budget 40). Of those, the accurate
// tanhf is 15; the level 5 (shift, scale-and-offset, round, clamp); the code 3; the index 2;
// the NaN filter 1; the tile load and store 2 and their padded slots 2; the per-channel
// constants 3.5 (kernel parameters indexed by c, read in pairs of channels); the loop ≈ 3.
// What keeps it there: the variant is a template parameter (no branch in the loop), every
// constant is precomputed on the host in T (no conversions), the quotient needs no division
// sequence, a NaN costs one add per element and one search per row, and the loop is
// unrolled by 4 (the last d mod 4 channels run straight, ≈ 42 instructions each).
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
  T top[kFsqMaxDims];                    // L − 1, the highest digit
  // The quantize kernel's constants, in T so that it converts nothing. A level v is the
  // digit less the digit of code 0: v = digit − h ∈ [−h, L − 1 − h] (standard), v = digit
  // ∈ [0, L − 1] (symmetric).
  T level_max[kFsqMaxDims];              // the highest level: L − 1 − h, or L − 1 when symmetric
  T scale[kFsqMaxDims];                  // the code's denominator: h, or L − 1 when symmetric
  T inverse_scale[kFsqMaxDims];          // 1 / scale, rounded to nearest
  std::int32_t index_offset;             // Σ_c (digit − v)_c · basis_c: index = this + Σ v·basis
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
    k.top[c] = static_cast<T>(L - 1);
    k.level_max[c] = static_cast<T>(symmetric ? L - 1 : L - 1 - L / 2);
    k.scale[c] = static_cast<T>(symmetric ? L - 1 : L / 2);
    k.inverse_scale[c] = T(1) / k.scale[c];
    k.index_offset += symmetric ? 0 : static_cast<std::int32_t>((L / 2) * place);
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
// Clamps to [low, high]; NaN goes to low.
LATENT_HOST_DEVICE LATENT_FORCEINLINE float fsq_clamp(float x, float low, float high) {
  return fminf(fmaxf(x, low), high);
}
LATENT_HOST_DEVICE LATENT_FORCEINLINE double fsq_clamp(double x, double low, double high) {
  return fmin(fmax(x, low), high);
}

// The digit of level 0: h (standard) or 0 (symmetric).
template <bool Symmetric, class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE std::int32_t fsq_level_zero(const FsqConstants<T>& k,
                                                                  int c) {
  return Symmetric ? 0 : k.half_width[c];
}

// The level v (an integer held in T) that z falls on in channel c: standard v = digit − h ∈
// [−h, L − 1 − h], symmetric v = digit ∈ [0, L − 1]. The clamp only matters for NaN (it goes
// to the lowest level, digit 0) and for L > 1000, where ε·(L − 1)/2 ≥ ½ would let the bound
// round one level past the end. The variant is a template parameter for the quantize kernel
// (one instance each, no branch in its channel loop); the functions without it (the cpu
// backend, the other kernels) test k.symmetric.
template <bool Symmetric, class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T fsq_level(const FsqConstants<T>& k, int c, T z) {
  const T high = k.level_max[c];
  if constexpr (Symmetric) {
    const T t = math_tanh(z);
    return fsq_clamp(math_floor(high * (t + T(1)) * T(0.5) + T(0.5)), T(0), high);
  } else {
    const T bound = math_tanh(z + k.shift[c]) * k.half[c] - k.offset[c];
    return fsq_clamp(math_rint(bound), -k.scale[c], high);  // scale = h
  }
}

// The level (0 … L − 1) that z falls on in channel c.
template <class T>
LATENT_HOST_DEVICE inline std::int32_t fsq_digit(const FsqConstants<T>& k, int c, T z) {
  if (k.symmetric) return static_cast<std::int32_t>(fsq_level<true>(k, c, z));
  return static_cast<std::int32_t>(fsq_level<false>(k, c, z)) + fsq_level_zero<false>(k, c);
}

// n / w rounded to nearest, from inverse = 1/w rounded to nearest, without a division: the
// product q = n·inverse is within an ulp of n/w, the remainder n − w·q is exact in one FMA,
// and a second FMA rounds q + remainder·inverse to the nearest (Markstein's correction).
// Bitwise equal to the IEEE quotient n / w for the codes of every level count (checked
// against it for every L ≤ 4096 and for random larger L in tests/fsq_test.cpp); one FMUL and
// two FFMA against the ~13 instructions of the division sequence.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T fsq_divide(T n, T w, T inverse) {
  const T q = n * inverse;
  return math_fma(math_fma(-w, q, n), inverse, q);
}

// The code value of level v: an exact integer over an exact integer, one rounding (for
// L ≤ 2^24 in float; beyond, v and L − 1 round to T first).
// Standard: v / h; symmetric: (2v − (L − 1)) / (L − 1).
template <bool Symmetric, class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T fsq_code_of_level(const FsqConstants<T>& k, int c, T v) {
  // 2v − (L − 1) in one FMA (2v is exact); scale = L − 1 when symmetric.
  const T n = Symmetric ? math_fma(T(2), v, -k.scale[c]) : v;
  return fsq_divide(n, k.scale[c], k.inverse_scale[c]);
}

// The code value of a digit: the same function of its level as in quantizing (the level is
// an integer held exactly in T), so that decoding an index and quantizing give bitwise-equal
// codes.
template <class T>
LATENT_HOST_DEVICE inline T fsq_code(const FsqConstants<T>& k, int c, std::int32_t digit) {
  if (k.symmetric) return fsq_code_of_level<true>(k, c, static_cast<T>(digit));
  return fsq_code_of_level<false>(k, c, static_cast<T>(digit - fsq_level_zero<false>(k, c)));
}

// The inverse of fsq_code: the nearest level to a code value (codes off the grid snap).
template <class T>
LATENT_HOST_DEVICE inline std::int32_t fsq_digit_of_code(const FsqConstants<T>& k, int c,
                                                         T code) {
  const T top = k.top[c];
  if (k.symmetric) return fsq_clamp_digit(math_rint((code + T(1)) * top * T(0.5)), top);
  const T h = k.scale[c];
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
  return e + static_cast<int>(static_cast<unsigned>(e) / kBankRow);  // e ≥ 0: a shift
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
// element; ±Inf is a value like any other (it goes to the outermost level). Symmetric: the
// variant (the launcher picks the instance from k.symmetric).
template <class T, bool Symmetric>
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
      std::int32_t index = k.index_offset;  // + Σ v·basis = Σ digit·basis
      // The sum of the row is NaN when the row holds a NaN (and, harmlessly, when it holds
      // +Inf and −Inf or overflows): one add per element, the exact search once per row.
      T sum = T(0);
#pragma unroll 4  // fewer loop and address instructions per element; d % 4 goes straight
      for (int c = 0; c < d; ++c) {
        const int s = fsq_slot<T>(first + c);
        const T value = static_cast<T>(tile[s]);
        sum += value;
        const T v = fsq_level<Symmetric>(k, c, value);
        index += static_cast<std::int32_t>(v) * k.basis[c];
        tile[s] = fsq_code_of_level<Symmetric>(k, c, v);
      }
      // A NaN in the row: find the first one in z (the tile holds codes now), once per row.
      const std::int64_t row = row0 + threadIdx.x;
      if (sum != sum && nan_check.word != nullptr) {
        for (int c = 0; c < d; ++c) {
          const T value = z[row * d + c];
          if (value != value) {
            check_fail(nan_check, row * d + c);
            break;
          }
        }
      }
      if (indices) indices[row] = index;
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
