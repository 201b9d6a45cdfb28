// The bit-reproducible normal transform (kernels/philox_normal.cuh): accuracy against libm's
// Box–Muller, pinned bit patterns, the statistics of a million draws, and bitwise-equal ε on
// the cpu backend and the cuda backend (the SIMT executor in CI, the GPU where there is one).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "backends/device.h"
#include "backends/registry.h"
#include "kernels/philox_normal.cuh"
#include "latent/latent.h"
#include "latent/vae.h"
#include "test_util.h"

namespace latent {
namespace {

using kernels::box_muller;
using kernels::philox_normal;
using kernels::philox_normal4;
using test::values_of;

const Device kCuda = Device::cuda(0);

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

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

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

// ------------------------------------------------------------------ across backends

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

TEST(PhiloxNormal, BitwiseEqualOnCpuAndCuda) {
  if (!backend_available(DeviceType::cuda)) {
    GTEST_SKIP() << "this build uses nvcc and no GPU is present: the cuda half of this test "
                    "needs a GPU here (the default SIMT build runs it on the CPU)";
  }
  backend::set_poison_allocations(kCuda, true);
  for (DType dtype : {DType::f32, DType::f64}) {
    for (std::int64_t n : {1, 2, 3, 5, 31, 33, 1000003}) {
      Generator a(0), b(0);
      a.set_state(1234, 77);
      b.set_state(1234, 77);
      EXPECT_TRUE(test::identical(randn({n}, a, dtype, kCuda).to(Device::cpu()),
                                  randn({n}, b, dtype)))
          << dtype_name(dtype) << " n " << n;
    }
    // The ε inside reparameterize: with mu = 0 and logvar = 0, z = ε exactly.
    for (const Shape& shape : {Shape{1, 1}, Shape{3, 33}, Shape{2, 4, 7, 7}, Shape{1, 1000003}}) {
      const PhiloxKey key{42, 9};
      const Tensor on_cpu = reparameterize(zeros(shape, dtype), zeros(shape, dtype), key);
      const Tensor on_cuda =
          reparameterize(zeros(shape, dtype, kCuda), zeros(shape, dtype, kCuda), key);
      EXPECT_TRUE(test::identical(on_cuda.to(Device::cpu()), on_cpu)) << shape_str(shape);
      const std::vector<double> v = values_of(on_cpu);
      for (std::size_t i = 0; i < std::min<std::size_t>(v.size(), 4096); ++i) {
        const double expected = philox_normal(42, 9, i);
        ASSERT_EQ(v[i], dtype == DType::f32 ? static_cast<double>(static_cast<float>(expected))
                                            : expected);
      }
    }
  }
  backend::set_poison_allocations(kCuda, false);
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
