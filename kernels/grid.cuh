// The grid-stride loop of every 1-D kernel in kernels/:
//
//   for (std::int64_t i = grid_stride_begin(); i < n; i += grid_stride_step()) { ... }
//
// The launcher sizes the grid to the device (a few blocks per SM, capped: see
// src/backends/cuda/launch.h grid_for), and each thread walks the index space in steps of
// the whole grid, so one launch covers any n and consecutive threads touch consecutive
// elements (coalesced). Indices are 64-bit: n may exceed 2^31.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"

namespace latent::kernels {

__device__ __forceinline__ std::int64_t grid_stride_begin() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_stride_step() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x;
}

}  // namespace latent::kernels
