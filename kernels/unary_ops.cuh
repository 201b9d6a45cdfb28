// The table of elementwise ops: every unary op, its derivative and the four binary ops,
// written once as host-and-device code. The cpu backend's loops and the cuda kernels of
// kernels/elementwise.cuh call the same functions, so they compute the same thing.
//
//   op            f(x)                    f'(x), through x and y = f(x)
//   neg           −x                      −1
//   exp           eˣ                      y
//   log           ln x                    1/x
//   sqrt          √x                      ½/y
//   abs           |x|                     sign x (0 at 0)
//   square        x²                      2x
//   relu          max(x, 0)               [x > 0]
//   leaky_relu    x > 0 ? x : αx          x > 0 ? 1 : α
//   silu          x·σ(x)                  σ(x)·(1 + x·(1 − σ(x)))
//   gelu          x·Φ(x), Φ(x) = ½erfc(−x/√2)   Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)
//   sigmoid       σ(x) = 1/(1 + e⁻ˣ)      y·(1 − y)
//   tanh          tanh x                  1 − y²
//   pow           x^α                     α·x^(α−1)  (0 when α = 0, also at x = 0)
//   add_scalar    x + α                   1
//   mul_scalar    x·α                     α
//   rsub_scalar   α − x                   −1
//   clamp         min(max(x, α), β)       [α ≤ x ≤ β]
#pragma once

#include "kernels/host_device.cuh"
#include "kernels/math.cuh"

namespace latent::kernels {

enum class UnaryOp {
  neg, exp, log, sqrt, abs, square, relu, leaky_relu, silu, gelu, sigmoid, tanh,
  pow, add_scalar, mul_scalar, rsub_scalar, clamp,
};

enum class BinaryOp { add, sub, mul, div };

inline const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::abs: return "abs";
    case UnaryOp::square: return "square";
    case UnaryOp::relu: return "relu";
    case UnaryOp::leaky_relu: return "leaky_relu";
    case UnaryOp::silu: return "silu";
    case UnaryOp::gelu: return "gelu";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::pow: return "pow";
    case UnaryOp::add_scalar: return "add_scalar";
    case UnaryOp::mul_scalar: return "mul_scalar";
    case UnaryOp::rsub_scalar: return "rsub_scalar";
    case UnaryOp::clamp: return "clamp";
  }
  return "?";
}

inline const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
  }
  return "?";
}

template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T unary_value(UnaryOp op, T x, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return math_exp(x);
    case UnaryOp::log: return math_log(x);
    case UnaryOp::sqrt: return math_sqrt(x);
    case UnaryOp::abs: return math_abs(x);
    case UnaryOp::square: return x * x;
    case UnaryOp::relu: return x > T(0) ? x : T(0);
    case UnaryOp::leaky_relu: return x > T(0) ? x : alpha * x;
    case UnaryOp::silu: return x / (T(1) + math_exp(-x));
    // The exact GELU (the transformer's MLP activation; PyTorch's default, not its tanh
    // approximation). erfc, not 1 + erf: for x ≪ 0 the sum would cancel to 0 long before
    // x·Φ(x) underflows.
    case UnaryOp::gelu: {
      const T cdf = T(0.5) * math_erfc(x * T(-0.70710678118654752440));
      return cdf == T(0) ? T(0) : x * cdf;  // the limit 0 at −∞, not −∞·0
    }
    case UnaryOp::sigmoid: return T(1) / (T(1) + math_exp(-x));
    case UnaryOp::tanh: return math_tanh(x);
    case UnaryOp::pow: return math_pow(x, alpha);
    case UnaryOp::add_scalar: return x + alpha;
    case UnaryOp::mul_scalar: return x * alpha;
    case UnaryOp::rsub_scalar: return alpha - x;
    case UnaryOp::clamp: {
      const T low = x < alpha ? alpha : x;  // std::max(x, alpha): NaN stays NaN
      return beta < low ? beta : low;       // std::min(low, beta)
    }
  }
  return x;
}

template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T unary_slope(UnaryOp op, T x, T y, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return T(-1);
    case UnaryOp::exp: return y;
    case UnaryOp::log: return T(1) / x;
    case UnaryOp::sqrt: return T(0.5) / y;
    case UnaryOp::abs: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::square: return T(2) * x;
    case UnaryOp::relu: return x > T(0) ? T(1) : T(0);
    case UnaryOp::leaky_relu: return x > T(0) ? T(1) : alpha;
    case UnaryOp::silu: {
      const T s = T(1) / (T(1) + math_exp(-x));
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::gelu: {
      const T cdf = T(0.5) * math_erfc(x * T(-0.70710678118654752440));
      const T pdf = T(0.39894228040143267794) * math_exp(T(-0.5) * x * x);  // 1/√(2π)
      return pdf == T(0) ? cdf : cdf + x * pdf;  // the limits 0 and 1 at ∓∞, not ∞·0
    }
    case UnaryOp::sigmoid: return y * (T(1) - y);
    case UnaryOp::tanh: return T(1) - y * y;
    case UnaryOp::pow: return alpha == T(0) ? T(0) : alpha * math_pow(x, alpha - T(1));
    case UnaryOp::add_scalar: return T(1);
    case UnaryOp::mul_scalar: return alpha;
    case UnaryOp::rsub_scalar: return T(-1);
    case UnaryOp::clamp: return (x >= alpha && x <= beta) ? T(1) : T(0);
  }
  return T(0);
}

template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return a;
}

}  // namespace latent::kernels
