// The one launch helper of the cuda backend, and the check that every CUDA call goes through.
//
//   LATENT_CUDA_CHECK(cudaMemcpy(...));                       // throws latent::Error on failure
//   LATENT_LAUNCH(kernels::fill_kernel<float>, grid, block, 0, stream(), ptr, 1.0f, n);
//
// Every launch names its stream; the backend's launches pass stream(), the calling thread's
// current stream (latent::current_stream).
//
// Under nvcc LATENT_LAUNCH is `kernel<<<grid, block, shmem, stream>>>(args...)` followed by a
// check of cudaGetLastError(); with LATENT_CUDA_SYNC=1 in the environment it also
// synchronizes after every launch, so an asynchronous fault is pinned to its kernel. In the
// SIMT build it runs the kernel on the CPU through latent::simt::launch, which reports
// errors the same way. Either way the error names the kernel, the file and the line.
#pragma once

#include <cstdint>
#include <utility>

#include "backends/cuda/cuda.h"
#include "backends/dispatch.h"
#include "kernels/device.cuh"
#include "latent/error.h"

namespace latent::cuda {

// The dtype dispatch and typed pointers every launcher file uses (src/backends/dispatch.h).
using backend::aligned16;
using backend::dispatch_all;
using backend::dispatch_floating;
using backend::ptr;

[[noreturn]] void fail(cudaError_t status, const char* what, const char* file, int line);

inline void check(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess) fail(status, what, file, line);
}

bool sync_after_launch();  // LATENT_CUDA_SYNC=1

// The cap on grid sizes for grid-stride kernels: 8 blocks per SM on a GPU, 16 under SIMT
// (where fewer, longer blocks run faster).
int max_grid_blocks();

// A 1-D grid for `work_items` items at `threads` per block, capped at max_grid_blocks():
// kernels launched with it must loop grid-stride.
inline dim3 grid_for(std::int64_t work_items, int threads = 256) {
  const std::int64_t blocks = (work_items + threads - 1) / threads;
  const std::int64_t cap = max_grid_blocks();
  return dim3(static_cast<unsigned>(blocks < 1 ? 1 : (blocks < cap ? blocks : cap)));
}

// A 1-D grid of exactly `blocks` blocks (one per output, say), checked against the grid's x
// limit (2^31 − 1): a clear latent::Error naming `op` instead of a wrapped-around launch.
inline dim3 grid_x_checked(std::int64_t blocks, const char* op) {
  LATENT_CHECK(blocks >= 1 && blocks <= 2147483647LL, "cuda ", op, ": ", blocks,
               " blocks exceed the grid limit of 2^31 - 1");
  return dim3(static_cast<unsigned>(blocks));
}

template <class... Params, class... Args>
void launch(const char* name, const char* file, int line, void (*kernel)(Params...), dim3 grid,
            dim3 block, std::size_t shared_bytes, cudaStream_t stream, Args&&... args) {
  note_launch(stream);
#if defined(__CUDACC__)
  kernel<<<grid, block, shared_bytes, stream>>>(std::forward<Args>(args)...);
  check(cudaGetLastError(), name, file, line);
  if (sync_after_launch()) check(cudaStreamSynchronize(stream), name, file, line);
#else
  try {
    simt::launch(name, grid, block, shared_bytes, stream, kernel, std::forward<Args>(args)...);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " [launched at " + file + ":" + std::to_string(line) + "]");
  }
#endif
}

}  // namespace latent::cuda

#define LATENT_CUDA_CHECK(call) ::latent::cuda::check((call), #call, __FILE__, __LINE__)
#define LATENT_LAUNCH(kernel, grid, block, shared_bytes, stream, ...)                     \
  ::latent::cuda::launch(#kernel, __FILE__, __LINE__, kernel, grid, block, shared_bytes, \
                         stream, __VA_ARGS__)
