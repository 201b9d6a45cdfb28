// Matrix products: matmul (2-D and batched 3-D) and linear, on the backend's GEMM.
#include "backends/gemm.h"
#include "backends/registry.h"
#include "core/tensor_impl.h"
#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent {
namespace {

// A 2-D matrix as GEMM wants it: row-major storage, optionally transposed, with a
// leading dimension. Views that are a transpose of a row-major matrix are used in place.
struct GemmOperand {
  Tensor storage;
  bool transposed = false;
  std::int64_t ld = 1;
};

GemmOperand as_gemm_operand(const Tensor& m) {
  const std::int64_t rows = m.shape()[0], cols = m.shape()[1];
  const auto& st = m.strides();
  if ((st[1] == 1 || cols == 1) && st[0] >= std::max<std::int64_t>(cols, 1))
    return {m, false, st[0]};
  if ((st[0] == 1 || rows == 1) && st[1] >= std::max<std::int64_t>(rows, 1))
    return {m, true, st[1]};
  const Tensor c = m.contiguous();
  return {c, false, std::max<std::int64_t>(cols, 1)};
}

// out[M, N] = a[M, K] · b[K, N], no autograd.
void gemm_into(const Tensor& a, const Tensor& b, const Tensor& out) {
  const std::int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  if (m == 0 || n == 0) return;
  if (k == 0) {
    out.detach().fill_(0.0);
    return;
  }
  const GemmOperand ga = as_gemm_operand(a), gb = as_gemm_operand(b);
  backend::lookup<backend::GemmTable>(a.device())
      .gemm(a.dtype(), ga.transposed, gb.transposed, m, n, k, 1.0, ga.storage.data_ptr(), ga.ld,
            gb.storage.data_ptr(), gb.ld, 0.0, out.data_ptr(), std::max<std::int64_t>(n, 1));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_device_dtype("matmul", {a, b});
  LATENT_CHECK(is_floating(a.dtype()), "matmul: expected floating tensors, got ",
               dtype_name(a.dtype()));
  const bool batched = a.dim() == 3 && b.dim() == 3;
  LATENT_CHECK((a.dim() == 2 && b.dim() == 2) || batched,
               "matmul: expected two 2-D or two 3-D tensors, got shapes ", shape_str(a.shape()),
               " and ", shape_str(b.shape()));
  LATENT_CHECK(a.shape().back() == b.shape()[b.dim() - 2], "matmul: inner dimensions differ: ",
               shape_str(a.shape()), " @ ", shape_str(b.shape()));
  Tensor out;
  if (!batched) {
    out = empty({a.shape()[0], b.shape()[1]}, a.dtype(), a.device());
    gemm_into(a, b, out);
  } else {
    LATENT_CHECK(a.shape()[0] == b.shape()[0], "matmul: batch sizes differ: ",
                 shape_str(a.shape()), " @ ", shape_str(b.shape()));
    const std::int64_t batch = a.shape()[0];
    out = empty({batch, a.shape()[1], b.shape()[2]}, a.dtype(), a.device());
    NoGradGuard no_grad;
    for (std::int64_t i = 0; i < batch; ++i) {
      const Tensor ai = make_view(a, {a.shape()[1], a.shape()[2]}, {a.strides()[1], a.strides()[2]},
                                  a.offset() + i * a.strides()[0]);
      const Tensor bi = make_view(b, {b.shape()[1], b.shape()[2]}, {b.strides()[1], b.strides()[2]},
                                  b.offset() + i * b.strides()[0]);
      gemm_into(ai, bi, out.narrow(0, i, 1).reshape({a.shape()[1], b.shape()[2]}));
    }
  }
  const Tensor sa = a.detach(), sb = b.detach();
  const bool a_grad = a.requires_grad(), b_grad = b.requires_grad();
  return record(out, "matmul", {a, b}, [sa, sb, a_grad, b_grad](const Tensor& g) {
    return std::vector<Tensor>{a_grad ? matmul(g, sb.transpose(-1, -2)) : Tensor(),
                               b_grad ? matmul(sa.transpose(-1, -2), g) : Tensor()};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_same_device_dtype("linear", {x, weight, bias});
  LATENT_CHECK(weight.dim() == 2, "linear: weight must be [out, in], got ",
               shape_str(weight.shape()));
  LATENT_CHECK(x.dim() >= 1 && x.shape().back() == weight.shape()[1], "linear: input ",
               shape_str(x.shape()), " does not end in the weight's in_features (weight ",
               shape_str(weight.shape()), ")");
  LATENT_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == weight.shape()[0]),
               "linear: bias ", shape_str(bias.defined() ? bias.shape() : Shape{}),
               " does not match out_features ", weight.shape()[0]);
  Shape out_shape = x.shape();
  out_shape.back() = weight.shape()[0];
  Tensor y = matmul(x.reshape({-1, weight.shape()[1]}), weight.t());
  if (bias.defined()) y = add(y, bias);
  return y.reshape(out_shape);
}

}  // namespace latent
