// Philox4x32-10 against Random123's known answers, and the statistics and reproducibility
// of the tensors drawn from it (rand, randn, uniform, Generator's scalar draws).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/philox.cuh"
#include "latent/autograd.h"
#include "latent/error.h"
#include "latent/ops.h"
#include "latent/random.h"
#include "latent/tensor.h"
#include "test_util.h"

namespace latent {
namespace {

using kernels::Philox4;
using kernels::philox4x32_10;
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

}  // namespace
}  // namespace latent
