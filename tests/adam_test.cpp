// The fused Adam/AdamW step (kernels/adam.cuh, behind optim::Adam and optim::AdamW) against
// torch.optim's update rules written out in double (tests/reference.h), on every device:
// through the op harness (tests/op_harness.h) on odd sizes (1, 31, 33, 1000003), the
// parameter updated in place between guards; a few steps of autograd and optimizer on the
// toy objective; the first step and the decoupled decay by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "latent/latent.h"
#include "tests/op_harness.h"
#include "tests/reference.h"

namespace latent {
namespace {

using test::check_op;
using test::Expected;
using test::HostAdam;
using test::kP0;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::Tensors;
using test::toy_backward;
using test::toy_grad;
using test::toy_param;
using test::values_of;

struct Settings {
  bool decoupled;
  double lr;
  optim::Betas betas;
  double eps, weight_decay;
};

std::unique_ptr<optim::Optimizer> make(const Settings& s, const Tensor& p) {
  if (s.decoupled)
    return std::make_unique<optim::AdamW>(std::vector<Tensor>{p}, s.lr, s.betas, s.eps, s.weight_decay);
  return std::make_unique<optim::Adam>(std::vector<Tensor>{p}, s.lr, s.betas, s.eps, s.weight_decay);
}

std::string describe(const Settings& s) {
  return std::string(s.decoupled ? "AdamW" : "Adam") + " lr " + std::to_string(s.lr) +
         " weight_decay " + std::to_string(s.weight_decay);
}

// Three steps with three given gradients: the kernel alone, on a parameter between guards.
TEST(AdamStep, ThreeStepsMatchTheUpdateRuleOnOddSizes) {
  const std::vector<Settings> settings = {{false, 0.1, {0.9, 0.999}, 1e-8, 0.0},
                                          {false, 0.05, {0.8, 0.99}, 1e-6, 0.1},
                                          {true, 1e-3, {0.9, 0.999}, 1e-8, 1e-2}};
  for (const Settings& s : settings) {
    for (DType dtype : {DType::f32, DType::f64}) {
      for (std::int64_t n : {1, 31, 33, 1000003}) {
        OpCase c;
        c.name = describe(s) + " [" + std::to_string(n) + "] " + dtype_name(dtype);
        c.seed = 12;
        c.inputs = [&](Generator& g) {
          Tensors in{uniform({n}, -1, 1, g, dtype)};
          // Gradients of magnitude 0.5 … 2, far from cancelling the L2 term λ·p (|p| <= 1):
          // the update m̂/√v̂ of a gradient near zero is ill-conditioned in any precision.
          for (int step = 0; step < 3; ++step) in.push_back(test::away_from_zero({n}, g, 0.5, 2.0, dtype));
          return in;
        };
        c.op = [&](const Tensors& in) {
          Tensor p = in[0];
          p.requires_grad_();
          const auto opt = make(s, p);
          for (int step = 1; step <= 3; ++step) {
            p.set_grad(in[step]);
            opt->step();
          }
          p.requires_grad_(false);
          return Tensors{p};
        };
        c.reference = [&](const Tensors& in) {
          HostAdam ref{s.lr, s.betas.beta1, s.betas.beta2, s.eps, s.weight_decay, s.decoupled, {}, {}};
          std::vector<double> p = values_of(in[0]);
          for (int step = 1; step <= 3; ++step) ref.step(p, values_of(in[step]));
          return std::vector<Expected>{{p, {}, Shape{n}, dtype}};
        };
        c.writes = {0};
        c.tolerance = per_dtype(near(2e-6, 2e-6), near(1e-13, 1e-13));
        c.cost = cases::adam(n, dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
}

// Steps of autograd and the optimizer on the toy objective; the reference takes its gradient
// at its own double-precision parameter (for float32 that differs from latent's by the
// parameter's rounding, within tol).
void check_adam(bool decoupled, double lr, optim::Betas betas, double eps, double weight_decay,
                DType dtype, double tol, int steps = 3) {
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    Tensor p = toy_param(dtype, device);
    const auto opt = make({decoupled, lr, betas, eps, weight_decay}, p);
    HostAdam ref{lr, betas.beta1, betas.beta2, eps, weight_decay, decoupled, {}, {}};
    std::vector<double> expected = kP0;
    for (int step = 1; step <= steps; ++step) {
      opt->zero_grad();
      toy_backward(p);
      opt->step();
      ref.step(expected, toy_grad(expected));
      const std::vector<double> got = values_of(p);
      for (std::size_t i = 0; i < got.size(); ++i)
        EXPECT_NEAR(got[i], expected[i], tol * (1 + std::abs(expected[i])))
            << device.str() << " step " << step << " [" << i << "]";
    }
  }
}

TEST(Adam, ThreeStepsFloat64) { check_adam(false, 0.1, {0.9, 0.999}, 1e-8, 0.0, DType::f64, 1e-13); }
TEST(Adam, ThreeStepsWithL2Float64) {
  check_adam(false, 0.05, {0.8, 0.99}, 1e-6, 0.1, DType::f64, 1e-13);
}
TEST(Adam, ThreeStepsFloat32) { check_adam(false, 0.1, {0.9, 0.999}, 1e-8, 0.0, DType::f32, 2e-6); }
TEST(Adam, ManyStepsFloat64) { check_adam(false, 0.01, {0.9, 0.999}, 1e-8, 0.0, DType::f64, 1e-12, 50); }
TEST(AdamW, ThreeStepsFloat64) { check_adam(true, 0.1, {0.9, 0.999}, 1e-8, 0.05, DType::f64, 1e-13); }
TEST(AdamW, DefaultWeightDecayFloat32) {
  check_adam(true, 1e-3, {0.9, 0.999}, 1e-8, 1e-2, DType::f32, 2e-6);
}

TEST(Adam, FirstStepByHand) {
  // At t = 1, m̂ = g and v̂ = g², so the step is lr · g / (|g| + ε) ≈ lr · sign(g).
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    Tensor p = from_vector<double>({1.0, -2.0}, {2}).to(device).requires_grad_();
    optim::Adam opt({p}, 0.01);
    p.set_grad(from_vector<double>({0.5, -3.0}, {2}).to(device));
    opt.step();
    EXPECT_NEAR(values_of(p)[0], 1.0 - 0.01 * 0.5 / (0.5 + 1e-8), 1e-15) << device.str();
    EXPECT_NEAR(values_of(p)[1], -2.0 + 0.01 * 3.0 / (3.0 + 1e-8), 1e-15) << device.str();
  }
}

TEST(AdamW, DecayIsDecoupledFromTheGradient) {
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    // With a zero gradient Adam's update is 0 and only the decay acts: p ← p·(1 − lr·λ).
    Tensor p = from_vector<double>({2.0}, {1}).to(device).requires_grad_();
    optim::AdamW opt({p}, 0.1, {0.9, 0.999}, 1e-8, 0.5);
    for (int i = 0; i < 3; ++i) {
      p.set_grad(zeros({1}, DType::f64, device));
      opt.step();
    }
    EXPECT_NEAR(p.item(), 2.0 * std::pow(0.95, 3), 1e-15) << device.str();
    // Adam's L2 instead feeds λ·p through the moments: a step of ≈ lr.
    Tensor q = from_vector<double>({2.0}, {1}).to(device).requires_grad_();
    optim::Adam adam({q}, 0.1, {0.9, 0.999}, 1e-8, 0.5);
    q.set_grad(zeros({1}, DType::f64, device));
    adam.step();
    EXPECT_NEAR(q.item(), 1.9, 1e-8) << device.str();
  }
}

}  // namespace
}  // namespace latent
