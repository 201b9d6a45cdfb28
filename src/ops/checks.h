// Value checks of the ops, through the check concept (src/backends/check.h): on cpu they
// throw at once; on cuda a kernel records the first failure and the host reads it at the
// next check point (latent::check_errors, a read of device data, or at once when immediate
// checks are on). Either way the message is the same.
#pragma once

#include <cstdint>
#include <string>

#include "latent/tensor.h"

namespace latent::ops {

// "<what> [shape] holds a non-finite value (v) at element i" for the first non-finite
// element of x (any layout; floating).
void check_finite(const Tensor& x, const std::string& what);

// For the first index of `indices` (int32, any layout) outside [low, high):
// "<prefix>index v at position i<suffix>".
void check_index_range(const Tensor& indices, std::int64_t low, std::int64_t high,
                       const std::string& prefix, const std::string& suffix);

}  // namespace latent::ops
