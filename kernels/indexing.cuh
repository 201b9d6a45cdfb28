// StridedIndex: maps the linear (row-major) index of an element of a shape to its offset in
// a strided view. Passed to kernels by value (it lives in the kernel's parameter space), so
// any view — transposed, narrowed, broadcast with stride 0 — can be read without a copy.
//
// Cost: one division and one modulo per dimension per element; kernels take a contiguous
// fast path when every operand is contiguous and skip this entirely.
#pragma once

#include <cstdint>

#include "kernels/host_device.cuh"

namespace latent::kernels {

constexpr int kMaxDims = 8;

struct StridedIndex {
  int rank = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t strides[kMaxDims] = {};

  LATENT_HOST_DEVICE std::int64_t offset(std::int64_t linear) const {
    std::int64_t result = 0;
    for (int d = rank - 1; d >= 0; --d) {
      const std::int64_t size = shape[d];
      result += (linear % size) * strides[d];
      linear /= size;
    }
    return result;
  }
};

}  // namespace latent::kernels
