// The autograd engine: accumulation, shared inputs, no_grad, detach, graph release, deep
// graphs, nodes with several outputs and the errors of misuse. Per-op derivative rules are
// checked in the kernel tests
// (elementwise_test.cpp, reduce_test.cpp, gemm_test.cpp, …).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <vector>

#include "latent/autograd.h"
#include "latent/error.h"
#include "latent/ops.h"
#include "latent/random.h"
#include "latent/tensor.h"
#include "test_util.h"

namespace latent {
namespace {

using test::all_close;
using test::values_of;

Tensor leaf(const std::vector<double>& v, const Shape& shape) {
  Tensor t = from_vector(v, shape);
  t.requires_grad_();
  return t;
}

TEST(AutogradBasics, LeavesAndRecordedNodes) {
  Tensor x = leaf({1, 2, 3}, {3});
  const Tensor c = from_vector(std::vector<double>{4, 5, 6}, {3});
  EXPECT_TRUE(x.requires_grad());
  EXPECT_TRUE(x.is_leaf());
  EXPECT_FALSE(c.requires_grad());
  EXPECT_FALSE(x.grad().defined());

  const Tensor y = mul(x, c);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_EQ(y.grad_fn()->op, "mul");
  EXPECT_EQ(y.grad_fn()->inputs.size(), 2u);

  // An op whose inputs need no gradient records nothing.
  const Tensor z = add(c, c);
  EXPECT_FALSE(z.requires_grad());
  EXPECT_EQ(z.grad_fn(), nullptr);
}

TEST(AutogradBasics, GradientsReachOnlyTensorsThatAskForThem) {
  Tensor a = leaf({1, 2}, {2});
  const Tensor b = from_vector(std::vector<double>{3, 4}, {2});
  sum(mul(a, b)).backward();
  EXPECT_EQ(values_of(a.grad()), (std::vector<double>{3, 4}));
  EXPECT_FALSE(b.grad().defined());
}

TEST(AutogradBasics, NonLeafTensorsKeepNoGrad) {
  Tensor x = leaf({1, 2}, {2});
  const Tensor y = mul(x, 3.0);
  sum(y).backward();
  EXPECT_FALSE(y.grad().defined());
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{3, 3}));
}

TEST(AutogradAccumulate, TwoBackwardPassesOverSeparateGraphsAdd) {
  Tensor x = leaf({1, -2, 0.5}, {3});
  sum(mul(x, x)).backward();  // d/dx = 2x
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{2, -4, 1}));
  sum(mul(x, 3.0)).backward();  // + 3
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{5, -1, 4}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1, 1, 1}));
}

TEST(AutogradAccumulate, LeafGradientIsAnOwnedCopy) {
  // The gradient stored in .grad must not alias a tensor the graph still uses, so that an
  // optimizer may update it in place.
  Tensor x = leaf({1, 2}, {2});
  const Tensor seed = from_vector(std::vector<double>{5, 6}, {2});
  x.backward(seed);
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{5, 6}));
  EXPECT_NE(x.grad().storage(), seed.storage());
  x.grad().fill_(0.0);
  EXPECT_EQ(values_of(seed), (std::vector<double>{5, 6}));
}

TEST(AutogradAccumulate, TensorUsedTwiceInOneGraphSumsItsGradients) {
  Tensor x = leaf({0.5, -1.5, 2}, {3});
  // The same tensor as both operands of one op.
  sum(mul(x, x)).backward();
  EXPECT_TRUE(all_close(x.grad(), {1, -3, 4}, 0, 0));
  x.zero_grad();

  // Two paths that meet again: y = x·x + x  =>  dy/dx = 2x + 1.
  sum(add(mul(x, x), x)).backward();
  EXPECT_TRUE(all_close(x.grad(), {2, -2, 5}, 0, 0));
  x.zero_grad();

  // A diamond through a shared intermediate: e = exp(x); y = e·e + 3e  =>  2e² + 3e.
  const Tensor e = exp(x);
  sum(add(mul(e, e), mul(e, 3.0))).backward();
  std::vector<double> expected;
  for (double v : {0.5, -1.5, 2.0}) expected.push_back(2 * std::exp(2 * v) + 3 * std::exp(v));
  EXPECT_TRUE(all_close(x.grad(), expected, 1e-15));
}

TEST(AutogradAccumulate, ExplicitSeedGradient) {
  Tensor x = leaf({1, 2, 3}, {3});
  const Tensor y = mul(x, x);
  y.backward(from_vector(std::vector<double>{1, 0, -2}, {3}));
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{2, 0, -12}));
}

TEST(AutogradNoGrad, ScopeRecordsNothing) {
  Tensor x = leaf({1, 2}, {2});
  EXPECT_TRUE(grad_enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    const Tensor y = exp(mul(x, 2.0));
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_FALSE(needs_grad({x}));
    {
      NoGradGuard inner;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled());  // the inner scope restores the outer state
    EXPECT_LATENT_ERROR(sum(y).backward(), "backward", "does not require");
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(exp(x).requires_grad());
}

TEST(AutogradNoGrad, DetachStopsGradients) {
  Tensor x = leaf({1, 2, 3}, {3});
  // y = detach(x)·x: only the second factor carries a gradient, so dy/dx = x, not 2x.
  sum(mul(x.detach(), x)).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1, 2, 3}));

  const Tensor d = exp(x).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.grad_fn(), nullptr);
  EXPECT_LATENT_ERROR(sum(d).backward(), "backward");
}

TEST(AutogradGraph, SecondBackwardThroughAFreedGraphThrows) {
  Tensor x = leaf({0.1, 0.2}, {2});
  const Tensor loss = sum(exp(mul(x, 2.0)));
  loss.backward();
  const std::vector<double> once = values_of(x.grad());
  EXPECT_LATENT_ERROR(loss.backward(), "backward", "freed");
  EXPECT_EQ(values_of(x.grad()), once);  // the failed pass added nothing
}

TEST(AutogradGraph, SharedSubgraphIsFreedByTheFirstBackward) {
  Tensor x = leaf({0.3}, {1});
  const Tensor shared = exp(x);
  sum(mul(shared, 2.0)).backward();
  EXPECT_LATENT_ERROR(sum(mul(shared, 3.0)).backward(), "freed", "exp");
}

TEST(AutogradGraph, BackwardFreesTheGraphsMemory) {
  Tensor x = leaf({1, 2}, {2});
  const Tensor y = exp(x);
  const Tensor loss = sum(y);
  loss.backward();
  // The node that made y no longer holds its inputs or its closure.
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_TRUE(y.grad_fn()->released);
  EXPECT_TRUE(y.grad_fn()->inputs.empty());
  EXPECT_FALSE(static_cast<bool>(y.grad_fn()->backward));
}

TEST(AutogradErrors, BackwardOnANonScalarThrows) {
  Tensor x = leaf({1, 2, 3}, {3});
  EXPECT_LATENT_ERROR(mul(x, 2.0).backward(), "backward", "[3]");
  EXPECT_LATENT_ERROR(mul(x, 2.0).backward(ones({2}, DType::f64)), "backward", "[3]");
  // One element of any rank is fine.
  sum(x, {0}, true).backward();
  EXPECT_EQ(values_of(x.grad()), (std::vector<double>{1, 1, 1}));
}

TEST(AutogradErrors, RequiresGradOnIntegersThrows) {
  Tensor i = zeros({3}, DType::i32);
  EXPECT_LATENT_ERROR(i.requires_grad_(), "requires_grad", "int32");
  EXPECT_FALSE(i.requires_grad());
  i.requires_grad_(false);  // turning it off is always allowed
}

TEST(AutogradErrors, SeedMustMatchTheOutput) {
  Tensor x = leaf({1, 2}, {2});
  EXPECT_LATENT_ERROR(x.backward(ones({2}, DType::f32)), "backward", "float32", "float64");
  EXPECT_LATENT_ERROR(exp(x).backward(ones({2}, DType::f32)), "backward", "float32", "float64");
  EXPECT_LATENT_ERROR(x.backward(ones({3}, DType::f64)), "backward", "[2]");
  EXPECT_LATENT_ERROR(x.backward(Tensor()), "backward");
  EXPECT_FALSE(x.grad().defined());
}

TEST(AutogradErrors, UndefinedTensors) {
  Tensor t;
  EXPECT_LATENT_ERROR(t.requires_grad_(), "undefined");
  EXPECT_LATENT_ERROR(t.zero_grad(), "undefined");
  EXPECT_LATENT_ERROR(t.set_grad(Tensor()), "undefined");
  EXPECT_LATENT_ERROR(t.set_grad_fn(nullptr), "undefined");
  EXPECT_LATENT_ERROR(t.backward(), "undefined");
  EXPECT_LATENT_ERROR(t.grad(), "undefined");
}

TEST(AutogradErrors, BackwardWithoutHistoryThrows) {
  const Tensor c = ones({1}, DType::f64);
  EXPECT_LATENT_ERROR(c.backward(), "backward", "does not require");
}

// 10000 chained ops: neither the backward walk nor the release of the graph may recurse
// once per node (that would overflow the stack in a debug build or a deeper graph).
TEST(AutogradGraph, DeepChainDoesNotOverflowTheStack) {
  const int depth = 10000;
  Tensor x = leaf({1.0, -0.5}, {2});
  Tensor y = x;
  for (int i = 0; i < depth; ++i) y = (i % 2 == 0) ? mul(y, 1.0001) : add(y, 0.001);
  // Only the last tensor is held here: every intermediate lives in the graph alone.
  sum(y).backward();
  EXPECT_TRUE(all_close(x.grad(), std::vector<double>(2, std::pow(1.0001, depth / 2)), 1e-12));
}

TEST(AutogradGraph, DeepChainIsReleasedWithoutBackward) {
  Tensor x = leaf({1.0}, {1});
  {
    Tensor y = x;
    for (int i = 0; i < 10000; ++i) y = exp(mul(y, 0.0));  // stays finite
    EXPECT_EQ(y.item(), 1.0);
  }  // the whole graph is dropped here
  SUCCEED();
}

TEST(AutogradGraph, WideFanInAccumulates) {
  Tensor x = leaf({2.0}, {1});
  Tensor total = zeros({1}, DType::f64);
  for (int i = 0; i < 500; ++i) total = add(total, mul(x, static_cast<double>(i)));
  total.backward();
  EXPECT_EQ(x.grad().item(), 500.0 * 499.0 / 2.0);
}

TEST(AutogradGraph, BranchWithoutGradientIsSkipped) {
  // Only the first input of mul needs a gradient; the graph must not ask for the other.
  Tensor a = leaf({1, 2}, {2});
  const Tensor b = exp(from_vector(std::vector<double>{0, 1}, {2}));
  sum(mul(b, a)).backward();
  EXPECT_TRUE(all_close(a.grad(), {1, std::exp(1.0)}, 1e-15));
}

TEST(AutogradGraph, LeafSeededDirectly) {
  Tensor x = leaf({4.0}, {});
  x.backward();
  EXPECT_EQ(x.grad().item(), 1.0);
  x.backward();
  EXPECT_EQ(x.grad().item(), 2.0);
}

TEST(AutogradGraph, Float32GradientsKeepTheirDtype) {
  Tensor x = from_vector(std::vector<float>{1, 2, 3}, {3});
  x.requires_grad_();
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::f32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
}

// ------------------------------------------------------------------ several outputs

// What the closure of a two-output node saw: how often it ran, and which of its outputs'
// gradients were defined on the last run.
struct Calls {
  int count = 0;
  std::vector<bool> defined;
};

// A test op with two outputs made by one node: (x·y, exp(x) + y·y).
std::vector<Tensor> product_and_exp(const Tensor& x, const Tensor& y,
                                    const std::shared_ptr<Calls>& calls) {
  Tensor product, other;
  {
    NoGradGuard no_grad;
    product = mul(x, y);
    other = add(exp(x), mul(y, y));
  }
  return record({product, other}, "product_and_exp", {x, y},
                [x = x.detach(), y = y.detach(), calls](const std::vector<Tensor>& dL_douts) {
                  ++calls->count;
                  calls->defined = {dL_douts[0].defined(), dL_douts[1].defined()};
                  Tensor dL_dx = zeros_like(x), dL_dy = zeros_like(y);
                  if (dL_douts[0].defined()) {
                    dL_dx = add(dL_dx, mul(dL_douts[0], y));
                    dL_dy = add(dL_dy, mul(dL_douts[0], x));
                  }
                  if (dL_douts[1].defined()) {
                    dL_dx = add(dL_dx, mul(dL_douts[1], exp(x)));
                    dL_dy = add(dL_dy, mul(dL_douts[1], mul(y, 2.0)));
                  }
                  return std::vector<Tensor>{dL_dx, dL_dy};
                });
}

const std::vector<double> kX{0.3, -1.2, 0.8, 2.0}, kY{-0.7, 1.5, 0.25, -2.0};

TEST(AutogradMultiOutput, OneNodeRecordsEveryOutputWithItsIndex) {
  auto calls = std::make_shared<Calls>();
  const std::vector<Tensor> out = product_and_exp(leaf(kX, {4}), leaf(kY, {4}), calls);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_NE(out[0].grad_fn(), nullptr);
  EXPECT_EQ(out[0].grad_fn(), out[1].grad_fn());
  EXPECT_EQ(out[0].grad_fn()->op, "product_and_exp");
  EXPECT_EQ(out[0].grad_fn()->num_outputs, 2u);
  EXPECT_EQ(out[0].output_index(), 0u);
  EXPECT_EQ(out[1].output_index(), 1u);
  EXPECT_EQ(out[1].detach().grad_fn(), nullptr);

  // Inputs that need no gradient: nothing is recorded, the outputs come back as they were.
  const Tensor c = from_vector(kX, {4});
  const std::vector<Tensor> plain = product_and_exp(c, c, calls);
  EXPECT_EQ(plain[0].grad_fn(), nullptr);
  EXPECT_EQ(plain[1].grad_fn(), nullptr);
  EXPECT_LATENT_ERROR(record(std::vector<Tensor>{}, "nothing", {leaf(kX, {4})}, MultiBackwardFn()),
                      "record", "nothing");
}

// The closure runs once; the output the loss does not use gets an undefined gradient.
TEST(AutogradMultiOutput, OnlyOneOutputUsed) {
  for (std::size_t used : {0u, 1u}) {
    auto calls = std::make_shared<Calls>();
    Generator gen(11);
    EXPECT_TRUE(test::check_gradients(
        [&](const std::vector<Tensor>& x) { return product_and_exp(x[0], x[1], calls)[used]; },
        {from_vector(kX, {4}), from_vector(kY, {4})}, gen))
        << "output " << used;
    EXPECT_EQ(calls->count, 1) << "output " << used;  // the differences record no graph
    EXPECT_EQ(calls->defined, (std::vector<bool>{used == 0, used == 1})) << "output " << used;
  }
}

// Both outputs reach the loss through separate ops: one closure run with both gradients.
TEST(AutogradMultiOutput, BothOutputsUsed) {
  auto calls = std::make_shared<Calls>();
  Generator gen(12);
  EXPECT_TRUE(test::check_gradients(
      [&](const std::vector<Tensor>& x) {
        const std::vector<Tensor> out = product_and_exp(x[0], x[1], calls);
        return concat({exp(out[0]), mul(out[1], 3.0)}, 0);
      },
      {from_vector(kX, {4}), from_vector(kY, {4})}, gen));
  EXPECT_EQ(calls->count, 1);
  EXPECT_EQ(calls->defined, (std::vector<bool>{true, true}));
}

// Both outputs feed one downstream op, and one of them a second op too: the gradients of
// each output are summed before the node runs, once.
TEST(AutogradMultiOutput, DiamondThroughACommonDownstreamOp) {
  auto calls = std::make_shared<Calls>();
  Generator gen(13);
  EXPECT_TRUE(test::check_gradients(
      [&](const std::vector<Tensor>& x) {
        const std::vector<Tensor> out = product_and_exp(x[0], x[1], calls);
        return add(mul(out[0], out[1]), out[1]);
      },
      {from_vector(kX, {4}), from_vector(kY, {4})}, gen));
  EXPECT_EQ(calls->count, 1);
  EXPECT_EQ(calls->defined, (std::vector<bool>{true, true}));
}

TEST(AutogradMultiOutput, GraphIsFreedAfterBackward) {
  auto calls = std::make_shared<Calls>();
  Tensor x = leaf(kX, {4}), y = leaf(kY, {4});
  const std::vector<Tensor> out = product_and_exp(x, y, calls);
  sum(out[0]).backward();
  EXPECT_EQ(values_of(x.grad()), kY);
  const std::shared_ptr<Node>& node = out[1].grad_fn();
  ASSERT_NE(node, nullptr);
  EXPECT_TRUE(node->released);
  EXPECT_TRUE(node->inputs.empty());
  EXPECT_FALSE(static_cast<bool>(node->backward));
  // The other output shares the freed node.
  EXPECT_LATENT_ERROR(sum(out[1]).backward(), "backward", "freed", "product_and_exp");
  EXPECT_LATENT_ERROR(sum(out[0]).backward(), "backward", "freed", "product_and_exp");
  EXPECT_EQ(values_of(x.grad()), kY);  // the failed passes added nothing
  EXPECT_EQ(calls->count, 1);
}

}  // namespace
}  // namespace latent
