// The vector-quantization primitives of each backend (the ops in src/ops/vq.cpp validate,
// allocate and dispatch on the tensors' device; these only compute).
//
// cpu: src/backends/cpu/vq.cpp, the reference (plain loops, OpenMP, double accumulation).
// cuda: src/backends/cuda/vq.cu, launches of kernels/vq_argmin.cuh and kernels/vq_ema.cuh
// (nvcc on a GPU, the SIMT executor otherwise).
//
// Conventions: every tensor is contiguous and on the backend's device; z, codebook, sums,
// ema_count, ema_sum share one floating dtype; indices and counts are int32; outputs are
// allocated by the caller. Indices passed in are already checked to lie in [0, K).
#pragma once

#include <cstdint>

#include "latent/random.h"
#include "latent/tensor.h"
#include "latent/vq.h"

namespace latent::cpu {

// indices [N] (−1 for a row whose best distance is not finite); distances [N] when defined.
void vq_argmin(const Tensor& z, const Tensor& codebook, const Tensor& indices,
               const Tensor& distances);
void vq_gather(const Tensor& codebook, const Tensor& indices, const Tensor& out);
void vq_code_counts(const Tensor& indices, const Tensor& counts);
void vq_code_stats(const Tensor& z, const Tensor& indices, const Tensor& counts,
                   const Tensor& sums);
void vq_ema_update(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                   const Tensor& counts, const Tensor& sums, double decay, double epsilon);
void vq_revive(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
               const Tensor& z, double threshold, double reset_count, PhiloxKey key,
               const Tensor& revived);

}  // namespace latent::cpu

namespace latent::cuda {

void vq_argmin(const Tensor& z, const Tensor& codebook, const Tensor& indices,
               const Tensor& distances, VqArgminAlgorithm algorithm, int splits);
void vq_gather(const Tensor& codebook, const Tensor& indices, const Tensor& out);
void vq_code_counts(const Tensor& indices, const Tensor& counts);
void vq_code_stats(const Tensor& z, const Tensor& indices, const Tensor& counts,
                   const Tensor& sums, VqStatsAlgorithm algorithm);
void vq_ema_update(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                   const Tensor& counts, const Tensor& sums, double decay, double epsilon);
void vq_revive(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
               const Tensor& z, double threshold, double reset_count, PhiloxKey key,
               const Tensor& revived);

// The splits the tiled argmin uses for N rows and K codes when asked for 0 (automatic).
int vq_argmin_auto_splits(std::int64_t N, std::int64_t K);
// Whether the "shared" statistics path fits K codes of D elements of dtype.
bool vq_stats_fit_shared(std::int64_t K, std::int64_t D, DType dtype);
// FP32 peak of device 0 in FLOP/s (SMs × clock × 128 lanes × 2); 0 under SIMT.
double fp32_peak_flops();

}  // namespace latent::cuda
