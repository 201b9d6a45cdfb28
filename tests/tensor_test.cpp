// Tensor handles: creation, metadata, views and storage sharing, copies, dtype conversion,
// item(), printing, and the errors of bad requests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <vector>

#include "latent/autograd.h"
#include "latent/error.h"
#include "latent/ops.h"
#include "latent/random.h"
#include "latent/tensor.h"
#include "test_util.h"

namespace latent {
namespace {

using test::values_of;

std::vector<double> iota_values(std::int64_t n, double start = 0.0) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i);
  return v;
}

// [rows, cols] holding 0, 1, 2, ... in row-major order, float64.
Tensor counting(const Shape& shape) {
  return from_vector(iota_values(shape_numel(shape)), shape);
}

// ------------------------------------------------------------------ creation

TEST(TensorCreate, ZerosOnesFullInEveryDtype) {
  for (DType dtype : {DType::f32, DType::f64, DType::i32}) {
    const Tensor z = zeros({2, 3}, dtype), o = ones({4}, dtype), f = full({3, 1, 2}, -7, dtype);
    EXPECT_EQ(z.dtype(), dtype);
    EXPECT_EQ(z.shape(), (Shape{2, 3}));
    EXPECT_EQ(z.numel(), 6);
    EXPECT_EQ(values_of(z), std::vector<double>(6, 0.0));
    EXPECT_EQ(values_of(o), std::vector<double>(4, 1.0));
    EXPECT_EQ(values_of(f), std::vector<double>(6, -7.0));
    EXPECT_TRUE(z.device().is_cpu());
    EXPECT_TRUE(z.is_contiguous());
  }
  EXPECT_EQ(values_of(full({2}, 2.5, DType::f32)), (std::vector<double>{2.5, 2.5}));
  EXPECT_EQ(values_of(full({2}, 2.5, DType::i32)), (std::vector<double>{2, 2}));
}

TEST(TensorCreate, LikeHelpersCopyShapeAndDtype) {
  const Tensor base = zeros({3, 5}, DType::f64);
  for (const Tensor& t : {empty_like(base), zeros_like(base), ones_like(base)}) {
    EXPECT_EQ(t.shape(), base.shape());
    EXPECT_EQ(t.dtype(), DType::f64);
    EXPECT_NE(t.storage(), base.storage());
  }
  EXPECT_EQ(values_of(ones_like(base)), std::vector<double>(15, 1.0));
}

TEST(TensorCreate, EmptyShapesAndScalars) {
  const Tensor e = zeros({0, 4});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.dim(), 2);
  EXPECT_TRUE(e.to_vector<float>().empty());

  const Tensor s = scalar_tensor(3.25, DType::f64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.item(), 3.25);
  EXPECT_EQ(full({}, 2.0).item<float>(), 2.0f);
}

TEST(TensorCreate, Arange) {
  EXPECT_EQ(values_of(arange(5)), (std::vector<double>{0, 1, 2, 3, 4}));
  EXPECT_EQ(arange(5).dtype(), DType::f32);
  EXPECT_EQ(values_of(arange(1.0, 2.0, 0.25, DType::f64)),
            (std::vector<double>{1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(values_of(arange(0.0, -3.0, -1.0, DType::i32)), (std::vector<double>{0, -1, -2}));
  EXPECT_EQ(values_of(arange(0.0, 1.0, 0.3, DType::f64)).size(), 4u);  // ceil(1 / 0.3)
  EXPECT_EQ(arange(0).numel(), 0);
  EXPECT_EQ(arange(3.0, 1.0, 1.0).numel(), 0);
  EXPECT_LATENT_ERROR(arange(0.0, 1.0, 0.0), "arange", "step");
}

TEST(TensorCreate, FromVectorKeepsValuesAndShape) {
  const std::vector<float> f{1.5f, -2.0f, 3.25f, 0.0f, 8.0f, -0.125f};
  const Tensor a = from_vector(f, {2, 3});
  EXPECT_EQ(a.dtype(), DType::f32);
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(a.to_vector<float>(), f);
  EXPECT_EQ(a.strides(), (Shape{3, 1}));

  const std::vector<std::int32_t> i{4, -5, 6};
  EXPECT_EQ(from_vector(i, {3}).to_vector<std::int32_t>(), i);
  EXPECT_EQ(from_vector(std::vector<double>{2.0}, {}).item(), 2.0);

  EXPECT_LATENT_ERROR(from_vector(f, {4, 2}), "from_vector", "6", "[4, 2]");
}

TEST(TensorCreate, FromBlobCopyDoesNotAlias) {
  std::vector<double> host{1, 2, 3, 4};
  const Tensor t = from_blob_copy(host.data(), {2, 2}, DType::f64);
  host[0] = 100;
  EXPECT_EQ(values_of(t), (std::vector<double>{1, 2, 3, 4}));
}

TEST(TensorCreate, RandAndRandnRangesAndMoments) {
  Generator gen(31);
  const std::int64_t n = 200000;
  for (DType dtype : {DType::f32, DType::f64}) {
    const Tensor u = rand({n}, gen, dtype);
    EXPECT_EQ(u.dtype(), dtype);
    const std::vector<double> uv = values_of(u);
    double mean = 0, m2 = 0;
    for (double x : uv) {
      ASSERT_GE(x, 0.0);
      ASSERT_LT(x, 1.0);
      mean += x;
      m2 += x * x;
    }
    mean /= n;
    EXPECT_NEAR(mean, 0.5, 5 * std::sqrt(1.0 / 12 / n));
    EXPECT_NEAR(m2 / n - mean * mean, 1.0 / 12, 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / n));

    const std::vector<double> nv = values_of(randn({n}, gen, dtype));
    double nm = 0, nm2 = 0;
    for (double x : nv) {
      nm += x;
      nm2 += x * x;
    }
    nm /= n;
    EXPECT_NEAR(nm, 0.0, 5 / std::sqrt(n));
    EXPECT_NEAR(nm2 / n - nm * nm, 1.0, 5 * std::sqrt(2.0 / n));

    const std::vector<double> w = values_of(uniform({1000}, 2.0, 2.5, gen, dtype));
    for (double x : w) {
      ASSERT_GE(x, 2.0);
      ASSERT_LE(x, 2.5);
    }
  }
}

TEST(TensorCreate, NegativeSizeIsAnError) {
  EXPECT_LATENT_ERROR(zeros({2, -1}), "negative", "[2, -1]");
}

// ------------------------------------------------------------------ metadata

TEST(TensorMeta, ShapeStridesAndSizes) {
  const Tensor t = zeros({2, 3, 4});
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.size(-3), 2);
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.offset(), 0);
  EXPECT_LATENT_ERROR(t.size(3), "size", "3");
  EXPECT_LATENT_ERROR(t.size(-4), "size", "-4");
  EXPECT_LATENT_ERROR(scalar_tensor(1.0).size(0), "size", "rank 0");
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_EQ(shape_str({7}), "[7]");
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({3, 0}), 0);
  EXPECT_EQ(contiguous_strides({2, 3, 5}), (Shape{15, 5, 1}));
}

TEST(TensorMeta, UndefinedTensor) {
  const Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_LATENT_ERROR(t.shape(), "undefined");
  EXPECT_EQ(t.str(), "tensor(undefined)");
}

TEST(TensorMeta, DataChecksTheDtype) {
  const Tensor t = zeros({2}, DType::f64);
  EXPECT_NE(t.data<double>(), nullptr);
  EXPECT_LATENT_ERROR(t.data<float>(), "float64", "float32");
  EXPECT_LATENT_ERROR(t.to_vector<std::int32_t>(), "to_vector", "float64", "int32");
}

// ------------------------------------------------------------------ views share storage

TEST(TensorView, WritingThroughANarrowViewChangesTheBase) {
  const Tensor base = counting({3, 4});
  // Columns 1..2: a non-contiguous view.
  Tensor columns = base.narrow(1, 1, 2);
  EXPECT_EQ(columns.storage(), base.storage());
  EXPECT_FALSE(columns.is_contiguous());
  EXPECT_EQ(columns.shape(), (Shape{3, 2}));
  EXPECT_EQ(values_of(columns), (std::vector<double>{1, 2, 5, 6, 9, 10}));
  columns.fill_(-1.0);
  EXPECT_EQ(values_of(base), (std::vector<double>{0, -1, -1, 3, 4, -1, -1, 7, 8, -1, -1, 11}));

  // Row 1: a contiguous view with an offset.
  Tensor row = base.narrow(0, 1, 1);
  EXPECT_TRUE(row.is_contiguous());
  EXPECT_EQ(row.offset(), 4);
  row.copy_(from_vector(std::vector<double>{40, 41, 42, 43}, {1, 4}));
  EXPECT_EQ(values_of(base), (std::vector<double>{0, -1, -1, 3, 40, 41, 42, 43, 8, -1, -1, 11}));
  row.zero_();
  EXPECT_EQ(values_of(base.narrow(0, 1, 1)), std::vector<double>(4, 0.0));
  EXPECT_EQ(values_of(base.narrow(0, 0, 1)), (std::vector<double>{0, -1, -1, 3}));
}

TEST(TensorView, ViewsOfViewsCompose) {
  const Tensor base = counting({4, 5, 6});
  const Tensor v = base.permute({2, 0, 1}).narrow(0, 1, 3).narrow(2, 2, 2).transpose(1, 2);
  // v[a, b, c] = base[c, 2 + b, 1 + a]; shape [3, 2, 4].
  ASSERT_EQ(v.shape(), (Shape{3, 2, 4}));
  std::vector<double> expected;
  for (int a = 0; a < 3; ++a)
    for (int b = 0; b < 2; ++b)
      for (int c = 0; c < 4; ++c) expected.push_back(c * 30 + (2 + b) * 6 + (1 + a));
  EXPECT_EQ(values_of(v), expected);
  EXPECT_EQ(v.storage(), base.storage());
}

TEST(TensorView, SliceHandlesNegativeAndOversizedBounds) {
  const Tensor t = counting({10});
  EXPECT_EQ(values_of(t.slice(0, 2, 5)), (std::vector<double>{2, 3, 4}));
  EXPECT_EQ(values_of(t.slice(0, -3, 10)), (std::vector<double>{7, 8, 9}));
  EXPECT_EQ(values_of(t.slice(0, 8, 100)), (std::vector<double>{8, 9}));
  EXPECT_EQ(values_of(t.slice(-1, 1, -7)), (std::vector<double>{1, 2}));
  EXPECT_EQ(t.slice(0, 4, 4).numel(), 0);
  EXPECT_EQ(values_of(t.narrow(0, -2, 2)), (std::vector<double>{8, 9}));
  EXPECT_LATENT_ERROR(t.slice(0, 6, 3), "slice", "[6, 3)");
}

TEST(TensorView, ContiguousOfPermutedTensorCopiesInTheNewOrder) {
  const Tensor base = counting({2, 3, 4});
  const Tensor p = base.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_FALSE(p.is_contiguous());
  const Tensor c = p.contiguous();
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_NE(c.storage(), base.storage());
  std::vector<double> expected;
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) expected.push_back(i * 12 + j * 4 + k);
  EXPECT_EQ(values_of(c), expected);
  // A contiguous tensor's contiguous() is itself.
  EXPECT_EQ(base.contiguous().storage(), base.storage());
  EXPECT_EQ(c.contiguous().impl(), c.impl());
}

TEST(TensorView, TransposeAndT) {
  const Tensor m = counting({2, 3});
  EXPECT_EQ(values_of(m.t()), (std::vector<double>{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(values_of(m.transpose(-1, 0)), values_of(m.t()));
  EXPECT_EQ(m.t().storage(), m.storage());
  EXPECT_LATENT_ERROR(counting({2, 3, 4}).t(), "t:", "[2, 3, 4]");
}

TEST(TensorView, ReshapeOfContiguousInputIsAView) {
  const Tensor base = counting({2, 6});
  Tensor r = base.reshape({3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 4}));
  EXPECT_EQ(r.storage(), base.storage());
  r.narrow(0, 0, 1).fill_(9.0);
  EXPECT_EQ(values_of(base.narrow(0, 0, 1)), (std::vector<double>{9, 9, 9, 9, 4, 5}));
  EXPECT_EQ(base.reshape({12}).shape(), (Shape{12}));
  EXPECT_EQ(base.reshape({-1}).shape(), (Shape{12}));
  EXPECT_EQ(base.reshape({1, 2, 1, 6}).shape(), (Shape{1, 2, 1, 6}));
  EXPECT_EQ(scalar_tensor(1.0).reshape({1, 1}).shape(), (Shape{1, 1}));
  EXPECT_EQ(zeros({0, 3}).reshape({3, 0}).shape(), (Shape{3, 0}));
  EXPECT_LATENT_ERROR(zeros({0, 3}).reshape({3, -1, 0}), "reshape", "[0, 3]");
}

TEST(TensorView, ReshapeOfNonContiguousInputCopies) {
  const Tensor base = counting({3, 4});
  const Tensor t = base.t();
  const Tensor r = t.reshape({12});
  EXPECT_NE(r.storage(), base.storage());
  EXPECT_EQ(values_of(r), (std::vector<double>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  r.detach().fill_(0.0);
  EXPECT_EQ(values_of(base), iota_values(12));  // the base is untouched
}

TEST(TensorView, FlattenUnsqueezeSqueeze) {
  const Tensor t = counting({2, 3, 4, 5});
  EXPECT_EQ(t.flatten().shape(), (Shape{120}));
  EXPECT_EQ(t.flatten(1).shape(), (Shape{2, 60}));
  EXPECT_EQ(t.flatten(1, 2).shape(), (Shape{2, 12, 5}));
  EXPECT_EQ(t.flatten(-2, -1).shape(), (Shape{2, 3, 20}));
  EXPECT_EQ(scalar_tensor(2.0).flatten().shape(), (Shape{1}));
  EXPECT_EQ(flatten(t, 0, 1).shape(), (Shape{6, 4, 5}));
  EXPECT_LATENT_ERROR(t.flatten(2, 1), "flatten");

  const Tensor v = counting({3});
  EXPECT_EQ(v.unsqueeze(0).shape(), (Shape{1, 3}));
  EXPECT_EQ(v.unsqueeze(1).shape(), (Shape{3, 1}));
  EXPECT_EQ(v.unsqueeze(-1).shape(), (Shape{3, 1}));
  EXPECT_EQ(v.unsqueeze(0).squeeze(0).shape(), (Shape{3}));
  EXPECT_EQ(counting({3, 1, 2}).squeeze(-2).shape(), (Shape{3, 2}));
  EXPECT_EQ(scalar_tensor(1.0).unsqueeze(0).shape(), (Shape{1}));
  EXPECT_LATENT_ERROR(v.squeeze(0), "squeeze", "[3]");
  EXPECT_LATENT_ERROR(v.unsqueeze(3), "unsqueeze");
}

TEST(TensorView, DetachSharesDataButNotHistory) {
  Tensor x = counting({3});
  x.requires_grad_();
  const Tensor y = mul(x, 2.0);
  const Tensor d = y.detach();
  EXPECT_EQ(d.storage(), y.storage());
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(values_of(d), (std::vector<double>{0, 2, 4}));
}

TEST(TensorView, CloneIsIndependent) {
  const Tensor base = counting({2, 2});
  const Tensor c = base.clone();
  EXPECT_NE(c.storage(), base.storage());
  c.detach().fill_(5.0);
  EXPECT_EQ(values_of(base), (std::vector<double>{0, 1, 2, 3}));
  EXPECT_EQ(values_of(base.t().clone()), (std::vector<double>{0, 2, 1, 3}));
  EXPECT_TRUE(base.t().clone().is_contiguous());
}

// ------------------------------------------------------------------ copies and conversion

TEST(TensorCopy, CopyConvertsDtypeAndHonoursStrides) {
  Tensor dst = zeros({2, 3}, DType::f32);
  dst.copy_(counting({3, 2}).t());  // float64 source, transposed
  EXPECT_EQ(values_of(dst), (std::vector<double>{0, 2, 4, 1, 3, 5}));

  Tensor ints = zeros({3}, DType::i32);
  ints.copy_(from_vector(std::vector<double>{1.9, -1.9, 7.0}, {3}));
  EXPECT_EQ(ints.to_vector<std::int32_t>(), (std::vector<std::int32_t>{1, -1, 7}));

  Tensor t = counting({2, 3});
  t.t().copy_(ones({3, 2}, DType::f64));
  EXPECT_EQ(values_of(t), std::vector<double>(6, 1.0));
}

TEST(TensorCopy, ShapeMismatchIsAnErrorEvenWhenBroadcastable) {
  Tensor dst = zeros({2, 3});
  EXPECT_LATENT_ERROR(dst.copy_(ones({3})), "copy_", "[3]", "[2, 3]");
  EXPECT_LATENT_ERROR(dst.copy_(ones({1, 3})), "copy_", "[1, 3]", "[2, 3]");
  EXPECT_LATENT_ERROR(dst.copy_(ones({3, 2})), "copy_", "[3, 2]", "[2, 3]");
  EXPECT_EQ(values_of(dst), std::vector<double>(6, 0.0));  // untouched
}

TEST(TensorDtype, Conversions) {
  const Tensor d = from_vector(std::vector<double>{0.1, -2.75, 3.9999, -0.5, 1e10}, {5});
  const Tensor f = d.to(DType::f32);
  EXPECT_EQ(f.dtype(), DType::f32);
  const std::vector<float> fv = f.to_vector<float>();
  EXPECT_EQ(fv[0], 0.1f);  // rounded to nearest
  EXPECT_EQ(fv[1], -2.75f);
  EXPECT_EQ(fv[4], 1e10f);
  // float32 -> float64 is exact.
  EXPECT_EQ(f.to(DType::f64).to_vector<double>()[0], static_cast<double>(0.1f));
  // To int32 truncates toward zero.
  const Tensor i = d.narrow(0, 0, 4).to(DType::i32);
  EXPECT_EQ(i.to_vector<std::int32_t>(), (std::vector<std::int32_t>{0, -2, 3, 0}));
  EXPECT_EQ(values_of(i.to(DType::f32)), (std::vector<double>{0, -2, 3, 0}));
  EXPECT_EQ(values_of(from_vector(std::vector<std::int32_t>{-7, 2147483647}, {2})
                          .to(DType::f64)),
            (std::vector<double>{-7, 2147483647.0}));
  // Same dtype: no copy.
  EXPECT_EQ(d.to(DType::f64).storage(), d.storage());
  // Non-contiguous source.
  EXPECT_EQ(values_of(counting({2, 3}).t().to(DType::f32)),
            (std::vector<double>{0, 3, 1, 4, 2, 5}));
}

TEST(TensorDtype, Names) {
  EXPECT_STREQ(dtype_name(DType::f32), "float32");
  EXPECT_STREQ(dtype_name(DType::f64), "float64");
  EXPECT_STREQ(dtype_name(DType::i32), "int32");
  EXPECT_EQ(dtype_size(DType::f64), 8u);
  EXPECT_TRUE(is_floating(DType::f32));
  EXPECT_FALSE(is_floating(DType::i32));
  EXPECT_EQ(parse_device("cpu"), Device::cpu());
  EXPECT_EQ(parse_device("cuda:3"), Device::cuda(3));
  EXPECT_LATENT_ERROR(parse_device("tpu"), "tpu");
  EXPECT_LATENT_ERROR(parse_device("cuda:x"), "cuda:x");
}

TEST(TensorItem, ItemOfOneElementTensors) {
  EXPECT_EQ(from_vector(std::vector<float>{2.5f}, {1}).item(), 2.5);
  EXPECT_EQ(from_vector(std::vector<double>{-1.25}, {1, 1, 1}).item<float>(), -1.25f);
  EXPECT_EQ(from_vector(std::vector<std::int32_t>{42}, {}).item<std::int32_t>(), 42);
  EXPECT_EQ(from_vector(std::vector<std::int32_t>{42}, {}).item(), 42.0);
  EXPECT_EQ(from_vector(std::vector<double>{3.75}, {}).item<std::int32_t>(), 3);
  // A one-element view with an offset.
  EXPECT_EQ(counting({3, 4}).narrow(0, 2, 1).narrow(1, 3, 1).item(), 11.0);
  EXPECT_LATENT_ERROR(zeros({2}).item(), "item", "[2]", "2 elements");
  EXPECT_LATENT_ERROR(zeros({0}).item(), "item", "[0]");
}

// ------------------------------------------------------------------ printing

TEST(TensorPrint, StrShowsValuesShapeAndDtype) {
  const Tensor t = from_vector(std::vector<float>{1.5f, -2.0f, 3.25f, 0.0f, 100.0f, -0.5f},
                               {2, 3});
  const std::string s = t.str();
  for (const char* part : {"1.5", "-2", "3.25", "100", "-0.5", "shape=[2, 3]", "float32",
                           "cpu"}) {
    EXPECT_NE(s.find(part), std::string::npos) << part << " not in " << s;
  }
  EXPECT_EQ(s.find("requires_grad"), std::string::npos);
  // Rows are printed in order.
  EXPECT_LT(s.find("1.5"), s.find("100"));

  std::ostringstream out;
  out << t;
  EXPECT_EQ(out.str(), s);
}

TEST(TensorPrint, IntegersScalarsEmptyAndLongTensors) {
  const std::string ints = from_vector(std::vector<std::int32_t>{7, -8, 9}, {3}).str();
  EXPECT_NE(ints.find("[7, -8, 9]"), std::string::npos) << ints;
  EXPECT_NE(ints.find("int32"), std::string::npos);

  const std::string scalar = scalar_tensor(0.25, DType::f64).str();
  EXPECT_NE(scalar.find("0.25"), std::string::npos) << scalar;
  EXPECT_NE(scalar.find("shape=[]"), std::string::npos) << scalar;
  EXPECT_NE(scalar.find("float64"), std::string::npos);

  const std::string empty_str = zeros({0, 3}).str();
  EXPECT_NE(empty_str.find("shape=[0, 3]"), std::string::npos) << empty_str;

  // A long row is summarized with its ends.
  const std::string longer = arange(100).str();
  EXPECT_NE(longer.find("..."), std::string::npos) << longer;
  EXPECT_NE(longer.find("[0, 1, 2, ..., 97, 98, 99]"), std::string::npos) << longer;

  // Many rows are summarized too.
  const std::string tall = zeros({20, 2}, DType::i32).str();
  EXPECT_NE(tall.find("...,"), std::string::npos) << tall;
  EXPECT_NE(tall.find("shape=[20, 2]"), std::string::npos) << tall;

  // Nested rows, non-contiguous.
  const std::string nested = counting({3, 2}).t().str();
  EXPECT_NE(nested.find("[[0, 2, 4],"), std::string::npos) << nested;
  EXPECT_NE(nested.find("[1, 3, 5]]"), std::string::npos) << nested;
}

TEST(TensorPrint, MarksTensorsThatRequireGrad) {
  Tensor x = ones({2}, DType::f64);
  x.requires_grad_();
  EXPECT_NE(x.str().find("requires_grad"), std::string::npos);
  EXPECT_NE(mul(x, 3.0).str().find("requires_grad"), std::string::npos);
}

}  // namespace
}  // namespace latent

namespace latent {
namespace {

// Shapes are validated in one place (checked_numel): negative sizes and shapes whose strides
// overflow int64 are errors in any order of the dimensions, with or without a zero; an empty
// tensor is contiguous and no loop walks its dimensions.
TEST(TensorShapes, OverflowingShapesAreErrorsInAnyOrder) {
  const std::int64_t big = std::int64_t{1} << 62;
  // Strides of [0, 2^62, 2^62] are [2^124, 2^62, 1]: too large although no element exists.
  for (const Shape& s : {Shape{0, big, big}, Shape{0, INT64_MAX, 4}, Shape{big, 4, 4},
                         Shape{3, -1}}) {
    SCOPED_TRACE(shape_str(s));
    EXPECT_LATENT_ERROR(checked_numel(s), "tensor");
    EXPECT_LATENT_ERROR(empty(s), "tensor creation");
  }
  EXPECT_EQ(checked_numel({big, 0, 4}), 0);
  EXPECT_EQ(checked_numel({big, big, 0}), 0);  // strides [2^62, 1, 1]: addressable, empty
  EXPECT_EQ(checked_numel({}), 1);
  EXPECT_LATENT_ERROR(empty({big, 4}), "too large");  // elements fit, bytes do not
}

TEST(TensorShapes, EmptyTensorsAreContiguousAndNothingWalksThem) {
  const std::int64_t huge = std::int64_t{1} << 40;
  const Tensor t = empty({huge, 0, 4});
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_TRUE(t.transpose(0, 2).is_contiguous());
  // Each of these would walk 2^40 outer indices if the empty dimension were not seen.
  EXPECT_EQ(t.transpose(0, 2).contiguous().numel(), 0);
  EXPECT_EQ(add(t, t).numel(), 0);
  EXPECT_EQ(sum(t, {2}).numel(), 0);
  EXPECT_EQ(t.to(DType::f64).numel(), 0);
}

}  // namespace
}  // namespace latent
