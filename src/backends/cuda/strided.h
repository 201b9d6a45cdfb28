// StridedIndex from a tensor's (or a shape's) geometry, checked against the kernels' rank
// limit: how the cuda device hands views to kernels/indexing.cuh.
#pragma once

#include <cstddef>

#include "kernels/indexing.cuh"
#include "latent/error.h"
#include "latent/tensor.h"

namespace latent::cuda {

inline kernels::StridedIndex strided_index(const Shape& shape, const Shape& strides,
                                           const char* op) {
  LATENT_CHECK(shape.size() <= static_cast<std::size_t>(kernels::kMaxDims), "cuda ", op,
               ": tensors of rank ", shape.size(), " exceed the kernel limit of ",
               kernels::kMaxDims);
  kernels::StridedIndex index;
  index.rank = static_cast<int>(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    index.shape[d] = shape[d];
    index.strides[d] = strides[d];
  }
  return index;
}

inline kernels::StridedIndex strided_index(const Tensor& t, const char* op) {
  return strided_index(t.shape(), t.strides(), op);
}

}  // namespace latent::cuda
