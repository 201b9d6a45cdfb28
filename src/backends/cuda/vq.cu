// The cuda backend's vector-quantization primitives: launches of kernels/vq_argmin.cuh and
// kernels/vq_ema.cuh, plus the cuBLAS baseline and the CUB radix sort of the "sorted"
// statistics. Built by nvcc for a GPU, or by the host compiler against the SIMT executor
// (docs/simt.md), where GEMM is the cpu BLAS and the sort a counting sort on the host.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/gemm.h"
#include "backends/registry.h"
#include "backends/vq.h"
#include "kernels/vq_argmin.cuh"
#include "kernels/vq_ema.cuh"

#if defined(__CUDACC__)
#include <cub/device/device_radix_sort.cuh>
#endif

namespace latent::cuda {
namespace {

using backend::dispatch_floating;
using backend::ptr;
using backend::aligned16;

constexpr int kThreads = 256;
constexpr std::int64_t kSharedLimit = 48 * 1024;     // default dynamic shared memory per block
constexpr std::int64_t kScoreElements = 1ll << 28;   // cap of the GEMM baseline's score chunk

// Blocks that keep the device busy: 2 per SM on a GPU, the SIMT grid cap otherwise.
std::int64_t busy_blocks() {
  if (simulated()) return max_grid_blocks();
  return 2 * static_cast<std::int64_t>(std::max(multiprocessors(), 1));
}

// Zero bits are 0 as int32, float and double: one memset on the current stream.
void zero_fill(const Tensor& t) {
  LATENT_CUDA_CHECK(cudaMemsetAsync(t.data_ptr(), 0,
                                    static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()),
                                    stream()));
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

template <class T>
Tensor code_norms(const Tensor& codebook) {
  const std::int64_t K = codebook.size(0), D = codebook.size(1);
  Tensor norms = empty({K}, codebook.dtype(), codebook.device());
  LATENT_LAUNCH(kernels::vq_code_norms_kernel<T>, grid_for(K), kThreads, 0, stream(),
                ptr<T>(codebook), K, D, ptr<T>(norms));
  return norms;
}

// One launch of the fused tiled argmin: Load = kernels::kVqLoadVec4 / kVqLoadScalar, I = the
// kernel's row and offset type (std::int32_t when the sizes allow). `values` == nullptr: the
// winners go straight to `winners`; otherwise one (value, index) per split and row.
template <class T, int Load, class I>
void launch_tiled(dim3 grid, const Tensor& z, const Tensor& codebook, const Tensor& norms,
                  std::int64_t per_split, T* values, std::int32_t* winners) {
  LATENT_LAUNCH((kernels::vq_argmin_tiled_kernel<T, Load, I>), grid, kernels::kVqThreads, 0,
                stream(), ptr<T>(z), ptr<T>(codebook), ptr<T>(norms), static_cast<I>(z.size(0)),
                static_cast<I>(codebook.size(0)), static_cast<I>(z.size(1)),
                static_cast<I>(per_split), values, winners);
}

// The "shared" statistics' first kernel. Its shared memory is K·D + 4·K bytes plus the
// per-batch bookkeeping (vq_stats_block_shared_bytes); past the default 48 KB it asks for
// more (vq_stats_fit_shared keeps K·D·size + 4·K ≤ 48 KB, so it stays far below 227 KB).
template <class T, bool Vec>
void launch_stats_block(std::int64_t blocks, const Tensor& z, const Tensor& indices,
                        std::int64_t rows_per_block, const Tensor& partial_sums,
                        const Tensor& partial_counts) {
  const std::int64_t K = partial_counts.size(1), D = z.size(1);
  const std::size_t bytes = kernels::vq_stats_block_shared_bytes<T>(K, D);
  if (bytes > static_cast<std::size_t>(kSharedLimit)) {
    LATENT_CUDA_CHECK(cudaFuncSetAttribute(kernels::vq_stats_block_kernel<T, Vec>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(bytes)));
  }
  LATENT_LAUNCH((kernels::vq_stats_block_kernel<T, Vec>), dim3(static_cast<unsigned>(blocks)),
                kernels::kVqStatsThreads, bytes, stream(), ptr<T>(z),
                ptr<std::int32_t>(indices), z.size(0), K, D, rows_per_block,
                ptr<T>(partial_sums), ptr<std::int32_t>(partial_counts));
}

// ---- the stable sort of the "sorted" statistics: keys = codes ascending, order = rows.
void sort_by_code(const Tensor& indices, std::int64_t K, const Tensor& keys,
                  const Tensor& order) {
  const std::int64_t N = indices.numel();
#if defined(__CUDACC__)
  Tensor rows = empty({N}, DType::i32, indices.device());
  LATENT_LAUNCH(kernels::vq_iota_kernel<std::int32_t>, grid_for(N), kThreads, 0, stream(),
                ptr<std::int32_t>(rows), N);
  int end_bit = 1;
  while (end_bit < 31 && (std::int64_t{1} << end_bit) < K) ++end_bit;
  const auto* keys_in = reinterpret_cast<const std::uint32_t*>(indices.data_ptr());
  auto* keys_out = reinterpret_cast<std::uint32_t*>(keys.data_ptr());
  std::size_t temp_bytes = 0;
  LATENT_CHECK(N <= INT32_MAX, "vq statistics: ", N, " rows exceed the sort's int32 length");
  LATENT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      nullptr, temp_bytes, keys_in, keys_out, ptr<std::int32_t>(rows), ptr<std::int32_t>(order),
      static_cast<int>(N), 0, end_bit, stream()));
  Tensor temp = empty({static_cast<std::int64_t>(temp_bytes / 4 + 1)}, DType::i32,
                      indices.device());
  LATENT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(
      temp.data_ptr(), temp_bytes, keys_in, keys_out, ptr<std::int32_t>(rows),
      ptr<std::int32_t>(order), static_cast<int>(N), 0, end_bit, stream()));
#else
  // SIMT: device memory is host memory; a stable counting sort stands in for CUB's.
  const std::int32_t* idx = ptr<std::int32_t>(indices);
  std::int32_t* key_out = ptr<std::int32_t>(keys);
  std::int32_t* row_out = ptr<std::int32_t>(order);
  // An index outside [0, K) (the op's device-side check reports it) sorts after every code.
  auto bucket = [K](std::int32_t k) { return k >= 0 && k < K ? std::int64_t{k} : K; };
  std::vector<std::int64_t> next(static_cast<std::size_t>(K) + 2, 0);
  for (std::int64_t i = 0; i < N; ++i) ++next[static_cast<std::size_t>(bucket(idx[i])) + 1];
  for (std::int64_t k = 0; k <= K; ++k) next[k + 1] += next[k];
  for (std::int64_t i = 0; i < N; ++i) {
    const std::int64_t pos = next[bucket(idx[i])]++;
    key_out[pos] = idx[i];
    row_out[pos] = static_cast<std::int32_t>(i);
  }
#endif
}

}  // namespace

int vq_argmin_auto_splits(std::int64_t N, std::int64_t K) {
  const std::int64_t row_tiles = ceil_div(std::max<std::int64_t>(N, 1), kernels::kVqTileRows);
  const std::int64_t code_tiles = ceil_div(std::max<std::int64_t>(K, 1), kernels::kVqTileCodes);
  const std::int64_t wanted = busy_blocks();
  if (row_tiles >= wanted) return 1;
  // Enough splits to fill the device, each still walking at least 2 code tiles.
  std::int64_t splits = ceil_div(wanted, row_tiles);
  splits = std::min(splits, std::max<std::int64_t>(1, code_tiles / 2));
  return static_cast<int>(std::min<std::int64_t>(splits, 65535));
}

bool vq_stats_fit_shared(std::int64_t K, std::int64_t D, DType dtype) {
  return K * D * static_cast<std::int64_t>(dtype_size(dtype)) + K * 4 <= kSharedLimit;
}

double fp32_peak_flops() {
#if defined(__CUDACC__)
  int sms = 0, khz = 0;
  LATENT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  LATENT_CUDA_CHECK(cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0));
  return static_cast<double>(sms) * khz * 1e3 * 128 * 2;
#else
  return 0.0;  // SIMT: there is no FP32 peak to compare with
#endif
}

namespace {

void vq_argmin(const Tensor& z, const Tensor& codebook, const Tensor& indices,
               const Tensor& distances, const VqArgminOptions& options) {
  const VqArgminAlgorithm algorithm = options.algorithm;
  const int splits = options.splits;
  const std::int64_t N = z.size(0), K = codebook.size(0), D = z.size(1);
  if (N == 0) return;
  dispatch_floating(z.dtype(), "vq_argmin", [&](auto tag) {
    using T = decltype(tag);
    std::int32_t* out = ptr<std::int32_t>(indices);
    switch (algorithm) {
      case VqArgminAlgorithm::naive:
        LATENT_LAUNCH(kernels::vq_argmin_naive_kernel<T>, grid_for(N), kThreads, 0, stream(),
                      ptr<T>(z), ptr<T>(codebook), N, K, D, out);
        break;
      case VqArgminAlgorithm::gemm: {
        // The composition a framework would run: S = −2·Z·Eᵀ (cuBLAS SGEMM), then a row
        // argmin of ‖e‖² + S. Row chunks keep the score matrix under kScoreElements.
        const Tensor norms = code_norms<T>(codebook);
        const std::int64_t chunk = std::clamp<std::int64_t>(kScoreElements / K, 1, N);
        Tensor scores = empty({chunk, K}, z.dtype(), z.device());
        for (std::int64_t row0 = 0; row0 < N; row0 += chunk) {
          const std::int64_t rows = std::min(chunk, N - row0);
          backend::lookup<backend::GemmTable>(z.device()).gemm(z.dtype(), false, true, rows, K, D, -2.0, ptr<T>(z) + row0 * D, D,
                  ptr<T>(codebook), D, 0.0, ptr<T>(scores), K);
          LATENT_LAUNCH(kernels::vq_argmin_rows_kernel<T>, grid_for(rows * 32), kThreads, 0, stream(), ptr<T>(scores), ptr<T>(norms), rows, K, row0, out);
        }
        break;
      }
      case VqArgminAlgorithm::tiled: {
        const Tensor norms = code_norms<T>(codebook);
        const std::int64_t row_tiles = ceil_div(N, kernels::kVqTileRows);
        const std::int64_t code_tiles = ceil_div(K, kernels::kVqTileCodes);
        std::int64_t wanted = splits > 0 ? splits : vq_argmin_auto_splits(N, K);
        // gridDim.y is at most 65535 on a GPU.
        wanted = std::clamp<std::int64_t>(wanted, 1, std::min<std::int64_t>(code_tiles, 65535));
        const std::int64_t per_split = ceil_div(code_tiles, wanted);
        const std::int64_t used = ceil_div(code_tiles, per_split);
        // The kernel counts codes and depths in 32 bits; rows and offsets in 32 bits too
        // when N·D and (K + 128)·D fit (a 64-bit instance otherwise).
        LATENT_CHECK(K <= INT32_MAX - 2 * kernels::kVqTileCodes && D <= INT32_MAX - 2 * kernels::kVqTileDepth,
                     "vq_argmin: K = ", K, " or D = ", D, " exceeds the tiled kernel's 32-bit range");
        LATENT_CHECK(aligned16(norms.data_ptr()), "vq_argmin: the code norms are not 16-byte aligned");
        const bool vec4 = sizeof(T) == 4 && D % 4 == 0 && aligned16(z.data_ptr()) &&
                          aligned16(codebook.data_ptr());
        const bool narrow = N * D <= INT32_MAX && (K + kernels::kVqTileCodes) * D <= INT32_MAX;
        const dim3 grid(static_cast<unsigned>(row_tiles), static_cast<unsigned>(used));
        auto tiled = [&](T* values, std::int32_t* winners) {
          if constexpr (sizeof(T) == 4) {
            if (vec4) {
              if (narrow)
                launch_tiled<T, kernels::kVqLoadVec4, std::int32_t>(grid, z, codebook, norms, per_split, values, winners);
              else
                launch_tiled<T, kernels::kVqLoadVec4, std::int64_t>(grid, z, codebook, norms, per_split, values, winners);
              return;
            }
          }
          if (narrow)
            launch_tiled<T, kernels::kVqLoadScalar, std::int32_t>(grid, z, codebook, norms, per_split, values, winners);
          else
            launch_tiled<T, kernels::kVqLoadScalar, std::int64_t>(grid, z, codebook, norms, per_split, values, winners);
        };
        if (used == 1) {
          tiled(nullptr, out);
        } else {
          Tensor values = empty({used, N}, z.dtype(), z.device());
          Tensor partial = empty({used, N}, DType::i32, z.device());
          tiled(ptr<T>(values), ptr<std::int32_t>(partial));
          LATENT_LAUNCH(kernels::vq_argmin_merge_kernel<T>, grid_for(N), kThreads, 0, stream(),
                        ptr<T>(values), ptr<std::int32_t>(partial), N, used, out);
        }
        break;
      }
    }
    if (distances.defined()) {
      LATENT_LAUNCH(kernels::vq_winner_distance_kernel<T>, grid_for(N * 32), kThreads, 0, stream(), ptr<T>(z), ptr<T>(codebook), out, N, D, ptr<T>(distances));
    }
  });
}

void vq_gather(const Tensor& codebook, const Tensor& indices, const Tensor& out) {
  const std::int64_t N = indices.numel(), D = codebook.size(1);
  if (N * D == 0) return;
  dispatch_floating(codebook.dtype(), "vq_gather", [&](auto tag) {
    using T = decltype(tag);
    LATENT_LAUNCH(kernels::vq_gather_kernel<T>, grid_for(N * D), kThreads, 0, stream(),
                  ptr<T>(codebook), ptr<std::int32_t>(indices), N, codebook.size(0),
                  kernels::FastDivmod(D), ptr<T>(out));
  });
}

void vq_code_counts(const Tensor& indices, const Tensor& counts) {
  const std::int64_t N = indices.numel(), K = counts.numel();
  zero_fill(counts);
  if (N == 0) return;
  LATENT_LAUNCH(kernels::vq_histogram_kernel<std::int32_t>, grid_for(N), kThreads, 0, stream(),
                ptr<std::int32_t>(indices), N, K, ptr<std::int32_t>(counts));
}

void vq_code_stats(const Tensor& z, const Tensor& indices, const Tensor& counts,
                   const Tensor& sums, VqStatsAlgorithm algorithm) {
  const std::int64_t N = z.size(0), D = z.size(1), K = counts.numel();
  if (algorithm == VqStatsAlgorithm::automatic) {
    // Under SIMT the sorted path stays the default (its sums are the ones every SIMT run so
    // far has produced, and it has no per-batch barriers, which the executor pays dearly).
    algorithm = vq_stats_fit_shared(K, D, z.dtype()) && !simulated()
                    ? VqStatsAlgorithm::shared
                    : VqStatsAlgorithm::sorted;
  }
  LATENT_CHECK(algorithm != VqStatsAlgorithm::shared || vq_stats_fit_shared(K, D, z.dtype()),
               "vq_code_stats: the shared algorithm needs K·D to fit in ", kSharedLimit,
               " bytes of shared memory; K = ", K, ", D = ", D, " (use sorted)");
  if (N == 0) {
    zero_fill(counts);
    zero_fill(sums);
    return;
  }
  dispatch_floating(z.dtype(), "vq_code_stats", [&](auto tag) {
    using T = decltype(tag);
    switch (algorithm) {
      case VqStatsAlgorithm::automatic:
      case VqStatsAlgorithm::shared: {
        // Blocks: enough to fill the device, but no more partials than rows (≥ K rows each).
        std::int64_t blocks = std::clamp<std::int64_t>(N / std::max<std::int64_t>(K, 256), 1,
                                                       busy_blocks());
        const std::int64_t rows_per_block = ceil_div(N, blocks);
        blocks = ceil_div(N, rows_per_block);
        Tensor partial_sums = empty({blocks, K, D}, z.dtype(), z.device());
        Tensor partial_counts = empty({blocks, K}, DType::i32, z.device());
        // Rows are read 16 bytes at a time when D % 4 == 0 and z is aligned (float).
        bool launched = false;
        if constexpr (sizeof(T) == 4) {
          if (D % 4 == 0 && aligned16(z.data_ptr())) {
            launch_stats_block<T, true>(blocks, z, indices, rows_per_block, partial_sums,
                                        partial_counts);
            launched = true;
          }
        }
        if (!launched)
          launch_stats_block<T, false>(blocks, z, indices, rows_per_block, partial_sums,
                                       partial_counts);
        LATENT_LAUNCH(kernels::vq_stats_block_finish_kernel<T>, grid_for(K * D + K), kThreads,
                      0, stream(), ptr<T>(partial_sums), ptr<std::int32_t>(partial_counts),
                      blocks, K, D, ptr<T>(sums), ptr<std::int32_t>(counts));
        break;
      }
      case VqStatsAlgorithm::sorted: {
        Tensor keys = empty({N}, DType::i32, z.device());
        Tensor order = empty({N}, DType::i32, z.device());
        sort_by_code(indices, K, keys, order);
        const std::int64_t pieces = ceil_div(N, kernels::kVqPiece);
        Tensor first_part = empty({pieces, D}, z.dtype(), z.device());
        Tensor last_part = empty({pieces, D}, z.dtype(), z.device());
        Tensor bounds = empty({K + 1}, DType::i32, z.device());
        LATENT_LAUNCH(kernels::vq_stats_pieces_kernel<T>, grid_for(pieces * D), kThreads, 0, stream(), ptr<T>(z), ptr<std::int32_t>(keys), ptr<std::int32_t>(order), N,
                      K, kernels::FastDivmod(D), ptr<T>(sums), ptr<T>(first_part), ptr<T>(last_part));
        LATENT_LAUNCH(kernels::vq_segment_bounds_kernel<std::int32_t>, grid_for(K + 1),
                      kThreads, 0, stream(), ptr<std::int32_t>(keys), N, K,
                      ptr<std::int32_t>(bounds));
        LATENT_LAUNCH(kernels::vq_stats_segments_finish_kernel<T>, grid_for(K * D), kThreads,
                      0, stream(), ptr<std::int32_t>(bounds), ptr<T>(first_part),
                      ptr<T>(last_part), K, kernels::FastDivmod(D), ptr<T>(sums),
                      ptr<std::int32_t>(counts));
        break;
      }
      case VqStatsAlgorithm::atomic:
        zero_fill(counts);
        zero_fill(sums);
        LATENT_LAUNCH(kernels::vq_stats_atomic_kernel<T>, grid_for(N * D), kThreads, 0, stream(),
                      ptr<T>(z), ptr<std::int32_t>(indices), N, K, kernels::FastDivmod(D), ptr<T>(sums),
                      ptr<std::int32_t>(counts));
        break;
    }
  });
}

void vq_ema_update(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                   const Tensor& counts, const Tensor& sums, double decay, double epsilon,
                   const backend::CheckMessage& count_message,
                   const backend::CheckMessage& sum_message) {
  const std::int64_t K = codebook.size(0), D = codebook.size(1);
  kernels::CheckSite count_check, sum_check;
  if (count_message) count_check = register_check_site(count_message);
  if (sum_message) sum_check = register_check_site(sum_message);
  dispatch_floating(codebook.dtype(), "vq_ema_update", [&](auto tag) {
    using T = decltype(tag);
    Tensor total = empty({1}, codebook.dtype(), codebook.device());
    LATENT_LAUNCH(kernels::vq_ema_counts_kernel<T>, dim3(1), kernels::kReduceThreads, 0, stream(), ptr<T>(ema_count), ptr<std::int32_t>(counts), K,
                  static_cast<T>(decay), static_cast<T>(1.0 - decay), ptr<T>(total), count_check);
    const bool vec4 = sizeof(T) == 4 && D % 4 == 0 && aligned16(codebook.data_ptr()) &&
                      aligned16(ema_sum.data_ptr()) && aligned16(sums.data_ptr());
    LATENT_LAUNCH(kernels::vq_ema_codebook_kernel<T>, grid_for(vec4 ? K * D / 4 : K * D),
                  kThreads, 0, stream(), ptr<T>(codebook), ptr<T>(ema_sum), ptr<T>(sums),
                  ptr<T>(ema_count), ptr<T>(total), K, kernels::FastDivmod(D), static_cast<T>(decay),
                  static_cast<T>(1.0 - decay), static_cast<T>(epsilon), vec4, sum_check);
  });
  if (count_message || sum_message) after_check();
}

void vq_revive(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
               const Tensor& z, double threshold, double reset_count, PhiloxKey key,
               const Tensor& revived) {
  const std::int64_t K = codebook.size(0), D = codebook.size(1), N = z.size(0);
  dispatch_floating(codebook.dtype(), "vq_revive", [&](auto tag) {
    using T = decltype(tag);
    LATENT_LAUNCH(kernels::vq_revive_kernel<T>, grid_for(K), kThreads, 0, stream(),
                  ptr<T>(codebook), ptr<T>(ema_count), ptr<T>(ema_sum), ptr<T>(z), N, K, D,
                  static_cast<T>(threshold), static_cast<T>(reset_count), key.seed, key.offset,
                  ptr<std::int32_t>(revived));
  });
}

}  // namespace

void register_vq() {
  backend::Registry<backend::VqTable>::add(
      DeviceType::cuda, {&vq_argmin, &vq_gather, &vq_code_counts, &vq_code_stats,
                         &vq_ema_update, &vq_revive});
}

}  // namespace latent::cuda
