// StridedIndex from a tensor's (or a shape's) geometry, checked against the kernels' rank
// limit: how the cuda device hands views to kernels/indexing.cuh.
#pragma once

#include <atomic>
#include <cstddef>
#include <initializer_list>

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

// Tests set this to run the 64-bit index instances on small shapes (tests/index_path_test).
inline std::atomic<bool>& force_index64() {
  static std::atomic<bool> force{false};
  return force;
}

// The host's choice between a strided kernel's 32-bit and 64-bit index instance: 32-bit
// whenever `count` and every operand's extents and offsets fit (kernels::index32_fits).
inline bool use_index32(std::int64_t count,
                        std::initializer_list<kernels::StridedIndex> operands = {}) {
  return !force_index64().load(std::memory_order_relaxed) &&
         kernels::index32_fits(count, operands);
}

}  // namespace latent::cuda
