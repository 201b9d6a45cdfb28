// The conv concept: the im2col / col2im halves of a 2-D convolution (kernels/conv.cuh); the
// GEMM between them is the gemm concept. src/ops/conv.cpp composes them, unless the backend
// runs the whole convolution itself (the three optional entries below: the cpu backend's
// image-at-a-time convolution, src/backends/cpu/conv.cpp).
#pragma once

#include "kernels/conv.cuh"
#include "latent/tensor.h"

namespace latent::backend {

using kernels::ConvGeometry;

struct ConvTable {
  static constexpr const char* kConcept = "conv";
  // cols [C·KH·KW, N·OH·OW] from x [N, C, H, W]; zero where the window leaves the image.
  void (*im2col)(const ConvGeometry& g, const Tensor& x, const Tensor& cols);
  // x [N, C, H, W] = the sum of every column entry that im2col would have read from it.
  void (*col2im)(const ConvGeometry& g, const Tensor& cols, const Tensor& x);

  // Optional (null: src/ops/conv.cpp composes im2col, GEMM and col2im). All tensors
  // contiguous; w is [OC, C, KH, KW] with C = g.channels.
  // y [N, OC, OH, OW] = conv(x [N, C, H, W], w)
  void (*forward)(const ConvGeometry& g, const Tensor& x, const Tensor& w, const Tensor& y);
  // dx [N, C, H, W] = the input gradient of that conv for output gradient dy [N, OC, OH, OW]
  void (*backward_input)(const ConvGeometry& g, const Tensor& dy, const Tensor& w,
                         const Tensor& dx);
  // dw [OC, C, KH, KW] = its weight gradient, from dy and x
  void (*backward_weight)(const ConvGeometry& g, const Tensor& dy, const Tensor& x,
                          const Tensor& dw);
};

}  // namespace latent::backend
