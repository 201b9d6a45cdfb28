// Elementwise kernels (kernels/elementwise.cuh; src/ops/elementwise.cpp) through the op
// harness (tests/op_harness.h), on every device:
//   forward against double-precision loops (correctly rounded ops bit-identical, the math
//   library's a few ulps), broadcasting, strided and misaligned operands, odd sizes (1, 31,
//   33, 1000003), empty tensors, dtype conversions and fills;
//   the cuda backend against cpu on fresh random inputs, outputs and gradients;
//   gradients against central finite differences in float64 (on cpu);
//   bad input: a latent::Error naming the op and the shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/vector_math.h"
#include "latent/latent.h"
#include "tests/op_harness.h"
#include "tests/reference.h"

namespace latent {
namespace {

using test::away_from_zero;
using test::broadcast_source;
using test::check_op;
using test::exact;
using test::gradient_case;
using test::Expected;
using test::kU32;
using test::kU64;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::round_to;
using test::Tensors;
using test::uniform_tensor;
using test::unit_roundoff;
using test::values_of;

enum class Bin { add, sub, mul, div };
const Bin kBinaryOps[] = {Bin::add, Bin::sub, Bin::mul, Bin::div};
std::string bin_name(Bin op) {
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

// Correctly rounded: the result of a binary op is the double result rounded to the dtype.
Expected rounded_binary(Bin op, const Tensor& a, const Tensor& b, DType dtype) {
  const Shape shape = test::broadcast_shape(a.shape(), b.shape());
  const std::vector<double> av = values_of(a), bv = values_of(b);
  Expected e{std::vector<double>(shape_numel(shape)), {}, shape, dtype};
  for (std::int64_t i = 0; i < shape_numel(shape); ++i)
    e.values[i] = round_to(dtype, apply(op, av[broadcast_source(shape, a.shape(), i)],
                                        bv[broadcast_source(shape, b.shape(), i)]));
  return e;
}

// ================================================================== forward: loops

// Binary ops against a double loop: correctly rounded, so the results are bit-identical.
TEST(Elementwise, BinaryBroadcastingMatchesLoopsExactly) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const ShapePair& sp : kBroadcastCases) {
      for (Bin op : kBinaryOps) {
        OpCase c;
        c.name = bin_name(op) + " " + shape_str(sp.a) + " " + shape_str(sp.b) + " " +
                 dtype_name(dtype);
        c.seed = 101;
        c.inputs = [&](Generator& g) {
          return Tensors{uniform_tensor(sp.a, g, -2, 2, dtype),
                         away_from_zero(sp.b, g, 0.25, 2.0, dtype)};
        };
        c.op = [op](const Tensors& in) { return Tensors{apply(op, in[0], in[1])}; };
        c.reference = [&](const Tensors& in) {
          return std::vector<Expected>{rounded_binary(op, in[0], in[1], dtype)};
        };
        const Shape out = test::broadcast_shape(sp.a, sp.b);
        c.cost = cases::binary(shape_numel(sp.a), shape_numel(sp.b), shape_numel(out), dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
  EXPECT_EQ(add(zeros({2, 1, 4}), zeros({1, 3, 1})).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(add(zeros({}), zeros({1})).shape(), (Shape{1}));
}

TEST(Elementwise, NonContiguousOperands) {
  for (Bin op : kBinaryOps) {
    OpCase c;
    c.name = bin_name(op) + " of a transpose, a narrow and a broadcast column";
    c.seed = 102;
    c.inputs = [](Generator& g) {
      return Tensors{uniform_tensor({5, 7}, g), away_from_zero({7, 9}, g)};
    };
    c.op = [op](const Tensors& in) {
      const Tensor a = in[0].t();                // [7, 5], strides [1, 7]
      const Tensor b = in[1].narrow(1, 2, 5);    // [7, 5], strides [9, 1], offset 2
      const Tensor col = in[1].narrow(1, 1, 1);  // [7, 1] column, broadcast over 5
      return Tensors{apply(op, a, b), apply(op, a, col)};
    };
    c.reference = [op](const Tensors& in) {
      const std::vector<double> base_a = values_of(in[0]), base_b = values_of(in[1]);
      Expected plain{std::vector<double>(35)}, column{std::vector<double>(35)};
      for (int i = 0; i < 35; ++i) {
        const int r = i / 5, k = i % 5;  // element [r, k] of the [7, 5] views
        const double a = base_a[k * 7 + r];
        plain.values[i] = apply(op, a, base_b[r * 9 + 2 + k]);
        column.values[i] = apply(op, a, base_b[r * 9 + 1]);
      }
      return std::vector<Expected>{plain, column};
    };
    c.cost = cases::binary(35, 35, 35, DType::f64);
    EXPECT_TRUE(check_op(c));
  }
}

// Sizes around the chunking and vector widths, and one above a million.
TEST(Elementwise, OddSizes) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (std::int64_t n : {1, 31, 33, 1000003}) {
      const std::string where = std::string(dtype_name(dtype)) + " n=" + std::to_string(n);
      auto inputs = [n, dtype](Generator& g) {
        return Tensors{uniform_tensor({n}, g, -3, 3, dtype), away_from_zero({n}, g, 0.5, 2, dtype)};
      };
      OpCase c;
      c.name = "a + b, a / b, a * 0.7, 2.5 - a " + where;
      c.seed = 103;
      c.inputs = inputs;
      c.op = [](const Tensors& in) {
        const Tensor& a = in[0];
        const Tensor& b = in[1];
        return Tensors{a + b, a / b, a * 0.7, 2.5 - a};
      };
      c.reference = [n, dtype](const Tensors& in) {
        const std::vector<double> av = values_of(in[0]), bv = values_of(in[1]);
        std::vector<Expected> e(4, Expected{std::vector<double>(n)});
        const double scale = round_to(dtype, 0.7), shift = round_to(dtype, 2.5);
        for (std::int64_t i = 0; i < n; ++i) {
          e[0].values[i] = round_to(dtype, av[i] + bv[i]);
          e[1].values[i] = round_to(dtype, av[i] / bv[i]);
          e[2].values[i] = round_to(dtype, av[i] * scale);
          e[3].values[i] = round_to(dtype, shift - av[i]);
        }
        return e;
      };
      c.cost = cases::binary(n, n, n, dtype);
      EXPECT_TRUE(check_op(c));

      OpCase s;
      s.name = "sum and mean " + where;
      s.seed = 103;
      s.inputs = inputs;
      s.op = [](const Tensors& in) { return Tensors{sum(in[0]), mean(in[0])}; };
      s.reference_on = [n, dtype](const Tensors& in, Device device) {
        double total = 0, magnitude = 0;
        for (double v : values_of(in[0])) {
          total += v;
          magnitude += std::abs(v);
        }
        // The cpu backend accumulates in double with one final rounding for float32; the cuda
        // kernels (kernels/reduce.cuh) accumulate in the dtype: n·u·Σ|x|.
        const double u = device.is_cpu() ? kU64 : unit_roundoff(dtype);
        const double allowed = (dtype == DType::f32 ? kU32 * std::abs(total) : 0.0) +
                               static_cast<double>(n) * u * magnitude;
        const double mean_value = total / static_cast<double>(n);
        return std::vector<Expected>{
            {{total}, {allowed}, Shape{}, dtype},
            {{mean_value},
             {allowed / static_cast<double>(n) + 2 * unit_roundoff(dtype) * std::abs(mean_value)},
             Shape{},
             dtype}};
      };
      s.tolerance = per_dtype(near(0, 0), near(0, 0));  // within the bounds above
      s.cost = cases::sum(n, 1, dtype);
      EXPECT_TRUE(check_op(s));

      OpCase e;
      e.name = "exp " + where;
      e.seed = 103;
      e.inputs = inputs;
      e.op = [](const Tensors& in) { return Tensors{exp(in[0])}; };
      e.reference = [n](const Tensors& in) {
        const std::vector<double> av = values_of(in[0]);
        Expected x{std::vector<double>(n)};
        for (std::int64_t i = 0; i < n; ++i) x.values[i] = std::exp(av[i]);
        return std::vector<Expected>{x};
      };
      e.tolerance = per_dtype(near(0, 4 * kU32), near(0, 4 * kU64));
      e.gpu_tolerance = per_dtype(near(0, 8 * kU32), near(0, 8 * kU64));  // CUDA's exp: 2 ulp
      e.cost = cases::unary(n, dtype);
      EXPECT_TRUE(check_op(e));
    }
  }
}

// Sizes above the cpu backend's parallel threshold, through each of its loop shapes: a
// broadcast over rows, a broadcast along a middle dimension, a strided operand, and
// reductions to one value, to rows and to columns.
TEST(Elementwise, LargeBroadcastsAndReductions) {
  const std::int64_t rows = 1001, cols = 1003;
  const std::vector<std::vector<std::int64_t>> dim_sets = {{}, {0}, {1}, {0, 1}};
  OpCase c;
  c.name = "large broadcasts, a transposed operand and reductions";
  c.seed = 105;
  c.inputs = [&](Generator& g) {
    return Tensors{uniform_tensor({rows, cols}, g), uniform_tensor({cols}, g),
                   uniform_tensor({rows, 1}, g),
                   uniform_tensor({7, 1, 150001}, g),  // broadcast over dim 1
                   uniform_tensor({1, 3, 150001}, g), uniform_tensor({1000003, 2}, g)};
  };
  c.op = [&](const Tensors& in) {
    const Tensor& a = in[0];
    const Tensor at = a.t();  // at + at walks a with stride `cols`
    Tensors out = {a + in[1], a * in[2], in[3] - in[4], at + at};
    for (const auto& dims : dim_sets) out.push_back(sum(a, dims));
    for (const auto& dims : dim_sets) out.push_back(sum(at + at, dims));
    out.push_back(sum(in[5].narrow(1, 1, 1)));  // one long strided run: a column
    return out;
  };
  c.reference = [&](const Tensors& in) {
    const std::vector<double> av = values_of(in[0]), rv = values_of(in[1]),
                              cv = values_of(in[2]), mv = values_of(in[3]),
                              ov = values_of(in[4]), wv = values_of(in[5]);
    std::vector<Expected> e(4);
    e[0].values.resize(av.size());
    e[1].values.resize(av.size());
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) {
        e[0].values[i * cols + j] = av[i * cols + j] + rv[j];
        e[1].values[i * cols + j] = av[i * cols + j] * cv[i];
      }
    e[2].values.resize(7 * 3 * 150001);
    for (std::int64_t i = 0; i < 7; ++i)
      for (std::int64_t j = 0; j < 3; ++j)
        for (std::int64_t k = 0; k < 150001; ++k)
          e[2].values[(i * 3 + j) * 150001 + k] = mv[i * 150001 + k] - ov[j * 150001 + k];
    std::vector<double> doubled(av.size());
    for (std::int64_t j = 0; j < cols; ++j)
      for (std::int64_t i = 0; i < rows; ++i) doubled[j * rows + i] = 2 * av[i * cols + j];
    e[3].values = doubled;
    auto sums = [&](const std::vector<double>& x, const Shape& shape) {
      for (const auto& dims : dim_sets) {
        const test::Reduced r = test::reduce_ref(x, shape, dims, false);
        Expected s{r.sum, std::vector<double>(r.sum.size())};
        for (std::size_t i = 0; i < r.sum.size(); ++i)
          s.bound[i] = static_cast<double>(r.count) * kU64 * r.abs_sum[i];
        e.push_back(s);
      }
    };
    sums(av, {rows, cols});
    sums(doubled, {cols, rows});
    double total = 0, magnitude = 0;
    for (std::int64_t i = 0; i < 1000003; ++i) {
      total += wv[2 * i + 1];
      magnitude += std::abs(wv[2 * i + 1]);
    }
    e.push_back({{total}, {1000003 * kU64 * magnitude}});
    return e;
  };
  c.tolerance = per_dtype(near(0, 0), near(0, 0));  // exact, or within the bounds above
  c.cost = cases::binary(rows * cols, cols, rows * cols, DType::f64);
  EXPECT_TRUE(check_op(c));

  // The same sums, run after run (fixed chunking, no float atomics).
  test::PoisonScope poison;
  Generator gen(105);
  const Tensor a = uniform_tensor({rows, cols}, gen);
  const Tensor wide = uniform_tensor({1000003, 2}, gen);
  for (Device device : test::devices()) {
    const Tensor column = wide.to(device).narrow(1, 1, 1), on = a.to(device);
    EXPECT_EQ(sum(column).item(), sum(column).item()) << device.str();
    EXPECT_EQ(sum(on, {0}).to(Device::cpu()).to_vector<double>(),
              sum(on, {0}).to(Device::cpu()).to_vector<double>())
        << device.str();
  }
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
      // x/√2 is rounded before erfc, whose relative slope 2z²-fold amplifies that rounding:
      // at x = −5 (z ≈ 3.5) about 25 ulps, on top of erfc's own.
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double x, DType) { return x * 0.5 * std::erfc(-x / std::sqrt(2.0)); }, -5, 5, 32},
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

TEST(Elementwise, UnaryMatchesFormulas) {
  for (const UnaryCase& u : unary_cases()) {
    for (DType dtype : {DType::f32, DType::f64}) {
      OpCase c;
      c.name = std::string(u.name) + " [257] " + dtype_name(dtype) + ", contiguous and strided";
      c.seed = 104;
      c.inputs = [&](Generator& g) { return Tensors{uniform_tensor({257}, g, u.low, u.high, dtype)}; };
      c.op = [&](const Tensors& in) {
        // The same op on a strided view of the same values.
        const Tensor strided = concat({in[0].unsqueeze(1), in[0].unsqueeze(1)}, 1).narrow(1, 1, 1);
        return Tensors{u.op(in[0]), u.op(strided).reshape({-1})};
      };
      c.reference = [&](const Tensors& in) {
        Expected e{{}, {}, Shape{257}, dtype};
        for (double v : values_of(in[0])) e.values.push_back(round_to(dtype, u.ref(v, dtype)));
        return std::vector<Expected>{e, e};
      };
      c.tolerance = per_dtype(near(1e-300, u.ulps * 2 * kU32), near(1e-300, u.ulps * 2 * kU64));
      if (u.ulps > 0)  // the GPU's math library: a few ulps more than the host's
        c.gpu_tolerance = per_dtype(near(1e-300, 16 * kU32), near(1e-300, 16 * kU64));
      c.cost = cases::unary(257, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// The cpu backend's vectorized exp (src/backends/cpu/vector_math.h) against double exp on
// every 61st float from −104 to 89 (about 35 million inputs, normal and subnormal results):
// within 1 ulp of the result (an ulp of the smallest subnormal below 2^−126); the limits.
TEST(Elementwise, VectorExpIsWithinOneUlpOverTheWholeFloatRange) {
  const auto ulp_of = [](double v) {
    const double a = std::abs(v);
    return a < 0x1p-126 ? 0x1p-149 : std::ldexp(1.0, std::ilogb(a) - 23);
  };
  double worst = 0;
  float worst_at = 0;
  auto check = [&](float x) {
    const double want = std::exp(static_cast<double>(x));
    const double got = cpu::vector_exp(x);
    if (want >= 0x1.ffffffp127) {  // rounds to infinity in float
      EXPECT_EQ(got, HUGE_VAL) << x;
      return;
    }
    const double err = std::abs(got - want) / ulp_of(want);
    if (err > worst) worst = err, worst_at = x;
  };
  for (std::uint32_t bits = 0; bits <= 0x42b20000u; bits += 61) {  // 0 .. 89
    check(std::bit_cast<float>(bits));
    if (bits <= 0x42d00000u) check(-std::bit_cast<float>(bits));  // 0 .. −104
  }
  for (std::uint32_t bits = 0x42d00000u; bits <= 0x42d00000u + 4096; ++bits)  // −104 ..
    check(-std::bit_cast<float>(bits));
  EXPECT_LE(worst, 1.0) << "at x = " << worst_at;
  EXPECT_EQ(cpu::vector_exp(0.0f), 1.0f);
  EXPECT_EQ(cpu::vector_exp(-HUGE_VALF), 0.0f);
  EXPECT_EQ(cpu::vector_exp(-200.0f), 0.0f);
  EXPECT_EQ(cpu::vector_exp(HUGE_VALF), HUGE_VALF);
  EXPECT_EQ(cpu::vector_exp(88.8f), HUGE_VALF);
  EXPECT_TRUE(std::isnan(cpu::vector_exp(std::nanf(""))));
  EXPECT_EQ(cpu::vector_silu(-200.0f), 0.0f);
  EXPECT_EQ(cpu::vector_silu(200.0f), 200.0f);
  EXPECT_TRUE(std::isnan(cpu::vector_silu(std::nanf(""))));
}

// GELU at ±∞ takes its limits, on every device: gelu(−∞) = 0, gelu(∞) = ∞, slopes 0 and 1.
TEST(Elementwise, GeluLimitsAtInfinity) {
  for (const Device device : test::devices()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      const Tensor x = from_vector(std::vector<double>{-INFINITY, INFINITY, -40.0, 40.0}, {4})
                           .to(dtype)
                           .to(device)
                           .requires_grad_();
      const Tensor y = gelu(x);
      sum(y).backward();
      const std::vector<double> v = values_of(y), g = values_of(x.grad());
      EXPECT_EQ(v[0], 0.0) << device.str();
      EXPECT_EQ(v[1], INFINITY) << device.str();
      EXPECT_EQ(v[2], 0.0) << device.str();
      EXPECT_EQ(v[3], 40.0) << device.str();
      EXPECT_EQ(g[0], 0.0) << device.str();
      EXPECT_EQ(g[1], 1.0) << device.str();
    }
  }
}

TEST(Elementwise, EmptyTensors) {
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    const Tensor e = zeros({0, 3}, DType::f32, device);
    EXPECT_EQ(exp(e).shape(), (Shape{0, 3})) << device.str();
    EXPECT_EQ(add(e, ones({3}, DType::f32, device)).shape(), (Shape{0, 3})) << device.str();
    EXPECT_EQ(sum(e).item(), 0.0) << device.str();
    EXPECT_EQ(sum(e, {0}).shape(), (Shape{3})) << device.str();
    EXPECT_EQ(values_of(sum(e, {0})), std::vector<double>(3, 0.0)) << device.str();
  }
}

// ================================================================== cuda against cpu

const Shape kOddSizes[] = {{1}, {31}, {33}, {1000003}, {7, 9, 13}};

TEST(Elementwise, UnaryOpsAndTheirGradientsMatchTheCpuBackend) {
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    double low, high;
  };
  const std::vector<Case> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, 0.1, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.1, 3},
      {"abs", [](const Tensor& x) { return abs(x); }, -2, 2},
      {"square", [](const Tensor& x) { return square(x); }, -2, 2},
      {"relu", [](const Tensor& x) { return relu(x); }, -2, 2},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }, -2, 2},
      {"silu", [](const Tensor& x) { return silu(x); }, -4, 4},
      {"gelu", [](const Tensor& x) { return gelu(x); }, -4, 4},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -4, 4},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3},
      {"pow", [](const Tensor& x) { return pow(x, 1.7); }, 0.1, 3},
      {"add_scalar", [](const Tensor& x) { return add(x, 0.5); }, -2, 2},
      {"mul_scalar", [](const Tensor& x) { return mul(x, -3.0); }, -2, 2},
      {"rsub", [](const Tensor& x) { return rsub(1.5, x); }, -2, 2},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }, -2, 2},
  };
  for (const Case& u : cases) {
    for (const Shape& shape : kOddSizes) {
      for (DType dtype : {DType::f32, DType::f64}) {
        // The million-element size checks the vectorized path and its tail; once is enough.
        if (dtype == DType::f64 && shape_numel(shape) > 100000) continue;
        OpCase c;
        c.name = std::string(u.name) + " " + shape_str(shape) + " " + dtype_name(dtype);
        c.seed = 2024;
        c.inputs = [&](Generator& g) { return Tensors{uniform(shape, u.low, u.high, g, dtype)}; };
        c.op = [&](const Tensors& in) { return Tensors{u.f(in[0])}; };
        c.tolerance = per_dtype(near(2e-6, 2e-6), near(1e-13, 1e-13));
        c.gradients = true;
        c.cost = cases::unary(shape_numel(shape), dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
}

TEST(Elementwise, BroadcastingBinaryOpsMatchTheCpuBackend) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{31, 33}, {31, 33}}, {{31, 33}, {33}},    {{2, 1, 5}, {3, 1}}, {{}, {7}},
      {{1000003}, {1000003}}, {{4, 1}, {1, 6}}, {{1}, {1}},
  };
  for (const auto& [sa, sb] : shapes) {
    for (Bin op : kBinaryOps) {
      OpCase c;
      c.name = bin_name(op) + " " + shape_str(sa) + " " + shape_str(sb);
      c.seed = 2024;
      c.inputs = [&](Generator& g) {
        return Tensors{uniform(sa, -2, 2, g), uniform(sb, 0.5, 2, g)};
      };
      c.op = [op](const Tensors& in) { return Tensors{apply(op, in[0], in[1])}; };
      c.tolerance = per_dtype(near(2e-6, 2e-6), near(1e-13, 1e-13));
      c.gradients = true;
      const Shape out = test::broadcast_shape(sa, sb);
      c.cost = cases::binary(shape_numel(sa), shape_numel(sb), shape_numel(out), DType::f32);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(Elementwise, StridedAndMisalignedOperandsMatchTheCpuBackend) {
  // A transposed view, a narrowed view with an odd offset (not 16-byte aligned).
  OpCase c;
  c.name = "transposed + narrowed";
  c.seed = 2024;
  c.inputs = [](Generator& g) { return Tensors{uniform({33, 31}, -2, 2, g), uniform({31, 35}, -2, 2, g)}; };
  c.op = [](const Tensors& in) {
    const Tensor a = in[0].transpose(0, 1);
    const Tensor b = in[1].narrow(1, 1, 33);
    return Tensors{mul(a, b), exp(in[1].narrow(0, 3, 10))};
  };
  c.tolerance = per_dtype(near(2e-6, 2e-6), near(1e-13, 1e-13));
  c.gradients = true;
  c.cost = cases::binary(33 * 31, 31 * 33, 31 * 33, DType::f32);
  EXPECT_TRUE(check_op(c));
}

TEST(Elementwise, DtypeConversionsMatchTheCpuBackend) {
  OpCase c;
  c.name = "dtype conversions";
  c.seed = 2024;
  c.inputs = [](Generator& g) { return Tensors{uniform({33, 31}, -50, 50, g)}; };
  c.op = [](const Tensors& in) {
    return Tensors{in[0].to(DType::f64), in[0].to(DType::i32), in[0].to(DType::i32).to(DType::f32),
                   in[0].t().to(DType::f64)};
  };
  c.tolerance = test::every_dtype(exact());
  c.cost = cases::copy(33 * 31, DType::f32, DType::f64);
  EXPECT_TRUE(check_op(c));
}

TEST(Elementwise, FillsMatchTheCpuBackend) {
  for (DType dtype : {DType::f32, DType::f64, DType::i32}) {
    OpCase c;
    c.name = std::string("full [1000003] and arange(0, 1001, 2) ") + dtype_name(dtype);
    c.op_on = [dtype](const Tensors&, Device device) {
      return Tensors{full({1000003}, 3.0, dtype, device), arange(0, 1001, 2, dtype, device)};
    };
    c.reference = [dtype](const Tensors&) {
      Expected f{std::vector<double>(1000003, 3.0), {}, Shape{1000003}, dtype};
      Expected a{{}, {}, Shape{501}, dtype};
      for (int i = 0; i < 1001; i += 2) a.values.push_back(i);
      return std::vector<Expected>{f, a};
    };
    c.tolerance = test::every_dtype(exact());
    c.cost = cases::fill(1000003 + 501, dtype);
    EXPECT_TRUE(check_op(c));
  }
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

TEST(ElementwiseGrad, TheCheckerRejectsWrongGradients) {
  Generator gen(700);
  const Tensor x = uniform_tensor({3, 4}, gen);
  EXPECT_TRUE(test::check_gradients(
      [](const auto& in) { return square_with_backward(in[0], 1.0, false); }, {x}, gen));
  EXPECT_FALSE(test::check_gradients(
      [](const auto& in) { return square_with_backward(in[0], 1.0 + 1e-5, false); }, {x}, gen));
  EXPECT_FALSE(test::check_gradients(
      [](const auto& in) { return square_with_backward(in[0], 1.0, true); }, {x}, gen));
  // A float32 output is refused rather than checked loosely.
  EXPECT_FALSE(test::check_gradients([](const auto& in) { return in[0].to(DType::f32); }, {x}, gen));
}

TEST(ElementwiseGrad, BinaryWithBroadcasting) {
  for (const ShapePair& sp : kBroadcastCases) {
    for (Bin op : kBinaryOps) {
      OpCase c = gradient_case(
          bin_name(op) + " " + shape_str(sp.a) + " " + shape_str(sp.b), 701,
          [&](Generator& g) {
            return Tensors{uniform_tensor(sp.a, g, -1.5, 1.5), away_from_zero(sp.b, g, 0.5, 1.5)};
          },
          [op](const Tensors& in) { return apply(op, in[0], in[1]); });
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(ElementwiseGrad, SameTensorAsBothOperands) {
  for (Bin op : kBinaryOps) {
    EXPECT_TRUE(check_op(gradient_case(
        bin_name(op) + " of x and x", 702,
        [](Generator& g) { return Tensors{away_from_zero({3, 2}, g, 0.5, 1.5)}; },
        [op](const Tensors& in) { return apply(op, in[0], in[0]); })));
  }
}

TEST(ElementwiseGrad, NonContiguousOperands) {
  for (Bin op : kBinaryOps) {
    EXPECT_TRUE(check_op(gradient_case(
        bin_name(op) + " of a transpose and a narrow", 703,
        [](Generator& g) {
          return Tensors{uniform_tensor({4, 3}, g), away_from_zero({3, 6}, g, 0.5, 1.5)};
        },
        [op](const Tensors& in) { return apply(op, in[0].t(), in[1].narrow(1, 1, 4)); })));
  }
}

TEST(ElementwiseGrad, ScalarOps) {
  const std::vector<std::pair<const char*, test::TensorFn>> ops = {
      {"add", [](const auto& in) { return add(in[0], 2.5); }},
      {"sub", [](const auto& in) { return sub(in[0], -1.25); }},
      {"mul", [](const auto& in) { return mul(in[0], -3.0); }},
      {"div", [](const auto& in) { return div(in[0], 0.3); }},
      {"rsub", [](const auto& in) { return rsub(2.0, in[0]); }},
      {"operators", [](const auto& in) { return 1.5 - (2.0 * in[0] + 1.0) / 4.0 * 3.0; }},
      {"neg", [](const auto& in) { return -in[0]; }},
  };
  for (const auto& [name, f] : ops) {
    EXPECT_TRUE(check_op(gradient_case(
        name, 704, [](Generator& g) { return Tensors{uniform_tensor({3, 5}, g)}; }, f)));
  }
}

TEST(ElementwiseGrad, Pow) {
  for (double e : {2.0, 3.0, 0.5, -1.5, 1.7, 1.0, 0.0}) {
    EXPECT_TRUE(check_op(gradient_case(
        "pow " + std::to_string(e), 705,
        [](Generator& g) { return Tensors{uniform_tensor({2, 7}, g, 0.5, 2.0)}; },
        [e](const Tensors& in) { return pow(in[0], e); })));
  }
  // x^0 = 1 has derivative 0 everywhere, x = 0 included; x^1 has derivative 1 at 0.
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    Tensor z = zeros({3}, DType::f64, device);
    z.requires_grad_();
    sum(pow(z, 0.0)).backward();
    EXPECT_EQ(values_of(z.grad()), std::vector<double>(3, 0.0)) << device.str();
    z.zero_grad();
    sum(pow(z, 1.0)).backward();
    EXPECT_EQ(values_of(z.grad()), std::vector<double>(3, 1.0)) << device.str();
  }
  for (double e : {2.0, 3.0, -2.0}) {
    EXPECT_TRUE(check_op(gradient_case(
        "pow " + std::to_string(e) + " on both signs", 706,
        [](Generator& g) { return Tensors{away_from_zero({9}, g, 0.3, 1.5)}; },
        [e](const Tensors& in) { return pow(in[0], e); })));
  }
}

TEST(ElementwiseGrad, Unary) {
  using Inputs = std::function<Tensors(Generator&)>;
  const Inputs any = [](Generator& g) { return Tensors{uniform_tensor({3, 11}, g, -3, 3)}; };
  const Inputs positive = [](Generator& g) { return Tensors{uniform_tensor({3, 11}, g, 0.3, 3)}; };
  const Inputs off_zero = [](Generator& g) { return Tensors{away_from_zero({3, 11}, g, 0.1, 2.0)}; };
  // clamp to [−0.5, 0.75]: inputs below, inside and above, clear of both bounds.
  const Inputs off_bounds = [](Generator& g) {
    return Tensors{test::from_intervals({3, 11}, g, {{-2, -0.6}, {-0.4, 0.65}, {0.85, 2}})};
  };
  struct Case {
    const char* name;
    std::function<Tensor(const Tensors&)> f;
    Inputs input;
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
      {"gelu", [](const auto& in) { return gelu(in[0]); }, any},
      {"sigmoid", [](const auto& in) { return sigmoid(in[0]); }, any},
      {"tanh", [](const auto& in) { return tanh(in[0]); }, any},
      {"clamp", [](const auto& in) { return clamp(in[0], -0.5, 0.75); }, off_bounds},
      {"exp of transposed", [](const auto& in) { return exp(in[0].t()); }, any},
      {"tanh of narrowed", [](const auto& in) { return tanh(in[0].narrow(1, 2, 5)); }, any},
  };
  for (const Case& u : cases) EXPECT_TRUE(check_op(gradient_case(u.name, 706, u.input, u.f)));
}

TEST(ElementwiseGrad, ChainOfActivations) {
  EXPECT_TRUE(check_op(gradient_case(
      "sigmoid(x) · tanh(silu(x) + exp(−x/2))", 707,
      [](Generator& g) { return Tensors{uniform_tensor({4, 5}, g, -2, 2)}; },
      [](const Tensors& in) {
        return mul(sigmoid(in[0]), tanh(add(silu(in[0]), exp(mul(in[0], -0.5)))));
      })));
}

// ================================================================== errors

TEST(ElementwiseErrors, BroadcastMismatch) {
  for (Device d : test::devices()) {
    EXPECT_LATENT_ERROR(add(zeros({2, 3}, DType::f32, d), zeros({4}, DType::f32, d)), "add",
                        "[2, 3]", "[4]");
    EXPECT_LATENT_ERROR(mul(zeros({2, 3, 4}, DType::f32, d), zeros({3, 1, 4}, DType::f32, d)),
                        "mul", "[2, 3, 4]", "[3, 1, 4]");
    EXPECT_LATENT_ERROR(zeros({2, 3}, DType::f32, d) / zeros({2}, DType::f32, d), "div", "[2, 3]",
                        "[2]");
    EXPECT_LATENT_ERROR(expand(zeros({2, 3}, DType::f32, d), {3, 3}), "[2, 3]", "[3, 3]");
    EXPECT_LATENT_ERROR(sum_to(zeros({2, 3}, DType::f32, d), {4}), "sum_to", "[2, 3]", "[4]");
    EXPECT_LATENT_ERROR(sum_to(zeros({3}, DType::f32, d), {2, 3}), "sum_to", "[3]", "[2, 3]");
  }
}

TEST(ElementwiseErrors, DtypeMismatchAndIntegers) {
  for (Device d : test::devices()) {
    EXPECT_LATENT_ERROR(add(zeros({2, 3}, DType::f32, d), zeros({2, 3}, DType::f64, d)), "add",
                        "float32", "float64", "[2, 3]");
    EXPECT_LATENT_ERROR(matmul(zeros({2, 3}, DType::f32, d), zeros({3, 2}, DType::f64, d)),
                        "matmul", "float32", "float64", "[2, 3]", "[3, 2]");
    EXPECT_LATENT_ERROR(exp(zeros({2}, DType::i32, d)), "exp", "int32", "[2]");
    EXPECT_LATENT_ERROR(add(zeros({2}, DType::i32, d), zeros({2}, DType::i32, d)), "add", "int32");
    EXPECT_LATENT_ERROR(sum(zeros({2}, DType::i32, d)), "sum", "int32");
    EXPECT_LATENT_ERROR(matmul(zeros({2, 2}, DType::i32, d), zeros({2, 2}, DType::i32, d)),
                        "matmul", "int32");
  }
}

}  // namespace
}  // namespace latent
