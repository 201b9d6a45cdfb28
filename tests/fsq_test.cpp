// FSQ: the ops (fsq_quantize, fsq_indices_to_codes, fsq_codes_to_indices) against a plain
// double-precision restatement of the formulas written here, independent of kernels/fsq.cuh;
// every index of several implicit codebooks round-tripped; rounding boundaries; the
// straight-through gradient against finite differences of the bound; the cuda backend (the
// SIMT executor in CI) against cpu bit for bit; bad input; the FSQ autoencoder and the CLI.
// The kernel cases run through the op harness (tests/op_harness.h) on every device.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cli_util.h"
#include "kernels/fsq.cuh"
#include "latent/latent.h"
#include "tests/op_harness.h"
#include "tests/synthetic_data.h"
#include "tools/train/pictures.h"
#include "tools/train/train.h"

namespace latent {
namespace {

using test::check_op;
using test::devices;
using test::Expected;
using test::identical;
using test::OpCase;
using test::Tensors;
using test::values_of;
using Levels = std::vector<std::int64_t>;

// ------------------------------------------------------------------ the reference
// The FSQ formulas of docs/fsq.md in double precision, one channel at a time.
struct Channel {
  std::int64_t L;
  bool symmetric;

  double half() const { return static_cast<double>(L - 1) * (1.0 + 1e-3) / 2.0; }
  double offset() const { return L % 2 == 0 ? 0.5 : 0.0; }
  double shift() const { return symmetric ? 0.0 : std::atanh(offset() / half()); }
  std::int64_t h() const { return L / 2; }

  // The value that is rounded (standard) or floored (symmetric), in units of levels.
  double bound(double z) const {
    if (symmetric) return static_cast<double>(L - 1) * (std::tanh(z) + 1.0) / 2.0 + 0.5;
    return std::tanh(z + shift()) * half() - offset();
  }
  std::int64_t digit(double z) const {
    if (symmetric) return std::clamp<std::int64_t>(std::floor(bound(z)), 0, L - 1);
    return std::clamp<std::int64_t>(std::llround(std::nearbyint(bound(z))) + h(), 0, L - 1);
  }
  double code(std::int64_t digit) const {
    if (symmetric) return static_cast<double>(2 * digit - (L - 1)) / static_cast<double>(L - 1);
    return static_cast<double>(digit - h()) / static_cast<double>(h());
  }
  // The code before rounding: its derivative is the straight-through gradient.
  double soft_code(double z) const {
    if (symmetric) return std::tanh(z);
    return bound(z) / static_cast<double>(h());
  }
  // The z whose bound is `b` (b in the bound's open range).
  double z_of_bound(double b) const {
    if (symmetric) return std::atanh(2.0 * (b - 0.5) / static_cast<double>(L - 1) - 1.0);
    return std::atanh((b + offset()) / half()) - shift();
  }
  // A z inside level `digit`, at fraction u ∈ (−½, ½) of the way from its centre to its edges.
  double z_in_level(std::int64_t digit, double u) const {
    // The outer parts of the end levels lie beyond tanh's range: stay inside it.
    if (symmetric) {
      // Bins of the floored value are [digit, digit + 1), the range is (½, L − ½).
      const double b = static_cast<double>(digit) + 0.5 + u;
      return z_of_bound(std::clamp(b, 0.5 + 1e-4, static_cast<double>(L) - 0.5 - 1e-4));
    }
    const double b = static_cast<double>(digit - h()) + u;
    return z_of_bound(std::clamp(b, -half() - offset() + 1e-4, half() - offset() - 1e-4));
  }
};

std::int64_t codebook_size(const Levels& levels) {
  std::int64_t n = 1;
  for (auto L : levels) n *= L;
  return n;
}

// Digits of an index: mixed radix, first channel least significant.
std::vector<std::int64_t> digits_of(std::int64_t index, const Levels& levels) {
  std::vector<std::int64_t> digits;
  for (auto L : levels) {
    digits.push_back(index % L);
    index /= L;
  }
  return digits;
}

FsqOptions with_symmetric(bool symmetric) {
  FsqOptions o;
  o.symmetric = symmetric;
  return o;
}

const std::vector<Levels>& level_sets() {
  // The FSQ paper's sets (2^8 … 2^16), all-even, all-odd, mixed, binary and single channels.
  static const std::vector<Levels> sets = {
      {8, 6, 5}, {8, 5, 5, 5}, {7, 5, 5, 5, 5}, {8, 8, 8, 6, 5}, {8, 8, 8, 5, 5, 5},
      {4, 4, 4}, {3, 5, 7}, {2, 3, 4, 5}, {2, 2, 2, 2, 2}, {16}, {2}, {3}};
  return sets;
}

std::string levels_str(const Levels& levels, bool symmetric, DType dtype) {
  return "levels " + testing::PrintToString(levels) + (symmetric ? " symmetric " : " ") +
         dtype_name(dtype);
}

// ------------------------------------------------------------------ codebook and indices

TEST(FsqCodebook, SizeIsTheProductOfTheLevels) {
  EXPECT_EQ(fsq_codebook_size({8, 5, 5, 5}), 1000);
  EXPECT_EQ(fsq_codebook_size({8, 8, 8, 5, 5, 5}), 64000);
  EXPECT_EQ(fsq_codebook_size({2}), 2);
  EXPECT_EQ(fsq_codebook_size(Levels(30, 2)), std::int64_t{1} << 30);
  EXPECT_EQ(fsq_codebook_size({46340, 46340}), std::int64_t{46340} * 46340);
}

TEST(FsqCodebook, EveryIndexRoundTripsThroughItsCode) {
  for (const Levels& levels : level_sets()) {
    for (const bool symmetric : {false, true}) {
      for (const DType dtype : {DType::f32, DType::f64}) {
        const FsqOptions options = with_symmetric(symmetric);
        const std::int64_t n = codebook_size(levels), d = levels.size();
        OpCase c;
        c.name = "every index of " + levels_str(levels, symmetric, dtype);
        // Every index, and a z inside each code's cell.
        c.inputs = [&](Generator&) {
          std::vector<double> z(n * d);
          for (std::int64_t i = 0; i < n; ++i) {
            const auto digits = digits_of(i, levels);
            for (std::int64_t ch = 0; ch < d; ++ch)
              z[i * d + ch] = Channel{levels[ch], symmetric}.z_in_level(digits[ch], 0.25 * ((i + ch) % 3 - 1));
          }
          return Tensors{arange(n, DType::i32), from_vector(z, {n, d}).to(dtype)};
        };
        c.op = [&](const Tensors& in) {
          const Tensor codes = fsq_indices_to_codes(in[0], levels, options, dtype);  // index → code
          const FsqOutput q = fsq_quantize(in[1], levels, options);  // the fused kernel
          return Tensors{codes, fsq_codes_to_indices(codes, levels, options), q.indices, q.codes};
        };
        // index → code, against the reference, exactly; code → index; z in its cell → both.
        c.reference = [&](const Tensors& in) {
          Expected codes{std::vector<double>(n * d), {}, Shape{n, d}, dtype};
          for (std::int64_t i = 0; i < n; ++i) {
            const auto digits = digits_of(i, levels);
            for (std::int64_t ch = 0; ch < d; ++ch) {
              const double v = Channel{levels[ch], symmetric}.code(digits[ch]);
              codes.values[i * d + ch] = dtype == DType::f32 ? static_cast<float>(v) : v;
            }
          }
          const Expected indices{values_of(in[0]), {}, Shape{n}, DType::i32};
          return std::vector<Expected>{codes, indices, indices, codes};
        };
        c.tolerance = test::every_dtype(test::exact());
        c.cost = cases::fsq_decode(n, d, dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
}

TEST(FsqCodebook, IndexBasisPutsTheFirstChannelLowest) {
  // levels (8, 5): index = digit_0 + 8·digit_1.
  const Tensor codes = fsq_indices_to_codes(from_vector<std::int32_t>({0, 1, 7, 8, 39}, {5}), {8, 5});
  // digit → code for L = 8: (digit − 4)/4; for L = 5: (digit − 2)/2.
  EXPECT_TRUE(test::all_close(codes, {-1, -1, -0.75, -1, 0.75, -1, -1, -0.5, 0.75, 1}, 0.0));
}

// ------------------------------------------------------------------ the forward

TEST(FsqQuantize, CodesStayOnTheGridAndMatchTheReference) {
  for (const Levels& levels : {Levels{8, 5, 5, 5}, Levels{7, 6}, Levels{2, 3, 4, 5}}) {
    for (const bool symmetric : {false, true}) {
      for (const DType dtype : {DType::f32, DType::f64}) {
        const std::int64_t rows = 20011, d = levels.size();
        OpCase c;
        c.name = "fsq_quantize [20011, d] of 2·N(0, 1), " + levels_str(levels, symmetric, dtype);
        c.seed = 11;
        c.inputs = [&](Generator& g) { return Tensors{mul(randn({rows, d}, g, dtype), 2.0)}; };
        c.op = [&](const Tensors& in) {
          const FsqOutput q = fsq_quantize(in[0], levels, with_symmetric(symmetric));
          // Codes and indices are two views of the same thing.
          return Tensors{q.codes, q.indices,
                         fsq_indices_to_codes(q.indices, levels, with_symmetric(symmetric), dtype),
                         fsq_codes_to_indices(q.codes, levels, with_symmetric(symmetric))};
        };
        c.verify = [&](const Tensors& in, const Tensors& out, Device) -> ::testing::AssertionResult {
          const Tensor& indices = out[1];
          if (indices.shape() != Shape{rows} || indices.dtype() != DType::i32)
            return ::testing::AssertionFailure() << "indices " << shape_str(indices.shape());
          const std::vector<double> zv = values_of(in[0]), cv = values_of(out[0]), iv = values_of(indices);
          std::int64_t near_boundary = 0;
          for (std::int64_t r = 0; r < rows; ++r) {
            std::int64_t index = 0, place = 1;
            for (std::int64_t ch = 0; ch < d; ++ch) {
              const Channel chan{levels[ch], symmetric};
              // On the grid: the code is exactly the code of some level.
              const double v = cv[r * d + ch];
              if (!(v >= -1.0 && v <= 1.0)) return ::testing::AssertionFailure() << "code " << v;
              std::int64_t digit = -1;
              for (std::int64_t k = 0; k < chan.L; ++k) {
                const double g = dtype == DType::f32 ? static_cast<float>(chan.code(k)) : chan.code(k);
                if (g == v) digit = k;
              }
              if (digit < 0)
                return ::testing::AssertionFailure() << "code " << v << " is not a level of L = " << chan.L;
              index += digit * place;
              place *= chan.L;
              // The reference agrees except within float rounding of a boundary.
              const double b = chan.bound(zv[r * d + ch]);
              const double to_edge = std::abs(b - (symmetric ? std::round(b) : std::floor(b) + 0.5));
              if (to_edge < 1e-5) {
                ++near_boundary;
              } else if (digit != chan.digit(zv[r * d + ch])) {
                return ::testing::AssertionFailure() << "z " << zv[r * d + ch] << ": digit " << digit
                                                     << ", want " << chan.digit(zv[r * d + ch]);
              }
            }
            if (iv[r] != index)
              return ::testing::AssertionFailure() << "row " << r << ": index " << iv[r] << ", want " << index;
          }
          if (!(near_boundary < 10))
            return ::testing::AssertionFailure() << near_boundary << " values near a boundary";
          const ::testing::AssertionResult codes_back = identical(out[2], out[0]);
          if (!codes_back) return codes_back;
          return identical(out[3], out[1]);
        };
        c.cost = cases::fsq_quantize(rows, d, dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
}

TEST(FsqQuantize, ValuesOnEitherSideOfEveryRoundingBoundary) {
  for (const bool symmetric : {false, true}) {
    for (const std::int64_t L : {2, 3, 4, 5, 7, 8, 16}) {
      const Channel ch{L, symmetric};
      std::vector<double> z;
      std::vector<double> expected;
      for (std::int64_t k = 0; k + 1 < L; ++k) {
        // The boundary between levels k and k + 1.
        const double edge = symmetric ? ch.z_of_bound(static_cast<double>(k + 1))
                                      : ch.z_of_bound(static_cast<double>(k - ch.h()) + 0.5);
        z.insert(z.end(), {edge - 1e-7, edge + 1e-7});
        expected.insert(expected.end(), {static_cast<double>(k), static_cast<double>(k + 1)});
      }
      const std::int64_t n = static_cast<std::int64_t>(z.size());
      OpCase c;
      c.name = "fsq_quantize either side of every boundary, L " + std::to_string(L) +
               (symmetric ? " symmetric" : "");
      c.inputs = [&](Generator&) { return Tensors{from_vector(z, {n, 1})}; };
      c.op = [&](const Tensors& in) {
        return Tensors{fsq_quantize(in[0], {L}, with_symmetric(symmetric)).indices};
      };
      c.reference = [&](const Tensors&) { return std::vector<Expected>{{expected, {}, Shape{n}, DType::i32}}; };
      c.cost = cases::fsq_quantize(n, 1, DType::f64);
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(FsqQuantize, ZeroExtremesAndNaN) {
  const double inf = std::numeric_limits<double>::infinity();
  for (const DType dtype : {DType::f32, DType::f64}) {
    OpCase c;
    c.name = std::string("fsq_quantize of 0, ±1e30, ±inf ") + dtype_name(dtype);
    c.inputs = [&](Generator&) {
      return Tensors{zeros({1, 5}, DType::f32),
                     from_vector<double>({1e30, -1e30, inf, -inf}, {4, 1}).to(dtype),
                     from_vector<double>({inf, -inf}, {2, 1})};
    };
    c.op = [](const Tensors& in) {
      // The atanh shift puts z = 0 on code 0 for even L too (standard variant).
      const FsqOutput zero = fsq_quantize(in[0], {2, 3, 4, 5, 8});
      Tensors out{zero.codes};
      // ±1e30 and ±inf land on the end levels.
      for (const bool symmetric : {false, true}) {
        const FsqOutput q = fsq_quantize(in[1], {7}, with_symmetric(symmetric));
        out.push_back(q.indices);
        out.push_back(q.codes);
      }
      // Beyond 1000 levels ε·(L − 1)/2 exceeds ½: the clamp keeps the top level in range.
      out.push_back(fsq_quantize(in[2], {2001}).indices);
      return out;
    };
    c.reference = [](const Tensors&) {
      const Expected indices{{6, 0, 6, 0}}, codes{{1, -1, 1, -1}};
      return std::vector<Expected>{{{0, 0, 0, 0, 0}}, indices, codes, indices, codes, {{2000, 0}}};
    };
    c.tolerance = test::every_dtype(test::exact());
    c.cost = cases::fsq_quantize(4, 1, dtype);
    EXPECT_TRUE(check_op(c));
  }
  // NaN has no level: an error naming the op, the tensor and the first NaN's element, raised
  // inside the quantize pass (on cuda at the next check point, as every device-side check).
  for (const Device device : test::devices()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      SCOPED_TRACE(device.str() + " " + dtype_name(dtype));
      const Tensor with_nan =
          from_vector<double>({0.5, 1e30, -inf, NAN, NAN, 0.0}, {3, 2}).to(dtype).to(device);
      EXPECT_LATENT_ERROR(fsq_quantize(with_nan, {7, 5}), "fsq_quantize", "z [3, 2]",
                          "NaN at element 3");
    }
  }
}

TEST(FsqQuantize, NaNIsNamedAtItsElementInBothVariants) {
  // The kernel finds a row's first NaN once per row (the row's sum is NaN); rows holding +Inf
  // and −Inf sum to NaN too and must pass. Rows of 5 channels: the unrolled channel loop and
  // its remainder. The first NaN is element 7 (row 1, channel 2), after a NaN-free row of
  // ±Inf, with more NaN later in its row and in the next.
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<double> values = {inf, -inf, 0.5, -1e30, 1e30,   // row 0: no NaN
                                      0.0, 1.0, NAN, -2.0, NAN,      // row 1: channels 2, 4
                                      NAN, 0.25, 0.5, 0.75, 1.0};    // row 2: channel 0
  const Levels levels = {7, 5, 8, 3, 2};
  for (const Device device : test::devices()) {
    for (const bool symmetric : {false, true}) {
      for (const DType dtype : {DType::f32, DType::f64}) {
        SCOPED_TRACE(device.str() + (symmetric ? " symmetric " : " ") + dtype_name(dtype));
        const Tensor z = from_vector<double>(values, {3, 5}).to(dtype).to(device);
        EXPECT_LATENT_ERROR(fsq_quantize(z, levels, with_symmetric(symmetric)), "fsq_quantize",
                            "z [3, 5]", "NaN at element 7");
        // The last NaN alone (channel 0 of its row, the unrolled part) and the one in the
        // remainder (channel 4).
        std::vector<double> one = values;
        one[7] = one[9] = 0.0;
        EXPECT_LATENT_ERROR(
            fsq_quantize(from_vector<double>(one, {3, 5}).to(dtype).to(device), levels,
                         with_symmetric(symmetric)),
            "NaN at element 10");
        one[10] = 0.0;
        one[9] = NAN;
        EXPECT_LATENT_ERROR(
            fsq_quantize(from_vector<double>(one, {3, 5}).to(dtype).to(device), levels,
                         with_symmetric(symmetric)),
            "NaN at element 9");
        // ±Inf in one row is no NaN.
        const Tensor no_nan = from_vector<double>({inf, -inf, 0.5, -inf, inf}, {1, 5}).to(dtype);
        const FsqOutput q = fsq_quantize(no_nan.to(device), levels, with_symmetric(symmetric));
        const FsqOutput ref = fsq_quantize(no_nan, levels, with_symmetric(symmetric));
        EXPECT_TRUE(identical(q.codes.to(Device::cpu()), ref.codes));
        EXPECT_EQ(values_of(ref.codes)[1], -1.0);
      }
    }
  }
}

TEST(FsqQuantize, CodesOffTheGridSnapToTheNearestLevelTiesToEven) {
  // L = 5 (h = 2): code·h = 0.5 → 0, 1.5 → 2, −0.5 → 0, −1.5 → −2, 0.3 → 1 … as rint does.
  OpCase c;
  c.name = "fsq_codes_to_indices off the grid";
  c.inputs = [](Generator&) {
    return Tensors{from_vector<double>({0.25, 0.75, -0.25, -0.75, 0.15, 0.3, 7.0, -7.0}, {8, 1})};
  };
  c.op = [](const Tensors& in) { return Tensors{fsq_codes_to_indices(in[0], {5})}; };
  c.reference = [](const Tensors&) { return std::vector<Expected>{{{2, 4, 2, 0, 2, 3, 4, 0}}}; };
  c.cost = cases::fsq_quantize(8, 1, DType::f64);
  EXPECT_TRUE(check_op(c));
}

TEST(FsqQuantize, LeadingDimensionsNonContiguousAndEmptyInputs) {
  test::PoisonScope poison;
  Generator gen(5);
  for (const Device device : devices()) {
    const Tensor z = randn({2, 3, 7, 4}, gen).to(device);
    const FsqOutput q = fsq_quantize(z, {8, 5, 5, 5});
    EXPECT_EQ(q.codes.shape(), (Shape{2, 3, 7, 4}));
    EXPECT_EQ(q.indices.shape(), (Shape{2, 3, 7}));
    const FsqOutput flat = fsq_quantize(z.reshape({42, 4}), {8, 5, 5, 5});
    EXPECT_TRUE(identical(q.codes.reshape({42, 4}), flat.codes));
    // A permuted view (channels-first latent grid moved to channels-last).
    const Tensor grid = randn({2, 4, 7, 7}, gen).to(device);
    const FsqOutput p = fsq_quantize(grid.permute({0, 2, 3, 1}), {8, 5, 5, 5});
    const FsqOutput c = fsq_quantize(grid.permute({0, 2, 3, 1}).contiguous(), {8, 5, 5, 5});
    EXPECT_TRUE(identical(p.codes, c.codes));
    EXPECT_TRUE(identical(p.indices, c.indices));
    // Empty.
    const FsqOutput e = fsq_quantize(zeros({0, 4}, DType::f32, device), {8, 5, 5, 5});
    EXPECT_EQ(e.codes.shape(), (Shape{0, 4}));
    EXPECT_EQ(e.indices.shape(), (Shape{0}));
    EXPECT_EQ(fsq_indices_to_codes(zeros({0}, DType::i32, device), {8, 5, 5, 5}).shape(), (Shape{0, 4}));
    // A single vector [d].
    EXPECT_EQ(fsq_quantize(zeros({4}, DType::f32, device), {8, 5, 5, 5}).indices.dim(), 0);
  }
}

// ------------------------------------------------------------------ the gradient

TEST(FsqGradient, StraightThroughMatchesFiniteDifferencesOfTheBound) {
  test::PoisonScope poison;
  Generator gen(21);
  for (const Device device : devices()) {
    for (const Levels& levels : {Levels{8, 5, 5, 5}, Levels{7, 6, 2}}) {
      for (const bool symmetric : {false, true}) {
        SCOPED_TRACE(device.str() + " levels " + testing::PrintToString(levels) +
                     (symmetric ? " symmetric" : ""));
        const std::int64_t rows = 257, d = levels.size();
        // Inputs inside random levels, at most 0.4 of a level from their centres: away from
        // every rounding boundary.
        const std::vector<double> pick = values_of(rand({rows, d}, gen, DType::f64));
        const std::vector<double> frac = values_of(uniform({rows, d}, -0.4, 0.4, gen, DType::f64));
        std::vector<double> zv(rows * d);
        for (std::int64_t i = 0; i < rows * d; ++i) {
          const Channel ch{levels[i % d], symmetric};
          zv[i] = ch.z_in_level(static_cast<std::int64_t>(pick[i] * ch.L), frac[i]);
        }
        Tensor z = from_vector(zv, {rows, d}).to(device);
        z.requires_grad_();
        const Tensor w = randn({rows, d}, gen, DType::f64).to(device);
        const FsqOutput q = fsq_quantize(z, levels, with_symmetric(symmetric));
        sum(mul(q.codes, w)).backward();
        const std::vector<double> analytic = values_of(z.grad()), wv = values_of(w);

        constexpr double h = 1e-6;
        std::vector<double> numeric(rows * d);
        for (std::int64_t i = 0; i < rows * d; ++i) {
          const Channel ch{levels[i % d], symmetric};
          numeric[i] = wv[i] * (ch.soft_code(zv[i] + h) - ch.soft_code(zv[i] - h)) / (2 * h);
        }
        EXPECT_TRUE(test::all_close(analytic, numeric, 1e-7, 1e-9));

        // The op itself is flat there: nudging z changes no code.
        NoGradGuard no_grad;
        const Tensor nudged = add(z.detach(), 1e-6);
        EXPECT_TRUE(identical(fsq_quantize(nudged, levels, with_symmetric(symmetric)).codes,
                              q.codes.detach()));
      }
    }
  }
}

TEST(FsqGradient, FlowsThroughLeadingDimensionsAndViews) {
  test::PoisonScope poison;
  for (const Device device : devices()) {
    Generator gen(4);
    Tensor grid = randn({2, 3, 5, 5}, gen, DType::f64).to(device);
    grid.requires_grad_();
    const FsqOutput q = fsq_quantize(grid.permute({0, 2, 3, 1}), {5, 4, 3});
    sum(q.codes).backward();
    ASSERT_TRUE(grid.grad().defined());
    EXPECT_EQ(grid.grad().shape(), grid.shape());
    // d code/dz = (half/h)·(1 − tanh²(z + shift)) at each element.
    const std::vector<double> g = values_of(grid.grad()), zv = values_of(grid);
    const Levels levels = {5, 4, 3};
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(zv.size()); ++i) {
      const Channel ch{levels[(i / 25) % 3], false};
      const double t = std::tanh(zv[i] + ch.shift());
      EXPECT_NEAR(g[i], ch.half() / ch.h() * (1 - t * t), 1e-14) << device.str();
    }
  }
}

// ------------------------------------------------------------------ cuda against cpu

// Inputs: plain normal draws under SIMT; on a GPU, values inside levels (away from edges).
Tensor backend_inputs(std::int64_t rows, const Levels& levels, bool symmetric, DType dtype,
                      Generator& gen) {
  const std::int64_t d = levels.size();
  if (!test::cuda_is_gpu()) return mul(randn({rows, d}, gen, dtype), 1.5);
  const std::vector<double> pick = values_of(rand({rows, d}, gen, DType::f64));
  const std::vector<double> frac = values_of(uniform({rows, d}, -0.45, 0.45, gen, DType::f64));
  std::vector<double> z(rows * d);
  for (std::int64_t i = 0; i < rows * d; ++i) {
    const Channel ch{levels[i % d], symmetric};
    z[i] = ch.z_in_level(static_cast<std::int64_t>(pick[i] * ch.L), frac[i]);
  }
  return from_vector(z, {rows, d}).to(dtype);
}

// fsq_quantize on every device against the cpu backend: codes and indices, both directions
// of the index map, and the straight-through gradient. Under SIMT the kernels and the cpu
// loops share one math library: bitwise equality. A GPU's tanhf differs by an ulp or two, so
// there codes and indices are compared exactly on inputs kept away from rounding boundaries,
// and gradients with a tolerance.
OpCase versus_cpu(std::string name, std::uint64_t seed, std::function<Tensors(Generator&)> inputs,
                  std::function<Tensor(const Tensor&)> view, const Levels& levels, bool symmetric) {
  OpCase c;
  c.name = std::move(name);
  c.seed = seed;
  c.inputs = std::move(inputs);
  c.op = [view, levels, symmetric](const Tensors& in) {
    const FsqOptions options = with_symmetric(symmetric);
    const Tensor z = view(in[0]);
    const FsqOutput q = fsq_quantize(z, levels, options);
    return Tensors{q.codes, q.indices,
                   fsq_indices_to_codes(q.indices, levels, options, z.dtype()),
                   fsq_codes_to_indices(q.codes.detach(), levels, options)};
  };
  c.tolerance = test::every_dtype(test::exact());
  c.gradients = true;
  c.gpu_gradient_tolerance = test::per_dtype(test::near(1e-6, 1e-5), test::near(1e-6, 1e-12));
  return c;
}

Tensor as_is(const Tensor& z) { return z; }

TEST(FsqBackends, CudaMatchesCpuOnOddSizes) {
  for (const Levels& levels : {Levels{8, 5, 5, 5}, Levels{8, 6, 5}, Levels{7, 5, 5, 5, 5}, Levels{3}}) {
    const std::int64_t d = levels.size();
    // Rows around a warp and a tile (128 rows), and about a million elements.
    for (const std::int64_t rows : {std::int64_t{1}, std::int64_t{31}, std::int64_t{33},
                                    std::int64_t{129}, 1000003 / d + 1}) {
      for (const bool symmetric : {false, true}) {
        for (const DType dtype : {DType::f32, DType::f64}) {
          if (rows > 1000 && (dtype == DType::f64 || symmetric) && d != 4) continue;  // keep it short
          OpCase c = versus_cpu(
              "fsq_quantize " + std::to_string(rows) + " rows, " + levels_str(levels, symmetric, dtype),
              17, [&](Generator& g) { return Tensors{backend_inputs(rows, levels, symmetric, dtype, g)}; },
              as_is, levels, symmetric);
          c.cost = cases::fsq_quantize(rows, d, dtype);
          EXPECT_TRUE(check_op(c));
        }
      }
    }
  }
}

TEST(FsqBackends, MisalignedAndStridedInputsTakeTheScalarPath) {
  const Levels levels = {8, 5, 5, 5};
  // One element past a 16-byte boundary: the tile loads cannot be vectorized.
  OpCase shifted = versus_cpu(
      "fsq_quantize of rows one element past a 16-byte boundary", 8,
      [&](Generator& g) { return Tensors{backend_inputs(1001, levels, false, DType::f32, g).reshape({-1})}; },
      [](const Tensor& buffer) { return buffer.narrow(0, 1, 1000 * 4).reshape({1000, 4}); }, levels,
      false);
  shifted.cost = cases::fsq_quantize(1000, 4, DType::f32);
  EXPECT_TRUE(check_op(shifted));
  // A transposed view.
  OpCase transposed = versus_cpu(
      "fsq_quantize of a transposed view", 9,
      [&](Generator& g) { return Tensors{backend_inputs(4 * 77, {5}, false, DType::f64, g).reshape({4, 77})}; },
      [](const Tensor& z) { return z.t(); }, levels, false);
  transposed.cost = cases::fsq_quantize(77, 4, DType::f64);
  EXPECT_TRUE(check_op(transposed));
}

TEST(FsqBackends, RunsAreBitwiseRepeatable) {
  test::PoisonScope poison;
  Generator gen(2);
  const Tensor host = randn({5003, 5}, gen);
  for (const Device device : devices()) {
    const Tensor z = host.to(device);
    const FsqOutput a = fsq_quantize(z, {7, 5, 5, 5, 5}), b = fsq_quantize(z, {7, 5, 5, 5, 5});
    EXPECT_TRUE(identical(a.codes, b.codes)) << device.str();
    EXPECT_TRUE(identical(a.indices, b.indices)) << device.str();
  }
}

// ------------------------------------------------------------------ the code's division
// kernels/fsq.cuh computes a code n / w as q = n·(1/w), then one FMA remainder and one FMA
// correction (Markstein), on every backend. It must be the IEEE quotient, bit for bit.

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class T>
void expect_divide_is_the_quotient(std::int64_t w, std::int64_t n, int* failures) {
  const T wt = static_cast<T>(w), nt = static_cast<T>(n);
  const T got = kernels::fsq_divide(nt, wt, T(1) / wt);
  const T want = nt / wt;
  if (!same_bits(got, want) && ++*failures <= 10)
    ADD_FAILURE() << "w " << w << " n " << n << ": " << got << " != " << want;
}

TEST(FsqDivision, ReciprocalAndOneCorrectionIsTheQuotientForEveryLevelCount) {
  // Every denominator of L ≤ 4096 (h = ⌊L/2⌋ and L − 1 are both ≤ 4095) with every numerator
  // of its codes (standard v ∈ [−h, h], symmetric 2·digit − (L − 1) ∈ [−(L − 1), L − 1]).
  int failures = 0;
  for (std::int64_t w = 1; w <= 4095; ++w) {
    for (std::int64_t n = -w; n <= w; ++n) {
      expect_divide_is_the_quotient<float>(w, n, &failures);
      expect_divide_is_the_quotient<double>(w, n, &failures);
    }
  }
  // Random large denominators up to 2^31 − 1, numerators across the range and at its ends.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const std::int64_t w = std::uniform_int_distribution<std::int64_t>(4096, (1ll << 31) - 1)(rng);
    const std::int64_t n = std::uniform_int_distribution<std::int64_t>(-w, w)(rng);
    for (const std::int64_t m : {n, -w, w, -w + 1, w - 1, std::int64_t{0}}) {
      expect_divide_is_the_quotient<float>(w, m, &failures);
      expect_divide_is_the_quotient<double>(w, m, &failures);
    }
  }
  EXPECT_EQ(failures, 0);
}

template <class T>
void expect_codes_are_integer_quotients(std::int64_t L, bool symmetric, int* failures) {
  const auto k = kernels::fsq_constants<T>({L}, symmetric);
  const std::int64_t h = L / 2, top = L - 1;
  for (std::int64_t digit = 0; digit < L; ++digit) {
    // The formula before the reciprocal: an exact integer over an exact integer, one division.
    const T want = symmetric ? static_cast<T>(2 * digit - top) / static_cast<T>(top)
                             : static_cast<T>(digit - h) / static_cast<T>(h);
    const T got = kernels::fsq_code(k, 0, static_cast<std::int32_t>(digit));
    if (!same_bits(got, want) && ++*failures <= 10)
      ADD_FAILURE() << "L " << L << (symmetric ? " symmetric" : "") << " digit " << digit << ": "
                    << got << " != " << want;
  }
  // The lowest code is exactly −1; the highest exactly +1 (symmetric, or odd L) or (h − 1)/h
  // (standard, even L); the centre of the standard variant exactly +0.
  const T low = kernels::fsq_code(k, 0, 0);
  const T high = kernels::fsq_code(k, 0, static_cast<std::int32_t>(top));
  const bool ends_ok =
      same_bits(low, T(-1)) &&
      same_bits(high, symmetric || L % 2 == 1 ? T(1) : static_cast<T>(h - 1) / static_cast<T>(h)) &&
      (symmetric || same_bits(kernels::fsq_code(k, 0, static_cast<std::int32_t>(h)), T(0)));
  if (!ends_ok && ++*failures <= 10)
    ADD_FAILURE() << "L " << L << (symmetric ? " symmetric" : "") << ": ends " << low << ", " << high;
}

TEST(FsqDivision, CodesOfEveryDigitAreTheIntegerQuotientsUpTo4096Levels) {
  int failures = 0;
  for (std::int64_t L = 2; L <= 4096; ++L) {
    for (const bool symmetric : {false, true}) {
      expect_codes_are_integer_quotients<float>(L, symmetric, &failures);
      expect_codes_are_integer_quotients<double>(L, symmetric, &failures);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(FsqDivision, QuantizeAndDecodeGiveBitwiseEqualCodesAtLargeLevelCounts) {
  // Level counts where the float clamp and the float numerator of the symmetric variant are
  // exercised: the code quantizing writes is the code decoding its index gives, on every
  // device, for both variants.
  Generator gen(5);
  for (const Levels& levels : {Levels{4096, 3}, Levels{2001, 1001}, Levels{65537, 2}}) {
    for (const bool symmetric : {false, true}) {
      for (const DType dtype : {DType::f32, DType::f64}) {
        const Tensor z = mul(randn({4099, 2}, gen, dtype), 3.0);
        const FsqOutput ref = fsq_quantize(z, levels, with_symmetric(symmetric));
        for (const Device device : devices()) {
          SCOPED_TRACE(levels_str(levels, symmetric, dtype) + " " + device.str());
          const FsqOutput q = fsq_quantize(z.to(device), levels, with_symmetric(symmetric));
          const Tensor decoded =
              fsq_indices_to_codes(q.indices, levels, with_symmetric(symmetric), dtype);
          EXPECT_TRUE(identical(q.codes, decoded));
          EXPECT_TRUE(identical(q.codes.to(Device::cpu()), ref.codes));
          EXPECT_TRUE(identical(q.indices.to(Device::cpu()), ref.indices));
        }
      }
    }
  }
}

// ------------------------------------------------------------------ bad input

TEST(FsqBadInput, LevelsShapesAndDtypesGiveClearErrors) {
  test::PoisonScope poison;
  for (const Device device : devices()) {
    const Tensor z = zeros({10, 4}, DType::f32, device);
    EXPECT_LATENT_ERROR(fsq_quantize(z, {8, 1, 5, 5}), "fsq_quantize", "at least 2", "[8, 1, 5, 5]");
    EXPECT_LATENT_ERROR(fsq_quantize(z, {8, 0, 5, 5}), "at least 2");
    EXPECT_LATENT_ERROR(fsq_quantize(z, {}), "fsq_quantize", "empty");
    EXPECT_LATENT_ERROR(fsq_quantize(zeros({10, 2}, DType::f32, device), {65536, 65536}),
                        "fsq_quantize", "2^31 - 1", "int32");
    EXPECT_LATENT_ERROR(fsq_codebook_size(Levels(31, 2)), "2^31 - 1");
    EXPECT_LATENT_ERROR(fsq_quantize(z, {8, 5, 5}), "fsq_quantize", "[10, 4]", "3 channels");
    EXPECT_LATENT_ERROR(fsq_quantize(z, {8, 5, 5, 5, 5}), "[10, 4]", "5 channels");
    EXPECT_LATENT_ERROR(fsq_quantize(scalar_tensor(1.0, DType::f32, device), {8}), "fsq_quantize", "[]");
    EXPECT_LATENT_ERROR(fsq_quantize(zeros({10, 4}, DType::i32, device), {8, 5, 5, 5}),
                        "fsq_quantize", "int32");
    EXPECT_LATENT_ERROR(fsq_quantize(Tensor(), {8}), "undefined");

    EXPECT_LATENT_ERROR(fsq_indices_to_codes(zeros({3}, DType::f32, device), {8, 5}),
                        "fsq_indices_to_codes", "int32");
    EXPECT_LATENT_ERROR(
        fsq_indices_to_codes(from_vector<std::int32_t>({0, 39, 40}, {3}).to(device), {8, 5}),
        "fsq_indices_to_codes", "index 40 at position 2", "[0, 40)");
    EXPECT_LATENT_ERROR(
        fsq_indices_to_codes(from_vector<std::int32_t>({-1, 0}, {2}).to(device), {8, 5}),
        "index -1 at position 0");
    EXPECT_LATENT_ERROR(fsq_indices_to_codes(zeros({3}, DType::i32, device), {8, 5}, {}, DType::i32),
                        "float32 or float64");
    EXPECT_LATENT_ERROR(fsq_codes_to_indices(zeros({3, 3}, DType::f32, device), {8, 5}),
                        "fsq_codes_to_indices", "[3, 3]", "2 channels");
    EXPECT_LATENT_ERROR(fsq_codes_to_indices(zeros({3, 2}, DType::i32, device), {8, 5}), "int32");
  }
}

// ------------------------------------------------------------------ the model

using test::smooth_images;

TEST(FsqModel, TokensRoundTripAndGradientsReachTheEncoder) {
  Generator gen(1);
  models::ConvNetConfig net;
  net.hidden_channels = 4;
  models::FsqAutoencoder model(net, {5, 4, 3}, gen);
  EXPECT_EQ(model.codebook_size(), 60);
  const Dataset data = smooth_images(6, 3);

  const Tensor tokens = model.encode_tokens(data.images);
  EXPECT_EQ(tokens.shape(), (Shape{6, 7, 7}));
  EXPECT_EQ(tokens.dtype(), DType::i32);
  for (double v : values_of(tokens)) {
    EXPECT_GE(v, 0);
    EXPECT_LT(v, 60);
  }
  // Decoding the tokens is the reconstruction, bit for bit.
  EXPECT_TRUE(identical(model.decode_tokens(tokens), model.reconstruct(data.images)));
  EXPECT_LATENT_ERROR(model.decode_tokens(zeros({2, 7}, DType::i32)), "FsqAutoencoder", "[N, 7, 7]");
  EXPECT_LATENT_ERROR(model.decode_tokens(full({1, 7, 7}, 60, DType::i32)), "index 60");

  const auto out = model.training_step(data.images, 0);
  ASSERT_TRUE(std::isfinite(out.loss.item()));
  EXPECT_GE(out.metrics.at("perplexity")(), 1.0);
  out.loss.backward();
  // The straight-through gradient reaches the first layer of the encoder.
  const auto params = model.named_parameters();
  ASSERT_EQ(params.front().first.rfind("encoder.", 0), 0u);
  EXPECT_GT(sum(abs(params.front().second.grad())).item(), 0.0);
}

TEST(FsqModel, MetricsAndCodebookPicture) {
  Generator gen(2);
  models::ConvNetConfig net;
  net.hidden_channels = 4;
  models::FsqAutoencoder model(net, {8, 5, 5, 5}, gen);
  const Dataset test = smooth_images(20, 4);
  const auto extra = model.evaluate_extra(test, Device::cpu());
  const auto counts = model.code_counts(test, Device::cpu());
  std::int64_t total = 0;
  for (const auto& [code, n] : counts) total += n;
  EXPECT_EQ(total, 20 * 49);
  EXPECT_EQ(extra.at("codebook_size"), 1000);
  EXPECT_EQ(extra.at("codes_used"), static_cast<double>(counts.size()));
  EXPECT_DOUBLE_EQ(extra.at("utilization"), counts.size() / 1000.0);
  EXPECT_GE(extra.at("perplexity"), 1.0);
  EXPECT_LE(extra.at("perplexity"), extra.at("codes_used") + 1e-9);

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("latent-fsq-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  train::write_pictures(model, dir.string(), test, Device::cpu());
  const Tensor picture = load_png((dir / "codebook_usage.png").string());
  // 1000 codes: 40 × 25 (levels 8·5 along x, 5·5 along y), 12 pixels a code.
  EXPECT_EQ(picture.shape(), (Shape{3, 25 * 12, 40 * 12}));
  std::filesystem::remove_all(dir);
}

TEST(FsqPictures, RoundingIsDrawnForTwoOrMoreChannels) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("latent-fsq-round-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const Dataset test = smooth_images(12, 4);
  models::ConvNetConfig net;
  net.hidden_channels = 4;
  for (bool symmetric : {false, true}) {
    Generator gen(2);
    models::FsqAutoencoder model(net, {8, 5, 5, 5}, gen, "mse", FsqOptions{symmetric});
    model.eval();
    train::write_pictures(model, dir.string(), test, Device::cpu());
    // A 512-pixel plot, a caption above it and tick values below and to its left.
    EXPECT_EQ(load_png((dir / "rounding.png").string()).shape(), (Shape{3, 558, 572}));
    fs::remove(dir / "rounding.png");
  }
  Generator gen(2);
  models::FsqAutoencoder one(net, {7}, gen);  // a single channel: no plane
  one.eval();
  train::write_pictures(one, dir.string(), test, Device::cpu());
  EXPECT_TRUE(fs::exists(dir / "codebook_usage.png"));
  EXPECT_FALSE(fs::exists(dir / "rounding.png"));
  EXPECT_LATENT_ERROR(train::write_rounding_picture(one, (dir / "r.png").string(), test,
                                                    Device::cpu()),
                      "two channels");
  fs::remove_all(dir);
}

TEST(FsqPictures, TheDrawnBoundRoundsToTheCodeOfFsqQuantize) {
  // The picture's bound (docs/fsq.md, section 1) is the kernel's: its nearest level is the
  // code fsq_quantize returns, in both variants, for values off the rounding boundaries.
  Generator gen(11);
  for (bool symmetric : {false, true}) {
    for (const Levels& levels : {Levels{8, 5}, Levels{4, 3}, Levels{7, 6}}) {
      const Tensor z = uniform({500, 2}, -3.0, 3.0, gen, DType::f64);
      FsqOptions options;
      options.symmetric = symmetric;
      const std::vector<double> codes = fsq_quantize(z, levels, options).codes.to_vector<double>();
      const std::vector<double> zs = z.to_vector<double>();
      for (std::size_t i = 0; i < zs.size(); ++i) {
        const std::int64_t L = levels[i % 2];
        const double b = train::fsq_bound(zs[i], L, symmetric);
        const std::vector<double> grid = train::fsq_levels(L, symmetric);
        std::size_t best = 0;
        for (std::size_t k = 1; k < grid.size(); ++k)
          if (std::abs(grid[k] - b) < std::abs(grid[best] - b)) best = k;
        const double step = grid[1] - grid[0];
        if (std::abs(std::abs(grid[best] - b) - step / 2) < 1e-6) continue;  // a boundary
        EXPECT_DOUBLE_EQ(grid[best], codes[i]) << "z " << zs[i] << " L " << L << " sym " << symmetric;
      }
    }
  }
  // The level grid: L = 8 is {-4, …, 3}/4, L = 5 is {-2, …, 2}/2, symmetric L = 4 is ±1/3, ±1.
  EXPECT_EQ(train::fsq_levels(8, false).front(), -1.0);
  EXPECT_EQ(train::fsq_levels(8, false).back(), 0.75);
  EXPECT_EQ(train::fsq_levels(5, false), (std::vector<double>{-1.0, -0.5, 0.0, 0.5, 1.0}));
  EXPECT_NEAR(train::fsq_levels(4, true)[1], -1.0 / 3.0, 1e-15);
  EXPECT_NEAR(train::fsq_bound(0.0, 8, false), 0.0, 1e-15);  // the shift centres z = 0
}

TEST(FsqPictures, EachLineRunsFromTheBoundedOutputToItsCode) {
  // Levels 8 (x) and 5 (y): the bounded output (0.3, 0.1) rounds to the code (0.25, 0).
  const std::vector<float> bounded = {0.3f, 0.1f}, codes = {0.25f, 0.0f};
  train::PlotArea area;
  const Tensor picture = train::rounding_plot(bounded, codes, 8, 5, false, "test", &area);
  const std::vector<float> px = picture.to_vector<float>();
  const std::int64_t H = picture.size(1), W = picture.size(2);
  auto at = [&](std::int64_t y, std::int64_t x) {
    return train::Rgb{px[(0 * H + y) * W + x], px[(1 * H + y) * W + x], px[(2 * H + y) * W + x]};
  };
  EXPECT_EQ(at(area.py(0.0), area.px(0.25)), train::rounding_code_colour());  // used: filled
  EXPECT_EQ(at(area.py(0.0), area.px(0.5)), train::kWhite);  // unused: hollow
  EXPECT_EQ(at(area.py(0.5), area.px(-1.0)), train::kWhite);
  // The line passes within a pixel of the segment's midpoint (0.275, 0.05).
  const std::int64_t my = area.py(0.05), mx = area.px(0.275);
  bool found = false;
  for (std::int64_t dy = -1; dy <= 1; ++dy)
    for (std::int64_t dx = -1; dx <= 1; ++dx)
      found = found || at(my + dy, mx + dx) == train::rounding_line_colour();
  EXPECT_TRUE(found);
}

TEST(FsqModel, MadeByNameForTheTrainer) {
  Generator gen(0);
  train::Config config;
  config.model = "fsq";
  config.net.hidden_channels = 4;
  config.levels = {7, 5, 5, 5, 5};
  const auto model = train::make_model(config, gen);
  auto* fsq = dynamic_cast<models::FsqAutoencoder*>(model.get());
  ASSERT_NE(fsq, nullptr);
  EXPECT_EQ(fsq->codebook_size(), 4375);
  config.levels = {8, 1};
  EXPECT_LATENT_ERROR(train::make_model(config, gen), "at least 2");
}

// ------------------------------------------------------------------ the command line

#ifdef LATENT_CLI_PATH
using Cli = test::CliRun;
const auto run_cli = test::run_latent;

TEST(FsqCli, TrainEncodeDecodeAndOps) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("latent-fsq-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  write_fashion_mnist_like((dir / "data").string(), smooth_images(64, 1), smooth_images(20, 2));

  Cli r = run_cli("train --model fsq --levels 5,4,3 --steps 4 --batch-size 16 --hidden-channels 4 "
                  "--quiet --data-dir " + (dir / "data").string() + " --out " + (dir / "run").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "run" / "codebook_usage.png"));
  const std::string ckpt = (dir / "run" / "checkpoint.safetensors").string();
  r = run_cli("eval --json --checkpoint " + ckpt);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"test_utilization\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"test_perplexity\""), std::string::npos) << r.output;
  // The symmetric variant trains from the command line too, and its checkpoint remembers it.
  r = run_cli("train --model fsq --symmetric --levels 4,3 --steps 2 --batch-size 16 "
              "--hidden-channels 4 --quiet --data-dir " + (dir / "data").string() + " --out " +
              (dir / "sym").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(load_safetensors((dir / "sym" / "checkpoint.safetensors").string())
                .metadata.at("config")
                .find("\"fsq_symmetric\":true"),
            std::string::npos);

  save_npy((dir / "images.npy").string(), smooth_images(3, 5).images);
  r = run_cli("encode --checkpoint " + ckpt + " " + (dir / "images.npy").string() + " -o " +
              (dir / "tokens.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Tensor tokens = load_npy((dir / "tokens.npy").string());
  EXPECT_EQ(tokens.shape(), (Shape{3, 7, 7}));
  r = run_cli("decode --checkpoint " + ckpt + " " + (dir / "tokens.npy").string() + " -o " +
              (dir / "images_out.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(load_npy((dir / "images_out.npy").string()).shape(), (Shape{3, 1, 28, 28}));

  // latent op fsq / fsq-decode.
  Generator gen(6);
  const Tensor z = randn({9, 4}, gen);
  save_npy((dir / "z.npy").string(), z);
  r = run_cli("op fsq " + (dir / "z.npy").string() + " --levels 8,5,5,5 -o " +
              (dir / "codes.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const FsqOutput q = fsq_quantize(z, {8, 5, 5, 5});
  EXPECT_TRUE(identical(load_npy((dir / "codes.npy").string()), q.codes));
  EXPECT_TRUE(identical(load_npy((dir / "codes_indices.npy").string()), q.indices));
  r = run_cli("op fsq-decode " + (dir / "codes_indices.npy").string() + " --levels 8,5,5,5 -o " +
              (dir / "decoded.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(identical(load_npy((dir / "decoded.npy").string()), q.codes));
  r = run_cli("op fsq " + (dir / "z.npy").string() + " --levels 8,5,5 -o " +
              (dir / "bad.npy").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("3 channels"), std::string::npos) << r.output;
  fs::remove_all(dir);
}
#endif

}  // namespace
}  // namespace latent
