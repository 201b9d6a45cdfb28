// Convolutions (kernels/conv.cuh: im2col / col2im, plus one GEMM; src/ops/conv.cpp)
// through the op harness (tests/op_harness.h), on every device: conv2d against the direct
// seven-loop definition and conv_transpose2d against its scatter definition (with the bound
// (C·KH·KW + 3)·u·Σ|terms|), over odd geometries, strides, paddings, output paddings,
// non-contiguous inputs and bench/conv_bench's autoencoder layers; the adjoint identity; the
// cuda backend against cpu; gradients against finite differences; bad input.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "backends/cpu/conv_implicit.h"
#include "latent/latent.h"
#include "tests/op_harness.h"
#include "tests/reference.h"

namespace latent {
namespace {

using cases::Conv;
using test::check_op;
using test::Expected;
using test::gradient_case;
using test::kU64;
using test::near;
using test::OpCase;
using test::per_dtype;
using test::sum_error_bound;
using test::Tensors;
using test::uniform_tensor;
using test::unit_roundoff;
using test::values_of;

struct Dense {
  std::vector<double> values, bound;  // bound: Σ|terms| per output, for error bounds
};

// The direct seven-loop convolution: y[n, o, i, j] = b[o] + Σ x[n, c, i·s − p + u, j·s − p + v]
// · w[o, c, u, v] over taps inside the image.
Dense conv2d_ref(const Conv& k, const std::vector<double>& x, const std::vector<double>& w,
                 const std::vector<double>& b) {
  const std::int64_t oh = k.out_h(), ow = k.out_w();
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
Dense conv_transpose2d_ref(const Conv& k, const std::vector<double>& x,
                           const std::vector<double>& w, const std::vector<double>& b) {
  const std::int64_t oh = k.transposed_out_h(), ow = k.transposed_out_w();
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

const std::vector<Conv> kConvCases = {
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

// conv2d of x [n, c, h, w] by w [oc, c, kh, kw] (and the bias when k.bias), against the loops.
OpCase conv2d_case(const Conv& k, DType dtype, std::uint64_t seed) {
  OpCase c;
  c.name = "conv2d " + k.str() + " " + dtype_name(dtype);
  c.seed = seed;
  c.inputs = [k, dtype](Generator& g) {
    return Tensors{uniform_tensor({k.n, k.c, k.h, k.w}, g, -1, 1, dtype),
                   uniform_tensor({k.oc, k.c, k.kh, k.kw}, g, -1, 1, dtype),
                   uniform_tensor({k.oc}, g, -1, 1, dtype)};
  };
  c.op = [k](const Tensors& in) {
    return Tensors{conv2d(in[0], in[1], k.bias ? in[2] : Tensor(), {k.stride, k.padding, 0})};
  };
  c.reference = [k, dtype](const Tensors& in) {
    const Dense ref = conv2d_ref(k, values_of(in[0]), values_of(in[1]), values_of(in[2]));
    return std::vector<Expected>{{ref.values,
                                  sum_error_bound(ref.bound, k.c * k.kh * k.kw + 1, unit_roundoff(dtype)),
                                  Shape{k.n, k.oc, k.out_h(), k.out_w()}, dtype}};
  };
  c.tolerance = per_dtype(near(0, 0), near(0, 0));  // within the bound
  c.cost = cases::conv2d(k, dtype);
  return c;
}

// ================================================================== against loops

TEST(Conv, Conv2dMatchesDirectLoops) {
  for (DType dtype : {DType::f32, DType::f64})
    for (const Conv& k : kConvCases) EXPECT_TRUE(check_op(conv2d_case(k, dtype, 401)));
}

// The layers bench/conv_bench times (the autoencoder's encoder), at batch 2.
TEST(Conv, AutoencoderLayersMatchDirectLoops) {
  for (const Conv& k : cases::autoencoder_layers(2))
    EXPECT_TRUE(check_op(conv2d_case(k, DType::f32, 405)));
}

TEST(Conv, Conv2dNonContiguousInput) {
  const Conv k{2, 3, 6, 5, 2, 3, 3, 1, 1, 0, false};
  OpCase c;
  c.name = "conv2d of a permuted input and a transposed kernel";
  c.seed = 402;
  c.inputs = [&](Generator& g) {
    return Tensors{uniform_tensor({k.c, k.n, k.w, k.h}, g), uniform_tensor({k.oc, k.c, k.kw, k.kh}, g)};
  };
  auto views = [](const Tensors& in) {
    return Tensors{in[0].permute({1, 0, 3, 2}), in[1].transpose(2, 3)};
  };
  c.op = [views](const Tensors& in) {
    const Tensors v = views(in);
    return Tensors{conv2d(v[0], v[1], Tensor(), {1, 1, 0})};
  };
  c.reference = [&, views](const Tensors& in) {
    const Tensors v = views(in);
    const Dense ref = conv2d_ref(k, values_of(v[0]), values_of(v[1]), {});
    return std::vector<Expected>{{ref.values, sum_error_bound(ref.bound, 27, kU64)}};
  };
  c.tolerance = per_dtype(near(0, 0), near(0, 0));
  c.cost = cases::conv2d(k, DType::f64);
  EXPECT_TRUE(check_op(c));
}

TEST(Conv, ConvTranspose2dMatchesScatterDefinition) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (const Conv& k : kConvCases) {
      // Padding must leave a non-empty output: (h − 1)·s − 2p + kh + op > 0.
      OpCase c;
      c.name = "conv_transpose2d " + k.str() + " " + dtype_name(dtype);
      c.seed = 403;
      c.inputs = [&](Generator& g) {
        return Tensors{uniform_tensor({k.n, k.c, k.h, k.w}, g, -1, 1, dtype),
                       uniform_tensor({k.c, k.oc, k.kh, k.kw}, g, -1, 1, dtype),
                       uniform_tensor({k.oc}, g, -1, 1, dtype)};
      };
      c.op = [&](const Tensors& in) {
        return Tensors{conv_transpose2d(in[0], in[1], k.bias ? in[2] : Tensor(),
                                        {k.stride, k.padding, k.output_padding})};
      };
      c.reference = [&](const Tensors& in) {
        const Dense ref = conv_transpose2d_ref(k, values_of(in[0]), values_of(in[1]), values_of(in[2]));
        return std::vector<Expected>{
            {ref.values, sum_error_bound(ref.bound, k.c * k.kh * k.kw + 1, unit_roundoff(dtype)),
             Shape{k.n, k.oc, k.transposed_out_h(), k.transposed_out_w()}, dtype}};
      };
      c.tolerance = per_dtype(near(0, 0), near(0, 0));
      c.cost = cases::conv_transpose2d(k, dtype);
      EXPECT_TRUE(check_op(c));
    }
  }
}

// conv_transpose2d is the adjoint of conv2d: <conv(x), y> = <x, conv_transpose(y)>.
TEST(Conv, TransposeIsTheAdjoint) {
  const Conv k{2, 3, 8, 10, 4, 3, 3, 2, 1, 0, false};
  test::PoisonScope poison;
  for (Device device : test::devices()) {
    Generator gen(404);
    const Tensor x = uniform_tensor({k.n, k.c, k.h, k.w}, gen).to(device);
    const Tensor w = uniform_tensor({k.oc, k.c, k.kh, k.kw}, gen).to(device);
    const Tensor cx = conv2d(x, w, Tensor(), {k.stride, k.padding, 0});
    const Tensor y = uniform_tensor(cx.shape(), gen).to(device);
    // conv2d drops the last row and column here ((8 + 2 − 3) and (10 + 2 − 3) are odd);
    // output_padding restores them.
    const Tensor ty = conv_transpose2d(y, w, Tensor(), {k.stride, k.padding, 1});
    ASSERT_EQ(ty.shape(), x.shape());
    EXPECT_NEAR(sum(mul(cx, y)).item(), sum(mul(x, ty)).item(), 1e-12) << device.str();
  }
}

// ================================================================== cuda against cpu

TEST(Conv, ConvolutionsAndTheirGradientsMatchTheCpuBackend) {
  struct Case {
    Shape x, w;
    Conv2dOptions options;
    bool transpose;
  };
  const std::vector<Case> list = {
      {{2, 3, 9, 9}, {4, 3, 3, 3}, {1, 1, 0}, false},
      {{3, 1, 28, 28}, {8, 1, 4, 4}, {2, 1, 0}, false},
      {{2, 5, 7, 11}, {6, 5, 2, 3}, {3, 0, 0}, false},
      {{2, 8, 7, 7}, {8, 4, 4, 4}, {2, 1, 0}, true},
      {{1, 3, 5, 6}, {3, 2, 3, 3}, {2, 1, 1}, true},
  };
  for (const Case& l : list) {
    const std::int64_t out_channels = l.transpose ? l.w[1] : l.w[0];
    OpCase c;
    c.name = std::string(l.transpose ? "conv_transpose2d " : "conv2d ") + shape_str(l.x) + " " +
             shape_str(l.w);
    c.seed = 2024;
    c.inputs = [&](Generator& g) {
      return Tensors{uniform(l.x, -2, 2, g), uniform(l.w, -2, 2, g), uniform({out_channels}, -2, 2, g)};
    };
    c.op = [&](const Tensors& in) {
      return Tensors{l.transpose ? conv_transpose2d(in[0], in[1], in[2], l.options)
                                 : conv2d(in[0], in[1], in[2], l.options)};
    };
    c.tolerance = per_dtype(near(2e-5, 2e-5), near(2e-5, 2e-5));
    c.gradients = true;
    const Conv k{l.x[0], l.x[1], l.x[2], l.x[3], out_channels, l.w[2], l.w[3],
                 l.options.stride, l.options.padding, l.options.output_padding, true};
    c.cost = l.transpose ? cases::conv_transpose2d(k, DType::f32) : cases::conv2d(k, DType::f32);
    EXPECT_TRUE(check_op(c));
  }
}

// ================================================================== gradients

const std::vector<Conv> kConvGradCases = {
    // n  c  h  w  oc kh kw s  p  op bias
    {2, 2, 5, 4, 3, 3, 3, 1, 0, 0, false},
    {2, 2, 5, 4, 3, 3, 3, 1, 1, 0, true},
    {1, 2, 6, 6, 2, 3, 3, 2, 1, 1, true},
    {2, 1, 7, 5, 2, 2, 3, 2, 0, 1, true},  // non-square
    {1, 3, 4, 4, 2, 1, 1, 1, 0, 0, false},  // 1×1
    {1, 2, 5, 6, 2, 3, 2, 3, 2, 2, true},   // stride 3, padding 2
};

TEST(ConvGrad, Conv2d) {
  for (const Conv& k : kConvGradCases) {
    const Conv2dOptions o{k.stride, k.padding, 0};
    EXPECT_TRUE(check_op(gradient_case(
        "conv2d " + k.str(), 1001,
        [k](Generator& g) {
          Tensors in{uniform_tensor({k.n, k.c, k.h, k.w}, g), uniform_tensor({k.oc, k.c, k.kh, k.kw}, g)};
          if (k.bias) in.push_back(uniform_tensor({k.oc}, g));
          return in;
        },
        [k, o](const Tensors& in) { return conv2d(in[0], in[1], k.bias ? in[2] : Tensor(), o); })));
  }
}

TEST(ConvGrad, ConvTranspose2d) {
  for (const Conv& k : kConvGradCases) {
    const Conv2dOptions o{k.stride, k.padding, k.output_padding};
    EXPECT_TRUE(check_op(gradient_case(
        "conv_transpose2d " + k.str(), 1002,
        [k](Generator& g) {
          Tensors in{uniform_tensor({k.n, k.c, k.h, k.w}, g), uniform_tensor({k.c, k.oc, k.kh, k.kw}, g)};
          if (k.bias) in.push_back(uniform_tensor({k.oc}, g));
          return in;
        },
        [k, o](const Tensors& in) {
          return conv_transpose2d(in[0], in[1], k.bias ? in[2] : Tensor(), o);
        })));
  }
}

// The three products of a convolution on float32 cpu tensors, against float64 sums with the
// error bound of their terms: y (conv2d), dx and dW (its backward for an output gradient g),
//   y[n, o, i, j]  = Σ_(c,u,v) x[n, c, i·s − p + u, j·s − p + v] · w[o, c, u, v]
//   dx[n, c, a, b] = Σ over (o, u, v, i, j) with a = i·s − p + u, b = j·s − p + v of g · w
//   dW[o, c, u, v] = Σ_n Σ_(i,j) g[n, o, i, j] · x[n, c, i·s − p + u, j·s − p + v]
// on batches of up to 19 images (three partial sums of the weight gradient: 8 + 8 + 3), with
// output channels that fill whole vectors and ones that do not, on every instruction set the
// cpu backend's implicit-GEMM tiles are built for (src/backends/cpu/conv_implicit.h) and this
// cpu has: each within the bound, the same bits with 1 and with 2 threads, and the same bits
// on every instruction set where all of them take the tiles (OC ≥ 16, C·KH·KW ≥ 16 and
// C ≥ 16; below that, the ones whose vectors the channels do not fill take another path).
// conv_transpose2d runs the same three products with x and g exchanged.
struct ConvProducts {
  std::vector<double> y, dx, dw;
};

ConvProducts conv_products_f64(const Conv& k, const std::vector<double>& x,
                               const std::vector<double>& w, const std::vector<double>& g,
                               ConvProducts& bound) {
  const std::int64_t oh = k.out_h(), ow = k.out_w();
  ConvProducts r{std::vector<double>(k.n * k.oc * oh * ow), std::vector<double>(x.size()),
                 std::vector<double>(w.size())};
  bound = r;
  for (std::int64_t n = 0; n < k.n; ++n)
    for (std::int64_t o = 0; o < k.oc; ++o)
      for (std::int64_t i = 0; i < oh; ++i)
        for (std::int64_t j = 0; j < ow; ++j)
          for (std::int64_t c = 0; c < k.c; ++c)
            for (std::int64_t u = 0; u < k.kh; ++u)
              for (std::int64_t v = 0; v < k.kw; ++v) {
                const std::int64_t ih = i * k.stride - k.padding + u;
                const std::int64_t iw = j * k.stride - k.padding + v;
                if (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w) continue;
                const std::size_t xi = ((n * k.c + c) * k.h + ih) * k.w + iw;
                const std::size_t wi = ((o * k.c + c) * k.kh + u) * k.kw + v;
                const std::size_t yi = ((n * k.oc + o) * oh + i) * ow + j;
                r.y[yi] += x[xi] * w[wi], bound.y[yi] += std::abs(x[xi] * w[wi]);
                r.dx[xi] += g[yi] * w[wi], bound.dx[xi] += std::abs(g[yi] * w[wi]);
                r.dw[wi] += g[yi] * x[xi], bound.dw[wi] += std::abs(g[yi] * x[xi]);
              }
  return r;
}

// OpenMP's runtime is not instrumented for ThreadSanitizer, whose build runs one thread.
#if defined(__SANITIZE_THREAD__)
constexpr int kTeams[] = {1};
#else
constexpr int kTeams[] = {1, 2};
#endif

TEST(ConvGrad, CpuConvolutionProductsOnEveryInstructionSet) {
  const std::vector<Conv> shapes = {
      // n   c  h   w  oc kh kw s  p
      {19, 3, 9, 9, 5, 4, 4, 2, 1, 1, false},     // few output channels: im2col + GEMM
      {19, 3, 9, 9, 20, 4, 4, 2, 1, 1, false},    // 20 = 16 + 4 channels
      {11, 5, 8, 7, 33, 3, 3, 1, 1, 0, false},    // 33 = 2·16 + 1, 45 taps
      {9, 2, 7, 8, 17, 2, 3, 3, 2, 0, false},     // stride 3, padding 2, non-square kernel
      {10, 32, 14, 14, 64, 4, 4, 2, 1, 0, false}, // the autoencoder's second layer
      {7, 20, 7, 7, 24, 3, 3, 1, 1, 0, false},    // stride 1: dx in one phase
      {5, 17, 9, 9, 18, 4, 4, 2, 1, 1, false},    // stride 2: four phases of 2 × 2 taps
      {4, 16, 8, 7, 16, 3, 2, 3, 1, 1, false},    // stride 3, 3 × 2 kernel: phases of 1 and 0 taps
      {6, 64, 7, 7, 4, 3, 3, 1, 1, 0, false},     // the autoencoder's third layer: OC = 4
  };
  const cpu::VectorIsa best = cpu::best_vector_isa();
  for (const Conv& k : shapes) {
    SCOPED_TRACE(k.str());
    Generator gen(1005);
    const Tensor x = uniform_tensor({k.n, k.c, k.h, k.w}, gen, -1, 1, DType::f32);
    const Tensor w = uniform_tensor({k.oc, k.c, k.kh, k.kw}, gen, -1, 1, DType::f32);
    const Tensor g = uniform_tensor({k.n, k.oc, k.out_h(), k.out_w()}, gen, -1, 1, DType::f32);
    ConvProducts bound;
    const ConvProducts ref = conv_products_f64(k, values_of(x), values_of(w), values_of(g), bound);
    const std::int64_t taps = k.c * k.kh * k.kw, positions = k.n * k.out_h() * k.out_w();
    const ConvProducts allowed{sum_error_bound(bound.y, taps, test::kU32),
                               sum_error_bound(bound.dx, k.oc * k.kh * k.kw, test::kU32),
                               sum_error_bound(bound.dw, positions, test::kU32)};
    // conv2d's three products, then conv_transpose2d's (x and g exchanged: its forward is dx,
    // its input gradient y, its weight gradient dW).
    auto run = [&] {
      const Tensor wd = w.clone().requires_grad_(true), xd = x.clone().requires_grad_(true);
      const Tensor y = conv2d(xd, wd, Tensor(), {k.stride, k.padding, 0});
      sum(mul(y, g)).backward();
      const Tensor wt = w.clone().requires_grad_(true), gt = g.clone().requires_grad_(true);
      const Tensor t = conv_transpose2d(gt, wt, Tensor(), {k.stride, k.padding, k.output_padding});
      EXPECT_EQ(t.shape(), x.shape());
      sum(mul(t, x)).backward();
      return std::vector<std::vector<double>>{values_of(y), values_of(xd.grad()), values_of(wd.grad()),
                                              values_of(t), values_of(gt.grad()), values_of(wt.grad())};
    };
    std::vector<std::vector<double>> first;
    // (dx is computed by the forward tiles as one convolution per phase of the input pixels,
    // whose output channels are C.)
    const bool tiles_everywhere = k.oc >= 16 && taps >= 16 && k.c >= 16;
    const int threads = omp_get_max_threads();
    for (cpu::VectorIsa isa : {cpu::VectorIsa::scalar, cpu::VectorIsa::avx2, cpu::VectorIsa::avx512}) {
      if (isa > best) continue;
      SCOPED_TRACE(cpu::vector_isa_name(isa));
      cpu::set_vector_isa(isa);
      if (!tiles_everywhere) first.clear();
      for (int team : kTeams) {
        omp_set_num_threads(team);
        const auto got = run();
        const std::vector<double>* want[] = {&ref.y, &ref.dx, &ref.dw, &ref.dx, &ref.y, &ref.dw};
        const std::vector<double>* tol[] = {&allowed.y, &allowed.dx, &allowed.dw,
                                            &allowed.dx, &allowed.y, &allowed.dw};
        for (int which = 0; which < 6; ++which) {
          ASSERT_EQ(got[which].size(), want[which]->size()) << which;
          for (std::size_t i = 0; i < got[which].size(); ++i)
            ASSERT_LE(std::abs(got[which][i] - (*want[which])[i]), (*tol[which])[i])
                << "product " << which << " (y, dx, dW of conv2d, then of conv_transpose2d), element " << i;
        }
        if (first.empty()) first = got;
        for (int which = 0; which < 6; ++which)
          EXPECT_EQ(got[which], first[which]) << "threads " << team << ", product " << which;
      }
    }
    omp_set_num_threads(threads);
    cpu::set_vector_isa(best);
  }
}

// A constant of the op (not an input): the same values on every call and every device.
Tensor constant(const Shape& shape, std::uint64_t seed, Device device) {
  Generator gen(seed);
  return uniform_tensor(shape, gen).to(device);
}

// Backward closures must accept gradients that are views: concat hands each input a narrow
// of the output gradient (an offset along dim 0, a strided view along dim 1).
TEST(ConvGrad, GradientsArriveAsViews) {
  auto xw = [](Generator& g) {
    return Tensors{uniform_tensor({2, 2, 5, 4}, g), uniform_tensor({3, 2, 3, 3}, g)};
  };
  EXPECT_TRUE(check_op(gradient_case("concat along dim 0 after a pad", 1004, xw, [](const Tensors& in) {
    const Tensor pad = constant({1, 3, 5, 4}, 1, in[0].device());
    return concat({pad, conv2d(in[0], in[1], Tensor(), {1, 1, 0})}, 0);
  })));
  EXPECT_TRUE(check_op(gradient_case("concat along dim 0, then transposed", 1004, xw, [](const Tensors& in) {
    const Tensor pad = constant({1, 3, 5, 4}, 1, in[0].device());
    return concat({conv2d(in[0], in[1], Tensor(), {1, 1, 0}), pad}, 0).transpose(1, 3);
  })));
  EXPECT_TRUE(check_op(gradient_case(
      "conv_transpose2d concatenated along dim 1", 1004,
      [](Generator& g) { return Tensors{uniform_tensor({2, 2, 5, 4}, g), uniform_tensor({2, 3, 3, 3}, g)}; },
      [](const Tensors& in) {
        const Tensor pad_t = constant({2, 1, 7, 6}, 2, in[0].device());
        return concat({pad_t, conv_transpose2d(in[0], in[1], Tensor(), {1, 0, 0})}, 1);
      })));
  EXPECT_TRUE(check_op(gradient_case(
      "matmul and tanh concatenated along dim 1", 1004,
      [](Generator& g) { return Tensors{uniform_tensor({3, 4}, g), uniform_tensor({4, 5}, g)}; },
      [](const Tensors& in) {
        const Tensor side = constant({3, 2}, 3, in[0].device());
        return concat({side, matmul(in[0], in[1]), tanh(in[0]), side}, 1);
      })));
  EXPECT_TRUE(check_op(gradient_case(
      "narrow and transpose of a concat", 1004,
      [](Generator& g) { return Tensors{uniform_tensor({3, 4}, g)}; },
      [](const Tensors& in) {
        const Tensor both = concat({in[0], in[0]}, 1);  // [3, 8]
        return add(sum(both.narrow(1, 1, 5), {1}), mean(both.t(), {0}));
      })));
}

TEST(ConvGrad, OnlyOneInputRequiresGrad) {
  Generator gen(1003);
  const Tensor x = uniform_tensor({1, 2, 5, 5}, gen), w = uniform_tensor({3, 2, 3, 3}, gen);
  test::GradCheckOptions only_x, only_w;
  only_x.check = {true, false};
  only_w.check = {false, true};
  const auto f = [](const auto& in) { return conv2d(in[0], in[1], Tensor(), {2, 1, 0}); };
  EXPECT_TRUE(test::check_gradients(f, {x, w}, gen, only_x));
  EXPECT_TRUE(test::check_gradients(f, {x, w}, gen, only_w));
  const Tensor wt = uniform_tensor({2, 3, 3, 3}, gen);
  const auto g = [](const auto& in) { return conv_transpose2d(in[0], in[1], Tensor(), {2, 1, 1}); };
  EXPECT_TRUE(test::check_gradients(g, {x, wt}, gen, only_x));
  EXPECT_TRUE(test::check_gradients(g, {x, wt}, gen, only_w));
}

// A small network: a strided convolution, silu, a linear layer, tanh, an MSE loss and a
// weight penalty, end to end.
TEST(ConvGrad, SmallNetwork) {
  EXPECT_TRUE(check_op(gradient_case(
      "conv2d, silu, linear, tanh, mse_loss", 1301,
      [](Generator& g) {
        return Tensors{uniform_tensor({2, 1, 6, 5}, g), uniform_tensor({3, 1, 3, 3}, g),
                       uniform_tensor({3}, g), uniform_tensor({2, 3 * 3 * 3}, g),
                       uniform_tensor({2}, g)};
      },
      [](const Tensors& in) {
        const Tensor target = constant({2, 2}, 4, in[0].device());
        const Tensor h = silu(conv2d(in[0], in[1], in[2], {2, 1, 0}));  // [2, 3, 3, 3]
        const Tensor y = linear(h.flatten(1), in[3], in[4]);
        return add(mse_loss(tanh(y), target), mean(square(in[3])));
      })));
}

// ================================================================== errors

TEST(ConvErrors, ConvShapes) {
  for (Device d : test::devices()) {
    auto z = [d](Shape s) { return zeros(s, DType::f32, d); };
    const Tensor x = z({1, 3, 8, 8});
    EXPECT_LATENT_ERROR(conv2d(x, z({4, 2, 3, 3})), "conv2d", "[1, 3, 8, 8]", "[4, 2, 3, 3]");
    EXPECT_LATENT_ERROR(conv_transpose2d(x, z({2, 4, 3, 3})), "conv_transpose2d",
                        "[1, 3, 8, 8]", "[2, 4, 3, 3]");
    EXPECT_LATENT_ERROR(conv2d(z({3, 8, 8}), z({4, 3, 3, 3})), "conv2d", "[3, 8, 8]");
    EXPECT_LATENT_ERROR(conv2d(x, z({4, 3, 9, 9})), "conv2d", "[4, 3, 9, 9]", "[1, 3, 8, 8]");
    EXPECT_LATENT_ERROR(conv2d(x, z({4, 3, 3, 3}), z({3})), "conv2d", "bias", "[3]");
    EXPECT_LATENT_ERROR(conv2d(x, z({4, 3, 3, 3}), Tensor(), {0, 0, 0}), "conv2d", "stride");
    EXPECT_LATENT_ERROR(conv_transpose2d(x, z({3, 4, 3, 3}), Tensor(), {2, 0, 2}),
                        "conv_transpose2d", "output_padding");
    EXPECT_LATENT_ERROR(conv2d(z({0, 3, 8, 8}), z({4, 3, 3, 3})), "conv2d", "empty",
                        "[0, 3, 8, 8]");
  }
}

}  // namespace
}  // namespace latent
