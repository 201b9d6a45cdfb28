// Deterministic reductions (kernels/reduce.cuh; src/ops/reduce.cpp) through the op harness
// (tests/op_harness.h), on every device: sum and mean over every kind of dimension set
// against double loops with the classical error bound, sum_to and expand, argmax (ties to
// the lowest index, NaN is the maximum), bitwise repeatability, the cuda backend against
// cpu, gradients against finite differences, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "latent/latent.h"
#include "tests/op_harness.h"
#include "tests/reference.h"

namespace latent {
namespace {

using test::broadcast_source;
using test::check_op;
using test::exact;
using test::Expected;
using test::gradient_case;
using test::kU64;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::reduce_ref;
using test::Reduced;
using test::Tensors;
using test::uniform_tensor;
using test::unit_roundoff;
using test::values_of;

// The allowed error of a computed sum of r.count terms: the cpu backend accumulates in
// double (one final rounding to the dtype); the cuda kernels accumulate in the dtype.
std::vector<double> sum_bound(const Reduced& r, DType dtype, Device device) {
  const double u = device.is_cpu() ? kU64 : unit_roundoff(dtype);
  std::vector<double> allowed(r.sum.size());
  for (std::size_t i = 0; i < r.sum.size(); ++i)
    allowed[i] = unit_roundoff(dtype) * std::abs(r.sum[i]) +
                 static_cast<double>(r.count) * u * r.abs_sum[i];
  return allowed;
}

// ================================================================== against loops

TEST(Reduce, SumAndMeanOverDims) {
  const Shape shape{5, 7, 9};
  const std::vector<std::vector<std::int64_t>> dim_sets = {
      {}, {0}, {1}, {2}, {-1}, {-3}, {0, 2}, {1, -1}, {0, 1, 2}, {2, 0}};
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const auto& dims : dim_sets) {
      for (bool keepdim : {false, true}) {
        OpCase c;
        c.name = "sum and mean over " + ::testing::PrintToString(dims) + " keepdim " +
                 std::to_string(keepdim) + " " + dtype_name(dtype);
        c.seed = 201;
        c.inputs = [&](Generator& g) { return Tensors{uniform_tensor(shape, g, -1, 1, dtype)}; };
        c.op = [&](const Tensors& in) {
          return Tensors{sum(in[0], dims, keepdim), mean(in[0], dims, keepdim)};
        };
        c.reference_on = [&](const Tensors& in, Device device) {
          const Reduced r = reduce_ref(values_of(in[0]), shape, dims, keepdim);
          Expected s{r.sum, sum_bound(r, dtype, device), r.shape, dtype};
          Expected m{std::vector<double>(r.sum.size()), std::vector<double>(r.sum.size()),
                     r.shape, dtype};
          for (std::size_t i = 0; i < r.sum.size(); ++i) {
            m.values[i] = r.sum[i] / static_cast<double>(r.count);
            m.bound[i] = s.bound[i] / static_cast<double>(r.count) +
                         2 * unit_roundoff(dtype) * std::abs(m.values[i]);
          }
          return std::vector<Expected>{s, m};
        };
        c.tolerance = per_dtype(near(0, 0), near(0, 0));  // within the bounds
        c.cost = cases::sum(shape_numel(shape), 1, dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
  EXPECT_EQ(sum(zeros({2, 3})).shape(), Shape{});
  EXPECT_EQ(sum(zeros({2, 3}), {}, true).shape(), (Shape{1, 1}));
}

TEST(Reduce, NonContiguousInput) {
  for (const std::vector<std::int64_t>& dims :
       {std::vector<std::int64_t>{}, {0}, {1}, {2}, {0, 2}}) {
    OpCase c;
    c.name = "sum of a permuted, narrowed view over " + ::testing::PrintToString(dims);
    c.seed = 202;
    c.inputs = [](Generator& g) { return Tensors{uniform_tensor({6, 4, 5}, g)}; };
    c.op = [&](const Tensors& in) {
      return Tensors{sum(in[0].permute({2, 0, 1}).narrow(1, 1, 4), dims)};  // [5, 4, 4]
    };
    c.reference_on = [&](const Tensors& in, Device device) {
      const Tensor x = in[0].permute({2, 0, 1}).narrow(1, 1, 4);
      const Reduced r = reduce_ref(values_of(x), x.shape(), dims, false);
      // cpu: all_close(rtol 1e-15, atol 1e-15); cuda sums in another order: plus n·u·Σ|x|.
      Expected e{r.sum, std::vector<double>(r.sum.size())};
      for (std::size_t i = 0; i < r.sum.size(); ++i)
        e.bound[i] = 1e-15 + 1e-15 * std::abs(r.sum[i]) +
                     (device.is_cpu() ? 0.0 : static_cast<double>(r.count) * kU64 * r.abs_sum[i]);
      return std::vector<Expected>{e};
    };
    c.tolerance = per_dtype(near(0, 0), near(0, 0));
    c.cost = cases::sum(80, 1, DType::f64);
    EXPECT_TRUE(check_op(c));
  }
}

TEST(Reduce, SumToAndExpand) {
  OpCase c;
  c.name = "sum_to and expand";
  c.seed = 203;
  c.inputs = [](Generator& g) {
    return Tensors{uniform_tensor({2, 3, 4}, g), uniform_tensor({3, 1}, g)};
  };
  c.op = [](const Tensors& in) {
    const Tensor& x = in[0];
    return Tensors{sum_to(x, {3, 4}), sum_to(x, {2, 1, 4}), sum_to(x, {1, 4}), sum_to(x, {}),
                   expand(in[1], {2, 3, 4}),
                   expand(scalar_tensor(2.0, DType::f64, x.device()), {2, 2})};
  };
  c.reference_on = [](const Tensors& in, Device device) {
    const std::vector<double> xv = values_of(in[0]), cv = values_of(in[1]);
    std::vector<Expected> e;
    // cpu: all_close(rtol 1e-15) and, for the total, EXPECT_NEAR 1e-14; cuda sums in
    // another order: plus n·u·Σ|x|.
    auto summed = [&](std::vector<std::int64_t> dims, const Shape& shape, double abs, double rel) {
      const Reduced r = reduce_ref(xv, {2, 3, 4}, dims, false);
      Expected s{r.sum, std::vector<double>(r.sum.size()), shape};
      for (std::size_t i = 0; i < r.sum.size(); ++i)
        s.bound[i] = abs + rel * std::abs(r.sum[i]) +
                     (device.is_cpu() ? 0.0 : static_cast<double>(r.count) * kU64 * r.abs_sum[i]);
      e.push_back(s);
    };
    summed({0}, {3, 4}, 0, 1e-15);
    summed({1}, {2, 1, 4}, 0, 1e-15);
    summed({0, 1}, {1, 4}, 0, 1e-15);
    summed({}, {}, 1e-14, 0);
    Expected expanded{{}, {}, Shape{2, 3, 4}};
    for (int i = 0; i < 24; ++i) expanded.values.push_back(cv[broadcast_source({2, 3, 4}, {3, 1}, i)]);
    e.push_back(expanded);
    e.push_back({{2, 2, 2, 2}, {}, Shape{2, 2}});
    return e;
  };
  c.tolerance = per_dtype(near(0, 0), near(0, 0));  // within the bounds, expand exactly
  c.cost = cases::sum(24, 12, DType::f64);
  EXPECT_TRUE(check_op(c));

  test::PoisonScope poison;
  Generator gen(203);
  for (Device device : test::devices()) {
    const Tensor x = uniform_tensor({2, 3, 4}, gen).to(device);
    EXPECT_EQ(sum_to(x, {1}).shape(), (Shape{1})) << device.str();
    EXPECT_EQ(sum_to(x, {2, 3, 4}).storage(), x.storage()) << device.str();
  }
}

TEST(Reduce, Argmax) {
  const Tensor x = from_vector(std::vector<float>{1, 5, 5, 0,   //
                                                  7, 7, 7, 7,   //
                                                  -1, -3, -0.5f, -2},
                               {3, 4});
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    const Tensor xd = x.to(device);
    const Tensor rows = argmax(xd, 1);
    EXPECT_EQ(rows.dtype(), DType::i32);
    EXPECT_EQ(rows.to(Device::cpu()).to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{1, 0, 2}))  // ties low
        << device.str();
    EXPECT_EQ(argmax(xd, 0).to(Device::cpu()).to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{1, 1, 1, 1}));
    EXPECT_EQ(argmax(xd, -2).to(Device::cpu()).to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{1, 1, 1, 1}));
    EXPECT_EQ(argmax(xd.t(), 0).to(Device::cpu()).to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{1, 0, 2}));
    EXPECT_EQ(argmax(zeros({2, 3, 4}, DType::f32, device), 1).shape(), (Shape{2, 4}));
  }
}

TEST(Reduce, AllcloseAndMaxAbsDiff) {
  for (Device device : test::devices()) {
    const Tensor a = from_vector(std::vector<double>{1, 2, 3}, {3}).to(device);
    const Tensor b = from_vector(std::vector<double>{1, 2.5, 3}, {3}).to(device);
    EXPECT_EQ(max_abs_diff(a, b), 0.5);
    EXPECT_TRUE(allclose(a, a));
    EXPECT_FALSE(allclose(a, b));
    EXPECT_TRUE(allclose(a, b, 0.0, 0.5));
    EXPECT_FALSE(allclose(a, a.reshape({1, 3})));
    EXPECT_TRUE(allclose(a.to(DType::f32), a));
    const Tensor nan = from_vector(std::vector<double>{1, NAN, 3}, {3}).to(device);
    EXPECT_FALSE(allclose(nan, nan));
    EXPECT_TRUE(std::isnan(max_abs_diff(a, nan)));
  }
}

// ================================================================== cuda against cpu

TEST(Reduce, SumsOverEveryKindOfDimensionSetMatchTheCpuBackend) {
  struct Case {
    Shape shape;
    std::vector<std::int64_t> dims;
    bool keepdim;
  };
  const std::vector<Case> shapes = {
      {{1000003}, {}, false},        {{1}, {}, false},           {{31, 33}, {0}, false},
      {{31, 33}, {1}, true},         {{4096, 3}, {1}, false},    {{3, 100000}, {1}, false},
      {{5, 6, 7}, {0, 2}, true},     {{5, 6, 7}, {-1}, false},   {{2, 3, 4, 5}, {1, 3}, false},
      {{70000, 2}, {0}, false},
  };
  for (const Case& s : shapes) {
    for (DType dtype : {DType::f32, DType::f64}) {
      OpCase c;
      c.name = "sum and mean " + shape_str(s.shape) + " over " + ::testing::PrintToString(s.dims) +
               " " + dtype_name(dtype);
      c.seed = 2024;
      c.inputs = [&](Generator& g) { return Tensors{uniform(s.shape, -2, 2, g, dtype)}; };
      c.op = [&](const Tensors& in) {
        return Tensors{sum(in[0], s.dims, s.keepdim), mean(in[0], s.dims, s.keepdim)};
      };
      c.tolerance = per_dtype(near(2e-5, 2e-5), near(1e-12, 1e-12));
      c.gradients = true;
      c.cost = cases::sum(shape_numel(s.shape), 1, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(Reduce, SumIsBitwiseRepeatable) {
  test::PoisonScope poison;
  Generator gen(2024);
  const Tensor host = uniform({3, 1000003}, -2, 2, gen);
  for (Device device : test::devices()) {
    const Tensor x = host.to(device);
    const Tensor first = sum(x, {1}).to(Device::cpu());
    for (int i = 0; i < 3; ++i)
      EXPECT_TRUE(test::identical(sum(x, {1}).to(Device::cpu()), first)) << device.str();
  }
}

TEST(Reduce, ArgmaxMatchesTheCpuBackendTiesLowNaNHighest) {
  OpCase c;
  c.name = "argmax [257, 33] over each dim";
  c.seed = 2024;
  c.inputs = [](Generator& g) { return Tensors{uniform({257, 33}, -2, 2, g)}; };
  c.op = [](const Tensors& in) { return Tensors{argmax(in[0], 1), argmax(in[0], 0)}; };
  c.tolerance = test::every_dtype(exact());
  c.cost = cases::argmax(257 * 33, 257, DType::f32);
  EXPECT_TRUE(check_op(c));
  test::PoisonScope poison;
  // Ties go to the lowest index.
  const Tensor ties = from_vector<float>({1, 5, 5, 2, 7, 7, 7, 0}, {2, 4});
  // NaN is the maximum, as in torch.argmax; the first NaN wins.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor with_nan = from_vector<float>({1, 9, nan, nan, nan, 2, 3, 4}, {2, 4});
  for (Device device : test::devices()) {
    EXPECT_EQ(argmax(ties.to(device), 1).to(Device::cpu()).to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{1, 0}))
        << device.str();
    EXPECT_EQ(argmax(with_nan.to(device), 1).to(Device::cpu()).to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{2, 0}))
        << device.str();
  }
}

// ================================================================== gradients

TEST(ReduceGrad, SumAndMean) {
  auto x = [](Generator& g) { return Tensors{uniform_tensor({2, 3, 4}, g)}; };
  const std::vector<std::vector<std::int64_t>> dim_sets = {{},    {0},     {1},     {2},
                                                           {-1},  {-2},    {0, 2},  {-1, 0},
                                                           {1, 2}, {0, 1, 2}};
  for (const auto& dims : dim_sets) {
    for (bool keepdim : {false, true}) {
      const std::string where = ::testing::PrintToString(dims) + " keepdim " + std::to_string(keepdim);
      EXPECT_TRUE(check_op(gradient_case("sum " + where, 801, x, [&](const Tensors& in) {
        return sum(in[0], dims, keepdim);
      })));
      EXPECT_TRUE(check_op(gradient_case("mean " + where, 801, x, [&](const Tensors& in) {
        return mean(in[0], dims, keepdim);
      })));
    }
  }
  EXPECT_TRUE(check_op(gradient_case("sum", 801, x, [](const Tensors& in) { return sum(in[0]); })));
  EXPECT_TRUE(check_op(gradient_case("mean", 801, x, [](const Tensors& in) { return mean(in[0]); })));
  EXPECT_TRUE(check_op(gradient_case("sum of a permuted view", 801, x, [](const Tensors& in) {
    return sum(in[0].permute({2, 0, 1}), {1});
  })));
}

TEST(ReduceGrad, SumToAndExpand) {
  for (const Shape& target : {Shape{3, 4}, Shape{1, 4}, Shape{2, 1, 4}, Shape{2, 3, 1},
                              Shape{4}, Shape{1}, Shape{}, Shape{2, 3, 4}}) {
    EXPECT_TRUE(check_op(gradient_case(
        "sum_to " + shape_str(target), 802,
        [](Generator& g) { return Tensors{uniform_tensor({2, 3, 4}, g)}; },
        [&](const Tensors& in) { return sum_to(in[0], target); })));
  }
  const std::vector<std::pair<Shape, Shape>> expansions = {
      {{3, 1}, {2, 3, 4}}, {{}, {2, 3}}, {{4}, {3, 4}}, {{1, 1}, {2, 5}}, {{2, 3}, {2, 3}}};
  for (const auto& [from, to] : expansions) {
    EXPECT_TRUE(check_op(gradient_case(
        "expand " + shape_str(from) + " to " + shape_str(to), 802,
        [&](Generator& g) { return Tensors{uniform_tensor(from, g)}; },
        [&](const Tensors& in) { return expand(in[0], to); })));
  }
}

// ================================================================== errors

TEST(ReduceErrors, ReductionsAndScalars) {
  for (Device d : test::devices()) {
    EXPECT_LATENT_ERROR(sum(zeros({2, 3}, DType::f32, d), {2}), "sum", "2");
    EXPECT_LATENT_ERROR(sum(zeros({2, 3}, DType::f32, d), {-3}), "sum", "-3");
    EXPECT_LATENT_ERROR(mean(zeros({0, 3}, DType::f32, d)), "mean", "[0, 3]");
    EXPECT_LATENT_ERROR(mean(zeros({0, 3}, DType::f32, d), {0}), "mean", "[0, 3]");
    EXPECT_LATENT_ERROR(sum(scalar_tensor(1.0, DType::f32, d), {0}), "sum", "rank 0");
    EXPECT_LATENT_ERROR(argmax(zeros({0, 3}, DType::f32, d), 0), "argmax", "[0, 3]");
    EXPECT_LATENT_ERROR(div(zeros({2}, DType::f32, d), 0.0), "div", "[2]");
    EXPECT_LATENT_ERROR(clamp(zeros({2}, DType::f32, d), 1.0, -1.0), "clamp");
    EXPECT_LATENT_ERROR(max_abs_diff(zeros({2}, DType::f32, d), zeros({3}, DType::f32, d)),
                        "max_abs_diff", "[2]", "[3]");
    EXPECT_LATENT_ERROR(add(Tensor(), zeros({2}, DType::f32, d)), "add", "undefined");
  }
}

}  // namespace
}  // namespace latent
