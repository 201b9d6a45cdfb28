// Walks K same-shape strided operands in row-major order, for the cpu backend.
//
// Dimensions of size 1 are dropped and adjacent dimensions that are contiguous with respect
// to every operand are merged first, so a contiguous tensor is one flat loop. The body gets
// the element offsets of a run of `n` elements along the innermost dimension and the
// operands' strides along it; runs are spread over OpenMP threads when there is enough work.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "latent/tensor.h"

namespace latent::cpu {

constexpr std::int64_t kParallelThreshold = 1 << 15;

template <int K>
struct StridedLoop {
  Shape shape;                       // coalesced; empty means a single element
  std::array<Shape, K> strides;

  bool empty = false;                // a dimension of size 0: there is nothing to walk

  StridedLoop(const Shape& full_shape, const std::array<Shape, K>& full_strides) {
    for (const std::int64_t d : full_shape) empty = empty || d == 0;
    if (empty) return;
    for (std::size_t d = 0; d < full_shape.size(); ++d) {
      if (full_shape[d] == 1) continue;
      bool merge = !shape.empty();
      for (int k = 0; k < K && merge; ++k) {
        merge = strides[k].back() == full_strides[k][d] * full_shape[d];
      }
      if (merge) {
        shape.back() *= full_shape[d];
        for (int k = 0; k < K; ++k) strides[k].back() = full_strides[k][d];
      } else {
        shape.push_back(full_shape[d]);
        for (int k = 0; k < K; ++k) strides[k].push_back(full_strides[k][d]);
      }
    }
  }

  // body(const std::array<int64_t, K>& offsets, int64_t n, const std::array<int64_t, K>& steps)
  template <class Body>
  void run(Body&& body) const {
    if (empty) return;
    std::array<std::int64_t, K> steps{};
    if (shape.empty()) {
      std::array<std::int64_t, K> zero{};
      body(zero, 1, steps);
      return;
    }
    const std::int64_t rank = static_cast<std::int64_t>(shape.size());
    const std::int64_t inner = shape.back();
    for (int k = 0; k < K; ++k) steps[k] = strides[k].back();
    std::int64_t outer = 1;
    for (std::int64_t d = 0; d + 1 < rank; ++d) outer *= shape[d];
    const std::int64_t total = outer * inner;

    if (outer == 1) {
      constexpr std::int64_t kChunk = 1 << 14;
      const std::int64_t chunks = (inner + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (total > kParallelThreshold)
      for (std::int64_t c = 0; c < chunks; ++c) {
        std::array<std::int64_t, K> offsets;
        for (int k = 0; k < K; ++k) offsets[k] = c * kChunk * steps[k];
        const std::int64_t n = std::min(kChunk, inner - c * kChunk);
        body(offsets, n, steps);
      }
      return;
    }
#pragma omp parallel for schedule(static) if (total > kParallelThreshold)
    for (std::int64_t o = 0; o < outer; ++o) {
      std::array<std::int64_t, K> offsets{};
      std::int64_t rest = o;
      for (std::int64_t d = rank - 2; d >= 0; --d) {
        const std::int64_t index = rest % shape[d];
        rest /= shape[d];
        for (int k = 0; k < K; ++k) offsets[k] += index * strides[k][d];
      }
      body(offsets, inner, steps);
    }
  }
};

}  // namespace latent::cpu
