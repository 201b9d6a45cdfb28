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
  const double b1 = betas_.beta1, b2 = betas_.beta2;
  const Tensor g = l2 != 0.0 ? add(grad, mul(param, l2)) : grad;
  if (!state.buffers.count("exp_avg")) {
    state.buffers["exp_avg"] = zeros_like(param);
    state.buffers["exp_avg_sq"] = zeros_like(param);
  }
  Tensor& m = state.buffers["exp_avg"];
  Tensor& v = state.buffers["exp_avg_sq"];
  m.copy_(add(mul(m, b1), mul(g, 1.0 - b1)));
  v.copy_(add(mul(v, b2), mul(square(g), 1.0 - b2)));
  const double t = static_cast<double>(state.step);
  const double step_size = lr() / (1.0 - std::pow(b1, t));
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(b2, t));
  const Tensor denom = add(div(sqrt(v), bias_correction2_sqrt), eps_);
  Tensor p = param;
  p.copy_(sub(param, mul(div(m, denom), step_size)));
}

void Adam::update(const Tensor& param, const Tensor& grad, ParamState& state) {
  adam_update(param, grad, state, weight_decay_);
}

AdamW::AdamW(std::vector<Tensor> params, double lr, Betas betas, double eps,
             double weight_decay)
    : Adam("AdamW", std::move(params), lr, betas, eps, weight_decay) {}

void AdamW::update(const Tensor& param, const Tensor& grad, ParamState& state) {
  if (weight_decay_ != 0.0) {
    Tensor p = param;
    p.copy_(mul(param, 1.0 - lr() * weight_decay_));
  }
  adam_update(param, grad, state, 0.0);
}

}  // namespace latent::optim
