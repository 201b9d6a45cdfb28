// Conv2d and ConvTranspose2d modules, on ops::conv2d and ops::conv_transpose2d.
//
// Both initialize like PyTorch: weight kaiming_uniform(a = √5), i.e. U(−1/√fan_in, 1/√fan_in),
// and bias U(−1/√fan_in, 1/√fan_in), where fan_in = weight.size(1) · k². For Conv2d that is
// in_channels·k²; ConvTranspose2d's weight is [in, out, k, k], so there it is out_channels·k².
#include <cmath>

#include "latent/nn.h"
#include "latent/ops.h"

namespace latent::nn {
namespace {

void check_conv_options(const char* layer, std::int64_t in, std::int64_t out, std::int64_t k,
                        const ConvOptions& o) {
  LATENT_CHECK(in > 0 && out > 0 && k > 0, layer,
               ": in_channels, out_channels and kernel_size must be positive, got ", in, ", ",
               out, ", ", k);
  LATENT_CHECK(o.stride >= 1 && o.padding >= 0, layer,
               ": stride must be >= 1 and padding >= 0, got stride ", o.stride, ", padding ",
               o.padding);
  LATENT_CHECK(is_floating(o.dtype), layer, ": dtype must be floating, got ",
               dtype_name(o.dtype));
}

void reset_conv(const Tensor& weight, const Tensor& bias, Generator& gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(weight)));
    init::uniform_(bias, -bound, bound, gen);
  }
}

std::string conv_repr(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride,
                      std::int64_t padding, std::int64_t output_padding, bool bias) {
  std::string s = std::to_string(in) + ", " + std::to_string(out) +
                  ", kernel_size=" + std::to_string(k) + ", stride=" + std::to_string(stride);
  if (padding) s += ", padding=" + std::to_string(padding);
  if (output_padding) s += ", output_padding=" + std::to_string(output_padding);
  if (!bias) s += ", bias=false";
  return s;
}

}  // namespace

// ------------------------------------------------------------------ Conv2d
Conv2d::Conv2d(std::int64_t in, std::int64_t out, std::int64_t k, Generator& gen, ConvOptions o)
    : Module("Conv2d"), in_channels(in), out_channels(out), kernel_size(k), stride(o.stride),
      padding(o.padding) {
  check_conv_options("Conv2d", in, out, k, o);
  LATENT_CHECK(o.output_padding == 0, "Conv2d: output_padding is for ConvTranspose2d, got ",
               o.output_padding);
  weight = register_parameter("weight", empty({out, in, k, k}, o.dtype, o.device));
  if (o.bias) bias = register_parameter("bias", empty({out}, o.dtype, o.device));
  reset_parameters(gen);
}

void Conv2d::reset_parameters(Generator& gen) { reset_conv(weight, bias, gen); }

Tensor Conv2d::forward(const Tensor& x) {
  return conv2d(x, weight, bias, latent::Conv2dOptions{stride, padding, 0});
}

std::string Conv2d::extra_repr() const {
  return conv_repr(in_channels, out_channels, kernel_size, stride, padding, 0, bias.defined());
}

// ------------------------------------------------------------------ ConvTranspose2d
ConvTranspose2d::ConvTranspose2d(std::int64_t in, std::int64_t out, std::int64_t k,
                                 Generator& gen, ConvOptions o)
    : Module("ConvTranspose2d"), in_channels(in), out_channels(out), kernel_size(k),
      stride(o.stride), padding(o.padding), output_padding(o.output_padding) {
  check_conv_options("ConvTranspose2d", in, out, k, o);
  LATENT_CHECK(o.output_padding >= 0 && o.output_padding < o.stride,
               "ConvTranspose2d: output_padding must be in [0, stride), got ", o.output_padding,
               " with stride ", o.stride);
  weight = register_parameter("weight", empty({in, out, k, k}, o.dtype, o.device));
  if (o.bias) bias = register_parameter("bias", empty({out}, o.dtype, o.device));
  reset_parameters(gen);
}

void ConvTranspose2d::reset_parameters(Generator& gen) { reset_conv(weight, bias, gen); }

Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, weight, bias,
                          latent::Conv2dOptions{stride, padding, output_padding});
}

std::string ConvTranspose2d::extra_repr() const {
  return conv_repr(in_channels, out_channels, kernel_size, stride, padding, output_padding,
                   bias.defined());
}

}  // namespace latent::nn
