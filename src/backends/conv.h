// The conv concept: the im2col / col2im halves of a 2-D convolution (kernels/conv.cuh); the
// GEMM between them is the gemm concept. src/ops/conv.cpp composes them.
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
};

}  // namespace latent::backend
