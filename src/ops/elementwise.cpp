// Elementwise ops: broadcasting binary ops, scalar ops and unary activations.
//
// Each forward allocates its output, hands the primitive to the device's backend and records
// a backward closure. Broadcast gradients are reduced back to each input's shape by one
// function, sum_to (see reduce.cpp).
#include "backends/elementwise.h"
#include "backends/registry.h"
#include "core/tensor_impl.h"
#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent {
namespace {

using backend::BinaryOp;
using backend::UnaryOp;
using backend::UnaryParams;

void check_floating(const char* op, const Tensor& x) {
  LATENT_CHECK(x.defined(), op, ": undefined tensor");
  LATENT_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 tensor, got ",
               dtype_name(x.dtype()), " of shape ", shape_str(x.shape()));
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = backend::binary_op_name(op);
  check_floating(name, a);
  check_floating(name, b);
  check_same_device_dtype(name, {a, b});
  const Shape out_shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = empty(out_shape, a.dtype(), a.device());
  if (out.numel() > 0) {
    backend::lookup<backend::ElementwiseTable>(a.device())
        .binary(op, broadcast_view(a, out_shape), broadcast_view(b, out_shape), out);
  }
  const Shape a_shape = a.shape(), b_shape = b.shape();
  const bool a_grad = a.requires_grad(), b_grad = b.requires_grad();
  switch (op) {
    case BinaryOp::add:
      return record(out, name, {a, b}, [a_shape, b_shape](const Tensor& g) {
        return std::vector<Tensor>{sum_to(g, a_shape), sum_to(g, b_shape)};
      });
    case BinaryOp::sub:
      return record(out, name, {a, b}, [a_shape, b_shape](const Tensor& g) {
        return std::vector<Tensor>{sum_to(g, a_shape), sum_to(neg(g), b_shape)};
      });
    case BinaryOp::mul: {
      const Tensor sa = a.detach(), sb = b.detach();
      return record(out, name, {a, b}, [sa, sb, a_grad, b_grad](const Tensor& g) {
        return std::vector<Tensor>{a_grad ? sum_to(mul(g, sb), sa.shape()) : Tensor(),
                                   b_grad ? sum_to(mul(g, sa), sb.shape()) : Tensor()};
      });
    }
    case BinaryOp::div: {
      // d(a/b)/da = 1/b;  d(a/b)/db = -a/b² = -out/b.
      const Tensor sb = b.detach(), sout = out.detach();
      return record(out, name, {a, b}, [sb, sout, a_shape, a_grad, b_grad](const Tensor& g) {
        const Tensor g_over_b = div(g, sb);
        return std::vector<Tensor>{
            a_grad ? sum_to(g_over_b, a_shape) : Tensor(),
            b_grad ? sum_to(neg(mul(g_over_b, sout)), sb.shape()) : Tensor()};
      });
    }
  }
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x, UnaryParams params = {}) {
  const char* name = backend::unary_op_name(op);
  check_floating(name, x);
  const Tensor input = x.contiguous();
  Tensor out = empty(input.shape(), input.dtype(), input.device());
  if (out.numel() > 0) backend::lookup<backend::ElementwiseTable>(input.device()).unary(op, input, out, params);
  const Tensor saved_x = input.detach(), saved_y = out.detach();
  return record(out, name, {input}, [op, params, saved_x, saved_y](const Tensor& g) {
    const Tensor dL_dy = g.contiguous();
    Tensor dL_dx = empty_like(saved_x);
    if (dL_dx.numel() > 0) {
      backend::lookup<backend::ElementwiseTable>(saved_x.device())
          .unary_backward(op, saved_x, saved_y, dL_dy, dL_dx, params);
    }
    return std::vector<Tensor>{dL_dx};
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }

Tensor add(const Tensor& a, double s) { return unary(UnaryOp::add_scalar, a, {s}); }
Tensor sub(const Tensor& a, double s) { return unary(UnaryOp::add_scalar, a, {-s}); }
Tensor mul(const Tensor& a, double s) { return unary(UnaryOp::mul_scalar, a, {s}); }
Tensor div(const Tensor& a, double s) {
  LATENT_CHECK(s != 0.0, "div: division of a tensor of shape ", shape_str(a.shape()),
               " by the scalar 0");
  return unary(UnaryOp::mul_scalar, a, {1.0 / s});
}
Tensor rsub(double s, const Tensor& a) { return unary(UnaryOp::rsub_scalar, a, {s}); }
Tensor pow(const Tensor& a, double exponent) { return unary(UnaryOp::pow, a, {exponent}); }

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return unary(UnaryOp::leaky_relu, x, {negative_slope});
}
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
Tensor gelu(const Tensor& x) { return unary(UnaryOp::gelu, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor clamp(const Tensor& x, double low, double high) {
  LATENT_CHECK(low <= high, "clamp: low ", low, " above high ", high);
  return unary(UnaryOp::clamp, x, {low, high});
}

}  // namespace latent
