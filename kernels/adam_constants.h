// The scalars of one Adam/AdamW update (kernels/adam.cuh), computed once on the host.
#pragma once

namespace latent::kernels {

struct AdamConstants {
  double lr, beta1, beta2, eps, weight_decay;
  double step_size;   // lr / (1 − β1^t)
  double bias2_sqrt;  // √(1 − β2^t)
  bool decoupled;     // AdamW: decay the parameter, not the gradient
};

}  // namespace latent::kernels
