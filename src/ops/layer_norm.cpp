// The layer_norm op: validate, allocate, dispatch on the device (src/backends/layer_norm.h),
// record the backward (one node with x, weight and bias as inputs; the saved mean and rstd
// of the forward go to the one backward entry). The math is in kernels/layer_norm.cuh;
// docs/layer_norm.md explains it.
#include "latent/layer_norm.h"

#include <cmath>
#include <vector>

#include "backends/layer_norm.h"
#include "backends/registry.h"
#include "latent/autograd.h"

namespace latent {
namespace {

void check_parameter(const char* name, const Tensor& p, const Tensor& x) {
  const std::int64_t cols = x.size(-1);
  LATENT_CHECK(p.dim() == 1 && p.size(0) == cols, "layer_norm: ", name, " ",
               shape_str(p.shape()), " must be [", cols, "], the last dimension of x ",
               shape_str(x.shape()));
  LATENT_CHECK(p.dtype() == x.dtype(), "layer_norm: ", name, " is ", dtype_name(p.dtype()),
               " but x ", shape_str(x.shape()), " is ", dtype_name(x.dtype()));
  LATENT_CHECK(p.device() == x.device(), "layer_norm: ", name, " ", shape_str(p.shape()),
               " is on ", p.device().str(), " but x ", shape_str(x.shape()), " is on ",
               x.device().str());
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  LATENT_CHECK(x.defined(), "layer_norm: undefined x");
  LATENT_CHECK(is_floating(x.dtype()), "layer_norm: expected float32 or float64 x, got ",
               dtype_name(x.dtype()), " of shape ", shape_str(x.shape()));
  LATENT_CHECK(x.dim() >= 1, "layer_norm: x must have at least one dimension (the one it "
               "normalizes over), got a 0-dim tensor");
  LATENT_CHECK(std::isfinite(eps) && eps > 0.0, "layer_norm: eps must be positive and finite, got ",
               eps);
  LATENT_CHECK(weight.defined() == bias.defined(),
               "layer_norm: weight and bias must both be given or both be undefined (no affine "
               "part), got ", weight.defined() ? shape_str(weight.shape()) : "no weight", " and ",
               bias.defined() ? shape_str(bias.shape()) : "no bias");
  const bool affine = weight.defined();
  if (affine) {
    check_parameter("weight", weight, x);
    check_parameter("bias", bias, x);
  }
  const Tensor input = x.contiguous();
  const Tensor w = affine ? weight.contiguous() : Tensor();
  const Tensor b = affine ? bias.contiguous() : Tensor();
  const std::int64_t cols = input.size(-1);
  const std::int64_t rows = cols > 0 ? input.numel() / cols : 0;
  Tensor y = empty(input.shape(), input.dtype(), input.device());
  Tensor mean, rstd;
  if (input.numel() > 0) {
    mean = empty({rows}, input.dtype(), input.device());
    rstd = empty({rows}, input.dtype(), input.device());
    backend::lookup<backend::LayerNormTable>(input.device())
        .forward(input, w, b, eps, y, mean, rstd);
  }
  const Tensor saved_x = input.detach();
  const Tensor saved_w = affine ? w.detach() : Tensor();
  const bool x_grad = input.requires_grad();
  const bool w_grad = affine && w.requires_grad(), b_grad = affine && b.requires_grad();
  std::vector<Tensor> inputs{input};
  if (affine) {
    inputs.push_back(w);
    inputs.push_back(b);
  }
  return record(y, "layer_norm", inputs,
                [saved_x, saved_w, mean, rstd, affine, x_grad, w_grad, b_grad](const Tensor& g) {
                  const Tensor dL_dy = g.contiguous();
                  const Device device = saved_x.device();
                  const DType dtype = saved_x.dtype();
                  const std::int64_t c = saved_x.size(-1);
                  Tensor dx = x_grad ? empty_like(saved_x) : Tensor();
                  Tensor dw = w_grad ? empty({c}, dtype, device) : Tensor();
                  Tensor db = b_grad ? empty({c}, dtype, device) : Tensor();
                  if (saved_x.numel() > 0) {
                    backend::lookup<backend::LayerNormTable>(device).backward(
                        saved_x, dL_dy, saved_w, mean, rstd, dx, dw, db);
                  } else {
                    // No rows: the parameter gradients are empty sums.
                    if (w_grad) dw = zeros({c}, dtype, device);
                    if (b_grad) db = zeros({c}, dtype, device);
                  }
                  std::vector<Tensor> grads{dx};
                  if (affine) {
                    grads.push_back(dw);
                    grads.push_back(db);
                  }
                  return grads;
                });
}

}  // namespace latent
