// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as torch.optim.Adam/AdamW.
//
// At the t-th update of parameter p with gradient g:
//   Adam:  g ← g + λ·p                       (L2 penalty folded into the gradient)
//   AdamW: p ← p · (1 − lr·λ)                (decoupled weight decay), then λ = 0 below
//   m ← β1·m + (1 − β1)·g                    first moment,  m₀ = 0
//   v ← β2·v + (1 − β2)·g²                   second moment, v₀ = 0
//   step_size = lr / (1 − β1^t)              bias corrections of m and v
//   denom     = √v / √(1 − β2^t) + ε
//   p ← p − step_size · m / denom
#include <cmath>

#include "backends/adam.h"
#include "backends/registry.h"
#include "kernels/adam_constants.h"
#include "latent/ops.h"
#include "latent/optim.h"

namespace latent::optim {
namespace {

void check_adam(const char* opt, Betas betas, double eps, double weight_decay) {
  LATENT_CHECK(betas.beta1 >= 0.0 && betas.beta1 < 1.0, opt, ": invalid beta1 ", betas.beta1);
  LATENT_CHECK(betas.beta2 >= 0.0 && betas.beta2 < 1.0, opt, ": invalid beta2 ", betas.beta2);
  LATENT_CHECK(eps >= 0.0, opt, ": invalid eps ", eps);
  LATENT_CHECK(weight_decay >= 0.0, opt, ": invalid weight_decay ", weight_decay);
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, double lr, Betas betas, double eps, double weight_decay)
    : Adam("Adam", std::move(params), lr, betas, eps, weight_decay) {}

Adam::Adam(const char* which, std::vector<Tensor> params, double lr, Betas betas, double eps,
           double weight_decay)
    : Optimizer(std::move(params), lr), betas_(betas), eps_(eps), weight_decay_(weight_decay) {
  check_adam(which, betas, eps, weight_decay);
}

std::vector<std::string> Adam::buffer_names() const { return {"exp_avg", "exp_avg_sq"}; }

void Adam::adam_update(const Tensor& param, const Tensor& grad, ParamState& state, double l2) {
  if (!state.buffers.count("exp_avg")) {
    state.buffers["exp_avg"] = zeros_like(param);
    state.buffers["exp_avg_sq"] = zeros_like(param);
  }
  const double t = static_cast<double>(state.step);
  kernels::AdamConstants c{};
  c.lr = lr();
  c.beta1 = betas_.beta1;
  c.beta2 = betas_.beta2;
  c.eps = eps_;
  c.step_size = lr() / (1.0 - std::pow(betas_.beta1, t));
  c.bias2_sqrt = std::sqrt(1.0 - std::pow(betas_.beta2, t));
  c.decoupled = decoupled_;
  c.weight_decay = decoupled_ ? weight_decay_ : l2;
  LATENT_CHECK(param.is_contiguous(), name(), ": parameter of shape ", shape_str(param.shape()),
               " is not contiguous");
  // One fused pass per parameter (kernels/adam.cuh) on the parameter's device.
  backend::lookup<backend::AdamTable>(param.device())
      .step(c, param, grad.contiguous(), state.buffers["exp_avg"],
                 state.buffers["exp_avg_sq"]);
}

void Adam::update(const Tensor& param, const Tensor& grad, ParamState& state) {
  adam_update(param, grad, state, weight_decay_);
}

AdamW::AdamW(std::vector<Tensor> params, double lr, Betas betas, double eps,
             double weight_decay)
    : Adam("AdamW", std::move(params), lr, betas, eps, weight_decay) {
  decoupled_ = true;
}

void AdamW::update(const Tensor& param, const Tensor& grad, ParamState& state) {
  adam_update(param, grad, state, 0.0);
}

}  // namespace latent::optim
