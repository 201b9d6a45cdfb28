// The reduce concept: deterministic sums over any dims and row argmax (kernels/reduce.cuh).
#pragma once

#include "latent/tensor.h"

namespace latent::backend {

struct ReduceTable {
  static constexpr const char* kConcept = "reduce";
  // out (contiguous, x's rank, size 1 on reduced dims) = the sum of x over those dims, in a
  // fixed order (deterministic).
  void (*sum)(const Tensor& x, const Tensor& out);
  // out[r] = the index of the largest x[r, :] for contiguous x [rows, cols], int32; ties to
  // the lowest index, NaN counts as the largest.
  void (*argmax_rows)(const Tensor& x, const Tensor& out);
};

}  // namespace latent::backend
