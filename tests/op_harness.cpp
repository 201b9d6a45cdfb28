// The op-test harness (tests/op_harness.h). The first section is the only code in tests/
// that reaches into the backends; everything after it goes through the public API.
#include "tests/op_harness.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "backends/device.h"
#include "backends/registry.h"
#include "latent/autograd.h"
#include "latent/ops.h"
#include "latent/random.h"

namespace latent::test {

// ================================================================== backend internals

std::vector<DeviceInfo> registered_devices() {
  static const std::vector<DeviceInfo> registered = [] {
    std::vector<DeviceInfo> list;
    list.push_back({Device::cpu(), true, false, ""});
    DeviceInfo cuda{Device::cuda(0)};
    cuda.available = backend_available(DeviceType::cuda);
    cuda.simulated = cuda.available && backend_is_simulated(DeviceType::cuda);
    if (!cuda.available)
      cuda.absent = "no GPU in this nvcc build (the default SIMT build runs cuda on the CPU)";
    list.push_back(cuda);
    return list;
  }();
  return registered;
}

void poison_allocations(bool on) {
  for (const DeviceInfo& d : registered_devices())
    if (d.available) backend::set_poison_allocations(d.device, on);
}

// ================================================================== devices and poisoning

void report_skipped(const std::string& what, const std::string& why) {
  std::printf("[  SKIPPED ] %s: %s\n", what.c_str(), why.c_str());
  std::fflush(stdout);
  static int count = 0;
  ::testing::Test::RecordProperty("skipped_" + std::to_string(++count), what + ": " + why);
}

std::vector<Device> devices() {
  static std::string said_for;  // the test that was last told about the missing devices
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string test =
      info ? std::string(info->test_suite_name()) + "." + info->name() : std::string();
  std::vector<Device> list;
  for (const DeviceInfo& d : registered_devices()) {
    if (d.available) {
      list.push_back(d.device);
    } else if (said_for != test) {
      report_skipped("the " + d.device.str() + " part of " + test, d.absent);
    }
  }
  said_for = test;
  return list;
}

bool has_cuda() {
  for (const DeviceInfo& d : registered_devices())
    if (d.device.is_cuda()) return d.available;
  return false;
}

bool cuda_is_gpu() {
  for (const DeviceInfo& d : registered_devices())
    if (d.device.is_cuda()) return d.available && !d.simulated;
  return false;
}

namespace {
int poison_depth = 0;
}  // namespace

PoisonScope::PoisonScope() {
  if (poison_depth++ == 0) poison_allocations(true);
}
PoisonScope::~PoisonScope() {
  if (--poison_depth == 0) poison_allocations(false);
}

// ================================================================== comparison

namespace {

bool same_value(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

std::string where_str(std::size_t i, const Shape& shape) {
  if (shape.size() <= 1) return std::to_string(i);
  std::string s = "]";
  std::size_t rest = i;
  for (std::size_t d = shape.size(); d-- > 0;) {
    const std::size_t size = static_cast<std::size_t>(shape[d]);
    s = std::to_string(rest % size) + (d + 1 < shape.size() ? ", " : "") + s;
    rest /= size;
  }
  return std::to_string(i) + " [" + s;
}

}  // namespace

::testing::AssertionResult matches(const Tensor& actual, const Expected& expected,
                                   const Tolerance& tolerance) {
  if (!actual.defined()) return ::testing::AssertionFailure() << "output is undefined";
  if (expected.dtype && actual.dtype() != *expected.dtype) {
    return ::testing::AssertionFailure() << dtype_name(actual.dtype()) << ", expected "
                                         << dtype_name(*expected.dtype);
  }
  if (expected.shape && actual.shape() != *expected.shape) {
    return ::testing::AssertionFailure() << "shape " << shape_str(actual.shape())
                                         << ", expected " << shape_str(*expected.shape);
  }
  const std::vector<double> a = values_of(actual.to(Device::cpu()));
  const std::vector<double>& x = expected.values;
  if (a.size() != x.size()) {
    return ::testing::AssertionFailure()
           << a.size() << " elements (" << shape_str(actual.shape()) << "), expected "
           << x.size();
  }
  if (!expected.bound.empty() && expected.bound.size() != x.size()) {
    return ::testing::AssertionFailure() << "the reference's error bound has "
                                         << expected.bound.size() << " elements for "
                                         << x.size() << " values";
  }
  std::size_t bad = 0, worst = 0, nonfinite = 0, first_nonfinite = 0;
  double worst_excess = -1.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    bool ok;
    double excess = 0.0;
    if (tolerance.exact || !std::isfinite(x[i])) {
      ok = same_value(a[i], x[i]);
      excess = std::numeric_limits<double>::infinity();
    } else {
      const double allowed = tolerance.abs + tolerance.rel * std::abs(x[i]) +
                             (expected.bound.empty() ? 0.0 : expected.bound[i]);
      const double diff = std::abs(a[i] - x[i]);
      ok = diff <= allowed;  // false for NaN
      excess = std::isfinite(diff) ? diff - allowed : std::numeric_limits<double>::infinity();
    }
    if (ok) continue;
    if (!std::isfinite(a[i]) && std::isfinite(x[i]) && nonfinite++ == 0) first_nonfinite = i;
    if (bad++ == 0 || excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << bad << " of " << a.size() << " elements differ";
  if (nonfinite > 0) {
    failure << " (" << nonfinite << " NaN/Inf where the reference is finite, first at "
            << where_str(first_nonfinite, actual.shape())
            << ": an element never written keeps the poison, NaN or -1)";
  }
  const double allowed = tolerance.exact || !std::isfinite(x[worst])
                             ? 0.0
                             : tolerance.abs + tolerance.rel * std::abs(x[worst]) +
                                   (expected.bound.empty() ? 0.0 : expected.bound[worst]);
  failure << "; worst at " << where_str(worst, actual.shape()) << ": actual " << a[worst]
          << ", expected " << x[worst] << " (|diff| " << std::abs(a[worst] - x[worst])
          << ", allowed "
          << (tolerance.exact ? std::string("none: exact") : std::to_string(allowed))
          << ")";
  return failure;
}

// ================================================================== running a case

namespace {

// Elements of guard before and after every input: 256 or 512 bytes, a multiple of 16, so
// an input that was 16-byte aligned stays so (and the vectorized paths stay in play).
constexpr std::int64_t kGuard = 64;

double guard_value(DType dtype) {
  switch (dtype) {
    case DType::f32: return static_cast<float>(-7.25e37);
    case DType::f64: return -7.25e307;
    case DType::i32: return 1515870810;  // 0x5A5A5A5A
  }
  return 0;
}

// An input placed in [guard | input | guard] on a device.
struct Placed {
  Tensor buffer, view;
};

Placed place(const Tensor& host, Device device) {
  if (!host.defined()) return {};
  NoGradGuard no_grad;
  const std::int64_t n = host.numel();
  Placed p;
  p.buffer = empty({n + 2 * kGuard}, host.dtype(), device);
  p.buffer.narrow(0, 0, kGuard).fill_(guard_value(host.dtype()));
  p.buffer.narrow(0, kGuard + n, kGuard).fill_(guard_value(host.dtype()));
  p.view = p.buffer.narrow(0, kGuard, n).reshape(host.shape());
  p.view.copy_(host);
  return p;
}

// Problems with the guards around an input, and with its value when the op must not change it.
void check_placed(const Placed& p, const Tensor& host, bool may_change, std::size_t index,
                  std::vector<std::string>& problems) {
  if (!p.buffer.defined()) return;
  const std::int64_t n = host.numel();
  const double guard = guard_value(host.dtype());
  for (std::int64_t start : {std::int64_t{0}, kGuard + n}) {
    const std::vector<double> g = values_of(p.buffer.narrow(0, start, kGuard).to(Device::cpu()));
    for (std::size_t i = 0; i < g.size(); ++i) {
      if (g[i] != guard) {
        const std::int64_t i64 = static_cast<std::int64_t>(i);
        problems.push_back("input " + std::to_string(index) + " " + shape_str(host.shape()) +
                           ": out-of-bounds write " +
                           (start == 0
                                ? std::to_string(kGuard - i64) + " element(s) before its start"
                                : std::to_string(i64 + 1) + " element(s) past its end") +
                           " (guard overwritten with " + std::to_string(g[i]) + ")");
        break;
      }
    }
  }
  if (may_change) return;
  const std::vector<double> now = values_of(p.view.to(Device::cpu()));
  const std::vector<double> before = values_of(host);
  for (std::size_t i = 0; i < now.size(); ++i) {
    if (!same_value(now[i], before[i])) {
      problems.push_back("input " + std::to_string(index) + " " + shape_str(host.shape()) +
                         " was modified at element " + std::to_string(i) + " (" +
                         std::to_string(before[i]) + " -> " + std::to_string(now[i]) + ")");
      break;
    }
  }
}

struct Run {
  Tensors outputs;  // on cpu
  Tensors grads;    // on cpu; one per input, undefined where none
};

bool writes(const OpCase& c, std::size_t i) {
  for (std::size_t w : c.writes)
    if (w == i) return true;
  return false;
}

Run run_on(const OpCase& c, const Tensors& host, Device device, bool with_grads,
           std::vector<std::string>& problems) {
  std::vector<Placed> placed;
  Tensors args;
  for (std::size_t i = 0; i < host.size(); ++i) {
    placed.push_back(place(host[i], device));
    Tensor arg = placed.back().view;
    if (with_grads && arg.defined() && is_floating(arg.dtype()) && !writes(c, i))
      arg.requires_grad_();
    args.push_back(arg);
  }
  Run run;
  const Tensors outputs = c.op ? c.op(args) : c.op_on(args, device);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (outputs[i].defined() && !(outputs[i].device() == device))
      problems.push_back("output " + std::to_string(i) + " is on " + outputs[i].device().str());
  }
  if (with_grads) {
    Tensor loss;
    Generator wgen(77);
    for (const Tensor& out : outputs) {
      if (!out.defined() || !out.requires_grad()) continue;
      const Tensor w = randn(out.shape(), wgen, out.dtype()).to(device);
      const Tensor term = sum(mul(out, w));
      loss = loss.defined() ? add(loss, term) : term;
    }
    if (loss.defined()) loss.backward();
    for (std::size_t i = 0; i < args.size(); ++i) {
      const Tensor g = args[i].defined() ? args[i].grad() : Tensor();
      if (g.defined() && !(g.device() == device))
        problems.push_back("the gradient of input " + std::to_string(i) + " is on " +
                           g.device().str());
      run.grads.push_back(g.defined() ? g.to(Device::cpu()) : Tensor());
    }
  }
  for (const Tensor& out : outputs)
    run.outputs.push_back(out.defined() ? out.detach().to(Device::cpu()) : Tensor());
  for (std::size_t i = 0; i < host.size(); ++i)
    check_placed(placed[i], host[i], writes(c, i), i, problems);
  return run;
}

// The cpu backend's output as what other devices must match, after checking it is finite.
Expected expected_from(const Tensor& out, bool nonfinite_ok, const std::string& what,
                       std::vector<std::string>& problems) {
  Expected e{values_of(out), {}, out.shape(), out.dtype()};
  if (!nonfinite_ok) {
    for (std::size_t i = 0; i < e.values.size(); ++i) {
      if (!std::isfinite(e.values[i])) {
        problems.push_back(what + " is " + std::to_string(e.values[i]) +
                           " at element " + where_str(i, out.shape()));
        break;
      }
    }
  }
  return e;
}

void compare_outputs(const Tensors& actual, const std::vector<Expected>& expected,
                     const Tensors* reference_tensors, const std::vector<Tolerances>& tol,
                     const std::string& what, std::vector<std::string>& problems) {
  if (actual.size() != expected.size()) {
    problems.push_back(what + ": " + std::to_string(actual.size()) + " outputs, expected " +
                       std::to_string(expected.size()));
    return;
  }
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const std::string name = what + " output " + std::to_string(i);
    const bool want_defined = reference_tensors ? (*reference_tensors)[i].defined() : true;
    if (!actual[i].defined() || !want_defined) {
      if (actual[i].defined() != want_defined)
        problems.push_back(name + (actual[i].defined() ? " is defined" : " is undefined") +
                           ", the reference's is not");
      continue;
    }
    if (reference_tensors && actual[i].dtype() != (*reference_tensors)[i].dtype()) {
      problems.push_back(name + " is " + dtype_name(actual[i].dtype()) + ", the reference's " +
                         dtype_name((*reference_tensors)[i].dtype()));
      continue;
    }
    const Tolerances& t = tol.size() > i ? tol[i] : tol.back();
    const ::testing::AssertionResult r = matches(actual[i], expected[i], t[actual[i].dtype()]);
    if (!r) {
      problems.push_back(name + " " + shape_str(actual[i].shape()) + " " +
                         dtype_name(actual[i].dtype()) + ": " + r.message());
    }
  }
}

// Central differences of the floating outputs (flattened and joined) in float64 on cpu.
::testing::AssertionResult finite_differences(const OpCase& c, const Tensors& host) {
  std::vector<std::size_t> floating;
  Tensors leaves, fixed = host;
  for (std::size_t i = 0; i < host.size(); ++i) {
    if (host[i].defined() && is_floating(host[i].dtype())) {
      floating.push_back(i);
      leaves.push_back(host[i].to(DType::f64));
    }
  }
  GradCheckOptions options = *c.finite_differences;
  if (options.check.empty()) options.check.assign(leaves.size(), true);
  for (std::size_t i = 0; i < host.size(); ++i)
    if (writes(c, i))
      return ::testing::AssertionFailure() << "finite differences of an in-place op";
  const auto f = [&](const Tensors& x) {
    Tensors args = fixed;
    for (std::size_t j = 0; j < floating.size(); ++j) args[floating[j]] = x[j];
    Tensors parts;
    for (const Tensor& out : c.op ? c.op(args) : c.op_on(args, Device::cpu()))
      if (out.defined() && is_floating(out.dtype())) parts.push_back(out.reshape({-1}));
    return parts.size() == 1 ? parts[0] : concat(parts, 0);
  };
  Generator gen(c.seed + 1);
  return check_gradients(f, leaves, gen, options);
}

}  // namespace

OpCase gradient_case(std::string name, std::uint64_t seed,
                     std::function<Tensors(Generator&)> inputs,
                     std::function<Tensor(const Tensors&)> f) {
  OpCase c;
  c.name = std::move(name);
  c.seed = seed;
  c.inputs = std::move(inputs);
  c.op = [f = std::move(f)](const Tensors& in) { return Tensors{f(in)}; };
  c.tolerance = per_dtype(near(2e-6, 2e-6), near(1e-13, 1e-13));
  c.gradients = true;
  c.finite_differences = GradCheckOptions{};
  return c;
}

::testing::AssertionResult check_op(const OpCase& c) {
  PoisonScope poison;
  const std::string title = c.name + " (" + cases::describe(c.cost) + ")";
  std::vector<std::string> problems;

  Tensors host;
  {
    NoGradGuard no_grad;
    Generator gen(c.seed);
    for (const Tensor& t : c.inputs ? c.inputs(gen) : Tensors{})
      host.push_back(t.defined() ? t.to(Device::cpu()).contiguous() : Tensor());
  }

  std::vector<Device> targets;
  for (const DeviceInfo& d : registered_devices()) {
    if (c.where == Where::cuda_only && !d.device.is_cuda()) continue;
    if (d.available) {
      targets.push_back(d.device);
    } else {
      report_skipped(c.name + " on " + d.device.str(), d.absent);
    }
  }

  auto tolerance_on = [&](Device device, bool gradient) {
    const bool gpu = device.is_cuda() && cuda_is_gpu();
    if (gradient) {
      if (gpu && c.gpu_gradient_tolerance) return *c.gpu_gradient_tolerance;
      if (c.gradient_tolerance) return *c.gradient_tolerance;
    }
    if (gpu && c.gpu_tolerance) return *c.gpu_tolerance;
    return c.tolerance;
  };

  try {
    std::vector<Expected> expected;
    Run reference;
    const bool cpu_reference = !c.reference && !c.reference_on && !c.verify;
    if (cpu_reference) {
      reference = run_on(c, host, Device::cpu(), c.gradients, problems);
      for (std::size_t i = 0; i < reference.outputs.size(); ++i) {
        const Tensor& out = reference.outputs[i];
        const std::string what = "output " + std::to_string(i) + " of the cpu reference";
        expected.push_back(out.defined() ? expected_from(out, c.nonfinite_outputs, what, problems)
                                         : Expected{});
      }
    } else if (c.reference) {
      expected = c.reference(host);
    }
    bool have_grad_reference = cpu_reference;
    for (Device device : targets) {
      if (cpu_reference && device.is_cpu()) continue;
      const std::string what = "on " + device.str();
      const Run run = run_on(c, host, device, c.gradients, problems);
      if (c.verify) {
        for (std::size_t i = 0; i < run.outputs.size(); ++i) {
          if (run.outputs[i].defined() && !c.nonfinite_outputs)
            expected_from(run.outputs[i], false, what + " output " + std::to_string(i), problems);
        }
        const ::testing::AssertionResult r = c.verify(host, run.outputs, device);
        if (!r) problems.push_back(what + ": " + r.message());
      }
      if (c.reference_on) expected = c.reference_on(host, device);
      std::vector<Tolerances> output_tol = c.output_tolerance;
      if (output_tol.empty() || (device.is_cuda() && cuda_is_gpu() && c.gpu_tolerance))
        output_tol = {tolerance_on(device, false)};
      if (!c.verify)
        compare_outputs(run.outputs, expected, cpu_reference ? &reference.outputs : nullptr,
                        output_tol, what, problems);
      if (!c.gradients) continue;
      if (!have_grad_reference) {  // the first device (cpu) is the gradients' reference
        reference = run;
        have_grad_reference = true;
        if (device.is_cpu()) continue;
      }
      for (std::size_t i = 0; i < run.grads.size(); ++i) {
        const Tensor& want = reference.grads[i];
        const Tensor& got = run.grads[i];
        if (want.defined() != got.defined()) {
          problems.push_back(what + ": the gradient of input " + std::to_string(i) +
                             (got.defined() ? " exists" : " is missing") + ", the cpu's " +
                             (want.defined() ? "exists" : "does not"));
          continue;
        }
        if (!want.defined()) continue;
        const ::testing::AssertionResult r =
            matches(got, expected_from(want, c.nonfinite_outputs, "gradient", problems),
                    tolerance_on(device, true)[got.dtype()]);
        if (!r)
          problems.push_back(what + ": gradient of input " + std::to_string(i) + ": " + r.message());
      }
    }
    if (c.finite_differences) {
      const ::testing::AssertionResult r = finite_differences(c, host);
      if (!r) problems.push_back(std::string("finite differences on cpu: ") + r.message());
    }
  } catch (const std::exception& e) {
    problems.push_back(std::string("threw: ") + e.what());
  }

  if (problems.empty()) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << title << ":";
  for (std::size_t i = 0; i < problems.size() && i < 20; ++i) failure << "\n  " << problems[i];
  if (problems.size() > 20) failure << "\n  … and " << problems.size() - 20 << " more";
  return failure;
}

}  // namespace latent::test
