// Vector quantization: the nearest-code argmin against a float64 brute force (every algorithm,
// every backend, awkward sizes, deliberate ties, cosine mode), the quantizer's losses and
// straight-through gradients against finite differences, codebook metrics on hand-built
// histograms, and bad input. The EMA statistics, revival, k-means and the VQ-VAE are in
// tests/vq_ema_test.cpp.
//
// `cuda` is the SIMT executor in the default build (a GPU in an nvcc build with one), so
// every kernel runs here; allocations are poisoned (NaN / −1 bytes) while the tests run.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "backends/device.h"
#include "backends/registry.h"
#include "latent/latent.h"
#include "latent/vq.h"
#include "test_util.h"

namespace latent {
namespace {

using test::all_close;
using test::identical;
using test::values_of;

const Device kCuda = Device::cuda(0);

class Vq : public test::CpuAndCudaTest {};

struct Case {
  std::int64_t N, K, D;
};

std::string case_name(const Case& c) {
  return "N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) + " D=" + std::to_string(c.D);
}

// Float64 brute force: the index of the smallest Σ (z − e)² (first on ties) and every distance.
struct BruteForce {
  std::vector<std::int32_t> index;
  std::vector<double> dist;  // [N, K]
};

BruteForce brute_force(const std::vector<double>& z, const std::vector<double>& e, std::int64_t N,
                       std::int64_t K, std::int64_t D) {
  BruteForce b;
  b.index.resize(N);
  b.dist.resize(static_cast<std::size_t>(N * K));
  for (std::int64_t i = 0; i < N; ++i) {
    double best = std::numeric_limits<double>::infinity();
    for (std::int64_t k = 0; k < K; ++k) {
      long double acc = 0;
      for (std::int64_t d = 0; d < D; ++d) {
        const long double diff = static_cast<long double>(z[i * D + d]) - e[k * D + d];
        acc += diff * diff;
      }
      b.dist[i * K + k] = static_cast<double>(acc);
      if (b.dist[i * K + k] < best) {
        best = b.dist[i * K + k];
        b.index[i] = static_cast<std::int32_t>(k);
      }
    }
  }
  return b;
}

// The near-tie bound of docs/vq.md: a returned index k̂ that differs from the brute force's
// k* is acceptable when d(k̂) − d(k*) ≤ δ(k̂) + δ(k*), δ(k) = γ_{D+4}·(‖e_k‖² + 2‖z‖‖e_k‖).
double near_tie_bound(const std::vector<double>& z, const std::vector<double>& e, std::int64_t i,
                      std::int64_t k, std::int64_t D, double unit_roundoff) {
  double zz = 0, ee = 0;
  for (std::int64_t d = 0; d < D; ++d) {
    zz += z[i * D + d] * z[i * D + d];
    ee += e[k * D + d] * e[k * D + d];
  }
  const double n = static_cast<double>(D + 4);
  const double gamma = n * unit_roundoff / (1 - n * unit_roundoff);
  return gamma * (ee + 2 * std::sqrt(zz) * std::sqrt(ee));
}

// Every index equals the brute force's or is a near-tie within the bound; returns the number
// of near-tie differences.
std::int64_t expect_argmin_correct(const Tensor& indices, const BruteForce& b,
                                   const std::vector<double>& z, const std::vector<double>& e,
                                   const Case& c, DType dtype, const std::string& what) {
  const std::vector<std::int32_t> got = indices.to_vector<std::int32_t>();
  const double u = dtype == DType::f32 ? std::ldexp(1.0, -24) : std::ldexp(1.0, -53);
  std::int64_t near_ties = 0;
  for (std::int64_t i = 0; i < c.N; ++i) {
    const std::int32_t k = got[i], want = b.index[i];
    if (k == want) continue;
    if (k < 0 || k >= c.K) {
      ADD_FAILURE() << what << ": row " << i << " got index " << k;
      continue;
    }
    const double excess = b.dist[i * c.K + k] - b.dist[i * c.K + want];
    const double bound = near_tie_bound(z, e, i, k, c.D, u) + near_tie_bound(z, e, i, want, c.D, u);
    EXPECT_LE(excess, bound) << what << ": row " << i << " got " << k << ", want " << want;
    ++near_ties;
  }
  return near_ties;
}

TEST_F(Vq, ArgminMatchesFloat64BruteForceOverAwkwardSizes) {
  const std::vector<Case> cases = {
      {1, 1, 1},     {1, 7, 3},      {5, 1, 4},      {3, 300, 2},   // N = 1, K = 1, K > N
      {64, 20, 1},   {33, 17, 5},    {130, 129, 7},  {257, 300, 37}, // D = 1, D % 4 ≠ 0, tile edges
      {100, 64, 16}, {20000, 48, 12}};                                // D % 4 = 0 (float4), large N
  Generator gen(1);
  for (const Case& c : cases) {
    for (DType dtype : {DType::f32, DType::f64}) {
      const Tensor z = uniform({c.N, c.D}, -1.0, 1.0, gen, dtype);
      const Tensor e = uniform({c.K, c.D}, -1.0, 1.0, gen, dtype);
      const std::vector<double> zv = values_of(z), ev = values_of(e);
      const BruteForce b = brute_force(zv, ev, c.N, c.K, c.D);
      std::int64_t ties = 0;
      for (Device device : devices()) {
        std::vector<VqArgminAlgorithm> algorithms = {VqArgminAlgorithm::tiled};
        if (device.is_cuda()) {
          algorithms.push_back(VqArgminAlgorithm::naive);
          algorithms.push_back(VqArgminAlgorithm::gemm);
        }
        for (VqArgminAlgorithm algorithm : algorithms) {
          const std::string what = case_name(c) + " " + dtype_name(dtype) + " " + device.str() +
                                   " algorithm " + std::to_string(static_cast<int>(algorithm));
          VqArgminOptions options;
          options.algorithm = algorithm;
          options.distances = true;
          const VqArgminResult r = vq_argmin(z.to(device), e.to(device), options);
          ASSERT_EQ(r.indices.shape(), Shape{c.N}) << what;
          ties += expect_argmin_correct(r.indices.to(Device::cpu()), b, zv, ev, c, dtype, what);
          // The distance of the returned code, recomputed for it alone.
          const std::vector<std::int32_t> idx = r.indices.to_vector<std::int32_t>();
          std::vector<double> want(c.N);
          for (std::int64_t i = 0; i < c.N; ++i) want[i] = b.dist[i * c.K + idx[i]];
          EXPECT_TRUE(all_close(r.distances, want, dtype == DType::f32 ? 1e-5 : 1e-13,
                                dtype == DType::f32 ? 1e-6 : 1e-14))
              << what;
        }
      }
      // Random data ties almost never; the bound is there for the rare near-tie.
      EXPECT_LE(ties, std::max<std::int64_t>(2, c.N / 1000)) << case_name(c);
    }
  }
}

// Codes on a coarse integer lattice and rows within 0.1 of a known code: no near-ties, so
// every backend and algorithm must return exactly the planted index.
TEST_F(Vq, ArgminIsExactWithoutNearTies) {
  for (const Case& c : std::vector<Case>{{500, 300, 6}, {999, 133, 4}, {64, 10, 1}}) {
    Generator gen(2);
    std::set<std::vector<int>> seen;
    std::vector<double> codes;
    const int span = c.D == 1 ? 20 : 6;
    while (static_cast<std::int64_t>(seen.size()) < c.K) {
      std::vector<int> v(c.D);
      for (auto& x : v) x = static_cast<int>(gen.next_int(2 * span + 1)) - span;
      if (!seen.insert(v).second) continue;
      for (int x : v) codes.push_back(x);
    }
    // The lattice codes are at least 1 apart; the noise keeps every row within 0.1·√D / … of
    // its code, far from halfway.
    std::vector<double> rows;
    std::vector<std::int32_t> planted;
    const std::vector<double> noise =
        values_of(uniform({c.N, c.D}, -0.1 / std::sqrt(double(c.D)), 0.1 / std::sqrt(double(c.D)),
                          gen, DType::f64));
    for (std::int64_t i = 0; i < c.N; ++i) {
      const auto k = static_cast<std::int32_t>(gen.next_int(c.K));
      planted.push_back(k);
      for (std::int64_t d = 0; d < c.D; ++d) rows.push_back(codes[k * c.D + d] + noise[i * c.D + d]);
    }
    const Tensor expected = from_vector(planted, {c.N});
    for (DType dtype : {DType::f32, DType::f64}) {
      const Tensor z = from_vector(rows, {c.N, c.D}).to(dtype);
      const Tensor e = from_vector(codes, {c.K, c.D}).to(dtype);
      for (Device device : devices()) {
        for (VqArgminAlgorithm a : {VqArgminAlgorithm::tiled, VqArgminAlgorithm::naive,
                                    VqArgminAlgorithm::gemm}) {
          VqArgminOptions options;
          options.algorithm = a;
          EXPECT_TRUE(identical(vq_argmin(z.to(device), e.to(device), options).indices.to(Device::cpu()),
                                expected))
              << case_name(c) << " " << device.str() << " " << static_cast<int>(a);
        }
      }
    }
  }
}

// Exactly equal distances (duplicate codes, mirror-image codes, codes in different tiles and
// different splits of the code range) go to the lowest index everywhere.
TEST_F(Vq, TiesGoToTheLowestIndex) {
  const std::int64_t K = 400, D = 3;
  std::vector<double> codes(K * D);
  for (std::int64_t k = 0; k < K; ++k)
    for (std::int64_t d = 0; d < D; ++d) codes[k * D + d] = 10.0 + k * 4 + d;  // far away
  auto set_code = [&](std::int64_t k, std::vector<double> v) {
    for (std::int64_t d = 0; d < D; ++d) codes[k * D + d] = v[d];
  };
  // Row 0 (z = (0, 0, −7)): the codes at 390, 7 and 200 are all at distance 1: want 7.
  set_code(390, {0, 0, -6});
  set_code(7, {0, 0, -8});
  set_code(200, {0, 1, -7});
  // Row 1 (z = (5, 5, 5)): a duplicate pair in two tiles (131 and 260) and one in the last.
  set_code(260, {5, 5, 5});
  set_code(131, {5, 5, 5});
  set_code(399, {5, 5, 5});
  // Row 2 (z = (2, 0, 0)): 0 at distance 1 on one side, 1 at distance 1 on the other.
  set_code(0, {3, 0, 0});
  set_code(1, {1, 0, 0});
  const std::vector<double> rows = {0, 0, -7, 5, 5, 5, 2, 0, 0};
  const Tensor want = from_vector(std::vector<std::int32_t>{7, 131, 0}, {3});
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor z = from_vector(rows, {3, D}).to(dtype);
    const Tensor e = from_vector(codes, {K, D}).to(dtype);
    for (Device device : devices()) {
      for (VqArgminAlgorithm a : {VqArgminAlgorithm::tiled, VqArgminAlgorithm::naive,
                                  VqArgminAlgorithm::gemm}) {
        for (int splits : {1, 2, 4}) {
          VqArgminOptions options;
          options.algorithm = a;
          options.splits = splits;
          EXPECT_TRUE(identical(vq_argmin(z.to(device), e.to(device), options).indices.to(Device::cpu()),
                                want))
              << device.str() << " algorithm " << static_cast<int>(a) << " splits " << splits;
        }
      }
    }
  }
}

// Splitting the code range over blocks changes the launch, never the answer.
TEST_F(Vq, TiledSplitsGiveIdenticalIndices) {
  if (!has_cuda_) GTEST_SKIP() << "needs the cuda backend (SIMT or a GPU)";
  Generator gen(3);
  const Tensor z = uniform({300, 20}, -1.0, 1.0, gen).to(kCuda);
  const Tensor e = uniform({1000, 20}, -1.0, 1.0, gen).to(kCuda);
  VqArgminOptions one;
  one.splits = 1;
  const Tensor reference = vq_argmin(z, e, one).indices.to(Device::cpu());
  for (int splits : {2, 3, 8, 100}) {
    VqArgminOptions options;
    options.splits = splits;
    EXPECT_TRUE(identical(vq_argmin(z, e, options).indices.to(Device::cpu()), reference)) << splits;
  }
}

TEST_F(Vq, CosineModePicksTheMostSimilarCode) {
  Generator gen(4);
  const std::int64_t N = 200, K = 50, D = 8;
  const Tensor z = uniform({N, D}, -1.0, 1.0, gen, DType::f64);
  // Codes of very different lengths: Euclidean and cosine answers differ.
  const Tensor e = mul(uniform({K, D}, -1.0, 1.0, gen, DType::f64),
                       uniform({K, 1}, 0.1, 5.0, gen, DType::f64));
  const std::vector<double> zv = values_of(z), ev = values_of(e);
  std::vector<std::int32_t> want(N);
  for (std::int64_t i = 0; i < N; ++i) {
    double best = -2.0;
    for (std::int64_t k = 0; k < K; ++k) {
      double dot = 0, zz = 0, ee = 0;
      for (std::int64_t d = 0; d < D; ++d) {
        dot += zv[i * D + d] * ev[k * D + d];
        zz += zv[i * D + d] * zv[i * D + d];
        ee += ev[k * D + d] * ev[k * D + d];
      }
      const double cosine = dot / std::sqrt(zz * ee);
      if (cosine > best) {
        best = cosine;
        want[i] = static_cast<std::int32_t>(k);
      }
    }
  }
  for (Device device : devices()) {
    VectorQuantizeOptions options;
    options.cosine = true;
    const VectorQuantizeResult q = vector_quantize(z.to(device), e.to(device), options);
    EXPECT_TRUE(identical(q.indices.to(Device::cpu()), from_vector(want, {N}))) << device.str();
    // z_q holds the unit-length codes.
    const std::vector<double> zq = values_of(q.z_q);
    for (std::int64_t i = 0; i < N; ++i) {
      double norm = 0;
      for (std::int64_t d = 0; d < D; ++d) norm += zq[i * D + d] * zq[i * D + d];
      EXPECT_NEAR(norm, 1.0, 1e-12);
    }
  }
}

// ------------------------------------------------------------------ losses and gradients

// Rows placed near codes (no argmin switch within the finite-difference step).
struct Planted {
  Tensor z, codebook;
};
Planted planted(std::int64_t N, std::int64_t K, std::int64_t D, Generator& gen) {
  const Tensor codebook = mul(uniform({K, D}, -1.0, 1.0, gen, DType::f64), 3.0);
  std::vector<std::int32_t> pick(N);
  for (auto& k : pick) k = static_cast<std::int32_t>(gen.next_int(K));
  const Tensor z = add(vq_gather(codebook, from_vector(pick, {N})),
                       uniform({N, D}, -0.05, 0.05, gen, DType::f64));
  return {z, codebook};
}

TEST_F(Vq, CodebookLossGradientMatchesFiniteDifferences) {
  Generator gen(5);
  const Planted p = planted(12, 6, 3, gen);
  for (bool cosine : {false, true}) {
    auto f = [cosine](const std::vector<Tensor>& in) {
      return vector_quantize(in[0], in[1], {0.25, cosine}).codebook_loss;
    };
    // Only the codebook: sg[z] means the loss does not reach z.
    test::GradCheckOptions options;
    options.check = {false, true};
    EXPECT_TRUE(test::check_gradients(f, {p.z, p.codebook}, gen, options)) << cosine;
  }
}

TEST_F(Vq, CommitmentLossGradientMatchesFiniteDifferences) {
  Generator gen(6);
  const Planted p = planted(10, 5, 4, gen);
  for (bool cosine : {false, true}) {
    auto f = [cosine](const std::vector<Tensor>& in) {
      return vector_quantize(in[0], in[1], {0.25, cosine}).commitment_loss;
    };
    test::GradCheckOptions options;
    options.check = {true, false};
    EXPECT_TRUE(test::check_gradients(f, {p.z, p.codebook}, gen, options)) << cosine;
  }
}

TEST_F(Vq, LossIsCodebookPlusBetaCommitment) {
  Generator gen(7);
  const Planted p = planted(20, 8, 5, gen);
  const VectorQuantizeResult q = vector_quantize(p.z, p.codebook, {0.4, false});
  // Both terms have the value mean ‖z − e‖²; the loss weighs the commitment term by β.
  const double mse = mean(square(sub(p.z, vq_gather(p.codebook, q.indices)))).item();
  EXPECT_NEAR(q.codebook_loss.item(), mse, 1e-15);
  EXPECT_NEAR(q.commitment_loss.item(), mse, 1e-15);
  EXPECT_NEAR(q.loss.item(), 1.4 * mse, 1e-15);
}

TEST_F(Vq, GatherGradientMatchesFiniteDifferences) {
  Generator gen(8);
  const Tensor codebook = uniform({7, 3}, -1.0, 1.0, gen, DType::f64);
  const Tensor idx = from_vector(std::vector<std::int32_t>{6, 0, 6, 2, 2, 2, 5}, {7});
  auto f = [idx](const std::vector<Tensor>& in) { return vq_gather(in[0], idx); };
  EXPECT_TRUE(test::check_gradients(f, {codebook}, gen));
}

// The straight-through estimator: dL/dz = dL/dz_q exactly, and nothing reaches the codebook
// through z_q (only the codebook loss trains it).
TEST_F(Vq, StraightThroughPassesTheGradientUnchanged) {
  Generator gen(9);
  const Planted p = planted(30, 9, 4, gen);
  for (Device device : devices()) {
    const Tensor z = p.z.to(device).detach().requires_grad_();
    const Tensor e = p.codebook.to(device).detach().requires_grad_();
    const VectorQuantizeResult q = vector_quantize(z, e);
    EXPECT_TRUE(identical(q.z_q.detach(), vq_gather(e.detach(), q.indices))) << device.str();
    const Tensor w = uniform({30, 4}, -1.0, 1.0, gen, DType::f64).to(device);
    sum(mul(q.z_q, w)).backward();
    EXPECT_TRUE(identical(z.grad().to(Device::cpu()), w.to(Device::cpu()))) << device.str();
    EXPECT_FALSE(e.grad().defined()) << device.str();
  }
}

// The whole quantizer on cuda against cpu: values, losses and every gradient.
TEST_F(Vq, VectorQuantizeCudaMatchesCpu) {
  if (!has_cuda_) GTEST_SKIP() << "needs the cuda backend (SIMT or a GPU)";
  Generator gen(10);
  for (DType dtype : {DType::f32, DType::f64}) {
    const Planted p = planted(517, 70, 6, gen);
    auto run = [&](Device device) {
      const Tensor z = p.z.to(dtype).to(device).detach().requires_grad_();
      const Tensor e = p.codebook.to(dtype).to(device).detach().requires_grad_();
      const VectorQuantizeResult q = vector_quantize(z, e, {0.25, false});
      Generator wgen(11);
      const Tensor w = uniform(z.shape(), -1.0, 1.0, wgen, dtype).to(device);
      add(sum(mul(q.z_q, w)), q.loss).backward();
      return std::vector<Tensor>{q.indices, q.z_q.detach(), q.loss.detach(), q.counts,
                                 z.grad(), e.grad()};
    };
    const std::vector<Tensor> cpu = run(Device::cpu()), cuda = run(kCuda);
    const double tol = dtype == DType::f32 ? 1e-5 : 1e-12;
    EXPECT_TRUE(identical(cuda[0].to(Device::cpu()), cpu[0]));
    EXPECT_TRUE(identical(cuda[3].to(Device::cpu()), cpu[3]));
    for (int i : {1, 2, 4, 5})
      EXPECT_TRUE(all_close(cuda[i], values_of(cpu[i]), tol, tol)) << "output " << i;
  }
}

TEST_F(Vq, BatchStatisticsOfVectorQuantize) {
  // Four rows on codes 0, 0, 2, 3 of a codebook of 5.
  const Tensor codebook = from_vector(std::vector<double>{0, 0, 10, 10, 20, 20, 30, 30, 40, 40}, {5, 2});
  const Tensor z = from_vector(std::vector<double>{0.1, 0, -0.1, 0, 20, 19, 31, 30}, {4, 2});
  for (Device device : devices()) {
    const VectorQuantizeResult q = vector_quantize(z.to(device), codebook.to(device));
    EXPECT_TRUE(identical(q.counts.to(Device::cpu()),
                          from_vector(std::vector<std::int32_t>{2, 0, 1, 1, 0}, {5})));
    EXPECT_DOUBLE_EQ(codebook_utilization(q.counts), 3.0 / 5.0);
    // p = (1/2, 1/4, 1/4): H = 1.5 ln 2.
    EXPECT_NEAR(codebook_perplexity(q.counts), std::exp(1.5 * std::log(2.0)), 1e-12);
  }
}

// ------------------------------------------------------------------ metrics
TEST(VqMetrics, PerplexityAndUtilizationOnHandBuiltHistograms) {
  auto h = [](std::vector<std::int32_t> v) {
    const auto n = static_cast<std::int64_t>(v.size());
    return from_vector(v, {n});
  };
  // Uniform over all K codes: perplexity K, utilization 1.
  EXPECT_NEAR(codebook_perplexity(h({5, 5, 5, 5, 5, 5, 5, 5})), 8.0, 1e-12);
  EXPECT_DOUBLE_EQ(codebook_utilization(h({5, 5, 5, 5, 5, 5, 5, 5})), 1.0);
  // Uniform over 2 of 8 used codes: perplexity 2 whatever the counts' scale.
  EXPECT_NEAR(codebook_perplexity(h({0, 7, 0, 0, 7, 0, 0, 0})), 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(codebook_utilization(h({0, 7, 0, 0, 7, 0, 0, 0})), 0.25);
  // A collapsed codebook: one code, perplexity 1.
  EXPECT_NEAR(codebook_perplexity(h({0, 0, 100, 0})), 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(codebook_utilization(h({0, 0, 100, 0})), 0.25);
  // p = (1/2, 1/4, 1/4): exp(1.5 ln 2) = 2^1.5.
  EXPECT_NEAR(codebook_perplexity(h({2, 1, 1})), std::pow(2.0, 1.5), 1e-12);
  // Nothing counted yet.
  EXPECT_DOUBLE_EQ(codebook_perplexity(h({0, 0, 0})), 0.0);
  EXPECT_DOUBLE_EQ(codebook_utilization(h({0, 0, 0})), 0.0);
  // Float histograms (e.g. EMA counts) work too.
  EXPECT_NEAR(codebook_perplexity(from_vector(std::vector<double>{0.5, 0.5}, {2})), 2.0, 1e-12);
  EXPECT_LATENT_ERROR(codebook_perplexity(h({1, -1})), "negative");
  EXPECT_LATENT_ERROR(codebook_utilization(from_vector(std::vector<std::int32_t>{}, {0})),
                      "non-empty");
}

// ------------------------------------------------------------------ bad input
TEST_F(Vq, BadInputGivesClearErrors) {
  Generator gen(12);
  const Tensor z = uniform({4, 3}, -1.0, 1.0, gen);
  const Tensor e = uniform({5, 3}, -1.0, 1.0, gen);
  for (Device device : devices()) {
    const Tensor zd = z.to(device), ed = e.to(device);
    EXPECT_LATENT_ERROR(vq_argmin(zd, empty({0, 3}, DType::f32, device)), "vq_argmin",
                        "empty (K = 0)");
    EXPECT_LATENT_ERROR(vq_argmin(zd, uniform({5, 4}, -1.0, 1.0, gen).to(device)), "vq_argmin",
                        "[4, 3]", "[5, 4]", "code dimension");
    EXPECT_LATENT_ERROR(vq_argmin(zd.reshape({12}), ed), "vq_argmin", "matrix");
    EXPECT_LATENT_ERROR(vq_argmin(zd, ed.to(DType::f64)), "vq_argmin", "float32", "float64");
    EXPECT_LATENT_ERROR(vq_argmin(full({4, 3}, 1.0, DType::i32, device), ed), "vq_argmin",
                        "int32");
    // Non-finite values: a NaN row of z, an Inf code.
    Tensor bad_z = z.clone();
    bad_z.narrow(0, 2, 1).fill_(std::nan(""));
    EXPECT_LATENT_ERROR(vq_argmin(bad_z.to(device), ed), "vq_argmin", "row 2",
                        "no finite distance");
    for (VqArgminAlgorithm a : {VqArgminAlgorithm::naive, VqArgminAlgorithm::gemm}) {
      VqArgminOptions options;
      options.algorithm = a;
      EXPECT_LATENT_ERROR(vq_argmin(bad_z.to(device), ed, options), "row 2");
    }
    Tensor inf_z = z.clone();
    inf_z.narrow(0, 1, 1).fill_(std::numeric_limits<double>::infinity());
    EXPECT_LATENT_ERROR(vq_argmin(inf_z.to(device), ed), "row 1");
    Tensor bad_e = e.clone();
    bad_e.narrow(0, 4, 1).fill_(std::numeric_limits<double>::infinity());
    EXPECT_LATENT_ERROR(vq_argmin(zd, bad_e.to(device)), "codebook", "non-finite", "inf");
    // Index out of range in the gather (the tokenizer's decode).
    EXPECT_LATENT_ERROR(vq_gather(ed, from_vector(std::vector<std::int32_t>{0, 5}, {2}).to(device)),
                        "vq_gather", "index 5", "out of range", "5 codes");
    EXPECT_LATENT_ERROR(vq_gather(ed, from_vector(std::vector<std::int32_t>{-1}, {1}).to(device)),
                        "index -1");
    EXPECT_LATENT_ERROR(vq_gather(ed, from_vector(std::vector<double>{0}, {1}).to(device)),
                        "int32");
    EXPECT_LATENT_ERROR(vector_quantize(empty({0, 3}, DType::f32, device), ed), "empty");
    EXPECT_LATENT_ERROR(vector_quantize(zd, ed, {-1.0, false}), "beta");
  }
  if (has_cuda_) {
    EXPECT_LATENT_ERROR(vq_argmin(z, e.to(kCuda)), "vq_argmin", "cpu", "cuda:0");
  }
}

}  // namespace
}  // namespace latent
