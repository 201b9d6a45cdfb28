// Purpose-broken kernels, kept as negative cases of the SIMT executor's checkers
// (docs/simt.md, "The executor as a sanitizer"). Each is a classic shared-memory bug:
//   missing_barrier        a thread reads its neighbour's slot before the barrier
//   off_by_one_store       each thread writes one element too many, into its neighbour's part
//   reused_buffer          a buffer is refilled with no barrier after the last read of it
//   global_missing_barrier the missing barrier on global memory
// Under ThreadSanitizer (tools/test --sanitize) each is a latent::Error naming the kernel,
// the address, both threads and both source lines. In every build each gives different
// answers under different thread orders (the executor rotates them), so a test that checks
// its result fails.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernels/device.cuh"
#include "simt/launch.h"
#include "simt/sanitizer.h"

namespace {

using latent::simt::launch;
using latent::simt::ThreadOrder;

constexpr unsigned kThreads = 64;

__global__ void missing_barrier(int* out) {
  __shared__ int slot[kThreads];
  const unsigned t = threadIdx.x;
  slot[t] = static_cast<int>(t) + 1;  // the write
  // __syncthreads() missing here
  out[t] = slot[(t + 1) % kThreads];  // the read of another thread's slot
}

__global__ void off_by_one_store(int* out) {
  __shared__ int part[kThreads * 4 + 1];
  const unsigned t = threadIdx.x;
  for (unsigned i = 0; i <= 4; ++i) part[t * 4 + i] = static_cast<int>(t);  // `<=`: one too many
  __syncthreads();
  out[t] = part[t * 4 + 4];
}

__global__ void reused_buffer(int* out) {
  __shared__ int buffer[kThreads];
  const unsigned t = threadIdx.x;
  buffer[t] = static_cast<int>(t);
  __syncthreads();
  const int neighbour = buffer[(t + 1) % kThreads];  // the last read of phase one
  // __syncthreads() missing here: phase two refills the buffer
  buffer[t] = neighbour * 10;
  __syncthreads();
  out[t] = buffer[t];
}

__global__ void global_missing_barrier(int* scratch, int* out) {
  const unsigned t = threadIdx.x;
  scratch[t] = static_cast<int>(t) * 3;
  out[t] = scratch[kThreads - 1 - t];
}

std::vector<int> run(const char* name, void (*kernel)(int*), ThreadOrder order) {
  const ThreadOrder saved = latent::simt::thread_order();
  latent::simt::set_thread_order(order);
  std::vector<int> out(kThreads, 0);
  try {
    launch(name, dim3(1), dim3(kThreads), 0, nullptr, kernel, out.data());
  } catch (...) {
    latent::simt::set_thread_order(saved);
    throw;
  }
  latent::simt::set_thread_order(saved);
  return out;
}

std::string error_of(const char* name, void (*kernel)(int*)) {
  try {
    run(name, kernel, ThreadOrder::ascending);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

#define EXPECT_RACE(name, kernel, memory)                                                \
  do {                                                                                   \
    const std::string m = error_of(name, kernel);                                        \
    EXPECT_NE(m.find("SIMT kernel \"" name "\""), std::string::npos) << m;               \
    EXPECT_NE(m.find("data race on " memory " memory at 0x"), std::string::npos) << m;   \
    EXPECT_NE(m.find("thread ("), std::string::npos) << m;                               \
    EXPECT_NE(m.find("simt_sanitize_test.cpp:"), std::string::npos) << m;                \
    std::cout << "      caught: " << m << "\n";                                          \
  } while (0)

TEST(SimtSanitize, MissingBarrier) {
  if (latent::simt::kDetectsRaces) {
    EXPECT_RACE("missing_barrier", missing_barrier, "shared");
  }
  EXPECT_NE(run("missing_barrier", missing_barrier, ThreadOrder::ascending),
            run("missing_barrier", missing_barrier, ThreadOrder::descending));
}

TEST(SimtSanitize, OffByOneSharedIndex) {
  if (latent::simt::kDetectsRaces) {
    EXPECT_RACE("off_by_one_store", off_by_one_store, "shared");
  }
  EXPECT_NE(run("off_by_one_store", off_by_one_store, ThreadOrder::ascending),
            run("off_by_one_store", off_by_one_store, ThreadOrder::descending));
}

TEST(SimtSanitize, ReusedSharedBufferWithoutBarrier) {
  if (latent::simt::kDetectsRaces) {
    EXPECT_RACE("reused_buffer", reused_buffer, "shared");
  }
  EXPECT_NE(run("reused_buffer", reused_buffer, ThreadOrder::ascending),
            run("reused_buffer", reused_buffer, ThreadOrder::descending));
}

TEST(SimtSanitize, MissingBarrierOnGlobalMemory) {
  std::vector<int> scratch(kThreads, 0), up(kThreads), down(kThreads);
  const ThreadOrder saved = latent::simt::thread_order();
  if (latent::simt::kDetectsRaces) {
    latent::simt::set_thread_order(ThreadOrder::ascending);
    std::string m = "(no error)";
    try {
      launch("global_missing_barrier", dim3(1), dim3(kThreads), 0, nullptr,
             global_missing_barrier, scratch.data(), up.data());
    } catch (const std::exception& e) {
      m = e.what();
    }
    EXPECT_NE(m.find("data race on global memory at 0x"), std::string::npos) << m;
    EXPECT_NE(m.find("simt_sanitize_test.cpp:"), std::string::npos) << m;
    std::cout << "      caught: " << m << "\n";
  }
  for (auto [order, out] : {std::pair{ThreadOrder::ascending, &up},
                            std::pair{ThreadOrder::descending, &down}}) {
    latent::simt::set_thread_order(order);
    std::fill(scratch.begin(), scratch.end(), -1);
    try {
      launch("global_missing_barrier", dim3(1), dim3(kThreads), 0, nullptr,
             global_missing_barrier, scratch.data(), out->data());
    } catch (const std::exception&) {
      // under ThreadSanitizer the race is an error; the order check is for the other builds
    }
  }
  latent::simt::set_thread_order(saved);
  if (!latent::simt::kDetectsRaces) EXPECT_NE(up, down);
}

// Correct kernels do not trip the detector: a barrier or a warp primitive orders the
// accesses (the whole Simt* suite runs under ThreadSanitizer too).
__global__ void barrier_then_read(int* out) {
  __shared__ int slot[kThreads];
  const unsigned t = threadIdx.x;
  slot[t] = static_cast<int>(t) + 1;
  __syncthreads();
  out[t] = slot[(t + 1) % kThreads];
  __syncthreads();
  slot[t] = 0;  // reuse after a barrier
  const unsigned lane = t % 32, base = t - lane;
  slot[t] = static_cast<int>(lane);
  __syncwarp();
  out[t] += slot[base + (lane + 1) % 32];
}

TEST(SimtSanitize, CorrectKernelsPass) {
  for (ThreadOrder order : {ThreadOrder::ascending, ThreadOrder::descending, ThreadOrder::shuffle}) {
    const std::vector<int> out = run("barrier_then_read", barrier_then_read, order);
    for (unsigned t = 0; t < kThreads; ++t)
      EXPECT_EQ(out[t], static_cast<int>((t + 1) % kThreads + 1 + (t % 32 + 1) % 32));
  }
  if (!latent::simt::kDetectsRaces)
    std::cout << "      (this build has no race detector: the data-race errors are checked by "
                 "tools/test --sanitize)\n";
}

}  // namespace
