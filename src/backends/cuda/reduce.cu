// The cuda reduce concept (src/backends/reduce.h): deterministic two-pass sums (fixed
// chunks, fixed combination order, no atomics) and a warp per row for argmax
// (kernels/reduce.cuh).
#include <algorithm>
#include <cstdint>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "backends/cuda/strided.h"
#include "backends/reduce.h"
#include "kernels/reduce.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 256;

dim3 grid(std::int64_t work_items) { return grid_for(work_items, kThreads); }
using kernels::StridedIndex;
using kernels::index32_fits;

void sum(const Tensor& x, const Tensor& out) {
  Shape kept_shape, kept_strides, reduced_shape, reduced_strides;
  for (std::int64_t d = 0; d < x.dim(); ++d) {
    if (out.shape()[d] == 1 && x.shape()[d] != 1) {
      reduced_shape.push_back(x.shape()[d]);
      reduced_strides.push_back(x.strides()[d]);
    } else {
      kept_shape.push_back(x.shape()[d]);
      kept_strides.push_back(x.strides()[d]);
    }
  }
  const StridedIndex kept = strided_index(kept_shape, kept_strides, "sum");
  const StridedIndex reduced = strided_index(reduced_shape, reduced_strides, "sum");
  const std::int64_t outputs = out.numel(), count = shape_numel(reduced_shape);
  dispatch_floating(x.dtype(), "sum", [&](auto z) {
    using T = decltype(z);
    // 32-bit indices when the work (twice over: begin + chunk), each index and their sum fit.
    const bool small = use_index32(2 * outputs * count, {kept, reduced}) &&
                       index32_fits(kept.max_offset() + reduced.max_offset());
    if (count <= 32 && outputs >= 1024) {
      if (small) {
        LATENT_LAUNCH((kernels::sum_per_thread_kernel<T, std::int32_t>), grid(outputs), kThreads,
                      0, stream(), ptr<T>(x), kernels::to_index32(kept),
                      kernels::to_index32(reduced), static_cast<std::int32_t>(count),
                      static_cast<std::int32_t>(outputs), ptr<T>(out));
      } else {
        LATENT_LAUNCH((kernels::sum_per_thread_kernel<T, std::int64_t>), grid(outputs), kThreads,
                      0, stream(), ptr<T>(x), kept, reduced, count, outputs, ptr<T>(out));
      }
      return;
    }
    // Chunks of at least 16 elements per thread; enough blocks to fill the device.
    constexpr std::int64_t kMinChunk = kThreads * 16;
    std::int64_t chunks = (count + kMinChunk - 1) / kMinChunk;
    const std::int64_t wanted_blocks = static_cast<std::int64_t>(max_grid_blocks()) * 4;
    chunks = std::max<std::int64_t>(1, std::min(chunks, wanted_blocks / outputs));
    const std::int64_t chunk = (count + chunks - 1) / chunks;
    // One block per (output, chunk): checked against the grid limit.
    const dim3 blocks = grid_x_checked(outputs * chunks, "sum");
    const auto partials = [&](T* dst) {
      if (small) {
        LATENT_LAUNCH((kernels::sum_partials_kernel<T, std::int32_t>), blocks, kThreads, 0,
                      stream(), ptr<T>(x), kernels::to_index32(kept),
                      kernels::to_index32(reduced), static_cast<std::int32_t>(count),
                      static_cast<std::int32_t>(chunks), static_cast<std::int32_t>(chunk), dst);
      } else {
        LATENT_LAUNCH((kernels::sum_partials_kernel<T, std::int64_t>), blocks, kThreads, 0,
                      stream(), ptr<T>(x), kept, reduced, count, chunks, chunk, dst);
      }
    };
    if (chunks == 1) {
      partials(ptr<T>(out));
      return;
    }
    Tensor partial = empty({outputs * chunks}, x.dtype(), x.device());
    partials(ptr<T>(partial));
    LATENT_LAUNCH(kernels::sum_finish_kernel<T>,
                  dim3(static_cast<unsigned>(std::min<std::int64_t>(outputs, 65535))),
                  kThreads, 0, stream(), ptr<T>(partial), chunks, outputs, ptr<T>(out));
  });
}

void argmax_rows(const Tensor& x, const Tensor& out) {
  const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
  dispatch_floating(x.dtype(), "argmax", [&](auto z) {
    using T = decltype(z);
    // One warp per row: rows · 32 threads.
    LATENT_LAUNCH(kernels::argmax_rows_kernel<T>, grid(rows * kernels::kWarp), kThreads, 0, stream(),
                  ptr<T>(x), rows, cols, ptr<std::int32_t>(out));
  });
}

}  // namespace

void register_reduce() {
  backend::Registry<backend::ReduceTable>::add(DeviceType::cuda, {&sum, &argmax_rows});
}

}  // namespace latent::cuda
