// Vector quantization: the nearest-code argmin against a float64 brute force (every algorithm,
// every backend, awkward sizes, deliberate ties, cosine mode), the quantizer's losses and
// straight-through gradients against finite differences, codebook metrics on hand-built
// histograms, and bad input. The EMA statistics, revival, k-means and the VQ-VAE are in
// tests/vq_ema_test.cpp.
//
// Every kernel case runs through the op harness (tests/op_harness.h) on every device: `cuda`
// is the SIMT executor in the default build (a GPU in an nvcc build with one), so every
// kernel runs here, with allocations poisoned (NaN / −1 bytes) and guards around the inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "kernels/vq_argmin.cuh"
#include "latent/latent.h"
#include "latent/vq.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::all_close;
using test::check_op;
using test::devices;
using test::Expected;
using test::gradient_case;
using test::identical;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::Tensors;
using test::values_of;
using test::Where;

class Vq : public test::OpTest {};

using Case = cases::Vq;
std::string case_name(const Case& c) { return c.str(); }

std::string algorithm_name(VqArgminAlgorithm a) {
  switch (a) {
    case VqArgminAlgorithm::tiled: return "tiled";
    case VqArgminAlgorithm::naive: return "naive";
    case VqArgminAlgorithm::gemm: return "gemm";
  }
  return "?";
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
  const std::vector<Case> list = {
      {1, 1, 1},     {1, 7, 3},      {5, 1, 4},      {3, 300, 2},   // N = 1, K = 1, K > N
      {64, 20, 1},   {33, 17, 5},    {130, 129, 7},  {257, 300, 37}, // D = 1, D % 4 ≠ 0, tile edges
      {100, 64, 16}, {20000, 48, 12},                                 // D % 4 = 0 (float4), large N
      // Slices per tile S = ⌈D/8⌉: even (two slices per inner pass), odd ≥ 3, with a partial one.
      {150, 140, 64}, {70, 130, 40},  {50, 200, 24},  {40, 130, 256}, {33, 129, 36},
      cases::vq_argmin_bench_suite(false).front()};                   // bench/vq_bench's smallest
  for (const Case& c : list) {
    for (DType dtype : {DType::f32, DType::f64}) {
      std::int64_t ties = 0;
      for (VqArgminAlgorithm algorithm :
           {VqArgminAlgorithm::tiled, VqArgminAlgorithm::naive, VqArgminAlgorithm::gemm}) {
        OpCase k;
        k.name = "vq_argmin " + case_name(c) + " " + dtype_name(dtype) + " " + algorithm_name(algorithm);
        k.seed = 1;
        k.inputs = [&](Generator& g) {
          return Tensors{uniform({c.N, c.D}, -1.0, 1.0, g, dtype), uniform({c.K, c.D}, -1.0, 1.0, g, dtype)};
        };
        k.op = [&](const Tensors& in) {
          VqArgminOptions options;
          options.algorithm = algorithm;
          options.distances = true;
          const VqArgminResult r = vq_argmin(in[0], in[1], options);
          return Tensors{r.indices, r.distances};
        };
        // Every index is the brute force's or a near-tie within the bound; the distance is
        // that of the returned code, recomputed for it alone.
        k.verify = [&](const Tensors& in, const Tensors& out, Device device) {
          const std::vector<double> zv = values_of(in[0]), ev = values_of(in[1]);
          const BruteForce b = brute_force(zv, ev, c.N, c.K, c.D);
          const std::string what = k.name + " on " + device.str();
          if (out[0].shape() != Shape{c.N})
            return ::testing::AssertionFailure() << "indices " << shape_str(out[0].shape());
          ties += expect_argmin_correct(out[0], b, zv, ev, c, dtype, what);
          const std::vector<std::int32_t> idx = out[0].to_vector<std::int32_t>();
          Expected want{std::vector<double>(c.N)};
          for (std::int64_t i = 0; i < c.N; ++i)
            want.values[i] = idx[i] >= 0 && idx[i] < c.K ? b.dist[i * c.K + idx[i]] : 0.0;
          return test::matches(out[1], want, dtype == DType::f32 ? near(1e-6, 1e-5) : near(1e-14, 1e-13));
        };
        // The cpu backend has one loop; the naive and cuBLAS algorithms are cuda's.
        if (algorithm != VqArgminAlgorithm::tiled) k.where = Where::cuda_only;
        k.cost = algorithm == VqArgminAlgorithm::gemm ? cases::vq_argmin_gemm(c, dtype)
                                                     : cases::vq_argmin(c, dtype, true);
        EXPECT_TRUE(check_op(k));
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
    // z, the codebook and the planted index of every row.
    auto planted_rows = [&](Generator& gen) {
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
      return Tensors{from_vector(rows, {c.N, c.D}), from_vector(codes, {c.K, c.D}),
                     from_vector(planted, {c.N})};
    };
    for (DType dtype : {DType::f32, DType::f64}) {
      for (VqArgminAlgorithm a : {VqArgminAlgorithm::tiled, VqArgminAlgorithm::naive,
                                  VqArgminAlgorithm::gemm}) {
        OpCase k;
        k.name = "vq_argmin of planted rows " + case_name(c) + " " + dtype_name(dtype) + " " +
                 algorithm_name(a);
        k.seed = 2;
        k.inputs = [&](Generator& g) {
          Tensors in = planted_rows(g);
          in[0] = in[0].to(dtype);
          in[1] = in[1].to(dtype);
          return in;
        };
        k.op = [a](const Tensors& in) {
          VqArgminOptions options;
          options.algorithm = a;
          return Tensors{vq_argmin(in[0], in[1], options).indices};
        };
        k.reference = [](const Tensors& in) {
          return std::vector<Expected>{{values_of(in[2]), {}, in[2].shape(), DType::i32}};
        };
        k.cost = cases::vq_argmin(c, dtype);
        EXPECT_TRUE(check_op(k));
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
  for (DType dtype : {DType::f32, DType::f64}) {
    for (VqArgminAlgorithm a : {VqArgminAlgorithm::tiled, VqArgminAlgorithm::naive,
                                VqArgminAlgorithm::gemm}) {
      for (int splits : {1, 2, 4}) {
        OpCase k;
        k.name = std::string("vq_argmin ties ") + dtype_name(dtype) + " " + algorithm_name(a) +
                 " splits " + std::to_string(splits);
        k.inputs = [&](Generator&) {
          return Tensors{from_vector(rows, {3, D}).to(dtype), from_vector(codes, {K, D}).to(dtype)};
        };
        k.op = [a, splits](const Tensors& in) {
          VqArgminOptions options;
          options.algorithm = a;
          options.splits = splits;
          return Tensors{vq_argmin(in[0], in[1], options).indices};
        };
        k.reference = [](const Tensors&) {
          return std::vector<Expected>{{{7, 131, 0}, {}, Shape{3}, DType::i32}};
        };
        k.cost = cases::vq_argmin({3, K, D}, dtype);
        EXPECT_TRUE(check_op(k));
      }
    }
  }
}

// The cpu argmin screens float codes in float and rescores the near-best in double
// (src/backends/cpu/vq.cpp); its answer must be exactly the definition's: the first k of the
// smallest ‖e_k‖² − 2·z·e_k, each sum in double in order. Checked on clusters of codes a few
// float ulps apart (and exact duplicates), rows on and between them, random rows, a row of
// values near 1e19 (where the float pass could overflow: scored exactly).
TEST_F(Vq, CpuArgminIsTheExactDefinitionOnNearTies) {
  const auto floats = [](const Tensor& t) {
    const std::vector<double> v = values_of(t);
    return std::vector<float>(v.begin(), v.end());
  };
  for (const std::int64_t D : {std::int64_t{16}, std::int64_t{37}}) {
    const std::int64_t K = 300, N = 700;
    Generator gen(2611);
    std::vector<float> codes = floats(uniform({K, D}, -1, 1, gen, DType::f32));
    // Codes 40..79 are 8 clusters of 5: a base code and copies nudged by a few ulps in one
    // coordinate (the last of each cluster an exact duplicate of its base).
    for (std::int64_t k = 40; k < 80; ++k) {
      const std::int64_t base = 40 + (k - 40) / 5 * 5, nudge = (k - 40) % 5;
      for (std::int64_t d = 0; d < D; ++d) codes[k * D + d] = codes[base * D + d];
      float& v = codes[k * D + (k % D)];
      for (std::int64_t step = 0; step < (nudge == 4 ? 0 : nudge + 1); ++step)
        v = std::nextafter(v, 2.0f);
    }
    std::vector<float> rows = floats(uniform({N, D}, -1, 1, gen, DType::f32));
    for (std::int64_t i = 0; i < 400; ++i) {  // rows on a cluster's codes, or a hair off them
      const std::int64_t k = 40 + i % 40;
      for (std::int64_t d = 0; d < D; ++d) rows[i * D + d] = codes[k * D + d];
      if (i % 3 == 1) rows[i * D + (i % D)] = std::nextafter(rows[i * D + (i % D)], -2.0f);
    }
    for (std::int64_t d = 0; d < D; ++d) rows[(N - 2) * D + d] = 1e19f * (d % 2 ? 1 : -1);
    std::vector<std::int32_t> want(N);
    for (std::int64_t i = 0; i < N; ++i) {
      double best = std::numeric_limits<double>::infinity();
      std::int32_t best_k = -1;
      for (std::int64_t k = 0; k < K; ++k) {
        double norm = 0.0, dot = 0.0;
        for (std::int64_t d = 0; d < D; ++d) norm += double(codes[k * D + d]) * codes[k * D + d];
        for (std::int64_t d = 0; d < D; ++d) dot += double(rows[i * D + d]) * codes[k * D + d];
        const double score = norm - 2.0 * dot;
        if (score < best) best = score, best_k = static_cast<std::int32_t>(k);
      }
      want[i] = std::isfinite(best) ? best_k : -1;
    }
    const Tensor z = from_vector(std::vector<double>(rows.begin(), rows.end()), {N, D}).to(DType::f32);
    const Tensor e = from_vector(std::vector<double>(codes.begin(), codes.end()), {K, D}).to(DType::f32);
    const VqArgminResult got = vq_argmin(z, e);
    const std::vector<double> indices = values_of(got.indices);
    std::int64_t on_clusters = 0;
    for (std::int64_t i = 0; i < N; ++i) {
      ASSERT_EQ(static_cast<std::int32_t>(indices[i]), want[i]) << "row " << i << ", D = " << D;
      on_clusters += want[i] >= 40 && want[i] < 80;
    }
    EXPECT_GE(on_clusters, 400);  // the clustered rows did land on the clusters
  }
}

// Splitting the code range over blocks changes the launch, never the answer.
TEST_F(Vq, TiledSplitsGiveIdenticalIndices) {
  OpCase k;
  k.name = "vq_argmin tiled, splits 1, 2, 3, 8, 100";
  k.seed = 3;
  k.inputs = [](Generator& g) {
    return Tensors{uniform({300, 20}, -1.0, 1.0, g), uniform({1000, 20}, -1.0, 1.0, g)};
  };
  k.op = [](const Tensors& in) {
    Tensors out;
    for (int splits : {1, 2, 3, 8, 100}) {
      VqArgminOptions options;
      options.splits = splits;
      out.push_back(vq_argmin(in[0], in[1], options).indices);
    }
    return out;
  };
  k.verify = [](const Tensors&, const Tensors& out, Device) {
    for (std::size_t i = 1; i < out.size(); ++i) {
      const ::testing::AssertionResult same = identical(out[i], out[0]);
      if (!same) return ::testing::AssertionFailure() << "split variant " << i << ": " << same.message();
    }
    return ::testing::AssertionSuccess();
  };
  k.where = Where::cuda_only;  // the cpu backend has one loop and no splits
  k.cost = cases::vq_argmin({300, 1000, 20}, DType::f32);
  EXPECT_TRUE(check_op(k));
}

// The tiled kernel's shared-memory address pattern, per warp, from the same functions the
// kernel indexes with (kernels/vq_argmin.cuh: vq_store_word, vq_read_word). A 32-bit store
// by 32 lanes is conflict-free when the 32 words fall in 32 distinct banks; a 16-byte read is
// served a quarter warp (8 lanes) at a time, conflict-free when the distinct 16-byte words of
// each quarter cover disjoint banks (equal addresses are a broadcast). The degree is the most
// distinct words any bank receives.
int store_conflict_degree(int pitch) {
  int worst = 1;
  for (int warp = 0; warp < kernels::kVqThreads / 32; ++warp)
    for (int j = 0; j < 4; ++j) {
      std::vector<std::set<int>> bank(32);
      for (int lane = 0; lane < 32; ++lane) {
        const int word = kernels::vq_store_word(warp * 32 + lane, j, pitch);
        bank[word % 32].insert(word);
      }
      for (const auto& words : bank) worst = std::max(worst, static_cast<int>(words.size()));
    }
  return worst;
}

TEST(VqTiledKernel, SharedAccessesHaveNoBankConflicts) {
  // The transposed stores: the unpadded pitch of 128 had every bank hit twice per store.
  EXPECT_EQ(store_conflict_degree(kernels::kVqTileRows), 2);
  EXPECT_EQ(store_conflict_degree(kernels::kVqTilePitch), 1);
  // The 16-byte reads of the inner loop, rows (by ty) and codes (by tx).
  for (int warp = 0; warp < kernels::kVqThreads / 32; ++warp)
    for (int kk = 0; kk < kernels::kVqTileDepth; ++kk)
      for (int half = 0; half < 2; ++half)
        for (bool codes : {false, true})
          for (int quarter = 0; quarter < 4; ++quarter) {
            std::set<int> words;
            for (int lane = quarter * 8; lane < quarter * 8 + 8; ++lane) {
              const int thread = warp * 32 + lane;
              const int t = codes ? thread % 16 : thread / 16;
              const int word = kernels::vq_read_word(t, kk, half);
              EXPECT_EQ(word % 4, 0) << "a 16-byte read must be aligned";
              words.insert(word);
            }
            std::vector<int> hits(32, 0);
            for (int word : words)
              for (int w = word; w < word + 4; ++w) ++hits[w % 32];
            EXPECT_EQ(*std::max_element(hits.begin(), hits.end()), 1)
                << "warp " << warp << " kk " << kk << " half " << half
                << (codes ? " codes" : " rows") << " quarter " << quarter;
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
  OpCase k;
  k.name = "vector_quantize, cosine";
  k.inputs = [&](Generator&) { return Tensors{z, e}; };
  k.op = [](const Tensors& in) {
    VectorQuantizeOptions options;
    options.cosine = true;
    const VectorQuantizeResult q = vector_quantize(in[0], in[1], options);
    return Tensors{q.indices, q.z_q};
  };
  k.verify = [&](const Tensors&, const Tensors& out, Device) {
    const ::testing::AssertionResult same = identical(out[0], from_vector(want, {N}));
    if (!same) return same;
    // z_q holds the unit-length codes.
    const std::vector<double> zq = values_of(out[1]);
    for (std::int64_t i = 0; i < N; ++i) {
      double norm = 0;
      for (std::int64_t d = 0; d < D; ++d) norm += zq[i * D + d] * zq[i * D + d];
      if (!(std::abs(norm - 1.0) <= 1e-12))
        return ::testing::AssertionFailure() << "row " << i << " of z_q has squared norm " << norm;
    }
    return ::testing::AssertionSuccess();
  };
  k.cost = cases::vq_argmin({N, K, D}, DType::f64);
  EXPECT_TRUE(check_op(k));
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

std::function<Tensors(Generator&)> planted_inputs(std::int64_t N, std::int64_t K, std::int64_t D) {
  return [=](Generator& g) {
    const Planted p = planted(N, K, D, g);
    return Tensors{p.z, p.codebook};
  };
}

TEST_F(Vq, CodebookLossGradientMatchesFiniteDifferences) {
  for (bool cosine : {false, true}) {
    OpCase c = gradient_case("codebook_loss, cosine " + std::to_string(cosine), 5,
                             planted_inputs(12, 6, 3), [cosine](const Tensors& in) {
                               return vector_quantize(in[0], in[1], {0.25, cosine}).codebook_loss;
                             });
    // Only the codebook: sg[z] means the loss does not reach z.
    c.finite_differences->check = {false, true};
    EXPECT_TRUE(check_op(c));
  }
}

TEST_F(Vq, CommitmentLossGradientMatchesFiniteDifferences) {
  for (bool cosine : {false, true}) {
    OpCase c = gradient_case("commitment_loss, cosine " + std::to_string(cosine), 6,
                             planted_inputs(10, 5, 4), [cosine](const Tensors& in) {
                               return vector_quantize(in[0], in[1], {0.25, cosine}).commitment_loss;
                             });
    c.finite_differences->check = {true, false};
    EXPECT_TRUE(check_op(c));
  }
}

TEST_F(Vq, LossIsCodebookPlusBetaCommitment) {
  Generator gen(7);
  const Planted p = planted(20, 8, 5, gen);
  for (Device device : devices()) {
    const Tensor z = p.z.to(device), codebook = p.codebook.to(device);
    const VectorQuantizeResult q = vector_quantize(z, codebook, {0.4, false});
    // Both terms have the value mean ‖z − e‖²; the loss weighs the commitment term by β.
    const double mse = mean(square(sub(z, vq_gather(codebook, q.indices)))).item();
    EXPECT_NEAR(q.codebook_loss.item(), mse, 1e-15) << device.str();
    EXPECT_NEAR(q.commitment_loss.item(), mse, 1e-15) << device.str();
    EXPECT_NEAR(q.loss.item(), 1.4 * mse, 1e-15) << device.str();
  }
}

TEST_F(Vq, GatherGradientMatchesFiniteDifferences) {
  OpCase c = gradient_case(
      "vq_gather", 8,
      [](Generator& g) {
        return Tensors{uniform({7, 3}, -1.0, 1.0, g, DType::f64),
                       from_vector(std::vector<std::int32_t>{6, 0, 6, 2, 2, 2, 5}, {7})};
      },
      [](const Tensors& in) { return vq_gather(in[0], in[1]); });
  c.tolerance = test::every_dtype(test::exact());  // a gather and its scatter-add: exact
  c.cost = cases::vq_gather(7, 3, DType::f64);
  EXPECT_TRUE(check_op(c));
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
  for (DType dtype : {DType::f32, DType::f64}) {
    OpCase c;
    c.name = std::string("vector_quantize [517, 6] against 70 codes ") + dtype_name(dtype);
    c.seed = 10;
    c.inputs = [dtype](Generator& g) {
      const Planted p = planted(517, 70, 6, g);
      return Tensors{p.z.to(dtype), p.codebook.to(dtype)};
    };
    c.op = [](const Tensors& in) {
      const VectorQuantizeResult q = vector_quantize(in[0], in[1], {0.25, false});
      return Tensors{q.indices, q.z_q, q.loss, q.counts};
    };
    c.tolerance = per_dtype(near(1e-5, 1e-5), near(1e-12, 1e-12));  // indices, counts exact
    c.gradients = true;  // of Σ z_q·w + loss·w′: through the straight-through and both losses
    c.cost = cases::vq_argmin({517, 70, 6}, dtype);
    EXPECT_TRUE(check_op(c));
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
  if (test::has_cuda()) {
    EXPECT_LATENT_ERROR(vq_argmin(z, e.to(test::cuda_device())), "vq_argmin", "cpu", "cuda:0");
  }
}

}  // namespace
}  // namespace latent
