// Random fills from the Philox4x32-10 stream (kernels/philox.cuh): element i of a draw
// keyed (seed, offset) depends only on (seed, offset, i), whatever the launch shape.
//   uniform: float32 uses word i % 4 of call i / 4; float64 uses a pair of words of call i / 2.
//   normal:  Box–Muller on the word pairs (0, 1) and (2, 3) of call g gives elements 4g … 4g+3.
// Compute-bound on the Philox rounds (~40 integer ops per call), 4–8 bytes written per element.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/philox.cuh"

namespace latent::kernels {

template <class T>
__global__ void random_uniform_kernel(T* out, std::int64_t n, std::uint64_t seed,
                                      std::uint64_t offset, double low, double scale) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    double u;
    if constexpr (sizeof(T) == 4) {
      u = philox_uniform_f32(seed, offset, i);
    } else {
      u = philox_uniform_f64(seed, offset, i);
    }
    out[i] = static_cast<T>(low + scale * u);
  }
}

__device__ inline void box_muller_pair(std::uint32_t w1, std::uint32_t w2, double& n1,
                                       double& n2) {
  const double u1 = (static_cast<double>(w1) + 1.0) * (1.0 / 4294967296.0);
  const double u2 = static_cast<double>(w2) * (1.0 / 4294967296.0);
  const double radius = sqrt(-2.0 * log(u1));
  const double angle = 6.283185307179586476925286766559 * u2;
  n1 = radius * cos(angle);
  n2 = radius * sin(angle);
}

template <class T>
__global__ void random_normal_kernel(T* out, std::int64_t n, std::uint64_t seed,
                                     std::uint64_t offset) {
  const std::int64_t groups = (n + 3) / 4;
  for (std::int64_t g = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       g < groups; g += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const Philox4 r = philox_block(seed, offset, static_cast<std::uint64_t>(g));
    double v[4];
    box_muller_pair(r.x[0], r.x[1], v[0], v[1]);
    box_muller_pair(r.x[2], r.x[3], v[2], v[3]);
    for (int j = 0; j < 4 && g * 4 + j < n; ++j) out[g * 4 + j] = static_cast<T>(v[j]);
  }
}

}  // namespace latent::kernels
