// Linear: y = x · Wᵀ + b (the fully connected layer), on ops::linear.
#include <cmath>

#include "latent/nn.h"
#include "latent/ops.h"

namespace latent::nn {

Linear::Linear(std::int64_t in, std::int64_t out, Generator& gen, LinearOptions options)
    : Module("Linear"), in_features(in), out_features(out) {
  LATENT_CHECK(in > 0 && out > 0, "Linear: in_features and out_features must be positive, got ",
               in, " and ", out);
  LATENT_CHECK(is_floating(options.dtype), "Linear: dtype must be floating, got ",
               dtype_name(options.dtype));
  weight = register_parameter("weight", empty({out, in}, options.dtype, options.device));
  if (options.bias) bias = register_parameter("bias", empty({out}, options.dtype, options.device));
  reset_parameters(gen);
}

// Weight U(−1/√in, 1/√in) through kaiming_uniform(a = √5); bias U(−1/√in, 1/√in).
void Linear::reset_parameters(Generator& gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(weight)));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) +
         ", out_features=" + std::to_string(out_features) +
         ", bias=" + (bias.defined() ? "true" : "false");
}

}  // namespace latent::nn
