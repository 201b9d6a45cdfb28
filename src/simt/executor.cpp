// simt::run_kernel: validates a launch as a GPU would, then runs its blocks on the worker
// pool, one BlockRunner per OS thread.
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "latent/error.h"
#include "simt/block_runner.h"
#include "simt/launch.h"
#include "simt/worker_pool.h"

namespace latent::simt {
namespace {

// sm_90 limits.
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
constexpr unsigned kMaxGridDim[3] = {2147483647u, 65535u, 65535u};

thread_local LaunchStats t_last_stats;

std::string triple(dim3 v) { return latent::detail::concat("(", v.x, ",", v.y, ",", v.z, ")"); }

void validate(const KernelLaunch& l) {
  const char* name = l.name;
  LATENT_CHECK(detail::BlockRunner::active() == nullptr, "SIMT kernel \"", name,
               "\" launched from inside kernel \"", detail::BlockRunner::active()->kernel_name(),
               "\": dynamic parallelism is not supported");
  LATENT_CHECK(l.grid.x > 0 && l.grid.y > 0 && l.grid.z > 0, "SIMT kernel \"", name,
               "\" launched with an empty grid ", triple(l.grid),
               " (cudaErrorInvalidConfiguration on a GPU)");
  LATENT_CHECK(l.block.x > 0 && l.block.y > 0 && l.block.z > 0, "SIMT kernel \"", name,
               "\" launched with an empty block ", triple(l.block),
               " (cudaErrorInvalidConfiguration on a GPU)");
  const unsigned long long threads =
      static_cast<unsigned long long>(l.block.x) * l.block.y * l.block.z;
  LATENT_CHECK(threads <= kMaxThreadsPerBlock, "SIMT kernel \"", name,
               "\" launched with block ", triple(l.block), " of ", threads,
               " threads; the limit is ", kMaxThreadsPerBlock, " threads per block");
  const unsigned block[3] = {l.block.x, l.block.y, l.block.z};
  const unsigned grid[3] = {l.grid.x, l.grid.y, l.grid.z};
  for (int d = 0; d < 3; ++d) {
    LATENT_CHECK(block[d] <= kMaxBlockDim[d], "SIMT kernel \"", name, "\" launched with block ",
                 triple(l.block), ": dimension ", "xyz"[d], " is over its limit of ",
                 kMaxBlockDim[d]);
    LATENT_CHECK(grid[d] <= kMaxGridDim[d], "SIMT kernel \"", name, "\" launched with grid ",
                 triple(l.grid), ": dimension ", "xyz"[d], " is over its limit of ",
                 kMaxGridDim[d]);
  }
  const std::size_t shared_limit = max_dynamic_shared_bytes(l.kernel);
  LATENT_CHECK(l.dynamic_shared_bytes <= shared_limit, "SIMT kernel \"", name, "\" asks for ",
               l.dynamic_shared_bytes, " bytes of dynamic shared memory; its limit is ",
               shared_limit,
               " (raise it with cudaFuncSetAttribute(kernel, "
               "cudaFuncAttributeMaxDynamicSharedMemorySize, bytes), up to 232448)");
  LATENT_CHECK(is_valid_stream(l.stream), "SIMT kernel \"", name,
               "\" launched on a stream that does not exist (destroyed or never created)");
}

detail::BlockCounts run_block(const void* context, std::uint64_t b) {
  const KernelLaunch& l = *static_cast<const KernelLaunch*>(context);
  const std::uint64_t gx = l.grid.x;
  const std::uint64_t gy = l.grid.y;
  const uint3 block_index{static_cast<unsigned>(b % gx), static_cast<unsigned>(b / gx % gy),
                          static_cast<unsigned>(b / (gx * gy))};
  return detail::BlockRunner::for_this_thread().run(l, block_index);
}

ThreadOrder order_from_env() {
  const char* env = std::getenv("LATENT_SIMT_ORDER");
  if (env == nullptr || *env == 0) return ThreadOrder::rotate;
  for (ThreadOrder o : {ThreadOrder::ascending, ThreadOrder::descending, ThreadOrder::shuffle,
                        ThreadOrder::rotate})
    if (std::strcmp(env, thread_order_name(o)) == 0) return o;
  LATENT_FAIL("LATENT_SIMT_ORDER=", env,
              " is not one of ascending, descending, shuffle, rotate");
}

std::uint64_t seed_from_env() {
  const char* env = std::getenv("LATENT_SIMT_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : 0x5eed;
}

std::atomic<unsigned>& order_setting() {
  static std::atomic<unsigned> order{static_cast<unsigned>(order_from_env())};
  return order;
}

std::atomic<std::uint64_t> g_launches{0};

}  // namespace

void set_thread_order(ThreadOrder order) {
  order_setting().store(static_cast<unsigned>(order), std::memory_order_relaxed);
}

ThreadOrder thread_order() {
  return static_cast<ThreadOrder>(order_setting().load(std::memory_order_relaxed));
}

const char* thread_order_name(ThreadOrder order) {
  switch (order) {
    case ThreadOrder::ascending: return "ascending";
    case ThreadOrder::descending: return "descending";
    case ThreadOrder::shuffle: return "shuffle";
    case ThreadOrder::rotate: return "rotate";
  }
  return "?";
}

void run_kernel(const KernelLaunch& launch_in) {
  KernelLaunch launch = launch_in;
  if (launch.name == nullptr) launch.name = "(unnamed)";
  validate(launch);
  static const std::uint64_t seed = seed_from_env();
  const std::uint64_t k = g_launches.fetch_add(1, std::memory_order_relaxed);
  launch.order = static_cast<unsigned>(thread_order());
  launch.launch_index = k;
  launch.order_seed = seed + k;
  detail::GridJob job;
  job.count = static_cast<std::uint64_t>(launch.grid.x) * launch.grid.y * launch.grid.z;
  job.run_block = &run_block;
  job.context = &launch;
  detail::WorkerPool::instance().run(job);
  t_last_stats = LaunchStats{job.counts.blocks, job.counts.threads, job.counts.fibers,
                             job.os_threads};
  if (job.error) std::rethrow_exception(job.error);
}

LaunchStats last_launch_stats() { return t_last_stats; }

std::size_t fiber_stack_bytes() {
  static const std::size_t bytes = [] {
    std::size_t kib = 64;
    if (const char* env = std::getenv("LATENT_SIMT_STACK_KIB")) {
      const long n = std::atol(env);
      if (n >= 16) kib = static_cast<std::size_t>(n);
    }
    return kib * 1024;
  }();
  return bytes;
}

}  // namespace latent::simt
