// Device-side value checks: a kernel that meets bad input records where, in one 64-bit word
// per stream, and the host reads that word when it next waits for the stream anyway (once
// per training step) instead of after every op. Docs: docs/architecture.md (checks).
//
//   word = min over failures of (site << 40 | position)      initially kCheckPassed
//
// atomicMin makes the recorded failure deterministic whatever the thread order: the check
// enqueued first (lowest site) wins, and within it the lowest position. The host keeps, per
// site, the message to format from the position (src/backends/cuda/device.cu).
//
//   check_finite_kernel        reads 4 or 8 bytes per element, 1 compare; writes nothing
//   check_index_range_kernel   reads 4 bytes per element, 2 compares; writes nothing
// Both are grid-stride loops over a capped grid; the word is written only on failure.
#pragma once

#include <cstdint>

#include "kernels/device.cuh"
#include "kernels/grid.cuh"

namespace latent::kernels {

constexpr unsigned long long kCheckPassed = ~0ull;
constexpr int kCheckPositionBits = 40;  // positions below 2^40 (a trillion elements)

// Where a kernel reports: the stream's word and this check's site number. A null word turns
// the check off.
struct CheckSite {
  unsigned long long* word = nullptr;
  unsigned long long site = 0;
};

__device__ __forceinline__ void check_fail(CheckSite s, std::int64_t position) {
  if (s.word == nullptr) return;
  const unsigned long long p = static_cast<unsigned long long>(position) &
                               ((1ull << kCheckPositionBits) - 1);
  atomicMin(s.word, (s.site << kCheckPositionBits) | p);
}

template <class T>
__device__ __forceinline__ bool is_finite_value(T x) {
  return x - x == T(0);  // false for NaN and ±Inf, without a library call
}

template <class T>
__global__ void check_finite_kernel(const T* x, std::int64_t n, CheckSite site) {
  for (std::int64_t i = grid_stride_begin(); i < n; i += grid_stride_step()) {
    if (!is_finite_value(x[i])) check_fail(site, i);
  }
}

// A template (instantiated for int32 only) so that two translation units including this
// header do not both define the kernel's host stub.
template <class Index>
__global__ void check_index_range_kernel(const Index* indices, std::int64_t n,
                                         std::int64_t low, std::int64_t high, CheckSite site) {
  for (std::int64_t i = grid_stride_begin(); i < n; i += grid_stride_step()) {
    const std::int64_t v = indices[i];
    if (v < low || v >= high) check_fail(site, i);
  }
}

}  // namespace latent::kernels
