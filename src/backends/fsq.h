// The fsq concept (kernels/fsq.cuh; docs/fsq.md). src/ops/fsq.cpp validates arguments,
// allocates the outputs and looks up this table on the tensors' device.
//
// Every tensor is contiguous and lives on the table's device; z, codes, dL_dcodes and dL_dz
// are float32 or float64 of shape [rows, d] (any leading shape flattened), indices int32
// [rows]; `levels` was validated (each ≥ 2, product inside int32, d = levels.size()), and
// indices passed to indices_to_codes were checked (the check concept) to lie in [0, ΠL).
#pragma once

#include <cstdint>
#include <vector>

#include "backends/check.h"
#include "latent/fsq.h"
#include "latent/tensor.h"

namespace latent::backend {

struct FsqTable {
  static constexpr const char* kConcept = "fsq";
  // codes and indices of z in one pass; `indices` may be undefined (codes only). A NaN in z
  // fails a check with `nan_message` (no check when it is empty), inside the same pass.
  void (*quantize)(const Tensor& z, const Tensor& codes, const Tensor& indices,
                   const std::vector<std::int64_t>& levels, const FsqOptions& options,
                   const CheckMessage& nan_message);
  // dL_dz = dL_dcodes · d code/d z (straight-through rounding).
  void (*quantize_backward)(const Tensor& z, const Tensor& dL_dcodes, const Tensor& dL_dz,
                            const std::vector<std::int64_t>& levels,
                            const FsqOptions& options);
  void (*codes_to_indices)(const Tensor& codes, const Tensor& indices,
                           const std::vector<std::int64_t>& levels, const FsqOptions& options);
  void (*indices_to_codes)(const Tensor& indices, const Tensor& codes,
                           const std::vector<std::int64_t>& levels, const FsqOptions& options);
};

}  // namespace latent::backend
