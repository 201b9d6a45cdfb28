// Float64 restatements that several kernel tests use as their references (OpCase::reference
// in tests/op_harness.h): broadcasting, sums over dimension sets, and the classical error
// bound of a computed sum.
//
// Tolerances. Inputs are exact in their dtype and the references are computed in double
// from those exact values, so:
//   +, −, ·, /, sqrt, abs, relu, clamp    correctly rounded: results must be bit-identical;
//   exp, log, tanh, sigmoid, silu, pow    a few ulps of the library's math functions;
//   sums and dot products of K terms      |error| <= K·u·Σ|terms| (u = unit roundoff),
//                                         the classical bound for recursive summation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "latent/ops.h"
#include "latent/tensor.h"

namespace latent::test {

// Rounds a double to the dtype's precision (what a correctly rounded op returns).
inline double round_to(DType dtype, double v) {
  return dtype == DType::f32 ? static_cast<double>(static_cast<float>(v)) : v;
}

// The NumPy broadcast of two shapes (assumed compatible).
inline Shape broadcast_shape(const Shape& a, const Shape& b) {
  Shape out(std::max(a.size(), b.size()), 1);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::int64_t x = i < a.size() ? a[a.size() - 1 - i] : 1;
    const std::int64_t y = i < b.size() ? b[b.size() - 1 - i] : 1;
    out[out.size() - 1 - i] = x == 1 ? y : x;
  }
  return out;
}

// Flat index into `in` (right-aligned NumPy broadcasting) of element `flat` of `out`.
inline std::int64_t broadcast_source(const Shape& out, const Shape& in, std::int64_t flat) {
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

inline Reduced reduce_ref(const std::vector<double>& x, const Shape& shape,
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

// Allowed error of a computed sum of `terms` products whose absolute values add up to bound.
inline std::vector<double> sum_error_bound(const std::vector<double>& bound, std::int64_t terms,
                                           double u) {
  std::vector<double> allowed(bound.size());
  for (std::size_t i = 0; i < bound.size(); ++i)
    allowed[i] = static_cast<double>(terms + 2) * u * bound[i] + 1e-300;
  return allowed;
}

// ------------------------------------------------------------------ optimizers

// torch.optim.Adam / AdamW (amsgrad off), in double.
struct HostAdam {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& p, std::vector<double> g) {
    if (m.empty()) m.assign(p.size(), 0.0), v.assign(p.size(), 0.0);
    ++t;
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (decoupled) {
        p[i] *= 1 - lr * weight_decay;
      } else {
        g[i] += weight_decay * p[i];
      }
      m[i] = beta1 * m[i] + (1 - beta1) * g[i];
      v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
      const double step_size = lr / (1 - std::pow(beta1, t));
      const double denom = std::sqrt(v[i]) / std::sqrt(1 - std::pow(beta2, t)) + eps;
      p[i] -= step_size * m[i] / denom;
    }
  }
};

// The optimizers' toy objective L(p) = Σ w·p² + u·p, whose gradient is g = 2·w·p + u.
inline const std::vector<double> kW = {0.5, 2.0, 1.5, 0.1};
inline const std::vector<double> kU = {0.3, -1.0, 0.0, 4.0};
inline const std::vector<double> kP0 = {1.0, -0.5, 2.0, 0.25};

inline std::vector<double> toy_grad(const std::vector<double>& p) {
  std::vector<double> g(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) g[i] = 2 * kW[i] * p[i] + kU[i];
  return g;
}

// Computes L(p) with autograd and runs backward, filling p.grad().
inline void toy_backward(const Tensor& p) {
  const Tensor w = from_vector(kW, {4}).to(p.dtype()).to(p.device());
  const Tensor u = from_vector(kU, {4}).to(p.dtype()).to(p.device());
  sum(add(mul(w, square(p)), mul(u, p))).backward();
}

inline Tensor toy_param(DType dtype = DType::f64, Device device = Device::cpu()) {
  return from_vector(kP0, {4}).to(dtype).to(device).requires_grad_();
}

}  // namespace latent::test
