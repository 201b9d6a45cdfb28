// Softmax cross-entropy (cross_entropy_rows, cross_entropy): gradients against central
// differences in float64; the loss on every device against a brute-force long-double
// log Σ exp at odd sizes; extreme logits (±1e4 spreads, rows shifted to ±1e4, one huge
// logit), rows of equal logits (loss = log K), non-finite rows (NaN), repeatability, and bad
// input. The kernel cases run through the op harness (tests/op_harness.h) on every device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "latent/cross_entropy.h"
#include "latent/latent.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::check_op;
using test::devices;
using test::Expected;
using test::identical;
using test::OpCase;
using test::Tensors;
using test::values_of;

// Random targets in [0, K), int32 of the given shape.
Tensor random_targets(const Shape& shape, std::int64_t K, Generator& gen) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(shape_numel(shape)));
  for (auto& v : t) v = static_cast<std::int32_t>(gen.next_int(K));
  return from_vector(t, shape);
}

// The loss of each row in long double, from the logits as given (after their rounding to
// the dtype), with the max subtracted; and the error the kernels may make on it: a few
// roundings of the loss itself, of m − x_t, and of a sum of K terms in [0, 1] split over 32
// lanes (log s has absolute error about the relative error of s).
Expected reference_losses(const Tensor& logits, const Tensor& targets, const Shape& shape) {
  const std::vector<double> x = values_of(logits), t = values_of(targets);
  const std::int64_t K = logits.size(-1), rows = static_cast<std::int64_t>(t.size());
  const double u = test::unit_roundoff(logits.dtype());
  Expected e{std::vector<double>(rows), std::vector<double>(rows), shape, logits.dtype()};
  for (std::int64_t r = 0; r < rows; ++r) {
    long double m = -std::numeric_limits<long double>::infinity();
    for (std::int64_t k = 0; k < K; ++k) m = std::max<long double>(m, x[r * K + k]);
    long double s = 0;
    for (std::int64_t k = 0; k < K; ++k) s += std::exp(static_cast<long double>(x[r * K + k]) - m);
    const long double target = x[r * K + static_cast<std::int64_t>(t[r])];
    const long double loss = (m - target) + std::log(s);
    e.values[r] = static_cast<double>(loss);
    e.bound[r] = u * (4.0 * std::abs(e.values[r]) + 2.0 * static_cast<double>(m - target) +
                      2.0 * (static_cast<double>(K) / 32.0 + 16.0));
  }
  return e;
}

Shape leading_shape(const Tensor& logits) {
  return Shape(logits.shape().begin(), logits.shape().end() - 1);
}

// Gradients of the losses: softmax − one-hot times a weight of about 1 a row, compared with
// the cpu backend's (double precision throughout).
test::Tolerances gradient_tolerance() {
  return test::per_dtype(test::near(1e-7, 1e-5), test::near(1e-15, 1e-12));
}

// ------------------------------------------------------------------ gradients

TEST(CrossEntropyGradient, MatchesFiniteDifferences) {
  for (const Shape& shape : {Shape{5, 7}, Shape{2, 3, 4}, Shape{4, 1}, Shape{1, 33}, Shape{6}}) {
    const std::int64_t K = shape.back();
    const Shape lead(shape.begin(), shape.end() - 1);
    auto inputs = [shape, lead, K](Generator& g) {
      return Tensors{mul(randn(shape, g, DType::f64), 2.0), random_targets(lead, K, g)};
    };
    OpCase rows = test::gradient_case("cross_entropy_rows " + shape_str(shape), 3, inputs,
                                      [](const Tensors& in) { return cross_entropy_rows(in[0], in[1]); });
    rows.cost = cases::cross_entropy_forward(shape_numel(lead), K, DType::f64);
    EXPECT_TRUE(check_op(rows));
    OpCase mean = test::gradient_case("cross_entropy (mean) " + shape_str(shape), 4, inputs,
                                      [](const Tensors& in) { return cross_entropy(in[0], in[1]); });
    mean.cost = rows.cost;
    EXPECT_TRUE(check_op(mean));
  }
}

TEST(CrossEntropyGradient, IsSoftmaxMinusOneHot) {
  test::PoisonScope poison;
  const std::vector<double> x = {1.0, 2.0, 3.0, -1.0, 0.5, 0.5};
  const std::vector<std::int32_t> t = {2, 0};
  for (const Device device : devices()) {
    SCOPED_TRACE(device.str());
    Tensor logits = from_vector(x, {2, 3}).to(device);
    logits.requires_grad_();
    const Tensor loss = cross_entropy(logits, from_vector(t, {2}).to(device));
    loss.backward();
    const std::vector<double> g = values_of(logits.grad());
    for (int r = 0; r < 2; ++r) {
      double z = 0;
      for (int k = 0; k < 3; ++k) z += std::exp(x[r * 3 + k]);
      for (int k = 0; k < 3; ++k) {
        const double want = (std::exp(x[r * 3 + k]) / z - (k == t[r] ? 1.0 : 0.0)) / 2.0;
        EXPECT_NEAR(g[r * 3 + k], want, 1e-15) << "row " << r << " class " << k;
      }
    }
    EXPECT_EQ(loss.dim(), 0);
  }
}

// ------------------------------------------------------------------ the forward

// Every device against the long-double reference, and the gradients against cpu's.
OpCase loss_case(const std::string& name, std::uint64_t seed,
                 std::function<Tensors(Generator&)> inputs, bool gradients = true) {
  OpCase c;
  c.name = name;
  c.seed = seed;
  c.inputs = std::move(inputs);
  c.op = [](const Tensors& in) { return Tensors{cross_entropy_rows(in[0], in[1])}; };
  c.reference = [](const Tensors& in) {
    return std::vector<Expected>{reference_losses(in[0], in[1], leading_shape(in[0]))};
  };
  c.tolerance = test::per_dtype(test::near(0, 0), test::near(0, 0));  // the bounds only
  c.gradients = gradients;
  c.gradient_tolerance = gradient_tolerance();
  return c;
}

TEST(CrossEntropyForward, MatchesTheBruteForceReferenceOnOddSizes) {
  for (const std::int64_t rows : {1, 31, 33, 1000}) {
    for (const std::int64_t K : {1, 3, 31, 33, 512, 1000, 4097}) {
      for (const DType dtype : {DType::f32, DType::f64}) {
        if (rows == 1000 && K > 1000 && dtype == DType::f64) continue;  // keep the SIMT run short
        OpCase c = loss_case(
            "cross_entropy_rows [" + std::to_string(rows) + ", " + std::to_string(K) + "] " +
                dtype_name(dtype),
            rows * 7919 + K, [rows, K, dtype](Generator& g) {
              return Tensors{mul(randn({rows, K}, g, dtype), 3.0), random_targets({rows}, K, g)};
            });
        c.cost = cases::cross_entropy_forward(rows, K, dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
}

TEST(CrossEntropyForward, LeadingDimensionsViewsAndMisalignedRows) {
  // [batch, tokens, K], a transposed view of the logits, and rows one element past a 16-byte
  // boundary (the scalar path of a K that is a multiple of the vector width).
  OpCase lead = loss_case("cross_entropy_rows [3, 7, 64]", 5, [](Generator& g) {
    return Tensors{randn({3, 7, 64}, g), random_targets({3, 7}, 64, g)};
  });
  lead.cost = cases::cross_entropy_forward(21, 64, DType::f32);
  EXPECT_TRUE(check_op(lead));

  OpCase transposed = loss_case("cross_entropy_rows of a transposed view", 6, [](Generator& g) {
    return Tensors{randn({40, 9}, g, DType::f64), random_targets({9}, 40, g)};
  });
  transposed.op = [](const Tensors& in) { return Tensors{cross_entropy_rows(in[0].t(), in[1])}; };
  transposed.reference = [](const Tensors& in) {
    const Tensor x = in[0].t().contiguous();
    return std::vector<Expected>{reference_losses(x, in[1], {9})};
  };
  transposed.cost = cases::cross_entropy_forward(9, 40, DType::f64);
  EXPECT_TRUE(check_op(transposed));

  OpCase shifted = loss_case("cross_entropy_rows of rows past a 16-byte boundary", 7,
                             [](Generator& g) {
                               return Tensors{randn({33 * 64 + 1}, g), random_targets({33}, 64, g)};
                             });
  auto view = [](const Tensor& buffer) { return buffer.narrow(0, 1, 33 * 64).reshape({33, 64}); };
  shifted.op = [view](const Tensors& in) { return Tensors{cross_entropy_rows(view(in[0]), in[1])}; };
  shifted.reference = [view](const Tensors& in) {
    return std::vector<Expected>{reference_losses(view(in[0]).contiguous(), in[1], {33})};
  };
  shifted.cost = cases::cross_entropy_forward(33, 64, DType::f32);
  EXPECT_TRUE(check_op(shifted));
}

TEST(CrossEntropyForward, ExtremeLogitsGiveFiniteAccurateLosses) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const std::int64_t K : {3, 33, 512, 4097}) {
      const std::int64_t rows = 8;
      OpCase c = loss_case(
          std::string("cross_entropy_rows of extreme logits, K ") + std::to_string(K) + " " +
              dtype_name(dtype),
          K, [K, dtype](Generator& g) {
            std::vector<double> x = values_of(randn({rows, K}, g, DType::f64));
            const std::vector<double> spread = values_of(uniform({rows, K}, -1e4, 1e4, g, DType::f64));
            std::vector<std::int32_t> t(rows);
            for (std::int64_t r = 0; r < rows; ++r) t[r] = static_cast<std::int32_t>(g.next_int(K));
            for (std::int64_t k = 0; k < K; ++k) {
              x[0 * K + k] = spread[0 * K + k];           // a ±1e4 spread
              x[1 * K + k] = spread[1 * K + k];           // and its maximum as the target
              x[2 * K + k] += 1e4;                        // rows shifted to +1e4
              x[3 * K + k] -= 1e4;                        // and to −1e4
            }
            std::int64_t best = 0;
            for (std::int64_t k = 1; k < K; ++k) if (x[K + k] > x[K + best]) best = k;
            t[1] = static_cast<std::int32_t>(best);
            x[4 * K + K / 2] = 1e4;                       // one huge logit, the target
            t[4] = static_cast<std::int32_t>(K / 2);
            x[5 * K + K / 2] = 1e4;                       // one huge logit, not the target
            t[5] = static_cast<std::int32_t>((K / 2 + 1) % K);
            x[6 * K + K - 1] = 1e30;                      // a huge logit at the row's end
            t[6] = 0;
            x[7 * K + 0] = -1e30;                         // a hugely negative target
            t[7] = 0;
            return Tensors{from_vector(x, {rows, K}).to(dtype), from_vector(t, {rows})};
          });
      // The gradients of these rows are softmaxes of one-hot shape; the bounds check the
      // losses, the gradient run compares with cpu.
      c.cost = cases::cross_entropy_forward(rows, K, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(CrossEntropyForward, EqualLogitsGiveLogK) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const std::int64_t K : {1, 3, 33, 512, 4097}) {
      const std::vector<double> levels = {0.0, 7.5, -3e3, 1e4, -1e4};
      const std::int64_t rows = static_cast<std::int64_t>(levels.size());
      OpCase c;
      c.name = std::string("cross_entropy_rows of equal logits, K ") + std::to_string(K) + " " +
               dtype_name(dtype);
      c.inputs = [&](Generator& g) {
        std::vector<double> x(rows * K);
        for (std::int64_t r = 0; r < rows; ++r)
          for (std::int64_t k = 0; k < K; ++k) x[r * K + k] = levels[r];
        return Tensors{from_vector(x, {rows, K}).to(dtype), random_targets({rows}, K, g)};
      };
      c.op = [](const Tensors& in) { return Tensors{cross_entropy_rows(in[0], in[1])}; };
      c.reference = [&](const Tensors&) {
        // s = K exactly (every term is exp(0) = 1), m − x_t = 0: the loss is log K, rounded.
        return std::vector<Expected>{{std::vector<double>(rows, std::log(static_cast<double>(K)))}};
      };
      const double u = test::unit_roundoff(dtype);
      c.tolerance = test::every_dtype(test::near(0, 2 * u));
      c.cost = cases::cross_entropy_forward(rows, K, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(CrossEntropyForward, NonFiniteLogitsGiveNaNInTheirRowOnly) {
  const double inf = std::numeric_limits<double>::infinity();
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const std::int64_t K : {3, 64, 257}) {
      OpCase c;
      c.name = std::string("cross_entropy_rows with NaN and ±Inf, K ") + std::to_string(K) +
               " " + dtype_name(dtype);
      c.inputs = [&](Generator& g) {
        std::vector<double> x = values_of(randn({6, K}, g, DType::f64));
        x[0 * K + 1] = NAN;
        x[1 * K + K - 1] = inf;
        x[2 * K + 0] = -inf;  // first: the running max is still −∞
        x[3 * K + K - 2] = -inf;  // later: after a finite max
        for (std::int64_t k = 0; k < K; ++k) x[4 * K + k] = -inf;  // every logit −∞
        return Tensors{from_vector(x, {6, K}).to(dtype),
                       from_vector<std::int32_t>({0, 0, 1, 0, 0, 2}, {6})};
      };
      c.op = [](const Tensors& in) { return Tensors{cross_entropy_rows(in[0], in[1])}; };
      c.reference = [](const Tensors& in) {
        Expected e = reference_losses(in[0], in[1], {6});
        for (int r = 0; r < 5; ++r) e.values[r] = NAN, e.bound[r] = 0;
        return std::vector<Expected>{e};
      };
      c.tolerance = test::per_dtype(test::near(0, 0), test::near(0, 0));
      c.nonfinite_outputs = true;
      c.cost = cases::cross_entropy_forward(6, K, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(CrossEntropyForward, MeanIsTheMeanOfTheRows) {
  test::PoisonScope poison;
  Generator gen(9);
  const Tensor x = randn({4, 5, 33}, gen, DType::f64);
  const Tensor t = random_targets({4, 5}, 33, gen);
  for (const Device device : devices()) {
    const Tensor rows = cross_entropy_rows(x.to(device), t.to(device));
    const Tensor m = cross_entropy(x.to(device), t.to(device));
    EXPECT_EQ(rows.shape(), (Shape{4, 5}));
    EXPECT_EQ(m.dim(), 0);
    double total = 0;
    for (double v : values_of(rows)) total += v;
    EXPECT_NEAR(m.item(), total / 20.0, 1e-14) << device.str();
  }
}

// ------------------------------------------------------------------ repeatability

TEST(CrossEntropyBackends, RunsAreBitwiseRepeatable) {
  test::PoisonScope poison;
  Generator gen(2);
  for (const DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = mul(randn({257, 1000}, gen, dtype), 4.0);
    const Tensor t = random_targets({257}, 1000, gen);
    for (const Device device : devices()) {
      SCOPED_TRACE(device.str() + " " + dtype_name(dtype));
      Tensors loss, grad;
      for (int run = 0; run < 2; ++run) {
        Tensor logits = x.to(device).detach();
        logits.requires_grad_();
        const Tensor l = cross_entropy(logits, t.to(device));
        l.backward();
        loss.push_back(l.detach());
        grad.push_back(logits.grad());
      }
      EXPECT_TRUE(identical(loss[0], loss[1]));
      EXPECT_TRUE(identical(grad[0], grad[1]));
    }
  }
}

// ------------------------------------------------------------------ bad input

TEST(CrossEntropyErrors, BadInputIsAClearError) {
  Generator gen(1);
  const Tensor x = randn({2, 3, 5}, gen);
  const Tensor t = random_targets({2, 3}, 5, gen);
  EXPECT_LATENT_ERROR(cross_entropy_rows(x, random_targets({3, 2}, 5, gen)), "cross_entropy",
                      "targets [3, 2]", "logits [2, 3, 5]", "[2, 3]");
  EXPECT_LATENT_ERROR(cross_entropy_rows(x, random_targets({6}, 5, gen)), "targets [6]");
  EXPECT_LATENT_ERROR(cross_entropy_rows(x, t.to(DType::f32)), "cross_entropy",
                      "targets must be int32", "float32");
  EXPECT_LATENT_ERROR(cross_entropy_rows(zeros({3, 0}), zeros({3}, DType::i32)),
                      "cross_entropy", "no classes (K = 0)");
  EXPECT_LATENT_ERROR(cross_entropy_rows(x.to(DType::i32), t), "float32 or float64 logits",
                      "int32");
  EXPECT_LATENT_ERROR(cross_entropy_rows(full({}, 1.0), zeros({}, DType::i32)), "class dimension");
  EXPECT_LATENT_ERROR(cross_entropy_rows(Tensor(), t), "logits are undefined");
  EXPECT_LATENT_ERROR(cross_entropy(zeros({0, 4}), zeros({0}, DType::i32)), "no rows");
  EXPECT_EQ(cross_entropy_rows(zeros({0, 4}), zeros({0}, DType::i32)).shape(), (Shape{0}));
  if (test::has_cuda()) {
    EXPECT_LATENT_ERROR(cross_entropy_rows(x.to(test::cuda_device()), t), "cross_entropy",
                        "logits are on cuda", "targets are on cpu");
  }
}

TEST(CrossEntropyErrors, TargetOutOfRangeNamesItsPositionAndValue) {
  Generator gen(1);
  for (const Device device : devices()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      SCOPED_TRACE(device.str() + " " + dtype_name(dtype));
      const Tensor x = randn({2, 3, 8}, gen, dtype).to(device);
      const Tensor high = from_vector<std::int32_t>({0, 7, 1, 2, 8, 9}, {2, 3}).to(device);
      EXPECT_LATENT_ERROR(cross_entropy_rows(x, high), "cross_entropy", "targets [2, 3]",
                          "hold 8 at position 4", "8 classes [0, 8)");
      const Tensor low = from_vector<std::int32_t>({0, -1, 1, 2, 3, 4}, {2, 3}).to(device);
      EXPECT_LATENT_ERROR(cross_entropy(x, low), "hold -1 at position 1");
    }
  }
}

}  // namespace
}  // namespace latent
