// The reparameterization trick and the closed-form Gaussian KL, fused into one pass.
// Docs: docs/vae.md (the chapter walks through this file line by line).
//
// A VAE encoder outputs, per latent element j of sample n, a mean μ and a log-variance
// ℓ = log σ². With ℓc = clamp(ℓ, ℓmin, ℓmax) (default [−30, 20], as the Stable Diffusion
// autoencoder does) and ε ~ N(0, 1) drawn from Philox (kernels/philox_normal.cuh):
//
//   forward   z        = μ + exp(½ℓc)·ε                              (the reparameterization)
//             KL[n]    = ½ Σ_j (μ² + exp(ℓc) − ℓc − 1)               (KL(q ‖ N(0, I)), nats)
//   backward  dL/dμ    = dL/dz + g[n]·μ                               g[n] = dL/dKL[n]
//             dL/dℓ    = [ℓmin ≤ ℓ ≤ ℓmax] · (dL/dz·½·σ·ε + g[n]·½·(exp(ℓc) − 1))
//
// exp(ℓc) − 1 is computed as expm1(ℓc): near ℓ = 0 it is a difference of nearly equal
// numbers, and the gradient of a nearly-prior unit would lose most of its bits otherwise.
// The KL's own term expm1(ℓc) − ℓc ≈ ℓc²/2 cancels again; for |ℓc| < ½ it is a short series
// in float64 instead (expm1_minus_x), accurate to a float ulp down to |ℓ| = 10⁻⁸ and below.
//
// ε is never stored. Element i (flat index over the whole tensor) takes the normal
// philox_normal(seed, offset, i); the backward pass recomputes it from the same counter,
// which costs one Box–Muller half per element (14.5 fma, ~20 FP64 operations in all, ½ a
// division and ½ a square root: the count of kernels/philox_normal.cuh) instead of 4 bytes
// written and 4 read.
//
// Machine code (sm_90, float, z and KL, tools/kernel-report): about 205 instructions per
// element on the aligned path and 219 on the element-wise one. ε accounts for about 122 of
// them (the KL-only instance, which draws nothing, is 82; random_normal_kernel, which only
// draws and stores, is 126): Philox's ten rounds and, per pair of normals, float64
// polynomials for log, sin and cos, a division and a square root, all exactly rounded so
// that every backend gets the same bits.
//
// Layout and launch. The tensors are contiguous [N, D] (D = every latent dimension of a
// sample: a flat vector or a C×H×W grid). Each row is cut into tiles of `chunk` elements
// (a multiple of 4, at most 8192); a block owns one tile at a time (grid-stride over the
// N·chunks tiles), so the per-sample KL is a block reduction with no atomics:
//   - every thread takes a group of 4 elements per step, 4g … 4g + 3 of the flat index:
//     one Philox call gives their 4 normals. Two instances of each kernel (kAligned, chosen
//     on the host, no branch between them in the loop): when the row starts are 16-byte
//     aligned (D % 4 == 0, or a single row) a group is one tile's, and μ, ℓ, z travel as
//     16-byte vectors (float4, or 2 × double2); otherwise the groups that meet a tile are
//     walked with element-wise loads, skipping the group's elements outside the tile (a
//     group on a tile's edge is drawn by both tiles: the same 4 normals, each used once);
//   - the tile → (row, chunk) split divides by the tile count per row with a multiply and a
//     shift (kernels/divmod.cuh), not the 64-bit division routine;
//   - each thread sums its KL terms in float64, block_sum (kernels/reduce.cuh) combines the
//     threads in a fixed tree, and the tile's total goes to partial[tile] (or straight to
//     KL[n] when a row is one tile); kl_finish_kernel then adds each row's partials in
//     order. Same inputs, same bits, run after run.
//   - the backward pass uses the same tiles, so g[n] is read once per block.
//
// Traffic per element (float32): forward reads μ, ℓ (8 B) and writes z (4 B) = 12 B;
// KL-only forward 8 B; backward reads μ, ℓ, dL/dz (12 B) and writes dL/dμ, dL/dℓ (8 B) =
// 20 B; the unfused composition (randn, exp, mul, add, the KL as ~6 kernels, a sum) moves
// ~96 B forward, ~100 B backward. FLOPs per element: Box–Muller in float64, 14.5 fma and
// ~20 FP64 operations in all, ½ a division and ½ a square root; the KL's series, ≤ 11 fma in
// float64 (float32 data); exp, expm1, ~10 more in T. Memory-bound on an FP64-rich GPU
// (H100, H200: ~40 FP64 FLOPs per 12 bytes is well below their FP64 ridge of ~10 per
// byte); FP64-bound on consumer GPUs, whose FP64 runs at 1/64 of the FP32 rate.
#pragma once

#include <cstdint>

#include "kernels/check.cuh"
#include "kernels/device.cuh"
#include "kernels/divmod.cuh"
#include "kernels/math.cuh"
#include "kernels/grid.cuh"
#include "kernels/philox_normal.cuh"
#include "kernels/reduce.cuh"

namespace latent::kernels {

// Everything the kernels need to know besides the pointers.
struct ReparamShape {
  std::uint64_t seed = 0, offset = 0;  // the Philox stream of ε
  double logvar_min = -30.0, logvar_max = 20.0;
  std::int64_t row_length = 0;  // D
  std::int64_t chunk = 0;       // elements per tile, a multiple of 4
  std::int64_t chunks = 0;      // tiles per row
  FastDivmod by_chunks;         // tile → (row, chunk) without a division instruction
  std::int64_t tiles = 0;       // N · chunks
};

// Bits of the `nonfinite` flag the forward kernel raises.
constexpr int kNonfiniteMu = 1;
constexpr int kNonfiniteLogvar = 2;

// expm1(ℓ) − ℓ = Σ_{k≥2} ℓ^k/k! ≈ ℓ²/2, in float64. Computed as expm1(ℓ) − ℓ in T it is a
// difference of nearly equal numbers that loses about log2(2/|ℓ|) bits: 12 of float's 24 at
// |ℓ| = 10⁻³, all of them below |ℓ| ≈ 10⁻⁷ (expm1f(ℓ) == ℓ, so a nearly-prior unit's term is
// 0). So for |ℓ| < ½ it is the series, by Horner in float64 with explicit fma (the same bits
// on every backend and under any contraction setting): through ℓ¹¹ for float (truncation
// below 2⁻³³ of the value), through ℓ¹⁸ for double (below 2⁻⁶⁰). For |ℓ| ≥ ½ the cancellation
// costs at most 2 bits and expm1 in T, less ℓ in float64, is used.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE double expm1_minus_x(T lc) {
  const double x = static_cast<double>(lc);
  if (x > -0.5 && x < 0.5) {
    constexpr int kLast = sizeof(T) <= 4 ? 11 : 18;
    double factorial = 1.0;  // k! is exact in float64 up to 18!
    for (int k = 2; k <= kLast; ++k) factorial *= k;
    double p = 1.0 / factorial;  // 1/kLast!
    // Constant trip counts: nvcc unrolls both loops and folds the factorials to constants.
    for (int k = kLast; k > 2; --k) {
      factorial /= k;  // (k − 1)!, exact
      p = normal_detail::fma_rn(p, x, 1.0 / factorial);
    }
    return (x * x) * p;  // ℓ²·(1/2! + ℓ/3! + …)
  }
  return static_cast<double>(math_expm1(lc)) - x;
}

// One element's KL term ½(μ² + expm1(ℓc) − ℓc), in float64; shared by the kernels and the
// cpu reference (src/backends/cpu/vae.cpp), so both give the same bits.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE double kl_term(T mu, T lc) {
  const double m = static_cast<double>(mu);
  return 0.5 * normal_detail::fma_rn(m, m, expm1_minus_x(lc));
}

namespace reparam_detail {


// Four consecutive elements, moved as 16-byte vectors (p must be 16-byte aligned).
template <class T>
struct Quad {
  T v[4];
};
__device__ __forceinline__ Quad<float> load_quad(const float* p) {
  const float4 a = *reinterpret_cast<const float4*>(p);
  return {{a.x, a.y, a.z, a.w}};
}
__device__ __forceinline__ Quad<double> load_quad(const double* p) {
  const double2 a = reinterpret_cast<const double2*>(p)[0];
  const double2 b = reinterpret_cast<const double2*>(p)[1];
  return {{a.x, a.y, b.x, b.y}};
}
__device__ __forceinline__ void store_quad(float* p, const Quad<float>& q) {
  *reinterpret_cast<float4*>(p) = make_float4(q.v[0], q.v[1], q.v[2], q.v[3]);
}
__device__ __forceinline__ void store_quad(double* p, const Quad<double>& q) {
  reinterpret_cast<double2*>(p)[0] = make_double2(q.v[0], q.v[1]);
  reinterpret_cast<double2*>(p)[1] = make_double2(q.v[2], q.v[3]);
}

template <class T>
__device__ __forceinline__ T clamp_logvar(T lv, const ReparamShape& s) {
  const T lo = static_cast<T>(s.logvar_min), hi = static_cast<T>(s.logvar_max);
  return lv < lo ? lo : (lv > hi ? hi : lv);
}

template <class T>
__device__ __forceinline__ bool in_clamp_range(T lv, const ReparamShape& s) {
  return lv >= static_cast<T>(s.logvar_min) && lv <= static_cast<T>(s.logvar_max);
}

template <class T>
__device__ __forceinline__ bool finite(T x) {
  return x - x == T(0);  // false for ±Inf (Inf − Inf = NaN) and NaN
}

// The forward of one element: z, and its KL term ½(μ² + expm1(ℓc) − ℓc) (kl_term).
template <class T>
__device__ __forceinline__ T forward_element(T mu, T lv, double eps, const ReparamShape& s,
                                             double& kl, int& nonfinite) {
  if (!finite(mu)) nonfinite |= kNonfiniteMu;
  if (!finite(lv)) nonfinite |= kNonfiniteLogvar;
  const T lc = clamp_logvar(lv, s);
  kl += kl_term(mu, lc);
  return mu + math_exp(T(0.5) * lc) * static_cast<T>(eps);
}

// The backward of one element: (dL/dμ, dL/dℓ) from dL/dz (if any) and g = dL/dKL[n] (if any).
template <class T, bool kHasDz, bool kHasDkl>
__device__ __forceinline__ void backward_element(T mu, T lv, T dz, T g, double eps,
                                                 const ReparamShape& s, T& dmu, T& dlv) {
  const T lc = clamp_logvar(lv, s);
  T d_mu = T(0), d_lv = T(0);
  if constexpr (kHasDz) {
    d_mu = dz;
    d_lv = dz * T(0.5) * math_exp(T(0.5) * lc) * static_cast<T>(eps);
  }
  if constexpr (kHasDkl) {
    d_mu += g * mu;
    d_lv += g * T(0.5) * math_expm1(lc);
  }
  dmu = d_mu;
  dlv = in_clamp_range(lv, s) ? d_lv : T(0);
}

// The elements [begin, end) of one tile. Element i draws normal i % 4 of Philox call i / 4
// (its "group"), so every path walks whole groups: one Philox call per 4 elements.
//   kAligned (begin is a multiple of 4 and the pointers 16-byte aligned, which the host
//     checks): thread t takes groups t, t + blockDim, … as quad(i), 16-byte vectors; a
//     last group cut short by the tile's end (a single row whose length is not a
//     multiple of 4) goes to part(group) after the loop.
//   otherwise: every group that meets the tile goes to part(group), which loads and
//     stores element by element and skips the elements outside [begin, end).
template <bool kAligned, class Quad4, class Part>
__device__ __forceinline__ void for_each_group(std::int64_t begin, std::int64_t end,
                                               Quad4&& quad, Part&& part) {
  const std::int64_t stride = 4 * static_cast<std::int64_t>(blockDim.x);
  if constexpr (kAligned) {
    std::int64_t i = begin + 4 * static_cast<std::int64_t>(threadIdx.x);
    for (; i + 4 <= end; i += stride) quad(i);
    if (i < end) part(i / 4);
  } else {
    for (std::int64_t first = (begin / 4 + static_cast<std::int64_t>(threadIdx.x)) * 4;
         first < end; first += stride)
      part(first / 4);
  }
}

}  // namespace reparam_detail

// Tile t covers elements [begin, end) of row `row`: chunk t mod chunks of that row.
struct TileRange {
  std::int64_t row, begin, end;
};
__device__ __forceinline__ TileRange tile_range(std::int64_t tile, const ReparamShape& s) {
  std::int64_t row, chunk_index;
  s.by_chunks.divmod(tile, row, chunk_index);
  const std::int64_t row_start = row * s.row_length;
  const std::int64_t chunk_end = (chunk_index + 1) * s.chunk;
  return {row, row_start + chunk_index * s.chunk,
          row_start + (s.row_length < chunk_end ? s.row_length : chunk_end)};
}

// Forward. grid: grid-stride over s.tiles blocks; block: a multiple of 32 threads, ≤ 256.
// kWriteZ: write z (else the KL only). kWriteKl: reduce the KL (else z only; kl and partial
// unused). With s.chunks == 1 the tile's KL is KL[n] (written as T); otherwise it goes to
// partial[tile] for kl_finish_kernel. A non-finite mu / logvar fails the device-side check
// of mu_check / logvar_check (kernels/check.cuh; a null word: unchecked), once per block.
template <class T, bool kWriteZ, bool kWriteKl, bool kAligned>
__global__ void reparam_kl_forward_kernel(const T* mu, const T* logvar, T* z, T* kl,
                                          double* partial, CheckSite mu_check,
                                          CheckSite logvar_check, ReparamShape s) {
  using namespace reparam_detail;
  int bad = 0;
  for (std::int64_t tile = blockIdx.x; tile < s.tiles; tile += gridDim.x) {
    const TileRange r = tile_range(tile, s);
    const std::int64_t row = r.row, begin = r.begin, end = r.end;
    double kl_sum = 0.0;
    for_each_group<kAligned>(
        begin, end,
        [&](std::int64_t i) {
          const Quad<T> m = load_quad(mu + i), l = load_quad(logvar + i);
          Normal4 eps{};
          if constexpr (kWriteZ)
            eps = philox_normal4(s.seed, s.offset, static_cast<std::uint64_t>(i) / 4);
          Quad<T> out;
#pragma unroll
          for (int k = 0; k < 4; ++k)
            out.v[k] = forward_element(m.v[k], l.v[k], eps.v[k], s, kl_sum, bad);
          if constexpr (kWriteZ) store_quad(z + i, out);
        },
        [&](std::int64_t group) {
          Normal4 eps{};
          if constexpr (kWriteZ) eps = philox_normal4(s.seed, s.offset, static_cast<std::uint64_t>(group));
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            const std::int64_t i = 4 * group + k;
            if (i < begin || i >= end) continue;
            const T out = forward_element(mu[i], logvar[i], eps.v[k], s, kl_sum, bad);
            if constexpr (kWriteZ) z[i] = out;
          }
        });
    if constexpr (kWriteKl) {
      const double total = block_sum(kl_sum);
      if (threadIdx.x == 0) {
        if (s.chunks == 1) {
          kl[row] = static_cast<T>(total);
        } else {
          partial[tile] = total;
        }
      }
    }
  }
  if ((bad & kNonfiniteLogvar) != 0) check_fail(logvar_check, 0);
  if ((bad & kNonfiniteMu) != 0) check_fail(mu_check, 0);
}

// KL[n] = Σ_c partial[n·chunks + c], in order. One thread per row, grid-stride.
template <class T>
__global__ void kl_finish_kernel(const double* partial, std::int64_t rows, std::int64_t chunks,
                                 T* kl) {
  for (std::int64_t row = grid_stride_begin();
       row < rows; row += grid_stride_step()) {
    double total = 0.0;
    for (std::int64_t c = 0; c < chunks; ++c) total += partial[row * chunks + c];
    kl[row] = static_cast<T>(total);
  }
}

// Backward. Same tiles as the forward. kHasDz: dL/dz flows in (else only the KL's
// gradient); kHasDkl: dL/dKL [N] flows in (else only z's). Writes dL/dμ and dL/dℓ.
template <class T, bool kHasDz, bool kHasDkl, bool kAligned>
__global__ void reparam_kl_backward_kernel(const T* mu, const T* logvar, const T* dz,
                                           const T* dkl, T* dmu, T* dlogvar, ReparamShape s) {
  using namespace reparam_detail;
  for (std::int64_t tile = blockIdx.x; tile < s.tiles; tile += gridDim.x) {
    const TileRange r = tile_range(tile, s);
    const std::int64_t row = r.row, begin = r.begin, end = r.end;
    T g = T(0);
    if constexpr (kHasDkl) g = dkl[row];
    for_each_group<kAligned>(
        begin, end,
        [&](std::int64_t i) {
          const Quad<T> m = load_quad(mu + i), l = load_quad(logvar + i);
          Quad<T> d{};
          Normal4 eps{};
          if constexpr (kHasDz) {
            d = load_quad(dz + i);
            eps = philox_normal4(s.seed, s.offset, static_cast<std::uint64_t>(i) / 4);
          }
          Quad<T> out_mu, out_lv;
#pragma unroll
          for (int k = 0; k < 4; ++k)
            backward_element<T, kHasDz, kHasDkl>(m.v[k], l.v[k], d.v[k], g, eps.v[k], s,
                                                 out_mu.v[k], out_lv.v[k]);
          store_quad(dmu + i, out_mu);
          store_quad(dlogvar + i, out_lv);
        },
        [&](std::int64_t group) {
          Normal4 eps{};
          if constexpr (kHasDz) eps = philox_normal4(s.seed, s.offset, static_cast<std::uint64_t>(group));
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            const std::int64_t i = 4 * group + k;
            if (i < begin || i >= end) continue;
            const T d = kHasDz ? dz[i] : T(0);
            backward_element<T, kHasDz, kHasDkl>(mu[i], logvar[i], d, g, eps.v[k], s, dmu[i],
                                                 dlogvar[i]);
          }
        });
  }
}

}  // namespace latent::kernels
