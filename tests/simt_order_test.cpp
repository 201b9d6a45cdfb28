// The SIMT executor as a checker: the order threads run in between barriers
// (ThreadOrder, LATENT_SIMT_ORDER) and static __shared__ memory poisoned before every block.
// docs/simt.md, "The executor as a sanitizer".
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <numeric>
#include <vector>

#include "kernels/device.cuh"
#include "simt/launch.h"
#include "simt/sanitizer.h"

namespace {

using latent::simt::launch;
using latent::simt::ThreadOrder;

// Restores the process-wide order when a test ends.
struct OrderScope {
  ThreadOrder saved = latent::simt::thread_order();
  explicit OrderScope(ThreadOrder o) { latent::simt::set_thread_order(o); }
  ~OrderScope() { latent::simt::set_thread_order(saved); }
};

// Each thread takes a ticket when it starts and again after a barrier: the tickets give the
// order threads ran in.
__global__ void record_order(unsigned* first, unsigned* second) {
  __shared__ unsigned ticket;
  if (threadIdx.x == 0) ticket = 0;
  __syncthreads();
  const unsigned a = atomicAdd(&ticket, 1u);
  __syncthreads();
  if (threadIdx.x == 0) ticket = 0;
  __syncthreads();
  second[threadIdx.x] = atomicAdd(&ticket, 1u);
  first[threadIdx.x] = a;
}

std::vector<unsigned> run_order(ThreadOrder order, unsigned n, std::vector<unsigned>* second) {
  OrderScope scope(order);
  std::vector<unsigned> first(n), after(n);
  launch("record_order", dim3(1), dim3(n), 0, nullptr, record_order, first.data(), after.data());
  if (second != nullptr) *second = after;
  return first;
}

TEST(SimtOrder, AscendingDescendingAndShuffle) {
  const unsigned n = 100;
  std::vector<unsigned> expected(n);
  std::iota(expected.begin(), expected.end(), 0u);
  std::vector<unsigned> second;
  EXPECT_EQ(run_order(ThreadOrder::ascending, n, &second), expected);
  EXPECT_EQ(second, expected);
  std::vector<unsigned> reversed(expected.rbegin(), expected.rend());
  EXPECT_EQ(run_order(ThreadOrder::descending, n, &second), reversed);
  EXPECT_EQ(second, reversed);
  const std::vector<unsigned> s1 = run_order(ThreadOrder::shuffle, n, nullptr);
  const std::vector<unsigned> s2 = run_order(ThreadOrder::shuffle, n, nullptr);
  EXPECT_NE(s1, expected);
  EXPECT_NE(s1, reversed);
  EXPECT_NE(s1, s2) << "a shuffle is new for every launch";
  std::vector<unsigned> sorted = s1;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, expected) << "a shuffle is a permutation";
}

TEST(SimtOrder, RotateChangesTheOrderFromOneLaunchToTheNext) {
  const unsigned n = 64;
  std::vector<std::vector<unsigned>> seen;
  OrderScope scope(ThreadOrder::rotate);
  for (int k = 0; k < 3; ++k) {
    std::vector<unsigned> first(n), after(n);
    launch("record_order", dim3(1), dim3(n), 0, nullptr, record_order, first.data(),
           after.data());
    seen.push_back(first);
  }
  EXPECT_NE(seen[0], seen[1]);
  EXPECT_NE(seen[1], seen[2]);
  EXPECT_NE(seen[0], seen[2]);
}

// A kernel whose answer depends on the order (a missing barrier between a write and another
// thread's read): ascending and descending give different answers, so a test fails.
__global__ void missing_barrier_result(int* out) {
  __shared__ int slot[64];
  const unsigned t = threadIdx.x;
  slot[t] = static_cast<int>(t) + 1;
  // __syncthreads() missing: thread t reads its neighbour's slot before or after it is written.
  out[t] = slot[(t + 1) % 64];
}

TEST(SimtOrder, AMissingBarrierGivesDifferentAnswersUnderDifferentOrders) {
  if (latent::simt::kDetectsRaces)
    GTEST_SKIP() << "under ThreadSanitizer the race is an error (SimtSanitize.MissingBarrier)";
  std::vector<int> up(64), down(64);
  {
    OrderScope scope(ThreadOrder::ascending);
    launch("missing_barrier_result", dim3(1), dim3(64), 0, nullptr, missing_barrier_result,
           up.data());
  }
  {
    OrderScope scope(ThreadOrder::descending);
    launch("missing_barrier_result", dim3(1), dim3(64), 0, nullptr, missing_barrier_result,
           down.data());
  }
  EXPECT_NE(up, down);
  // Ascending: thread t reads slot t+1 before thread t+1 wrote it: the poison (-1).
  EXPECT_EQ(up[0], -1);
  EXPECT_EQ(down[0], 2);
}

// Static shared memory is poisoned (0xff bytes: NaN, -1) before every block, also the
// second block on the same OS thread, which would otherwise see the first block's data.
__global__ void read_static_shared_first(std::uint32_t* seen_int, float* seen_float,
                                         double* seen_double) {
  __shared__ std::uint32_t words[128];
  __shared__ float floats[33];
  __shared__ double doubles[7];
  const unsigned t = threadIdx.x;
  const unsigned b = blockIdx.x;
  seen_int[b * 128 + t] = words[t];
  if (t < 33) seen_float[b * 33 + t] = floats[t];
  if (t < 7) seen_double[b * 7 + t] = doubles[t];
  __syncthreads();
  words[t] = t;
  if (t < 33) floats[t] = 1.0f;
  if (t < 7) doubles[t] = 2.0;
}

TEST(SimtShared, StaticSharedIsPoisonedAtTheStartOfEveryBlock) {
  const unsigned blocks = 8;
  std::vector<std::uint32_t> ints(blocks * 128, 0);
  std::vector<float> floats(blocks * 33, 0.0f);
  std::vector<double> doubles(blocks * 7, 0.0);
  launch("read_static_shared_first", dim3(blocks), dim3(128), 0, nullptr,
         read_static_shared_first, ints.data(), floats.data(), doubles.data());
  for (std::uint32_t v : ints) ASSERT_EQ(v, 0xffffffffu);
  for (float v : floats) ASSERT_TRUE(std::isnan(v));
  for (double v : doubles) ASSERT_TRUE(std::isnan(v));
}

}  // namespace
