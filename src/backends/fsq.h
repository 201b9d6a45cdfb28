// The FSQ primitives on each device (kernels/fsq.cuh; docs/fsq.md). src/ops/fsq.cpp validates
// arguments, allocates the outputs and picks the namespace by the tensors' device.
//
// Every tensor is contiguous and lives on the function's device; z, codes, dL_dcodes and
// dL_dz are float32 or float64 of shape [rows, d] (any leading shape flattened), indices
// int32 [rows]; `levels` was validated (each ≥ 2, product inside int32, d = levels.size()).
#pragma once

#include <cstdint>
#include <vector>

#include "latent/fsq.h"
#include "latent/tensor.h"

namespace latent::cpu {

// codes and indices of z in one pass; `indices` may be undefined (codes only).
void fsq_quantize(const Tensor& z, const Tensor& codes, const Tensor& indices,
                  const std::vector<std::int64_t>& levels, const FsqOptions& options);
// dL_dz = dL_dcodes · d code/d z (straight-through rounding).
void fsq_quantize_backward(const Tensor& z, const Tensor& dL_dcodes, const Tensor& dL_dz,
                           const std::vector<std::int64_t>& levels, const FsqOptions& options);
void fsq_codes_to_indices(const Tensor& codes, const Tensor& indices,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options);
// Throws when an index lies outside [0, ΠL).
void fsq_indices_to_codes(const Tensor& indices, const Tensor& codes,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options);

// Throws naming the first of n host indices outside [0, size); the cuda backend calls it on
// a host copy when its kernel has flagged a bad index.
void fsq_check_indices(const std::int32_t* indices, std::int64_t n, std::int64_t size);

}  // namespace latent::cpu

namespace latent::cuda {

void fsq_quantize(const Tensor& z, const Tensor& codes, const Tensor& indices,
                  const std::vector<std::int64_t>& levels, const FsqOptions& options);
void fsq_quantize_backward(const Tensor& z, const Tensor& dL_dcodes, const Tensor& dL_dz,
                           const std::vector<std::int64_t>& levels, const FsqOptions& options);
void fsq_codes_to_indices(const Tensor& codes, const Tensor& indices,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options);
void fsq_indices_to_codes(const Tensor& indices, const Tensor& codes,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options);

}  // namespace latent::cuda
