// Standard normal numbers from Philox words, bit for bit the same on every backend.
// Docs: docs/vae.md ("Where ε comes from").
//
// What it computes. Box–Muller turns two uniforms into two independent N(0, 1) numbers:
//
//   u1 = (w1 + 1) / 2^32  in (0, 1]        u2 = w2 / 2^32  in [0, 1)
//   R  = sqrt(−2·ln u1)                    θ  = 2π·u2
//   n1 = R·cos θ                           n2 = R·sin θ
//
// One Philox call gives four words, so one call gives four normals: element i of a draw
// keyed (seed, offset) uses call i / 4, words (0, 1) for i % 4 ∈ {0, 1} and (2, 3) for
// i % 4 ∈ {2, 3}, the cosine for even i and the sine for odd i (as kernels/random.cuh did
// before, so a draw's layout is unchanged).
//
// Why not libm. latent promises bitwise-identical ε on the cpu backend, the SIMT executor
// and a GPU. log, sin and cos from the host's libm and from CUDA's math library are both
// accurate to an ulp or so, but not to the same bits. So this file computes them itself,
// in float64, with nothing but operations IEEE 754 rounds exactly: + − × ÷ sqrt and the
// fused multiply-add fma(a, b, c) = round(a·b + c), plus integer bit manipulation. Every
// such operation has one correct answer, so any two conforming machines agree.
//
// The one trap is contraction: nvcc (and g++ with -mfma) may turn a·b + c into one fma,
// which rounds once instead of twice and changes the last bit. Here every multiply-add is
// written as an explicit fma (so there is nothing left to contract), and a bare product is
// only ever used as a factor of an fma, as an argument of sqrt, as a final result, or —
// for the two products by 2 (2.0·s and −2.0·ln m, exact, so rounding them changes nothing)
// — as an fma's addend: no place where a contraction could change a bit. tests/philox_normal_test.cpp pins golden bit
// patterns, so a build that broke this would fail there.
//
// ln u1: v = w1 + 1 in [1, 2^32] is split exactly into 2^e · m with m in [√½, √2] (integer
//   bit tricks). Then ln u1 = (e − 32)·ln 2 + ln m and, with s = (m − 1)/(m + 1) (|s| < 0.172),
//   ln m = 2·atanh(s) = 2s + 2s³/3 + 2s⁵/5 + … ; ten terms reach 2^−54. (e − 32)·ln 2 uses a
//   split constant (Cody–Waite): the high part has trailing zero bits, so k·hi is exact.
// sin, cos: θ = 2π·w2/2^32. The quadrant is read from the top bits of w2 (exact): w2 =
//   q·2^30 + j with j in [−2^29, 2^29), so θ = q·π/2 + x with x = j·2π/2^32 in [−π/4, π/4].
//   sin x and cos x are Taylor series (through x^17 and x^18: below 2^−54 on that range),
//   and the quadrant only swaps and negates them (exact).
//
// Cost per pair of normals (count the source): 29 fma (12 for ln u1, 8 for sin, 9 for cos),
// 9 multiplications, 2 additions, one division and one square root, all float64 — 58 fma
// per Philox call, 14.5 fma and ~20 FP64 operations in all per normal; no memory traffic.
// That is the count the other files cite. On an FP64-rich GPU (H100, H200: FP64 at half the
// FP32 rate) it hides under a memory-bound kernel's traffic; on consumer GPUs (FP64 at 1/64
// of FP32) it does not, and a kernel that draws normals becomes FP64-bound.
// Accuracy: within a few ulp of the exact Box–Muller values (the tests compare with libm).
#pragma once

#include <cstdint>
#include <cstring>

#if !defined(__CUDA_ARCH__)
#include <cmath>
#endif

#include "host_device.cuh"
#include "philox.cuh"

namespace latent::kernels {

namespace normal_detail {

// round(a·b + c), once: the hardware FMA on a GPU; std::fma (correctly rounded by the C
// standard, in hardware or in software) on the host.
LATENT_HOST_DEVICE LATENT_FORCEINLINE double fma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// The correctly rounded square root (IEEE 754 requires it; CUDA's sqrt for double is too).
LATENT_HOST_DEVICE LATENT_FORCEINLINE double sqrt_rn(double x) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(x);
#else
  return std::sqrt(x);
#endif
}

LATENT_HOST_DEVICE LATENT_FORCEINLINE double bits_to_double(std::uint64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// Position of the highest set bit of a non-zero 64-bit integer (floor(log2 v)).
LATENT_HOST_DEVICE LATENT_FORCEINLINE int highest_bit(std::uint64_t v) {
#if defined(__CUDA_ARCH__)
  return 63 - __clzll(static_cast<long long>(v));
#else
  return 63 - __builtin_clzll(v);
#endif
}

// 2·ln 2 split in two: the high part keeps 40 significant bits (its last set bit is 2^−39),
// so k·hi is exact for the |k| ≤ 64 used here; the low part carries the rest.
constexpr double kTwoLn2Hi = 0x1.62e42fefa2000p+0;
constexpr double kTwoLn2Lo = 1.4742005130335598e-12;
// 2π / 2^32: one step of w2, in radians.
constexpr double kRadiansPerStep = 1.4629180792671596e-09;

// −2·ln((w + 1) / 2^32), for any 32-bit word w. Exactly 0 for w = 2^32 − 1.
LATENT_HOST_DEVICE inline double minus_two_log_uniform(std::uint32_t w) {
  const std::uint64_t v = static_cast<std::uint64_t>(w) + 1;  // u1 = v / 2^32, v in [1, 2^32]
  int e = highest_bit(v);                                       // v = 2^e · (1.f)
  // m = v / 2^e in [1, 2): move v's bits into a double's fraction field under exponent 0.
  const std::uint64_t fraction = (v << (52 - e)) & ((std::uint64_t{1} << 52) - 1);
  double m = bits_to_double((std::uint64_t{1023} << 52) | fraction);
  if (m > 1.4142135623730951) {  // keep m in [√½, √2] so that |s| stays small
    m *= 0.5;                     // exact
    ++e;
  }
  // ln m = 2·atanh(s) = 2s + s·z·P(z), z = s², P(z) = Σ_{k=1..10} 2/(2k+1) · z^(k−1).
  const double s = (m - 1.0) / (m + 1.0);  // m − 1 and m + 1 are exact: m has ≤ 33 bits
  const double z = s * s;
  double p = 0.09523809523809523;          // 2/21
  p = fma_rn(p, z, 0.10526315789473684);   // 2/19
  p = fma_rn(p, z, 0.11764705882352941);   // 2/17
  p = fma_rn(p, z, 0.13333333333333333);   // 2/15
  p = fma_rn(p, z, 0.15384615384615385);   // 2/13
  p = fma_rn(p, z, 0.18181818181818182);   // 2/11
  p = fma_rn(p, z, 0.2222222222222222);    // 2/9
  p = fma_rn(p, z, 0.2857142857142857);    // 2/7
  p = fma_rn(p, z, 0.4);                   // 2/5
  p = fma_rn(p, z, 0.6666666666666666);    // 2/3
  const double ln_m = fma_rn(s * z, p, 2.0 * s);
  // −2·ln u1 = (32 − e)·2ln2 − 2·ln m.
  const double k = static_cast<double>(32 - e);
  return fma_rn(k, kTwoLn2Hi, fma_rn(k, kTwoLn2Lo, -2.0 * ln_m));
}

// cos and sin of 2π·w / 2^32, for any 32-bit word w.
LATENT_HOST_DEVICE inline void cos_sin_turn(std::uint32_t w, double& cos_theta,
                                            double& sin_theta) {
  // w = q·2^30 + j with j in [−2^29, 2^29): θ = q·(π/2) + x, x in [−π/4, π/4).
  const std::uint32_t q = ((w + (1u << 29)) >> 30) & 3u;
  const std::int32_t j = static_cast<std::int32_t>(w - (q << 30));
  const double x = static_cast<double>(j) * kRadiansPerStep;
  const double y = x * x;
  // sin x = x + x·y·S(y), S(y) = Σ_{k=1..8} (−1)^k y^(k−1) / (2k+1)!
  double sp = 2.8114572543455206e-15;
  sp = fma_rn(sp, y, -7.647163731819816e-13);
  sp = fma_rn(sp, y, 1.6059043836821613e-10);
  sp = fma_rn(sp, y, -2.505210838544172e-08);
  sp = fma_rn(sp, y, 2.7557319223985893e-06);
  sp = fma_rn(sp, y, -0.0001984126984126984);
  sp = fma_rn(sp, y, 0.008333333333333333);
  sp = fma_rn(sp, y, -0.16666666666666666);
  const double sin_x = fma_rn(x * y, sp, x);
  // cos x = 1 + y·C(y), C(y) = Σ_{k=1..9} (−1)^k y^(k−1) / (2k)!
  double cp = -1.5619206968586225e-16;
  cp = fma_rn(cp, y, 4.779477332387385e-14);
  cp = fma_rn(cp, y, -1.1470745597729725e-11);
  cp = fma_rn(cp, y, 2.08767569878681e-09);
  cp = fma_rn(cp, y, -2.755731922398589e-07);
  cp = fma_rn(cp, y, 2.48015873015873e-05);
  cp = fma_rn(cp, y, -0.001388888888888889);
  cp = fma_rn(cp, y, 0.041666666666666664);
  cp = fma_rn(cp, y, -0.5);
  const double cos_x = fma_rn(y, cp, 1.0);
  // Rotate by q quarter turns: (cos, sin) → (−sin, cos) per quarter turn.
  switch (q) {
    case 0: cos_theta = cos_x; sin_theta = sin_x; break;
    case 1: cos_theta = -sin_x; sin_theta = cos_x; break;
    case 2: cos_theta = -cos_x; sin_theta = -sin_x; break;
    default: cos_theta = sin_x; sin_theta = -cos_x; break;
  }
}

}  // namespace normal_detail

// Box–Muller on two Philox words: two independent standard normals (R·cos θ, R·sin θ).
LATENT_HOST_DEVICE inline void box_muller(std::uint32_t w1, std::uint32_t w2, double& n_cos,
                                          double& n_sin) {
  const double r2 = normal_detail::minus_two_log_uniform(w1);
  const double radius = r2 > 0.0 ? normal_detail::sqrt_rn(r2) : 0.0;
  double c, s;
  normal_detail::cos_sin_turn(w2, c, s);
  n_cos = radius * c;
  n_sin = radius * s;
}

// The four normals of Philox call `group` of the stream (seed, offset): elements
// 4·group … 4·group + 3 of a draw.
struct Normal4 {
  double v[4];
};
LATENT_HOST_DEVICE inline Normal4 philox_normal4(std::uint64_t seed, std::uint64_t offset,
                                                 std::uint64_t group) {
  const Philox4 r = philox_block(seed, offset, group);
  Normal4 out;
  box_muller(r.x[0], r.x[1], out.v[0], out.v[1]);
  box_muller(r.x[2], r.x[3], out.v[2], out.v[3]);
  return out;
}

// Normal element i of the stream (seed, offset), alone: the same value philox_normal4 gives
// for it, at the cost of one Philox call and one Box–Muller pair.
LATENT_HOST_DEVICE inline double philox_normal(std::uint64_t seed, std::uint64_t offset,
                                               std::uint64_t i) {
  const Philox4 r = philox_block(seed, offset, i / 4);
  // Words (0, 1) or (2, 3), picked with selects: r.x[run-time index] would put r in local
  // memory (a stack frame on a GPU).
  const bool high = (i & 2u) != 0;
  double n_cos, n_sin;
  box_muller(high ? r.x[2] : r.x[0], high ? r.x[3] : r.x[1], n_cos, n_sin);
  return (i % 2 == 0) ? n_cos : n_sin;
}

}  // namespace latent::kernels
