// Float exp and SiLU for the cpu backend's hot loops, written so that the compiler
// vectorizes them: no calls, no branches, each step one rounding or one explicit fma.
//
//   e^x = 2^n · e^r,  n = rint(x · log2 e),  r = x − n·ln 2     (|r| ≤ ln 2 / 2)
//   r    = fma(−n, ln2_lo, fma(−n, ln2_hi, x))   ln2_hi = 0.693359375 has 9 significant bits,
//          so n·ln2_hi (|n| ≤ 151) and x − n·ln2_hi are exact; ln2_lo = ln 2 − ln2_hi
//   e^r  = Σ_{k ≤ 7} r^k / k!  by Horner in fmas: the truncation is r^8/8! ≤ 5.2e-9, a tenth
//          of an ulp; with the roundings the result is within 0.94 ulp of e^x for every float
//          x in [−104, 89] (all 2.2 billion of them against double exp; tests/elementwise_test.cpp
//          checks every 61st against 1 ulp)
//   2^n  = 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), two exponent-field floats: the second product rounds once,
//          so overflow gives +inf and results below 2^−126 round to subnormals correctly.
// x is clamped to [−104, 89] first (e^−104 rounds to 0 in float, e^89 overflows); NaN stays
// NaN. n is read from the bits of x·log2 e + 1.5·2^23 (the addition rounds to an integer,
// ties to even), so no float → int conversion happens.
//
// The value is the same bits in every instruction set the loops are built for
// (LATENT_CPU_VECTOR_CLONES: AVX-512, AVX2 + FMA, and the x86-64 baseline, where std::fma
// is a library call): the library is compiled with -ffp-contract=off, so no product and sum
// are fused except where written as fma.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

// Under ThreadSanitizer there are no clones: their ifunc resolvers run while the program is
// being relocated, before the sanitizer's runtime exists, and the instrumented resolver
// crashes. The baseline loop gives the same bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_THREAD__)
#define LATENT_CPU_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LATENT_CPU_VECTOR_CLONES
#endif

namespace latent::cpu {

inline float vector_exp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kRoundShifter = 12582912.0f;  // 1.5 · 2^23
  constexpr float kLn2Hi = 0.693359375f;
  constexpr float kLn2Lo = -2.12194440054690583e-4f;
  x = x < -104.0f ? -104.0f : x;
  x = x > 89.0f ? 89.0f : x;
  const float shifted = x * kLog2e + kRoundShifter;
  const float n = shifted - kRoundShifter;
  float r = std::fma(-n, kLn2Hi, x);
  r = std::fma(-n, kLn2Lo, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  // n modulo 2^32 from the shifted float's mantissa; halves by an arithmetic shift.
  const std::uint32_t n_bits =
      std::bit_cast<std::uint32_t>(shifted) - std::bit_cast<std::uint32_t>(kRoundShifter);
  const std::uint32_t half = static_cast<std::uint32_t>(static_cast<std::int32_t>(n_bits) >> 1);
  const float scale_a = std::bit_cast<float>((half + 127u) << 23);
  const float scale_b = std::bit_cast<float>((n_bits - half + 127u) << 23);
  return p * scale_a * scale_b;
}

// σ(x) = 1 / (1 + e^−x)
inline float vector_sigmoid(float x) { return 1.0f / (1.0f + vector_exp(-x)); }

// silu(x) = x · σ(x), computed as x / (1 + e^−x) like kernels/unary_ops.cuh
inline float vector_silu(float x) { return x / (1.0f + vector_exp(-x)); }

// d silu / dx = σ(x) · (1 + x · (1 − σ(x)))
inline float vector_silu_slope(float x) {
  const float s = vector_sigmoid(x);
  return s * (1.0f + x * (1.0f - s));
}

}  // namespace latent::cpu
