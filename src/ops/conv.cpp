// 2-D convolution and transposed convolution (NCHW) by im2col/col2im and one GEMM.
//
// The whole batch goes through one GEMM: im2col lays the input out as
// cols [C·KH·KW, N·OH·OW], so that
//     conv2d:            Y'[OC, N·OH·OW]  = W[OC, C·KH·KW] · cols
//     dL/dW:             dW[OC, C·KH·KW]  = G'[OC, N·OH·OW] · colsᵀ
//     dL/dx:             x = col2im(Wᵀ · G')
// where Y' and G' are the output and its gradient with N and OC swapped.
// conv_transpose2d is the adjoint of conv2d, so its forward is conv2d's input gradient and
// its input gradient is conv2d's forward; the three primitives below serve both.
// A backend may run each primitive whole instead (backend::ConvTable's optional entries):
// the cpu backend goes one image at a time, float32 through implicit-GEMM tiles that read
// the padded image directly (src/backends/cpu/conv_implicit.h, docs/cpu.md).
#include "backends/conv.h"
#include "backends/registry.h"
#include "core/tensor_impl.h"
#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent {
namespace {

using backend::ConvGeometry;

ConvGeometry geometry(const Shape& x, const Shape& w, std::int64_t stride, std::int64_t padding,
                      std::int64_t out_h, std::int64_t out_w) {
  return ConvGeometry{x[0], x[1], x[2], x[3], w[2], w[3], stride, padding, out_h, out_w};
}

// [N, OC, H, W] <-> [OC, N·H·W]
Tensor to_channel_major(const Tensor& y) {
  const Shape& s = y.shape();
  return y.permute({1, 0, 2, 3}).contiguous().reshape({s[1], s[0] * s[2] * s[3]});
}
Tensor from_channel_major(const Tensor& m, std::int64_t n, std::int64_t h, std::int64_t w) {
  return m.reshape({m.shape()[0], n, h, w}).permute({1, 0, 2, 3}).contiguous();
}

const backend::ConvTable& conv_table(const Tensor& t) {
  return backend::lookup<backend::ConvTable>(t.device());
}

// y [N, OC, OH, OW] = conv(x [N, C, H, W], w [OC, C, KH, KW]). No autograd.
Tensor conv_forward(const Tensor& x, const Tensor& w, const ConvGeometry& g) {
  if (const auto& table = conv_table(x); table.forward != nullptr) {
    Tensor y = empty({g.batch, w.shape()[0], g.out_h, g.out_w}, x.dtype(), x.device());
    table.forward(g, x.contiguous(), w.contiguous(), y);
    return y;
  }
  Tensor cols = empty({g.col_rows(), g.col_cols()}, x.dtype(), x.device());
  backend::lookup<backend::ConvTable>(x.device()).im2col(g, x.contiguous(), cols);
  const Tensor y = matmul(w.reshape({w.shape()[0], g.col_rows()}), cols);
  return from_channel_major(y, g.batch, g.out_h, g.out_w);
}

// dL/dx [N, C, H, W] from dL/dy [N, OC, OH, OW] and w. No autograd.
Tensor conv_backward_input(const Tensor& dy, const Tensor& w, const ConvGeometry& g) {
  if (const auto& table = conv_table(dy); table.backward_input != nullptr) {
    Tensor dx = empty({g.batch, g.channels, g.height, g.width}, dy.dtype(), dy.device());
    table.backward_input(g, dy.contiguous(), w.contiguous(), dx);
    return dx;
  }
  const Tensor dcols =
      matmul(w.reshape({w.shape()[0], g.col_rows()}).t(), to_channel_major(dy));
  Tensor dx = empty({g.batch, g.channels, g.height, g.width}, dy.dtype(), dy.device());
  backend::lookup<backend::ConvTable>(dy.device()).col2im(g, dcols, dx);
  return dx;
}

// dL/dw [OC, C, KH, KW] from dL/dy and x. No autograd.
Tensor conv_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& g,
                            const Shape& w_shape) {
  if (const auto& table = conv_table(x); table.backward_weight != nullptr) {
    Tensor dw = empty(w_shape, dy.dtype(), dy.device());
    table.backward_weight(g, dy.contiguous(), x.contiguous(), dw);
    return dw;
  }
  Tensor cols = empty({g.col_rows(), g.col_cols()}, x.dtype(), x.device());
  backend::lookup<backend::ConvTable>(x.device()).im2col(g, x.contiguous(), cols);
  return matmul(to_channel_major(dy), cols.t()).reshape(w_shape);
}

void check_conv_args(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                     std::int64_t bias_channels, const Conv2dOptions& o) {
  check_same_device_dtype(op, {x, weight, bias});
  LATENT_CHECK(is_floating(x.dtype()), op, ": expected floating tensors, got ",
               dtype_name(x.dtype()));
  LATENT_CHECK(x.dim() == 4, op, ": input must be [N, C, H, W], got ", shape_str(x.shape()));
  LATENT_CHECK(weight.dim() == 4, op, ": weight must be 4-D, got ", shape_str(weight.shape()));
  LATENT_CHECK(x.numel() > 0, op, ": empty input ", shape_str(x.shape()));
  LATENT_CHECK(o.stride >= 1 && o.padding >= 0, op, ": stride must be >= 1 and padding >= 0, got stride ",
               o.stride, ", padding ", o.padding);
  LATENT_CHECK(!bias.defined() || (bias.dim() == 1 && bias.shape()[0] == bias_channels), op,
               ": bias ", shape_str(bias.defined() ? bias.shape() : Shape{}),
               " does not match ", bias_channels, " output channels");
}

Tensor add_channel_bias(const Tensor& y, const Tensor& bias) {
  if (!bias.defined()) return y;
  return add(y, bias.reshape({1, bias.shape()[0], 1, 1}));
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions o) {
  const char* op = "conv2d";
  check_conv_args(op, x, weight, bias, weight.dim() == 4 ? weight.shape()[0] : 0, o);
  LATENT_CHECK(weight.shape()[1] == x.shape()[1], op, ": input ", shape_str(x.shape()), " has ",
               x.shape()[1], " channels, weight ", shape_str(weight.shape()), " expects ",
               weight.shape()[1]);
  const std::int64_t out_h = (x.shape()[2] + 2 * o.padding - weight.shape()[2]) / o.stride + 1;
  const std::int64_t out_w = (x.shape()[3] + 2 * o.padding - weight.shape()[3]) / o.stride + 1;
  LATENT_CHECK(x.shape()[2] + 2 * o.padding >= weight.shape()[2] &&
                   x.shape()[3] + 2 * o.padding >= weight.shape()[3],
               op, ": kernel ", shape_str(weight.shape()), " larger than the padded input ",
               shape_str(x.shape()));
  const ConvGeometry g = geometry(x.shape(), weight.shape(), o.stride, o.padding, out_h, out_w);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = conv_forward(x, weight, g);
  }
  const Tensor sx = x.detach(), sw = weight.detach();
  const bool x_grad = x.requires_grad(), w_grad = weight.requires_grad();
  y = record(y, op, {x, weight}, [sx, sw, g, x_grad, w_grad](const Tensor& dy) {
    return std::vector<Tensor>{x_grad ? conv_backward_input(dy, sw, g) : Tensor(),
                               w_grad ? conv_backward_weight(dy, sx, g, sw.shape()) : Tensor()};
  });
  return add_channel_bias(y, bias);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        Conv2dOptions o) {
  const char* op = "conv_transpose2d";
  check_conv_args(op, x, weight, bias, weight.dim() == 4 ? weight.shape()[1] : 0, o);
  LATENT_CHECK(weight.shape()[0] == x.shape()[1], op, ": input ", shape_str(x.shape()), " has ",
               x.shape()[1], " channels, weight ", shape_str(weight.shape()), " expects ",
               weight.shape()[0]);
  LATENT_CHECK(o.output_padding >= 0 && o.output_padding < o.stride, op,
               ": output_padding must be in [0, stride), got ", o.output_padding);
  const std::int64_t out_h =
      (x.shape()[2] - 1) * o.stride - 2 * o.padding + weight.shape()[2] + o.output_padding;
  const std::int64_t out_w =
      (x.shape()[3] - 1) * o.stride - 2 * o.padding + weight.shape()[3] + o.output_padding;
  LATENT_CHECK(out_h > 0 && out_w > 0, op, ": output would be empty for input ",
               shape_str(x.shape()), " and weight ", shape_str(weight.shape()));
  // The conv2d whose adjoint this is maps [N, OC, out_h, out_w] -> x's shape with the
  // weight read as [C_in, OC, KH, KW] = [its OC, its C, KH, KW].
  const Shape y_shape{x.shape()[0], weight.shape()[1], out_h, out_w};
  const ConvGeometry g =
      geometry(y_shape, weight.shape(), o.stride, o.padding, x.shape()[2], x.shape()[3]);
  Tensor y;
  {
    NoGradGuard no_grad;
    y = conv_backward_input(x, weight, g);
  }
  const Tensor sx = x.detach(), sw = weight.detach();
  const bool x_grad = x.requires_grad(), w_grad = weight.requires_grad();
  y = record(y, op, {x, weight}, [sx, sw, g, x_grad, w_grad](const Tensor& dy) {
    return std::vector<Tensor>{x_grad ? conv_forward(dy, sw, g) : Tensor(),
                               w_grad ? conv_backward_weight(sx, dy, g, sw.shape()) : Tensor()};
  });
  return add_channel_bias(y, bias);
}

}  // namespace latent
