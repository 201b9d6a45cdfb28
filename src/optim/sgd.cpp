// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay,
// following torch.optim.SGD (dampening 0):
//   d = g + λ·p
//   b = d at t = 1 (the buffer starts as the first gradient), b = μ·b + d after
//   d = d + μ·b (Nesterov) or d = b
//   p = p − lr·d
#include "latent/ops.h"
#include "latent/optim.h"

namespace latent::optim {

SGD::SGD(std::vector<Tensor> params, double lr, double momentum, double weight_decay,
         bool nesterov)
    : Optimizer(std::move(params), lr), momentum_(momentum), weight_decay_(weight_decay),
      nesterov_(nesterov) {
  LATENT_CHECK(momentum >= 0.0, "SGD: invalid momentum ", momentum);
  LATENT_CHECK(weight_decay >= 0.0, "SGD: invalid weight_decay ", weight_decay);
  LATENT_CHECK(!nesterov || momentum > 0.0, "SGD: Nesterov momentum needs momentum > 0");
}

std::vector<std::string> SGD::buffer_names() const {
  if (momentum_ == 0.0) return {};
  return {"momentum_buffer"};
}

void SGD::update(const Tensor& param, const Tensor& grad, ParamState& state) {
  Tensor d = grad;
  if (weight_decay_ != 0.0) d = add(d, mul(param, weight_decay_));
  if (momentum_ != 0.0) {
    auto found = state.buffers.find("momentum_buffer");
    if (found == state.buffers.end()) {
      found = state.buffers.emplace("momentum_buffer", d.clone()).first;
    } else {
      found->second.copy_(add(mul(found->second, momentum_), d));
    }
    const Tensor& b = found->second;
    d = nesterov_ ? add(d, mul(b, momentum_)) : b;
  }
  Tensor p = param;
  p.copy_(sub(param, mul(d, lr())));
}

}  // namespace latent::optim
