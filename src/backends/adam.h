// The adam concept: one fused Adam/AdamW update (kernels/adam.cuh).
#pragma once

#include "kernels/adam_constants.h"
#include "latent/tensor.h"

namespace latent::backend {

struct AdamTable {
  static constexpr const char* kConcept = "adam";
  // Updates a contiguous parameter, its gradient's two moment buffers in place; one dtype.
  void (*step)(const kernels::AdamConstants& c, const Tensor& param, const Tensor& grad,
               const Tensor& exp_avg, const Tensor& exp_avg_sq);
};

}  // namespace latent::backend
