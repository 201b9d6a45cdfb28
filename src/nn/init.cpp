// Parameter initializers. Each draws once from the caller's Generator (one Philox offset)
// and writes in place, so the tensor keeps its identity, dtype and device.
//
// kaiming_uniform_ (He et al. 2015, fan-in mode, leaky-ReLU gain): a layer y = W·x with
// fan_in inputs per output keeps Var(y) ≈ gain² · Var(x) · fan_in · Var(W). With
// Var(W) = gain² / fan_in and Var(U(−b, b)) = b² / 3 this gives b = gain · √(3 / fan_in),
// where gain = √(2 / (1 + a²)) for a leaky ReLU of negative slope a. PyTorch's layers use
// a = √5, so gain = √(1/3) and b = 1 / √fan_in.
#include <cmath>

#include "latent/autograd.h"
#include "latent/nn.h"
#include "latent/ops.h"

namespace latent::nn::init {

std::int64_t fan_in(const Tensor& weight) {
  LATENT_CHECK(weight.dim() >= 2, "init::fan_in: needs a weight of rank >= 2, got shape ",
               shape_str(weight.shape()));
  std::int64_t fan = weight.shape()[1];
  for (std::int64_t d = 2; d < weight.dim(); ++d) fan *= weight.shape()[d];
  return fan;
}

void uniform_(const Tensor& t, double low, double high, Generator& gen) {
  LATENT_CHECK(low <= high, "init::uniform_: low ", low, " above high ", high);
  NoGradGuard no_grad;
  Tensor dst = t;
  dst.copy_(uniform(t.shape(), low, high, gen, t.dtype(), t.device()));
}

void normal_(const Tensor& t, double mean, double std, Generator& gen) {
  LATENT_CHECK(std >= 0.0, "init::normal_: negative standard deviation ", std);
  NoGradGuard no_grad;
  Tensor dst = t;
  dst.copy_(add(mul(randn(t.shape(), gen, t.dtype(), t.device()), std), mean));
}

void zeros_(const Tensor& t) {
  Tensor dst = t;
  dst.fill_(0.0);
}

void kaiming_uniform_(const Tensor& t, double a, Generator& gen) {
  const std::int64_t fan = fan_in(t);
  LATENT_CHECK(fan > 0, "init::kaiming_uniform_: zero fan_in for shape ", shape_str(t.shape()));
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan));
  uniform_(t, -bound, bound, gen);
}

}  // namespace latent::nn::init
