// The state behind a Tensor handle. Private to the library.
#pragma once

#include <memory>

#include "latent/autograd.h"
#include "latent/tensor.h"

namespace latent {

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;             // in elements
  std::int64_t offset = 0;   // in elements
  DType dtype = DType::f32;
  Device device;
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;
  std::size_t output_index = 0;  // of grad_fn's outputs
};

// A view of `base`'s storage with new geometry; no autograd history.
Tensor make_view(const Tensor& base, Shape shape, Shape strides, std::int64_t offset);

// A view of x broadcast to `shape` (stride 0 on broadcast dimensions). Not differentiable:
// used by ops to hand broadcast operands to a backend.
Tensor broadcast_view(const Tensor& x, const Shape& shape);

// Broadcast result shape of a and b, or an error naming the op and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Normalizes a possibly negative dimension index against rank, or throws naming the op.
std::int64_t normalize_dim(std::int64_t dim, std::int64_t rank, const char* op);

// Checks that every defined tensor is on the same device and of the same dtype.
void check_same_device_dtype(const char* op, const std::vector<Tensor>& tensors);

}  // namespace latent
