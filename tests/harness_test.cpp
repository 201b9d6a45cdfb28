// The op harness itself (tests/op_harness.h): a kernel that leaves an output element
// unwritten, writes past an input, changes an input, returns NaN, or misses the reference by
// more than the tolerance must fail; a correct one, in place or not, must pass.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "latent/latent.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::check_op;
using test::Expected;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::Tensors;

OpCase doubling(std::function<Tensors(const Tensors&)> op) {
  OpCase c;
  c.name = "2x";
  c.seed = 3;
  c.inputs = [](Generator& g) { return Tensors{uniform({33}, -1, 1, g)}; };
  c.op = std::move(op);
  c.reference = [](const Tensors& in) {
    Expected e;
    for (double v : test::values_of(in[0])) e.values.push_back(2 * v);
    return std::vector<Expected>{e};
  };
  c.cost = cases::unary(33, DType::f32);
  return c;
}

bool mentions(const ::testing::AssertionResult& r, const std::string& part) {
  return std::string(r.message()).find(part) != std::string::npos;
}

TEST(OpHarness, ACorrectOpPasses) {
  EXPECT_TRUE(check_op(doubling([](const Tensors& in) { return Tensors{mul(in[0], 2.0)}; })));
}

TEST(OpHarness, AnUnwrittenElementKeepsThePoisonAndFails) {
  const auto r = check_op(doubling([](const Tensors& in) {
    Tensor out = empty(in[0].shape(), in[0].dtype(), in[0].device());  // poisoned: NaN
    out.narrow(0, 0, 32).copy_(mul(in[0].narrow(0, 0, 32), 2.0));      // forgets the last
    return Tensors{out};
  }));
  EXPECT_FALSE(r);
  EXPECT_TRUE(mentions(r, "NaN/Inf where the reference is finite, first at 32")) << r.message();
}

TEST(OpHarness, AWritePastAnInputIsCaughtByTheGuard) {
  const auto r = check_op(doubling([](const Tensors& in) {
    if (in[0].device().is_cpu()) static_cast<float*>(in[0].data_ptr())[33] = 0.0f;
    return Tensors{mul(in[0], 2.0)};
  }));
  EXPECT_FALSE(r);
  EXPECT_TRUE(mentions(r, "out-of-bounds write 1 element(s) past its end")) << r.message();
  const auto before = check_op(doubling([](const Tensors& in) {
    if (in[0].device().is_cpu()) static_cast<float*>(in[0].data_ptr())[-2] = 0.0f;
    return Tensors{mul(in[0], 2.0)};
  }));
  EXPECT_FALSE(before);
  EXPECT_TRUE(mentions(before, "out-of-bounds write 2 element(s) before its start"))
      << before.message();
}

TEST(OpHarness, AChangedInputFailsUnlessTheCaseSaysItWritesIt) {
  auto in_place = [](const Tensors& in) {
    NoGradGuard no_grad;
    Tensor x = in[0];
    x.copy_(mul(x, 2.0));
    return Tensors{x};
  };
  const auto r = check_op(doubling(in_place));
  EXPECT_FALSE(r);
  EXPECT_TRUE(mentions(r, "input 0 [33] was modified")) << r.message();
  OpCase c = doubling(in_place);
  c.writes = {0};
  EXPECT_TRUE(check_op(c));
}

TEST(OpHarness, ToleranceIsAbsPlusRelTimesTheReference) {
  OpCase c = doubling([](const Tensors& in) { return Tensors{add(mul(in[0], 2.0), 1e-3)}; });
  EXPECT_FALSE(check_op(c));
  c.tolerance = per_dtype(near(1.1e-3, 0), near(0, 0));
  EXPECT_TRUE(check_op(c));
  c.tolerance = per_dtype(near(0, 1e-6), near(0, 0));
  EXPECT_FALSE(check_op(c));
}

TEST(OpHarness, NonFiniteOutputsOfTheCpuReferenceAreFlagged) {
  OpCase c;
  c.name = "log of negatives";
  c.inputs = [](Generator& g) { return Tensors{uniform({31}, -2, -1, g)}; };
  c.op = [](const Tensors& in) { return Tensors{log(in[0])}; };
  c.tolerance = per_dtype(near(0, 0), near(0, 0));
  const auto r = check_op(c);
  EXPECT_FALSE(r);
  EXPECT_TRUE(mentions(r, "the cpu reference")) << r.message();
  c.nonfinite_outputs = true;  // NaN on every device, position by position
  EXPECT_TRUE(check_op(c));
}

TEST(OpHarness, DiscreteOutputsAreComparedExactly) {
  OpCase c;
  c.name = "argmax";
  c.inputs = [](Generator& g) { return Tensors{uniform({9, 31}, -1, 1, g)}; };
  c.op = [](const Tensors& in) { return Tensors{argmax(in[0], 1)}; };
  c.reference = [](const Tensors& in) {
    const std::vector<double> x = test::values_of(in[0]);
    Expected e{{}, {}, Shape{9}, DType::i32};
    for (int r = 0; r < 9; ++r) {
      int best = 0;
      for (int k = 1; k < 31; ++k)
        if (x[r * 31 + k] > x[r * 31 + best]) best = k;
      e.values.push_back(best + 1);  // off by one: must fail whatever the float tolerance
    }
    return std::vector<Expected>{e};
  };
  c.tolerance = per_dtype(near(10, 10), near(10, 10));  // int32 stays exact
  EXPECT_FALSE(check_op(c));
}

TEST(OpHarness, GradientsAreComparedAcrossDevicesAndWithFiniteDifferences) {
  OpCase c;
  c.name = "tanh";
  c.inputs = [](Generator& g) { return Tensors{uniform({5, 7}, -2, 2, g, DType::f64)}; };
  c.op = [](const Tensors& in) { return Tensors{tanh(in[0])}; };
  c.tolerance = per_dtype(near(1e-13, 1e-13), near(1e-13, 1e-13));
  c.gradients = true;
  c.finite_differences = test::GradCheckOptions{};
  EXPECT_TRUE(check_op(c));
  // A backward that is off: finite differences catch it.
  c.op = [](const Tensors& in) {
    Tensor out;
    {
      NoGradGuard no_grad;
      out = tanh(in[0]);
    }
    const Tensor y = out.detach();
    return Tensors{record(out, "bad_tanh", {in[0]}, [y](const Tensor& g) {
      return std::vector<Tensor>{mul(g, rsub(1.001, square(y)))};
    })};
  };
  const auto r = check_op(c);
  EXPECT_FALSE(r);
  EXPECT_TRUE(mentions(r, "finite differences")) << r.message();
}

TEST(OpHarness, DevicesAreListedAndMissingOnesSaySo) {
  const std::vector<Device> d = test::devices();
  ASSERT_FALSE(d.empty());
  EXPECT_TRUE(d.front().is_cpu());
  EXPECT_EQ(d.size() == 2, test::has_cuda());
  for (const test::DeviceInfo& info : test::registered_devices())
    EXPECT_EQ(info.available, info.absent.empty()) << info.device.str();
}

}  // namespace
}  // namespace latent
