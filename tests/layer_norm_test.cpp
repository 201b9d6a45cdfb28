// Layer normalization: the op (layer_norm) and its table (src/backends/layer_norm.h) against a
// plain long-double restatement of the formulas written here, independent of
// kernels/layer_norm.cuh; gradients against central differences in float64; the cuda
// backend (the SIMT executor in CI) against cpu at odd sizes, on the vectorized and the
// scalar paths; rows with a large mean and a small spread (the one-pass variance); constant
// rows; bitwise repeatability; leading dimensions, views and empty inputs; bad input.
// The kernel cases run through the op harness (tests/op_harness.h) on every device.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "backends/layer_norm.h"
#include "backends/registry.h"
#include "latent/latent.h"
#include "latent/layer_norm.h"
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

// ------------------------------------------------------------------ the reference
// mean, 1/sqrt(var + eps) (var biased) and y = x̂·γ + β, in long double, two passes.
struct Reference {
  std::vector<double> y, xhat, mean, rstd;
};

Reference reference(const std::vector<double>& x, std::int64_t rows, std::int64_t cols,
                    const std::vector<double>& w, const std::vector<double>& b, double eps) {
  Reference r;
  r.y.resize(x.size());
  r.xhat.resize(x.size());
  for (std::int64_t i = 0; i < rows; ++i) {
    // Relative to x₀: x − x₀ is exact in long double (which holds a double's difference),
    // and so is the centre m = mean(x − x₀) to its own precision, whereas μ = x₀ + m rounded
    // at 10⁴ would cost 10⁻¹⁵ absolute: 10⁻¹³ of x̂ for a row at 10⁴ ± 10⁻².
    const long double x0 = x[i * cols];
    long double sum = 0;
    for (std::int64_t c = 0; c < cols; ++c) sum += x[i * cols + c] - x0;
    const long double centre = sum / cols, mu = x0 + centre;
    long double m2 = 0;
    for (std::int64_t c = 0; c < cols; ++c) {
      const long double d = (x[i * cols + c] - x0) - centre;
      m2 += d * d;
    }
    const long double rs = 1.0L / std::sqrt(m2 / cols + static_cast<long double>(eps));
    r.mean.push_back(static_cast<double>(mu));
    r.rstd.push_back(static_cast<double>(rs));
    for (std::int64_t c = 0; c < cols; ++c) {
      const long double xhat = ((x[i * cols + c] - x0) - centre) * rs;
      r.xhat[i * cols + c] = static_cast<double>(xhat);
      r.y[i * cols + c] =
          static_cast<double>(w.empty() ? xhat : xhat * w[c] + static_cast<long double>(b[c]));
    }
  }
  return r;
}

// Rounded to the output's dtype, as the device must deliver it.
std::vector<double> rounded(std::vector<double> v, DType dtype) {
  if (dtype == DType::f32)
    for (double& e : v) e = static_cast<float>(e);
  return v;
}

// The forward through the table, so that mean and rstd are checked too.
Tensors table_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const std::int64_t cols = x.size(-1), rows = x.numel() / cols;
  const Tensor y = empty(x.shape(), x.dtype(), x.device());
  const Tensor mean = empty({rows}, x.dtype(), x.device());
  const Tensor rstd = empty({rows}, x.dtype(), x.device());
  backend::lookup<backend::LayerNormTable>(x.device()).forward(x, w, b, eps, y, mean, rstd);
  return {y, mean, rstd};
}

// An allowed error for y, mean and rstd: `k` units of roundoff of the dtype relative to the
// row's scale ((1 + |x̂|)·|γ| + |β| for y; σ for the mean, plus 2u·|μ| for its rounding;
// rstd itself for rstd), k growing with the number of terms each backend sums in sequence
// (`cuda_k` for the kernels' merges and final roundings).
std::vector<Expected> expected_forward(const Tensors& in, Device device, double eps,
                                       double cuda_k) {
  const Tensor& x = in[0];
  const std::int64_t cols = x.size(-1), rows = x.numel() / cols;
  const bool affine = in.size() == 3;
  const std::vector<double> xv = values_of(x);
  const std::vector<double> w = affine ? values_of(in[1]) : std::vector<double>{};
  const std::vector<double> b = affine ? values_of(in[2]) : std::vector<double>{};
  const Reference r = reference(xv, rows, cols, w, b, eps);
  const double u = test::unit_roundoff(x.dtype());
  // cpu: float32 data summed in double leaves the final roundings (2); float64 data summed
  // in double, C terms in sequence. cuda: each lane sums about C/32 terms, then 5 merges.
  const double k = device.is_cpu() ? (x.dtype() == DType::f32 ? 2.0 : 4.0 + cols / 8.0)
                                   : cuda_k + cols / 32.0;
  Expected y{rounded(r.y, x.dtype()), {}, x.shape(), x.dtype()};
  Expected mean{rounded(r.mean, x.dtype()), {}, Shape{rows}, x.dtype()};
  Expected rstd{rounded(r.rstd, x.dtype()), {}, Shape{rows}, x.dtype()};
  for (std::int64_t i = 0; i < rows; ++i) {
    const double sigma = r.rstd[i] > 0 ? 1.0 / r.rstd[i] : 0.0;
    mean.bound.push_back(k * u * sigma + 2.0 * u * std::abs(r.mean[i]));
    rstd.bound.push_back(k * u * r.rstd[i]);
    for (std::int64_t c = 0; c < cols; ++c) {
      const double xhat = std::abs(r.xhat[i * cols + c]);
      const double scale = affine ? (1.0 + xhat) * std::abs(w[c]) + std::abs(b[c]) : 1.0 + xhat;
      y.bound.push_back(k * u * scale);
    }
  }
  return {y, mean, rstd};
}

Tensors affine_inputs(Generator& g, std::int64_t rows, std::int64_t cols, DType dtype,
                      double low = -2.0, double high = 2.0) {
  return {uniform({rows, cols}, low, high, g, dtype), uniform({cols}, 0.5, 1.5, g, dtype),
          uniform({cols}, -1.0, 1.0, g, dtype)};
}

std::string size_str(std::int64_t rows, std::int64_t cols, DType dtype) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "] " + dtype_name(dtype);
}

// ------------------------------------------------------------------ gradients

TEST(LayerNormGradient, MatchesFiniteDifferencesInFloat64) {
  struct Size {
    Shape shape;
    bool affine;
  };
  // C = 1 (x̂ ≡ 0), odd widths around a warp, a vectorizable width, leading dimensions.
  for (const Size& s : {Size{{5, 1}, true}, Size{{3, 5}, true}, Size{{2, 33}, true},
                        Size{{3, 64}, true}, Size{{2, 3, 4}, true}, Size{{4, 7}, false},
                        Size{{2, 32}, false}}) {
    const std::int64_t cols = s.shape.back();
    OpCase c = test::gradient_case(
        "layer_norm " + shape_str(s.shape) + (s.affine ? " affine" : " no affine"), 31,
        [s, cols](Generator& g) {
          Tensors in{uniform(s.shape, -1.0, 1.0, g, DType::f64)};
          if (s.affine) {
            in.push_back(uniform({cols}, 0.5, 1.5, g, DType::f64));
            in.push_back(uniform({cols}, -1.0, 1.0, g, DType::f64));
          }
          return in;
        },
        [s](const Tensors& in) {
          return s.affine ? layer_norm(in[0], in[1], in[2]) : layer_norm(in[0], Tensor(), Tensor());
        });
    c.cost = cases::layer_norm_backward(shape_numel(s.shape) / cols, cols, DType::f64);
    EXPECT_TRUE(check_op(c));
  }
}

// ------------------------------------------------------------------ the forward

TEST(LayerNormForward, MatchesTheLongDoubleReference) {
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const std::int64_t cols : {1, 3, 31, 33, 128, 257}) {
      for (const bool affine : {true, false}) {
        const std::int64_t rows = 37;
        OpCase c;
        c.name = "layer_norm table forward " + size_str(rows, cols, dtype) +
                 (affine ? " affine" : " no affine");
        c.seed = 5 + cols;
        c.inputs = [=](Generator& g) {
          Tensors in = affine_inputs(g, rows, cols, dtype);
          if (!affine) in.resize(1);
          return in;
        };
        c.op = [](const Tensors& in) {
          return in.size() == 3 ? table_forward(in[0], in[1], in[2], 1e-5)
                                : table_forward(in[0], Tensor(), Tensor(), 1e-5);
        };
        c.reference_on = [](const Tensors& in, Device device) {
          return expected_forward(in, device, 1e-5, 8.0);
        };
        c.tolerance = test::every_dtype(test::near(0.0, 0.0));
        c.cost = cases::layer_norm_forward(rows, cols, dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
}

TEST(LayerNormForward, RowsWithALargeMeanKeepTheirVariance) {
  // 10⁴ + spread: Σx² − (Σx)²/C would lose every bit of float32 here (and 27 of float64's);
  // the shifted one-pass Welford merge keeps the statistics to a few u relative to σ.
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const double spread : {1.0, 1e-2}) {
      if (dtype == DType::f32 && spread < 1.0) continue;  // float32 holds 10⁴ ± 10⁻² to 3 bits
      for (const std::int64_t cols : {33, 128, 1000}) {
        const std::int64_t rows = 19;
        OpCase c;
        c.name = "layer_norm rows at 1e4 ± " + std::to_string(spread) + " " +
                 size_str(rows, cols, dtype);
        c.seed = 77;
        c.inputs = [=](Generator& g) {
          Tensors in = affine_inputs(g, rows, cols, dtype);
          in[0] = add(mul(uniform({rows, cols}, -1.0, 1.0, g, DType::f64), spread), 1e4).to(dtype);
          return in;
        };
        c.op = [](const Tensors& in) { return table_forward(in[0], in[1], in[2], 1e-12); };
        // y and rstd to a few u of the row's own scale; the mean to its rounding at 10⁴.
        c.reference_on = [](const Tensors& in, Device device) {
          return expected_forward(in, device, 1e-12, 8.0);
        };
        c.tolerance = test::every_dtype(test::near(0.0, 0.0));
        c.cost = cases::layer_norm_forward(rows, cols, dtype);
        EXPECT_TRUE(check_op(c));
      }
    }
  }
}

TEST(LayerNormForward, ConstantRowsGiveTheBiasExactly) {
  test::PoisonScope poison;
  for (const DType dtype : {DType::f32, DType::f64}) {
    for (const std::int64_t cols : {1, 7, 64, 257}) {
      Generator gen(3);
      const std::int64_t rows = 5;
      std::vector<double> x;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) x.push_back(r == 0 ? 0.0 : std::pow(10.0, r) + 0.375);
      const Tensor host_x = from_vector(x, {rows, cols}).to(dtype);
      const Tensor host_w = uniform({cols}, 0.5, 1.5, gen, dtype);
      const Tensor host_b = uniform({cols}, -1.0, 1.0, gen, dtype);
      for (const Device device : devices()) {
        const Tensors out = table_forward(host_x.to(device), host_w.to(device), host_b.to(device), 1e-5);
        const std::vector<double> y = values_of(out[0]), bias = values_of(host_b);
        const std::vector<double> mean = values_of(out[1]), rstd = values_of(out[2]);
        const double expected_rstd = dtype == DType::f32 ? static_cast<float>(1.0 / std::sqrt(1e-5))
                                                         : 1.0 / std::sqrt(1e-5);
        for (std::int64_t r = 0; r < rows; ++r) {
          EXPECT_EQ(mean[r], x[r * cols]) << device.str() << " " << size_str(rows, cols, dtype);
          EXPECT_NEAR(rstd[r], expected_rstd, 2 * test::unit_roundoff(dtype) * expected_rstd);
          for (std::int64_t c = 0; c < cols; ++c)
            ASSERT_EQ(y[r * cols + c], bias[c])
                << device.str() << " " << size_str(rows, cols, dtype) << " row " << r;
        }
      }
    }
  }
}

// ------------------------------------------------------------------ backends

// The op, forward and backward, on `device` against cpu (the harness's default reference).
OpCase versus_cpu(std::int64_t rows, std::int64_t cols, DType dtype, bool affine,
                  std::uint64_t seed) {
  OpCase c;
  c.name = "layer_norm " + size_str(rows, cols, dtype) + (affine ? " affine" : " no affine");
  c.seed = seed;
  c.inputs = [=](Generator& g) {
    Tensors in = affine_inputs(g, rows, cols, dtype);
    if (!affine) in.resize(1);
    return in;
  };
  c.op = [](const Tensors& in) {
    return Tensors{in.size() == 3 ? layer_norm(in[0], in[1], in[2])
                                  : layer_norm(in[0], Tensor(), Tensor())};
  };
  // y: float32 kernels sum in float, the cpu in double: a few u of |x̂·γ| + |β| ≤ ~4 (seen:
  // 7e-7). The gradients: dx is conditioned by rstd (a row of 3 close values has a large
  // one; seen: 9e-6 at rows of 3); dγ, dβ are sums over up to 1000 rows of terms ~ 0.5, in
  // float chunks on cuda: about u·Σ|terms|, growing like √rows in practice (seen: 2.3e-5
  // at 1000 rows).
  c.tolerance = test::per_dtype(test::near(6e-7, 4e-7), test::near(1e-14, 1e-14));
  c.gradients = true;
  const double rows_scale = std::sqrt(static_cast<double>(rows));
  c.gradient_tolerance =
      test::per_dtype(test::near(2e-6 * rows_scale, 1e-6), test::near(1e-13, 1e-13));
  c.cost = cases::layer_norm_forward(rows, cols, dtype);
  return c;
}

TEST(LayerNormBackends, CudaMatchesCpuOnOddSizes) {
  for (const std::int64_t rows : {1, 31, 33, 1000}) {
    for (const std::int64_t cols : {1, 3, 31, 33, 128, 257}) {
      EXPECT_TRUE(check_op(versus_cpu(rows, cols, DType::f32, true, 100 + rows + cols)));
      if (rows == 33) {
        EXPECT_TRUE(check_op(versus_cpu(rows, cols, DType::f32, false, 7)));
        EXPECT_TRUE(check_op(versus_cpu(rows, cols, DType::f64, true, 8)));
      }
    }
  }
}

TEST(LayerNormBackends, MisalignedAndStridedInputsTakeTheScalarPath) {
  // One element past a 16-byte boundary: C = 128 divides into float4s, the rows do not align.
  OpCase shifted = versus_cpu(200, 128, DType::f32, true, 9);
  shifted.name = "layer_norm of rows one element past a 16-byte boundary";
  shifted.inputs = [](Generator& g) {
    Tensors in = affine_inputs(g, 200, 128, DType::f32);
    in[0] = uniform({200 * 128 + 1}, -2.0, 2.0, g, DType::f32);
    return in;
  };
  shifted.op = [](const Tensors& in) {
    return Tensors{layer_norm(in[0].narrow(0, 1, 200 * 128).reshape({200, 128}), in[1], in[2])};
  };
  EXPECT_TRUE(check_op(shifted));
  // A transposed view (the op makes it contiguous).
  OpCase transposed = versus_cpu(64, 40, DType::f64, true, 10);
  transposed.name = "layer_norm of a transposed view";
  transposed.inputs = [](Generator& g) {
    Tensors in = affine_inputs(g, 40, 64, DType::f64);
    in[1] = uniform({40}, 0.5, 1.5, g, DType::f64);
    in[2] = uniform({40}, -1.0, 1.0, g, DType::f64);
    return in;
  };
  transposed.op = [](const Tensors& in) { return Tensors{layer_norm(in[0].t(), in[1], in[2])}; };
  EXPECT_TRUE(check_op(transposed));
}

TEST(LayerNormBackends, RunsAreBitwiseRepeatable) {
  test::PoisonScope poison;
  for (const std::int64_t cols : {128, 257}) {
    Generator gen(12);
    const Tensors host = affine_inputs(gen, 3001, cols, DType::f32);
    const Tensor g = uniform({3001, cols}, -1.0, 1.0, gen, DType::f32);
    for (const Device device : devices()) {
      std::vector<Tensors> runs;
      for (int run = 0; run < 2; ++run) {
        Tensors leaves;
        for (const Tensor& t : host) leaves.push_back(t.to(device).clone().requires_grad_(true));
        const Tensor y = layer_norm(leaves[0], leaves[1], leaves[2]);
        run_backward(y, g.to(device));
        runs.push_back({y.detach(), leaves[0].grad(), leaves[1].grad(), leaves[2].grad()});
      }
      for (std::size_t i = 0; i < runs[0].size(); ++i)
        EXPECT_TRUE(identical(runs[0][i], runs[1][i])) << device.str() << " output " << i;
    }
  }
}

// ------------------------------------------------------------------ shapes

TEST(LayerNormShapes, LeadingDimensionsAndEmptyInputs) {
  test::PoisonScope poison;
  for (const Device device : devices()) {
    Generator gen(4);
    const Tensors in = affine_inputs(gen, 42, 24, DType::f32);
    const Tensor x = in[0].to(device), w = in[1].to(device), b = in[2].to(device);
    // [2, 3, 7, 24] is 42 rows of 24.
    EXPECT_TRUE(identical(layer_norm(x.reshape({2, 3, 7, 24}), w, b).reshape({42, 24}),
                          layer_norm(x, w, b)));
    // No rows: an empty y, and empty sums for the parameter gradients.
    const Tensor none = zeros({0, 24}, DType::f32, device).requires_grad_(true);
    const Tensor wl = w.detach().requires_grad_(true), bl = b.detach().requires_grad_(true);
    const Tensor y = layer_norm(none, wl, bl);
    EXPECT_EQ(y.shape(), (Shape{0, 24}));
    run_backward(y, zeros({0, 24}, DType::f32, device));
    EXPECT_TRUE(identical(wl.grad(), zeros({24}, DType::f32, device)));
    EXPECT_TRUE(identical(bl.grad(), zeros({24}, DType::f32, device)));
    EXPECT_EQ(none.grad().shape(), (Shape{0, 24}));
    EXPECT_EQ(layer_norm(zeros({3, 0, 5}, DType::f64, device), Tensor(), Tensor()).shape(),
              (Shape{3, 0, 5}));
  }
}

// ------------------------------------------------------------------ bad input

TEST(LayerNormBadInput, ShapesDtypesDevicesAndEpsGiveClearErrors) {
  test::PoisonScope poison;
  for (const Device device : devices()) {
    const Tensor x = zeros({4, 8}, DType::f32, device);
    const Tensor w = ones({8}, DType::f32, device), b = zeros({8}, DType::f32, device);
    EXPECT_LATENT_ERROR(layer_norm(x, ones({7}, DType::f32, device), b), "layer_norm", "weight",
                        "[7]", "[8]", "[4, 8]");
    EXPECT_LATENT_ERROR(layer_norm(x, w, zeros({1, 8}, DType::f32, device)), "layer_norm", "bias",
                        "[1, 8]", "[4, 8]");
    EXPECT_LATENT_ERROR(layer_norm(x, ones({8}, DType::f64, device), zeros({8}, DType::f64, device)),
                        "layer_norm", "weight", "float64", "float32");
    EXPECT_LATENT_ERROR(layer_norm(x, w, zeros({8}, DType::f64, device)), "layer_norm", "bias",
                        "float64");
    EXPECT_LATENT_ERROR(layer_norm(zeros({4, 8}, DType::i32, device), Tensor(), Tensor()),
                        "layer_norm", "int32", "[4, 8]");
    EXPECT_LATENT_ERROR(layer_norm(scalar_tensor(1.0, DType::f32, device), Tensor(), Tensor()),
                        "layer_norm", "0-dim");
    EXPECT_LATENT_ERROR(layer_norm(x, w, Tensor()), "layer_norm", "both", "no bias");
    EXPECT_LATENT_ERROR(layer_norm(x, Tensor(), b), "layer_norm", "both", "no weight");
    EXPECT_LATENT_ERROR(layer_norm(Tensor(), w, b), "layer_norm", "undefined");
    for (const double eps : {0.0, -1e-5, std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity()})
      EXPECT_LATENT_ERROR(layer_norm(x, w, b, eps), "layer_norm", "eps");
    if (!device.is_cpu()) {
      EXPECT_LATENT_ERROR(layer_norm(x, ones({8}), b), "layer_norm", "weight", "cpu",
                          device.str());
      EXPECT_LATENT_ERROR(layer_norm(x.to(Device::cpu()), ones({8}), b), "layer_norm", "bias",
                          device.str());
    }
  }
}

}  // namespace
}  // namespace latent
