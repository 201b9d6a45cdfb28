// The SIMT executor's self-tests: CUDA's execution model (blocks, barriers, shared memory,
// warps, atomics) checked against its definition, every strictness error, and the runtime
// shim. The kernels here are written as kernels/*.cuh would be.
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/device.cuh"
#include "latent/error.h"

namespace {

using latent::simt::launch;

// The message of the latent::Error that `f` throws, or "" when it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const latent::Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_SIMT_ERROR(statement, kernel, fragment)                         \
  do {                                                                         \
    const std::string message_ = error_of([&] { statement; });                 \
    EXPECT_NE(message_.find(kernel), std::string::npos) << "message: " << message_; \
    EXPECT_NE(message_.find(fragment), std::string::npos) << "message: " << message_; \
  } while (0)

// ================================================================ block reductions

// A shared-memory tree over the next power of two: correct for any block size.
__global__ void block_sum_tree(const long long* in, long long* out, int n) {
  __shared__ long long partial[1024];
  const unsigned t = threadIdx.x;
  long long v = 0;
  for (int i = blockIdx.x * blockDim.x + t; i < n; i += gridDim.x * blockDim.x) v += in[i];
  partial[t] = v;
  __syncthreads();
  unsigned span = 1;
  while (span < blockDim.x) span *= 2;
  for (unsigned stride = span / 2; stride > 0; stride /= 2) {
    if (t < stride && t + stride < blockDim.x) partial[t] += partial[t + stride];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// Warp shuffles within each warp (the last one partial), then warp 0 sums the warp totals.
__global__ void block_sum_warps(const long long* in, long long* out, int n) {
  __shared__ long long warp_sums[32];
  const unsigned t = threadIdx.x, lane = t % 32, warp = t / 32;
  long long v = 0;
  for (int i = blockIdx.x * blockDim.x + t; i < n; i += gridDim.x * blockDim.x) v += in[i];
  const unsigned lanes_here = min(32u, blockDim.x - warp * 32);
  const unsigned mask = lanes_here == 32 ? 0xffffffffu : (1u << lanes_here) - 1;
  for (unsigned d = 16; d > 0; d /= 2) {
    const long long other = __shfl_down_sync(mask, v, d);
    if (lane + d < lanes_here) v += other;
  }
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const unsigned warps = (blockDim.x + 31) / 32;
    long long total = lane < warps ? warp_sums[lane] : 0;
    for (unsigned d = 16; d > 0; d /= 2) {
      const long long other = __shfl_down_sync(mask, total, d);
      if (lane + d < lanes_here) total += other;
    }
    if (lane == 0) out[blockIdx.x] = total;
  }
}

std::vector<long long> test_values(int n) {
  std::vector<long long> v(n);
  for (int i = 0; i < n; ++i) v[i] = static_cast<long long>((i * 2654435761u) % 2001) - 1000;
  return v;
}

TEST(SimtReduce, SharedMemoryTreeEveryBlockSize) {
  for (unsigned threads = 1; threads <= 1024; ++threads) {
    const int n = static_cast<int>(3 * threads + 7);
    const std::vector<long long> in = test_values(n);
    std::vector<long long> out(2, -1);
    launch("block_sum_tree", dim3(2), dim3(threads), 0, nullptr, block_sum_tree, in.data(),
           out.data(), n);
    ASSERT_EQ(out[0] + out[1], std::accumulate(in.begin(), in.end(), 0LL))
        << "block of " << threads << " threads";
  }
}

TEST(SimtReduce, WarpShuffleEveryBlockSize) {
  for (unsigned threads = 1; threads <= 1024; ++threads) {
    const int n = static_cast<int>(2 * threads + 5);
    const std::vector<long long> in = test_values(n);
    std::vector<long long> out(2, -1);
    launch("block_sum_warps", dim3(2), dim3(threads), 0, nullptr, block_sum_warps, in.data(),
           out.data(), n);
    ASSERT_EQ(out[0] + out[1], std::accumulate(in.begin(), in.end(), 0LL))
        << "block of " << threads << " threads";
  }
}

// ================================================================ shared memory

// Every block writes its own pattern, and its threads read each other's slots back after a
// barrier: a block that saw another block's writes (or lost its own) reports it.
__global__ void shared_isolation(int* ok) {
  __shared__ int slot[256];
  const unsigned t = threadIdx.x, peer = (t + 1) % blockDim.x;
  slot[t] = static_cast<int>(blockIdx.x * 1000 + t);
  __syncthreads();
  int good = slot[peer] == static_cast<int>(blockIdx.x * 1000 + peer);
  __syncthreads();
  slot[t] = -1 - static_cast<int>(blockIdx.x);
  __syncthreads();
  good &= slot[peer] == -1 - static_cast<int>(blockIdx.x);
  ok[blockIdx.x * blockDim.x + t] = good;
}

TEST(SimtShared, NoLeakBetweenBlocks) {
  const unsigned blocks = 512, threads = 64;
  std::vector<int> ok(blocks * threads, 0);
  launch("shared_isolation", dim3(blocks), dim3(threads), 0, nullptr, shared_isolation,
         ok.data());
  EXPECT_EQ(std::accumulate(ok.begin(), ok.end(), 0), static_cast<int>(blocks * threads));
}

// A static __shared__ variable in a __device__ helper is per block too.
__device__ int block_counter_increment() {
  __shared__ int counter;
  if (threadIdx.x == 0) counter = 0;
  __syncthreads();
  atomicAdd(&counter, 1);
  __syncthreads();
  return counter;
}

__global__ void shared_in_helper(int* out) {
  const int c = block_counter_increment();
  if (threadIdx.x == 0) out[blockIdx.x] = c;
}

TEST(SimtShared, StaticSharedInDeviceFunction) {
  std::vector<int> out(64, 0);
  launch("shared_in_helper", dim3(64), dim3(96), 0, nullptr, shared_in_helper, out.data());
  for (int c : out) EXPECT_EQ(c, 96);
}

__global__ void syncthreads_reductions(const int* predicate, int* out) {
  const unsigned t = threadIdx.x;
  const int p = predicate[t];
  const int count = __syncthreads_count(p);
  const int all = __syncthreads_and(p);
  const int any = __syncthreads_or(p);
  out[3 * t] = count;
  out[3 * t + 1] = all;
  out[3 * t + 2] = any;
}

TEST(SimtShared, SyncthreadsCountAndOr) {
  for (int pattern = 0; pattern < 3; ++pattern) {
    const int threads = 77;
    std::vector<int> predicate(threads), out(3 * threads, -1);
    for (int t = 0; t < threads; ++t)
      predicate[t] = pattern == 0 ? 0 : pattern == 1 ? 5 : (t % 3 == 0);
    const int expected_count =
        static_cast<int>(std::count_if(predicate.begin(), predicate.end(), [](int p) { return p; }));
    launch("syncthreads_reductions", dim3(1), dim3(threads), 0, nullptr, syncthreads_reductions,
           predicate.data(), out.data());
    for (int t = 0; t < threads; ++t) {
      EXPECT_EQ(out[3 * t], expected_count);
      EXPECT_EQ(out[3 * t + 1], expected_count == threads ? 1 : 0);
      EXPECT_EQ(out[3 * t + 2], expected_count > 0 ? 1 : 0);
    }
  }
}

// ================================================================ warp primitives

enum ShuffleKind { kIdx, kUp, kDown, kXor };

// The lanes that exist in the calling thread's warp (a partial last warp has fewer than 32:
// a mask naming the missing ones is an error).
__device__ unsigned present_lanes() {
  const unsigned lanes = min(32u, blockDim.x * blockDim.y * blockDim.z - threadIdx.x / 32 * 32);
  return lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
}

__global__ void shuffle_kernel(int kind, int param, int width, unsigned* out) {
  const unsigned t = threadIdx.x;
  const unsigned value = 1000 + t;
  const unsigned mask = present_lanes();
  unsigned r = 0;
  switch (kind) {
    case kIdx: r = __shfl_sync(mask, value, param, width); break;
    case kUp: r = __shfl_up_sync(mask, value, static_cast<unsigned>(param), width); break;
    case kDown: r = __shfl_down_sync(mask, value, static_cast<unsigned>(param), width); break;
    case kXor: r = __shfl_xor_sync(mask, value, param, width); break;
  }
  out[t] = r;
}

// The definitions in the CUDA C++ Programming Guide ("Warp Shuffle Functions"), lane by
// lane, with a lane operand reduced to its low five bits as the hardware does (PTX
// shfl.sync); a lane that does not exist (past the end of a partial warp) gives the
// executor's documented undefined value, all ones.
unsigned shuffle_reference(int kind, int param, int width, unsigned t, unsigned threads) {
  const unsigned lane = t % 32, warp_base = t - lane;
  const unsigned w = static_cast<unsigned>(width);
  const unsigned segment = lane / w * w;  // first lane of this lane's width-group
  unsigned src = lane;
  switch (kind) {
    case kIdx: src = segment + (static_cast<unsigned>(param) & (w - 1)); break;
    case kUp:
      if (lane - segment >= static_cast<unsigned>(param)) src = lane - param;
      break;
    case kDown:
      if (lane - segment + param < w) src = lane + param;
      break;
    case kXor: {
      const unsigned x = lane ^ (static_cast<unsigned>(param) & 31u);
      if (x < segment + w) src = x;  // earlier groups may be read, later ones may not
      break;
    }
  }
  const unsigned source_thread = warp_base + src;
  return source_thread < threads ? 1000 + source_thread : 0xffffffffu;
}

TEST(SimtWarp, ShufflesMatchTheirDefinition) {
  const int widths[] = {1, 2, 4, 8, 16, 32};
  const int lanes[] = {0, 1, 3, 5, 16, 31, 33, -1};
  const int deltas[] = {0, 1, 2, 3, 7, 8, 16, 31};
  const unsigned block_sizes[] = {32, 64, 45, 7};
  int checked = 0;
  for (unsigned threads : block_sizes) {
    for (int kind : {kIdx, kUp, kDown, kXor}) {
      for (int width : widths) {
        for (int i = 0; i < 8; ++i) {
          const int param = (kind == kUp || kind == kDown) ? deltas[i] : lanes[i];
          if (kind == kXor && param < 0) continue;
          std::vector<unsigned> out(threads, 0);
          launch("shuffle_kernel", dim3(1), dim3(threads), 0, nullptr, shuffle_kernel, kind,
                 param, width, out.data());
          for (unsigned t = 0; t < threads; ++t) {
            ASSERT_EQ(out[t], shuffle_reference(kind, param, width, t, threads))
                << "kind " << kind << " param " << param << " width " << width << " block "
                << threads << " thread " << t;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 20000);
}

// Shuffles move any trivially copyable value of up to 8 bytes.
struct Pair {
  float a;
  int b;
};

__global__ void shuffle_types(double* d, long long* ll, Pair* p, float* f) {
  const unsigned t = threadIdx.x;
  d[t] = __shfl_xor_sync(0xffffffffu, 0.5 + t, 1);
  ll[t] = __shfl_sync(0xffffffffu, (1LL << 40) + t, 3);
  p[t] = __shfl_down_sync(0xffffffffu, Pair{t * 0.25f, -static_cast<int>(t)}, 1);
  f[t] = __shfl_up_sync(0xffffffffu, static_cast<float>(t), 2, 8);
}

TEST(SimtWarp, ShufflesCarryEveryType) {
  std::vector<double> d(32);
  std::vector<long long> ll(32);
  std::vector<Pair> p(32);
  std::vector<float> f(32);
  launch("shuffle_types", dim3(1), dim3(32), 0, nullptr, shuffle_types, d.data(), ll.data(),
         p.data(), f.data());
  for (unsigned t = 0; t < 32; ++t) {
    EXPECT_EQ(d[t], 0.5 + (t ^ 1));
    EXPECT_EQ(ll[t], (1LL << 40) + 3);
    const unsigned src = t == 31 ? 31 : t + 1;
    EXPECT_EQ(p[t].a, src * 0.25f);
    EXPECT_EQ(p[t].b, -static_cast<int>(src));
    EXPECT_EQ(f[t], static_cast<float>(t % 8 >= 2 ? t - 2 : t));
  }
}

__global__ void vote_kernel(const int* predicate, unsigned* ballot, int* any, int* all,
                            unsigned* even_ballot, unsigned* sums) {
  const unsigned t = threadIdx.x, lane = t % 32;
  const int p = predicate[t];
  const unsigned mask = present_lanes();
  ballot[t] = __ballot_sync(mask, p);
  any[t] = __any_sync(mask, p);
  all[t] = __all_sync(mask, p);
  sums[t] = __reduce_add_sync(mask, t);
  // Only the even lanes take part; the odd ones are alive but not named.
  if (lane % 2 == 0) even_ballot[t] = __ballot_sync(0x55555555u & mask, p);
}

TEST(SimtWarp, VotesMatchTheirDefinition) {
  for (unsigned threads : {32u, 64u, 45u, 7u, 100u}) {
    std::vector<int> predicate(threads);
    for (unsigned t = 0; t < threads; ++t) predicate[t] = (t * 7 + 3) % 5 < 2;
    std::vector<unsigned> ballot(threads), even(threads, 0), sums(threads);
    std::vector<int> any(threads), all(threads);
    launch("vote_kernel", dim3(1), dim3(threads), 0, nullptr, vote_kernel, predicate.data(),
           ballot.data(), any.data(), all.data(), even.data(), sums.data());
    for (unsigned t = 0; t < threads; ++t) {
      const unsigned base = t / 32 * 32;
      unsigned expected = 0, expected_even = 0, sum = 0, present = 0;
      for (unsigned l = 0; l < 32 && base + l < threads; ++l) {
        present |= 1u << l;
        sum += base + l;
        if (predicate[base + l]) {
          expected |= 1u << l;
          if (l % 2 == 0) expected_even |= 1u << l;
        }
      }
      EXPECT_EQ(ballot[t], expected) << "thread " << t << " of " << threads;
      EXPECT_EQ(any[t], expected != 0 ? 1 : 0);
      EXPECT_EQ(all[t], expected == present ? 1 : 0);
      EXPECT_EQ(sums[t], sum);
      if (t % 2 == 0) EXPECT_EQ(even[t], expected_even) << "thread " << t << " of " << threads;
    }
  }
}

// __syncwarp orders shared-memory traffic inside a warp: each lane reads its neighbour's
// write after the warp barrier.
__global__ void syncwarp_kernel(int* out) {
  __shared__ int slot[64];
  const unsigned t = threadIdx.x;
  slot[t] = static_cast<int>(t * t);
  __syncwarp();
  out[t] = slot[(t / 32) * 32 + (t + 1) % 32];
}

TEST(SimtWarp, SyncwarpOrdersSharedMemory) {
  std::vector<int> out(64);
  launch("syncwarp_kernel", dim3(1), dim3(64), 0, nullptr, syncwarp_kernel, out.data());
  for (unsigned t = 0; t < 64; ++t) {
    const unsigned peer = (t / 32) * 32 + (t + 1) % 32;
    EXPECT_EQ(out[t], static_cast<int>(peer * peer));
  }
}

// Warps of one block proceed independently between barriers: a warp may shuffle while its
// neighbour never does, and lanes may leave early without disturbing the others' shuffles.
__global__ void divergent_warps(int* out) {
  const unsigned t = threadIdx.x, lane = t % 32;
  if (t / 32 == 1) {
    if (lane >= 16) return;  // exited lanes must not be named in the mask
    out[t] = __shfl_xor_sync(0x0000ffffu, static_cast<int>(t), 1);
  } else {
    out[t] = -static_cast<int>(t);
  }
}

TEST(SimtWarp, WarpsDivergeIndependently) {
  std::vector<int> out(96, 12345);
  launch("divergent_warps", dim3(1), dim3(96), 0, nullptr, divergent_warps, out.data());
  for (unsigned t = 0; t < 96; ++t) {
    if (t / 32 != 1) {
      EXPECT_EQ(out[t], -static_cast<int>(t));
    } else if (t % 32 < 16) {
      EXPECT_EQ(out[t], static_cast<int>(t ^ 1));
    } else {
      EXPECT_EQ(out[t], 12345);
    }
  }
}

// Lanes are numbered by the linear thread index x + y·Dx + z·Dx·Dy, as on a GPU: in a block
// of 8×4×3 threads a warp spans four rows.
__global__ void lanes_of_a_2d_block(unsigned* first_of_warp, unsigned* warp_bits) {
  const unsigned linear = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  first_of_warp[linear] = __shfl_sync(0xffffffffu, linear, 0);
  warp_bits[linear] = __ballot_sync(0xffffffffu, threadIdx.y % 2 == 1);
}

TEST(SimtWarp, LanesFollowTheLinearThreadIndex) {
  std::vector<unsigned> first(96), bits(96);
  launch("lanes_of_a_2d_block", dim3(1), dim3(8, 4, 3), 0, nullptr, lanes_of_a_2d_block,
         first.data(), bits.data());
  for (unsigned t = 0; t < 96; ++t) {
    EXPECT_EQ(first[t], t / 32 * 32);
    EXPECT_EQ(bits[t], 0xff00ff00u);  // rows y = 1 and 3 of each warp
  }
}

// ================================================================ atomics

struct Counters {
  int i;
  unsigned u;
  unsigned long long ull;
  float f;
  double d;
  int max_id;
  int min_id;
  unsigned cas_count;
  unsigned long long exch_sum;
  unsigned long long slot;
  unsigned wrap;
};

std::atomic<int> g_blocks_started{0};

__global__ void atomics_kernel(Counters* c, int spin_for_company) {
  const int id = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (threadIdx.x == 0) {
    g_blocks_started.fetch_add(1);
    // Block 0 waits (a bounded time) until another block has started, so that at least
    // two OS threads hammer the counters together.
    if (blockIdx.x == 0 && spin_for_company) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (g_blocks_started.load() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
    }
  }
  atomicAdd(&c->i, 1);
  atomicAdd(&c->u, 2u);
  atomicAdd(&c->ull, 3ull);
  atomicAdd(&c->f, 1.0f);
  atomicAdd(&c->d, 0.5);
  atomicMax(&c->max_id, id);
  atomicMin(&c->min_id, id);
  unsigned old = atomicOr(&c->cas_count, 0u), seen;  // a lock-free increment through CAS
  while ((seen = atomicCAS(&c->cas_count, old, old + 1)) != old) old = seen;
  atomicAdd(&c->exch_sum, atomicExch(&c->slot, static_cast<unsigned long long>(id + 1)));
  atomicInc(&c->wrap, 9u);
}

TEST(SimtAtomics, ExactUnderContentionFromSeveralOsThreads) {
  const unsigned blocks = 256, threads = 128, total = blocks * threads;
  Counters c{};
  c.min_id = 1 << 30;
  c.max_id = -1;
  g_blocks_started = 0;
  launch("atomics_kernel", dim3(blocks), dim3(threads), 0, nullptr, atomics_kernel, &c,
         latent::simt::os_thread_count() > 1 ? 1 : 0);
  EXPECT_EQ(c.i, static_cast<int>(total));
  EXPECT_EQ(c.u, 2 * total);
  EXPECT_EQ(c.ull, 3ull * total);
  EXPECT_EQ(c.f, static_cast<float>(total));
  EXPECT_EQ(c.d, 0.5 * total);
  EXPECT_EQ(c.max_id, static_cast<int>(total - 1));
  EXPECT_EQ(c.min_id, 0);
  EXPECT_EQ(c.cas_count, total);
  // Every id + 1 went through the slot once: what came out plus what is left is 0 + 1..N.
  EXPECT_EQ(c.exch_sum + c.slot, static_cast<unsigned long long>(total) * (total + 1) / 2);
  EXPECT_EQ(c.wrap, total % 10);
  const latent::simt::LaunchStats stats = latent::simt::last_launch_stats();
  EXPECT_EQ(stats.blocks, blocks);
  EXPECT_EQ(stats.threads, total);
  if (latent::simt::os_thread_count() > 1) EXPECT_GE(stats.os_threads, 2u);
}

TEST(SimtAtomics, MaxMinSignedAndUnsigned) {
  int i = 5;
  unsigned u = 5;
  long long ll = -3;
  unsigned long long ull = 7;
  EXPECT_EQ(atomicMax(&i, -10), 5);
  EXPECT_EQ(i, 5);
  EXPECT_EQ(atomicMin(&i, -10), 5);
  EXPECT_EQ(i, -10);
  EXPECT_EQ(atomicMax(&u, 0xffffffffu), 5u);
  EXPECT_EQ(u, 0xffffffffu);
  EXPECT_EQ(atomicMin(&ll, -4LL), -3);
  EXPECT_EQ(ll, -4);
  EXPECT_EQ(atomicMax(&ull, 9ull), 7ull);
  EXPECT_EQ(ull, 9ull);
  unsigned w = 0;
  EXPECT_EQ(atomicDec(&w, 3u), 0u);
  EXPECT_EQ(w, 3u);
  int misaligned[2] = {0, 0};
  auto* odd = reinterpret_cast<int*>(reinterpret_cast<char*>(misaligned) + 1);
  EXPECT_NE(error_of([&] { atomicAdd(odd, 1); }).find("misaligned"), std::string::npos);
}

// ================================================================ launch shapes

__global__ void saxpy_grid_stride(float a, const float* x, float* y, long long n) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] = a * x[i] + y[i];
}

TEST(SimtLaunch, GridStrideLoop) {
  for (long long n : {1LL, 31LL, 33LL, 1000003LL}) {
    std::vector<float> x(n), y(n);
    for (long long i = 0; i < n; ++i) {
      x[i] = static_cast<float>(i % 97);
      y[i] = static_cast<float>(i % 13);
    }
    launch("saxpy_grid_stride", dim3(7), dim3(128), 0, nullptr, saxpy_grid_stride, 2.0f,
           x.data(), y.data(), n);
    for (long long i = 0; i < n; ++i)
      ASSERT_EQ(y[i], 2.0f * static_cast<float>(i % 97) + static_cast<float>(i % 13)) << i;
  }
}

// Every (block, thread) of a 3-D grid of 3-D blocks runs exactly once with its own indices.
__global__ void index_coverage(int* hits, unsigned* bad) {
  const unsigned block =
      blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread =
      threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  atomicAdd(&hits[block * threads + thread], 1);
  if (threadIdx.x >= blockDim.x || threadIdx.y >= blockDim.y || threadIdx.z >= blockDim.z ||
      blockIdx.x >= gridDim.x || blockIdx.y >= gridDim.y || blockIdx.z >= gridDim.z)
    atomicAdd(bad, 1u);
}

TEST(SimtLaunch, ThreeDimensionalIndices) {
  const dim3 grid(3, 2, 4), block(5, 3, 2);
  std::vector<int> hits(3 * 2 * 4 * 5 * 3 * 2, 0);
  unsigned bad = 0;
  launch("index_coverage", grid, block, 0, nullptr, index_coverage, hits.data(), &bad);
  for (int h : hits) EXPECT_EQ(h, 1);
  EXPECT_EQ(bad, 0u);
}

// Each CUDA thread receives its own copy of the arguments.
__global__ void modifies_parameter(int* out, int base) {
  base += static_cast<int>(threadIdx.x);
  out[threadIdx.x] = base;
}

template <class T>
__global__ void scale_kernel(T* data, T factor, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i < n) data[i] *= factor;
}

TEST(SimtLaunch, ArgumentsAreCopiedPerThreadAndTemplatesWork) {
  std::vector<int> out(50, 0);
  launch("modifies_parameter", dim3(1), dim3(50), 0, nullptr, modifies_parameter, out.data(),
         100);
  for (int t = 0; t < 50; ++t) EXPECT_EQ(out[t], 100 + t);
  std::vector<double> data(10, 1.5);
  launch("scale_kernel<double>", dim3(2), dim3(8), 0, nullptr, scale_kernel<double>,
         data.data(), 2.0, 10);  // 2.0 converts to the parameter type, as with <<<>>>
  for (double v : data) EXPECT_EQ(v, 3.0);
}

// A kernel without barriers runs as a plain loop: one fiber per block; a kernel with a
// barrier gets a fiber per thread.
TEST(SimtLaunch, KernelsWithoutBarriersRunWithoutPerThreadFibers) {
  std::vector<float> x(10 * 256, 1.0f), y(10 * 256, 0.0f);
  launch("saxpy_grid_stride", dim3(10), dim3(256), 0, nullptr, saxpy_grid_stride, 1.0f,
         x.data(), y.data(), static_cast<long long>(x.size()));
  latent::simt::LaunchStats stats = latent::simt::last_launch_stats();
  EXPECT_EQ(stats.blocks, 10u);
  EXPECT_EQ(stats.threads, 2560u);
#if defined(__SANITIZE_THREAD__) || defined(LATENT_SANITIZE_THREAD)
  EXPECT_EQ(stats.fibers, 2560u) << "under ThreadSanitizer every thread has a fiber of its own";
#else
  EXPECT_EQ(stats.fibers, 10u);
#endif

  std::vector<int> ok(10 * 256);
  launch("shared_isolation", dim3(10), dim3(256), 0, nullptr, shared_isolation, ok.data());
  stats = latent::simt::last_launch_stats();
  EXPECT_EQ(stats.fibers, 2560u);
}

// Host threads may launch at the same time; their grids share the worker pool.
TEST(SimtLaunch, ConcurrentLaunchesFromSeveralHostThreads) {
  std::vector<std::thread> hosts;
  std::vector<int> sums(4, 0);
  for (int h = 0; h < 4; ++h) {
    hosts.emplace_back([h, &sums] {
      for (int rep = 0; rep < 5; ++rep) {
        std::vector<int> ok(32 * 64, 0);
        launch("shared_isolation", dim3(32), dim3(64), 0, nullptr, shared_isolation, ok.data());
        sums[h] += std::accumulate(ok.begin(), ok.end(), 0);
      }
    });
  }
  for (std::thread& t : hosts) t.join();
  for (int s : sums) EXPECT_EQ(s, 5 * 32 * 64);
}

// ================================================================ dynamic shared memory

__global__ void dynamic_sum(const double* in, double* out) {
  LATENT_DYNAMIC_SHARED(double, partial);
  const unsigned t = threadIdx.x;
  partial[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  if (t == 0) {
    double s = 0;
    for (unsigned i = 0; i < blockDim.x; ++i) s += partial[i];
    out[blockIdx.x] = s;
  }
}

TEST(SimtDynamicShared, BlockSum) {
  const unsigned blocks = 9, threads = 100;
  std::vector<double> in(blocks * threads), out(blocks);
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = 0.25 * static_cast<double>(i);
  launch("dynamic_sum", dim3(blocks), dim3(threads), threads * sizeof(double), nullptr,
         dynamic_sum, in.data(), out.data());
  for (unsigned b = 0; b < blocks; ++b) {
    double s = 0;
    for (unsigned t = 0; t < threads; ++t) s += in[b * threads + t];
    EXPECT_EQ(out[b], s);
  }
}

// One buffer carved into two arrays of different types, as kernels do with raw pointers.
__global__ void dynamic_carve(int* out, float* fresh) {
  LATENT_DYNAMIC_SHARED(float, smem);
  const unsigned t = threadIdx.x;
  if (t == 0) *fresh = smem[0];  // before any write: the executor's poison (NaN)
  __syncthreads();
  float* values = smem;
  int* counts = reinterpret_cast<int*>(static_cast<float*>(smem + blockDim.x));
  values[t] = static_cast<float>(t);
  counts[t] = static_cast<int>(2 * t);
  __syncthreads();
  out[t] = counts[blockDim.x - 1 - t] + static_cast<int>(values[t]);
}

TEST(SimtDynamicShared, CarvedIntoTypedArraysAndPoisoned) {
  std::vector<int> out(40);
  float fresh = 0.0f;
  launch("dynamic_carve", dim3(1), dim3(40), 40 * (sizeof(float) + sizeof(int)), nullptr,
         dynamic_carve, out.data(), &fresh);
  for (int t = 0; t < 40; ++t) EXPECT_EQ(out[t], 2 * (39 - t) + t);
  EXPECT_TRUE(std::isnan(fresh));
}

__global__ void dynamic_overread(float* out) {
  LATENT_DYNAMIC_SHARED(float, smem);
  smem[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = smem[threadIdx.x + 1];  // the last thread reads one past the end
}

__global__ void dynamic_negative_index(float* out) {
  LATENT_DYNAMIC_SHARED(float, smem);
  out[0] = (smem + 2)[-3];
}

__global__ void dynamic_raw_overwrite(int past) {
  LATENT_DYNAMIC_SHARED(int, smem);
  int* raw = smem;
  raw[threadIdx.x + past] = 7;  // unchecked: caught by the guard after the block
}

TEST(SimtStrict, DynamicSharedOutOfRange) {
  std::vector<float> out(32);
  EXPECT_SIMT_ERROR(launch("dynamic_overread", dim3(1), dim3(32), 32 * sizeof(float), nullptr,
                           dynamic_overread, out.data()),
                    "dynamic_overread", "element 32 is out of range");
  EXPECT_SIMT_ERROR(launch("dynamic_negative_index", dim3(1), dim3(1), 64, nullptr,
                           dynamic_negative_index, out.data()),
                    "dynamic_negative_index", "element -1 is out of range");
  EXPECT_SIMT_ERROR(launch("dynamic_raw_overwrite", dim3(1), dim3(16), 16 * sizeof(int),
                           nullptr, dynamic_raw_overwrite, 1),
                    "dynamic_raw_overwrite", "wrote past the end");
  // Within bounds, the same kernel is fine.
  EXPECT_NO_THROW(launch("dynamic_raw_overwrite", dim3(1), dim3(16), 16 * sizeof(int), nullptr,
                         dynamic_raw_overwrite, 0));
}

__global__ void big_dynamic(int* out) {
  LATENT_DYNAMIC_SHARED(int, smem);
  smem[threadIdx.x * 4000] = static_cast<int>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = smem[threadIdx.x * 4000];
}

TEST(SimtStrict, DynamicSharedOverTheDefaultLimitNeedsTheAttribute) {
  std::vector<int> out(4);
  const std::size_t bytes = 64 * 1024;
  EXPECT_SIMT_ERROR(launch("big_dynamic", dim3(1), dim3(4), bytes, nullptr, big_dynamic,
                           out.data()),
                    "big_dynamic", "cudaFuncAttributeMaxDynamicSharedMemorySize");
  ASSERT_EQ(cudaFuncSetAttribute(big_dynamic, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 static_cast<int>(bytes)),
            cudaSuccess);
  launch("big_dynamic", dim3(1), dim3(4), bytes, nullptr, big_dynamic, out.data());
  for (int t = 0; t < 4; ++t) EXPECT_EQ(out[t], t);
  EXPECT_EQ(cudaFuncSetAttribute(big_dynamic, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 300 * 1024),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
}

// ================================================================ strictness

__global__ void empty_kernel() {}

TEST(SimtStrict, LaunchShapesAGpuRejects) {
  EXPECT_SIMT_ERROR(launch("k1025", dim3(1), dim3(1025), 0, nullptr, empty_kernel), "k1025",
                    "the limit is 1024 threads per block");
  EXPECT_SIMT_ERROR(launch("k32x33", dim3(1), dim3(32, 33), 0, nullptr, empty_kernel),
                    "k32x33", "1056 threads");
  EXPECT_SIMT_ERROR(launch("kz65", dim3(1), dim3(1, 1, 65), 0, nullptr, empty_kernel), "kz65",
                    "dimension z is over its limit of 64");
  EXPECT_SIMT_ERROR(launch("kgrid_y", dim3(1, 65536), dim3(1), 0, nullptr, empty_kernel),
                    "kgrid_y", "dimension y is over its limit of 65535");
  EXPECT_SIMT_ERROR(launch("kgrid0", dim3(0), dim3(32), 0, nullptr, empty_kernel), "kgrid0",
                    "empty grid");
  EXPECT_SIMT_ERROR(launch("kgrid0y", dim3(4, 0), dim3(32), 0, nullptr, empty_kernel),
                    "kgrid0y", "empty grid");
  EXPECT_SIMT_ERROR(launch("kblock0", dim3(1), dim3(0), 0, nullptr, empty_kernel), "kblock0",
                    "empty block");
  auto* bogus = reinterpret_cast<cudaStream_t>(0x1234);
  EXPECT_SIMT_ERROR(launch("kstream", dim3(1), dim3(1), 0, bogus, empty_kernel), "kstream",
                    "stream that does not exist");
  EXPECT_NO_THROW(launch("k1024", dim3(1), dim3(1024), 0, nullptr, empty_kernel));
  EXPECT_NO_THROW(launch("k64z", dim3(1), dim3(4, 4, 64), 0, nullptr, empty_kernel));
}

__global__ void exit_before_barrier(int who) {
  if (static_cast<int>(threadIdx.x) == who) return;
  __syncthreads();
}

__global__ void barrier_count_mismatch() {
  __syncthreads();
  if (threadIdx.x < 16) __syncthreads();
}

__global__ void different_barriers() {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();
  } else {
    __syncthreads();
  }
}

TEST(SimtStrict, BarrierNotReachedByEveryThread) {
  EXPECT_SIMT_ERROR(launch("exit_before_barrier", dim3(1), dim3(64), 0, nullptr,
                           exit_before_barrier, 5),
                    "exit_before_barrier", "thread (5,0,0) exited without reaching __syncthreads()");
  EXPECT_SIMT_ERROR(launch("exit_before_barrier", dim3(3), dim3(64), 0, nullptr,
                           exit_before_barrier, 0),
                    "exit_before_barrier", "thread (0,0,0) exited without reaching");
  EXPECT_SIMT_ERROR(launch("barrier_count_mismatch", dim3(1), dim3(32), 0, nullptr,
                           barrier_count_mismatch),
                    "barrier_count_mismatch", "exited without reaching");
  EXPECT_SIMT_ERROR(launch("different_barriers", dim3(1), dim3(32), 0, nullptr,
                           different_barriers),
                    "different_barriers", "wait at different barriers");
  // Reached by every thread (of a block with one thread, too), barriers are fine.
  EXPECT_NO_THROW(launch("exit_before_barrier", dim3(2), dim3(64), 0, nullptr,
                         exit_before_barrier, -1));
  EXPECT_NO_THROW(launch("exit_before_barrier", dim3(2), dim3(1), 0, nullptr,
                         exit_before_barrier, -1));
}

__global__ void warp_disagreement(int* out) {
  const int v = static_cast<int>(threadIdx.x);
  out[threadIdx.x] = threadIdx.x % 2 == 0 ? __shfl_sync(0xffffffffu, v, 0)
                                          : __shfl_xor_sync(0xffffffffu, v, 1);
}

__global__ void mask_without_caller(int* out) {
  out[threadIdx.x] = __shfl_sync(0x1u, static_cast<int>(threadIdx.x), 0);
}

__global__ void bad_width(int* out) {
  out[threadIdx.x] = __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x), 0, 3);
}

__global__ void warp_waits_on_barrier(int* out) {
  int v = static_cast<int>(threadIdx.x);
  if (threadIdx.x == 1) {
    __syncthreads();
  } else {
    v = __shfl_sync(0xffffffffu, v, 0);
  }
  out[threadIdx.x] = v;
}

// A mask that names a lane which has exited, or one past the end of a partial warp, is an
// error (undefined on a GPU), not a silently smaller group.
__global__ void mask_names_exited_lane(int* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

__global__ void mask_names_absent_lane(int* out) {
  out[threadIdx.x] = static_cast<int>(__ballot_sync(0xffffffffu, 1));
}

TEST(SimtStrict, WarpPrimitivesMisused) {
  std::vector<int> out(32);
  EXPECT_SIMT_ERROR(launch("warp_disagreement", dim3(1), dim3(32), 0, nullptr,
                           warp_disagreement, out.data()),
                    "warp_disagreement", "the lanes of a warp disagree");
  EXPECT_SIMT_ERROR(launch("mask_without_caller", dim3(1), dim3(32), 0, nullptr,
                           mask_without_caller, out.data()),
                    "mask_without_caller", "does not name the calling lane");
  EXPECT_SIMT_ERROR(launch("bad_width", dim3(1), dim3(32), 0, nullptr, bad_width, out.data()),
                    "bad_width", "width 3 is not a power of two");
  EXPECT_SIMT_ERROR(launch("warp_waits_on_barrier", dim3(1), dim3(32), 0, nullptr,
                           warp_waits_on_barrier, out.data()),
                    "warp_waits_on_barrier", "deadlock");
  EXPECT_SIMT_ERROR(launch("mask_names_exited_lane", dim3(1), dim3(32), 0, nullptr,
                           mask_names_exited_lane, out.data()),
                    "mask_names_exited_lane", "names lane 16 (thread (16,0,0)), but that thread has exited");
  EXPECT_SIMT_ERROR(launch("mask_names_absent_lane", dim3(1), dim3(20), 0, nullptr,
                           mask_names_absent_lane, out.data()),
                    "mask_names_absent_lane", "names lane 20, which does not exist");
}

std::atomic<int> g_destroyed{0};

struct Tally {
  ~Tally() { g_destroyed.fetch_add(1); }
};

__global__ void throws_in_thread(int who, int with_barrier) {
  Tally tally;
  if (with_barrier) __syncthreads();
  if (static_cast<int>(threadIdx.x) == who) throw std::runtime_error("boom from a kernel");
  if (with_barrier) __syncthreads();
}

TEST(SimtStrict, ExceptionsReachTheCallerAndUnwindEveryThread) {
  g_destroyed = 0;
  EXPECT_SIMT_ERROR(launch("throws_in_thread", dim3(1), dim3(32), 0, nullptr, throws_in_thread,
                           3, 1),
                    "throws_in_thread", "thread (3,0,0): boom from a kernel");
  // Thread 3 unwound by its exception, the 31 others (suspended at the second barrier) by
  // the executor: every destructor ran.
  EXPECT_EQ(g_destroyed.load(), 32);
  g_destroyed = 0;
  EXPECT_SIMT_ERROR(launch("throws_in_thread", dim3(4), dim3(32), 0, nullptr, throws_in_thread,
                           7, 0),
                    "throws_in_thread", "thread (7,0,0): boom from a kernel");
  // And the executor is as good as new afterwards.
  std::vector<int> ok(8 * 64);
  launch("shared_isolation", dim3(8), dim3(64), 0, nullptr, shared_isolation, ok.data());
  EXPECT_EQ(std::accumulate(ok.begin(), ok.end(), 0), 8 * 64);
}

__global__ void launches_a_kernel() {
  launch("empty_kernel", dim3(1), dim3(1), 0, nullptr, empty_kernel);
}

TEST(SimtStrict, NoLaunchFromInsideAKernelNorPrimitivesOutsideOne) {
  EXPECT_SIMT_ERROR(launch("launches_a_kernel", dim3(1), dim3(1), 0, nullptr,
                           launches_a_kernel),
                    "launches_a_kernel", "dynamic parallelism is not supported");
  EXPECT_NE(error_of([] { __syncthreads(); }).find("outside a SIMT kernel"), std::string::npos);
  EXPECT_NE(error_of([] { __shfl_sync(0xffffffffu, 1, 0); }).find("outside a SIMT kernel"),
            std::string::npos);
}

// Every kernel runs on a fiber stack with a guard page below it: overflowing it kills the
// process with SIGSEGV at once rather than corrupting another thread's stack.
__device__ int recurse(int depth) {
  volatile char pad[1024];
  pad[0] = static_cast<char>(depth);
  return depth == 0 ? pad[0] : recurse(depth - 1) + pad[0];
}

__global__ void deep_recursion(int depth, int* out) { out[threadIdx.x] = recurse(depth); }

TEST(SimtStrict, StackOverflowHitsTheGuardPage) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "skipped under a sanitizer, whose own SIGSEGV handler reports the overflow";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::vector<int> out(2);
  EXPECT_NO_THROW(launch("deep_recursion", dim3(1), dim3(2), 0, nullptr, deep_recursion, 8,
                         out.data()));
  EXPECT_EXIT(launch("deep_recursion", dim3(1), dim3(2), 0, nullptr, deep_recursion, 10000,
                     out.data()),
              testing::KilledBySignal(SIGSEGV), "");
}

// ================================================================ runtime shim

__constant__ float g_coefficients[4];

__global__ void use_constants(float* out) { out[threadIdx.x] = g_coefficients[threadIdx.x]; }

TEST(SimtRuntime, MemoryStreamsAndEvents) {
  const std::size_t n = 1000;
  float* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, n * sizeof(float)), cudaSuccess);
  ASSERT_NE(device, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(device) % 256, 0u);
  std::vector<float> host(n), back(n, 0.0f);
  std::iota(host.begin(), host.end(), 0.0f);

  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t start = nullptr, stop = nullptr;
  ASSERT_EQ(cudaEventCreate(&start), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&stop), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(start, stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(device, host.data(), n * sizeof(float), cudaMemcpyHostToDevice,
                            stream),
            cudaSuccess);
  launch("saxpy_grid_stride", dim3(4), dim3(64), 0, stream, saxpy_grid_stride, 1.0f,
         host.data(), device, static_cast<long long>(n));
  ASSERT_EQ(cudaMemcpyAsync(back.data(), device, n * sizeof(float), cudaMemcpyDeviceToHost,
                            stream),
            cudaSuccess);
  ASSERT_EQ(cudaEventRecord(stop, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  ASSERT_EQ(cudaEventSynchronize(stop), cudaSuccess);
  float ms = -1.0f;
  ASSERT_EQ(cudaEventElapsedTime(&ms, start, stop), cudaSuccess);
  EXPECT_GE(ms, 0.0f);
  for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(back[i], 2.0f * static_cast<float>(i));

  float* copy = nullptr;
  ASSERT_EQ(cudaMallocAsync(&copy, n * sizeof(float), stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(copy, device, n * sizeof(float), cudaMemcpyDeviceToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(device, 0, n * sizeof(float), stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(back.data(), device, n * sizeof(float), cudaMemcpyDefault), cudaSuccess);
  for (float v : back) EXPECT_EQ(v, 0.0f);
  ASSERT_EQ(cudaMemcpy(back.data(), copy, n * sizeof(float), cudaMemcpyDeviceToHost),
            cudaSuccess);
  EXPECT_EQ(back[999], 1998.0f);

  const float coefficients[4] = {1.0f, -2.0f, 3.5f, 0.25f};
  ASSERT_EQ(cudaMemcpyToSymbol(g_coefficients, coefficients, sizeof(coefficients)), cudaSuccess);
  std::vector<float> used(4);
  launch("use_constants", dim3(1), dim3(4), 0, nullptr, use_constants, used.data());
  EXPECT_EQ(used[2], 3.5f);
  EXPECT_EQ(cudaMemcpyToSymbol(g_coefficients, coefficients, sizeof(coefficients), 4),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);

  EXPECT_EQ(cudaFreeAsync(copy, stream), cudaSuccess);
  EXPECT_EQ(cudaFree(device), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(start), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(stop), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

TEST(SimtRuntime, MisuseGivesCudasErrorCodes) {
  float host[4] = {};
  float* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, sizeof(host)), cudaSuccess);
  // A host pointer where a device pointer belongs; a copy running off the allocation.
  EXPECT_EQ(cudaMemcpy(host, host, sizeof(host), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // reading the last error resets it
  EXPECT_EQ(cudaMemcpy(device, host, 2 * sizeof(host), cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaPeekAtLastError(), cudaErrorInvalidValue);  // peeking does not
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemset(host, 0, sizeof(host)), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(device, host, 4, static_cast<cudaMemcpyKind>(7)),
            cudaErrorInvalidMemcpyDirection);
  EXPECT_EQ(cudaFree(host), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(device), cudaSuccess);
  EXPECT_EQ(cudaFree(device), cudaErrorInvalidValue);  // double free
  EXPECT_EQ(cudaFree(nullptr), cudaSuccess);
  void* huge = nullptr;
  EXPECT_EQ(cudaMalloc(&huge, std::size_t{1} << 62), cudaErrorMemoryAllocation);
  EXPECT_EQ(huge, nullptr);
  cudaStream_t destroyed = nullptr;
  ASSERT_EQ(cudaStreamCreate(&destroyed), cudaSuccess);
  ASSERT_EQ(cudaStreamDestroy(destroyed), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(destroyed), cudaErrorInvalidResourceHandle);
  cudaEvent_t untimed = nullptr, never = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&untimed, cudaEventDisableTiming), cudaSuccess);
  ASSERT_EQ(cudaEventCreate(&never), cudaSuccess);
  ASSERT_EQ(cudaEventRecord(untimed), cudaSuccess);
  float ms = 0;
  EXPECT_EQ(cudaEventElapsedTime(&ms, untimed, untimed), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventElapsedTime(&ms, never, never), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaEventDestroy(untimed), cudaSuccess);
  EXPECT_EQ(cudaEventDestroy(never), cudaSuccess);
  EXPECT_EQ(cudaSetDevice(1), cudaErrorInvalidDevice);
  cudaGetLastError();
}

TEST(SimtRuntime, DeviceProperties) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_EQ(count, 1);
  cudaDeviceProp prop;
  ASSERT_EQ(cudaGetDeviceProperties(&prop, 0), cudaSuccess);
  EXPECT_NE(std::string(prop.name).find("SIMT"), std::string::npos);
  EXPECT_EQ(prop.warpSize, 32);
  EXPECT_EQ(prop.maxThreadsPerBlock, 1024);
  EXPECT_EQ(prop.sharedMemPerBlock, 48u * 1024);
  EXPECT_EQ(prop.multiProcessorCount, static_cast<int>(latent::simt::os_thread_count()));
  EXPECT_GT(prop.totalGlobalMem, 0u);
  int sms = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  EXPECT_EQ(sms, prop.multiProcessorCount);
  EXPECT_EQ(cudaGetDeviceProperties(&prop, 1), cudaErrorInvalidDevice);
  std::size_t free_bytes = 0, total_bytes = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total_bytes), cudaSuccess);
  EXPECT_LE(free_bytes, total_bytes);
  cudaGetLastError();
}

TEST(SimtRuntime, ErrorStringsAndNames) {
  EXPECT_STREQ(cudaGetErrorString(cudaSuccess), "no error");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorMemoryAllocation), "out of memory");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorInvalidConfiguration),
               "invalid configuration argument");
  EXPECT_STREQ(cudaGetErrorString(cudaErrorLaunchFailure), "unspecified launch failure");
  EXPECT_STREQ(cudaGetErrorName(cudaErrorInvalidResourceHandle),
               "cudaErrorInvalidResourceHandle");
  EXPECT_EQ(static_cast<int>(cudaErrorInvalidConfiguration), 9);
  EXPECT_EQ(static_cast<int>(cudaErrorLaunchFailure), 719);
  for (cudaError_t e : {cudaErrorInitializationError, cudaErrorInvalidSymbol,
                        cudaErrorInvalidDevicePointer, cudaErrorInvalidMemcpyDirection,
                        cudaErrorInvalidDeviceFunction, cudaErrorNoDevice,
                        cudaErrorInvalidDevice, cudaErrorNotReady, cudaErrorIllegalAddress,
                        cudaErrorLaunchOutOfResources, cudaErrorMisalignedAddress,
                        cudaErrorNotSupported, cudaErrorUnknown}) {
    EXPECT_STRNE(cudaGetErrorString(e), "unrecognized error code") << e;
    EXPECT_EQ(std::string(cudaGetErrorName(e)).rfind("cudaError", 0), 0u) << e;
  }
  EXPECT_STREQ(cudaGetErrorString(static_cast<cudaError_t>(12345)), "unrecognized error code");
}

TEST(SimtRuntime, MathIntrinsics) {
  EXPECT_FLOAT_EQ(__expf(1.0f), std::exp(1.0f));
  EXPECT_FLOAT_EQ(__logf(8.0f), std::log(8.0f));
  EXPECT_FLOAT_EQ(__fdividef(1.0f, 4.0f), 0.25f);
  EXPECT_FLOAT_EQ(rsqrtf(4.0f), 0.5f);
  EXPECT_EQ(__float_as_uint(1.0f), 0x3f800000u);
  EXPECT_EQ(__popc(0xf0f0u), 8);
  EXPECT_EQ(__clz(1), 31);
  EXPECT_EQ(__ffs(8), 4);
  EXPECT_EQ(__brev(1u), 0x80000000u);
  EXPECT_EQ(min(3, 5u), 3u);
  EXPECT_EQ(max(-1.0f, 2.0), 2.0);
  EXPECT_EQ(__saturatef(1.5f), 1.0f);
}

}  // namespace
