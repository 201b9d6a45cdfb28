// Matrix products (src/ops/linalg.cpp: OpenBLAS on cpu, cuBLAS on cuda, its CPU equivalent
// under SIMT) through the op harness (tests/op_harness.h), on every device: matmul and
// linear against a triple loop in double with the bound |error| <= (K + 2)·u·Σ|a·b|, over
// odd shapes, transposed and strided views (leading dimensions, one-row and one-column
// operands, batch dimensions that are not outermost) and bench/gemm_bench's shapes; the
// cuda backend against cpu; gradients against finite differences; bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "latent/latent.h"
#include "tests/op_harness.h"
#include "tests/reference.h"

namespace latent {
namespace {

using test::check_op;
using test::Expected;
using test::gradient_case;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::sum_error_bound;
using test::Tensors;
using test::uniform_tensor;
using test::unit_roundoff;
using test::values_of;

struct Dense {
  std::vector<double> values, bound;  // bound: Σ|terms| per output, for error bounds
};

// C[b] = A[b] · B[b], A [batch, M, K], B [batch, K, N].
Dense matmul_ref(const std::vector<double>& a, const std::vector<double>& b,
                 std::int64_t batch, std::int64_t m, std::int64_t k, std::int64_t n) {
  Dense c{std::vector<double>(batch * m * n, 0.0), std::vector<double>(batch * m * n, 0.0)};
  for (std::int64_t p = 0; p < batch; ++p)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t q = 0; q < k; ++q) {
        const double x = a[(p * m + i) * k + q];
        for (std::int64_t j = 0; j < n; ++j) {
          const double t = x * b[(p * k + q) * n + j];
          c.values[(p * m + i) * n + j] += t;
          c.bound[(p * m + i) * n + j] += std::abs(t);
        }
      }
  return c;
}

// matmul(a, b) of two operands made from the inputs (views, typically), against the triple
// loop over the same views.
using Operands = std::function<std::pair<Tensor, Tensor>(const Tensors&)>;
OpCase product_case(std::string name, std::uint64_t seed, std::function<Tensors(Generator&)> inputs,
                    Operands operands) {
  OpCase c;
  c.name = std::move(name);
  c.seed = seed;
  c.inputs = std::move(inputs);
  c.op = [operands](const Tensors& in) {
    const auto [a, b] = operands(in);
    return Tensors{matmul(a, b)};
  };
  c.reference = [operands](const Tensors& in) {
    const auto [a, b] = operands(in);
    const bool batched = a.dim() == 3;
    const std::int64_t batch = batched ? a.size(0) : 1, m = a.size(-2), k = a.size(-1),
                       n = b.size(-1);
    const Dense ref = matmul_ref(values_of(a), values_of(b), batch, m, k, n);
    const Shape shape = batched ? Shape{batch, m, n} : Shape{m, n};
    return std::vector<Expected>{
        {ref.values, sum_error_bound(ref.bound, k, unit_roundoff(a.dtype())), shape, a.dtype()}};
  };
  c.tolerance = per_dtype(near(0, 0), near(0, 0));  // within the bound
  return c;
}

Tensors two(Tensor a, Tensor b) { return Tensors{std::move(a), std::move(b)}; }
std::pair<Tensor, Tensor> as_is(const Tensors& in) { return {in[0], in[1]}; }

// ================================================================== against loops

TEST(Gemm, MatmulMatchesTripleLoop) {
  const cases::Gemm shapes[] = {{0, 1, 1, 1},  {0, 31, 33, 17}, {0, 64, 100, 65},
                                {0, 1, 7, 5},  {0, 5, 7, 1},    {3, 5, 7, 4},
                                {2, 1, 33, 31}, {1, 16, 16, 16}};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const cases::Gemm& g : shapes) {
      const Shape as = g.batch ? Shape{g.batch, g.m, g.k} : Shape{g.m, g.k};
      const Shape bs = g.batch ? Shape{g.batch, g.k, g.n} : Shape{g.k, g.n};
      OpCase c = product_case(
          g.str() + " " + dtype_name(dtype), 301,
          [&](Generator& gen) {
            return two(uniform_tensor(as, gen, -1, 1, dtype), uniform_tensor(bs, gen, -1, 1, dtype));
          },
          as_is);
      c.cost = cases::gemm(g, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The shapes bench/gemm_bench times, float32.
TEST(Gemm, BenchShapesMatchTripleLoop) {
  for (const cases::Gemm& g : cases::gemm_bench_shapes()) {
    OpCase c = product_case(
        g.str() + " float32", 304,
        [&](Generator& gen) {
          return two(uniform_tensor({g.m, g.k}, gen, -1, 1, DType::f32),
                     uniform_tensor({g.k, g.n}, gen, -1, 1, DType::f32));
        },
        as_is);
    c.cost = cases::gemm(g, DType::f32);
    EXPECT_TRUE(check_op(c));
  }
}

TEST(Gemm, TransposedAndStridedViews) {
  const std::int64_t m = 6, k = 9, n = 5;
  struct View {
    const char* name;
    std::function<Tensors(Generator&)> inputs;
    Operands operands;
  };
  const std::vector<View> views = {
      {"aᵀ-view · b", [&](Generator& g) { return two(uniform_tensor({k, m}, g), uniform_tensor({k, n}, g)); },
       [](const Tensors& in) { return std::pair{in[0].t(), in[1]}; }},
      {"a · bᵀ-view", [&](Generator& g) { return two(uniform_tensor({m, k}, g), uniform_tensor({n, k}, g)); },
       [](const Tensors& in) { return std::pair{in[0], in[1].t()}; }},
      {"aᵀ-view · bᵀ-view", [&](Generator& g) { return two(uniform_tensor({k, m}, g), uniform_tensor({n, k}, g)); },
       [](const Tensors& in) { return std::pair{in[0].t(), in[1].t()}; }},
      // a = wide.narrow(1, 2, k): leading dimension > k.
      {"narrowed a (ld > k)", [&](Generator& g) { return two(uniform_tensor({m, k + 4}, g), uniform_tensor({k, n}, g)); },
       [k](const Tensors& in) { return std::pair{in[0].narrow(1, 2, k), in[1]}; }},
      // A view that is neither row- nor column-major (every other column).
      {"every other column", [&](Generator& g) { return two(uniform_tensor({m, 2 * k}, g), uniform_tensor({k, n}, g)); },
       [m, k](const Tensors& in) {
         return std::pair{in[0].reshape({m, k, 2}).narrow(2, 0, 1).reshape({m, k}), in[1]};
       }},
      // One-row and one-column operands with strides GEMM must read as leading dimensions.
      {"one strided row", [&](Generator& g) { return two(uniform_tensor({4, 2 * k}, g), uniform_tensor({k, n}, g)); },
       [k](const Tensors& in) {
         return std::pair{in[0].narrow(0, 1, 1).reshape({1, k, 2}).narrow(2, 1, 1).reshape({1, k}), in[1]};
       }},
      {"one row at an offset", [&](Generator& g) { return two(uniform_tensor({4, 2 * k}, g), uniform_tensor({k, n}, g)); },
       [k](const Tensors& in) { return std::pair{in[0].narrow(0, 2, 1).narrow(1, 3, k), in[1]}; }},
      {"one row of a transpose", [&](Generator& g) { return two(uniform_tensor({4, 2 * k}, g), uniform_tensor({k, n}, g)); },
       [k](const Tensors& in) { return std::pair{in[0].t().narrow(1, 0, 1).t().narrow(1, 0, k), in[1]}; }},
      {"one column, stride 3", [&](Generator& g) { return two(uniform_tensor({m, k}, g), uniform_tensor({k, 3}, g)); },
       [](const Tensors& in) { return std::pair{in[0], in[1].narrow(1, 2, 1)}; }},
      {"one column, stride 1", [&](Generator& g) { return two(uniform_tensor({m, k}, g), uniform_tensor({3, k}, g)); },
       [](const Tensors& in) { return std::pair{in[0], in[1].narrow(0, 1, 1).t()}; }},
      // Batched: per-batch transposes and a batch dimension that is not outermost.
      {"batched, transposed, batch in the middle",
       [&](Generator& g) { return two(uniform_tensor({3, k, m}, g), uniform_tensor({k, 3, n}, g)); },
       [](const Tensors& in) { return std::pair{in[0].transpose(1, 2), in[1].transpose(0, 1)}; }},
  };
  for (const View& v : views) {
    OpCase c = product_case(v.name, 302, v.inputs, v.operands);
    c.cost = cases::gemm({0, m, k, n}, DType::f64);
    EXPECT_TRUE(check_op(c));
  }
}

TEST(Gemm, EmptyInnerDimensionGivesZeros) {
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    const Tensor out = matmul(zeros({3, 0}, DType::f64, device), zeros({0, 2}, DType::f64, device));
    EXPECT_EQ(out.shape(), (Shape{3, 2}));
    EXPECT_EQ(values_of(out), std::vector<double>(6, 0.0)) << device.str();
    EXPECT_EQ(matmul(zeros({0, 4}, DType::f32, device), zeros({4, 2}, DType::f32, device)).shape(),
              (Shape{0, 2}));
  }
}

TEST(Gemm, LinearMatchesLoops) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& xs : {Shape{5, 4}, Shape{2, 3, 4}, Shape{4}}) {
      OpCase c;
      c.name = "linear " + shape_str(xs) + " " + dtype_name(dtype);
      c.seed = 303;
      c.inputs = [&](Generator& g) {
        return Tensors{uniform_tensor(xs, g, -1, 1, dtype), uniform_tensor({3, 4}, g, -1, 1, dtype),
                       uniform_tensor({3}, g, -1, 1, dtype)};
      };
      c.op = [](const Tensors& in) { return Tensors{linear(in[0], in[1]), linear(in[0], in[1], in[2])}; };
      c.reference = [&](const Tensors& in) {
        const std::vector<double> xv = values_of(in[0]), wv = values_of(in[1]), bv = values_of(in[2]);
        const std::int64_t rows = in[0].numel() / 4;
        std::vector<double> expected, expected_bias, bound, bound_bias;
        for (std::int64_t r = 0; r < rows; ++r)
          for (int o = 0; o < 3; ++o) {
            double acc = 0, mag = 0;
            for (int i = 0; i < 4; ++i) {
              acc += xv[r * 4 + i] * wv[o * 4 + i];
              mag += std::abs(xv[r * 4 + i] * wv[o * 4 + i]);
            }
            expected.push_back(acc);
            bound.push_back(mag);
            expected_bias.push_back(acc + bv[o]);
            bound_bias.push_back(mag + std::abs(bv[o]));
          }
        Shape out_shape = xs;
        out_shape.back() = 3;
        const double u = unit_roundoff(dtype);
        return std::vector<Expected>{{expected, sum_error_bound(bound, 4, u), out_shape},
                                     {expected_bias, sum_error_bound(bound_bias, 5, u), out_shape}};
      };
      c.tolerance = per_dtype(near(0, 0), near(0, 0));
      c.cost = cases::gemm({0, shape_numel(xs) / 4, 4, 3}, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// ================================================================== cuda against cpu

TEST(Gemm, MatmulLinearAndTransposedViewsMatchTheCpuBackend) {
  struct Case {
    const char* name;
    std::function<Tensors(Generator&)> inputs;
    std::function<Tensors(const Tensors&)> op;
    double tol;
    cases::Cost cost;
  };
  const std::vector<Case> list = {
      {"matmul 2-D", [](Generator& g) { return two(uniform({33, 17}, -2, 2, g), uniform({17, 31}, -2, 2, g)); },
       [](const Tensors& in) { return Tensors{matmul(in[0], in[1])}; }, 1e-5,
       cases::gemm({0, 33, 17, 31}, DType::f32)},
      {"matmul transposed views",
       [](Generator& g) { return two(uniform({17, 33}, -2, 2, g), uniform({31, 17}, -2, 2, g)); },
       [](const Tensors& in) { return Tensors{matmul(in[0].t(), in[1].t())}; }, 1e-5,
       cases::gemm({0, 33, 17, 31}, DType::f32)},
      {"matmul batched", [](Generator& g) { return two(uniform({3, 5, 7}, -2, 2, g), uniform({3, 7, 4}, -2, 2, g)); },
       [](const Tensors& in) { return Tensors{matmul(in[0], in[1])}; }, 1e-5,
       cases::gemm({3, 5, 7, 4}, DType::f32)},
      {"linear f64",
       [](Generator& g) {
         return Tensors{uniform({9, 6}, -2, 2, g, DType::f64), uniform({4, 6}, -2, 2, g, DType::f64),
                        uniform({4}, -2, 2, g, DType::f64)};
       },
       [](const Tensors& in) { return Tensors{linear(in[0], in[1], in[2])}; }, 1e-12,
       cases::gemm({0, 9, 6, 4}, DType::f64)},
  };
  for (const Case& l : list) {
    OpCase c;
    c.name = l.name;
    c.seed = 2024;
    c.inputs = l.inputs;
    c.op = l.op;
    c.tolerance = per_dtype(near(l.tol, l.tol), near(l.tol, l.tol));
    c.gradients = true;
    c.cost = l.cost;
    EXPECT_TRUE(check_op(c));
  }
}

// ================================================================== gradients

TEST(GemmGrad, TwoDimensional) {
  auto ab = [](Shape sa, Shape sb) {
    return [=](Generator& g) { return two(uniform_tensor(sa, g), uniform_tensor(sb, g)); };
  };
  const auto mm = [](const Tensors& in) { return matmul(in[0], in[1]); };
  EXPECT_TRUE(check_op(gradient_case("a · b", 901, ab({3, 4}, {4, 5}), mm)));
  // Transposed-view inputs: the leaves are stored transposed.
  EXPECT_TRUE(check_op(gradient_case("aᵀ · b", 901, ab({4, 3}, {4, 5}),
                                     [](const Tensors& in) { return matmul(in[0].t(), in[1]); })));
  EXPECT_TRUE(check_op(gradient_case("a · bᵀ", 901, ab({3, 4}, {5, 4}),
                                     [](const Tensors& in) { return matmul(in[0], in[1].t()); })));
  EXPECT_TRUE(check_op(gradient_case("aᵀ · bᵀ", 901, ab({4, 3}, {5, 4}),
                                     [](const Tensors& in) { return matmul(in[0].t(), in[1].t()); })));
  // x·xᵀ: the same leaf on both sides.
  EXPECT_TRUE(check_op(gradient_case(
      "x · xᵀ", 901, [](Generator& g) { return Tensors{uniform_tensor({3, 4}, g)}; },
      [](const Tensors& in) { return matmul(in[0], in[0].t()); })));
  // Vectors as matrices.
  EXPECT_TRUE(check_op(gradient_case("row · column", 901, ab({1, 4}, {4, 1}), mm)));
  EXPECT_TRUE(check_op(gradient_case("column · row", 901, ab({1, 4}, {4, 1}),
                                     [](const Tensors& in) { return matmul(in[1], in[0]); })));
}

TEST(GemmGrad, Batched) {
  EXPECT_TRUE(check_op(gradient_case(
      "batched", 902,
      [](Generator& g) { return two(uniform_tensor({2, 3, 4}, g), uniform_tensor({2, 4, 5}, g)); },
      [](const Tensors& in) { return matmul(in[0], in[1]); })));
  EXPECT_TRUE(check_op(gradient_case(
      "batched, transposed", 902,
      [](Generator& g) { return two(uniform_tensor({2, 4, 3}, g), uniform_tensor({2, 5, 4}, g)); },
      [](const Tensors& in) { return matmul(in[0].transpose(1, 2), in[1].transpose(-1, -2)); })));
  // Batch dimension in the middle of the leaf's storage.
  EXPECT_TRUE(check_op(gradient_case(
      "batch dimension in the middle", 902,
      [](Generator& g) { return two(uniform_tensor({3, 2, 4}, g), uniform_tensor({2, 4, 5}, g)); },
      [](const Tensors& in) { return matmul(in[0].transpose(0, 1), in[1]); })));
}

TEST(GemmGrad, Linear) {
  for (const Shape& xs : {Shape{5, 4}, Shape{2, 3, 4}, Shape{4}}) {
    auto inputs = [&](Generator& g) {
      return Tensors{uniform_tensor(xs, g), uniform_tensor({3, 4}, g), uniform_tensor({3}, g)};
    };
    auto without_bias = [&](Generator& g) { return two(uniform_tensor(xs, g), uniform_tensor({3, 4}, g)); };
    EXPECT_TRUE(check_op(gradient_case("linear " + shape_str(xs), 903, without_bias,
                                       [](const Tensors& in) { return linear(in[0], in[1]); })));
    EXPECT_TRUE(check_op(gradient_case("linear with bias " + shape_str(xs), 903, inputs,
                                       [](const Tensors& in) { return linear(in[0], in[1], in[2]); })));
  }
}

// ================================================================== errors

TEST(GemmErrors, MatmulShapes) {
  for (Device d : test::devices()) {
    auto z = [d](Shape s) { return zeros(s, DType::f32, d); };
    EXPECT_LATENT_ERROR(matmul(z({2, 3}), z({4, 5})), "matmul", "[2, 3]", "[4, 5]");
    EXPECT_LATENT_ERROR(matmul(z({2, 2, 3}), z({2, 4, 5})), "matmul", "[2, 2, 3]", "[2, 4, 5]");
    EXPECT_LATENT_ERROR(matmul(z({2, 2, 3}), z({3, 3, 5})), "matmul", "[2, 2, 3]", "[3, 3, 5]");
    EXPECT_LATENT_ERROR(matmul(z({3}), z({3, 2})), "matmul", "[3]", "[3, 2]");
    EXPECT_LATENT_ERROR(matmul(z({2, 3}), z({2, 3, 2})), "matmul", "[2, 3]", "[2, 3, 2]");
    EXPECT_LATENT_ERROR(linear(z({5, 4}), z({3, 5})), "linear", "[5, 4]", "[3, 5]");
    EXPECT_LATENT_ERROR(linear(z({5, 4}), z({3, 4}), z({4})), "linear", "[4]");
  }
}

}  // namespace
}  // namespace latent
