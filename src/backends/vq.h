// The vq concept: nearest-codebook argmin, gather, per-code statistics, the EMA update and
// dead-code revival (kernels/vq_argmin.cuh, kernels/vq_ema.cuh). src/ops/vq.cpp validates,
// allocates and looks up this table on the tensors' device.
//
// cpu: src/backends/cpu/vq.cpp, the reference (plain loops, OpenMP, double accumulation).
// cuda: src/backends/cuda/vq.cu (nvcc on a GPU, the SIMT executor otherwise).
//
// Conventions: every tensor is contiguous and on the table's device; z, codebook, sums,
// ema_count, ema_sum share one floating dtype; indices and counts are int32; outputs are
// allocated by the caller. Indices passed in have been checked (the check concept) to lie
// in [0, K).
#pragma once

#include <cstdint>

#include "backends/check.h"
#include "latent/random.h"
#include "latent/tensor.h"
#include "latent/vq.h"

namespace latent::backend {

struct VqTable {
  static constexpr const char* kConcept = "vq";
  // indices [N] (−1 for a row whose best distance is not finite); distances [N] when
  // defined. The cpu table has one algorithm and ignores options.algorithm / splits.
  void (*argmin)(const Tensor& z, const Tensor& codebook, const Tensor& indices,
                 const Tensor& distances, const VqArgminOptions& options);
  void (*gather)(const Tensor& codebook, const Tensor& indices, const Tensor& out);
  void (*code_counts)(const Tensor& indices, const Tensor& counts);
  void (*code_stats)(const Tensor& z, const Tensor& indices, const Tensor& counts,
                     const Tensor& sums, VqStatsAlgorithm algorithm);
  // A non-finite new EMA count or sum (from a NaN or Inf in the old state or the batch sums)
  // fails a check with count_message / sum_message at its element, inside the update itself
  // (no check when a message is empty).
  void (*ema_update)(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                     const Tensor& counts, const Tensor& sums, double decay, double epsilon,
                     const CheckMessage& count_message, const CheckMessage& sum_message);
  void (*revive)(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                 const Tensor& z, double threshold, double reset_count, PhiloxKey key,
                 const Tensor& revived);
};

}  // namespace latent::backend

namespace latent::cuda {
// Launch-shape introspection for the benchmarks (src/backends/cuda/vq.cu).
// The splits the tiled argmin uses for N rows and K codes when asked for 0 (automatic).
int vq_argmin_auto_splits(std::int64_t N, std::int64_t K);
// Whether the "shared" statistics path fits K codes of D elements of dtype.
bool vq_stats_fit_shared(std::int64_t K, std::int64_t D, DType dtype);
// FP32 peak of device 0 in FLOP/s (SMs × clock × 128 lanes × 2); 0 under SIMT.
double fp32_peak_flops();
}  // namespace latent::cuda
