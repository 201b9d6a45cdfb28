// The differentiable ops of include/latent/ops.h on the cpu backend:
//   OpsForward*  results against plain loops written here in double precision;
//   OpsGrad*     autograd against central finite differences (test_util.h);
//   OpsErrors    bad input gives a latent::Error naming the op and the shapes.
//
// Tolerances. Inputs are exact in their dtype and the references are computed in double
// from those exact values, so:
//   +, −, ·, /, sqrt, abs, relu, clamp    correctly rounded: results must be bit-identical;
//   exp, log, tanh, sigmoid, silu, pow    a few ulps of the library's math functions;
//   sums and dot products of K terms      |error| <= K·u·Σ|terms| (u = unit roundoff),
//                                         the classical bound for recursive summation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
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
using test::away_from_zero;
using test::check_gradients;
using test::GradCheckOptions;
using test::uniform_tensor;
using test::values_of;

constexpr double kU32 = 1.0 / 16777216.0;          // 2^-24, float32 unit roundoff
constexpr double kU64 = 1.0 / 9007199254740992.0;  // 2^-53, float64 unit roundoff
double unit_roundoff(DType dtype) { return dtype == DType::f32 ? kU32 : kU64; }

// Rounds a double to the tensor dtype's precision (what a correctly rounded op returns).
double round_to(DType dtype, double v) {
  return dtype == DType::f32 ? static_cast<double>(static_cast<float>(v)) : v;
}

// ------------------------------------------------------------------ reference helpers

// Flat index into `in` (right-aligned NumPy broadcasting) of element `flat` of `out`.
std::int64_t broadcast_source(const Shape& out, const Shape& in, std::int64_t flat) {
  std::int64_t source = 0, stride = 1;
  for (std::int64_t d = static_cast<std::int64_t>(out.size()) - 1,
                    e = static_cast<std::int64_t>(in.size()) - 1;
       d >= 0; --d, --e) {
    const std::int64_t i = flat % out[d];
    flat /= out[d];
    if (e >= 0) {
      if (in[e] != 1) source += i * stride;
      stride *= in[e];
    }
  }
  return source;
}

// Sums of x over `dims` (empty: all), with keepdim; also the sums of |x| for error bounds.
struct Reduced {
  Shape shape;
  std::vector<double> sum, abs_sum;
  std::int64_t count = 1;  // elements per output
};

Reduced reduce_ref(const std::vector<double>& x, const Shape& shape,
                   std::vector<std::int64_t> dims, bool keepdim) {
  const std::int64_t rank = static_cast<std::int64_t>(shape.size());
  std::vector<bool> reduced(rank, dims.empty());
  for (auto d : dims) reduced[d < 0 ? d + rank : d] = true;
  Reduced r;
  Shape kept;
  for (std::int64_t d = 0; d < rank; ++d) {
    kept.push_back(reduced[d] ? 1 : shape[d]);
    if (reduced[d]) r.count *= shape[d];
    if (!reduced[d] || keepdim) r.shape.push_back(reduced[d] ? 1 : shape[d]);
  }
  r.sum.assign(shape_numel(kept), 0.0);
  r.abs_sum.assign(shape_numel(kept), 0.0);
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(x.size()); ++i) {
    // The output index is the input index with reduced coordinates set to 0.
    std::int64_t rest = i, out = 0, stride = 1;
    for (std::int64_t d = rank - 1; d >= 0; --d) {
      const std::int64_t c = rest % shape[d];
      rest /= shape[d];
      if (!reduced[d]) out += c * stride;
      stride *= kept[d];
    }
    r.sum[out] += x[i];
    r.abs_sum[out] += std::abs(x[i]);
  }
  return r;
}

// Checks |actual − expected| <= allowed element by element.
::testing::AssertionResult within(const std::vector<double>& actual,
                                  const std::vector<double>& expected,
                                  const std::vector<double>& allowed) {
  if (actual.size() != expected.size()) {
    return ::testing::AssertionFailure()
           << "sizes differ: " << actual.size() << " vs " << expected.size();
  }
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double diff = std::abs(actual[i] - expected[i]);
    if (!(diff <= allowed[i])) {
      return ::testing::AssertionFailure()
             << "element " << i << ": actual " << actual[i] << ", expected " << expected[i]
             << ", |diff| " << diff << " > allowed " << allowed[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// ------------------------------------------------------------------ direct references

struct Dense {
  std::vector<double> values, bound;  // bound: Σ|terms| per output, for error bounds
};

// C[b] = A[b] · B[b], A [batch, M, K], B [batch, K, N].
Dense matmul_ref(const std::vector<double>& a, const std::vector<double>& b,
                 std::int64_t batch, std::int64_t m, std::int64_t k, std::int64_t n) {
  Dense c{std::vector<double>(batch * m * n, 0.0), std::vector<double>(batch * m * n, 0.0)};
  for (std::int64_t p = 0; p < batch; ++p)
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t q = 0; q < k; ++q) {
          const double t = a[(p * m + i) * k + q] * b[(p * k + q) * n + j];
          c.values[(p * m + i) * n + j] += t;
          c.bound[(p * m + i) * n + j] += std::abs(t);
        }
  return c;
}

struct ConvCase {
  std::int64_t n, c, h, w, oc, kh, kw, stride, padding, output_padding;
  bool bias;
};

std::string describe(const ConvCase& k) {
  return "N" + std::to_string(k.n) + " C" + std::to_string(k.c) + " H" + std::to_string(k.h) +
         " W" + std::to_string(k.w) + " OC" + std::to_string(k.oc) + " K" +
         std::to_string(k.kh) + "x" + std::to_string(k.kw) + " s" + std::to_string(k.stride) +
         " p" + std::to_string(k.padding) + " op" + std::to_string(k.output_padding) +
         (k.bias ? " bias" : "");
}

// The direct seven-loop convolution: y[n, o, i, j] = b[o] + Σ x[n, c, i·s − p + u, j·s − p + v]
// · w[o, c, u, v] over taps inside the image.
Dense conv2d_ref(const ConvCase& k, const std::vector<double>& x, const std::vector<double>& w,
                 const std::vector<double>& b) {
  const std::int64_t oh = (k.h + 2 * k.padding - k.kh) / k.stride + 1;
  const std::int64_t ow = (k.w + 2 * k.padding - k.kw) / k.stride + 1;
  Dense y{std::vector<double>(k.n * k.oc * oh * ow), std::vector<double>(k.n * k.oc * oh * ow)};
  for (std::int64_t n = 0; n < k.n; ++n)
    for (std::int64_t o = 0; o < k.oc; ++o)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j) {
          double acc = k.bias ? b[o] : 0.0, bound = std::abs(acc);
          for (std::int64_t c = 0; c < k.c; ++c)
            for (std::int64_t u = 0; u < k.kh; ++u)
              for (std::int64_t v = 0; v < k.kw; ++v) {
                const std::int64_t ih = i * k.stride - k.padding + u;
                const std::int64_t iw = j * k.stride - k.padding + v;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                const double t = x[((n * k.c + c) * k.h + ih) * k.w + iw] *
                                 w[((o * k.c + c) * k.kh + u) * k.kw + v];
                acc += t;
                bound += std::abs(t);
              }
          y.values[((n * k.oc + o) * oh + i) * ow + j] = acc;
          y.bound[((n * k.oc + o) * oh + i) * ow + j] = bound;
        }
  return y;
}

// The transposed convolution by its scatter definition: every input pixel x[n, c, i, j]
// adds x · w[c, o, u, v] to y[n, o, i·s − p + u, j·s − p + v]; weight is [C, OC, KH, KW].
Dense conv_transpose2d_ref(const ConvCase& k, const std::vector<double>& x,
                           const std::vector<double>& w, const std::vector<double>& b) {
  const std::int64_t oh = (k.h - 1) * k.stride - 2 * k.padding + k.kh + k.output_padding;
  const std::int64_t ow = (k.w - 1) * k.stride - 2 * k.padding + k.kw + k.output_padding;
  Dense y{std::vector<double>(k.n * k.oc * oh * ow, 0.0),
          std::vector<double>(k.n * k.oc * oh * ow, 0.0)};
  for (std::int64_t n = 0; n < k.n; ++n)
    for (std::int64_t o = 0; o < k.oc; ++o)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j) {
          const double bias = k.bias ? b[o] : 0.0;
          y.values[((n * k.oc + o) * oh + i) * ow + j] = bias;
          y.bound[((n * k.oc + o) * oh + i) * ow + j] = std::abs(bias);
        }
  for (std::int64_t n = 0; n < k.n; ++n)
    for (std::int64_t c = 0; c < k.c; ++c)
      for (std::int64_t i = 0; i < k.h; ++i)
        for (std::int64_t j = 0; j < k.w; ++j)
          for (std::int64_t o = 0; o < k.oc; ++o)
            for (std::int64_t u = 0; u < k.kh; ++u)
              for (std::int64_t v = 0; v < k.kw; ++v) {
                const std::int64_t yi = i * k.stride - k.padding + u;
                const std::int64_t yj = j * k.stride - k.padding + v;
                if (yi < 0 || yi >= oh || yj < 0 || yj >= ow) continue;
                const double t = x[((n * k.c + c) * k.h + i) * k.w + j] *
                                 w[((c * k.oc + o) * k.kh + u) * k.kw + v];
                y.values[((n * k.oc + o) * oh + yi) * ow + yj] += t;
                y.bound[((n * k.oc + o) * oh + yi) * ow + yj] += std::abs(t);
              }
  return y;
}

// Allowed error of a computed sum of `terms` products whose absolute values add up to bound.
std::vector<double> sum_error_bound(const std::vector<double>& bound, std::int64_t terms,
                                    double u) {
  std::vector<double> allowed(bound.size());
  for (std::size_t i = 0; i < bound.size(); ++i)
    allowed[i] = static_cast<double>(terms + 2) * u * bound[i] + 1e-300;
  return allowed;
}

// ================================================================== forward: elementwise

enum class Bin { add, sub, mul, div };
const Bin kBinaryOps[] = {Bin::add, Bin::sub, Bin::mul, Bin::div};
const char* bin_name(Bin op) {
  switch (op) {
    case Bin::add: return "add";
    case Bin::sub: return "sub";
    case Bin::mul: return "mul";
    case Bin::div: return "div";
  }
  return "?";
}
Tensor apply(Bin op, const Tensor& a, const Tensor& b) {
  switch (op) {
    case Bin::add: return a + b;
    case Bin::sub: return a - b;
    case Bin::mul: return a * b;
    case Bin::div: return a / b;
  }
  return Tensor();
}
double apply(Bin op, double a, double b) {
  switch (op) {
    case Bin::add: return a + b;
    case Bin::sub: return a - b;
    case Bin::mul: return a * b;
    case Bin::div: return a / b;
  }
  return 0;
}

struct ShapePair {
  Shape a, b;
};
const std::vector<ShapePair> kBroadcastCases = {
    {{3, 4}, {3, 4}},        // same shape
    {{3, 4}, {}},            // scalar-shaped right
    {{}, {3, 4}},            // scalar-shaped left
    {{3, 4}, {1}},           // one-element right
    {{1}, {2, 3}},           // one-element left
    {{2, 3, 4}, {3, 4}},     // leading-dim broadcast
    {{4}, {2, 3, 4}},        // leading dims on the left operand
    {{2, 3, 4}, {2, 1, 4}},  // middle-dim broadcast
    {{2, 1, 4}, {1, 3, 1}},  // both sides broadcast
    {{5, 1}, {1, 6}},        // outer product
    {{}, {}},                // two scalars
};

// Binary ops against a double loop: correctly rounded, so the results are bit-identical.
TEST(OpsForwardElementwise, BinaryBroadcastingMatchesLoopsExactly) {
  Generator gen(101);
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const ShapePair& sp : kBroadcastCases) {
      const Tensor a = uniform_tensor(sp.a, gen, -2, 2, dtype);
      const Tensor b = away_from_zero(sp.b, gen, 0.25, 2.0, dtype);
      const std::vector<double> av = values_of(a), bv = values_of(b);
      for (Bin op : kBinaryOps) {
        const Tensor out = apply(op, a, b);
        const Shape shape = out.shape();
        std::vector<double> expected(shape_numel(shape));
        for (std::int64_t i = 0; i < shape_numel(shape); ++i) {
          expected[i] = round_to(dtype, apply(op, av[broadcast_source(shape, sp.a, i)],
                                              bv[broadcast_source(shape, sp.b, i)]));
        }
        EXPECT_EQ(out.dtype(), dtype);
        EXPECT_TRUE(all_close(out, expected, 0, 0))
            << bin_name(op) << " " << shape_str(sp.a) << " " << shape_str(sp.b) << " "
            << dtype_name(dtype);
      }
    }
  }
  EXPECT_EQ(add(zeros({2, 1, 4}), zeros({1, 3, 1})).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(add(zeros({}), zeros({1})).shape(), (Shape{1}));
}

TEST(OpsForwardElementwise, NonContiguousOperands) {
  Generator gen(102);
  const Tensor base_a = uniform_tensor({5, 7}, gen);
  const Tensor base_b = away_from_zero({7, 9}, gen);
  const Tensor a = base_a.t();                      // [7, 5], strides [1, 7]
  const Tensor b = base_b.narrow(1, 2, 5);          // [7, 5], strides [9, 1], offset 2
  const Tensor c = base_b.narrow(1, 1, 1);          // [7, 1] column, broadcast over 5
  const std::vector<double> av = values_of(a), bv = values_of(b), cv = values_of(c);
  for (Bin op : kBinaryOps) {
    std::vector<double> expected(35), expected_c(35);
    for (int i = 0; i < 35; ++i) {
      expected[i] = apply(op, av[i], bv[i]);
      expected_c[i] = apply(op, av[i], cv[i / 5]);
    }
    EXPECT_TRUE(all_close(apply(op, a, b), expected, 0, 0)) << bin_name(op);
    EXPECT_TRUE(all_close(apply(op, a, c), expected_c, 0, 0)) << bin_name(op);
  }
}

// Sizes around the chunking and vector widths, and one above a million.
TEST(OpsForwardElementwise, OddSizes) {
  Generator gen(103);
  for (DType dtype : {DType::f32, DType::f64}) {
    for (std::int64_t n : {1, 31, 33, 1000003}) {
      const Tensor a = uniform_tensor({n}, gen, -3, 3, dtype);
      const Tensor b = away_from_zero({n}, gen, 0.5, 2, dtype);
      const std::vector<double> av = values_of(a), bv = values_of(b);
      std::vector<double> sum_ab(n), quotient(n), scaled(n), rsubbed(n), ex(n);
      const double scale = round_to(dtype, 0.7), shift = round_to(dtype, 2.5);
      for (std::int64_t i = 0; i < n; ++i) {
        sum_ab[i] = round_to(dtype, av[i] + bv[i]);
        quotient[i] = round_to(dtype, av[i] / bv[i]);
        scaled[i] = round_to(dtype, av[i] * scale);
        rsubbed[i] = round_to(dtype, shift - av[i]);
        ex[i] = std::exp(av[i]);
      }
      const std::string where = std::string(dtype_name(dtype)) + " n=" + std::to_string(n);
      EXPECT_TRUE(all_close(a + b, sum_ab, 0, 0)) << where;
      EXPECT_TRUE(all_close(a / b, quotient, 0, 0)) << where;
      EXPECT_TRUE(all_close(a * 0.7, scaled, 0, 0)) << where;
      EXPECT_TRUE(all_close(2.5 - a, rsubbed, 0, 0)) << where;
      EXPECT_TRUE(all_close(exp(a), ex, 4 * unit_roundoff(dtype))) << where;

      // Sum of everything: accumulated in double, one final rounding for float32.
      double total = 0, magnitude = 0;
      for (double v : av) {
        total += v;
        magnitude += std::abs(v);
      }
      const double allowed = (dtype == DType::f32 ? kU32 * std::abs(total) : 0.0) +
                             static_cast<double>(n) * kU64 * magnitude;
      EXPECT_NEAR(sum(a).item(), total, allowed) << where;
      EXPECT_NEAR(mean(a).item(), total / static_cast<double>(n),
                  allowed / static_cast<double>(n) + 2 * unit_roundoff(dtype) *
                                                         std::abs(total / n))
          << where;
    }
  }
}

// Sizes above the cpu backend's parallel threshold, through each of its loop shapes: a
// broadcast over rows, a broadcast along a middle dimension, a strided operand, and
// reductions to one value, to rows and to columns.
TEST(OpsForwardElementwise, LargeBroadcastsAndReductions) {
  Generator gen(105);
  const std::int64_t rows = 1001, cols = 1003;
  const Tensor a = uniform_tensor({rows, cols}, gen);
  const Tensor row = uniform_tensor({cols}, gen), col = uniform_tensor({rows, 1}, gen);
  const std::vector<double> av = values_of(a), rv = values_of(row), cv = values_of(col);
  std::vector<double> plus_row(av.size()), times_col(av.size());
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      plus_row[i * cols + j] = av[i * cols + j] + rv[j];
      times_col[i * cols + j] = av[i * cols + j] * cv[i];
    }
  EXPECT_TRUE(all_close(a + row, plus_row, 0, 0));
  EXPECT_TRUE(all_close(a * col, times_col, 0, 0));
  const Tensor middle = uniform_tensor({7, 1, 150001}, gen);  // broadcast over dim 1
  const Tensor other = uniform_tensor({1, 3, 150001}, gen);
  const std::vector<double> mv = values_of(middle), ov = values_of(other);
  std::vector<double> outer(7 * 3 * 150001);
  for (std::int64_t i = 0; i < 7; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      for (std::int64_t k = 0; k < 150001; ++k)
        outer[(i * 3 + j) * 150001 + k] = mv[i * 150001 + k] - ov[j * 150001 + k];
  EXPECT_TRUE(all_close(middle - other, outer, 0, 0));

  // Transposed operand: a.t() + a.t() walks a with stride `cols`.
  const Tensor at = a.t();
  std::vector<double> doubled(av.size());
  for (std::int64_t j = 0; j < cols; ++j)
    for (std::int64_t i = 0; i < rows; ++i) doubled[j * rows + i] = 2 * av[i * cols + j];
  EXPECT_TRUE(all_close(at + at, doubled, 0, 0));

  for (const std::vector<std::int64_t>& dims :
       {std::vector<std::int64_t>{}, {0}, {1}, {0, 1}}) {
    const Reduced r = reduce_ref(av, {rows, cols}, dims, false);
    std::vector<double> allowed(r.sum.size());
    for (std::size_t i = 0; i < allowed.size(); ++i)
      allowed[i] = static_cast<double>(r.count) * kU64 * r.abs_sum[i];
    EXPECT_TRUE(within(values_of(sum(a, dims)), r.sum, allowed))
        << ::testing::PrintToString(dims);
    const Reduced rt = reduce_ref(doubled, {cols, rows}, dims, false);
    std::vector<double> allowed_t(rt.sum.size());
    for (std::size_t i = 0; i < allowed_t.size(); ++i)
      allowed_t[i] = static_cast<double>(rt.count) * kU64 * rt.abs_sum[i];
    EXPECT_TRUE(within(values_of(sum(at + at, dims)), rt.sum, allowed_t))
        << "transposed " << ::testing::PrintToString(dims);
  }
  // One long strided run: a column of a wide matrix.
  const Tensor wide = uniform_tensor({1000003, 2}, gen);
  const Tensor column = wide.narrow(1, 1, 1);
  const std::vector<double> colv = values_of(column);
  double total = 0, magnitude = 0;
  for (double v : colv) {
    total += v;
    magnitude += std::abs(v);
  }
  EXPECT_NEAR(sum(column).item(), total, 1000003 * kU64 * magnitude);
  // The same sum, run after run (fixed chunking, no float atomics).
  EXPECT_EQ(sum(column).item(), sum(column).item());
  EXPECT_EQ(sum(a, {0}).to_vector<double>(), sum(a, {0}).to_vector<double>());
}

// Unary ops against double formulas. Parameters are rounded to the dtype first, as the
// backend does.
struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double, DType)> ref;
  double low, high;
  double ulps;  // 0: correctly rounded (exact)
};

std::vector<UnaryCase> unary_cases() {
  auto p = [](double v, DType d) { return round_to(d, v); };
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x, DType) { return -x; }, -3, 3, 0},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x, DType) { return std::exp(x); }, -5, 5, 2},
      {"log", [](const Tensor& x) { return log(x); }, [](double x, DType) { return std::log(x); }, 0.01, 10, 2},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x, DType) { return std::sqrt(x); }, 0, 10, 0},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x, DType) { return std::abs(x); }, -3, 3, 0},
      {"square", [](const Tensor& x) { return square(x); }, [](double x, DType) { return x * x; }, -3, 3, 0},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x, DType) { return std::max(x, 0.0); }, -3, 3, 0},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); },
       [p](double x, DType d) { return x > 0 ? x : p(0.2, d) * x; }, -3, 3, 0},
      {"silu", [](const Tensor& x) { return silu(x); }, [](double x, DType) { return x / (1 + std::exp(-x)); }, -6, 6, 4},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x, DType) { return 1 / (1 + std::exp(-x)); }, -6, 6, 4},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x, DType) { return std::tanh(x); }, -4, 4, 2},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.75); },
       [](double x, DType) { return std::clamp(x, -0.5, 0.75); }, -2, 2, 0},
      {"pow 2.5", [](const Tensor& x) { return pow(x, 2.5); }, [](double x, DType) { return std::pow(x, 2.5); }, 0, 3, 2},
      {"pow -1", [](const Tensor& x) { return pow(x, -1.0); }, [](double x, DType) { return 1 / x; }, 0.1, 3, 1},
      {"add 0.1", [](const Tensor& x) { return add(x, 0.1); }, [p](double x, DType d) { return x + p(0.1, d); }, -2, 2, 0},
      {"sub 0.3", [](const Tensor& x) { return sub(x, 0.3); }, [p](double x, DType d) { return x - p(0.3, d); }, -2, 2, 0},
      {"mul -1.5", [](const Tensor& x) { return mul(x, -1.5); }, [](double x, DType) { return -1.5 * x; }, -2, 2, 0},
      {"div 4", [](const Tensor& x) { return div(x, 4.0); }, [](double x, DType) { return x / 4; }, -2, 2, 0},
      {"rsub 1", [](const Tensor& x) { return rsub(1.0, x); }, [](double x, DType) { return 1 - x; }, -2, 2, 0},
  };
}

TEST(OpsForwardElementwise, UnaryMatchesFormulas) {
  Generator gen(104);
  for (const UnaryCase& c : unary_cases()) {
    for (DType dtype : {DType::f32, DType::f64}) {
      const Tensor x = uniform_tensor({257}, gen, c.low, c.high, dtype);
      const std::vector<double> xv = values_of(x);
      std::vector<double> expected;
      for (double v : xv) expected.push_back(round_to(dtype, c.ref(v, dtype)));
      const Tensor y = c.op(x);
      EXPECT_EQ(y.dtype(), dtype);
      EXPECT_EQ(y.shape(), x.shape());
      EXPECT_TRUE(all_close(y, expected, c.ulps * 2 * unit_roundoff(dtype), 1e-300))
          << c.name << " " << dtype_name(dtype);
      // The same op on a strided view of the same values.
      const Tensor strided = concat({x.unsqueeze(1), x.unsqueeze(1)}, 1).narrow(1, 1, 1);
      EXPECT_TRUE(all_close(c.op(strided).reshape({-1}), expected, c.ulps * 2 * unit_roundoff(dtype), 1e-300))
          << c.name << " strided " << dtype_name(dtype);
    }
  }
}

TEST(OpsForwardElementwise, EmptyTensors) {
  const Tensor e = zeros({0, 3});
  EXPECT_EQ(exp(e).shape(), (Shape{0, 3}));
  EXPECT_EQ(add(e, ones({3})).shape(), (Shape{0, 3}));
  EXPECT_EQ(sum(e).item(), 0.0);
  EXPECT_EQ(sum(e, {0}).shape(), (Shape{3}));
  EXPECT_EQ(values_of(sum(e, {0})), std::vector<double>(3, 0.0));
}

// ================================================================== forward: reductions

TEST(OpsForwardReduce, SumAndMeanOverDims) {
  Generator gen(201);
  const Shape shape{5, 7, 9};
  const std::vector<std::vector<std::int64_t>> dim_sets = {
      {}, {0}, {1}, {2}, {-1}, {-3}, {0, 2}, {1, -1}, {0, 1, 2}, {2, 0}};
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = uniform_tensor(shape, gen, -1, 1, dtype);
    const std::vector<double> xv = values_of(x);
    for (const auto& dims : dim_sets) {
      for (bool keepdim : {false, true}) {
        const Reduced r = reduce_ref(xv, shape, dims, keepdim);
        std::vector<double> allowed(r.sum.size()), mean_ref(r.sum.size()),
            mean_allowed(r.sum.size());
        for (std::size_t i = 0; i < r.sum.size(); ++i) {
          allowed[i] = unit_roundoff(dtype) * std::abs(r.sum[i]) +
                       static_cast<double>(r.count) * kU64 * r.abs_sum[i];
          mean_ref[i] = r.sum[i] / static_cast<double>(r.count);
          mean_allowed[i] = allowed[i] / static_cast<double>(r.count) +
                            2 * unit_roundoff(dtype) * std::abs(mean_ref[i]);
        }
        const Tensor s = sum(x, dims, keepdim), m = mean(x, dims, keepdim);
        EXPECT_EQ(s.shape(), r.shape);
        EXPECT_EQ(m.shape(), r.shape);
        EXPECT_EQ(s.dtype(), dtype);
        EXPECT_TRUE(within(values_of(s), r.sum, allowed))
            << "sum over " << ::testing::PrintToString(dims) << " keepdim " << keepdim;
        EXPECT_TRUE(within(values_of(m), mean_ref, mean_allowed))
            << "mean over " << ::testing::PrintToString(dims) << " keepdim " << keepdim;
      }
    }
  }
  EXPECT_EQ(sum(zeros({2, 3})).shape(), Shape{});
  EXPECT_EQ(sum(zeros({2, 3}), {}, true).shape(), (Shape{1, 1}));
}

TEST(OpsForwardReduce, NonContiguousInput) {
  Generator gen(202);
  const Tensor base = uniform_tensor({6, 4, 5}, gen);
  const Tensor x = base.permute({2, 0, 1}).narrow(1, 1, 4);  // [5, 4, 4], strided
  const std::vector<double> xv = values_of(x);
  for (const std::vector<std::int64_t>& dims :
       {std::vector<std::int64_t>{}, {0}, {1}, {2}, {0, 2}}) {
    const Reduced r = reduce_ref(xv, x.shape(), dims, false);
    EXPECT_TRUE(all_close(sum(x, dims), r.sum, 1e-15, 1e-15))
        << ::testing::PrintToString(dims);
  }
}

TEST(OpsForwardReduce, SumToAndExpand) {
  Generator gen(203);
  const Tensor x = uniform_tensor({2, 3, 4}, gen);
  const std::vector<double> xv = values_of(x);
  EXPECT_TRUE(all_close(sum_to(x, {3, 4}), reduce_ref(xv, {2, 3, 4}, {0}, false).sum, 1e-15));
  EXPECT_TRUE(all_close(sum_to(x, {2, 1, 4}), reduce_ref(xv, {2, 3, 4}, {1}, true).sum, 1e-15));
  EXPECT_TRUE(all_close(sum_to(x, {1, 4}), reduce_ref(xv, {2, 3, 4}, {0, 1}, false).sum, 1e-15));
  EXPECT_NEAR(sum_to(x, {}).item(), reduce_ref(xv, {2, 3, 4}, {}, false).sum[0], 1e-14);
  EXPECT_EQ(sum_to(x, {1}).shape(), (Shape{1}));
  EXPECT_EQ(sum_to(x, {2, 3, 4}).storage(), x.storage());

  const Tensor c = uniform_tensor({3, 1}, gen);
  const Tensor e = expand(c, {2, 3, 4});
  std::vector<double> expected;
  const std::vector<double> cv = values_of(c);
  for (int i = 0; i < 24; ++i) expected.push_back(cv[broadcast_source({2, 3, 4}, {3, 1}, i)]);
  EXPECT_TRUE(all_close(e, expected, 0, 0));
  EXPECT_TRUE(all_close(expand(scalar_tensor(2.0, DType::f64), {2, 2}), {2, 2, 2, 2}, 0, 0));
}

TEST(OpsForwardReduce, Argmax) {
  const Tensor x = from_vector(std::vector<float>{1, 5, 5, 0,   //
                                                  7, 7, 7, 7,   //
                                                  -1, -3, -0.5f, -2},
                               {3, 4});
  const Tensor rows = argmax(x, 1);
  EXPECT_EQ(rows.dtype(), DType::i32);
  EXPECT_EQ(rows.to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 0, 2}));  // ties low
  EXPECT_EQ(argmax(x, 0).to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 1, 1, 1}));
  EXPECT_EQ(argmax(x, -2).to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 1, 1, 1}));
  EXPECT_EQ(argmax(x.t(), 0).to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, 0, 2}));
  EXPECT_EQ(argmax(zeros({2, 3, 4}), 1).shape(), (Shape{2, 4}));
}

TEST(OpsForwardReduce, AllcloseAndMaxAbsDiff) {
  const Tensor a = from_vector(std::vector<double>{1, 2, 3}, {3});
  const Tensor b = from_vector(std::vector<double>{1, 2.5, 3}, {3});
  EXPECT_EQ(max_abs_diff(a, b), 0.5);
  EXPECT_TRUE(allclose(a, a));
  EXPECT_FALSE(allclose(a, b));
  EXPECT_TRUE(allclose(a, b, 0.0, 0.5));
  EXPECT_FALSE(allclose(a, a.reshape({1, 3})));
  EXPECT_TRUE(allclose(a.to(DType::f32), a));
  const Tensor nan = from_vector(std::vector<double>{1, NAN, 3}, {3});
  EXPECT_FALSE(allclose(nan, nan));
  EXPECT_TRUE(std::isnan(max_abs_diff(a, nan)));
}

// ================================================================== forward: matmul, linear

struct MatmulCase {
  std::int64_t batch, m, k, n;  // batch 0: plain 2-D
};

TEST(OpsForwardMatmul, MatchesTripleLoop) {
  Generator gen(301);
  const MatmulCase cases[] = {{0, 1, 1, 1},  {0, 31, 33, 17}, {0, 64, 100, 65},
                              {0, 1, 7, 5},  {0, 5, 7, 1},    {3, 5, 7, 4},
                              {2, 1, 33, 31}, {1, 16, 16, 16}};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const MatmulCase& c : cases) {
      const std::int64_t batch = std::max<std::int64_t>(c.batch, 1);
      const Shape as = c.batch ? Shape{c.batch, c.m, c.k} : Shape{c.m, c.k};
      const Shape bs = c.batch ? Shape{c.batch, c.k, c.n} : Shape{c.k, c.n};
      const Tensor a = uniform_tensor(as, gen, -1, 1, dtype);
      const Tensor b = uniform_tensor(bs, gen, -1, 1, dtype);
      const Dense ref = matmul_ref(values_of(a), values_of(b), batch, c.m, c.k, c.n);
      const Tensor out = matmul(a, b);
      const Shape expected_shape = c.batch ? Shape{c.batch, c.m, c.n} : Shape{c.m, c.n};
      EXPECT_EQ(out.shape(), expected_shape);
      EXPECT_TRUE(within(values_of(out), ref.values,
                         sum_error_bound(ref.bound, c.k, unit_roundoff(dtype))))
          << dtype_name(dtype) << " " << shape_str(as) << " @ " << shape_str(bs);
    }
  }
}

TEST(OpsForwardMatmul, TransposedAndStridedViews) {
  Generator gen(302);
  const std::int64_t m = 6, k = 9, n = 5;
  const Tensor at = uniform_tensor({k, m}, gen);        // a = at.t()
  const Tensor bt = uniform_tensor({n, k}, gen);        // b = bt.t()
  const Tensor wide = uniform_tensor({m, k + 4}, gen);  // a = wide.narrow(1, 2, k): ld > k
  const Tensor a = at.t().contiguous(), b = bt.t().contiguous();
  const Dense ref = matmul_ref(values_of(a), values_of(b), 1, m, k, n);
  const std::vector<double> allowed = sum_error_bound(ref.bound, k, kU64);
  EXPECT_TRUE(within(values_of(matmul(at.t(), b)), ref.values, allowed));
  EXPECT_TRUE(within(values_of(matmul(a, bt.t())), ref.values, allowed));
  EXPECT_TRUE(within(values_of(matmul(at.t(), bt.t())), ref.values, allowed));
  const Tensor narrow_a = wide.narrow(1, 2, k);
  const Dense ref2 = matmul_ref(values_of(narrow_a), values_of(b), 1, m, k, n);
  EXPECT_TRUE(within(values_of(matmul(narrow_a, b)), ref2.values,
                     sum_error_bound(ref2.bound, k, kU64)));
  // A view that is neither row- nor column-major (every other column).
  const Tensor skip = uniform_tensor({m, 2 * k}, gen)
                          .reshape({m, k, 2})
                          .narrow(2, 0, 1)
                          .reshape({m, k});
  const Dense ref3 = matmul_ref(values_of(skip), values_of(b), 1, m, k, n);
  EXPECT_TRUE(within(values_of(matmul(skip, b)), ref3.values,
                     sum_error_bound(ref3.bound, k, kU64)));

  // One-row and one-column operands with strides GEMM must read as leading dimensions.
  const Tensor grid = uniform_tensor({4, 2 * k}, gen);
  const Tensor row = grid.narrow(0, 1, 1).reshape({1, k, 2}).narrow(2, 1, 1).reshape({1, k});
  const Tensor row_strided = grid.narrow(0, 2, 1).narrow(1, 3, k);  // [1, k], offset
  for (const Tensor& r : {row, row_strided, grid.t().narrow(1, 0, 1).t().narrow(1, 0, k)}) {
    const Dense ref5 = matmul_ref(values_of(r), values_of(b), 1, 1, k, n);
    EXPECT_TRUE(within(values_of(matmul(r, b)), ref5.values, sum_error_bound(ref5.bound, k, kU64)))
        << "row strides " << ::testing::PrintToString(r.strides());
  }
  const Tensor column = uniform_tensor({k, 3}, gen).narrow(1, 2, 1);  // [k, 1], stride 3
  const Tensor lhs = uniform_tensor({m, k}, gen);
  const Dense ref6 = matmul_ref(values_of(lhs), values_of(column), 1, m, k, 1);
  EXPECT_TRUE(within(values_of(matmul(lhs, column)), ref6.values,
                     sum_error_bound(ref6.bound, k, kU64)));
  const Tensor column_t = uniform_tensor({3, k}, gen).narrow(0, 1, 1).t();  // [k, 1], stride 1
  const Dense ref7 = matmul_ref(values_of(lhs), values_of(column_t), 1, m, k, 1);
  EXPECT_TRUE(within(values_of(matmul(lhs, column_t)), ref7.values,
                     sum_error_bound(ref7.bound, k, kU64)));

  // Batched: per-batch transposes and a batch dimension that is not outermost.
  const Tensor ab = uniform_tensor({3, k, m}, gen).transpose(1, 2);  // [3, m, k]
  const Tensor bb = uniform_tensor({k, 3, n}, gen).transpose(0, 1);  // [3, k, n]
  const Dense ref4 = matmul_ref(values_of(ab), values_of(bb), 3, m, k, n);
  EXPECT_TRUE(within(values_of(matmul(ab, bb)), ref4.values,
                     sum_error_bound(ref4.bound, k, kU64)));
}

TEST(OpsForwardMatmul, EmptyInnerDimensionGivesZeros) {
  const Tensor out = matmul(zeros({3, 0}, DType::f64), zeros({0, 2}, DType::f64));
  EXPECT_EQ(out.shape(), (Shape{3, 2}));
  EXPECT_EQ(values_of(out), std::vector<double>(6, 0.0));
  EXPECT_EQ(matmul(zeros({0, 4}), zeros({4, 2})).shape(), (Shape{0, 2}));
}

TEST(OpsForwardMatmul, LinearMatchesLoops) {
  Generator gen(303);
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Shape& xs : {Shape{5, 4}, Shape{2, 3, 4}, Shape{4}}) {
      const Tensor x = uniform_tensor(xs, gen, -1, 1, dtype);
      const Tensor w = uniform_tensor({3, 4}, gen, -1, 1, dtype);
      const Tensor b = uniform_tensor({3}, gen, -1, 1, dtype);
      const std::vector<double> xv = values_of(x), wv = values_of(w), bv = values_of(b);
      const std::int64_t rows = x.numel() / 4;
      std::vector<double> expected, expected_bias, bound, bound_bias;
      for (std::int64_t r = 0; r < rows; ++r)
        for (int o = 0; o < 3; ++o) {
          double acc = 0, mag = 0;
          for (int i = 0; i < 4; ++i) {
            acc += xv[r * 4 + i] * wv[o * 4 + i];
            mag += std::abs(xv[r * 4 + i] * wv[o * 4 + i]);
          }
          expected.push_back(acc);
          bound.push_back(mag);
          expected_bias.push_back(acc + bv[o]);
          bound_bias.push_back(mag + std::abs(bv[o]));
        }
      Shape out_shape = xs;
      out_shape.back() = 3;
      const Tensor y = linear(x, w), yb = linear(x, w, b);
      EXPECT_EQ(y.shape(), out_shape);
      EXPECT_EQ(yb.shape(), out_shape);
      const double u = unit_roundoff(dtype);
      EXPECT_TRUE(within(values_of(y), expected, sum_error_bound(bound, 4, u)));
      EXPECT_TRUE(within(values_of(yb), expected_bias, sum_error_bound(bound_bias, 5, u)));
    }
  }
}

// ================================================================== forward: convolution

const std::vector<ConvCase> kConvCases = {
    // n  c  h  w  oc kh kw s  p  op bias
    {2, 3, 7, 6, 4, 3, 3, 1, 0, 0, false},
    {2, 3, 7, 6, 4, 3, 3, 1, 1, 0, true},
    {1, 2, 8, 8, 3, 3, 3, 2, 1, 1, true},
    {2, 2, 9, 5, 3, 2, 3, 2, 0, 1, false},  // non-square kernel and image
    {3, 1, 5, 7, 2, 1, 1, 1, 0, 0, true},   // 1×1 kernel
    {1, 4, 6, 6, 2, 4, 4, 2, 1, 0, true},
    {2, 2, 7, 4, 3, 3, 2, 3, 2, 2, true},   // stride 3, padding 2
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, false},  // single pixel
    {1, 3, 5, 5, 2, 5, 5, 1, 0, 0, true},   // kernel covers the image
};

TEST(OpsForwardConv, Conv2dMatchesDirectLoops) {
  Generator gen(401);
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const ConvCase& k : kConvCases) {
      const Tensor x = uniform_tensor({k.n, k.c, k.h, k.w}, gen, -1, 1, dtype);
      const Tensor w = uniform_tensor({k.oc, k.c, k.kh, k.kw}, gen, -1, 1, dtype);
      const Tensor b = uniform_tensor({k.oc}, gen, -1, 1, dtype);
      const Dense ref = conv2d_ref(k, values_of(x), values_of(w), values_of(b));
      const Tensor y = conv2d(x, w, k.bias ? b : Tensor(), {k.stride, k.padding, 0});
      const std::int64_t oh = (k.h + 2 * k.padding - k.kh) / k.stride + 1;
      const std::int64_t ow = (k.w + 2 * k.padding - k.kw) / k.stride + 1;
      EXPECT_EQ(y.shape(), (Shape{k.n, k.oc, oh, ow})) << describe(k);
      EXPECT_TRUE(within(values_of(y), ref.values,
                         sum_error_bound(ref.bound, k.c * k.kh * k.kw + 1,
                                         unit_roundoff(dtype))))
          << describe(k) << " " << dtype_name(dtype);
    }
  }
}

TEST(OpsForwardConv, Conv2dNonContiguousInput) {
  Generator gen(402);
  const ConvCase k{2, 3, 6, 5, 2, 3, 3, 1, 1, 0, false};
  const Tensor x = uniform_tensor({k.c, k.n, k.w, k.h}, gen).permute({1, 0, 3, 2});
  const Tensor w = uniform_tensor({k.oc, k.c, k.kw, k.kh}, gen).transpose(2, 3);
  const Dense ref = conv2d_ref(k, values_of(x), values_of(w), {});
  EXPECT_TRUE(within(values_of(conv2d(x, w, Tensor(), {1, 1, 0})), ref.values,
                     sum_error_bound(ref.bound, 27, kU64)));
}

TEST(OpsForwardConv, ConvTranspose2dMatchesScatterDefinition) {
  Generator gen(403);
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const ConvCase& k : kConvCases) {
      // Padding must leave a non-empty output: (h − 1)·s − 2p + kh + op > 0.
      const Tensor x = uniform_tensor({k.n, k.c, k.h, k.w}, gen, -1, 1, dtype);
      const Tensor w = uniform_tensor({k.c, k.oc, k.kh, k.kw}, gen, -1, 1, dtype);
      const Tensor b = uniform_tensor({k.oc}, gen, -1, 1, dtype);
      const Conv2dOptions o{k.stride, k.padding, k.output_padding};
      const Dense ref = conv_transpose2d_ref(k, values_of(x), values_of(w), values_of(b));
      const Tensor y = conv_transpose2d(x, w, k.bias ? b : Tensor(), o);
      const std::int64_t oh = (k.h - 1) * k.stride - 2 * k.padding + k.kh + k.output_padding;
      const std::int64_t ow = (k.w - 1) * k.stride - 2 * k.padding + k.kw + k.output_padding;
      EXPECT_EQ(y.shape(), (Shape{k.n, k.oc, oh, ow})) << describe(k);
      EXPECT_TRUE(within(values_of(y), ref.values,
                         sum_error_bound(ref.bound, k.c * k.kh * k.kw + 1,
                                         unit_roundoff(dtype))))
          << describe(k) << " " << dtype_name(dtype);
    }
  }
}

// conv_transpose2d is the adjoint of conv2d: <conv(x), y> = <x, conv_transpose(y)>.
TEST(OpsForwardConv, TransposeIsTheAdjoint) {
  Generator gen(404);
  const ConvCase k{2, 3, 8, 10, 4, 3, 3, 2, 1, 0, false};
  const Tensor x = uniform_tensor({k.n, k.c, k.h, k.w}, gen);
  const Tensor w = uniform_tensor({k.oc, k.c, k.kh, k.kw}, gen);
  const Tensor cx = conv2d(x, w, Tensor(), {k.stride, k.padding, 0});
  const Tensor y = uniform_tensor(cx.shape(), gen);
  // conv2d drops the last row and column here ((8 + 2 − 3) and (10 + 2 − 3) are odd);
  // output_padding restores them.
  const Tensor ty = conv_transpose2d(y, w, Tensor(), {k.stride, k.padding, 1});
  ASSERT_EQ(ty.shape(), x.shape());
  EXPECT_NEAR(sum(mul(cx, y)).item(), sum(mul(x, ty)).item(), 1e-12);
}

// ================================================================== forward: losses

TEST(OpsForwardLoss, MseMatchesFormula) {
  Generator gen(501);
  const Tensor p = uniform_tensor({4, 7}, gen), t = uniform_tensor({4, 7}, gen);
  const std::vector<double> pv = values_of(p), tv = values_of(t);
  double acc = 0;
  for (std::size_t i = 0; i < pv.size(); ++i) acc += (pv[i] - tv[i]) * (pv[i] - tv[i]);
  const Tensor loss = mse_loss(p, t);
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_NEAR(loss.item(), acc / 28, 1e-15);
  EXPECT_EQ(mse_loss(p, p).item(), 0.0);
}

double bce_ref(double x, double t) {
  const double s = 1 / (1 + std::exp(-x));
  return -t * std::log(s) - (1 - t) * std::log(1 - s);
}

TEST(OpsForwardLoss, BceWithLogitsMatchesFormula) {
  Generator gen(502);
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor x = uniform_tensor({3, 33}, gen, -4, 4, dtype);
    const Tensor t = uniform_tensor({3, 33}, gen, 0, 1, dtype);
    const std::vector<double> xv = values_of(x), tv = values_of(t);
    double acc = 0, scale = 0;
    for (std::size_t i = 0; i < xv.size(); ++i) {
      acc += bce_ref(xv[i], tv[i]);
      scale += std::abs(xv[i]) + 1;
    }
    const double n = static_cast<double>(xv.size());
    // Each term is a handful of roundings of numbers no larger than |x| + 1.
    EXPECT_NEAR(binary_cross_entropy_with_logits(x, t).item(), acc / n,
                8 * unit_roundoff(dtype) * scale / n)
        << dtype_name(dtype);
  }
}

TEST(OpsForwardLoss, BceWithLogitsIsStableForLargeLogits) {
  const std::vector<double> x{1000, -1000, 1000, -1000, 40, -40};
  const std::vector<double> t{1, 1, 0, 0, 1, 0};
  // Exact: max(x, 0) − x·t + log1p(exp(−|x|)).
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor loss = binary_cross_entropy_with_logits(from_vector(x, {6}).to(dtype),
                                                         from_vector(t, {6}).to(dtype));
    const double expected = (0 + 1000 + 1000 + 0 + 2 * std::log1p(std::exp(-40.0))) / 6;
    EXPECT_TRUE(std::isfinite(loss.item()));
    EXPECT_NEAR(loss.item(), expected, 4 * unit_roundoff(dtype) * expected);
  }
}

// ================================================================== forward: shape ops

TEST(OpsForwardShape, ConcatAlongEachDim) {
  Generator gen(601);
  const Tensor a = uniform_tensor({2, 3, 4}, gen), b = uniform_tensor({2, 1, 4}, gen),
               c = uniform_tensor({2, 2, 4}, gen);
  const Tensor out = concat({a, b, c}, 1);
  ASSERT_EQ(out.shape(), (Shape{2, 6, 4}));
  const std::vector<double> av = values_of(a), bv = values_of(b), cv = values_of(c),
                            ov = values_of(out);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 6; ++j)
      for (int k = 0; k < 4; ++k) {
        const double want = j < 3   ? av[(i * 3 + j) * 4 + k]
                            : j < 4 ? bv[(i * 1 + j - 3) * 4 + k]
                                    : cv[(i * 2 + j - 4) * 4 + k];
        ASSERT_EQ(ov[(i * 6 + j) * 4 + k], want);
      }
  const Tensor last = concat({a, a.narrow(2, 0, 1)}, -1);
  EXPECT_EQ(last.shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(values_of(last.narrow(2, 4, 1)), values_of(a.narrow(2, 0, 1)));
  EXPECT_EQ(values_of(concat({a}, 0)), av);
  EXPECT_EQ(concat({a, zeros({0, 3, 4}, DType::f64)}, 0).shape(), (Shape{2, 3, 4}));
}

// ================================================================== gradients

// The checker itself: a square recorded with a backward that is off by a relative 1e-5, or
// that forgets an input, must be rejected; the exact backward must pass.
Tensor square_with_backward(const Tensor& x, double scale, bool drop) {
  Tensor out;
  {
    NoGradGuard no_grad;
    out = mul(x, x);
  }
  const Tensor saved = x.detach();
  return record(out, "test_square", {x}, [saved, scale, drop](const Tensor& g) {
    return std::vector<Tensor>{drop ? Tensor() : mul(mul(g, saved), 2.0 * scale)};
  });
}

TEST(OpsGradChecker, RejectsWrongGradients) {
  Generator gen(700);
  const Tensor x = uniform_tensor({3, 4}, gen);
  EXPECT_TRUE(check_gradients(
      [](const auto& in) { return square_with_backward(in[0], 1.0, false); }, {x}, gen));
  EXPECT_FALSE(check_gradients(
      [](const auto& in) { return square_with_backward(in[0], 1.0 + 1e-5, false); }, {x}, gen));
  EXPECT_FALSE(check_gradients(
      [](const auto& in) { return square_with_backward(in[0], 1.0, true); }, {x}, gen));
  // A float32 output is refused rather than checked loosely.
  EXPECT_FALSE(check_gradients([](const auto& in) { return in[0].to(DType::f32); }, {x}, gen));
}

TEST(OpsGradElementwise, BinaryWithBroadcasting) {
  Generator gen(701);
  for (const ShapePair& sp : kBroadcastCases) {
    for (Bin op : kBinaryOps) {
      const Tensor a = uniform_tensor(sp.a, gen, -1.5, 1.5);
      const Tensor b = away_from_zero(sp.b, gen, 0.5, 1.5);
      EXPECT_TRUE(check_gradients([op](const auto& in) { return apply(op, in[0], in[1]); },
                                  {a, b}, gen))
          << bin_name(op) << " " << shape_str(sp.a) << " " << shape_str(sp.b);
    }
  }
}

TEST(OpsGradElementwise, SameTensorAsBothOperands) {
  Generator gen(702);
  const Tensor a = away_from_zero({3, 2}, gen, 0.5, 1.5);
  for (Bin op : kBinaryOps) {
    EXPECT_TRUE(check_gradients([op](const auto& in) { return apply(op, in[0], in[0]); }, {a},
                                gen))
        << bin_name(op);
  }
}

TEST(OpsGradElementwise, NonContiguousOperands) {
  Generator gen(703);
  const Tensor a = uniform_tensor({4, 3}, gen);
  const Tensor b = away_from_zero({3, 6}, gen, 0.5, 1.5);
  for (Bin op : kBinaryOps) {
    EXPECT_TRUE(check_gradients(
        [op](const auto& in) { return apply(op, in[0].t(), in[1].narrow(1, 1, 4)); }, {a, b},
        gen))
        << bin_name(op);
  }
}

TEST(OpsGradElementwise, ScalarOps) {
  Generator gen(704);
  const Tensor a = uniform_tensor({3, 5}, gen);
  const std::vector<std::pair<const char*, test::TensorFn>> ops = {
      {"add", [](const auto& in) { return add(in[0], 2.5); }},
      {"sub", [](const auto& in) { return sub(in[0], -1.25); }},
      {"mul", [](const auto& in) { return mul(in[0], -3.0); }},
      {"div", [](const auto& in) { return div(in[0], 0.3); }},
      {"rsub", [](const auto& in) { return rsub(2.0, in[0]); }},
      {"operators", [](const auto& in) { return 1.5 - (2.0 * in[0] + 1.0) / 4.0 * 3.0; }},
      {"neg", [](const auto& in) { return -in[0]; }},
  };
  for (const auto& [name, f] : ops) EXPECT_TRUE(check_gradients(f, {a}, gen)) << name;
}

TEST(OpsGradElementwise, Pow) {
  Generator gen(705);
  const Tensor positive = uniform_tensor({2, 7}, gen, 0.5, 2.0);
  for (double e : {2.0, 3.0, 0.5, -1.5, 1.7, 1.0, 0.0}) {
    EXPECT_TRUE(check_gradients([e](const auto& in) { return pow(in[0], e); }, {positive}, gen))
        << "exponent " << e;
  }
  // x^0 = 1 has derivative 0 everywhere, x = 0 included; x^1 has derivative 1 at 0.
  Tensor z = zeros({3}, DType::f64);
  z.requires_grad_();
  sum(pow(z, 0.0)).backward();
  EXPECT_EQ(values_of(z.grad()), std::vector<double>(3, 0.0));
  z.zero_grad();
  sum(pow(z, 1.0)).backward();
  EXPECT_EQ(values_of(z.grad()), std::vector<double>(3, 1.0));
  const Tensor any_sign = away_from_zero({9}, gen, 0.3, 1.5);
  for (double e : {2.0, 3.0, -2.0}) {
    EXPECT_TRUE(check_gradients([e](const auto& in) { return pow(in[0], e); }, {any_sign}, gen))
        << "exponent " << e << " on both signs";
  }
}

TEST(OpsGradElementwise, Unary) {
  Generator gen(706);
  const Tensor any = uniform_tensor({3, 11}, gen, -3, 3);
  const Tensor positive = uniform_tensor({3, 11}, gen, 0.3, 3);
  const Tensor off_zero = away_from_zero({3, 11}, gen, 0.1, 2.0);
  // clamp to [−0.5, 0.75]: inputs below, inside and above, clear of both bounds.
  const Tensor off_bounds = test::from_intervals({3, 11}, gen, {{-2, -0.6}, {-0.4, 0.65}, {0.85, 2}});
  struct Case {
    const char* name;
    test::TensorFn f;
    Tensor input;
  };
  const std::vector<Case> cases = {
      {"neg", [](const auto& in) { return neg(in[0]); }, any},
      {"exp", [](const auto& in) { return exp(in[0]); }, any},
      {"log", [](const auto& in) { return log(in[0]); }, positive},
      {"sqrt", [](const auto& in) { return sqrt(in[0]); }, positive},
      {"abs", [](const auto& in) { return abs(in[0]); }, off_zero},
      {"square", [](const auto& in) { return square(in[0]); }, any},
      {"relu", [](const auto& in) { return relu(in[0]); }, off_zero},
      {"leaky_relu", [](const auto& in) { return leaky_relu(in[0], 0.1); }, off_zero},
      {"leaky_relu default", [](const auto& in) { return leaky_relu(in[0]); }, off_zero},
      {"silu", [](const auto& in) { return silu(in[0]); }, any},
      {"sigmoid", [](const auto& in) { return sigmoid(in[0]); }, any},
      {"tanh", [](const auto& in) { return tanh(in[0]); }, any},
      {"clamp", [](const auto& in) { return clamp(in[0], -0.5, 0.75); }, off_bounds},
      {"exp of transposed", [](const auto& in) { return exp(in[0].t()); }, any},
      {"tanh of narrowed", [](const auto& in) { return tanh(in[0].narrow(1, 2, 5)); }, any},
  };
  for (const Case& c : cases) EXPECT_TRUE(check_gradients(c.f, {c.input}, gen)) << c.name;
}

TEST(OpsGradElementwise, ChainOfActivations) {
  Generator gen(707);
  const Tensor x = uniform_tensor({4, 5}, gen, -2, 2);
  EXPECT_TRUE(check_gradients(
      [](const auto& in) {
        return mul(sigmoid(in[0]), tanh(add(silu(in[0]), exp(mul(in[0], -0.5)))));
      },
      {x}, gen));
}

TEST(OpsGradReduce, SumAndMean) {
  Generator gen(801);
  const Tensor x = uniform_tensor({2, 3, 4}, gen);
  const std::vector<std::vector<std::int64_t>> dim_sets = {{},    {0},     {1},     {2},
                                                           {-1},  {-2},    {0, 2},  {-1, 0},
                                                           {1, 2}, {0, 1, 2}};
  for (const auto& dims : dim_sets) {
    for (bool keepdim : {false, true}) {
      EXPECT_TRUE(check_gradients(
          [&](const auto& in) { return sum(in[0], dims, keepdim); }, {x}, gen))
          << "sum " << ::testing::PrintToString(dims) << " keepdim " << keepdim;
      EXPECT_TRUE(check_gradients(
          [&](const auto& in) { return mean(in[0], dims, keepdim); }, {x}, gen))
          << "mean " << ::testing::PrintToString(dims) << " keepdim " << keepdim;
    }
  }
  EXPECT_TRUE(check_gradients([](const auto& in) { return sum(in[0]); }, {x}, gen));
  EXPECT_TRUE(check_gradients([](const auto& in) { return mean(in[0]); }, {x}, gen));
  EXPECT_TRUE(check_gradients(
      [](const auto& in) { return sum(in[0].permute({2, 0, 1}), {1}); }, {x}, gen));
}

TEST(OpsGradReduce, SumToAndExpand) {
  Generator gen(802);
  const Tensor x = uniform_tensor({2, 3, 4}, gen);
  for (const Shape& target : {Shape{3, 4}, Shape{1, 4}, Shape{2, 1, 4}, Shape{2, 3, 1},
                              Shape{4}, Shape{1}, Shape{}, Shape{2, 3, 4}}) {
    EXPECT_TRUE(check_gradients([&](const auto& in) { return sum_to(in[0], target); }, {x}, gen))
        << "sum_to " << shape_str(target);
  }
  const std::vector<std::pair<Shape, Shape>> expansions = {
      {{3, 1}, {2, 3, 4}}, {{}, {2, 3}}, {{4}, {3, 4}}, {{1, 1}, {2, 5}}, {{2, 3}, {2, 3}}};
  for (const auto& [from, to] : expansions) {
    const Tensor small = uniform_tensor(from, gen);
    EXPECT_TRUE(check_gradients([&](const auto& in) { return expand(in[0], to); }, {small}, gen))
        << "expand " << shape_str(from) << " to " << shape_str(to);
  }
}

TEST(OpsGradMatmul, TwoDimensional) {
  Generator gen(901);
  const Tensor a = uniform_tensor({3, 4}, gen), b = uniform_tensor({4, 5}, gen);
  EXPECT_TRUE(check_gradients([](const auto& in) { return matmul(in[0], in[1]); }, {a, b}, gen));
  // Transposed-view inputs: the leaves are stored transposed.
  const Tensor at = uniform_tensor({4, 3}, gen), bt = uniform_tensor({5, 4}, gen);
  EXPECT_TRUE(
      check_gradients([](const auto& in) { return matmul(in[0].t(), in[1]); }, {at, b}, gen));
  EXPECT_TRUE(
      check_gradients([](const auto& in) { return matmul(in[0], in[1].t()); }, {a, bt}, gen));
  EXPECT_TRUE(check_gradients([](const auto& in) { return matmul(in[0].t(), in[1].t()); },
                              {at, bt}, gen));
  // x·xᵀ: the same leaf on both sides.
  EXPECT_TRUE(check_gradients([](const auto& in) { return matmul(in[0], in[0].t()); }, {a}, gen));
  // Vectors as matrices.
  const Tensor row = uniform_tensor({1, 4}, gen), col = uniform_tensor({4, 1}, gen);
  EXPECT_TRUE(
      check_gradients([](const auto& in) { return matmul(in[0], in[1]); }, {row, col}, gen));
  EXPECT_TRUE(
      check_gradients([](const auto& in) { return matmul(in[1], in[0]); }, {row, col}, gen));
}

TEST(OpsGradMatmul, Batched) {
  Generator gen(902);
  const Tensor a = uniform_tensor({2, 3, 4}, gen), b = uniform_tensor({2, 4, 5}, gen);
  EXPECT_TRUE(check_gradients([](const auto& in) { return matmul(in[0], in[1]); }, {a, b}, gen));
  const Tensor at = uniform_tensor({2, 4, 3}, gen), bt = uniform_tensor({2, 5, 4}, gen);
  EXPECT_TRUE(check_gradients(
      [](const auto& in) { return matmul(in[0].transpose(1, 2), in[1].transpose(-1, -2)); },
      {at, bt}, gen));
  // Batch dimension in the middle of the leaf's storage.
  const Tensor mid = uniform_tensor({3, 2, 4}, gen);
  EXPECT_TRUE(check_gradients(
      [](const auto& in) { return matmul(in[0].transpose(0, 1), in[1]); }, {mid, b}, gen));
}

TEST(OpsGradMatmul, Linear) {
  Generator gen(903);
  const Tensor w = uniform_tensor({3, 4}, gen), bias = uniform_tensor({3}, gen);
  for (const Shape& xs : {Shape{5, 4}, Shape{2, 3, 4}, Shape{4}}) {
    const Tensor x = uniform_tensor(xs, gen);
    EXPECT_TRUE(check_gradients([](const auto& in) { return linear(in[0], in[1]); }, {x, w}, gen))
        << shape_str(xs);
    EXPECT_TRUE(check_gradients([](const auto& in) { return linear(in[0], in[1], in[2]); },
                                {x, w, bias}, gen))
        << shape_str(xs) << " with bias";
  }
}

const std::vector<ConvCase> kConvGradCases = {
    // n  c  h  w  oc kh kw s  p  op bias
    {2, 2, 5, 4, 3, 3, 3, 1, 0, 0, false},
    {2, 2, 5, 4, 3, 3, 3, 1, 1, 0, true},
    {1, 2, 6, 6, 2, 3, 3, 2, 1, 1, true},
    {2, 1, 7, 5, 2, 2, 3, 2, 0, 1, true},  // non-square
    {1, 3, 4, 4, 2, 1, 1, 1, 0, 0, false},  // 1×1
    {1, 2, 5, 6, 2, 3, 2, 3, 2, 2, true},   // stride 3, padding 2
};

TEST(OpsGradConv, Conv2d) {
  Generator gen(1001);
  for (const ConvCase& k : kConvGradCases) {
    const Tensor x = uniform_tensor({k.n, k.c, k.h, k.w}, gen);
    const Tensor w = uniform_tensor({k.oc, k.c, k.kh, k.kw}, gen);
    const Conv2dOptions o{k.stride, k.padding, 0};
    if (k.bias) {
      const Tensor b = uniform_tensor({k.oc}, gen);
      EXPECT_TRUE(check_gradients([o](const auto& in) { return conv2d(in[0], in[1], in[2], o); },
                                  {x, w, b}, gen))
          << describe(k);
    } else {
      EXPECT_TRUE(check_gradients(
          [o](const auto& in) { return conv2d(in[0], in[1], Tensor(), o); }, {x, w}, gen))
          << describe(k);
    }
  }
}

TEST(OpsGradConv, ConvTranspose2d) {
  Generator gen(1002);
  for (const ConvCase& k : kConvGradCases) {
    const Tensor x = uniform_tensor({k.n, k.c, k.h, k.w}, gen);
    const Tensor w = uniform_tensor({k.c, k.oc, k.kh, k.kw}, gen);
    const Conv2dOptions o{k.stride, k.padding, k.output_padding};
    if (k.bias) {
      const Tensor b = uniform_tensor({k.oc}, gen);
      EXPECT_TRUE(check_gradients(
          [o](const auto& in) { return conv_transpose2d(in[0], in[1], in[2], o); }, {x, w, b},
          gen))
          << describe(k);
    } else {
      EXPECT_TRUE(check_gradients(
          [o](const auto& in) { return conv_transpose2d(in[0], in[1], Tensor(), o); }, {x, w},
          gen))
          << describe(k);
    }
  }
}

// Backward closures must accept gradients that are views: concat hands each input a narrow
// of the output gradient (an offset along dim 0, a strided view along dim 1).
TEST(OpsGradConv, GradientsArriveAsViews) {
  Generator gen(1004);
  const Tensor x = uniform_tensor({2, 2, 5, 4}, gen), w = uniform_tensor({3, 2, 3, 3}, gen);
  const Tensor wt = uniform_tensor({2, 3, 3, 3}, gen);
  const Tensor pad = uniform_tensor({1, 3, 5, 4}, gen);
  EXPECT_TRUE(check_gradients(
      [pad](const auto& in) { return concat({pad, conv2d(in[0], in[1], Tensor(), {1, 1, 0})}, 0); },
      {x, w}, gen));
  EXPECT_TRUE(check_gradients(
      [pad](const auto& in) { return concat({conv2d(in[0], in[1], Tensor(), {1, 1, 0}), pad}, 0).transpose(1, 3); },
      {x, w}, gen));
  const Tensor pad_t = uniform_tensor({2, 1, 7, 6}, gen);
  EXPECT_TRUE(check_gradients(
      [pad_t](const auto& in) {
        return concat({pad_t, conv_transpose2d(in[0], in[1], Tensor(), {1, 0, 0})}, 1);
      },
      {x, wt}, gen));
  const Tensor a = uniform_tensor({3, 4}, gen), b = uniform_tensor({4, 5}, gen);
  const Tensor side = uniform_tensor({3, 2}, gen);
  EXPECT_TRUE(check_gradients(
      [side](const auto& in) {
        return concat({side, matmul(in[0], in[1]), tanh(in[0]), side}, 1);
      },
      {a, b}, gen));
  EXPECT_TRUE(check_gradients(
      [](const auto& in) {
        const Tensor both = concat({in[0], in[0]}, 1);  // [3, 8]
        return add(sum(both.narrow(1, 1, 5), {1}), mean(both.t(), {0}));
      },
      {a}, gen));
}

TEST(OpsGradConv, OnlyOneInputRequiresGrad) {
  Generator gen(1003);
  const Tensor x = uniform_tensor({1, 2, 5, 5}, gen), w = uniform_tensor({3, 2, 3, 3}, gen);
  GradCheckOptions only_x, only_w;
  only_x.check = {true, false};
  only_w.check = {false, true};
  const auto f = [](const auto& in) { return conv2d(in[0], in[1], Tensor(), {2, 1, 0}); };
  EXPECT_TRUE(check_gradients(f, {x, w}, gen, only_x));
  EXPECT_TRUE(check_gradients(f, {x, w}, gen, only_w));
  const Tensor wt = uniform_tensor({2, 3, 3, 3}, gen);
  const auto g = [](const auto& in) { return conv_transpose2d(in[0], in[1], Tensor(), {2, 1, 1}); };
  EXPECT_TRUE(check_gradients(g, {x, wt}, gen, only_x));
  EXPECT_TRUE(check_gradients(g, {x, wt}, gen, only_w));
}

TEST(OpsGradShape, ViewsAndCopies) {
  Generator gen(1101);
  const Tensor x = uniform_tensor({2, 3, 4}, gen);
  const std::vector<std::pair<const char*, test::TensorFn>> ops = {
      {"reshape", [](const auto& in) { return in[0].reshape({4, -1}); }},
      {"reshape free", [](const auto& in) { return reshape(in[0], {24}); }},
      {"reshape of permuted", [](const auto& in) { return in[0].permute({2, 0, 1}).reshape({8, 3}); }},
      {"flatten", [](const auto& in) { return in[0].flatten(); }},
      {"flatten 1..2", [](const auto& in) { return flatten(in[0], 1, 2); }},
      {"permute", [](const auto& in) { return in[0].permute({1, 2, 0}); }},
      {"transpose", [](const auto& in) { return in[0].transpose(0, -1); }},
      {"narrow", [](const auto& in) { return in[0].narrow(2, 1, 2); }},
      {"narrow negative start", [](const auto& in) { return in[0].narrow(1, -2, 2); }},
      {"slice", [](const auto& in) { return in[0].slice(-1, 1, -1); }},
      {"unsqueeze", [](const auto& in) { return in[0].unsqueeze(1); }},
      {"squeeze", [](const auto& in) { return in[0].narrow(1, 1, 1).squeeze(1); }},
      {"contiguous", [](const auto& in) { return in[0].transpose(0, 2).contiguous(); }},
      {"clone", [](const auto& in) { return in[0].clone(); }},
      {"clone of view", [](const auto& in) { return in[0].narrow(0, 1, 1).squeeze(0).t().clone(); }},
      {"overlapping narrows", [](const auto& in) {
         return add(in[0].narrow(2, 0, 3), mul(in[0].narrow(2, 1, 3), in[0].narrow(2, 1, 3)));
       }},
  };
  for (const auto& [name, f] : ops) EXPECT_TRUE(check_gradients(f, {x}, gen)) << name;
  const Tensor m = uniform_tensor({3, 5}, gen);
  EXPECT_TRUE(check_gradients([](const auto& in) { return in[0].t(); }, {m}, gen));
}

TEST(OpsGradShape, Concat) {
  Generator gen(1102);
  const Tensor a = uniform_tensor({2, 3, 4}, gen), b = uniform_tensor({2, 1, 4}, gen);
  const Tensor c = uniform_tensor({2, 3, 2}, gen), d = uniform_tensor({1, 3, 4}, gen);
  EXPECT_TRUE(check_gradients([](const auto& in) { return concat({in[0], in[1]}, 1); }, {a, b}, gen));
  EXPECT_TRUE(check_gradients([](const auto& in) { return concat({in[0], in[1]}, -1); }, {a, c}, gen));
  EXPECT_TRUE(check_gradients([](const auto& in) { return concat({in[0], in[1], in[0]}, 0); },
                              {a, d}, gen));
  // A concat's narrow-view gradients feeding further ops.
  EXPECT_TRUE(check_gradients(
      [](const auto& in) { return exp(concat({in[0].t(), in[1].t()}, 0)); },
      {uniform_tensor({3, 2}, gen), uniform_tensor({3, 4}, gen)}, gen));
}

TEST(OpsGradShape, ToDtype) {
  // to(float32) and back: the gradient passes through the casts unchanged (w is float32-exact
  // in float64, so the result is exact).
  Generator gen(1103);
  Tensor x = uniform_tensor({5}, gen);
  x.requires_grad_();
  const Tensor w = from_vector(std::vector<float>{0.5f, -1.25f, 3.0f, 0.0f, 2.0f}, {5});
  sum(mul(x.to(DType::f32), w)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::f64);
  EXPECT_EQ(values_of(x.grad()), values_of(w));
  // float32 -> float64 as well.
  Tensor y = from_vector(std::vector<float>{1, 2, 3, 4, 5}, {5});
  y.requires_grad_();
  sum(mul(y.to(DType::f64), w.to(DType::f64))).backward();
  EXPECT_EQ(y.grad().dtype(), DType::f32);
  EXPECT_EQ(values_of(y.grad()), values_of(w));
  // to(the same dtype) is the identity, and a cast to int32 carries no gradient.
  EXPECT_TRUE(check_gradients([](const auto& in) { return in[0].to(DType::f64); },
                              {uniform_tensor({4}, gen)}, gen));
  EXPECT_FALSE(y.to(DType::i32).requires_grad());
  // Through float32 with a step large enough for float32's resolution.
  GradCheckOptions coarse;
  coarse.step = 1.0 / 64;  // x ± h are exact in float32 for these x
  // The backward casts the float64 weight to float32 and scales it there: two roundings.
  coarse.rtol = 2.5 * kU32;
  coarse.atol = 0;
  const Tensor grid = from_vector(std::vector<double>{0.5, -0.25, 1.0, 0.125}, {4});
  EXPECT_TRUE(check_gradients(
      [](const auto& in) { return mul(in[0].to(DType::f32), 3.0).to(DType::f64); }, {grid}, gen,
      coarse));
}

TEST(OpsGradLoss, MseLoss) {
  Generator gen(1201);
  const Tensor p = uniform_tensor({3, 5}, gen), t = uniform_tensor({3, 5}, gen);
  EXPECT_TRUE(check_gradients([](const auto& in) { return mse_loss(in[0], in[1]); }, {p, t}, gen));
  EXPECT_TRUE(check_gradients([](const auto& in) { return mse_loss(in[0].t(), in[1]); },
                              {uniform_tensor({5, 3}, gen), t}, gen));
}

TEST(OpsGradLoss, BinaryCrossEntropyWithLogits) {
  Generator gen(1202);
  const Tensor x = uniform_tensor({4, 6}, gen, -4, 4), t = uniform_tensor({4, 6}, gen, 0, 1);
  const auto f = [](const auto& in) { return binary_cross_entropy_with_logits(in[0], in[1]); };
  EXPECT_TRUE(check_gradients(f, {x, t}, gen));  // logits and target
  GradCheckOptions logits_only;
  logits_only.check = {true, false};
  EXPECT_TRUE(check_gradients(f, {x, t}, gen, logits_only));
  // Scaled and non-contiguous.
  EXPECT_TRUE(check_gradients(
      [](const auto& in) { return mul(binary_cross_entropy_with_logits(in[0].t(), in[1]), 3.0); },
      {uniform_tensor({6, 4}, gen, -4, 4), t}, gen));
  // Logits the size of a float's exp range: the gradient is σ(x) − t, exact at saturation.
  Tensor big = from_vector(std::vector<double>{800, -800, 800, -800}, {4});
  big.requires_grad_();
  binary_cross_entropy_with_logits(big, from_vector(std::vector<double>{1, 1, 0, 0}, {4}))
      .backward();
  EXPECT_TRUE(all_close(big.grad(), {0, -0.25, 0.25, 0}, 0, 1e-300));
}

TEST(OpsGradComposite, SmallNetwork) {
  Generator gen(1301);
  const Tensor x = uniform_tensor({2, 1, 6, 5}, gen);
  const Tensor w1 = uniform_tensor({3, 1, 3, 3}, gen), b1 = uniform_tensor({3}, gen);
  const Tensor w2 = uniform_tensor({2, 3 * 3 * 3}, gen), b2 = uniform_tensor({2}, gen);
  const Tensor target = uniform_tensor({2, 2}, gen);
  const auto net = [target](const auto& in) {
    const Tensor h = silu(conv2d(in[0], in[1], in[2], {2, 1, 0}));  // [2, 3, 3, 3]
    const Tensor y = linear(h.flatten(1), in[3], in[4]);
    return add(mse_loss(tanh(y), target), mean(square(in[3])));
  };
  EXPECT_TRUE(check_gradients(net, {x, w1, b1, w2, b2}, gen));
}

// ================================================================== errors

TEST(OpsErrors, BroadcastMismatch) {
  EXPECT_LATENT_ERROR(add(zeros({2, 3}), zeros({4})), "add", "[2, 3]", "[4]");
  EXPECT_LATENT_ERROR(mul(zeros({2, 3, 4}), zeros({3, 1, 4})), "mul", "[2, 3, 4]", "[3, 1, 4]");
  EXPECT_LATENT_ERROR(zeros({2, 3}) / zeros({2}), "div", "[2, 3]", "[2]");
  EXPECT_LATENT_ERROR(expand(zeros({2, 3}), {3, 3}), "[2, 3]", "[3, 3]");
  EXPECT_LATENT_ERROR(sum_to(zeros({2, 3}), {4}), "sum_to", "[2, 3]", "[4]");
  EXPECT_LATENT_ERROR(sum_to(zeros({3}), {2, 3}), "sum_to", "[3]", "[2, 3]");
}

TEST(OpsErrors, DtypeMismatchAndIntegers) {
  EXPECT_LATENT_ERROR(add(zeros({2, 3}, DType::f32), zeros({2, 3}, DType::f64)), "add",
                      "float32", "float64", "[2, 3]");
  EXPECT_LATENT_ERROR(matmul(zeros({2, 3}, DType::f32), zeros({3, 2}, DType::f64)), "matmul",
                      "float32", "float64", "[2, 3]", "[3, 2]");
  EXPECT_LATENT_ERROR(exp(zeros({2}, DType::i32)), "exp", "int32", "[2]");
  EXPECT_LATENT_ERROR(add(zeros({2}, DType::i32), zeros({2}, DType::i32)), "add", "int32");
  EXPECT_LATENT_ERROR(sum(zeros({2}, DType::i32)), "sum", "int32");
  EXPECT_LATENT_ERROR(matmul(zeros({2, 2}, DType::i32), zeros({2, 2}, DType::i32)), "matmul",
                      "int32");
}

TEST(OpsErrors, MatmulShapes) {
  EXPECT_LATENT_ERROR(matmul(zeros({2, 3}), zeros({4, 5})), "matmul", "[2, 3]", "[4, 5]");
  EXPECT_LATENT_ERROR(matmul(zeros({2, 2, 3}), zeros({2, 4, 5})), "matmul", "[2, 2, 3]",
                      "[2, 4, 5]");
  EXPECT_LATENT_ERROR(matmul(zeros({2, 2, 3}), zeros({3, 3, 5})), "matmul", "[2, 2, 3]",
                      "[3, 3, 5]");
  EXPECT_LATENT_ERROR(matmul(zeros({3}), zeros({3, 2})), "matmul", "[3]", "[3, 2]");
  EXPECT_LATENT_ERROR(matmul(zeros({2, 3}), zeros({2, 3, 2})), "matmul", "[2, 3]", "[2, 3, 2]");
  EXPECT_LATENT_ERROR(linear(zeros({5, 4}), zeros({3, 5})), "linear", "[5, 4]", "[3, 5]");
  EXPECT_LATENT_ERROR(linear(zeros({5, 4}), zeros({3, 4}), zeros({4})), "linear", "[4]");
}

TEST(OpsErrors, ConvShapes) {
  const Tensor x = zeros({1, 3, 8, 8});
  EXPECT_LATENT_ERROR(conv2d(x, zeros({4, 2, 3, 3})), "conv2d", "[1, 3, 8, 8]", "[4, 2, 3, 3]");
  EXPECT_LATENT_ERROR(conv_transpose2d(x, zeros({2, 4, 3, 3})), "conv_transpose2d",
                      "[1, 3, 8, 8]", "[2, 4, 3, 3]");
  EXPECT_LATENT_ERROR(conv2d(zeros({3, 8, 8}), zeros({4, 3, 3, 3})), "conv2d", "[3, 8, 8]");
  EXPECT_LATENT_ERROR(conv2d(x, zeros({4, 3, 9, 9})), "conv2d", "[4, 3, 9, 9]", "[1, 3, 8, 8]");
  EXPECT_LATENT_ERROR(conv2d(x, zeros({4, 3, 3, 3}), zeros({3})), "conv2d", "bias", "[3]");
  EXPECT_LATENT_ERROR(conv2d(x, zeros({4, 3, 3, 3}), Tensor(), {0, 0, 0}), "conv2d", "stride");
  EXPECT_LATENT_ERROR(conv_transpose2d(x, zeros({3, 4, 3, 3}), Tensor(), {2, 0, 2}),
                      "conv_transpose2d", "output_padding");
  EXPECT_LATENT_ERROR(conv2d(zeros({0, 3, 8, 8}), zeros({4, 3, 3, 3})), "conv2d", "empty",
                      "[0, 3, 8, 8]");
}

TEST(OpsErrors, LossShapes) {
  EXPECT_LATENT_ERROR(mse_loss(zeros({0}), zeros({0})), "mse_loss", "empty", "[0]");
  EXPECT_LATENT_ERROR(mse_loss(zeros({2, 3}), zeros({3, 2})), "mse_loss", "[2, 3]", "[3, 2]");
  EXPECT_LATENT_ERROR(binary_cross_entropy_with_logits(zeros({0, 2}), zeros({0, 2})),
                      "binary_cross_entropy_with_logits", "empty", "[0, 2]");
  EXPECT_LATENT_ERROR(binary_cross_entropy_with_logits(zeros({2}), zeros({3})),
                      "binary_cross_entropy_with_logits", "[2]", "[3]");
}

TEST(OpsErrors, ShapeOps) {
  const Tensor x = zeros({2, 3});
  EXPECT_LATENT_ERROR(x.reshape({4, 2}), "reshape", "[2, 3]", "[4, 2]");
  EXPECT_LATENT_ERROR(x.reshape({4, -1}), "reshape", "[2, 3]", "[4, -1]");
  EXPECT_LATENT_ERROR(x.reshape({-1, -1}), "reshape", "-1");
  EXPECT_LATENT_ERROR(reshape(x, {7}), "reshape", "[2, 3]", "[7]");
  EXPECT_LATENT_ERROR(x.narrow(1, 2, 2), "narrow", "[2, 3]");
  EXPECT_LATENT_ERROR(x.narrow(0, -3, 1), "narrow", "[2, 3]");
  EXPECT_LATENT_ERROR(x.narrow(1, 0, -1), "narrow", "[2, 3]");
  EXPECT_LATENT_ERROR(x.narrow(2, 0, 1), "narrow", "2");
  EXPECT_LATENT_ERROR(x.permute({0, 0}), "permute", "[2, 3]", "repeated");
  EXPECT_LATENT_ERROR(x.permute({0}), "permute", "[2, 3]");
  EXPECT_LATENT_ERROR(x.permute({0, 1, 2}), "permute", "[2, 3]");
  EXPECT_LATENT_ERROR(x.permute({0, 2}), "permute", "[2, 3]");
  EXPECT_LATENT_ERROR(x.transpose(0, 2), "transpose", "2");
  EXPECT_LATENT_ERROR(concat({}, 0), "concat");
  EXPECT_LATENT_ERROR(concat({x, zeros({2, 4})}, 0), "concat", "[2, 3]", "[2, 4]");
  EXPECT_LATENT_ERROR(concat({x, zeros({2, 3, 1})}, 0), "concat", "[2, 3]", "[2, 3, 1]");
  EXPECT_LATENT_ERROR(concat({x, zeros({2, 3}, DType::f64)}, 0), "concat", "float64");
}

TEST(OpsErrors, ReductionsAndScalars) {
  EXPECT_LATENT_ERROR(sum(zeros({2, 3}), {2}), "sum", "2");
  EXPECT_LATENT_ERROR(sum(zeros({2, 3}), {-3}), "sum", "-3");
  EXPECT_LATENT_ERROR(mean(zeros({0, 3})), "mean", "[0, 3]");
  EXPECT_LATENT_ERROR(mean(zeros({0, 3}), {0}), "mean", "[0, 3]");
  EXPECT_LATENT_ERROR(sum(scalar_tensor(1.0), {0}), "sum", "rank 0");
  EXPECT_LATENT_ERROR(argmax(zeros({0, 3}), 0), "argmax", "[0, 3]");
  EXPECT_LATENT_ERROR(div(zeros({2}), 0.0), "div", "[2]");
  EXPECT_LATENT_ERROR(clamp(zeros({2}), 1.0, -1.0), "clamp");
  EXPECT_LATENT_ERROR(max_abs_diff(zeros({2}), zeros({3})), "max_abs_diff", "[2]", "[3]");
  EXPECT_LATENT_ERROR(add(Tensor(), zeros({2})), "add", "undefined");
}

}  // namespace
}  // namespace latent
