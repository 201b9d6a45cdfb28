// latent::simt::launch: the SIMT executor's counterpart of `kernel<<<grid, block, shmem,
// stream>>>(args...)`. The one launch helper of the CUDA backend calls it in a build
// without nvcc:
//
//   #ifdef __CUDACC__
//     kernel<<<grid, block, shmem, stream>>>(args...);
//   #else
//     latent::simt::launch("kernel", grid, block, shmem, stream, kernel, args...);
//   #endif
//
// It validates the launch as a GPU would (a bad one throws latent::Error naming the kernel),
// runs every block on the CPU (docs/simt.md) and returns when the grid has finished; an
// error inside the kernel (a barrier not every thread reaches, an out-of-range dynamic
// shared access, an exception) throws latent::Error naming the kernel, block and thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_shim.h"
#include "device_api.h"

namespace latent::simt {

// One launch, type-erased: `invoke(closure)` runs the kernel body for the current thread.
struct KernelLaunch {
  const char* name;
  const void* kernel;  // identifies the kernel for cudaFuncSetAttribute
  dim3 grid;
  dim3 block;
  std::size_t dynamic_shared_bytes;
  cudaStream_t stream;
  void (*invoke)(const void* closure);
  const void* closure;
  // Set by run_kernel: the order the threads of each block of this launch run in between
  // barriers (ThreadOrder below), the launch's number in this process and, for a shuffle,
  // its seed.
  unsigned order = 0;
  std::uint64_t launch_index = 0;
  std::uint64_t order_seed = 0;
};

// The order in which the CUDA threads of a block run between barriers (and start). A
// correct kernel gives the same result under every order; one that depends on it (a race,
// a missing barrier) shows up as a test that passes under one order and fails under another.
//   ascending   thread 0, 1, ..., n-1
//   descending  thread n-1, ..., 0
//   shuffle     a seeded random permutation, new for every launch (seed: LATENT_SIMT_SEED,
//               plus the launch count)
//   rotate      the default: block b of launch k (b: the linear block index) runs ascending,
//               descending, shuffle for (k + b) % 3 = 0, 1, 2; so a launch of two blocks or
//               more, and every test that launches twice or more, sees at least two orders
// LATENT_SIMT_ORDER=ascending|descending|shuffle|rotate sets it at the first launch;
// set_thread_order changes it for later launches (from any OS thread).
enum class ThreadOrder : unsigned { ascending, descending, shuffle, rotate };
void set_thread_order(ThreadOrder order);
ThreadOrder thread_order();
const char* thread_order_name(ThreadOrder order);

// Runs a launch to completion; throws latent::Error on a bad launch or a failing kernel.
void run_kernel(const KernelLaunch& launch);

template <class... Params, class... Args>
void launch(const char* kernel_name, dim3 grid, dim3 block, std::size_t dynamic_shared_bytes,
            cudaStream_t stream, void (*kernel)(Params...), Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args),
                "simt::launch: the kernel takes a different number of arguments");
  // The arguments, converted once to the parameter types as <<<>>> does; every CUDA thread
  // then receives its own copy, so a kernel may modify its parameters.
  struct Closure {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> args;
  };
  const Closure closure{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
  KernelLaunch launch_info{};
  launch_info.name = kernel_name;
  launch_info.kernel = reinterpret_cast<const void*>(kernel);
  launch_info.grid = grid;
  launch_info.block = block;
  launch_info.dynamic_shared_bytes = dynamic_shared_bytes;
  launch_info.stream = stream;
  launch_info.invoke = [](const void* p) {
    const Closure& c = *static_cast<const Closure*>(p);
    std::apply(c.kernel, c.args);
  };
  launch_info.closure = &closure;
  run_kernel(launch_info);
}

// How the calling OS thread's last launch ran: for tests and the docs.
struct LaunchStats {
  std::uint64_t blocks = 0;
  std::uint64_t threads = 0;  // CUDA threads run
  std::uint64_t fibers = 0;   // fibers started: one per block, plus one per blocked thread
  unsigned os_threads = 0;    // OS threads that ran at least one block
};
LaunchStats last_launch_stats();

// The number of OS threads that run blocks: LATENT_SIMT_THREADS if set, else the number of
// hardware threads. Fixed at the first launch.
unsigned os_thread_count();

// The usable stack of each fiber: LATENT_SIMT_STACK_KIB KiB if set, else 64 KiB, with a
// guard page below it.
std::size_t fiber_stack_bytes();

}  // namespace latent::simt
