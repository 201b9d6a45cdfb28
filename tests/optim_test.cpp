// Tests of latent::optim: SGD steps against the update rule written out here independently
// in double precision, skipping of parameters without gradients, argument checks, and
// checkpoints that resume bit-exactly. Adam and AdamW steps (the fused kernel) are in
// tests/adam_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latent/autograd.h"
#include "latent/nn.h"
#include "latent/ops.h"
#include "latent/optim.h"
#include "latent/random.h"
#include "latent/tensor.h"
#include "test_util.h"
#include "tests/reference.h"

namespace latent {
namespace {

using test::HostAdam;
using test::kP0;
using test::toy_backward;
using test::toy_grad;
using test::toy_param;

void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  EXPECT_TRUE(test::throws_error(f, std::vector<std::string>(parts)));
}

std::vector<double> values(const Tensor& t) { return t.to(DType::f64).detach().to_vector<double>(); }

void expect_near(const std::vector<double>& got, const std::vector<double>& want, double tol,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], tol * (1 + std::abs(want[i]))) << what << "[" << i << "]";
}

// ================================================================== SGD
// Reference: torch.optim.SGD with dampening 0.
struct HostSgd {
  double lr, momentum, weight_decay;
  bool nesterov;
  std::vector<double> buffer;
  void step(std::vector<double>& p, std::vector<double> g) {
    for (std::size_t i = 0; i < p.size(); ++i) g[i] += weight_decay * p[i];
    if (momentum != 0) {
      if (buffer.empty()) {
        buffer = g;
      } else {
        for (std::size_t i = 0; i < p.size(); ++i) buffer[i] = momentum * buffer[i] + g[i];
      }
      for (std::size_t i = 0; i < p.size(); ++i)
        g[i] = nesterov ? g[i] + momentum * buffer[i] : buffer[i];
    }
    for (std::size_t i = 0; i < p.size(); ++i) p[i] -= lr * g[i];
  }
};

void check_sgd(double lr, double momentum, double weight_decay, bool nesterov) {
  Tensor p = toy_param();
  optim::SGD opt({p}, lr, momentum, weight_decay, nesterov);
  HostSgd ref{lr, momentum, weight_decay, nesterov, {}};
  std::vector<double> expected = kP0;
  for (int step = 1; step <= 3; ++step) {
    opt.zero_grad();
    toy_backward(p);
    expect_near(values(p.grad()), toy_grad(expected), 1e-14, "gradient");
    opt.step();
    ref.step(expected, toy_grad(expected));
    expect_near(values(p), expected, 1e-14, "step " + std::to_string(step));
  }
  EXPECT_EQ(opt.step_count(), 3);
}

TEST(Sgd, Plain) { check_sgd(0.1, 0.0, 0.0, false); }
TEST(Sgd, Momentum) { check_sgd(0.1, 0.9, 0.0, false); }
TEST(Sgd, MomentumWeightDecay) { check_sgd(0.05, 0.8, 0.01, false); }
TEST(Sgd, Nesterov) { check_sgd(0.1, 0.9, 0.001, true); }

TEST(Sgd, MomentumByHand) {
  // p = 1, g = 2p (L = p²), lr 0.1, μ 0.5:
  //   t=1: b = 2,            p = 1 − 0.2 = 0.8
  //   t=2: g = 1.6, b = 2.6, p = 0.8 − 0.26 = 0.54
  Tensor p = from_vector<double>({1.0}, {1}).requires_grad_();
  optim::SGD opt({p}, 0.1, 0.5);
  for (int i = 0; i < 2; ++i) {
    opt.zero_grad();
    sum(square(p)).backward();
    opt.step();
  }
  EXPECT_NEAR(p.item(), 0.54, 1e-15);
}

// ================================================================== common behaviour
TEST(Optim, SkipsParametersWithoutGradients) {
  Tensor a = toy_param(), b = toy_param();
  optim::Adam opt({a, b}, 0.1);
  toy_backward(a);
  opt.step();
  EXPECT_NE(values(a), kP0);
  EXPECT_EQ(values(b), kP0);
  const auto state = opt.state_dict();
  for (const auto& [name, t] : state) EXPECT_EQ(name.rfind("state.1.", 0), std::string::npos) << name;
  // b's first update later uses t = 1 (its own count), as in PyTorch.
  opt.zero_grad();
  toy_backward(b);
  opt.step();
  HostAdam ref{0.1, 0.9, 0.999, 1e-8, 0.0, false, {}, {}};
  std::vector<double> expected = kP0;
  ref.step(expected, toy_grad(kP0));
  expect_near(values(b), expected, 1e-13, "b");
  EXPECT_EQ(opt.step_count(), 2);
}

TEST(Optim, SetLrAndZeroGrad) {
  Tensor p = from_vector<double>({1.0}, {1}).requires_grad_();
  optim::SGD opt({p}, 0.1);
  EXPECT_EQ(opt.lr(), 0.1);
  opt.set_lr(0.5);
  p.set_grad(ones({1}, DType::f64));
  opt.step();
  EXPECT_DOUBLE_EQ(p.item(), 0.5);
  opt.zero_grad();
  EXPECT_FALSE(p.grad().defined());
  expect_error([&] { opt.set_lr(-1); }, {"learning rate"});
}

TEST(Optim, ConstructorErrors) {
  Tensor p = zeros({2}).requires_grad_();
  expect_error([] { optim::SGD({}, 0.1); }, {"empty parameter list"});
  expect_error([&] { optim::SGD({p, p}, 0.1); }, {"more than once"});
  expect_error([&] { optim::SGD({mul(p, 2.0)}, 0.1); }, {"leaf"});
  expect_error([&] { optim::SGD({zeros({2}, DType::i32)}, 0.1); }, {"not floating"});
  expect_error([&] { optim::SGD({p}, 0.1, 0.0, 0.0, true); }, {"Nesterov"});
  expect_error([&] { optim::SGD({p}, -0.1); }, {"learning rate"});
  expect_error([&] { optim::Adam({p}, 1e-3, {1.0, 0.999}); }, {"beta1"});
  expect_error([&] { optim::Adam({p}, 1e-3, {0.9, -0.1}); }, {"beta2"});
  expect_error([&] { optim::AdamW({p}, 1e-3, {0.9, 0.999}, -1.0); }, {"AdamW", "eps"});
}

TEST(Optim, GradientOnWrongDtypeIsAnError) {
  Tensor p = zeros({2}).requires_grad_();
  optim::SGD opt({p}, 0.1);
  p.set_grad(zeros({2}, DType::f64));
  expect_error([&] { opt.step(); }, {"SGD.step", "float64", "float32"});
}

TEST(Optim, StateFollowsModuleToDtype) {
  Generator gen(1);
  nn::Linear layer(3, 2, gen);
  optim::Adam opt(layer.parameters(), 1e-2);
  const Tensor x = randn({4, 3}, gen);
  mean(square(layer.forward(x))).backward();
  opt.step();
  layer.to(DType::f64);  // the optimizer holds the same tensors, now float64
  opt.zero_grad();
  mean(square(layer.forward(x.to(DType::f64)))).backward();
  opt.step();
  for (const auto& [name, t] : opt.state_dict())
    if (name.find("exp_avg") != std::string::npos) EXPECT_EQ(t.dtype(), DType::f64) << name;
}

// ================================================================== checkpoints
// Trains `steps` steps of a small MLP on fixed data.
void train(nn::Module& model, optim::Optimizer& opt, const Tensor& x, const Tensor& y, int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    mse_loss(model.forward(x), y).backward();
    opt.step();
  }
}

std::shared_ptr<nn::Sequential> make_mlp(std::uint64_t seed) {
  Generator gen(seed);
  return std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(3, 8, gen),
                                          std::make_shared<nn::Tanh>(),
                                          std::make_shared<nn::Linear>(8, 2, gen));
}

template <class MakeOpt>
void check_resume(MakeOpt make_opt) {
  Generator gen(99);
  const Tensor x = randn({16, 3}, gen), y = randn({16, 2}, gen);
  auto model = make_mlp(1);
  auto opt = make_opt(model->parameters());
  train(*model, *opt, x, y, 4);
  const auto model_state = model->state_dict();
  const auto opt_state = opt->state_dict();
  train(*model, *opt, x, y, 5);

  auto resumed = make_mlp(2);  // different initial weights: everything comes from the checkpoint
  auto resumed_opt = make_opt(resumed->parameters());
  resumed->load_state_dict(model_state);
  resumed_opt->load_state_dict(opt_state);
  EXPECT_EQ(resumed_opt->step_count(), 4);
  train(*resumed, *resumed_opt, x, y, 5);
  const auto a = model->parameters(), b = resumed->parameters();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(max_abs_diff(a[i], b[i]), 0.0) << i;
  EXPECT_EQ(resumed_opt->step_count(), 9);

  // Without the optimizer state the run differs (the test above is not vacuous).
  auto fresh = make_mlp(2);
  auto fresh_opt = make_opt(fresh->parameters());
  fresh->load_state_dict(model_state);
  train(*fresh, *fresh_opt, x, y, 5);
  EXPECT_GT(max_abs_diff(a[0], fresh->parameters()[0]), 0.0);
}

TEST(Optim, AdamStateDictResumesBitExactly) {
  check_resume([](std::vector<Tensor> p) { return std::make_unique<optim::Adam>(p, 1e-2); });
}
TEST(Optim, AdamWStateDictResumesBitExactly) {
  check_resume([](std::vector<Tensor> p) { return std::make_unique<optim::AdamW>(p, 1e-2); });
}
TEST(Optim, SgdStateDictResumesBitExactly) {
  check_resume(
      [](std::vector<Tensor> p) { return std::make_unique<optim::SGD>(p, 0.05, 0.9, 1e-3, true); });
}

TEST(Optim, StateDictContents) {
  Tensor a = toy_param(), b = toy_param();
  optim::Adam opt({a, b}, 0.1);
  toy_backward(a);
  opt.step();
  opt.step();  // a again (its gradient is kept), b still without gradient
  opt.set_lr(0.03);
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : opt.state_dict()) state[name] = t;
  ASSERT_EQ(state.size(), 5u);
  EXPECT_EQ(state.at("step").item(), 2.0);
  EXPECT_EQ(state.at("lr").item(), 0.03);
  EXPECT_EQ(state.at("state.0.step").item(), 2.0);
  EXPECT_EQ(state.at("state.0.exp_avg").shape(), (Shape{4}));
  EXPECT_EQ(state.at("state.0.exp_avg_sq").shape(), (Shape{4}));
  // A snapshot: later steps do not change it.
  const auto m = values(state.at("state.0.exp_avg"));
  opt.step();
  EXPECT_EQ(values(state.at("state.0.exp_avg")), m);
  // SGD without momentum has no buffers.
  optim::SGD sgd({a}, 0.1);
  sgd.step();
  EXPECT_EQ(sgd.state_dict().size(), 3u);  // step, lr, state.0.step
}

TEST(Optim, LoadStateDictErrors) {
  Tensor a = toy_param(), b = toy_param();
  optim::Adam opt({a, b}, 0.1);
  toy_backward(a);
  opt.step();
  const auto good = opt.state_dict();
  optim::Adam other({toy_param(), toy_param()}, 0.1);
  auto with = [&](std::function<void(optim::NamedTensors&)> edit) {
    auto s = good;
    edit(s);
    return s;
  };
  auto find = [](optim::NamedTensors& s, const std::string& name) -> Tensor& {
    for (auto& [n, t] : s)
      if (n == name) return t;
    throw std::runtime_error("no " + name);
  };
  expect_error([&] { other.load_state_dict(with([&](auto& s) {
                 find(s, "state.0.exp_avg") = zeros({5}, DType::f64);
               })); },
               {"shape mismatch", "'state.0.exp_avg'", "[5]", "[4]"});
  expect_error([&] { other.load_state_dict(with([&](auto& s) {
                 s.emplace_back("state.0.momentum_buffer", zeros({4}, DType::f64));
               })); },
               {"unexpected name", "'state.0.momentum_buffer'"});
  expect_error([&] { other.load_state_dict(with([&](auto& s) {
                 s.emplace_back("state.7.step", scalar_tensor(1, DType::f64));
               })); },
               {"parameter 7", "2 parameters"});
  expect_error([&] { other.load_state_dict(with([&](auto& s) {
                 std::erase_if(s, [](auto& e) { return e.first == "state.0.exp_avg_sq"; });
               })); },
               {"'state.0.exp_avg_sq' is missing"});
  expect_error([&] { other.load_state_dict(with([&](auto& s) {
                 std::erase_if(s, [](auto& e) { return e.first == "step"; });
               })); },
               {"'step'"});
  expect_error([&] { other.load_state_dict(with([&](auto& s) {
                 find(s, "state.0.step") = scalar_tensor(1.5, DType::f64);
               })); },
               {"non-negative integer"});
  expect_error([&] { other.load_state_dict(with([&](auto& s) {
                 s.emplace_back("bogus", scalar_tensor(1, DType::f64));
               })); },
               {"unexpected name 'bogus'"});
  // Failed loads changed nothing; a good one works.
  EXPECT_EQ(other.step_count(), 0);
  other.load_state_dict(good);
  EXPECT_EQ(other.step_count(), 1);
}

}  // namespace
}  // namespace latent
