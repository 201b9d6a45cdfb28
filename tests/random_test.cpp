// Random numbers (kernels/philox.cuh, kernels/philox_normal.cuh, kernels/random.cuh):
// Philox4x32-10 against Random123's known answers; the statistics and reproducibility of the
// tensors drawn from it (rand, randn, uniform, Generator's scalar draws); the bit-reproducible
// normal transform against libm's Box–Muller, pinned bit patterns, the statistics of a million
// draws; and, through the op harness (tests/op_harness.h), every fill on the cuda backend bit
// for bit against cpu, in place into guarded tensors too.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <numeric>
#include <vector>

#include "kernels/philox.cuh"
#include "kernels/philox_normal.cuh"
#include "latent/latent.h"
#include "latent/vae.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using kernels::box_muller;
using kernels::Philox4;
using kernels::philox4x32_10;
using kernels::philox_normal;
using kernels::philox_normal4;
using test::check_op;
using test::Expected;
using test::OpCase;
using test::Tensors;
using test::values_of;

// ------------------------------------------------------------------ the raw generator

struct KnownAnswer {
  Philox4 counter;
  std::uint32_t key0, key1;
  Philox4 expected;
};

// Random123's kat_vectors, philox4x32 with 10 rounds.
TEST(Philox, KnownAnswerVectors) {
  const KnownAnswer cases[] = {
      {{{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const KnownAnswer& c : cases) {
    const Philox4 got = philox4x32_10(c.counter, c.key0, c.key1);
    for (int j = 0; j < 4; ++j) {
      EXPECT_EQ(got.x[j], c.expected.x[j]) << "word " << j << " for counter 0x" << std::hex
                                           << c.counter.x[0] << " key 0x" << c.key0;
    }
  }
}

// philox_block packs (seed, offset, group) into key and counter as philox.cuh documents.
TEST(Philox, BlockPacksSeedOffsetAndGroup) {
  const std::uint64_t seed = 0x0123456789abcdefull, offset = 0xfedcba9876543210ull;
  const std::uint64_t group = 0x00000005deadbeefull;
  const Philox4 got = kernels::philox_block(seed, offset, group);
  const Philox4 want = philox4x32_10(
      Philox4{{0xdeadbeefu, 0x00000005u, 0x76543210u, 0xfedcba98u}}, 0x89abcdefu, 0x01234567u);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(got.x[j], want.x[j]);
}

TEST(Philox, WordToUniformStaysInUnitInterval) {
  EXPECT_EQ(kernels::uniform_float(0u), 0.0f);
  EXPECT_LT(kernels::uniform_float(0xffffffffu), 1.0f);
  EXPECT_EQ(kernels::uniform_float(0xffffffffu), 1.0f - 1.0f / 16777216.0f);
  EXPECT_EQ(kernels::uniform_double(0u, 0u), 0.0);
  EXPECT_LT(kernels::uniform_double(0xffffffffu, 0xffffffffu), 1.0);
  EXPECT_EQ(kernels::uniform_double(0xffffffffu, 0xffffffffu), 1.0 - 1.0 / 9007199254740992.0);
  EXPECT_EQ(kernels::uniform_double(0x80000000u, 0u), 0.5);
}

// ------------------------------------------------------------------ statistics

constexpr std::int64_t kSamples = 1000000;

struct Moments {
  double mean = 0, variance = 0, min = 0, max = 0;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  const double n = static_cast<double>(v.size());
  m.mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0;
  for (double x : v) ss += (x - m.mean) * (x - m.mean);
  m.variance = ss / (n - 1);
  m.min = *std::min_element(v.begin(), v.end());
  m.max = *std::max_element(v.begin(), v.end());
  return m;
}

// Kolmogorov–Smirnov statistic of the sample against a continuous CDF.
template <class Cdf>
double ks_statistic(std::vector<double> v, Cdf cdf) {
  std::sort(v.begin(), v.end());
  const double n = static_cast<double>(v.size());
  double d = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double f = cdf(v[i]);
    d = std::max({d, static_cast<double>(i + 1) / n - f, f - static_cast<double>(i) / n});
  }
  return d;
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

// Five standard errors: a correct generator fails with probability below 1e-6 (and the
// seeds are fixed, so a pass is a pass every run).
constexpr double kSigmas = 5.0;

TEST(RandomUniform, MomentsOfAMillionDraws) {
  for (DType dtype : {DType::f32, DType::f64}) {
    Generator gen(1234);
    const std::vector<double> v = values_of(rand({kSamples}, gen, dtype));
    const Moments m = moments(v);
    const double n = static_cast<double>(kSamples);
    // U(0, 1): mean 1/2, variance 1/12; the variance of the sample variance is
    // (mu4 − sigma^4)/n with mu4 = 1/80.
    EXPECT_NEAR(m.mean, 0.5, kSigmas * std::sqrt(1.0 / 12.0 / n)) << dtype_name(dtype);
    EXPECT_NEAR(m.variance, 1.0 / 12.0, kSigmas * std::sqrt((1.0 / 80 - 1.0 / 144) / n))
        << dtype_name(dtype);
    EXPECT_GE(m.min, 0.0);
    EXPECT_LT(m.max, 1.0);
    EXPECT_LT(m.min, 1e-4);  // the sample reaches both ends
    EXPECT_GT(m.max, 1 - 1e-4);
  }
}

TEST(RandomUniform, KolmogorovSmirnov) {
  Generator gen(99);
  const std::vector<double> v = values_of(rand({kSamples}, gen, DType::f64));
  const double d = ks_statistic(v, [](double x) { return std::clamp(x, 0.0, 1.0); });
  EXPECT_LT(d, 1.63 / std::sqrt(static_cast<double>(kSamples)));
}

TEST(RandomUniform, ScaledRange) {
  Generator gen(5);
  const std::vector<double> v = values_of(uniform({100000}, -3.0, 5.0, gen, DType::f64));
  const Moments m = moments(v);
  EXPECT_GE(m.min, -3.0);
  EXPECT_LT(m.max, 5.0);
  // U(a, b): mean (a+b)/2, standard deviation (b−a)/sqrt(12).
  EXPECT_NEAR(m.mean, 1.0, kSigmas * 8.0 / std::sqrt(12.0 * 100000));
  EXPECT_NEAR(m.variance, 64.0 / 12.0, 64.0 * kSigmas * std::sqrt((1.0 / 80 - 1.0 / 144) / 1e5));
}

TEST(RandomNormal, MomentsOfAMillionDraws) {
  for (DType dtype : {DType::f32, DType::f64}) {
    Generator gen(2024);
    const std::vector<double> v = values_of(randn({kSamples}, gen, dtype));
    const Moments m = moments(v);
    const double n = static_cast<double>(kSamples);
    EXPECT_NEAR(m.mean, 0.0, kSigmas / std::sqrt(n)) << dtype_name(dtype);
    // Variance of the sample variance of N(0, 1): 2/(n−1).
    EXPECT_NEAR(m.variance, 1.0, kSigmas * std::sqrt(2.0 / n)) << dtype_name(dtype);
    double skew = 0, kurt = 0;
    for (double x : v) {
      skew += x * x * x;
      kurt += x * x * x * x;
    }
    skew /= n;
    kurt /= n;
    // Standard errors of the third and fourth raw moments: sqrt(15/n) and sqrt(96/n).
    EXPECT_NEAR(skew, 0.0, kSigmas * std::sqrt(15.0 / n)) << dtype_name(dtype);
    EXPECT_NEAR(kurt, 3.0, kSigmas * std::sqrt(96.0 / n)) << dtype_name(dtype);
    EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); }));
  }
}

TEST(RandomNormal, KolmogorovSmirnov) {
  Generator gen(7);
  const std::vector<double> v = values_of(randn({kSamples}, gen, DType::f64));
  const double d = ks_statistic(v, normal_cdf);
  // Critical value of the one-sample KS test at the 1% level.
  EXPECT_LT(d, 1.63 / std::sqrt(static_cast<double>(kSamples)));
}

// ------------------------------------------------------------------ reproducibility

TEST(RandomStream, SameSeedGivesIdenticalTensors) {
  Generator a(42), b(42);
  for (DType dtype : {DType::f32, DType::f64}) {
    EXPECT_TRUE(test::identical(rand({3, 37}, a, dtype), rand({3, 37}, b, dtype)));
    EXPECT_TRUE(test::identical(randn({100003}, a, dtype), randn({100003}, b, dtype)));
    EXPECT_TRUE(test::identical(uniform({5}, -2, 2, a, dtype), uniform({5}, -2, 2, b, dtype)));
  }
  EXPECT_EQ(a.offset(), b.offset());
}

TEST(RandomStream, EachDrawTakesAFreshOffset) {
  Generator gen(42);
  EXPECT_EQ(gen.offset(), 0u);
  const Tensor first = rand({64}, gen);
  EXPECT_EQ(gen.offset(), 1u);
  const Tensor second = rand({64}, gen);
  EXPECT_EQ(gen.offset(), 2u);
  const std::vector<double> a = values_of(first), b = values_of(second);
  std::size_t equal = 0;
  for (std::size_t i = 0; i < a.size(); ++i) equal += a[i] == b[i];
  EXPECT_EQ(equal, 0u);
}

TEST(RandomStream, DifferentOffsetsAndSeedsDiffer) {
  Generator gen(0);
  gen.set_state(11, 5);
  const std::vector<double> base = values_of(randn({256}, gen, DType::f64));
  gen.set_state(11, 6);
  const std::vector<double> other_offset = values_of(randn({256}, gen, DType::f64));
  gen.set_state(12, 5);
  const std::vector<double> other_seed = values_of(randn({256}, gen, DType::f64));
  gen.set_state(11ull | (1ull << 40), 5);  // differs only in the seed's high word
  const std::vector<double> other_high = values_of(randn({256}, gen, DType::f64));
  gen.set_state(11, 5ull | (1ull << 40));  // differs only in the offset's high word
  const std::vector<double> other_offset_high = values_of(randn({256}, gen, DType::f64));
  for (const auto* v : {&other_offset, &other_seed, &other_high, &other_offset_high}) {
    std::size_t equal = 0;
    for (std::size_t i = 0; i < base.size(); ++i) equal += base[i] == (*v)[i];
    EXPECT_EQ(equal, 0u);
  }
  gen.set_state(11, 5);
  EXPECT_EQ(values_of(randn({256}, gen, DType::f64)), base);
}

// Element i depends on (seed, offset, i) only: the first k elements of a size-n draw equal a
// size-k draw under the same key, whether or not the larger draw ran on several threads.
TEST(RandomStream, ElementsDoNotDependOnTheDrawSize) {
  const std::int64_t big = 100003;  // above the cpu backend's parallel threshold
  for (DType dtype : {DType::f32, DType::f64}) {
    for (int kind = 0; kind < 3; ++kind) {
      auto draw = [&](std::int64_t n) {
        Generator gen(0);
        gen.set_state(777, 31);
        if (kind == 0) return values_of(rand({n}, gen, dtype));
        if (kind == 1) return values_of(randn({n}, gen, dtype));
        return values_of(uniform({n}, -1.5, 0.5, gen, dtype));
      };
      const std::vector<double> all = draw(big);
      for (std::int64_t k : {1, 2, 3, 5, 31, 33, 1000}) {
        const std::vector<double> prefix = draw(k);
        EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), all.begin()))
            << dtype_name(dtype) << " kind " << kind << " k " << k;
      }
    }
  }
}

TEST(RandomStream, ShapeDoesNotChangeTheNumbers) {
  Generator a(3), b(3);
  EXPECT_EQ(values_of(randn({7, 11, 3}, a)), values_of(randn({231}, b)));
}

TEST(RandomStream, ElementsFollowTheKernelFormula) {
  Generator gen(0);
  gen.set_state(0xabcdef12345ull, 9);
  const std::vector<float> f = rand({37}, gen, DType::f32).to_vector<float>();
  gen.set_state(0xabcdef12345ull, 9);
  const std::vector<double> d = rand({37}, gen, DType::f64).to_vector<double>();
  for (std::uint64_t i = 0; i < 37; ++i) {
    EXPECT_EQ(f[i], kernels::philox_uniform_f32(0xabcdef12345ull, 9, i));
    EXPECT_EQ(d[i], kernels::philox_uniform_f64(0xabcdef12345ull, 9, i));
  }
}

TEST(RandomStream, RejectsIntegerDtypes) {
  Generator gen(1);
  EXPECT_LATENT_ERROR(rand({3}, gen, DType::i32), "uniform", "int32");
  EXPECT_LATENT_ERROR(randn({3}, gen, DType::i32), "randn", "int32");
}

TEST(RandomStream, EmptyDrawIsEmpty) {
  Generator gen(1);
  EXPECT_EQ(rand({0}, gen).numel(), 0);
  EXPECT_EQ(randn({2, 0}, gen).numel(), 0);
}

// ------------------------------------------------------------------ host-side scalar draws

TEST(RandomGenerator, ScalarDraws) {
  Generator gen(17);
  const std::uint64_t start = gen.offset();
  double sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const double u = gen.next_uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_EQ(gen.offset(), start + n);
  EXPECT_NEAR(sum / n, 0.5, kSigmas * std::sqrt(1.0 / 12.0 / n));

  std::vector<int> counts(7, 0);
  for (int i = 0; i < 7000; ++i) {
    const std::int64_t k = gen.next_int(7);
    ASSERT_GE(k, 0);
    ASSERT_LT(k, 7);
    ++counts[k];
  }
  // Binomial(7000, 1/7): mean 1000, standard deviation ≈ 29.3.
  for (int c : counts) EXPECT_NEAR(c, 1000, kSigmas * 29.3);
  EXPECT_EQ(gen.next_int(1), 0);
  EXPECT_LATENT_ERROR(gen.next_int(0), "next_int");

  Generator a(5), b(5);
  EXPECT_EQ(a.next_u64(), b.next_u64());
  EXPECT_NE(a.next_u64(), a.next_u64());
}

// ================================================================== the normal transform
// kernels/philox_normal.cuh: Box–Muller from exactly rounded + − × ÷ √ and fma only, so cpu,
// SIMT and GPU draw bitwise-identical normals.

// Box–Muller in long double with libm: the reference the exact transform approximates.
void reference_box_muller(std::uint32_t w1, std::uint32_t w2, long double& n1, long double& n2) {
  const long double u1 = (static_cast<long double>(w1) + 1.0L) / 4294967296.0L;
  const long double u2 = static_cast<long double>(w2) / 4294967296.0L;
  const long double radius = std::sqrt(-2.0L * std::log(u1));
  const long double angle = 2.0L * std::numbers::pi_v<long double> * u2;
  n1 = radius * std::cos(angle);
  n2 = radius * std::sin(angle);
}

TEST(PhiloxNormal, AgreesWithLibmBoxMullerToAFewUlp) {
  double worst = 0.0;
  for (std::uint64_t g = 0; g < 200000; ++g) {
    const kernels::Philox4 r = kernels::philox_block(11, 3, g);
    for (int pair = 0; pair < 2; ++pair) {
      double a, b;
      long double ra, rb;
      box_muller(r.x[2 * pair], r.x[2 * pair + 1], a, b);
      reference_box_muller(r.x[2 * pair], r.x[2 * pair + 1], ra, rb);
      const long double radius = std::sqrt(ra * ra + rb * rb);
      // Error relative to the radius: the size of the pair, which the angle shares out.
      worst = std::max(worst, static_cast<double>(std::abs(a - ra) / std::max(radius, 1e-300L)));
      worst = std::max(worst, static_cast<double>(std::abs(b - rb) / std::max(radius, 1e-300L)));
    }
  }
  EXPECT_LT(worst, 4 * 2.220446049250313e-16);  // measured: about 1.5 ulp
}

TEST(PhiloxNormal, EdgeWords) {
  double a, b;
  // u1 = 1: radius 0.
  box_muller(0xffffffffu, 0x12345678u, a, b);
  EXPECT_EQ(a, 0.0);
  EXPECT_EQ(b, 0.0);
  // u1 = 2^-32: the largest radius, sqrt(64·ln 2); θ = 0.
  box_muller(0u, 0u, a, b);
  EXPECT_NEAR(a, std::sqrt(64.0 * std::numbers::ln2), 1e-14);
  EXPECT_EQ(b, 0.0);
  // Quarter turns are exact: θ = π/2, π, 3π/2.
  const double r = std::sqrt(64.0 * std::numbers::ln2);
  box_muller(0u, 0x40000000u, a, b);
  EXPECT_EQ(a, 0.0);
  EXPECT_NEAR(b, r, 1e-14);
  box_muller(0u, 0x80000000u, a, b);
  EXPECT_NEAR(a, -r, 1e-14);
  EXPECT_EQ(b, 0.0);
  box_muller(0u, 0xc0000000u, a, b);
  EXPECT_EQ(a, 0.0);
  EXPECT_NEAR(b, -r, 1e-14);
  // Octant boundaries, where the range reduction switches quadrant.
  for (std::uint32_t w2 : {0x1fffffffu, 0x20000000u, 0x5fffffffu, 0x60000000u, 0xdfffffffu,
                           0xe0000000u, 0xffffffffu}) {
    long double ra, rb;
    box_muller(0x9abcdef0u, w2, a, b);
    reference_box_muller(0x9abcdef0u, w2, ra, rb);
    EXPECT_NEAR(a, static_cast<double>(ra), 1e-15) << std::hex << w2;
    EXPECT_NEAR(b, static_cast<double>(rb), 1e-15) << std::hex << w2;
  }
}

// Pinned bit patterns: the transform must give exactly these on every machine and compiler
// (a build that let the compiler contract a·b + c into an fma would change some).
TEST(PhiloxNormal, GoldenBitPatterns) {
  struct Golden {
    std::uint64_t seed, offset, index, bits;
  };
  const Golden cases[] = {
      {0x0ull, 0x0ull, 0x0ull, 0x3fefb7665db1b649ull},  // 0.99113767909666095
      {0x0ull, 0x0ull, 0x1ull, 0xbfed96d5ff0aec98ull},  // -0.92466258824369429
      {0x0ull, 0x0ull, 0x2ull, 0xbfe3c373dd6d9558ull},  // -0.61760895965259532
      {0x0ull, 0x0ull, 0x3ull, 0xbfdeda3633cd9712ull},  // -0.48206858691115528
      {0x2aull, 0x9ull, 0x3039ull, 0x3fdcca4449bbfdefull},  // 0.4498453826963375
      {0x2aull, 0x9ull, 0x303aull, 0x3ff5163088cd88d6ull},  // 1.3179173797475889
      {0xdeadbeefcafef00dull, 0x10000000000ull, 0x3b9ac9ffull, 0x3fec57d08dadaa1eull},  // 0.88571956321294798
      {0x7ull, 0x3ull, 0x200000000ull, 0x3ff405bb195575e2ull},  // 1.2513991345980391
      {0x7e8ull, 0x1ull, 0x4dull, 0x3ff694316417e852ull},  // 1.4111799154184337
      {0x1ull, 0x2ull, 0x3ull, 0x3fda2550f7c04e28ull},  // 0.40852760500385665
  };
  for (const Golden& c : cases) {
    const double v = philox_normal(c.seed, c.offset, c.index);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(v), c.bits)
        << "seed " << c.seed << " offset " << c.offset << " index " << c.index << ": " << v;
  }
}

TEST(PhiloxNormal, SingleElementMatchesTheGroupOfFour) {
  for (std::uint64_t g = 0; g < 1000; ++g) {
    const kernels::Normal4 four = philox_normal4(5, 17, g);
    for (int k = 0; k < 4; ++k) EXPECT_EQ(philox_normal(5, 17, 4 * g + k), four.v[k]);
  }
}

// ------------------------------------------------------------------ statistics

TEST(PhiloxNormal, MomentsAndKolmogorovSmirnovOfAMillion) {
  constexpr std::int64_t n = 1000000;
  std::vector<double> v(n);
  for (std::int64_t i = 0; i < n; ++i) v[i] = philox_normal(2024, 1, static_cast<std::uint64_t>(i));
  double mean = 0, m2 = 0, m3 = 0, m4 = 0;
  for (double x : v) mean += x;
  mean /= n;
  for (double x : v) {
    const double d = x - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  const double sn = std::sqrt(static_cast<double>(n));
  EXPECT_NEAR(mean, 0.0, 5.0 / sn);
  EXPECT_NEAR(m2, 1.0, 5.0 * std::sqrt(2.0) / sn);
  EXPECT_NEAR(m3, 0.0, 5.0 * std::sqrt(15.0) / sn);
  EXPECT_NEAR(m4, 3.0, 5.0 * std::sqrt(96.0) / sn);
  std::sort(v.begin(), v.end());
  double d = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double f = normal_cdf(v[i]);
    d = std::max({d, static_cast<double>(i + 1) / n - f, f - static_cast<double>(i) / n});
  }
  EXPECT_LT(d, 1.63 / sn);  // the KS test's critical value at the 1% level
  // The tails: P(|x| > 4) = 6.3e-5, so about 63 of a million, and none beyond sqrt(64 ln 2).
  const auto beyond4 = std::count_if(v.begin(), v.end(), [](double x) { return std::abs(x) > 4; });
  EXPECT_NEAR(static_cast<double>(beyond4), 63.3, 5 * std::sqrt(63.3));
  EXPECT_LE(std::max(-v.front(), v.back()), std::sqrt(64.0 * std::numbers::ln2) + 1e-12);
}

TEST(PhiloxNormal, RandnUsesTheExactTransform) {
  for (DType dtype : {DType::f32, DType::f64}) {
    Generator gen(0);
    gen.set_state(99, 4);
    const std::vector<double> v = values_of(randn({1003}, gen, dtype));
    for (std::size_t i = 0; i < v.size(); ++i) {
      const double expected = philox_normal(99, 4, i);
      EXPECT_EQ(v[i], dtype == DType::f32 ? static_cast<double>(static_cast<float>(expected))
                                          : expected)
          << i;
    }
  }
}

// ================================================================== on every device

// Every draw on every device bit for bit against the cpu backend: uniforms are exact
// arithmetic on the Philox words, normals the exact transform (no libm inside).
TEST(RandomFill, DrawsMatchTheCpuBackendBitForBit) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (std::int64_t n : {1, 2, 3, 5, 31, 33, 1000003}) {
      OpCase c;
      c.name = "randn, rand and uniform [" + std::to_string(n) + "] " + dtype_name(dtype);
      c.op_on = [n, dtype](const Tensors&, Device device) {
        Generator gen(0);
        gen.set_state(1234, 77);
        return Tensors{randn({n}, gen, dtype, device), rand({n}, gen, dtype, device),
                       uniform({n}, -3.0, 5.0, gen, dtype, device)};
      };
      c.tolerance = test::every_dtype(test::exact());
      c.cost = cases::random_fill(3 * n, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The same draws from a Generator at its start (99, 0) and at a fresh offset after it.
TEST(RandomFill, GeneratorDrawsMatchTheCpuBackend) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (std::int64_t n : {1, 5, 1000003}) {
      OpCase c;
      c.name = "rand then randn from Generator(99) [" + std::to_string(n) + "] " + dtype_name(dtype);
      c.op_on = [n, dtype](const Tensors&, Device device) {
        Generator gen(99);
        return Tensors{rand({n}, gen, dtype, device), randn({n}, gen, dtype, device)};
      };
      c.tolerance = test::every_dtype(test::exact());
      c.cost = cases::random_fill(2 * n, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The fills of nn::init write into a caller's tensor: the harness puts guards around it.
TEST(RandomFill, InPlaceFillsStayInsideTheirTensor) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& shape : {Shape{1}, Shape{31}, Shape{33}, Shape{1000003}, Shape{3, 7, 5}}) {
      OpCase c;
      c.name = "init::uniform_ and init::normal_ " + shape_str(shape) + " " + dtype_name(dtype);
      c.inputs = [&](Generator&) { return Tensors{zeros(shape, dtype), zeros(shape, dtype)}; };
      c.op = [](const Tensors& in) {
        Generator gen(5);
        nn::init::uniform_(in[0], -2.0, 2.0, gen);
        nn::init::normal_(in[1], 1.0, 0.5, gen);
        return Tensors{in[0], in[1]};
      };
      c.reference = [&](const Tensors&) {
        Generator gen(5);
        const Tensor u = uniform(shape, -2.0, 2.0, gen, dtype);
        const Tensor z = add(mul(randn(shape, gen, dtype), 0.5), 1.0);
        return std::vector<Expected>{{values_of(u), {}, shape, dtype}, {values_of(z), {}, shape, dtype}};
      };
      c.writes = {0, 1};
      c.tolerance = test::every_dtype(test::exact());
      c.cost = cases::random_fill(2 * shape_numel(shape), dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The ε inside reparameterize: with mu = 0 and logvar = 0, z = ε exactly, the same bits on
// every device and the exact transform's.
TEST(PhiloxNormal, ReparameterizeDrawsTheSameEpsilonOnEveryDevice) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& shape : {Shape{1, 1}, Shape{3, 33}, Shape{2, 4, 7, 7}, Shape{1, 1000003}}) {
      OpCase c;
      c.name = "reparameterize(0, 0) " + shape_str(shape) + " " + dtype_name(dtype);
      c.inputs = [&](Generator&) { return Tensors{zeros(shape, dtype), zeros(shape, dtype)}; };
      c.op = [](const Tensors& in) { return Tensors{reparameterize(in[0], in[1], PhiloxKey{42, 9})}; };
      c.reference = [&](const Tensors&) {
        Expected e{std::vector<double>(shape_numel(shape)), {}, shape, dtype};
        for (std::size_t i = 0; i < e.values.size(); ++i) {
          const double expected = philox_normal(42, 9, i);
          e.values[i] = dtype == DType::f32 ? static_cast<double>(static_cast<float>(expected)) : expected;
        }
        return std::vector<Expected>{e};
      };
      c.tolerance = test::every_dtype(test::exact());
      c.cost = cases::reparam_kl_forward(shape[0], shape_numel(shape) / shape[0], dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(PhiloxNormal, DifferentOffsetsAndSeedsGiveDifferentNumbers) {
  const Shape shape{4, 64};
  const Tensor zero = zeros(shape, DType::f64);
  const std::vector<double> base = values_of(reparameterize(zero, zero, PhiloxKey{7, 100}));
  for (PhiloxKey other : {PhiloxKey{7, 101}, PhiloxKey{8, 100}, PhiloxKey{7, 100 + (1ull << 40)}}) {
    const std::vector<double> v = values_of(reparameterize(zero, zero, other));
    std::size_t equal = 0;
    for (std::size_t i = 0; i < v.size(); ++i) equal += v[i] == base[i];
    EXPECT_EQ(equal, 0u);
  }
  // A Generator hands out a fresh offset per draw.
  Generator gen(7);
  const std::vector<double> first = values_of(reparameterize(zero, zero, gen));
  const std::vector<double> second = values_of(reparameterize(zero, zero, gen));
  EXPECT_NE(first, second);
  EXPECT_EQ(gen.offset(), 2u);
}

}  // namespace
}  // namespace latent
