// Random fills from the Philox4x32-10 stream (kernels/philox.cuh): element i of a draw
// keyed (seed, offset) depends only on (seed, offset, i), whatever the launch shape.
//   uniform: float32 uses word i % 4 of call i / 4; float64 uses a pair of words of call i / 2.
//   normal:  Box–Muller on the word pairs (0, 1) and (2, 3) of call g gives elements 4g … 4g+3,
//            computed with exactly rounded arithmetic (kernels/philox_normal.cuh), so the cpu
//            backend, SIMT and a GPU draw the same bits.
// Compute-bound on the Philox rounds (~40 integer ops per call), 4–8 bytes written per element.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/grid.cuh"
#include "kernels/math.cuh"
#include "kernels/philox.cuh"
#include "kernels/philox_normal.cuh"

namespace latent::kernels {

template <class T>
__global__ void random_uniform_kernel(T* out, std::int64_t n, std::uint64_t seed,
                                      std::uint64_t offset, double low, double scale) {
  for (std::int64_t i = grid_stride_begin(); i < n;
       i += grid_stride_step()) {
    double u;
    if constexpr (sizeof(T) == 4) {
      u = philox_uniform_f32(seed, offset, i);
    } else {
      u = philox_uniform_f64(seed, offset, i);
    }
    out[i] = static_cast<T>(add_product_rn(low, scale, u));
  }
}

template <class T>
__global__ void random_normal_kernel(T* out, std::int64_t n, std::uint64_t seed,
                                     std::uint64_t offset) {
  const std::int64_t groups = (n + 3) / 4;
  for (std::int64_t g = grid_stride_begin();
       g < groups; g += grid_stride_step()) {
    const Normal4 v = philox_normal4(seed, offset, static_cast<std::uint64_t>(g));
    for (int j = 0; j < 4 && g * 4 + j < n; ++j) out[g * 4 + j] = static_cast<T>(v.v[j]);
  }
}

}  // namespace latent::kernels
