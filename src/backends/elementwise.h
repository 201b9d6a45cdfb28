// The elementwise concept: copies, fills, unary and broadcasting binary ops, and their
// derivatives (kernels/elementwise.cuh; cpu: src/backends/cpu/elementwise.cpp).
//
// Every tensor lives on the table's device; outputs are allocated by the caller; floating
// entries accept float32 and float64.
#pragma once

#include "kernels/unary_ops.cuh"
#include "latent/tensor.h"

namespace latent::backend {

using kernels::BinaryOp;
using kernels::UnaryOp;
using kernels::binary_op_name;
using kernels::unary_op_name;

struct UnaryParams {
  double alpha = 0.0;
  double beta = 0.0;
};

struct ElementwiseTable {
  static constexpr const char* kConcept = "elementwise";
  // dst[i] = src[i] for same-shape tensors of any strides and dtypes (converting).
  void (*copy)(const Tensor& src, const Tensor& dst);
  void (*fill)(const Tensor& dst, double value);  // dst contiguous
  void (*arange)(const Tensor& dst, double start, double step);
  // out = op(x); x and out contiguous, same shape and dtype.
  void (*unary)(UnaryOp op, const Tensor& x, const Tensor& out, UnaryParams p);
  // dL_dx = dL_dy · op'(x); y = op(x) is passed for ops whose derivative reads it.
  void (*unary_backward)(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dL_dy,
                         const Tensor& dL_dx, UnaryParams p);
  // out = a op b; a and b are views already broadcast to out's shape (stride 0 where
  // broadcast), out contiguous.
  void (*binary)(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
};

}  // namespace latent::backend
