// FSQ on the cuda backend: the launches of kernels/fsq.cuh. Built by nvcc for a GPU, or by
// the host compiler against the SIMT executor (docs/simt.md). docs/fsq.md.
//
// Every kernel works on tiles of kFsqTileRows rows with one thread per row, so the block is
// kFsqTileRows threads, the dynamic shared memory one tile, and the grid grid_for(rows)
// (capped; the kernels walk the tiles grid-stride).
#include <cstdint>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/fsq.h"
#include "backends/registry.h"
#include "kernels/fsq.cuh"

namespace latent::cuda {
namespace {

using backend::dispatch_floating;
using backend::ptr;
using backend::aligned16;

using kernels::kFsqTileRows;

dim3 tile_grid(std::int64_t rows) { return grid_for(rows, kFsqTileRows); }
dim3 block() { return dim3(kFsqTileRows); }

void fsq_quantize(const Tensor& z, const Tensor& codes, const Tensor& indices,
                  const std::vector<std::int64_t>& levels, const FsqOptions& options,
                  const backend::CheckMessage& nan_message) {
  kernels::CheckSite nan_check;
  if (nan_message) nan_check = register_check_site(nan_message);
  dispatch_floating(z.dtype(), "fsq_quantize", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const std::int64_t rows = z.numel() / k.dims;
    const bool vectorized = aligned16(z.data_ptr()) && aligned16(codes.data_ptr());
    std::int32_t* index_out = indices.defined() ? ptr<std::int32_t>(indices) : nullptr;
    if (options.symmetric) {
      LATENT_LAUNCH((kernels::fsq_quantize_kernel<T, true>), tile_grid(rows), block(),
                    kernels::fsq_tile_bytes<T>(k.dims), stream(), k, ptr<const T>(z),
                    ptr<T>(codes), index_out, rows, vectorized, nan_check);
    } else {
      LATENT_LAUNCH((kernels::fsq_quantize_kernel<T, false>), tile_grid(rows), block(),
                    kernels::fsq_tile_bytes<T>(k.dims), stream(), k, ptr<const T>(z),
                    ptr<T>(codes), index_out, rows, vectorized, nan_check);
    }
  });
  if (nan_message) after_check();
}

void fsq_quantize_backward(const Tensor& z, const Tensor& dL_dcodes, const Tensor& dL_dz,
                           const std::vector<std::int64_t>& levels, const FsqOptions& options) {
  dispatch_floating(z.dtype(), "fsq_quantize_backward", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const std::int64_t rows = z.numel() / k.dims;
    const bool vectorized = aligned16(z.data_ptr()) && aligned16(dL_dcodes.data_ptr()) &&
                            aligned16(dL_dz.data_ptr());
    LATENT_LAUNCH(kernels::fsq_quantize_backward_kernel<T>, tile_grid(rows), block(),
                  kernels::fsq_tile_bytes<T>(k.dims), stream(), k, ptr<const T>(z),
                  ptr<const T>(dL_dcodes), ptr<T>(dL_dz), rows, vectorized);
  });
}

void fsq_codes_to_indices(const Tensor& codes, const Tensor& indices,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options) {
  dispatch_floating(codes.dtype(), "fsq_codes_to_indices", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const std::int64_t rows = codes.numel() / k.dims;
    LATENT_LAUNCH(kernels::fsq_codes_to_indices_kernel<T>, tile_grid(rows), block(),
                  kernels::fsq_tile_bytes<T>(k.dims), stream(), k, ptr<const T>(codes),
                  ptr<std::int32_t>(indices), rows, aligned16(codes.data_ptr()));
  });
}

void fsq_indices_to_codes(const Tensor& indices, const Tensor& codes,
                          const std::vector<std::int64_t>& levels, const FsqOptions& options) {
  std::int64_t size = 1;
  for (const std::int64_t L : levels) size *= L;
  dispatch_floating(codes.dtype(), "fsq_indices_to_codes", [&](auto zero) {
    using T = decltype(zero);
    const auto k = kernels::fsq_constants<T>(levels, options.symmetric);
    const std::int64_t rows = indices.numel();
    LATENT_LAUNCH(kernels::fsq_indices_to_codes_kernel<T>, tile_grid(rows), block(),
                  kernels::fsq_tile_bytes<T>(k.dims), stream(), k,
                  ptr<const std::int32_t>(indices), ptr<T>(codes), rows,
                  static_cast<std::int32_t>(size), aligned16(codes.data_ptr()));
  });
}

}  // namespace

void register_fsq() {
  backend::Registry<backend::FsqTable>::add(
      DeviceType::cuda,
      {&fsq_quantize, &fsq_quantize_backward, &fsq_codes_to_indices, &fsq_indices_to_codes});
}

}  // namespace latent::cuda
