// The cpu reduce concept (src/backends/reduce.h): sums accumulated in double in a fixed
// order (so the result does not depend on the thread count) and the row argmax.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "backends/cpu/cpu.h"
#include "backends/cpu/strided_loop.h"
#include "backends/dispatch.h"
#include "backends/reduce.h"
#include "backends/registry.h"

namespace latent::cpu {
namespace {

using backend::dispatch_all;
using backend::dispatch_floating;
using backend::ptr;

// Visits the runs of a single-operand loop in order, on the calling thread.
template <class Body>
void walk_sequential(const StridedLoop<1>& loop, Body&& body) {
  if (loop.empty) return;
  if (loop.shape.empty()) {
    body(0, 1, 1);
    return;
  }
  const std::size_t rank = loop.shape.size();
  const std::int64_t inner = loop.shape.back(), step = loop.strides[0].back();
  std::vector<std::int64_t> index(rank, 0);
  std::int64_t offset = 0;
  while (true) {
    body(offset, inner, step);
    std::int64_t d = static_cast<std::int64_t>(rank) - 2;
    for (; d >= 0; --d) {
      offset += loop.strides[0][d];
      if (++index[d] < loop.shape[d]) break;
      offset -= loop.strides[0][d] * loop.shape[d];
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

void sum(const Tensor& x, const Tensor& out) {
  // Split x's dims into kept (out size > 1) and reduced (out size 1, x size > 1).
  Shape kept_shape, kept_strides, reduced_shape, reduced_strides;
  for (std::int64_t d = 0; d < x.dim(); ++d) {
    if (x.shape()[d] == 1) continue;
    if (out.shape()[d] == 1) {
      reduced_shape.push_back(x.shape()[d]);
      reduced_strides.push_back(x.strides()[d]);
    } else {
      kept_shape.push_back(x.shape()[d]);
      kept_strides.push_back(x.strides()[d]);
    }
  }
  const StridedLoop<1> reduced(reduced_shape, {reduced_strides});
  const std::int64_t outputs = out.numel();
  const std::int64_t per_output = shape_numel(reduced_shape);
  dispatch_floating(x.dtype(), "sum", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(x);
    T* o = ptr<T>(out);
    // Sum of the reduced block starting at `base`, accumulated in double, in a fixed order.
    auto reduce_block = [&](std::int64_t base) {
      double acc = 0.0;
      walk_sequential(reduced, [&](std::int64_t off, std::int64_t n, std::int64_t step) {
        const T* p = in + base + off;
        if (step == 1) {
          for (std::int64_t j = 0; j < n; ++j) acc += p[j];
        } else {
          for (std::int64_t j = 0; j < n; ++j) acc += p[j * step];
        }
      });
      return acc;
    };
    auto output_base = [&](std::int64_t index) {
      std::int64_t base = 0;
      for (std::int64_t d = static_cast<std::int64_t>(kept_shape.size()) - 1; d >= 0; --d) {
        base += (index % kept_shape[d]) * kept_strides[d];
        index /= kept_shape[d];
      }
      return base;
    };
    if (outputs == 1 && reduced.shape.size() <= 1 && per_output > kParallelThreshold) {
      // One long contiguous-or-strided run: fixed-size chunks summed in parallel, then
      // combined in chunk order, so the result does not depend on the thread count.
      const std::int64_t step = reduced.shape.empty() ? 1 : reduced.strides[0][0];
      constexpr std::int64_t kChunk = 1 << 13;
      const std::int64_t chunks = (per_output + kChunk - 1) / kChunk;
      std::vector<double> partial(chunks);
#pragma omp parallel for schedule(static)
      for (std::int64_t c = 0; c < chunks; ++c) {
        const std::int64_t begin = c * kChunk, end = std::min(per_output, begin + kChunk);
        double acc = 0.0;
        for (std::int64_t j = begin; j < end; ++j) acc += in[j * step];
        partial[c] = acc;
      }
      double total = 0.0;
      for (double v : partial) total += v;
      o[0] = static_cast<T>(total);
      return;
    }
    // Each output's sum is one chain of dependent double additions. Outputs are taken
    // kInterleaved at a time through the same walk, so that their chains overlap in the
    // pipeline (a bias gradient: 64 channels of 6,272 terms each); every output still adds
    // its terms in the walk's order, so the result is the same as one output at a time.
    constexpr std::int64_t kInterleaved = 8;
    const std::int64_t groups = outputs / kInterleaved;
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold && groups > 1)
    for (std::int64_t group = 0; group < groups; ++group) {
      std::int64_t bases[kInterleaved];
      double acc[kInterleaved] = {};
      for (std::int64_t j = 0; j < kInterleaved; ++j) bases[j] = output_base(group * kInterleaved + j);
      walk_sequential(reduced, [&](std::int64_t off, std::int64_t n, std::int64_t step) {
        for (std::int64_t e = 0; e < n; ++e)
          for (std::int64_t j = 0; j < kInterleaved; ++j) acc[j] += in[bases[j] + off + e * step];
      });
      for (std::int64_t j = 0; j < kInterleaved; ++j)
        o[group * kInterleaved + j] = static_cast<T>(acc[j]);
    }
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold && outputs - groups * kInterleaved > 1)
    for (std::int64_t i = groups * kInterleaved; i < outputs; ++i) {
      o[i] = static_cast<T>(reduce_block(output_base(i)));
    }
  });
}

void argmax_rows(const Tensor& x, const Tensor& out) {
  const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
  std::int32_t* o = ptr<std::int32_t>(out);
  dispatch_floating(x.dtype(), "argmax", [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(x);
#pragma omp parallel for if (x.numel() > kParallelThreshold)
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* row = in + r * cols;
      std::int64_t best = 0;
      // NaN beats every number, as in torch.argmax; ties keep the earlier column.
      for (std::int64_t c = 1; c < cols && row[best] == row[best]; ++c)
        if (row[c] > row[best] || row[c] != row[c]) best = c;
      o[r] = static_cast<std::int32_t>(best);
    }
  });
}

}  // namespace

void register_reduce() {
  backend::Registry<backend::ReduceTable>::add(DeviceType::cpu, {&sum, &argmax_rows});
}

}  // namespace latent::cpu
