// FSQ on the cpu backend: plain loops over rows (one latent vector each), OpenMP across rows,
// with the per-channel math of kernels/fsq.cuh — the same functions the kernels call, so the
// cpu reference and the kernels agree bit for bit wherever they share a math library (the
// SIMT build). docs/fsq.md.
#include <algorithm>
#include <cstdint>

#include "backends/dispatch.h"
#include "backends/cpu/cpu.h"
#include "backends/fsq.h"
#include "backends/registry.h"
#include "kernels/fsq.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;

constexpr std::int64_t kParallelRows = 4096;

void fsq_quantize(const Tensor& z, const Tensor& codes, const Tensor& indices,
                  const std::vector<std::int64_t>& levels, const FsqOptions& options,
                  const backend::CheckMessage& nan_message) {
  std::int64_t first_nan = z.numel();
  dispatch_floating(z.dtype(), "fsq_quantize", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const int d = k.dims;
    const std::int64_t rows = z.numel() / d;
    const T* in = z.data<T>();
    T* out = codes.data<T>();
    std::int32_t* index_out = indices.defined() ? indices.data<std::int32_t>() : nullptr;
#pragma omp parallel for reduction(min : first_nan) if (rows > kParallelRows)
    for (std::int64_t r = 0; r < rows; ++r) {
      std::int32_t index = 0;
      for (int c = 0; c < d; ++c) {
        const T value = in[r * d + c];
        if (value != value) first_nan = std::min(first_nan, r * d + c);
        const std::int32_t digit = kernels::fsq_digit(k, c, value);
        index += digit * k.basis[c];
        out[r * d + c] = kernels::fsq_code(k, c, digit);
      }
      if (index_out) index_out[r] = index;
    }
  });
  if (nan_message && first_nan < z.numel()) LATENT_FAIL(nan_message(first_nan));
}

void fsq_quantize_backward(const Tensor& z, const Tensor& dL_dcodes, const Tensor& dL_dz,
                           const std::vector<std::int64_t>& levels, const FsqOptions& options) {
  dispatch_floating(z.dtype(), "fsq_quantize_backward", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const int d = k.dims;
    const std::int64_t rows = z.numel() / d;
    const T* in = z.data<T>();
    const T* g = dL_dcodes.data<T>();
    T* out = dL_dz.data<T>();
#pragma omp parallel for if (rows > kParallelRows)
    for (std::int64_t r = 0; r < rows; ++r) {
      for (int c = 0; c < d; ++c) {
        const std::int64_t i = r * d + c;
        out[i] = g[i] * kernels::fsq_slope(k, c, in[i]);
      }
    }
  });
}

void fsq_codes_to_indices(const Tensor& codes, const Tensor& indices,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options) {
  dispatch_floating(codes.dtype(), "fsq_codes_to_indices", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const int d = k.dims;
    const std::int64_t rows = codes.numel() / d;
    const T* in = codes.data<T>();
    std::int32_t* out = indices.data<std::int32_t>();
#pragma omp parallel for if (rows > kParallelRows)
    for (std::int64_t r = 0; r < rows; ++r) {
      std::int32_t index = 0;
      for (int c = 0; c < d; ++c) index += kernels::fsq_digit_of_code(k, c, in[r * d + c]) * k.basis[c];
      out[r] = index;
    }
  });
}

void fsq_indices_to_codes(const Tensor& indices, const Tensor& codes,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options) {
  const std::int64_t rows = indices.numel();
  const std::int32_t* in = indices.data<std::int32_t>();
  dispatch_floating(codes.dtype(), "fsq_indices_to_codes", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const int d = k.dims;
    T* out = codes.data<T>();
#pragma omp parallel for if (rows > kParallelRows)
    for (std::int64_t r = 0; r < rows; ++r) {
      for (int c = 0; c < d; ++c)
        out[r * d + c] = kernels::fsq_code(k, c, (in[r] / k.basis[c]) % k.levels[c]);
    }
  });
}

}  // namespace

void register_fsq() {
  backend::Registry<backend::FsqTable>::add(
      DeviceType::cpu,
      {&fsq_quantize, &fsq_quantize_backward, &fsq_codes_to_indices, &fsq_indices_to_codes});
}

}  // namespace latent::cpu
