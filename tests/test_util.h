// Shared helpers for the core test suites: random inputs, host copies, closeness checks,
// error-message checks and a finite-difference gradient checker.
//
// The gradient checker compares the autograd gradient of  L(x) = sum(f(x) · w)  for a fixed
// random weight w (so that no gradient component cancels by symmetry) with central
// differences  (L(x + h·e_j) − L(x − h·e_j)) / 2h  in float64. The difference is formed per
// output element before the weighted sum, so the rounding error of the estimate is about
// eps·|f|/h ≈ 1e-10 rather than eps·|L|/h, which lets the tolerances stay near 1e-7.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "latent/autograd.h"
#include "latent/error.h"
#include "latent/ops.h"
#include "latent/random.h"
#include "latent/stream.h"
#include "latent/tensor.h"

namespace latent::test {

// ------------------------------------------------------------------ host copies

// Values of any tensor (any dtype, any strides) as doubles in row-major order.
inline std::vector<double> values_of(const Tensor& t) {
  NoGradGuard no_grad;
  return t.detach().to(DType::f64).to_vector<double>();
}

// Row-major index of a multi-index into a contiguous shape.
inline std::int64_t flat_index(const Shape& shape, std::initializer_list<std::int64_t> index) {
  std::int64_t flat = 0, d = 0;
  for (std::int64_t i : index) flat = flat * shape[d++] + i;
  return flat;
}

// ------------------------------------------------------------------ random inputs

// Uniform in [low, high).
inline Tensor uniform_tensor(const Shape& shape, Generator& gen, double low = -1.0,
                             double high = 1.0, DType dtype = DType::f64) {
  return uniform(shape, low, high, gen, dtype);
}

// Values whose magnitude lies in [min_abs, max_abs], with a random sign: inputs that keep
// clear of the kinks of relu, abs, leaky_relu and of division by zero.
inline Tensor away_from_zero(const Shape& shape, Generator& gen, double min_abs = 0.2,
                             double max_abs = 1.0, DType dtype = DType::f64) {
  std::vector<double> v = values_of(uniform(shape, -1.0, 1.0, gen, DType::f64));
  for (double& x : v) {
    const double magnitude = min_abs + (max_abs - min_abs) * std::abs(x);
    x = x < 0 ? -magnitude : magnitude;
  }
  return from_vector(v, shape).to(dtype);
}

// Values drawn from a list of disjoint intervals (chosen uniformly among them): inputs that
// keep clear of clamp's bounds, for example.
inline Tensor from_intervals(const Shape& shape, Generator& gen,
                             const std::vector<std::pair<double, double>>& intervals) {
  const std::vector<double> u = values_of(uniform(shape, 0.0, 1.0, gen, DType::f64));
  const std::vector<double> pick = values_of(uniform(shape, 0.0, 1.0, gen, DType::f64));
  std::vector<double> v(u.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const auto k = std::min(intervals.size() - 1,
                            static_cast<std::size_t>(pick[i] * static_cast<double>(intervals.size())));
    v[i] = intervals[k].first + (intervals[k].second - intervals[k].first) * u[i];
  }
  return from_vector(v, shape);
}

// ------------------------------------------------------------------ closeness

// Every |actual[i] − expected[i]| <= atol + rtol·|expected[i]|; reports the worst element.
inline ::testing::AssertionResult all_close(const std::vector<double>& actual,
                                            const std::vector<double>& expected, double rtol,
                                            double atol = 0.0) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "sizes differ: " << actual.size() << " vs " << expected.size();
  }
  std::size_t bad = 0, worst = 0;
  double worst_excess = -1.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double allowed = atol + rtol * std::abs(expected[i]);
    const double diff = std::abs(actual[i] - expected[i]);
    if (!(diff <= allowed)) {  // also catches NaN
      ++bad;
      const double excess = std::isnan(diff) ? std::numeric_limits<double>::infinity()
                                             : diff - allowed;
      if (excess > worst_excess) {
        worst_excess = excess;
        worst = i;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << actual.size() << " elements differ; worst at " << worst
         << ": actual " << actual[worst] << ", expected " << expected[worst] << " (|diff| "
         << std::abs(actual[worst] - expected[worst]) << ", allowed "
         << atol + rtol * std::abs(expected[worst]) << ")";
}

inline ::testing::AssertionResult all_close(const Tensor& actual,
                                            const std::vector<double>& expected, double rtol,
                                            double atol = 0.0) {
  return all_close(values_of(actual), expected, rtol, atol);
}

// Exact equality of two tensors' shapes, dtypes and values.
inline ::testing::AssertionResult identical(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) {
    return ::testing::AssertionFailure()
           << "shape/dtype differ: " << shape_str(a.shape()) << " " << dtype_name(a.dtype())
           << " vs " << shape_str(b.shape()) << " " << dtype_name(b.dtype());
  }
  return all_close(values_of(a), values_of(b), 0.0, 0.0);
}

// ------------------------------------------------------------------ errors

// Runs `body` and succeeds when it throws latent::Error whose message contains every one of
// `parts`.
// A device-side check (NaN input, index out of range) on cuda fails at the next check
// point, not inside the op: the body is followed by one, as a training step is.
inline ::testing::AssertionResult throws_error(const std::function<void()>& body,
                                               const std::vector<std::string>& parts) {
  try {
    body();
    if (backend_available(DeviceType::cuda)) check_errors(Device::cuda(0));
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const std::string& part : parts) {
      if (message.find(part) == std::string::npos) {
        return ::testing::AssertionFailure()
               << "latent::Error message \"" << message << "\" lacks \"" << part << "\"";
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-latent exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

#define EXPECT_LATENT_ERROR(statement, ...) \
  EXPECT_TRUE(::latent::test::throws_error([&] { (void)(statement); }, {__VA_ARGS__}))

// ------------------------------------------------------------------ gradient checking

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradCheckOptions {
  double step = 1e-6;   // h of the central difference
  double rtol = 1e-6;   // |analytic − numeric| <= atol + rtol·|numeric|
  double atol = 1e-8;
  std::vector<bool> check;  // which inputs to differentiate; empty means all
};

// Checks the autograd gradients of f at `inputs` (float64 tensors; each is copied into a
// fresh contiguous leaf) against central differences. `gen` supplies the weight w.
inline ::testing::AssertionResult check_gradients(const TensorFn& f,
                                                  const std::vector<Tensor>& inputs,
                                                  Generator& gen,
                                                  const GradCheckOptions& options = {}) {
  const std::size_t count = inputs.size();
  auto wanted = [&](std::size_t i) { return options.check.empty() || options.check[i]; };

  std::vector<Tensor> leaves;
  for (std::size_t i = 0; i < count; ++i) {
    if (inputs[i].dtype() != DType::f64) {
      return ::testing::AssertionFailure() << "input " << i << " is not float64";
    }
    Tensor leaf = from_vector(values_of(inputs[i]), inputs[i].shape());
    if (wanted(i)) leaf.requires_grad_(true);
    leaves.push_back(leaf);
  }

  // Analytic: one backward pass of sum(f(x) · w).
  const Tensor out = f(leaves);
  if (out.dtype() != DType::f64) {
    return ::testing::AssertionFailure() << "f returned " << dtype_name(out.dtype());
  }
  const Tensor w = uniform(out.shape(), -1.0, 1.0, gen, DType::f64);
  const std::vector<double> wv = values_of(w);
  sum(mul(out, w)).backward();

  std::ostringstream report;
  std::size_t failures = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!wanted(i)) continue;
    const Tensor grad = leaves[i].grad();
    if (!grad.defined()) {
      report << "input " << i << ": no gradient reached it\n";
      ++failures;
      continue;
    }
    if (grad.shape() != leaves[i].shape() || grad.dtype() != DType::f64) {
      report << "input " << i << ": gradient " << shape_str(grad.shape()) << " "
             << dtype_name(grad.dtype()) << " for input " << shape_str(leaves[i].shape())
             << "\n";
      ++failures;
      continue;
    }
    const std::vector<double> analytic = values_of(grad);

    // Numeric: perturb each element of the leaf in place.
    NoGradGuard no_grad;
    double* x = leaves[i].data<double>();
    for (std::int64_t j = 0; j < leaves[i].numel(); ++j) {
      const double saved = x[j];
      x[j] = saved + options.step;
      const std::vector<double> plus = values_of(f(leaves));
      x[j] = saved - options.step;
      const std::vector<double> minus = values_of(f(leaves));
      x[j] = saved;
      double numeric = 0.0;
      for (std::size_t k = 0; k < wv.size(); ++k) numeric += wv[k] * (plus[k] - minus[k]);
      numeric /= 2.0 * options.step;
      const double diff = std::abs(analytic[j] - numeric);
      if (!(diff <= options.atol + options.rtol * std::abs(numeric))) {
        if (failures < 10) {
          report << "input " << i << " " << shape_str(leaves[i].shape()) << ", element " << j
                 << ": autograd " << analytic[j] << ", finite difference " << numeric
                 << " (|diff| " << diff << ")\n";
        }
        ++failures;
      }
    }
  }
  if (failures == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << failures << " gradient mismatches:\n" << report.str();
}

// ------------------------------------------------------------------ temporary files

// A fresh directory per test (under the system temp directory, named after `prefix`, the
// process and a counter), removed afterwards; path() names a file in it and write_raw() puts
// arbitrary bytes there (not atomically: the file under test may be anything).
class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           (prefix_ + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_raw(const std::string& name, const std::string& bytes) const {
    std::ofstream out(path(name), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path(name);
  }

  std::string prefix_;
  std::filesystem::path dir_;
};

}  // namespace latent::test
