// The embedding lookup (embedding): rows exactly as in the table on every device, the
// table's gradient against central differences in float64 and against a long-double
// per-id sum with its error bound (repeated ids, every row on one id, ids never used),
// repeatability, and bad input. The kernel cases run through the op harness
// (tests/op_harness.h) on every device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "latent/embedding.h"
#include "latent/latent.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::check_op;
using test::devices;
using test::Expected;
using test::identical;
using test::OpCase;
using test::Tensors;
using test::values_of;

// ids of `shape` in [0, V): uniform, or with a fraction `hot` of them on id `hot_id`.
Tensor random_ids(const Shape& shape, std::int64_t V, Generator& gen, double hot = 0.0,
                  std::int32_t hot_id = 0) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& v : ids)
    v = gen.next_uniform() < hot ? hot_id : static_cast<std::int32_t>(gen.next_int(V));
  return from_vector(ids, shape);
}

// ------------------------------------------------------------------ the forward

TEST(EmbeddingForward, RowsAreTheTablesRowsExactly) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const auto& [V, C, ids_shape] :
         std::vector<std::tuple<std::int64_t, std::int64_t, Shape>>{
             {1, 1, {1}}, {7, 5, {3, 4}}, {33, 31, {31}}, {1024, 128, {2, 49}},
             {1000, 3, {1000}}, {5, 64, {2, 3, 4}}}) {
      OpCase c;
      c.name = "embedding [" + std::to_string(V) + ", " + std::to_string(C) + "] ids " +
               shape_str(ids_shape) + " " + dtype_name(dtype);
      c.seed = V + C;
      c.inputs = [&](Generator& g) {
        return Tensors{randn({V, C}, g, dtype), random_ids(ids_shape, V, g)};
      };
      c.op = [](const Tensors& in) { return Tensors{embedding(in[0], in[1])}; };
      c.reference = [&](const Tensors& in) {
        const std::vector<double> table = values_of(in[0]), ids = values_of(in[1]);
        std::vector<double> out;
        for (const double id : ids)
          for (std::int64_t ch = 0; ch < C; ++ch) out.push_back(table[static_cast<std::int64_t>(id) * C + ch]);
        Shape shape = ids_shape;
        shape.push_back(C);
        return std::vector<Expected>{{out, {}, shape, dtype}};
      };
      c.tolerance = test::every_dtype(test::exact());
      // Gradients against the cpu backend's: the per-id sums of a few rows.
      c.gradients = true;
      c.gradient_tolerance = test::per_dtype(test::near(1e-6, 1e-6), test::near(1e-14, 1e-14));
      c.cost = cases::embedding_forward(shape_numel(ids_shape), C, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(EmbeddingForward, EmptyIdsAndViews) {
  test::PoisonScope poison;
  Generator gen(3);
  for (const Device device : devices()) {
    SCOPED_TRACE(device.str());
    Tensor table = randn({6, 4}, gen).to(device);
    table.requires_grad_();
    const Tensor none = embedding(table, zeros({0, 3}, DType::i32, device));
    EXPECT_EQ(none.shape(), (Shape{0, 3, 4}));
    sum(none).backward();
    EXPECT_TRUE(identical(table.grad(), zeros({6, 4})));
    // A transposed view of a table and of the ids.
    const Tensor host = randn({4, 6}, gen);
    const Tensor ids = from_vector<std::int32_t>({5, 0, 3, 3, 1, 2}, {2, 3});
    const Tensor a = embedding(host.to(device).t(), ids.to(device).t());
    const Tensor b = embedding(host.t().contiguous().to(device), ids.t().contiguous().to(device));
    EXPECT_EQ(a.shape(), (Shape{3, 2, 4}));
    EXPECT_TRUE(identical(a, b));
  }
}

// ------------------------------------------------------------------ the gradient

TEST(EmbeddingGradient, MatchesFiniteDifferences) {
  for (const auto& [V, C, ids_shape] : std::vector<std::tuple<std::int64_t, std::int64_t, Shape>>{
           {7, 5, {3, 4}}, {3, 2, {9}}, {1, 3, {4}}, {10, 1, {2, 2, 2}}}) {
    OpCase c = test::gradient_case(
        "embedding [" + std::to_string(V) + ", " + std::to_string(C) + "] ids " +
            shape_str(ids_shape),
        V * 31 + C,
        [V, C, ids_shape](Generator& g) {
          return Tensors{randn({V, C}, g, DType::f64), random_ids(ids_shape, V, g)};
        },
        [](const Tensors& in) { return embedding(in[0], in[1]); });
    c.cost = cases::embedding_backward(shape_numel(ids_shape), V, C, DType::f64);
    EXPECT_TRUE(check_op(c));
  }
}

// dL/dtable of L = Σ out·w on every device, against the long-double per-id sum of w's rows:
// each element within its bound of a sum of n terms, n·u·Σ|terms| (the cpu backend sums in
// double, the cuda kernels in the dtype, in fixed pieces).
::testing::AssertionResult gradient_matches_per_id_sums(std::int64_t V, std::int64_t C,
                                                        const Tensor& ids, DType dtype,
                                                        std::uint64_t seed) {
  Generator gen(seed);
  const Tensor table = randn({V, C}, gen, dtype);
  Shape out_shape = ids.shape();
  out_shape.push_back(C);
  const Tensor w = randn(out_shape, gen, dtype);
  const std::vector<double> wv = values_of(w), idv = values_of(ids);
  std::vector<long double> sums(V * C, 0.0L), abs_sums(V * C, 0.0L);
  std::vector<double> counts(V, 0.0);
  for (std::size_t r = 0; r < idv.size(); ++r) {
    const std::int64_t v = static_cast<std::int64_t>(idv[r]);
    counts[v] += 1;
    for (std::int64_t ch = 0; ch < C; ++ch) {
      sums[v * C + ch] += wv[r * C + ch];
      abs_sums[v * C + ch] += std::abs(wv[r * C + ch]);
    }
  }
  Expected e{std::vector<double>(V * C), std::vector<double>(V * C), Shape{V, C}, dtype};
  const double u = test::unit_roundoff(dtype);
  for (std::int64_t i = 0; i < V * C; ++i) {
    e.values[i] = static_cast<double>(sums[i]);
    e.bound[i] = (counts[i / C] + 1) * u * static_cast<double>(abs_sums[i]);
  }
  test::PoisonScope poison;
  for (const Device device : devices()) {
    Tensor t = table.to(device).detach();
    t.requires_grad_();
    sum(mul(embedding(t, ids.to(device)), w.to(device))).backward();
    const ::testing::AssertionResult r = test::matches(t.grad(), e, test::near(0, 0));
    if (!r) return ::testing::AssertionFailure() << device.str() << ": " << r.message();
    // Ids no row uses get exactly zero.
    const std::vector<double> g = values_of(t.grad());
    for (std::int64_t v = 0; v < V; ++v)
      for (std::int64_t ch = 0; ch < C && counts[v] == 0; ++ch)
        if (g[v * C + ch] != 0.0)
          return ::testing::AssertionFailure() << device.str() << ": unused id " << v << " has "
                                               << g[v * C + ch];
  }
  return ::testing::AssertionSuccess();
}

TEST(EmbeddingGradient, IsTheSumOverRowsOfEachId) {
  Generator gen(5);
  for (const DType dtype : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dtype));
    // Uniform ids, most of the table used.
    EXPECT_TRUE(gradient_matches_per_id_sums(64, 33, random_ids({1000}, 64, gen), dtype, 1));
    // Many rows on one id (90 % on id 3) of a table mostly never used.
    EXPECT_TRUE(gradient_matches_per_id_sums(1000, 8, random_ids({4, 777}, 1000, gen, 0.9, 3),
                                             dtype, 2));
    // Every row on one id (the last), across many pieces of the sorted order.
    EXPECT_TRUE(gradient_matches_per_id_sums(
        17, 5, full({5003}, 16.0, DType::f64).to(DType::i32), dtype, 3));
    // A transformer's positions: ids 0 … 48 in every one of 128 samples.
    std::vector<std::int32_t> positions;
    for (int n = 0; n < 128; ++n)
      for (int p = 0; p < 49; ++p) positions.push_back(p);
    EXPECT_TRUE(gradient_matches_per_id_sums(64, 16, from_vector(positions, {128, 49}), dtype, 4));
  }
}

TEST(EmbeddingGradient, AccumulatesOverTwoLookups) {
  // Token and position tables are looked up once each; one table looked up twice gets both.
  test::PoisonScope poison;
  for (const Device device : devices()) {
    Tensor table = ones({4, 2}, DType::f64, device);
    table.requires_grad_();
    const Tensor a = embedding(table, from_vector<std::int32_t>({1, 1, 2}, {3}).to(device));
    const Tensor b = embedding(table, from_vector<std::int32_t>({1, 3}, {2}).to(device));
    add(sum(a), mul(sum(b), 10.0)).backward();
    EXPECT_TRUE(test::all_close(table.grad(), {0, 0, 12, 12, 1, 1, 10, 10}, 0.0)) << device.str();
  }
}

// ------------------------------------------------------------------ repeatability

TEST(EmbeddingBackends, RunsAreBitwiseRepeatable) {
  test::PoisonScope poison;
  Generator gen(8);
  for (const DType dtype : {DType::f32, DType::f64}) {
    const Tensor table = randn({300, 40}, gen, dtype);
    const Tensor ids = random_ids({6, 700}, 300, gen, 0.5, 7);
    const Tensor w = randn({6, 700, 40}, gen, dtype);
    for (const Device device : devices()) {
      SCOPED_TRACE(device.str() + " " + dtype_name(dtype));
      Tensors out, grad;
      for (int run = 0; run < 2; ++run) {
        Tensor t = table.to(device).detach();
        t.requires_grad_();
        const Tensor o = embedding(t, ids.to(device));
        sum(mul(o, w.to(device))).backward();
        out.push_back(o.detach());
        grad.push_back(t.grad());
      }
      EXPECT_TRUE(identical(out[0], out[1]));
      EXPECT_TRUE(identical(grad[0], grad[1]));
    }
  }
}

// ------------------------------------------------------------------ bad input

TEST(EmbeddingErrors, BadInputIsAClearError) {
  Generator gen(1);
  const Tensor table = randn({5, 3}, gen);
  const Tensor ids = from_vector<std::int32_t>({0, 4, 2}, {3});
  EXPECT_LATENT_ERROR(embedding(table, ids.to(DType::f32)), "embedding", "ids must be int32",
                      "float32");
  EXPECT_LATENT_ERROR(embedding(randn({5}, gen), ids), "embedding", "matrix [V, C]", "[5]");
  EXPECT_LATENT_ERROR(embedding(table.to(DType::i32), ids), "float32 or float64", "int32");
  EXPECT_LATENT_ERROR(embedding(zeros({0, 3}), ids), "embedding", "has no rows");
  EXPECT_LATENT_ERROR(embedding(Tensor(), ids), "table is undefined");
  EXPECT_LATENT_ERROR(embedding(table, Tensor()), "ids are undefined");
  if (test::has_cuda()) {
    EXPECT_LATENT_ERROR(embedding(table.to(test::cuda_device()), ids), "embedding",
                        "table is on cuda", "ids are on cpu");
  }
}

TEST(EmbeddingErrors, IdOutOfRangeNamesItsPositionAndValue) {
  Generator gen(1);
  for (const Device device : devices()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      SCOPED_TRACE(device.str() + " " + dtype_name(dtype));
      const Tensor table = randn({5, 3}, gen, dtype).to(device);
      EXPECT_LATENT_ERROR(
          embedding(table, from_vector<std::int32_t>({0, 4, 2, 1, 5, 9}, {2, 3}).to(device)),
          "embedding", "ids [2, 3]", "index 5 at position 4", "5 rows [0, 5)");
      EXPECT_LATENT_ERROR(embedding(table, from_vector<std::int32_t>({3, -2}, {2}).to(device)),
                          "index -2 at position 1");
    }
  }
}

}  // namespace
}  // namespace latent
