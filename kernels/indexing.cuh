// StridedIndex: maps the linear (row-major) index of an element of a shape to its offset in
// a strided view. Passed to kernels by value (it lives in the kernel's parameter space), so
// any view — transposed, narrowed, broadcast with stride 0 — can be read without a copy.
//
// Cost: one division and one modulo per dimension per element; kernels take a contiguous
// fast path when every operand is contiguous and skip this entirely. In 64-bit integers the
// division is a call to a ~70-instruction software routine on a GPU; in 32-bit integers it is
// a short inline sequence. So each strided kernel has two instances, Index = int64_t and
// Index = int32_t, and the host picks the 32-bit one whenever every extent fits
// (index32_fits below): the 64-bit one runs only past 2^31 elements or offsets.
#pragma once

#include <cstdint>
#include <initializer_list>

#include "kernels/host_device.cuh"

namespace latent::kernels {

constexpr int kMaxDims = 8;

template <class Index>
struct StridedIndexT {
  int rank = 0;
  Index shape[kMaxDims] = {};
  Index strides[kMaxDims] = {};

  // Unrolled over kMaxDims so that shape[d] and strides[d] are read at constant indices from
  // the kernel's parameters: a run-time index would copy them to local memory (a stack frame).
  LATENT_HOST_DEVICE Index offset(Index linear) const {
    Index result = 0;
    LATENT_UNROLL
    for (int d = kMaxDims - 1; d >= 0; --d) {
      if (d < rank) {
        const Index size = shape[d];
        result += (linear % size) * strides[d];
        linear /= size;
      }
    }
    return result;
  }

  // The largest |offset| this index can produce (every coordinate at its end).
  LATENT_HOST_DEVICE std::int64_t max_offset() const {
    std::int64_t total = 0;
    for (int d = 0; d < rank; ++d) {
      const std::int64_t s = strides[d] < 0 ? -static_cast<std::int64_t>(strides[d])
                                            : static_cast<std::int64_t>(strides[d]);
      total += (static_cast<std::int64_t>(shape[d]) - 1) * s;
    }
    return total;
  }
};

using StridedIndex = StridedIndexT<std::int64_t>;
using StridedIndex32 = StridedIndexT<std::int32_t>;

// Counts, offsets and grid-stride indices of a 32-bit instance stay below this: 2^31 − 1 less
// 2^26 of headroom, so that i + grid_stride_step() cannot overflow (grids are far smaller).
constexpr std::int64_t kIndex32Limit = 2147483647 - (std::int64_t{1} << 26);

// Whether the 32-bit instance may run: `count` (elements, work items) and every operand's
// largest offset below kIndex32Limit.
inline bool index32_fits(std::int64_t count, std::initializer_list<StridedIndex> operands = {}) {
  if (count < 0 || count > kIndex32Limit) return false;
  for (const StridedIndex& s : operands) {
    for (int d = 0; d < s.rank; ++d)
      if (s.shape[d] > kIndex32Limit) return false;
    if (s.max_offset() > kIndex32Limit) return false;
  }
  return true;
}

// The same index in 32-bit integers; only after index32_fits said yes.
inline StridedIndex32 to_index32(const StridedIndex& s) {
  StridedIndex32 out;
  out.rank = s.rank;
  for (int d = 0; d < s.rank; ++d) {
    out.shape[d] = static_cast<std::int32_t>(s.shape[d]);
    out.strides[d] = static_cast<std::int32_t>(s.strides[d]);
  }
  return out;
}

}  // namespace latent::kernels
