// Reconstruction losses, averaged over every element.
#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent {

Tensor mse_loss(const Tensor& prediction, const Tensor& target) {
  LATENT_CHECK(prediction.shape() == target.shape(), "mse_loss: prediction ",
               shape_str(prediction.shape()), " and target ", shape_str(target.shape()),
               " differ in shape");
  LATENT_CHECK(prediction.numel() > 0, "mse_loss: empty input of shape ",
               shape_str(prediction.shape()));
  return mean(square(sub(prediction, target)));
}

// loss = mean(max(x, 0) − x·t + log(1 + exp(−|x|))), the overflow-free form of
// −t·log σ(x) − (1 − t)·log(1 − σ(x)). Gradients: dL/dx = (σ(x) − t)/n, dL/dt = −x/n.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target) {
  LATENT_CHECK(logits.shape() == target.shape(), "binary_cross_entropy_with_logits: logits ",
               shape_str(logits.shape()), " and target ", shape_str(target.shape()),
               " differ in shape");
  LATENT_CHECK(logits.numel() > 0, "binary_cross_entropy_with_logits: empty input of shape ",
               shape_str(logits.shape()));
  Tensor loss;
  {
    NoGradGuard no_grad;
    const Tensor x = logits.detach(), t = target.detach();
    loss = mean(add(sub(relu(x), mul(x, t)), log(add(exp(neg(abs(x))), 1.0))));
  }
  const Tensor x = logits.detach(), t = target.detach();
  const double inv_n = 1.0 / static_cast<double>(logits.numel());
  const bool x_grad = logits.requires_grad(), t_grad = target.requires_grad();
  return record(loss, "binary_cross_entropy_with_logits", {logits, target},
                [x, t, inv_n, x_grad, t_grad](const Tensor& g) {
                  const Tensor scale = mul(g, inv_n);  // g is a scalar tensor
                  return std::vector<Tensor>{
                      x_grad ? mul(sub(sigmoid(x), t), scale) : Tensor(),
                      t_grad ? mul(neg(x), scale) : Tensor()};
                });
}

}  // namespace latent
