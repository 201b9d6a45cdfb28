// Causal self-attention (kernels/attention.cuh, src/ops/attention.cpp): the fused kernels
// against a float64 brute-force restatement, against the naive composition (two GEMMs and a
// softmax), against central differences, and the key/value-cache step against the full pass.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "latent/latent.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::check_op;
using test::devices;
using test::Expected;
using test::OpCase;
using test::Tensors;
using test::values_of;

struct Case {
  std::int64_t batch, tokens, heads, head_dim;
};
std::string case_name(const Case& c) {
  return "B " + std::to_string(c.batch) + " T " + std::to_string(c.tokens) + " H " +
         std::to_string(c.heads) + " d " + std::to_string(c.head_dim);
}

// out [B, T, C] by the definition, in double: softmax over j ≤ i of q_i·k_j/√d, times v.
std::vector<double> reference_attention(const std::vector<double>& qkv, const Case& c) {
  const std::int64_t n = c.tokens, d = c.head_dim, C = c.heads * d;
  std::vector<double> out(static_cast<std::size_t>(c.batch * n * C));
  const auto at = [&](std::int64_t b, std::int64_t t, std::int64_t part, std::int64_t h,
                      std::int64_t k) { return qkv[((b * n + t) * 3 + part) * C + h * d + k]; };
  for (std::int64_t b = 0; b < c.batch; ++b) {
    for (std::int64_t h = 0; h < c.heads; ++h) {
      for (std::int64_t i = 0; i < n; ++i) {
        std::vector<double> s(static_cast<std::size_t>(i + 1));
        for (std::int64_t j = 0; j <= i; ++j) {
          long double dot = 0;
          for (std::int64_t k = 0; k < d; ++k) dot += (long double)at(b, i, 0, h, k) * at(b, j, 1, h, k);
          s[j] = static_cast<double>(dot) / std::sqrt(static_cast<double>(d));
        }
        const double m = *std::max_element(s.begin(), s.end());
        long double l = 0;
        for (double& v : s) l += (v = std::exp(v - m));
        for (std::int64_t k = 0; k < d; ++k) {
          long double acc = 0;
          for (std::int64_t j = 0; j <= i; ++j) acc += s[j] * at(b, j, 2, h, k);
          out[(b * n + i) * C + h * d + k] = static_cast<double>(acc / l);
        }
      }
    }
  }
  return out;
}

Tensor random_qkv(const Case& c, Generator& gen, DType dtype, double spread = 1.0) {
  return uniform({c.batch, c.tokens, 3 * c.heads * c.head_dim}, -spread, spread, gen, dtype);
}

const std::vector<Case>& odd_cases() {
  static const std::vector<Case> cases = {
      {1, 1, 1, 1},  {2, 3, 1, 5},  {3, 49, 4, 32}, {2, 50, 2, 64}, {1, 64, 3, 31},
      {5, 33, 2, 33}, {2, 17, 8, 8}, {1, 64, 1, 64}, {4, 31, 5, 3},
  };
  return cases;
}

TEST(Attention, FusedMatchesTheDefinitionInFloat64AndFloat32) {
  for (const Case& shape : odd_cases()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      OpCase c;
      c.name = "causal_self_attention " + case_name(shape) + " " + dtype_name(dtype);
      c.seed = 11 + shape.tokens;
      c.inputs = [shape, dtype](Generator& g) { return Tensors{random_qkv(shape, g, dtype, 2.0)}; };
      c.op = [shape](const Tensors& in) {
        return Tensors{causal_self_attention(in[0], shape.heads)};
      };
      c.reference = [shape](const Tensors& in) {
        return std::vector<Expected>{{reference_attention(values_of(in[0]), shape)}};
      };
      c.tolerance = test::per_dtype(test::near(2e-6, 2e-5), test::near(1e-13, 1e-12));
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(Attention, GradientsMatchFiniteDifferences) {
  test::GradCheckOptions options;
  options.rtol = 1e-6;
  options.atol = 1e-8;
  for (const Case& shape : {Case{2, 5, 2, 3}, Case{1, 7, 1, 4}, Case{1, 1, 1, 2}, Case{3, 4, 3, 1}}) {
    const auto inputs = [shape](Generator& g) { return Tensors{random_qkv(shape, g, DType::f64, 1.5)}; };
    OpCase c = test::gradient_case(
        "causal_self_attention " + case_name(shape), 23, inputs,
        [shape](const Tensors& x) { return causal_self_attention(x[0], shape.heads); });
    c.finite_differences = options;
    EXPECT_TRUE(check_op(c));
  }
}

TEST(Attention, Float32GradientsMatchTheCpuBackendOnOddShapes) {
  for (const Case& shape : odd_cases()) {
    OpCase c;
    c.name = "causal_self_attention gradients " + case_name(shape);
    c.seed = 5 + shape.head_dim;
    c.inputs = [shape](Generator& g) { return Tensors{random_qkv(shape, g, DType::f32, 2.0)}; };
    c.op = [shape](const Tensors& in) { return Tensors{causal_self_attention(in[0], shape.heads)}; };
    c.tolerance = test::per_dtype(test::near(2e-6, 2e-5), test::near(1e-13, 1e-12));
    c.gradients = true;
    c.gradient_tolerance = test::per_dtype(test::near(1e-5, 1e-4), test::near(1e-12, 1e-11));
    EXPECT_TRUE(check_op(c));
  }
}

// The naive composition computes the same function: on every device, against the definition.
TEST(Attention, UnfusedCompositionMatchesTheDefinition) {
  for (const Case& shape : odd_cases()) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      OpCase c;
      c.name = "causal_self_attention_unfused " + case_name(shape) + " " + dtype_name(dtype);
      c.seed = 3 + shape.batch;
      c.inputs = [shape, dtype](Generator& g) { return Tensors{random_qkv(shape, g, dtype, 2.0)}; };
      c.op = [shape](const Tensors& in) {
        return Tensors{causal_self_attention_unfused(in[0], shape.heads)};
      };
      c.reference = [shape](const Tensors& in) {
        return std::vector<Expected>{{reference_attention(values_of(in[0]), shape)}};
      };
      c.tolerance = test::per_dtype(test::near(2e-6, 2e-5), test::near(1e-13, 1e-12));
      EXPECT_TRUE(check_op(c));
    }
  }
}

TEST(Attention, FusedAndUnfusedAgreeOnEveryDevice) {
  const Case shape{4, 49, 4, 32};
  Generator gen(99);
  const Tensor qkv = random_qkv(shape, gen, DType::f32, 3.0);
  for (const Device device : devices()) {
    const Tensor x = qkv.to(device);
    const Tensor fused = causal_self_attention(x, shape.heads);
    const Tensor unfused = causal_self_attention_unfused(x, shape.heads);
    EXPECT_LT(max_abs_diff(fused.to(Device::cpu()), unfused.to(Device::cpu())), 5e-6)
        << device.str();
  }
}

// Scores of ±200 (q and k of magnitude 20 at d = 64 would overflow e^s without the max):
// finite and still the definition.
TEST(Attention, LargeScoresStayFinite) {
  const Case shape{2, 40, 2, 16};
  OpCase c;
  c.name = "causal_self_attention large scores";
  c.inputs = [shape](Generator& g) { return Tensors{random_qkv(shape, g, DType::f32, 12.0)}; };
  c.op = [shape](const Tensors& in) { return Tensors{causal_self_attention(in[0], shape.heads)}; };
  c.reference = [shape](const Tensors& in) {
    return std::vector<Expected>{{reference_attention(values_of(in[0]), shape)}};
  };
  // |s| up to 144·16/4 = 576: a relative error u·|s| in a score is an error of that size in
  // a probability's exponent.
  c.tolerance = test::per_dtype(test::near(2e-4, 2e-4), test::near(1e-11, 1e-11));
  c.gradients = true;
  c.gradient_tolerance = test::per_dtype(test::near(5e-3, 5e-3), test::near(1e-10, 1e-10));
  EXPECT_TRUE(check_op(c));
}

TEST(Attention, BackwardIsDeterministic) {
  const Case shape{3, 49, 4, 32};
  Generator gen(7);
  const Tensor qkv = random_qkv(shape, gen, DType::f32, 2.0);
  const Tensor w = uniform({shape.batch, shape.tokens, shape.heads * shape.head_dim}, -1, 1, gen);
  for (const Device device : devices()) {
    std::vector<Tensor> grads;
    for (int run = 0; run < 2; ++run) {
      const Tensor x = qkv.to(device).detach().requires_grad_();
      sum(mul(causal_self_attention(x, shape.heads), w.to(device))).backward();
      grads.push_back(x.grad().to(Device::cpu()));
    }
    EXPECT_TRUE(test::identical(grads[0], grads[1])) << device.str();
  }
}

// Decoding token by token through the cache gives the rows of the full causal pass.
TEST(Attention, DecodeStepsReproduceTheFullPass) {
  for (const Case& shape : {Case{3, 49, 4, 32}, Case{2, 64, 1, 64}, Case{1, 5, 3, 7}}) {
    for (const DType dtype : {DType::f32, DType::f64}) {
      Generator gen(31);
      const Tensor qkv = random_qkv(shape, gen, dtype, 2.0);
      const std::int64_t C = shape.heads * shape.head_dim;
      for (const Device device : devices()) {
        const Tensor x = qkv.to(device);
        const std::vector<double> full = values_of(causal_self_attention(x, shape.heads));
        const Tensor keys = zeros({shape.batch, shape.tokens, C}, dtype, device);
        const Tensor values = zeros({shape.batch, shape.tokens, C}, dtype, device);
        const double tolerance = dtype == DType::f32 ? 3e-6 : 1e-13;
        for (std::int64_t t = 0; t < shape.tokens; ++t) {
          const Tensor step_qkv = x.narrow(1, t, 1).reshape({shape.batch, 3 * C});
          const std::vector<double> got =
              values_of(attention_decode_step(step_qkv, keys, values, t, shape.heads));
          double worst = 0.0;
          for (std::int64_t b = 0; b < shape.batch; ++b) {
            for (std::int64_t k = 0; k < C; ++k) {
              worst = std::max(worst, std::abs(got[b * C + k] - full[(b * shape.tokens + t) * C + k]));
            }
          }
          ASSERT_LE(worst, tolerance) << case_name(shape) << " " << dtype_name(dtype) << " "
                                      << device.str() << " position " << t;
        }
        // The cache now holds every token's key and value.
        const std::vector<double> q = values_of(x);
        const std::vector<double> k = values_of(keys);
        for (std::int64_t b = 0; b < shape.batch; ++b) {
          for (std::int64_t t = 0; t < shape.tokens; ++t) {
            for (std::int64_t c = 0; c < C; ++c) {
              ASSERT_EQ(k[(b * shape.tokens + t) * C + c], q[((b * shape.tokens + t) * 3 + 1) * C + c]);
            }
          }
        }
      }
    }
  }
}

TEST(Attention, BadInputIsAClearError) {
  Generator gen(1);
  const Tensor ok = uniform({2, 5, 12}, -1, 1, gen);
  EXPECT_LATENT_ERROR(causal_self_attention(uniform({2, 65, 6}, -1, 1, gen), 1), "causal_self_attention", "65 tokens", "at most 64");
  EXPECT_LATENT_ERROR(causal_self_attention(uniform({2, 5, 3 * 65}, -1, 1, gen), 1), "causal_self_attention", "65 channels", "at most 64");
  EXPECT_LATENT_ERROR(causal_self_attention(ok, 5), "3·heads·head_dim", "heads = 5");
  EXPECT_LATENT_ERROR(causal_self_attention(ok, 0), "heads must be at least 1");
  EXPECT_LATENT_ERROR(causal_self_attention(uniform({5, 12}, -1, 1, gen), 2), "[batch, tokens, 3·channels]", "[5, 12]");
  EXPECT_LATENT_ERROR(causal_self_attention(zeros({2, 5, 12}, DType::i32), 2), "float32 or float64", "int32");
  const Tensor keys = zeros({2, 8, 4});
  const Tensor step = uniform({2, 12}, -1, 1, gen);
  EXPECT_LATENT_ERROR(attention_decode_step(step, keys, keys, 8, 2), "attention_decode_step", "position 8", "8 positions");
  EXPECT_LATENT_ERROR(attention_decode_step(step, zeros({2, 8, 5}), zeros({2, 8, 5}), 0, 2), "key cache must be [2, capacity, 4]");
  EXPECT_LATENT_ERROR(attention_decode_step(step, keys, zeros({2, 7, 4}), 0, 2), "value cache");
  EXPECT_LATENT_ERROR(attention_decode_step(step, zeros({2, 8, 4}, DType::f64), zeros({2, 8, 4}, DType::f64), 0, 2), "share a dtype");
}

}  // namespace
}  // namespace latent
