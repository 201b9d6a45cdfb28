// The losses (src/ops/loss.cpp: mse_loss, binary_cross_entropy_with_logits, composed of the
// elementwise and reduce kernels) through the op harness (tests/op_harness.h), on every
// device: against their formulas in double, stable for logits the size of a float's exp
// range, the cuda backend against cpu, gradients against finite differences, bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "latent/latent.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::check_op;
using test::Expected;
using test::gradient_case;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::Tensors;
using test::uniform_tensor;
using test::unit_roundoff;
using test::values_of;

TEST(Loss, MseMatchesFormula) {
  OpCase c;
  c.name = "mse_loss [4, 7]";
  c.seed = 501;
  c.inputs = [](Generator& g) { return Tensors{uniform_tensor({4, 7}, g), uniform_tensor({4, 7}, g)}; };
  c.op = [](const Tensors& in) { return Tensors{mse_loss(in[0], in[1]), mse_loss(in[0], in[0])}; };
  c.reference = [](const Tensors& in) {
    const std::vector<double> pv = values_of(in[0]), tv = values_of(in[1]);
    double acc = 0;
    for (std::size_t i = 0; i < pv.size(); ++i) acc += (pv[i] - tv[i]) * (pv[i] - tv[i]);
    return std::vector<Expected>{{{acc / 28}, {1e-15}, Shape{}}, {{0.0}, {}, Shape{}}};
  };
  c.tolerance = per_dtype(near(0, 0), near(0, 0));
  c.cost = cases::binary(28, 28, 1, DType::f64);
  EXPECT_TRUE(check_op(c));
}

double bce_ref(double x, double t) {
  const double s = 1 / (1 + std::exp(-x));
  return -t * std::log(s) - (1 - t) * std::log(1 - s);
}

TEST(Loss, BceWithLogitsMatchesFormula) {
  for (DType dtype : {DType::f32, DType::f64}) {
    OpCase c;
    c.name = std::string("binary_cross_entropy_with_logits [3, 33] ") + dtype_name(dtype);
    c.seed = 502;
    c.inputs = [dtype](Generator& g) {
      return Tensors{uniform_tensor({3, 33}, g, -4, 4, dtype), uniform_tensor({3, 33}, g, 0, 1, dtype)};
    };
    c.op = [](const Tensors& in) { return Tensors{binary_cross_entropy_with_logits(in[0], in[1])}; };
    c.reference = [dtype](const Tensors& in) {
      const std::vector<double> xv = values_of(in[0]), tv = values_of(in[1]);
      double acc = 0, scale = 0;
      for (std::size_t i = 0; i < xv.size(); ++i) {
        acc += bce_ref(xv[i], tv[i]);
        scale += std::abs(xv[i]) + 1;
      }
      const double n = static_cast<double>(xv.size());
      // Each term is a handful of roundings of numbers no larger than |x| + 1.
      return std::vector<Expected>{{{acc / n}, {8 * unit_roundoff(dtype) * scale / n}}};
    };
    c.tolerance = per_dtype(near(0, 0), near(0, 0));
    c.cost = cases::binary(99, 99, 1, dtype);
    EXPECT_TRUE(check_op(c));
  }
}

TEST(Loss, BceWithLogitsIsStableForLargeLogits) {
  const std::vector<double> x{1000, -1000, 1000, -1000, 40, -40};
  const std::vector<double> t{1, 1, 0, 0, 1, 0};
  // Exact: max(x, 0) − x·t + log1p(exp(−|x|)).
  const double expected = (0 + 1000 + 1000 + 0 + 2 * std::log1p(std::exp(-40.0))) / 6;
  for (DType dtype : {DType::f32, DType::f64}) {
    OpCase c;
    c.name = std::string("binary_cross_entropy_with_logits of ±1000 and ±40 ") + dtype_name(dtype);
    c.inputs = [&](Generator&) {
      return Tensors{from_vector(x, {6}).to(dtype), from_vector(t, {6}).to(dtype)};
    };
    c.op = [](const Tensors& in) { return Tensors{binary_cross_entropy_with_logits(in[0], in[1])}; };
    c.reference = [&](const Tensors&) {
      return std::vector<Expected>{{{expected}, {4 * unit_roundoff(dtype) * expected}}};
    };
    c.tolerance = per_dtype(near(0, 0), near(0, 0));  // finite, and within the bound
    c.cost = cases::binary(6, 6, 1, dtype);
    EXPECT_TRUE(check_op(c));
  }
}

TEST(Loss, LossesMatchTheCpuBackend) {
  OpCase c;
  c.name = "mse_loss and binary_cross_entropy_with_logits [64, 1, 7, 7]";
  c.seed = 2024;
  c.inputs = [](Generator& g) {
    return Tensors{uniform({64, 1, 7, 7}, -2, 2, g), uniform({64, 1, 7, 7}, 0, 1, g)};
  };
  c.op = [](const Tensors& in) {
    return Tensors{mse_loss(in[0], in[1]), binary_cross_entropy_with_logits(in[0], in[1])};
  };
  c.tolerance = per_dtype(near(1e-6, 1e-5), near(1e-6, 1e-5));
  c.gradients = true;
  c.cost = cases::binary(3136, 3136, 1, DType::f32);
  EXPECT_TRUE(check_op(c));
}

// ================================================================== gradients

TEST(LossGrad, MseLoss) {
  EXPECT_TRUE(check_op(gradient_case(
      "mse_loss", 1201,
      [](Generator& g) { return Tensors{uniform_tensor({3, 5}, g), uniform_tensor({3, 5}, g)}; },
      [](const Tensors& in) { return mse_loss(in[0], in[1]); })));
  EXPECT_TRUE(check_op(gradient_case(
      "mse_loss of a transpose", 1201,
      [](Generator& g) { return Tensors{uniform_tensor({5, 3}, g), uniform_tensor({3, 5}, g)}; },
      [](const Tensors& in) { return mse_loss(in[0].t(), in[1]); })));
}

TEST(LossGrad, BinaryCrossEntropyWithLogits) {
  auto xt = [](Generator& g) {
    return Tensors{uniform_tensor({4, 6}, g, -4, 4), uniform_tensor({4, 6}, g, 0, 1)};
  };
  const auto f = [](const Tensors& in) { return binary_cross_entropy_with_logits(in[0], in[1]); };
  EXPECT_TRUE(check_op(gradient_case("logits and target", 1202, xt, f)));
  OpCase logits_only = gradient_case("logits only", 1202, xt, f);
  logits_only.finite_differences->check = {true, false};
  EXPECT_TRUE(check_op(logits_only));
  // Scaled and non-contiguous.
  EXPECT_TRUE(check_op(gradient_case(
      "scaled, of a transpose", 1202,
      [](Generator& g) { return Tensors{uniform_tensor({6, 4}, g, -4, 4), uniform_tensor({4, 6}, g, 0, 1)}; },
      [](const Tensors& in) { return mul(binary_cross_entropy_with_logits(in[0].t(), in[1]), 3.0); })));
  // Logits the size of a float's exp range: the gradient is σ(x) − t, exact at saturation.
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    Tensor big = from_vector(std::vector<double>{800, -800, 800, -800}, {4}).to(device);
    big.requires_grad_();
    binary_cross_entropy_with_logits(big, from_vector(std::vector<double>{1, 1, 0, 0}, {4}).to(device))
        .backward();
    EXPECT_TRUE(test::all_close(big.grad(), {0, -0.25, 0.25, 0}, 0, 1e-300)) << device.str();
  }
}

// ================================================================== errors

TEST(LossErrors, LossShapes) {
  for (Device d : test::devices()) {
    auto z = [d](Shape s) { return zeros(s, DType::f32, d); };
    EXPECT_LATENT_ERROR(mse_loss(z({0}), z({0})), "mse_loss", "empty", "[0]");
    EXPECT_LATENT_ERROR(mse_loss(z({2, 3}), z({3, 2})), "mse_loss", "[2, 3]", "[3, 2]");
    EXPECT_LATENT_ERROR(binary_cross_entropy_with_logits(z({0, 2}), z({0, 2})),
                        "binary_cross_entropy_with_logits", "empty", "[0, 2]");
    EXPECT_LATENT_ERROR(binary_cross_entropy_with_logits(z({2}), z({3})),
                        "binary_cross_entropy_with_logits", "[2]", "[3]");
  }
}

}  // namespace
}  // namespace latent
