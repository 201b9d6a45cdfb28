// The random concept: Philox4x32-10 uniform and normal fills (kernels/random.cuh). Element i
// draws from Philox(key.seed, key.offset, i), so every device draws the same numbers.
#pragma once

#include "latent/random.h"
#include "latent/tensor.h"

namespace latent::backend {

struct RandomTable {
  static constexpr const char* kConcept = "random";
  void (*uniform)(const Tensor& dst, PhiloxKey key, double low, double high);
  void (*normal)(const Tensor& dst, PhiloxKey key);
};

}  // namespace latent::backend
