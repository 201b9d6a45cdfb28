// The one op-test harness (STYLE.md habit 5; ggml's tests/test-backend-ops.cpp is the model).
//
// An op is a case: it names its inputs (drawn fresh from a seed), the op, its reference (the
// cpu backend, or a float64 restatement: brute force, plain loops, a closed form), its
// tolerance per dtype (|actual − expected| <= abs + rel·|expected|, plus any error bound the
// reference derives per element) or exact comparison (indices, codes: discrete outputs), and
// its bytes and FLOPs (tests/op_cases.h, shared with bench/). check_op() runs it on every
// registered device that can run here (cpu, and cuda: the GPU, or the SIMT executor):
//
//   - every new allocation is poisoned (0xFF bytes: NaN as float, −1 as int32), so an output
//     element a kernel forgets to write cannot pass;
//   - every input sits in a buffer with guard values before and after it, checked after the
//     op, so a kernel that writes out of bounds (or into its inputs) is caught; an input the
//     op updates in place (`writes`) is an output with guards around it;
//   - outputs are checked for NaN/Inf where the reference is finite (and a cpu-backend
//     reference is itself checked), for shape, dtype and device, then element by element;
//   - with `gradients`, the gradients of Σ out·w (w fixed and random) with respect to every
//     floating input are compared with the cpu backend's on every device; with
//     `finite_differences`, they are also checked against central differences in float64 on
//     cpu (check_gradients in test_util.h);
//   - a case that needs a device this build cannot run is reported as skipped, with the reason,
//     never dropped silently.
//
// What the guards cannot see: an output the op allocates itself lives where the backend puts
// it, so a write past its end shows only if it lands in a guarded input or in-place output
// (an element it fails to write shows as poison either way). A third hook beside
// poison_allocations(), "pad every new allocation with guard bytes", would close that gap
// once the backend interface offers it.
//
// A case, the whole of it:
//
//   OpCase c;
//   c.name = "exp [1000003] float32";
//   c.inputs = [](Generator& g) { return Tensors{uniform({1000003}, -2, 2, g)}; };
//   c.op = [](const Tensors& in) { return Tensors{exp(in[0])}; };
//   c.reference = [](const Tensors& in) {          // omit: the cpu backend is the reference
//     std::vector<double> y;
//     for (double x : values_of(in[0])) y.push_back(std::exp(x));
//     return std::vector<Expected>{{y}};
//   };
//   c.tolerance = per_dtype(near(0, 8 * kU32), near(0, 8 * kU64));  // abs, rel
//   c.cost = cases::unary(1000003, DType::f32);
//   EXPECT_TRUE(check_op(c));
//
// Backend internals (which devices exist, poisoning) are reached in op_harness.cpp only, by
// registered_devices() and poison_allocations(): the one place to change when the backend
// interface changes. Tests that loop over devices by hand use devices() and PoisonScope (or
// the OpTest fixture), which sit on those two.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "latent/tensor.h"
#include "test_util.h"
#include "tests/op_cases.h"

namespace latent::test {

using Tensors = std::vector<Tensor>;

constexpr double kU32 = 1.0 / 16777216.0;          // 2^-24, float32 unit roundoff
constexpr double kU64 = 1.0 / 9007199254740992.0;  // 2^-53, float64 unit roundoff
inline double unit_roundoff(DType dtype) { return dtype == DType::f32 ? kU32 : kU64; }

// ================================================================== the two functions
// that reach into the backends (op_harness.cpp)

struct DeviceInfo {
  Device device;
  bool available = false;  // it can run here
  bool simulated = false;  // its device code runs on the host (the SIMT executor)
  std::string absent;      // why it cannot run, when it cannot
};

// Every device this build has a backend for, cpu first, whether or not it can run here.
std::vector<DeviceInfo> registered_devices();

// While on, every new allocation on every available device is filled with 0xFF bytes.
void poison_allocations(bool on);

// ================================================================== devices and poisoning

// The registered devices that can run here. For each one that cannot, says once per test
// that its part was skipped and why (report_skipped).
std::vector<Device> devices();
// The cuda backend runs here (a GPU, or the SIMT executor in the default build).
bool has_cuda();
// The cuda backend runs on a real GPU (whose math library may differ from the host's by an
// ulp or two, and whose allocations only the device can read).
bool cuda_is_gpu();
// The cuda device, for tests that need it by name.
inline Device cuda_device() { return Device::cuda(0); }

// Prints "[  SKIPPED ] what: why" and records it as a property of the running test, so a
// skipped part shows up in the console and in the XML report alike.
void report_skipped(const std::string& what, const std::string& why);
// GTEST_SKIP() with a message when cuda cannot run here; for tests that are cuda only.
#define LATENT_SKIP_WITHOUT_CUDA()                                                           \
  if (!::latent::test::has_cuda())                                                           \
  GTEST_SKIP() << "the cuda backend cannot run here (an nvcc build on a machine without a " \
                  "GPU); the default SIMT build runs this test on the CPU"

// Poisoned allocations while alive; nests.
class PoisonScope {
 public:
  PoisonScope();
  ~PoisonScope();
  PoisonScope(const PoisonScope&) = delete;
  PoisonScope& operator=(const PoisonScope&) = delete;
};

// The fixture for tests that run ops on every device by hand: allocations are poisoned
// while the test runs.
class OpTest : public ::testing::Test {
 private:
  PoisonScope poison_;
};

// ================================================================== tolerances

struct Tolerance {
  double abs = 0.0;
  double rel = 0.0;
  bool exact = false;  // values must be equal (NaN matching NaN): discrete outputs
};
inline Tolerance exact() { return {0.0, 0.0, true}; }
inline Tolerance near(double abs, double rel) { return {abs, rel, false}; }

// A tolerance for each dtype; int32 outputs are exact unless a case says otherwise.
struct Tolerances {
  Tolerance f32 = exact(), f64 = exact(), i32 = exact();
  const Tolerance& operator[](DType dtype) const {
    return dtype == DType::f32 ? f32 : dtype == DType::f64 ? f64 : i32;
  }
};
inline Tolerances per_dtype(Tolerance f32, Tolerance f64) { return {f32, f64, exact()}; }
inline Tolerances every_dtype(Tolerance t) { return {t, t, t.exact ? t : exact()}; }

// ================================================================== cases

// What a float64 reference expects of one output.
struct Expected {
  std::vector<double> values;  // row-major
  std::vector<double> bound;   // optional: an extra allowed |error| per element, derived by
                               // the reference (e.g. K·u·Σ|terms| for a sum of K products)
  std::optional<Shape> shape;  // optional: the output's shape
  std::optional<DType> dtype;  // optional: the output's dtype
};

enum class Where {
  every_device,  // cpu and cuda (and any other registered device)
  cuda_only,     // an algorithm or path only the cuda backend has; skipped with a message
};

struct OpCase {
  std::string name;
  std::uint64_t seed = 1;
  // Host (cpu) inputs, drawn fresh from Generator(seed) for every check.
  std::function<Tensors(Generator&)> inputs;
  // The op, on inputs that live on the device under test (contiguous, guarded).
  std::function<Tensors(const Tensors&)> op;
  // Or, for ops that make tensors (creation, random fills): the op told the device too.
  std::function<Tensors(const Tensors&, Device)> op_on;
  // The float64 reference, from the host inputs. Empty: the cpu backend (op on cpu inputs).
  std::function<std::vector<Expected>(const Tensors&)> reference;
  // Or one told the device under test too, for error bounds that differ between backends
  // (the cpu backend accumulates float32 sums in double, the cuda kernels in float32).
  std::function<std::vector<Expected>(const Tensors&, Device)> reference_on;
  // Or, for outputs that no single expected value describes (an argmin that may return
  // either of two near-tied codes): a check of the outputs (on cpu) against the host inputs.
  std::function<::testing::AssertionResult(const Tensors& inputs, const Tensors& outputs,
                                           Device device)>
      verify;
  Tolerances tolerance;                     // for the outputs (default: exact)
  std::vector<Tolerances> output_tolerance;  // per output instead, when they differ
  std::optional<Tolerances> gpu_tolerance;  // on a real GPU instead of both, when its math
                                            // library needs it (never under SIMT)
  bool gradients = false;                   // compare input gradients with the cpu backend's
  std::optional<Tolerances> gradient_tolerance;  // default: tolerance
  std::optional<Tolerances> gpu_gradient_tolerance;  // on a real GPU instead
  std::optional<GradCheckOptions> finite_differences;  // also check them against central
                                                       // differences in float64 on cpu
  std::vector<std::size_t> writes;  // inputs the op updates in place (return them as outputs)
  bool nonfinite_outputs = false;   // outputs may hold NaN/Inf: they must match the reference's
  Where where = Where::every_device;
  cases::Cost cost;  // bytes and FLOPs, tests/op_cases.h
};

// Runs the case on every device, as described at the top; lists every failure.
::testing::AssertionResult check_op(const OpCase& c);

// A float64 case for a differentiable op: its gradients are checked against central
// differences on cpu (default GradCheckOptions) and its values and gradients against the cpu
// backend on every other device (abs and rel 1e-13).
OpCase gradient_case(std::string name, std::uint64_t seed,
                     std::function<Tensors(Generator&)> inputs,
                     std::function<Tensor(const Tensors&)> f);

// Compares one computed output with what is expected of it (the shared comparison of
// check_op, for tests that build their own loops): NaN/Inf where `expected` is finite fails.
::testing::AssertionResult matches(const Tensor& actual, const Expected& expected,
                                   const Tolerance& tolerance);

}  // namespace latent::test
