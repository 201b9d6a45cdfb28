// Shape ops (src/ops/shape.cpp: views, and the strided-copy kernel behind contiguous,
// clone, concat) through the op harness (tests/op_harness.h), on every device: concat
// against its definition, views and copies on the cuda backend against cpu, gradients
// against finite differences, the dtype casts' gradients, bad input.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "latent/latent.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::check_op;
using test::Expected;
using test::gradient_case;
using test::kU32;
using test::OpCase;
using test::Tensors;
using test::uniform_tensor;
using test::values_of;

TEST(Shape, ConcatAlongEachDim) {
  OpCase c;
  c.name = "concat";
  c.seed = 601;
  c.inputs = [](Generator& g) {
    return Tensors{uniform_tensor({2, 3, 4}, g), uniform_tensor({2, 1, 4}, g),
                   uniform_tensor({2, 2, 4}, g)};
  };
  c.op = [](const Tensors& in) {
    const Tensor& a = in[0];
    return Tensors{concat({a, in[1], in[2]}, 1), concat({a, a.narrow(2, 0, 1)}, -1), concat({a}, 0),
                   concat({a, zeros({0, 3, 4}, DType::f64, a.device())}, 0)};
  };
  c.reference = [](const Tensors& in) {
    const std::vector<double> av = values_of(in[0]), bv = values_of(in[1]), cv = values_of(in[2]);
    Expected joined{{}, {}, Shape{2, 6, 4}}, last{{}, {}, Shape{2, 3, 5}};
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 6; ++j)
        for (int k = 0; k < 4; ++k)
          joined.values.push_back(j < 3   ? av[(i * 3 + j) * 4 + k]
                                  : j < 4 ? bv[(i * 1 + j - 3) * 4 + k]
                                          : cv[(i * 2 + j - 4) * 4 + k]);
    for (int r = 0; r < 6; ++r)
      for (int k = 0; k < 5; ++k) last.values.push_back(av[r * 4 + (k < 4 ? k : 0)]);
    return std::vector<Expected>{joined, last, {av, {}, Shape{2, 3, 4}}, {av, {}, Shape{2, 3, 4}}};
  };
  c.cost = cases::copy(48, DType::f64, DType::f64);
  EXPECT_TRUE(check_op(c));
}

TEST(Shape, ViewsAndCopiesMatchTheCpuBackend) {
  OpCase c;
  c.name = "permute contiguous reshape concat narrow";
  c.seed = 2024;
  c.inputs = [](Generator& g) { return Tensors{uniform({4, 5, 6}, -2, 2, g)}; };
  c.op = [](const Tensors& in) {
    const Tensor p = in[0].permute({2, 0, 1}).contiguous();
    return Tensors{p, p.reshape({-1}), concat({in[0], in[0] * 2.0}, 1), in[0].narrow(2, 1, 3).clone()};
  };
  c.gradients = true;  // exact values and exact gradients
  c.cost = cases::copy(120, DType::f32, DType::f32);
  EXPECT_TRUE(check_op(c));
}

// ================================================================== gradients

TEST(ShapeGrad, ViewsAndCopies) {
  auto x = [](Generator& g) { return Tensors{uniform_tensor({2, 3, 4}, g)}; };
  const std::vector<std::pair<const char*, std::function<Tensor(const Tensors&)>>> ops = {
      {"reshape", [](const auto& in) { return in[0].reshape({4, -1}); }},
      {"reshape free", [](const auto& in) { return reshape(in[0], {24}); }},
      {"reshape of permuted", [](const auto& in) { return in[0].permute({2, 0, 1}).reshape({8, 3}); }},
      {"flatten", [](const auto& in) { return in[0].flatten(); }},
      {"flatten 1..2", [](const auto& in) { return flatten(in[0], 1, 2); }},
      {"permute", [](const auto& in) { return in[0].permute({1, 2, 0}); }},
      {"transpose", [](const auto& in) { return in[0].transpose(0, -1); }},
      {"narrow", [](const auto& in) { return in[0].narrow(2, 1, 2); }},
      {"narrow negative start", [](const auto& in) { return in[0].narrow(1, -2, 2); }},
      {"slice", [](const auto& in) { return in[0].slice(-1, 1, -1); }},
      {"unsqueeze", [](const auto& in) { return in[0].unsqueeze(1); }},
      {"squeeze", [](const auto& in) { return in[0].narrow(1, 1, 1).squeeze(1); }},
      {"contiguous", [](const auto& in) { return in[0].transpose(0, 2).contiguous(); }},
      {"clone", [](const auto& in) { return in[0].clone(); }},
      {"clone of view", [](const auto& in) { return in[0].narrow(0, 1, 1).squeeze(0).t().clone(); }},
      {"overlapping narrows", [](const auto& in) {
         return add(in[0].narrow(2, 0, 3), mul(in[0].narrow(2, 1, 3), in[0].narrow(2, 1, 3)));
       }},
  };
  for (const auto& [name, f] : ops) EXPECT_TRUE(check_op(gradient_case(name, 1101, x, f)));
  EXPECT_TRUE(check_op(gradient_case(
      "t", 1101, [](Generator& g) { return Tensors{uniform_tensor({3, 5}, g)}; },
      [](const Tensors& in) { return in[0].t(); })));
}

TEST(ShapeGrad, Concat) {
  auto pair = [](Shape a, Shape b) {
    return [=](Generator& g) { return Tensors{uniform_tensor(a, g), uniform_tensor(b, g)}; };
  };
  EXPECT_TRUE(check_op(gradient_case("concat dim 1", 1102, pair({2, 3, 4}, {2, 1, 4}),
                                     [](const auto& in) { return concat({in[0], in[1]}, 1); })));
  EXPECT_TRUE(check_op(gradient_case("concat dim -1", 1102, pair({2, 3, 4}, {2, 3, 2}),
                                     [](const auto& in) { return concat({in[0], in[1]}, -1); })));
  EXPECT_TRUE(check_op(gradient_case("concat dim 0, one input twice", 1102, pair({2, 3, 4}, {1, 3, 4}),
                                     [](const auto& in) { return concat({in[0], in[1], in[0]}, 0); })));
  // A concat's narrow-view gradients feeding further ops.
  EXPECT_TRUE(check_op(gradient_case("exp of a concat of transposes", 1102, pair({3, 2}, {3, 4}),
                                     [](const auto& in) { return exp(concat({in[0].t(), in[1].t()}, 0)); })));
}

TEST(ShapeGrad, ToDtype) {
  // to(float32) and back: the gradient passes through the casts unchanged (w is float32-exact
  // in float64, so the result is exact).
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    Generator gen(1103);
    Tensor x = uniform_tensor({5}, gen).to(device);
    x.requires_grad_();
    const Tensor w = from_vector(std::vector<float>{0.5f, -1.25f, 3.0f, 0.0f, 2.0f}, {5}).to(device);
    sum(mul(x.to(DType::f32), w)).backward();
    EXPECT_EQ(x.grad().dtype(), DType::f64);
    EXPECT_EQ(values_of(x.grad()), values_of(w)) << device.str();
    // float32 -> float64 as well.
    Tensor y = from_vector(std::vector<float>{1, 2, 3, 4, 5}, {5}).to(device);
    y.requires_grad_();
    sum(mul(y.to(DType::f64), w.to(DType::f64))).backward();
    EXPECT_EQ(y.grad().dtype(), DType::f32);
    EXPECT_EQ(values_of(y.grad()), values_of(w)) << device.str();
    EXPECT_FALSE(y.to(DType::i32).requires_grad());
  }
  // to(the same dtype) is the identity, and a cast to int32 carries no gradient.
  EXPECT_TRUE(check_op(gradient_case(
      "to(float64) of float64", 1103, [](Generator& g) { return Tensors{uniform_tensor({4}, g)}; },
      [](const Tensors& in) { return in[0].to(DType::f64); })));
  // Through float32 with a step large enough for float32's resolution.
  Generator gen(1103);
  test::GradCheckOptions coarse;
  coarse.step = 1.0 / 64;  // x ± h are exact in float32 for these x
  // The backward casts the float64 weight to float32 and scales it there: two roundings.
  coarse.rtol = 2.5 * kU32;
  coarse.atol = 0;
  const Tensor grid = from_vector(std::vector<double>{0.5, -0.25, 1.0, 0.125}, {4});
  EXPECT_TRUE(test::check_gradients(
      [](const auto& in) { return mul(in[0].to(DType::f32), 3.0).to(DType::f64); }, {grid}, gen,
      coarse));
}

// ================================================================== errors

TEST(ShapeErrors, ShapeOps) {
  for (Device d : test::devices()) {
    const Tensor x = zeros({2, 3}, DType::f32, d);
    EXPECT_LATENT_ERROR(x.reshape({4, 2}), "reshape", "[2, 3]", "[4, 2]");
    EXPECT_LATENT_ERROR(x.reshape({4, -1}), "reshape", "[2, 3]", "[4, -1]");
    EXPECT_LATENT_ERROR(x.reshape({-1, -1}), "reshape", "-1");
    EXPECT_LATENT_ERROR(reshape(x, {7}), "reshape", "[2, 3]", "[7]");
    EXPECT_LATENT_ERROR(x.narrow(1, 2, 2), "narrow", "[2, 3]");
    EXPECT_LATENT_ERROR(x.narrow(0, -3, 1), "narrow", "[2, 3]");
    EXPECT_LATENT_ERROR(x.narrow(1, 0, -1), "narrow", "[2, 3]");
    EXPECT_LATENT_ERROR(x.narrow(2, 0, 1), "narrow", "2");
    EXPECT_LATENT_ERROR(x.permute({0, 0}), "permute", "[2, 3]", "repeated");
    EXPECT_LATENT_ERROR(x.permute({0}), "permute", "[2, 3]");
    EXPECT_LATENT_ERROR(x.permute({0, 1, 2}), "permute", "[2, 3]");
    EXPECT_LATENT_ERROR(x.permute({0, 2}), "permute", "[2, 3]");
    EXPECT_LATENT_ERROR(x.transpose(0, 2), "transpose", "2");
    EXPECT_LATENT_ERROR(concat({}, 0), "concat");
    EXPECT_LATENT_ERROR(concat({x, zeros({2, 4}, DType::f32, d)}, 0), "concat", "[2, 3]", "[2, 4]");
    EXPECT_LATENT_ERROR(concat({x, zeros({2, 3, 1}, DType::f32, d)}, 0), "concat", "[2, 3]",
                        "[2, 3, 1]");
    EXPECT_LATENT_ERROR(concat({x, zeros({2, 3}, DType::f64, d)}, 0), "concat", "float64");
  }
}

}  // namespace
}  // namespace latent
