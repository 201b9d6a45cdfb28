// The codebook side of vector quantization: per-code statistics on every path (shared,
// sorted, atomic) against a plain loop, bitwise determinism, the EMA update against its
// formula, dead-code revival (exactly the dead codes, both statistics reset), k-means, the
// VectorQuantizer module and the VQ-VAE (training steps, tokens, resume), and the CLI
// (`latent train --model vqvae`, `encode`, `decode`, `op vq`, `op ema`). The kernel cases
// run through the op harness (tests/op_harness.h) on every device.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "kernels/philox.cuh"
#include "cli_util.h"
#include "latent/latent.h"
#include "latent/vq.h"
#include "tests/op_harness.h"
#include "tests/synthetic_data.h"
#include "tools/train/pictures.h"

namespace latent {
namespace {

using test::all_close;
using test::check_op;
using test::devices;
using test::Expected;
using test::identical;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::Tensors;
using test::values_of;
using test::Where;

class VqEma : public test::OpTest {};

std::string stats_name(VqStatsAlgorithm a) {
  switch (a) {
    case VqStatsAlgorithm::automatic: return "automatic";
    case VqStatsAlgorithm::shared: return "shared";
    case VqStatsAlgorithm::sorted: return "sorted";
    case VqStatsAlgorithm::atomic: return "atomic";
  }
  return "?";
}

enum class Spread { uniform, collapsed, half_collapsed, sorted_runs };

Tensor make_indices(std::int64_t N, std::int64_t K, Spread spread, Generator& gen) {
  std::vector<std::int32_t> idx(N);
  for (std::int64_t i = 0; i < N; ++i) {
    switch (spread) {
      case Spread::uniform: idx[i] = static_cast<std::int32_t>(gen.next_int(K)); break;
      case Spread::collapsed: idx[i] = static_cast<std::int32_t>(K / 2); break;
      case Spread::half_collapsed:
        idx[i] = i % 2 ? 0 : static_cast<std::int32_t>(gen.next_int(K));
        break;
      case Spread::sorted_runs:  // runs of 300 rows: they start and end inside and on pieces
        idx[i] = static_cast<std::int32_t>((i / 300) % K);
        break;
    }
  }
  return from_vector(idx, {N});
}

// n_k and m_k by a plain double loop.
void loop_stats(const Tensor& z, const Tensor& indices, std::int64_t K, std::vector<double>& n,
                std::vector<double>& m) {
  const std::vector<double> zv = values_of(z);
  const std::vector<std::int32_t> idx = indices.to_vector<std::int32_t>();
  const std::int64_t D = z.size(1);
  n.assign(K, 0.0);
  m.assign(K * D, 0.0);
  for (std::size_t i = 0; i < idx.size(); ++i) {
    n[idx[i]] += 1;
    for (std::int64_t d = 0; d < D; ++d) m[idx[i] * D + d] += zv[i * D + d];
  }
}

struct StatsCase {
  std::int64_t N, K, D;
  Spread spread;
};

TEST_F(VqEma, CodeStatisticsMatchALoopOnEveryPath) {
  const std::vector<StatsCase> list = {
      {1, 1, 1, Spread::uniform},          {37, 5, 3, Spread::uniform},
      {1000, 16, 7, Spread::uniform},      {1000, 16, 7, Spread::collapsed},
      {2049, 50, 33, Spread::half_collapsed}, {1500, 6, 4, Spread::sorted_runs},
      {600, 3, 300, Spread::uniform},      // D > 256: the shared path loops over columns
      {3000, 1000, 16, Spread::uniform},   // K·D too large for shared memory: sorted
      {700, 400, 2, Spread::collapsed}};
  for (const StatsCase& c : list) {
    for (DType dtype : {DType::f32, DType::f64}) {
      const std::string what = "N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
                               " D=" + std::to_string(c.D) + " spread " +
                               std::to_string(static_cast<int>(c.spread)) + " " +
                               dtype_name(dtype);
      auto inputs = [&](Generator& g) {
        const Tensor z = uniform({c.N, c.D}, -1.0, 1.0, g, dtype);
        return Tensors{z, make_indices(c.N, c.K, c.spread, g)};
      };
      auto reference = [&](const Tensors& in) {
        std::vector<double> n, m;
        loop_stats(in[0], in[1], c.K, n, m);
        return std::vector<Expected>{{n, {}, Shape{c.K}, DType::i32}, {m, {}, Shape{c.K, c.D}, dtype}};
      };
      const bool fits = c.K * c.D * static_cast<std::int64_t>(dtype_size(dtype)) + 4 * c.K <= 48 * 1024;
      for (VqStatsAlgorithm a : {VqStatsAlgorithm::automatic, VqStatsAlgorithm::sorted,
                                 VqStatsAlgorithm::atomic, VqStatsAlgorithm::shared}) {
        if (a == VqStatsAlgorithm::shared && !fits) continue;
        OpCase k;
        k.name = "vq_code_stats " + what + " " + stats_name(a);
        k.seed = 21;
        k.inputs = inputs;
        k.op = [&, a](const Tensors& in) {
          const VqCodeStats s = vq_code_stats(in[0], in[1], c.K, a);
          return Tensors{s.counts, s.sums};
        };
        k.reference = reference;
        k.tolerance = per_dtype(near(2e-5, 2e-5), near(1e-12, 1e-12));  // counts exact
        // The cpu backend has one path; shared, sorted and atomic are cuda's.
        if (a != VqStatsAlgorithm::automatic) k.where = Where::cuda_only;
        k.cost = cases::vq_stats({c.N, c.K, c.D}, dtype);
        EXPECT_TRUE(check_op(k));
      }
      if (!fits && test::has_cuda()) {
        Generator g(21);
        const Tensors in = inputs(g);
        EXPECT_LATENT_ERROR(vq_code_stats(in[0].to(test::cuda_device()), in[1].to(test::cuda_device()),
                                          c.K, VqStatsAlgorithm::shared),
                            "shared memory", "use sorted");
      }
      // The histogram alone.
      OpCase h;
      h.name = "vq_code_counts " + what;
      h.seed = 21;
      h.inputs = inputs;
      h.op = [&](const Tensors& in) { return Tensors{vq_code_counts(in[1], c.K)}; };
      h.reference = [&](const Tensors& in) { return std::vector<Expected>{reference(in)[0]}; };
      h.cost = cases::vq_stats({c.N, c.K, 0}, dtype);
      EXPECT_TRUE(check_op(h));
    }
  }
}

// Each block of the shared path adds each code's rows in row order, one after another, in
// z's dtype: with one block (N < 2·max(K, 256) rows) its sums are bitwise those of that plain
// loop, whatever the batches (duplicate codes in a batch, a collapsed codebook, rows wider
// than the block on the 16-byte and scalar paths).
TEST_F(VqEma, SharedStatisticsAreTheRowOrderSums) {
  if (!test::has_cuda()) GTEST_SKIP() << "no cuda device (SIMT or GPU) in this build";
  const std::vector<StatsCase> list = {
      {500, 7, 16, Spread::uniform},   {300, 1, 8, Spread::collapsed},
      {511, 64, 3, Spread::uniform},   {509, 50, 33, Spread::half_collapsed},
      {500, 3, 1032, Spread::uniform},  // float4 columns past the block's 256 threads
      {500, 5, 1030, Spread::uniform},  // scalar columns past them
      {510, 6, 4, Spread::sorted_runs},
      {1999, 1000, 11, Spread::uniform},  // past 48 KB with the batch bookkeeping: the
      {1399, 700, 16, Spread::uniform}};  // launch raises the kernel's shared-memory limit
  for (const StatsCase& c : list) {
    for (DType dtype : {DType::f32, DType::f64}) {
      if (c.K * c.D * static_cast<std::int64_t>(dtype_size(dtype)) + 4 * c.K > 48 * 1024) continue;
      Generator g(31);
      const Tensor z = uniform({c.N, c.D}, -1.0, 1.0, g, dtype);
      const Tensor idx = make_indices(c.N, c.K, c.spread, g);
      const std::vector<double> zv = values_of(z);
      const std::vector<std::int32_t> iv = idx.to_vector<std::int32_t>();
      std::vector<double> want(static_cast<std::size_t>(c.K * c.D), 0.0);
      for (std::int64_t i = 0; i < c.N; ++i)
        for (std::int64_t d = 0; d < c.D; ++d) {
          double& w = want[iv[i] * c.D + d];
          w = dtype == DType::f32 ? static_cast<double>(static_cast<float>(w) +
                                                        static_cast<float>(zv[i * c.D + d]))
                                  : w + zv[i * c.D + d];
        }
      const VqCodeStats s = vq_code_stats(z.to(test::cuda_device()), idx.to(test::cuda_device()),
                                          c.K, VqStatsAlgorithm::shared);
      EXPECT_TRUE(identical(s.sums.to(Device::cpu()), from_vector(want, {c.K, c.D}).to(dtype)))
          << "N=" << c.N << " K=" << c.K << " D=" << c.D << " " << dtype_name(dtype);
    }
  }
}

// Same inputs, same bits, run after run, on every deterministic path.
TEST_F(VqEma, StatisticsAndUpdatesAreBitwiseDeterministic) {
  Generator gen(22);
  for (Spread spread : {Spread::uniform, Spread::collapsed}) {
    const Tensor z = uniform({5000, 12}, -1.0, 1.0, gen);
    const Tensor idx = make_indices(5000, 64, spread, gen);
    for (Device device : devices()) {
      std::vector<VqStatsAlgorithm> algorithms = {VqStatsAlgorithm::automatic};
      if (device.is_cuda()) algorithms = {VqStatsAlgorithm::shared, VqStatsAlgorithm::sorted};
      for (VqStatsAlgorithm a : algorithms) {
        const VqCodeStats first = vq_code_stats(z.to(device), idx.to(device), 64, a);
        for (int run = 0; run < 3; ++run) {
          const VqCodeStats again = vq_code_stats(z.to(device), idx.to(device), 64, a);
          EXPECT_TRUE(identical(again.sums.to(Device::cpu()), first.sums.to(Device::cpu())));
          EXPECT_TRUE(identical(again.counts.to(Device::cpu()), first.counts.to(Device::cpu())));
        }
      }
      // A whole quantize + EMA + revival step, twice from the same state.
      auto step = [&] {
        Generator init(5);
        const Tensor codebook = uniform({64, 12}, -0.5, 0.5, init).to(device);
        const Tensor count = ones({64}).to(device), sum = codebook.clone();
        const Tensor zd = z.to(device);
        const Tensor indices = vq_argmin(zd, codebook).indices;
        vq_ema_update(codebook, count, sum, vq_code_stats(zd, indices, 64));
        vq_revive_dead_codes(codebook, count, sum, zd, 2.0, 2.0, {9, 1});
        return std::vector<Tensor>{indices.to(Device::cpu()), codebook.to(Device::cpu()),
                                   count.to(Device::cpu()), sum.to(Device::cpu())};
      };
      const std::vector<Tensor> a = step(), b = step();
      for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(identical(a[i], b[i])) << i;
    }
  }
}

TEST_F(VqEma, UpdateMatchesTheFormula) {
  for (std::int64_t D : {3, 8}) {  // 8: the float4 path
    for (DType dtype : {DType::f32, DType::f64}) {
      const std::int64_t K = 37;
      const double decay = 0.9, eps = 1e-3;
      OpCase c;
      c.name = "vq_ema_update K=37 D=" + std::to_string(D) + " " + dtype_name(dtype);
      c.seed = 23;
      c.inputs = [&](Generator& g) {
        const Tensor codebook = uniform({K, D}, -1.0, 1.0, g, dtype);
        const Tensor count = uniform({K}, 0.0, 5.0, g, dtype);
        const Tensor sum = uniform({K, D}, -3.0, 3.0, g, dtype);
        std::vector<std::int32_t> n(K);
        for (auto& v : n) v = static_cast<std::int32_t>(g.next_int(4));
        n[3] = 0;
        return Tensors{codebook, count, sum, from_vector(n, {K}), uniform({K, D}, -2.0, 2.0, g, dtype)};
      };
      c.op = [&](const Tensors& in) {
        vq_ema_update(in[0], in[1], in[2], {in[3], in[4]}, {decay, eps});
        return Tensors{in[1], in[2], in[0]};
      };
      // The formula, in double.
      c.reference = [&](const Tensors& in) {
        const std::vector<double> N0 = values_of(in[1]), M0 = values_of(in[2]),
                                  n = values_of(in[3]), m = values_of(in[4]);
        std::vector<double> N(K), M(K * D), E(K * D);
        double total = 0;
        for (std::int64_t k = 0; k < K; ++k) total += N[k] = decay * N0[k] + (1 - decay) * n[k];
        for (std::int64_t k = 0; k < K; ++k) {
          const double smoothed = (N[k] + eps) / (total + K * eps) * total;
          for (std::int64_t d = 0; d < D; ++d) {
            M[k * D + d] = decay * M0[k * D + d] + (1 - decay) * m[k * D + d];
            E[k * D + d] = M[k * D + d] / smoothed;
          }
        }
        return std::vector<Expected>{{N}, {M}, {E}};
      };
      c.writes = {0, 1, 2};
      c.tolerance = per_dtype(near(1e-5, 1e-5), near(1e-13, 1e-13));
      c.cost = cases::vq_ema_update(K, D, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The row code k moves onto, derived here from the Philox stream on its own.
std::int64_t expected_row(PhiloxKey key, std::int64_t k, std::int64_t N) {
  const double u = kernels::philox_uniform_f64(key.seed, key.offset, static_cast<std::uint64_t>(k));
  return std::min<std::int64_t>(static_cast<std::int64_t>(u * N), N - 1);
}

TEST_F(VqEma, RevivalReplacesExactlyTheDeadCodesAndResetsBothStatistics) {
  const std::int64_t K = 10, D = 4, N = 23;
  const std::vector<double> counts = {0.5, 2, 0.1, 3, 0.99, 1, 5, 0, 7, 1.0001};
  const std::vector<std::int32_t> dead = {1, 0, 1, 0, 1, 0, 0, 1, 0, 0};  // under 1.0
  const PhiloxKey key{123, 45};
  const double reset = 1.5;
  for (DType dtype : {DType::f32, DType::f64}) {
    OpCase c;
    c.name = std::string("vq_revive_dead_codes K=10 D=4 N=23 ") + dtype_name(dtype);
    c.seed = 24;
    c.inputs = [&](Generator& g) {
      const Tensor codebook = uniform({K, D}, -1.0, 1.0, g, dtype);
      const Tensor sum = uniform({K, D}, -1.0, 1.0, g, dtype);
      return Tensors{codebook, from_vector(counts, {K}).to(dtype), sum, uniform({N, D}, -1.0, 1.0, g, dtype)};
    };
    c.op = [&](const Tensors& in) {
      const Tensor mask = vq_revive_dead_codes(in[0], in[1], in[2], in[3], 1.0, reset, key);
      return Tensors{mask, in[0], in[1], in[2]};
    };
    c.reference = [&](const Tensors& in) {
      const std::vector<double> e0 = values_of(in[0]), c0 = values_of(in[1]), m0 = values_of(in[2]),
                                zv = values_of(in[3]);
      Expected mask{{dead.begin(), dead.end()}, {}, Shape{K}, DType::i32};
      Expected e{e0}, count{c0}, sum{m0};
      for (std::int64_t k = 0; k < K; ++k) {
        if (!dead[k]) continue;
        const std::int64_t r = expected_row(key, k, N);
        for (std::int64_t d = 0; d < D; ++d) {
          const double row = zv[r * D + d];
          e.values[k * D + d] = row;
          // The product reset·z rounded in the tensor's dtype.
          sum.values[k * D + d] = dtype == DType::f32 ? double(float(reset) * float(row)) : reset * row;
        }
        count.values[k] = reset;
      }
      return std::vector<Expected>{mask, e, count, sum};
    };
    c.writes = {0, 1, 2};
    c.cost = cases::vq_revive(K, D, dtype);  // exact, on every device
    EXPECT_TRUE(check_op(c));
  }
}

// Why both statistics must be reset: after revival, an EMA step in which no row picks the
// code keeps it where it was put. Resetting only the code (the known bug) lets the stale
// M_k / Ñ_k pull it straight back.
TEST_F(VqEma, ARevivedCodeStaysWhereItWasPut) {
  Generator gen(25);
  const std::int64_t K = 8, D = 3;
  const Tensor z = uniform({16, D}, 5.0, 6.0, gen, DType::f64);  // far from the old codes
  for (Device device : devices()) {
    const Tensor e = uniform({K, D}, -1.0, 1.0, gen, DType::f64).to(device);
    const Tensor c = full({K}, 4.0, DType::f64).to(device);
    const Tensor s = mul(e, 4.0);
    c.narrow(0, 2, 1).fill_(0.01);  // code 2 is dead
    vq_revive_dead_codes(e, c, s, z.to(device), 1.0, 1.0, {7, 0});
    const std::vector<double> placed = values_of(e.narrow(0, 2, 1));
    // Code 2 receives no rows; the others get some.
    std::vector<std::int32_t> n(K, 3);
    n[2] = 0;
    vq_ema_update(e, c, s, {from_vector(n, {K}).to(device), zeros({K, D}, DType::f64).to(device)},
                  {0.99, 1e-5});
    EXPECT_TRUE(all_close(e.narrow(0, 2, 1), placed, 1e-4)) << device.str();

    // The bug, reproduced: move the code but keep its old statistics.
    const Tensor e2 = uniform({K, D}, -1.0, 1.0, gen, DType::f64).to(device);
    const Tensor c2 = full({K}, 4.0, DType::f64).to(device), s2 = mul(e2, 4.0);
    e2.narrow(0, 2, 1).copy_(from_vector(placed, {1, D}).to(device));
    vq_ema_update(e2, c2, s2, {from_vector(n, {K}).to(device), zeros({K, D}, DType::f64).to(device)},
                  {0.99, 1e-5});
    EXPECT_GT(test::values_of(sub(e2.narrow(0, 2, 1), from_vector(placed, {1, D}).to(device)))[0] *
                  -1.0,
              3.0)
        << "the stale statistics should pull the code back toward the origin";
  }
}

TEST_F(VqEma, KMeansRecoversSeparatedClusters) {
  Generator gen(26);
  const std::vector<std::array<double, 2>> centers = {{10, 0}, {-10, 0}, {0, 10}};
  std::vector<double> x;
  const std::vector<double> noise = values_of(uniform({300, 2}, -1.0, 1.0, gen, DType::f64));
  for (int i = 0; i < 300; ++i)
    for (int d = 0; d < 2; ++d) x.push_back(centers[i % 3][d] + noise[i * 2 + d]);
  std::vector<std::array<double, 2>> means(3, {0, 0});
  for (int i = 0; i < 300; ++i)
    for (int d = 0; d < 2; ++d) means[i % 3][d] += x[i * 2 + d] / 100.0;
  for (Device device : devices()) {
    Generator kgen(3);
    const KMeansResult r = kmeans(from_vector(x, {300, 2}).to(device), 3, 10, kgen);
    EXPECT_TRUE(identical(r.counts.to(Device::cpu()),
                          from_vector(std::vector<std::int32_t>{100, 100, 100}, {3})))
        << device.str();
    // Each centroid is one cluster's mean (in some order).
    const std::vector<double> c = values_of(r.centroids);
    for (int k = 0; k < 3; ++k) {
      double best = 1e9;
      for (const auto& m : means) best = std::min(best, std::hypot(c[k * 2] - m[0], c[k * 2 + 1] - m[1]));
      EXPECT_LT(best, 1e-9) << device.str() << " centroid " << k;
    }
  }
  // More clusters than distinct points: empty clusters restart, nothing breaks.
  Generator kgen(4);
  const KMeansResult r = kmeans(from_vector(std::vector<double>{1, 2, 3}, {3, 1}), 8, 5, kgen);
  EXPECT_EQ(r.centroids.shape(), (Shape{8, 1}));
  EXPECT_GT(codebook_utilization(r.counts), 0.0);
  EXPECT_LE(codebook_utilization(r.counts), 3.0 / 8.0);
}

TEST_F(VqEma, BadInputGivesClearErrors) {
  for (Device device : devices()) {
    Generator gen(27);
    const Tensor e = uniform({5, 3}, -1.0, 1.0, gen).to(device);
    const Tensor z = uniform({4, 3}, -1.0, 1.0, gen).to(device);
    const Tensor count = ones({5}).to(device), sum = e.clone();
    const VqCodeStats batch{from_vector(std::vector<std::int32_t>{1, 0, 0, 3, 0}, {5}).to(device),
                            zeros({5, 3}).to(device)};
    auto on = [device](const Tensor& t) { return t.to(device); };
    EXPECT_LATENT_ERROR(vq_code_stats(z, on(from_vector(std::vector<std::int32_t>{0, 1, 5, 2}, {4})), 5),
                        "vq_code_stats", "index 5", "out of range");
    EXPECT_LATENT_ERROR(vq_code_stats(z, on(from_vector(std::vector<std::int32_t>{0, 1}, {2})), 5),
                        "2 indices for 4 rows");
    EXPECT_LATENT_ERROR(vq_code_stats(z, on(from_vector(std::vector<std::int32_t>{0, 1, 1, 1}, {4})), 0),
                        "codebook size must be positive");
    EXPECT_LATENT_ERROR(vq_ema_update(e, on(ones({4})), sum, batch), "vq_ema_update", "shapes");
    EXPECT_LATENT_ERROR(vq_ema_update(e, count, sum, batch, {1.5, 1e-5}), "decay");
    EXPECT_LATENT_ERROR(vq_ema_update(e, count, sum, batch, {0.99, 0.0}), "epsilon");
    EXPECT_LATENT_ERROR(vq_ema_update(e, count, sum, {batch.counts.to(DType::f32), batch.sums}),
                        "int32");
    EXPECT_LATENT_ERROR(vq_ema_update(e, count.to(DType::f64), sum, batch), "float32", "float64");
    EXPECT_LATENT_ERROR(vq_revive_dead_codes(e, count, sum, on(empty({0, 3})), 1.0, 1.0, {}),
                        "no rows");
    EXPECT_LATENT_ERROR(vq_revive_dead_codes(e, count, sum, on(uniform({4, 2}, 0.0, 1.0, gen)), 1.0,
                                             1.0, {}),
                        "differ in D");
    EXPECT_LATENT_ERROR(kmeans(z, 0, 3, gen), "clusters must be positive");
    Tensor nan_z = z.clone();
    nan_z.fill_(std::nan(""));
    EXPECT_LATENT_ERROR(kmeans(nan_z, 2, 3, gen), "kmeans", "non-finite");
  }
  Generator gen(27);
  models::VectorQuantizerConfig bad;
  bad.dead_code_threshold = 1.0;  // without ema
  EXPECT_LATENT_ERROR(models::VectorQuantizer(bad, gen), "needs the EMA codebook");
  bad.ema = true;
  bad.decay = 1.0;
  EXPECT_LATENT_ERROR(models::VectorQuantizer(bad, gen), "decay");
}

// ------------------------------------------------------------------ the module and the model
TEST(VqModule, EmaStateIsBuffersAndTheGradientCodebookAParameter) {
  Generator gen(28);
  models::VectorQuantizerConfig config;
  config.codebook_size = 8;
  config.code_dim = 2;
  const models::VectorQuantizer gradient(config, gen);
  ASSERT_EQ(gradient.parameters().size(), 1u);
  EXPECT_EQ(gradient.named_parameters()[0].first, "codebook");
  config.ema = true;
  const models::VectorQuantizer ema(config, gen);
  EXPECT_TRUE(ema.parameters().empty());
  std::vector<std::string> names;
  for (const auto& [name, t] : ema.named_buffers()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"codebook", "ema_count", "ema_sum", "last_used",
                                             "initialized"}));
}

models::VqVaeConfig tiny_config(bool ema, double threshold, bool kmeans) {
  models::VqVaeConfig c;
  c.net.hidden_channels = 4;
  c.quantizer.codebook_size = 16;
  c.quantizer.code_dim = 3;
  c.quantizer.ema = ema;
  c.quantizer.dead_code_threshold = threshold;
  c.quantizer.kmeans_init = kmeans;
  c.quantizer.kmeans_iterations = 3;
  return c;
}

// A few optimizer steps of every variant on cpu and on cuda (SIMT in CI), the tokenizer's
// round trip, and bit-identical repeats.
TEST_F(VqEma, VqVaeTrainsAndTokenizes) {
  struct Variant {
    bool ema;
    double threshold;
    bool kmeans;
  };
  for (const Variant v : {Variant{false, 0.0, false}, Variant{true, 0.0, false},
                          Variant{true, 1.0, true}}) {
    for (Device device : devices()) {
      auto train_steps = [&] {
        Generator gen(29);
        auto model = std::make_shared<models::VqVae>(tiny_config(v.ema, v.threshold, v.kmeans), gen);
        model->to(device);
        optim::AdamW optimizer(model->parameters(), 1e-2);
        Generator data(30);
        const Tensor images = rand({6, 1, 28, 28}, data).to(device);
        double loss = 0;
        for (int step = 0; step < 3; ++step) {
          const auto out = model->training_step(images, step);
          optimizer.zero_grad();
          out.loss.backward();
          optimizer.step();
          model->after_step(images, step);
          loss = out.loss.item();
          EXPECT_TRUE(std::isfinite(loss));
          EXPECT_GT(out.metrics.at("perplexity")(), 0.0);
        }
        EXPECT_TRUE(model->quantizer().initialized());
        return model;
      };
      const auto model = train_steps();
      const std::string what = std::string(v.ema ? "ema" : "gradient") + " " + device.str();
      Generator data(31);
      const Tensor images = rand({3, 1, 28, 28}, data).to(device);
      const Tensor tokens = model->encode_tokens(images);
      ASSERT_EQ(tokens.shape(), (Shape{3, 7, 7})) << what;
      ASSERT_EQ(tokens.dtype(), DType::i32);
      for (std::int32_t t : tokens.to_vector<std::int32_t>()) EXPECT_TRUE(t >= 0 && t < 16);
      const Tensor decoded = model->decode_tokens(tokens);
      EXPECT_EQ(decoded.shape(), (Shape{3, 1, 28, 28}));
      EXPECT_TRUE(identical(decoded.to(Device::cpu()), model->reconstruct(images).to(Device::cpu())))
          << what;
      Tensor bad = tokens.to(Device::cpu()).clone();
      bad.narrow(0, 0, 1).fill_(16.0);
      EXPECT_LATENT_ERROR(model->decode_tokens(bad.to(device)), "index 16", "out of range");
      EXPECT_LATENT_ERROR(model->decode_tokens(zeros({2, 7, 7}).to(device)), "int32 tokens");
      // Bitwise repeatable from the seed.
      const auto again = train_steps();
      for (const auto& [name, t] : model->state_dict())
        for (const auto& [name2, t2] : again->state_dict())
          if (name == name2) EXPECT_TRUE(identical(t, t2)) << what << " " << name;
      const auto extra = model->evaluate_extra(Dataset{rand({4, 1, 28, 28}, data),
                                                       zeros({4}, DType::i32)},
                                               device);
      EXPECT_GT(extra.at("utilization"), 0.0);
      EXPECT_GE(extra.at("perplexity"), 1.0);
      EXPECT_EQ(extra.at("dead_codes"), 16 - extra.at("utilization") * 16);
    }
  }
}

// ------------------------------------------------------------------ no host reads per step
// The usage window is updated on the device (float64 arithmetic, exact for every int32); the
// rule is the host loop it replaced: last_k ← step wherever code k was chosen.
TEST_F(VqEma, UsageWindowUpdatesOnTheDeviceByTheHostRule) {
  for (bool ema : {false, true}) {
    for (Device device : devices()) {
      Generator gen(40);
      models::VectorQuantizerConfig c;
      c.codebook_size = 6;
      c.code_dim = 2;
      c.ema = ema;
      c.usage_window = 5;
      models::VectorQuantizer q(c, gen);
      q.to(device);
      std::vector<std::int32_t> expected(6, -1);
      const std::vector<std::pair<std::int64_t, std::vector<std::int32_t>>> steps = {
          {0, {1, 1, 3}}, {3, {2}}, {7, {0, 3}}, {16777217, {4}}, {2147483646, {5, 0}}};
      for (const auto& [step, chosen] : steps) {
        const std::int64_t n = static_cast<std::int64_t>(chosen.size());
        q.update(uniform({n, 2}, -1.0, 1.0, gen).to(device), from_vector(chosen, {n}).to(device),
                 step);
        for (std::int32_t k : chosen) expected[k] = static_cast<std::int32_t>(step);
        EXPECT_EQ(q.last_used().to_vector<std::int32_t>(), expected)
            << device.str() << " step " << step;
        if (step == 7) EXPECT_DOUBLE_EQ(q.window_utilization(9), 2.0 / 6.0);  // 0 and 3 at 7
      }
    }
  }
}

TEST(VqModule, InitializedIsCachedOnTheHostAndRefreshedByLoadStateDict) {
  Generator gen(41);
  models::VqVaeConfig c = tiny_config(true, 0.0, true);
  models::VqVae trained(c, gen), fresh(c, gen), blank(c, gen);
  EXPECT_FALSE(trained.quantizer().initialized());
  trained.quantizer().initialize_from(uniform({64, 3}, -1.0, 1.0, gen));
  EXPECT_TRUE(trained.quantizer().initialized());
  // The loaded buffer counts, not what the constructor knew; through the parent module too.
  fresh.load_state_dict(trained.state_dict());
  EXPECT_TRUE(fresh.quantizer().initialized());
  trained.load_state_dict(blank.state_dict());
  EXPECT_FALSE(trained.quantizer().initialized());
}

// Trains the tiny EMA VQ-VAE with revival for `steps` steps; returns each step's metrics,
// read right after the step (`read_now`) or all at the end, when later steps have changed the
// model in place.
std::vector<std::map<std::string, double>> vq_metrics_of_steps(Device device, int steps,
                                                               bool read_now) {
  Generator gen(29);
  models::VqVae model(tiny_config(true, 1.0, false), gen);
  model.to(device);
  optim::AdamW optimizer(model.parameters(), 1e-2);
  Generator data(30);
  std::vector<models::TrainableModel::Metrics> deferred;
  std::vector<std::map<std::string, double>> values;
  for (int step = 0; step < steps; ++step) {
    const Tensor images = rand({6, 1, 28, 28}, data).to(device);
    models::TrainableModel::StepOutput out = model.training_step(images, step);
    if (read_now) values.push_back(models::read_metrics(out.metrics));
    optimizer.zero_grad();
    out.loss.backward();
    optimizer.step();
    model.after_step(images, step);
    deferred.push_back(std::move(out.metrics));
  }
  if (!read_now)
    for (const auto& m : deferred) values.push_back(models::read_metrics(m));
  return values;
}

TEST_F(VqEma, DeferredMetricsKeepTheValuesOfTheirStep) {
  for (Device device : devices()) {
    const auto now = vq_metrics_of_steps(device, 4, true);
    const auto later = vq_metrics_of_steps(device, 4, false);
    ASSERT_EQ(now.size(), 4u);
    for (const char* key : {"recon", "commitment", "perplexity", "batch_codes_used",
                            "utilization", "dead_codes", "revived"})
      EXPECT_TRUE(now[0].count(key)) << key;
    EXPECT_EQ(now, later) << device.str();  // bit for bit
  }
}

// The last revival, kept on the device for the usage picture: the latest update that revived
// a code (step s's "revived" metric counts the codes update s − 1 revived), the revived codes
// under the threshold just before and at the reset count just after.
TEST_F(VqEma, LastRevivalIsTheLatestUpdateThatRevivedCodes) {
  for (Device device : devices()) {
    Generator gen(29);
    models::VqVae model(tiny_config(true, 1.0, false), gen);
    model.to(device);
    EXPECT_EQ(model.last_revival().step, -1);
    optim::AdamW optimizer(model.parameters(), 1e-2);
    Generator data(30);
    std::int64_t expected = -1;
    for (int step = 0; step <= 6; ++step) {
      const Tensor images = rand({6, 1, 28, 28}, data).to(device);
      models::TrainableModel::StepOutput out = model.training_step(images, step);
      if (out.metrics.at("revived")() > 0) expected = step - 1;
      if (step == 6) break;
      optimizer.zero_grad();
      out.loss.backward();
      optimizer.step();
      model.after_step(images, step);
    }
    ASSERT_GE(expected, 0) << "no code was revived; the test needs a revival";
    const models::VqVae::Revival r = model.last_revival();
    EXPECT_EQ(r.step, expected) << device.str();
    ASSERT_EQ(r.revived_mask.size(), 16u);
    int revived = 0;
    for (std::size_t k = 0; k < 16; ++k) {
      if (r.revived_mask[k]) {
        ++revived;
        EXPECT_LT(r.count_before[k], 1.0) << k;
        EXPECT_EQ(r.count_after[k], 1.0) << k;
      } else {
        EXPECT_EQ(r.count_after[k], r.count_before[k]) << k;
      }
    }
    EXPECT_GT(revived, 0);
  }
}

// A run saved after step 3 and resumed logs, from step 4 on, the "revived" metric and the
// last revival of the run that went straight through: both are in the checkpoint.
TEST_F(VqEma, ResumedVqVaeLogsTheRevivalsOfTheUninterruptedRun) {
  for (Device device : devices()) {
    Generator data(30);
    std::vector<Tensor> batches;
    for (int step = 0; step <= 7; ++step) batches.push_back(rand({6, 1, 28, 28}, data).to(device));
    struct Run {
      std::shared_ptr<models::VqVae> model;
      std::unique_ptr<optim::AdamW> optimizer;
    };
    auto make = [&](std::uint64_t seed) {
      Generator gen(seed);
      Run run;
      run.model = std::make_shared<models::VqVae>(tiny_config(true, 1.0, false), gen);
      run.model->to(device);
      run.optimizer = std::make_unique<optim::AdamW>(run.model->parameters(), 1e-2);
      return run;
    };
    // Steps [first, last]; returns each step's "revived" metric.
    auto train = [&](Run& run, int first, int last) {
      std::vector<double> revived;
      for (int step = first; step <= last; ++step) {
        models::TrainableModel::StepOutput out = run.model->training_step(batches[step], step);
        revived.push_back(out.metrics.at("revived")());
        run.optimizer->zero_grad();
        out.loss.backward();
        run.optimizer->step();
        run.model->after_step(batches[step], step);
      }
      return revived;
    };
    Run straight = make(29);
    std::vector<std::string> revival_buffers;
    for (const auto& [name, t] : straight.model->named_buffers())
      if (name.rfind("last_reviv", 0) == 0) revival_buffers.push_back(name);
    EXPECT_EQ(revival_buffers,
              (std::vector<std::string>{"last_revived", "last_revival_step",
                                        "last_revival_count_before", "last_revival_count_after",
                                        "last_revival_mask"}));
    const std::vector<double> all = train(straight, 0, 7);
    Run first = make(29);
    train(first, 0, 3);
    Run resumed = make(77);  // another initialization: everything must come from the state
    resumed.model->load_state_dict(first.model->state_dict());
    resumed.optimizer->load_state_dict(first.optimizer->state_dict());
    const std::vector<double> tail = train(resumed, 4, 7);
    ASSERT_EQ(tail, std::vector<double>(all.begin() + 4, all.end())) << device.str();
    EXPECT_GT(all[4], 0.0) << "update 3 revived nothing; the test needs a revival just before "
                              "the save";
    const models::VqVae::Revival a = straight.model->last_revival(), b = resumed.model->last_revival();
    EXPECT_GE(a.step, 3) << device.str();
    EXPECT_EQ(a.step, b.step) << device.str();
    EXPECT_EQ(a.count_before, b.count_before) << device.str();
    EXPECT_EQ(a.count_after, b.count_after) << device.str();
    EXPECT_EQ(a.revived_mask, b.revived_mask) << device.str();
  }
}

// ------------------------------------------------------------------ the CLI
#ifdef LATENT_CLI_PATH

namespace fs = std::filesystem;

using CommandResult = test::CliRun;
const auto run_cli = test::run_latent;

class VqCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("latent-vq-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    Generator gen(40);
    const Dataset train = test::noise_images(64, gen), held_out = test::noise_images(24, gen);
    write_fashion_mnist_like((dir_ / "data").string(), train, held_out);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string train_args(const std::string& out, const std::string& extra) const {
    return "train --model vqvae --steps 6 --batch-size 16 --hidden-channels 4 --code-dim 3 "
           "--codebook-size 32 --log-every 2 --quiet --data-dir " + (dir_ / "data").string() +
           " --out " + (dir_ / out).string() + " " + extra;
  }
  fs::path dir_;
};

TEST_F(VqCli, InfoPrintsTheBitsOfTheDefaultsAndOfACheckpoint) {
  CommandResult r = run_cli("info --picture " + (dir_ / "bits.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  // The defaults: K = 512 gives 49·9 = 441 bits, 6272 / 441 = 14.22.
  EXPECT_NE(r.output.find("441.0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("14.22"), std::string::npos) << r.output;
  EXPECT_EQ(load_png((dir_ / "bits.png").string()).size(0), 3);
  r = run_cli(train_args("run", ""));
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_cli("info --json --checkpoint " + (dir_ / "run" / "checkpoint.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  // --codebook-size 32: 49 tokens of 5 bits, 245 bits, a ratio of 25.6.
  EXPECT_NE(r.output.find("\"bits\":245.0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"ratio\":25.6"), std::string::npos) << r.output;
}

TEST_F(VqCli, TrainEmaWithRevivalWritesArtifactsAndResumesBitIdentically) {
  const std::string extra = "--ema --dead-code-threshold 1 --kmeans-init --checkpoint-every 3";
  CommandResult r = run_cli(train_args("straight", extra));
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* file : {"checkpoint.safetensors", "checkpoint-3.safetensors", "metrics.jsonl",
                           "reconstructions.png", "codebook_usage.png", "tokens.png",
                           "tokens.npy"})
    EXPECT_TRUE(fs::exists(dir_ / "straight" / file)) << file;
  std::ifstream metrics(dir_ / "straight" / "metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line)) last = line;
  for (const char* key : {"test_utilization", "test_perplexity", "test_dead_codes", "test_psnr"})
    EXPECT_NE(last.find(key), std::string::npos) << key << " in " << last;
  const Tensor tokens = load_npy((dir_ / "straight" / "tokens.npy").string());
  EXPECT_EQ(tokens.shape(), (Shape{8, 7, 7}));
  EXPECT_EQ(load_png((dir_ / "straight" / "codebook_usage.png").string()).size(0), 3);

  r = run_cli(train_args("resumed", extra) + " --resume " +
              (dir_ / "straight" / "checkpoint-3.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const SafetensorsFile a = load_safetensors((dir_ / "straight" / "checkpoint.safetensors").string());
  const SafetensorsFile b = load_safetensors((dir_ / "resumed" / "checkpoint.safetensors").string());
  ASSERT_EQ(a.names(), b.names());
  bool has_ema = false;
  for (const auto& [name, tensor] : a.tensors) {
    EXPECT_EQ(max_abs_diff(tensor, b.at(name)), 0.0) << name;
    has_ema = has_ema || name == "model.quantizer.ema_sum";
  }
  EXPECT_TRUE(has_ema);
}

TEST_F(VqCli, GradientCodebookOnTheCudaDeviceThenEncodeAndDecode) {
  LATENT_SKIP_WITHOUT_CUDA();
  CommandResult r = run_cli(train_args("gpu", "--device cuda"));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string ckpt = (dir_ / "gpu" / "checkpoint.safetensors").string();
  Generator gen(41);
  save_npy((dir_ / "images.npy").string(), rand({3, 1, 28, 28}, gen));
  r = run_cli("encode --checkpoint " + ckpt + " " + (dir_ / "images.npy").string() + " -o " +
              (dir_ / "tokens.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Tensor tokens = load_npy((dir_ / "tokens.npy").string());
  EXPECT_EQ(tokens.shape(), (Shape{3, 7, 7}));
  r = run_cli("decode --checkpoint " + ckpt + " " + (dir_ / "tokens.npy").string() + " -o " +
              (dir_ / "decoded.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "decoded.png"));
  // A token outside the codebook.
  Tensor bad = tokens.clone();
  bad.narrow(0, 0, 1).fill_(32.0);
  save_npy((dir_ / "bad.npy").string(), bad);
  r = run_cli("decode --checkpoint " + ckpt + " " + (dir_ / "bad.npy").string() + " -o " +
              (dir_ / "bad.png").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("out of range"), std::string::npos) << r.output;
  // Revival without --ema is refused.
  r = run_cli(train_args("bad", "--dead-code-threshold 1"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--ema"), std::string::npos) << r.output;
}

TEST_F(VqCli, OpVqAndOpEmaOnNpyFiles) {
  Generator gen(42);
  const Tensor z = uniform({2, 5, 4}, -1.0, 1.0, gen), codebook = uniform({7, 4}, -1.0, 1.0, gen);
  const std::string zp = (dir_ / "z.npy").string(), ep = (dir_ / "e.npy").string();
  save_npy(zp, z);
  save_npy(ep, codebook);
  const std::string device = test::has_cuda() ? "cuda" : "cpu";
  CommandResult r = run_cli("op vq " + zp + " " + ep + " -o " + (dir_ / "i.npy").string() +
                            " --distances " + (dir_ / "d.npy").string() + " --device " + device);
  ASSERT_EQ(r.status, 0) << r.output;
  const Tensor idx = load_npy((dir_ / "i.npy").string());
  EXPECT_EQ(idx.shape(), (Shape{2, 5}));
  EXPECT_TRUE(identical(idx.reshape({10}), vq_argmin(z.reshape({10, 4}), codebook).indices));
  EXPECT_EQ(load_npy((dir_ / "d.npy").string()).shape(), (Shape{2, 5}));

  save_npy((dir_ / "n.npy").string(), ones({7}));
  save_npy((dir_ / "m.npy").string(), codebook);
  r = run_cli("op ema " + zp + " " + ep + " " + (dir_ / "n.npy").string() + " " +
              (dir_ / "m.npy").string() + " -o " + (dir_ / "e2.npy").string() + " --count-out " +
              (dir_ / "n2.npy").string() + " --sum-out " + (dir_ / "m2.npy").string() +
              " --decay 0.5");
  ASSERT_EQ(r.status, 0) << r.output;
  // Against the library on the same inputs.
  const Tensor e = codebook.clone(), n = ones({7}), m = codebook.clone();
  const Tensor rows = z.reshape({10, 4});
  vq_ema_update(e, n, m, vq_code_stats(rows, vq_argmin(rows, codebook).indices, 7), {0.5, 1e-5});
  EXPECT_TRUE(identical(load_npy((dir_ / "e2.npy").string()), e));
  EXPECT_TRUE(identical(load_npy((dir_ / "n2.npy").string()), n));
  EXPECT_TRUE(identical(load_npy((dir_ / "m2.npy").string()), m));

  r = run_cli("op vq " + zp + " " + (dir_ / "n.npy").string() + " -o " + (dir_ / "x.npy").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("vq_argmin"), std::string::npos) << r.output;
}

#endif  // LATENT_CLI_PATH

}  // namespace
}  // namespace latent

namespace latent {
namespace {

// NaN or Inf in the EMA statistics would spread into the codebook: an error naming which.
// ------------------------------------------------------------------ the snapping picture

TEST(VqPictures, SnappingIsDrawnForTwoDimensionalCodesOnly) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("latent-vq-snap-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const Dataset test = test::smooth_images(12, 3);
  for (bool cosine : {false, true}) {
    models::VqVaeConfig c = tiny_config(false, 0.0, false);
    c.quantizer.code_dim = 2;
    c.quantizer.cosine = cosine;
    Generator gen(5);
    models::VqVae model(c, gen);
    model.eval();
    train::write_pictures(model, dir.string(), test, Device::cpu());
    // A 512-pixel plot, a caption above it and tick values below and to its left.
    EXPECT_EQ(load_png((dir / "snapping.png").string()).shape(), (Shape{3, 558, 572})) << cosine;
    fs::remove(dir / "snapping.png");
  }
  Generator gen(5);
  models::VqVae three(tiny_config(false, 0.0, false), gen);  // D = 3
  three.eval();
  train::write_pictures(three, dir.string(), test, Device::cpu());
  EXPECT_TRUE(fs::exists(dir / "codebook_usage.png"));
  EXPECT_FALSE(fs::exists(dir / "snapping.png"));
  EXPECT_LATENT_ERROR(train::write_snapping_picture(three, (dir / "s.png").string(), test,
                                                    Device::cpu()),
                      "two dimensions");
  fs::remove_all(dir);
}

TEST(VqPictures, EachLineRunsFromItsPointToItsNearestCode) {
  const std::vector<float> codes = {-1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f};
  const std::vector<float> points = {0.5f, 0.0f, 0.3f, 0.8f};
  // The assignment is the library's argmin: code 1 for (0.5, 0), code 2 for (0.3, 0.8).
  const std::vector<std::int32_t> nearest =
      vq_argmin(from_vector(points, {2, 2}), from_vector(codes, {3, 2})).indices.to_vector<std::int32_t>();
  ASSERT_EQ(nearest, (std::vector<std::int32_t>{1, 2}));
  train::PlotArea area;
  const Tensor picture = train::snapping_plot(points, codes, nearest, false, "test", &area);
  const std::vector<float> px = picture.to_vector<float>();
  const std::int64_t H = picture.size(1), W = picture.size(2);
  auto at = [&](std::int64_t y, std::int64_t x) {
    return train::Rgb{px[(0 * H + y) * W + x], px[(1 * H + y) * W + x], px[(2 * H + y) * W + x]};
  };
  // A used code is a disc of its colour centred on its pixel; code 0, which no point chose,
  // is hollow.
  for (int k = 1; k < 3; ++k)
    EXPECT_EQ(at(area.py(codes[2 * k + 1]), area.px(codes[2 * k])), train::code_colour(k)) << k;
  EXPECT_EQ(at(area.py(0.0), area.px(-1.0)), train::kWhite);
  // The horizontal line from (0.5, 0) runs right, to code 1, up to the code's ring, and not
  // left towards code 0.
  const std::int64_t row = area.py(0.0);
  for (std::int64_t x = area.px(0.5) + 3; x < area.px(1.0) - 7; ++x)
    EXPECT_EQ(at(row, x), train::snapping_line_colour(1)) << x;
  EXPECT_NE(at(row, area.px(0.5) - 4), train::snapping_line_colour(1));
  // The diagonal one passes within a pixel of the midpoint between (0.3, 0.8) and (0, 1).
  const std::int64_t my = area.py(0.9), mx = area.px(0.15);
  bool found = false;
  for (std::int64_t dy = -1; dy <= 1; ++dy)
    for (std::int64_t dx = -1; dx <= 1; ++dx)
      found = found || at(my + dy, mx + dx) == train::snapping_line_colour(2);
  EXPECT_TRUE(found);
}

// ------------------------------------------------------------------ bits per latent

TEST(CompressionPictures, EachModelsLatentInBitsAndTheBars) {
  namespace fs = std::filesystem;
  Generator gen(3);
  models::ConvNetConfig net;
  net.hidden_channels = 4;
  net.latent_channels = 4;
  models::Autoencoder ae(net, gen);
  models::VaeConfig vae_config;
  vae_config.net = net;
  models::Vae vae(vae_config, gen);
  models::VqVae vq(tiny_config(false, 0.0, false), gen);  // K = 16
  models::FsqAutoencoder fsq(net, {8, 5, 5, 5}, gen);
  std::vector<train::LatentBudget> all;
  for (auto [model, name] : std::vector<std::pair<models::TrainableModel*, std::string>>{
           {&ae, "ae"}, {&vae, "vae"}, {&vq, "vqvae"}, {&fsq, "fsq"}}) {
    const auto rows = train::latent_budgets(*model, name, 1, Device::cpu());
    all.insert(all.end(), rows.begin(), rows.end());
  }
  ASSERT_EQ(all.size(), 5u);
  // 28·28 pixels of 8 bits; 7·7·4 floats of 32 bits; μ and σ; 49 tokens of log2 K bits.
  for (const train::LatentBudget& b : all) EXPECT_EQ(b.image_bits, 6272.0) << b.label;
  EXPECT_EQ(all[0].numbers, 196);
  EXPECT_EQ(all[0].bits, 6272.0);
  EXPECT_EQ(all[1].label, "vae (mu, sigma)");
  EXPECT_EQ(all[1].bits, 12544.0);
  EXPECT_EQ(all[1].ratio(), 0.5);
  EXPECT_EQ(all[2].bits, 6272.0);
  EXPECT_EQ(all[3].numbers, 49);
  EXPECT_EQ(all[3].bits, 49.0 * 4.0);
  EXPECT_EQ(all[3].ratio(), 32.0);
  EXPECT_NEAR(all[4].bits, 49.0 * std::log2(1000.0), 1e-9);
  EXPECT_NEAR(all[4].ratio(), 12.844, 1e-3);

  const fs::path path = fs::temp_directory_path() / ("latent-bits-" + std::to_string(::getpid()) + ".png");
  train::write_compression_picture(all, path.string());
  // The image's row and five latents, 30 pixels each, under a title; the label column fits
  // "vae (mu, sigma)" (15 characters of 6 pixels).
  const Tensor picture = load_png(path.string());
  EXPECT_EQ(picture.shape(), (Shape{3, 26 + 6 * 30 + 10, 10 + 15 * 6 - 1 + 10 + 420 + 150}));
  fs::remove(path);
  EXPECT_LATENT_ERROR(train::write_compression_picture({}, path.string()), "no latents");
}

TEST(VqEmaUpdate, NonFiniteStatisticsAreErrorsNamingThem) {
  for (const Device device : test::devices()) {
    SCOPED_TRACE(device.str());
    const Tensor codebook = zeros({4, 2}, DType::f32, device);
    Tensor ema_count = ones({4}, DType::f32, device), ema_sum = zeros({4, 2}, DType::f32, device);
    VqCodeStats batch;
    batch.counts = zeros({4}, DType::i32, device);
    batch.sums = zeros({4, 2}, DType::f32, device);
    Tensor bad_count = from_vector<float>({1, NAN, 1, 1}, {4}).to(device);
    EXPECT_LATENT_ERROR(vq_ema_update(codebook, bad_count, ema_sum, batch, {}), "vq_ema_update",
                        "ema_count [4]", "element 1");
    VqCodeStats bad = batch;
    bad.sums = from_vector<float>({0, 0, 0, INFINITY, 0, 0, 0, 0}, {4, 2}).to(device);
    EXPECT_LATENT_ERROR(vq_ema_update(codebook, ema_count, ema_sum, bad, {}), "batch sums",
                        "element 3");
  }
}

}  // namespace
}  // namespace latent
