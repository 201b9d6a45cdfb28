// The VAE ops (reparameterize, gaussian_kl, the fused reparameterize_kl) on every backend
// against plain loops and finite differences, the KL against a hand calculation and a
// Monte-Carlo estimate, bad input, and the VAE model: shapes, schedules, a training smoke
// test on generated data, the pictures and the CLI. The kernel cases run through the op
// harness (tests/op_harness.h) on every device.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/divmod.cuh"
#include "kernels/philox_normal.cuh"
#include "cli_util.h"
#include "latent/latent.h"
#include "latent/vae.h"
#include "tests/op_harness.h"
#include "tests/synthetic_data.h"
#include "tools/train/pictures.h"
#include "tools/train/train.h"

namespace latent {
namespace {

using test::all_close;
using test::check_op;
using test::devices;
using test::Expected;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::Tensors;
using test::values_of;

const Device kCpu = Device::cpu();
const Device kCuda = Device::cuda(0);

// ------------------------------------------------------------------ the reference

struct Reference {
  std::vector<double> z, kl;
};

// z and the per-row KL in float64 with plain loops, straight from the definitions.
Reference reference(const std::vector<double>& mu, const std::vector<double>& logvar,
                    std::int64_t rows, PhiloxKey key, double lo = -30.0, double hi = 20.0) {
  Reference r;
  const std::int64_t cols = static_cast<std::int64_t>(mu.size()) / rows;
  r.z.resize(mu.size());
  r.kl.assign(rows, 0.0);
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(mu.size()); ++i) {
    const double lc = std::min(std::max(logvar[i], lo), hi);
    const double eps = kernels::philox_normal(key.seed, key.offset, static_cast<std::uint64_t>(i));
    r.z[i] = mu[i] + std::exp(0.5 * lc) * eps;
    r.kl[i / cols] += 0.5 * (mu[i] * mu[i] + std::exp(lc) - lc - 1.0);
  }
  return r;
}

struct Inputs {
  Tensor mu, logvar;
};

Inputs random_inputs(const Shape& shape, std::uint64_t seed, DType dtype, Device device) {
  Generator gen(seed);
  return {uniform(shape, -2.0, 2.0, gen, dtype).to(device),
          uniform(shape, -3.0, 3.0, gen, dtype).to(device)};
}

// The same draws, as a case's inputs.
std::function<Tensors(Generator&)> mu_and_logvar(const Shape& shape, DType dtype) {
  return [=](Generator& gen) {
    return Tensors{uniform(shape, -2.0, 2.0, gen, dtype), uniform(shape, -3.0, 3.0, gen, dtype)};
  };
}

// Latent shapes: one element, single-element rows, odd row lengths (no 16-byte path),
// the model's grids, rows longer than a tile (several chunks per row, vectorized or not),
// and a million-element row.
const std::vector<Shape> kShapes = {{1, 1},       {31},        {3, 33},     {2, 5, 7},
                                    {4, 4, 7, 7}, {2, 20001},  {3, 16384},  {1, 1000003}};

double tolerance(DType dtype) { return dtype == DType::f32 ? 2e-6 : 1e-13; }

// ------------------------------------------------------------------ forward

class ReparamForward : public test::OpTest {};

TEST_F(ReparamForward, MatchesTheDefinitionOnEveryBackend) {
  const PhiloxKey key{1234, 56};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& shape : kShapes) {
      OpCase c;
      c.name = "reparameterize_kl " + shape_str(shape) + " " + dtype_name(dtype);
      c.seed = 7;
      c.inputs = mu_and_logvar(shape, dtype);
      c.op = [&](const Tensors& in) {
        const ReparamKl fused = reparameterize_kl(in[0], in[1], key);
        // The separate ops compute the same numbers the same way: bitwise equal, so their
        // differences from the fused op's are exactly 0.
        return Tensors{fused.z, fused.kl, sub(reparameterize(in[0], in[1], key), fused.z),
                       sub(gaussian_kl(in[0], in[1]), fused.kl)};
      };
      c.reference = [&](const Tensors& in) {
        const Reference ref = reference(values_of(in[0]), values_of(in[1]), shape[0], key);
        const Shape rows{shape[0]};
        return std::vector<Expected>{{ref.z, {}, shape, dtype},
                                     {ref.kl, {}, rows, dtype},
                                     {std::vector<double>(ref.z.size(), 0.0), {}, shape, dtype},
                                     {std::vector<double>(ref.kl.size(), 0.0), {}, rows, dtype}};
      };
      const double tol = tolerance(dtype);
      const test::Tolerances close = per_dtype(near(tol, tol), near(tol, tol));
      c.output_tolerance = {close, close, test::every_dtype(test::exact()), test::every_dtype(test::exact())};
      c.cost = cases::reparam_kl_forward(shape[0], shape_numel(shape) / shape[0], dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST_F(ReparamForward, CudaMatchesCpu) {
  const PhiloxKey key{99, 3};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& shape : kShapes) {
      OpCase c;
      c.name = "reparameterize_kl against the cpu backend " + shape_str(shape) + " " + dtype_name(dtype);
      c.seed = 11;
      c.inputs = mu_and_logvar(shape, dtype);
      c.op = [&](const Tensors& in) {
        const ReparamKl r = reparameterize_kl(in[0], in[1], key);
        return Tensors{r.z, r.kl};
      };
      const double tol = tolerance(dtype);
      c.tolerance = per_dtype(near(tol, tol), near(tol, tol));
      c.cost = cases::reparam_kl_forward(shape[0], shape_numel(shape) / shape[0], dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The tile → (row, chunk) split divides by a multiply and a shift (kernels/divmod.cuh):
// the same quotient and remainder as integer division, for divisors and numerators from 1
// to 2^63 − 1, the edges around every multiple included.
TEST(ReparamTiles, MagicDivisionIsIntegerDivision) {
  Generator gen(5);
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  std::vector<std::int64_t> divisors = {1, 2, 3, 5, 7, 8, 641, 8191, 8192, 65535, 65536,
                                        (std::int64_t{1} << 31) - 1, std::int64_t{1} << 31,
                                        (std::int64_t{1} << 32) + 1, max / 3, max - 1, max};
  const std::vector<double> u = uniform({400}, 0.0, 62.0, gen, DType::f64).to_vector<double>();
  for (double e : u) divisors.push_back(std::max<std::int64_t>(1, static_cast<std::int64_t>(std::exp2(e))));
  const std::vector<double> v = uniform({64}, 0.0, 62.9, gen, DType::f64).to_vector<double>();
  for (const std::int64_t d : divisors) {
    const kernels::FastDivmod magic(d);
    std::vector<std::int64_t> numerators = {0, 1, d - 1, d, max, max - 1, max - d + 1};
    for (std::int64_t k : {std::int64_t{2}, std::int64_t{3}, std::int64_t{1000}})
      if (d <= max / k) numerators.insert(numerators.end(), {k * d - 1, k * d, k * d + 1});
    for (double e : v) numerators.push_back(static_cast<std::int64_t>(std::exp2(e)) - 1);
    for (const std::int64_t n : numerators) {
      if (n < 0) continue;
      std::int64_t q = 0, r = 0;
      magic.divmod(n, q, r);
      ASSERT_EQ(q, n / d) << n << " / " << d;
      ASSERT_EQ(r, n % d) << n << " % " << d;
    }
  }
}

TEST_F(ReparamForward, ClampsLogvar) {
  for (Device device : devices()) {
    const Tensor mu = zeros({1, 4}, DType::f64, device);
    const Tensor logvar = from_vector<double>({-45.0, -30.0, 20.0, 27.0}, {1, 4}).to(device);
    const PhiloxKey key{5, 5};
    const std::vector<double> z = values_of(reparameterize(mu, logvar, key));
    const double clamped[4] = {-30.0, -30.0, 20.0, 20.0};
    for (int i = 0; i < 4; ++i) {
      EXPECT_NEAR(z[i], std::exp(0.5 * clamped[i]) * kernels::philox_normal(5, 5, i),
                  1e-12 * std::exp(0.5 * clamped[i]));
    }
    double kl = 0.0;
    for (double lc : clamped) kl += 0.5 * (std::exp(lc) - lc - 1.0);
    EXPECT_NEAR(gaussian_kl(mu, logvar).item(), kl, 1e-12 * kl) << device.str();
    ReparamOptions wide;
    wide.logvar_min = -50.0;
    wide.logvar_max = 30.0;
    EXPECT_GT(gaussian_kl(mu, logvar, wide).item(), kl);
  }
}

// ------------------------------------------------------------------ the KL itself

TEST(Kl, ClosedFormByHand) {
  test::PoisonScope poison;
  // Sample 0: μ = (1, 0), σ² = (1, 4):  ½(1 + 1 − 0 − 1) + ½(0 + 4 − ln 4 − 1) = 2 − ln 2.
  // Sample 1: the prior itself: 0.
  const Tensor mu = from_vector<double>({1.0, 0.0, 0.0, 0.0}, {2, 2});
  const Tensor logvar = from_vector<double>({0.0, std::log(4.0), 0.0, 0.0}, {2, 2});
  for (Device device : devices()) {
    const std::vector<double> kl = values_of(gaussian_kl(mu.to(device), logvar.to(device)));
    EXPECT_NEAR(kl[0], 2.0 - std::log(2.0), 1e-15) << device.str();
    EXPECT_EQ(kl[1], 0.0) << device.str();
  }
}

// A unit near the prior: ½(expm1(ℓ) − ℓ) ≈ ℓ²/4 is a difference of nearly equal numbers,
// which in float32 loses 12 bits at |ℓ| = 1e-3 and everything below |ℓ| ≈ 1e-7. The kernels
// use a series there; the result must match a long-double reference to a float ulp or two,
// on both backends, bit for bit alike.
// ½(expm1(ℓ) − ℓ) in long double without the cancellation: the series Σ_{k≥2} ℓ^k/k!.
long double half_expm1_minus_x(long double l) {
  if (std::fabs(l) >= 1.0L) return 0.5L * (std::expm1l(l) - l);
  long double term = l * l / 2.0L, total = 0.0L;
  for (int k = 3; k < 40; ++k) {
    total += term;
    term *= l / k;
  }
  return 0.5L * total;
}

TEST(Kl, NearThePriorMatchesALongDoubleReference) {
  std::vector<float> logvars;
  for (double magnitude : {1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8}) {
    logvars.push_back(static_cast<float>(magnitude));
    logvars.push_back(static_cast<float>(-magnitude));
  }
  logvars.push_back(0.49f);
  logvars.push_back(-0.49f);
  logvars.push_back(0.5f);
  logvars.push_back(-2.0f);
  const std::int64_t n = static_cast<std::int64_t>(logvars.size());
  const Tensor mu = zeros({n, 1}, DType::f32);
  const Tensor logvar = from_vector<float>(logvars, {n, 1});
  std::vector<Tensor> results;
  for (Device device : devices()) {
    const Tensor kl = gaussian_kl(mu.to(device), logvar.to(device)).to(kCpu);
    const std::vector<float> got = kl.to_vector<float>();
    for (std::int64_t i = 0; i < n; ++i) {
      const long double l = logvars[static_cast<std::size_t>(i)];  // the float input, exactly
      const long double exact = half_expm1_minus_x(l);
      const double rel = static_cast<double>(std::fabs((got[static_cast<std::size_t>(i)] - exact) / exact));
      EXPECT_LT(rel, 3e-7) << device.str() << " logvar " << logvars[static_cast<std::size_t>(i)]
                           << ": kl " << got[static_cast<std::size_t>(i)] << " vs "
                           << static_cast<double>(exact);
    }
    // And in float64, against the same reference to ~1e-15.
    const Tensor kl64 = gaussian_kl(mu.to(DType::f64).to(device), logvar.to(DType::f64).to(device));
    const std::vector<double> got64 = values_of(kl64);
    for (std::int64_t i = 0; i < n; ++i) {
      const long double l = logvars[static_cast<std::size_t>(i)];
      const long double exact = half_expm1_minus_x(l);
      EXPECT_LT(static_cast<double>(std::fabs((got64[static_cast<std::size_t>(i)] - exact) / exact)), 4e-16)
          << device.str() << " f64 logvar " << logvars[static_cast<std::size_t>(i)];
    }
    results.push_back(kl);
  }
  if (results.size() == 2) EXPECT_TRUE(test::identical(results[0], results[1]));
}

// KL(q ‖ p) = E_q[log q(z) − log p(z)] = E[−½ε² − ½ℓ + ½z²] (the ½ log 2π cancel).
TEST(Kl, MatchesAMonteCarloEstimate) {
  test::PoisonScope poison;
  const std::int64_t samples = 200000;
  const std::vector<std::pair<double, double>> cases = {{0.0, 0.0}, {1.5, -1.0}, {-0.7, 1.2}};
  for (Device device : devices()) {
    for (auto [m, lv] : cases) {
      const Tensor mu = full({samples, 1}, m, DType::f64, device);
      const Tensor logvar = full({samples, 1}, lv, DType::f64, device);
      const PhiloxKey key{321, 0};
      const std::vector<double> z = values_of(reparameterize(mu, logvar, key));
      const double sigma = std::exp(0.5 * lv);
      double sum = 0, sum_sq = 0;
      for (double zi : z) {
        const double eps = (zi - m) / sigma;
        const double log_ratio = -0.5 * eps * eps - 0.5 * lv + 0.5 * zi * zi;
        sum += log_ratio;
        sum_sq += log_ratio * log_ratio;
      }
      const double estimate = sum / samples;
      const double standard_error =
          std::sqrt((sum_sq / samples - estimate * estimate) / samples);
      const double exact = gaussian_kl(mu.narrow(0, 0, 1), logvar.narrow(0, 0, 1)).item();
      EXPECT_NEAR(exact, 0.5 * (m * m + std::exp(lv) - lv - 1.0), 1e-14);
      EXPECT_NEAR(estimate, exact, 5.0 * standard_error + 1e-12)
          << device.str() << " mu " << m << " logvar " << lv;
    }
  }
}

TEST(Kl, ReductionIsBitwiseRepeatable) {
  test::PoisonScope poison;
  for (Device device : devices()) {
    for (const Shape& shape : {Shape{3, 100003}, Shape{64, 196}, Shape{2, 16384}}) {
      const Inputs in = random_inputs(shape, 3, DType::f32, device);
      const Tensor first = gaussian_kl(in.mu, in.logvar);
      const ReparamKl fused = reparameterize_kl(in.mu, in.logvar, PhiloxKey{1, 1});
      for (int run = 0; run < 3; ++run) {
        EXPECT_TRUE(test::identical(gaussian_kl(in.mu, in.logvar), first)) << shape_str(shape);
        const ReparamKl again = reparameterize_kl(in.mu, in.logvar, PhiloxKey{1, 1});
        EXPECT_TRUE(test::identical(again.kl, fused.kl));
        EXPECT_TRUE(test::identical(again.z, fused.z));
      }
    }
  }
}

// ------------------------------------------------------------------ gradients

// A narrow clamp, so that finite differences see both bounds without the huge values of
// exp(20) (whose rounding error would swamp the differences), and log-variances away from
// the bounds (where the derivative jumps), some beyond them.
ReparamOptions narrow_clamp() {
  ReparamOptions o;
  o.logvar_min = -4.5;
  o.logvar_max = 2.5;
  return o;
}
Tensor logvar_for_gradients(const Shape& shape, Generator& gen) {
  return test::from_intervals(shape, gen, {{-3.5, 2.0}, {-6.0, -5.0}, {3.0, 4.0}});
}

TEST(ReparamBackward, FiniteDifferences) {
  const PhiloxKey key{77, 7};
  const ReparamOptions clamp = narrow_clamp();
  test::GradCheckOptions options;
  options.rtol = 1e-6;
  options.atol = 1e-7;
  for (const Shape& shape : {Shape{3, 5}, Shape{2, 2, 3}, Shape{1, 9}}) {
    const auto inputs = [shape](Generator& gen) {
      return Tensors{test::uniform_tensor(shape, gen, -1.5, 1.5), logvar_for_gradients(shape, gen)};
    };
    const std::vector<std::pair<std::string, std::function<Tensor(const Tensors&)>>> ops = {
        {"reparameterize", [&](const Tensors& x) { return reparameterize(x[0], x[1], key, clamp); }},
        {"gaussian_kl", [&](const Tensors& x) { return gaussian_kl(x[0], x[1], clamp); }},
        // The fused op: z alone, the KL alone, and both (each routes the gradient differently).
        {"reparameterize_kl z", [&](const Tensors& x) { return reparameterize_kl(x[0], x[1], key, clamp).z; }},
        {"reparameterize_kl kl", [&](const Tensors& x) { return reparameterize_kl(x[0], x[1], key, clamp).kl; }},
        {"reparameterize_kl z and kl",
         [&](const Tensors& x) {
           const ReparamKl r = reparameterize_kl(x[0], x[1], key, clamp);
           return concat({r.z.flatten(), mul(r.kl, 3.0)}, 0);
         }},
    };
    for (const auto& [name, f] : ops) {
      OpCase c = test::gradient_case(name + " " + shape_str(shape), 17, inputs, f);
      c.finite_differences = options;
      EXPECT_TRUE(check_op(c));
    }
  }
}

// Gradients of  L = Σ z·w + Σ kl·v  on a device, through the fused op or the separate ones.
struct Grads {
  std::vector<double> mu, logvar;
};
Tensors gradient_tensors(const Inputs& in, const Tensor& w, const Tensor& v, PhiloxKey key,
                         bool fused) {
  const Tensor mu = in.mu.detach().requires_grad_(), logvar = in.logvar.detach().requires_grad_();
  Tensor z, kl;
  if (fused) {
    const ReparamKl r = reparameterize_kl(mu, logvar, key);
    z = r.z;
    kl = r.kl;
  } else {
    z = reparameterize(mu, logvar, key);
    kl = gaussian_kl(mu, logvar);
  }
  add(sum(mul(z, w)), sum(mul(kl, v))).backward();
  return {mu.grad(), logvar.grad()};
}
Grads gradients(const Inputs& in, const Tensor& w, const Tensor& v, PhiloxKey key, bool fused) {
  const Tensors g = gradient_tensors(in, w, v, key, fused);
  return {values_of(g[0]), values_of(g[1])};
}

// dL/dμ = dL/dz + v·μ, dL/dlogvar = dL/dz·½σε + v·½(e^ℓ − 1) for L = Σ z·w + Σ kl·v (per-row v),
// in double, with ε drawn again from its counter (no clamp reached: |ℓ| <= 3).
std::vector<Expected> closed_form_gradients(const Tensors& in, PhiloxKey key) {
  const std::vector<double> mu = values_of(in[0]), lv = values_of(in[1]), w = values_of(in[2]),
                            v = values_of(in[3]);
  const std::size_t cols = mu.size() / v.size();
  Expected dmu{std::vector<double>(mu.size())}, dlv{std::vector<double>(mu.size())};
  for (std::size_t i = 0; i < mu.size(); ++i) {
    const double sigma = std::exp(0.5 * lv[i]), eps = kernels::philox_normal(key.seed, key.offset, i);
    dmu.values[i] = w[i] + v[i / cols] * mu[i];
    dlv.values[i] = w[i] * 0.5 * sigma * eps + v[i / cols] * 0.5 * (std::exp(lv[i]) - 1.0);
  }
  return {dmu, dlv, dmu, dlv};
}

TEST(ReparamBackwardBackends, CudaMatchesCpuAndFusedMatchesUnfused) {
  const PhiloxKey key{8, 8};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& shape : kShapes) {
      if (shape_numel(shape) > 100000) continue;  // the forward test covers the million
      OpCase c;
      c.name = "the gradients of Σ z·w + Σ kl·v, fused and unfused " + shape_str(shape) + " " +
               dtype_name(dtype);
      c.seed = 21;
      c.inputs = [&](Generator& gen) {
        Tensors in = mu_and_logvar(shape, dtype)(gen);
        in.push_back(uniform(shape, -1.0, 1.0, gen, dtype));
        in.push_back(uniform({shape[0]}, -1.0, 1.0, gen, dtype));
        return in;
      };
      // Every device, through the fused op and through the separate ones.
      c.op = [&](const Tensors& in) {
        Tensors out = gradient_tensors({in[0], in[1]}, in[2], in[3], key, true);
        for (const Tensor& g : gradient_tensors({in[0], in[1]}, in[2], in[3], key, false))
          out.push_back(g);
        return out;
      };
      c.reference = [&](const Tensors& in) { return closed_form_gradients(in, key); };
      const double tol = tolerance(dtype);
      c.tolerance = per_dtype(near(tol, tol), near(tol, tol));
      c.cost = cases::reparam_kl_backward(shape[0], shape_numel(shape) / shape[0], dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The formulas of the issue: dL/dμ = dL/dz + β·μ, dL/dlogvar = dL/dz·½σε + β·½(e^ℓ − 1),
// for L = Σ z·w + β·Σ kl, with ε drawn again from its counter.
TEST(ReparamBackward, FollowsTheClosedForm) {
  const PhiloxKey key{4, 2};
  const double beta = 2.5;
  const Shape shape{3, 8};
  test::PoisonScope poison;
  for (Device device : devices()) {
    const Inputs in = random_inputs(shape, 9, DType::f64, device);
    Generator gen(1);
    const Tensor w = uniform(shape, -1.0, 1.0, gen, DType::f64).to(device);
    const Grads g = gradients(in, w, full({3}, beta, DType::f64, device), key, true);
    const std::vector<double> mu = values_of(in.mu), lv = values_of(in.logvar), wv = values_of(w);
    for (std::size_t i = 0; i < mu.size(); ++i) {
      const double sigma = std::exp(0.5 * lv[i]), eps = kernels::philox_normal(4, 2, i);
      EXPECT_NEAR(g.mu[i], wv[i] + beta * mu[i], 1e-14) << device.str();
      EXPECT_NEAR(g.logvar[i], wv[i] * 0.5 * sigma * eps + beta * 0.5 * (std::exp(lv[i]) - 1.0),
                  1e-13)
          << device.str();
    }
  }
}

// The same numbers as the composition of generic ops (randn, exp, mul, add, ...).
TEST(ReparamBackward, MatchesTheComposedOps) {
  test::PoisonScope poison;
  for (Device device : devices()) {
    const Shape shape{4, 3, 7, 7};
    const Inputs in = random_inputs(shape, 2, DType::f64, device);
    Generator noise(31);
    const PhiloxKey key{noise.seed(), noise.offset()};
    const Tensor eps = randn(shape, noise, DType::f64, device);
    const Tensor mu1 = in.mu.detach().requires_grad_(), lv1 = in.logvar.detach().requires_grad_();
    const Tensor z1 = add(mu1, mul(exp(mul(lv1, 0.5)), eps));
    const Tensor kl1 = mul(sum(sub(add(square(mu1), exp(lv1)), add(lv1, 1.0)), {1, 2, 3}), 0.5);
    add(sum(square(z1)), sum(kl1)).backward();
    const Tensor mu2 = in.mu.detach().requires_grad_(), lv2 = in.logvar.detach().requires_grad_();
    const ReparamKl r = reparameterize_kl(mu2, lv2, key);
    add(sum(square(r.z)), sum(r.kl)).backward();
    EXPECT_TRUE(all_close(r.z, values_of(z1), 1e-14, 1e-14)) << device.str();
    EXPECT_TRUE(all_close(r.kl, values_of(kl1), 1e-13, 1e-13)) << device.str();
    EXPECT_TRUE(all_close(mu2.grad(), values_of(mu1.grad()), 1e-13, 1e-13)) << device.str();
    EXPECT_TRUE(all_close(lv2.grad(), values_of(lv1.grad()), 1e-13, 1e-13)) << device.str();
  }
}

// mu and logvar as two halves of one encoder output (views, as the model uses them).
TEST(ReparamBackward, ThroughViewsOfOneTensor) {
  const PhiloxKey key{6, 1};
  EXPECT_TRUE(check_op(test::gradient_case(
      "reparameterize_kl of two halves of one tensor", 3,
      [](Generator& gen) { return Tensors{test::uniform_tensor({2, 6, 2, 2}, gen, -1.0, 1.0)}; },
      [&](const Tensors& x) {
        const ReparamKl r = reparameterize_kl(x[0].narrow(1, 0, 3), x[0].narrow(1, 3, 3), key);
        return concat({r.z.flatten(), r.kl}, 0);
      })));
}

TEST(ReparamBackward, NothingIsRecordedWithoutGradients) {
  const Tensor mu = zeros({2, 3}).requires_grad_(), logvar = zeros({2, 3}).requires_grad_();
  {
    NoGradGuard no_grad;
    const ReparamKl r = reparameterize_kl(mu, logvar, PhiloxKey{});
    EXPECT_FALSE(r.z.grad_fn());
    EXPECT_FALSE(r.kl.grad_fn());
  }
  const ReparamKl r = reparameterize_kl(mu.detach(), logvar.detach(), PhiloxKey{});
  EXPECT_FALSE(r.z.requires_grad());
}

// The fused op is one autograd node with two outputs, so its backward runs once with both.
TEST(ReparamBackward, FusedOpIsOneNodeWithTwoOutputs) {
  const Tensor mu = zeros({2, 3}).requires_grad_(), logvar = zeros({2, 3}).requires_grad_();
  const ReparamKl r = reparameterize_kl(mu, logvar, PhiloxKey{});
  ASSERT_NE(r.z.grad_fn(), nullptr);
  EXPECT_EQ(r.z.grad_fn(), r.kl.grad_fn());
  EXPECT_EQ(r.z.grad_fn()->op, "reparameterize_kl");
  EXPECT_EQ(r.z.grad_fn()->inputs.size(), 2u);
  EXPECT_EQ(r.z.output_index(), 0u);
  EXPECT_EQ(r.kl.output_index(), 1u);
}

// ------------------------------------------------------------------ bad input

TEST(ReparamErrors, BadInputIsAClearError) {
  test::PoisonScope poison;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (Device device : devices()) {
    const Tensor mu = zeros({2, 3}, DType::f32, device);
    const Tensor logvar = zeros({2, 3}, DType::f32, device);
    EXPECT_LATENT_ERROR(reparameterize(mu, zeros({2, 4}, DType::f32, device), PhiloxKey{}),
                        "reparameterize", "[2, 3]", "[2, 4]", "same shape");
    EXPECT_LATENT_ERROR(gaussian_kl(mu, zeros({3, 2}, DType::f32, device)), "gaussian_kl",
                        "[3, 2]");
    EXPECT_LATENT_ERROR(reparameterize_kl(mu, logvar.to(DType::f64), PhiloxKey{}),
                        "reparameterize_kl", "float32", "float64");
    EXPECT_LATENT_ERROR(gaussian_kl(zeros({0, 4}, DType::f32, device),
                                    zeros({0, 4}, DType::f32, device)),
                        "gaussian_kl", "non-empty batch", "[0, 4]");
    EXPECT_LATENT_ERROR(reparameterize(zeros({3, 0}, DType::f32, device),
                                       zeros({3, 0}, DType::f32, device), PhiloxKey{}),
                        "reparameterize", "no latent dimensions");
    EXPECT_LATENT_ERROR(gaussian_kl(scalar_tensor(1.0, DType::f32, device),
                                    scalar_tensor(1.0, DType::f32, device)),
                        "gaussian_kl", "[N, ...]");
    for (double bad : {nan, inf, -inf}) {
      const Tensor bad_logvar = from_vector<double>({0, 0, bad, 0, 0, 0}, {2, 3}).to(device);
      EXPECT_LATENT_ERROR(gaussian_kl(mu.to(DType::f64), bad_logvar), "gaussian_kl", "logvar",
                          "NaN or Inf");
      EXPECT_LATENT_ERROR(reparameterize_kl(mu.to(DType::f64), bad_logvar, PhiloxKey{}),
                          "reparameterize_kl", "logvar", "NaN or Inf");
      EXPECT_LATENT_ERROR(reparameterize(bad_logvar, zeros({2, 3}, DType::f64, device), PhiloxKey{}),
                          "reparameterize", "mu", "NaN or Inf");
    }
    ReparamOptions unchecked;
    unchecked.check_finite = false;
    const Tensor nan_logvar = from_vector<double>({nan, 0, 0, 0, 0, 0}, {2, 3}).to(device);
    EXPECT_TRUE(std::isnan(gaussian_kl(mu.to(DType::f64), nan_logvar, unchecked)
                               .narrow(0, 0, 1)
                               .item()));
    ReparamOptions empty_clamp;
    empty_clamp.logvar_min = 1.0;
    empty_clamp.logvar_max = 0.0;
    EXPECT_LATENT_ERROR(gaussian_kl(mu, logvar, empty_clamp), "gaussian_kl", "clamp");
    EXPECT_LATENT_ERROR(gaussian_kl(zeros({2, 3}, DType::i32, device),
                                    zeros({2, 3}, DType::i32, device)),
                        "gaussian_kl", "int32");
  }
  if (test::has_cuda()) {
    EXPECT_LATENT_ERROR(gaussian_kl(zeros({2, 3}), zeros({2, 3}, DType::f32, kCuda)),
                        "gaussian_kl", "cpu", "cuda");
  }
  EXPECT_LATENT_ERROR(gaussian_kl(Tensor(), zeros({2, 3})), "gaussian_kl", "undefined");
}

// ------------------------------------------------------------------ the model

using test::blob_images;

models::VaeConfig small_config() {
  models::VaeConfig c;
  c.net.hidden_channels = 4;
  c.net.latent_channels = 2;
  return c;
}

TEST(VaeModel, ShapesOfEveryPath) {
  const Dataset data = blob_images(6, 1);
  for (bool flat : {false, true}) {
    models::VaeConfig c = small_config();
    c.flat = flat;
    c.latent_dim = 3;
    Generator gen(0);
    models::Vae model(c, gen);
    const Shape latent = flat ? Shape{6, 3} : Shape{6, 2, 7, 7};
    const models::Vae::Posterior q = model.encode(data.images);
    EXPECT_EQ(q.mu.shape(), latent);
    EXPECT_EQ(q.logvar.shape(), latent);
    EXPECT_EQ(model.decode_logits(q.mu).shape(), (Shape{6, 1, 28, 28}));
    const std::vector<double> recon = values_of(model.reconstruct(data.images));
    for (double v : recon) ASSERT_TRUE(v >= 0.0 && v <= 1.0);
    Generator g(1);
    EXPECT_EQ(model.sample(5, g).shape(), (Shape{5, 1, 28, 28}));
    const models::TrainableModel::StepOutput out = model.training_step(data.images, 0);
    EXPECT_EQ(out.loss.numel(), 1);
    const std::map<std::string, double> metrics = models::read_metrics(out.metrics);
    for (const char* key : {"recon", "kl", "neg_elbo_nats", "active_units", "beta"})
      EXPECT_TRUE(metrics.count(key)) << key;
    EXPECT_NEAR(metrics.at("neg_elbo_nats"), metrics.at("recon") + metrics.at("kl"), 1e-9);
  }
}

TEST(VaeModel, KlWeightSchedules) {
  Generator gen(0);
  models::VaeConfig c = small_config();
  c.beta = 4.0;
  EXPECT_EQ(models::Vae(c, gen).kl_weight(0), 4.0);
  c.kl_warmup = 100;
  models::Vae warm(c, gen);
  EXPECT_EQ(warm.kl_weight(0), 0.0);
  EXPECT_DOUBLE_EQ(warm.kl_weight(25), 1.0);
  EXPECT_EQ(warm.kl_weight(100), 4.0);
  EXPECT_EQ(warm.kl_weight(5000), 4.0);
  c.kl_warmup = 0;
  c.kl_cycle = 40;
  models::Vae cyclic(c, gen);
  EXPECT_EQ(cyclic.kl_weight(0), 0.0);
  EXPECT_DOUBLE_EQ(cyclic.kl_weight(10), 2.0);
  EXPECT_EQ(cyclic.kl_weight(20), 4.0);
  EXPECT_EQ(cyclic.kl_weight(39), 4.0);
  EXPECT_EQ(cyclic.kl_weight(40), 0.0);
}

TEST(VaeModel, BadConfigIsAClearError) {
  Generator gen(0);
  models::VaeConfig c = small_config();
  c.loss = "l1";
  EXPECT_LATENT_ERROR(models::Vae(c, gen), "Vae", "l1");
  c = small_config();
  c.beta = -1;
  EXPECT_LATENT_ERROR(models::Vae(c, gen), "beta");
  c = small_config();
  c.flat = true;
  c.latent_dim = 0;
  EXPECT_LATENT_ERROR(models::Vae(c, gen), "latent_dim");
  c = small_config();
  c.free_bits = -0.5;
  EXPECT_LATENT_ERROR(models::Vae(c, gen), "free_bits");
  train::Config config;
  config.model = "vae";
  config.latent = "round";
  EXPECT_LATENT_ERROR(train::make_model(config, gen), "vae", "round");
}

// Mean of a metric over steps [begin, end) of a run.
double window_mean(const std::vector<std::map<std::string, double>>& log, const char* key,
                   std::size_t begin, std::size_t end) {
  double total = 0;
  for (std::size_t i = begin; i < end; ++i) total += log[i].at(key);
  return total / static_cast<double>(end - begin);
}

// Trains on the blob images, batches of 16, AdamW at 3e-3.
std::vector<std::map<std::string, double>> train_blobs(models::VaeConfig c, int steps,
                                                       Device device, std::uint64_t seed = 0) {
  const Dataset data = blob_images(256, 5);
  Generator gen(seed);
  models::Vae model(c, gen);
  model.to(device);
  optim::AdamW optimizer(model.parameters(), 3e-3);
  std::vector<std::map<std::string, double>> log;
  for (int step = 0; step < steps; ++step) {
    const Tensor batch = data.images.narrow(0, (step * 16) % 256, 16).to(device);
    const models::TrainableModel::StepOutput out = model.training_step(batch, step);
    optimizer.zero_grad();
    out.loss.backward();
    optimizer.step();
    log.push_back(models::read_metrics(out.metrics));
  }
  return log;
}

// While the KL weight warms up (steps 0–40) the encoder spends nats freely and the KL
// peaks; from then on both terms of the ELBO fall: the reconstruction because the decoder
// keeps learning, the KL because β = 2 prices every nat the two-factor data do not need.
TEST(VaeModel, TrainingOnGeneratedDataLowersKlAndReconstruction) {
  models::VaeConfig c = small_config();
  c.loss = "bce";
  c.beta = 2.0;
  c.kl_warmup = 40;
  const auto log = train_blobs(c, 160, kCpu);
  const double recon_start = window_mean(log, "recon", 0, 20);
  const double recon_after_warmup = window_mean(log, "recon", 40, 60);
  const double recon_end = window_mean(log, "recon", 140, 160);
  const double kl_peak = window_mean(log, "kl", 20, 40);
  const double kl_after_warmup = window_mean(log, "kl", 40, 60);
  const double kl_end = window_mean(log, "kl", 140, 160);
  EXPECT_LT(recon_end, 0.5 * recon_start) << recon_start << " -> " << recon_end;
  EXPECT_LT(recon_end, 0.9 * recon_after_warmup) << recon_after_warmup << " -> " << recon_end;
  EXPECT_LT(kl_end, 0.85 * kl_peak) << kl_peak << " -> " << kl_end;
  EXPECT_LT(kl_end, kl_after_warmup) << kl_after_warmup << " -> " << kl_end;
  for (const auto& m : log) ASSERT_TRUE(std::isfinite(m.at("neg_elbo_nats")));
}

// The same step on the cuda backend (SIMT in CI) as on cpu: the same initialization and ε.
TEST(VaeModel, CudaTrainingStepMatchesCpu) {
  LATENT_SKIP_WITHOUT_CUDA();
  models::VaeConfig c = small_config();
  const auto on_cpu = train_blobs(c, 2, kCpu);
  const auto on_cuda = train_blobs(c, 2, kCuda);
  for (int step = 0; step < 2; ++step) {
    for (const char* key : {"recon", "kl"}) {
      EXPECT_NEAR(on_cuda[step].at(key), on_cpu[step].at(key),
                  1e-4 * std::abs(on_cpu[step].at(key)) + 1e-4)
          << key << " step " << step;
    }
  }
}

TEST(VaeModel, EvaluationAndPictures) {
  const Dataset test = blob_images(40, 9);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("latent-vae-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (double beta : {1.0, 0.0}) {
    models::VaeConfig c = small_config();
    c.flat = true;
    c.latent_dim = 2;
    c.beta = beta;
    Generator gen(0);
    models::Vae model(c, gen);
    model.eval();
    const std::map<std::string, double> m = model.evaluate_extra(test, kCpu);
    EXPECT_EQ(m.at("latent_units"), 2.0);
    if (beta > 0) {
      EXPECT_NEAR(m.at("neg_elbo_nats"), m.at("recon_nats") + m.at("kl_nats"), 1e-9);
      EXPECT_GE(m.at("active_units"), 0.0);
      EXPECT_LE(m.at("active_units"), 2.0);
    } else {
      EXPECT_FALSE(m.count("kl_nats"));  // an autoencoder has no KL
    }
    train::write_pictures(model, dir.string(), test, kCpu);
    for (const char* name : {"samples.png", "interpolation.png", "latent_scatter.png"}) {
      const Tensor image = load_png((dir / name).string());
      EXPECT_GT(image.numel(), 0) << name;
    }
    EXPECT_EQ(load_png((dir / "latent_scatter.png").string()).size(0), 3);
    // The same images from the same model, on the cuda backend.
    if (!test::has_cuda()) continue;
    model.to(kCuda);
    const std::map<std::string, double> on_cuda = model.evaluate_extra(test, kCuda);
    for (const auto& [key, value] : m) EXPECT_NEAR(on_cuda.at(key), value, 1e-3 * std::abs(value) + 1e-4) << key;
  }
  std::filesystem::remove_all(dir);
}

TEST(VaePictures, ReparameterizationOfATwoDimensionalLatent) {
  const Dataset test = blob_images(40, 9);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("latent-vae-reparam-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  models::VaeConfig c = small_config();
  c.flat = true;
  c.latent_dim = 2;
  Generator gen(0);
  models::Vae model(c, gen);
  model.eval();
  train::write_pictures(model, dir.string(), test, kCpu);
  // The plane (400 px) and four rows of 112 px beside it: zoom, image, decode(μ), five draws.
  const Tensor picture = load_png((dir / "reparameterization.png").string());
  EXPECT_EQ(picture.shape(), (Shape{3, 476, 1000}));
  // A spatial latent has no plane to draw: no picture, and asking for one is an error.
  std::filesystem::remove(dir / "reparameterization.png");
  models::Vae spatial(small_config(), gen);
  spatial.eval();
  train::write_pictures(spatial, dir.string(), test, kCpu);
  EXPECT_FALSE(std::filesystem::exists(dir / "reparameterization.png"));
  EXPECT_LATENT_ERROR(train::write_reparameterization_picture(
                          spatial, (dir / "r.png").string(), test, kCpu),
                      "2-D latent");
  std::filesystem::remove_all(dir);
}

TEST(VaePictures, CanvasGeometry) {
  // The plot maps its rectangle onto its pixel box: the corners land on the box's corners.
  const train::PlotArea area = train::square_area(-1, 1, -1, 1, 10, 20, 100, 0.0);
  EXPECT_EQ(area.px(-1.0), 10);
  EXPECT_EQ(area.px(0.999), 109);
  EXPECT_EQ(area.py(-1.0), 119);
  EXPECT_EQ(area.py(0.999), 20);
  EXPECT_EQ(area.px(0.0), 60);
  // A line covers both ends; an ellipse passes through its four extreme points, not its centre.
  train::Canvas canvas(80, 80);
  const train::Rgb red{1.0f, 0.0f, 0.0f};
  canvas.line(5, 3, 17, 70, red);
  EXPECT_EQ(canvas.at(5, 3), red);
  EXPECT_EQ(canvas.at(17, 70), red);
  canvas.ellipse(40, 40, 5, 10, red);
  EXPECT_EQ(canvas.at(40, 50), red);
  EXPECT_EQ(canvas.at(40, 30), red);
  EXPECT_EQ(canvas.at(35, 40), red);
  EXPECT_EQ(canvas.at(45, 40), red);
  EXPECT_EQ(canvas.at(40, 40), train::kWhite);
}

// ------------------------------------------------------------------ the command line

#ifdef LATENT_CLI_PATH
std::pair<int, std::string> run_cli(const std::string& args) {
  test::CliRun run = test::run_latent(args);
  return {run.status, std::move(run.output)};
}

TEST(VaeCli, TrainSampleAndOps) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("latent-vae-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  write_fashion_mnist_like((dir / "data").string(), blob_images(64, 1), blob_images(24, 2));
  const std::string common = "--steps 4 --batch-size 16 --hidden-channels 4 --log-every 2 --quiet "
                             "--data-dir " + (dir / "data").string();
  auto [status, output] =
      run_cli("train --model vae --latent flat --latent-dim 2 --beta 2 --kl-warmup 2 " + common +
              " --out " + (dir / "vae").string());
  ASSERT_EQ(status, 0) << output;
  for (const char* name : {"samples.png", "interpolation.png", "latent_scatter.png",
                           "reconstructions.png", "checkpoint.safetensors"})
    EXPECT_TRUE(fs::exists(dir / "vae" / name)) << name;
  std::ifstream metrics(dir / "vae" / "metrics.jsonl");
  std::stringstream text;
  text << metrics.rdbuf();
  for (const char* key : {"\"recon\"", "\"kl\"", "\"neg_elbo_nats\"", "\"beta\"", "\"active_units\"",
                          "\"test_neg_elbo_nats\"", "\"test_active_units\"", "\"test_kl_nats\""})
    EXPECT_NE(text.str().find(key), std::string::npos) << key;
  // Resuming from a periodic checkpoint ends bit-identical: ε of step s is keyed (seed, s).
  std::tie(status, output) = run_cli("train --model vae --checkpoint-every 2 " + common +
                                     " --out " + (dir / "full").string());
  ASSERT_EQ(status, 0) << output;
  std::tie(status, output) = run_cli("train --resume " + (dir / "full" / "checkpoint-2.safetensors").string() +
                                     " --steps 4 --quiet --out " + (dir / "resumed").string());
  ASSERT_EQ(status, 0) << output;
  const SafetensorsFile full = load_safetensors((dir / "full" / "checkpoint.safetensors").string());
  const SafetensorsFile resumed = load_safetensors((dir / "resumed" / "checkpoint.safetensors").string());
  ASSERT_EQ(full.names(), resumed.names());
  for (const auto& [name, tensor] : full.tensors)
    EXPECT_TRUE(test::identical(resumed.at(name), tensor)) << name;

  std::tie(status, output) =
      run_cli("sample --checkpoint " + (dir / "vae" / "checkpoint.safetensors").string() +
              " -n 8 -o " + (dir / "s.png").string());
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(fs::exists(dir / "s.png"));
  // The spatial latent on the cuda backend (cpu in an nvcc build without a GPU), Bernoulli.
  const std::string device = test::has_cuda() ? "cuda" : "cpu";
  std::tie(status, output) = run_cli("train --model vae --loss bce --device " + device + " " + common +
                                     " --out " + (dir / "vae-cuda").string());
  EXPECT_EQ(status, 0) << output;
  EXPECT_FALSE(fs::exists(dir / "vae-cuda" / "latent_scatter.png"));  // 98 dims: no plane

  // latent op reparam / kl on .npy files.
  const Tensor mu = from_vector<float>({0.5f, -1.0f, 0.0f, 2.0f}, {2, 2});
  const Tensor logvar = from_vector<float>({0.0f, 1.0f, -1.0f, 0.5f}, {2, 2});
  save_npy((dir / "mu.npy").string(), mu);
  save_npy((dir / "logvar.npy").string(), logvar);
  const std::string files = (dir / "mu.npy").string() + " " + (dir / "logvar.npy").string();
  std::tie(status, output) = run_cli("op kl " + files + " -o " + (dir / "kl.npy").string());
  ASSERT_EQ(status, 0) << output;
  EXPECT_TRUE(all_close(load_npy((dir / "kl.npy").string()), values_of(gaussian_kl(mu, logvar)),
                        1e-7, 1e-7));
  std::tie(status, output) = run_cli("op reparam " + files + " --seed 3 --offset 4 --device " + device + " -o " +
                                     (dir / "z.npy").string() + " --kl " + (dir / "kl2.npy").string());
  ASSERT_EQ(status, 0) << output;
  EXPECT_TRUE(all_close(load_npy((dir / "z.npy").string()),
                        values_of(reparameterize(mu, logvar, PhiloxKey{3, 4})), 1e-6, 1e-6));
  std::tie(status, output) = run_cli("op kl " + (dir / "mu.npy").string() + " " +
                                     (dir / "kl.npy").string() + " -o " + (dir / "x.npy").string());
  EXPECT_NE(status, 0);
  EXPECT_NE(output.find("same shape"), std::string::npos) << output;
  fs::remove_all(dir);
}
#endif

}  // namespace
}  // namespace latent
