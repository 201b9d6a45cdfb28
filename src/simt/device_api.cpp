// The out-of-line part of device_api.h: the built-in variables and the primitives that
// reach the block runner of the calling OS thread.
#include "simt/device_api.h"

#include "latent/error.h"
#include "simt/block_runner.h"

namespace latent::simt {

thread_local constinit uint3 threadIdx LATENT_SIMT_TLS = {0, 0, 0};
thread_local constinit uint3 blockIdx LATENT_SIMT_TLS = {0, 0, 0};
thread_local constinit dim3 blockDim LATENT_SIMT_TLS = {1, 1, 1};
thread_local constinit dim3 gridDim LATENT_SIMT_TLS = {1, 1, 1};

namespace {

detail::BlockRunner& running(const char* what) {
  detail::BlockRunner* runner = detail::BlockRunner::active();
  LATENT_CHECK(runner != nullptr, what, " called outside a SIMT kernel");
  return *runner;
}

}  // namespace

void __syncthreads(std::source_location where) {
  running("__syncthreads()").barrier(detail::BarrierKind::sync, 0, where);
}

int __syncthreads_count(int predicate, std::source_location where) {
  return running("__syncthreads_count()").barrier(detail::BarrierKind::count, predicate, where);
}

int __syncthreads_and(int predicate, std::source_location where) {
  return running("__syncthreads_and()").barrier(detail::BarrierKind::all, predicate, where);
}

int __syncthreads_or(int predicate, std::source_location where) {
  return running("__syncthreads_or()").barrier(detail::BarrierKind::any, predicate, where);
}

DynamicSharedBuffer current_dynamic_shared() {
  return running("LATENT_DYNAMIC_SHARED").dynamic_shared();
}

namespace detail {

std::uint64_t warp_exchange(WarpOp op, unsigned mask, std::uint64_t value, int param,
                            int width, std::source_location where) {
  return running("a warp primitive").warp_exchange(op, mask, value, param, width, where);
}

void misaligned_atomic(const void* address, std::size_t alignment) {
  LATENT_FAIL("atomic operation on misaligned address ", address, " (it needs ", alignment,
              "-byte alignment)");
}

void dynamic_shared_out_of_range(const char* name, std::ptrdiff_t index, std::size_t count,
                                 std::size_t element_bytes) {
  const std::size_t bytes = running("LATENT_DYNAMIC_SHARED").dynamic_shared().bytes;
  LATENT_FAIL("dynamic shared memory \"", name, "\": element ", index,
              " is out of range; the launch gave ", bytes, " bytes, ", count, " element(s) of ",
              element_bytes, " bytes");
}

}  // namespace detail
}  // namespace latent::simt
