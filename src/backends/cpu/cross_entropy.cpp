// Softmax cross-entropy on the cpu backend: plain loops over rows, OpenMP across rows, with
// the per-element formulas of kernels/cross_entropy.cuh (the online log-sum-exp) in double
// precision whatever the logits' dtype, so float32 results are the correctly rounded ones
// the kernels are checked against. docs/cross_entropy.md.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backends/cpu/cpu.h"
#include "backends/cross_entropy.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "kernels/cross_entropy.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;
using backend::ptr;

constexpr std::int64_t kParallelWork = 1 << 15;  // elements

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss,
                           const Tensor& lse, const backend::CheckMessage& target_message) {
  const std::int64_t rows = logits.size(0), K = logits.size(1);
  std::int64_t first_bad = rows;
  dispatch_floating(logits.dtype(), "cross_entropy_forward", [&](auto zero) {
    using T = decltype(zero);
    const T* x = ptr<T>(logits);
    const std::int32_t* t = ptr<std::int32_t>(targets);
    T* loss_out = ptr<T>(loss);
    T* lse_out = ptr<T>(lse);
#pragma omp parallel for reduction(min : first_bad) if (rows * K > kParallelWork)
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* row = x + r * K;
      kernels::LogSumExp<double> p = kernels::cross_entropy_empty<double>();
      for (std::int64_t k = 0; k < K; ++k) kernels::cross_entropy_add(p, double(row[k]));
      const std::int32_t target = t[r];
      const bool valid = target >= 0 && target < K;
      if (!valid) first_bad = std::min(first_bad, r);
      const double log_s = kernels::cross_entropy_log_sum(p);
      loss_out[r] = valid ? static_cast<T>(kernels::cross_entropy_loss(p.m, log_s,
                                                                        double(row[target])))
                          : static_cast<T>(NAN);
      lse_out[2 * r] = static_cast<T>(p.m);  // a logit: exact in T
      lse_out[2 * r + 1] = static_cast<T>(log_s);
    }
  });
  if (target_message && first_bad < rows) LATENT_FAIL(target_message(first_bad));
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& dloss, const Tensor& dlogits) {
  const std::int64_t rows = logits.size(0), K = logits.size(1);
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&](auto zero) {
    using T = decltype(zero);
    const T* x = ptr<T>(logits);
    const std::int32_t* t = ptr<std::int32_t>(targets);
    const T* l = ptr<T>(lse);
    const T* g = ptr<T>(dloss);
    T* out = ptr<T>(dlogits);
#pragma omp parallel for if (rows * K > kParallelWork)
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t target = t[r];
      const double x_t = target >= 0 && target < K ? double(x[r * K + target]) : NAN;
      const double m = l[2 * r], log_s = l[2 * r + 1], row_g = g[r];
      const double row_loss = kernels::cross_entropy_loss(m, log_s, x_t);
      for (std::int64_t k = 0; k < K; ++k) {
        out[r * K + k] = static_cast<T>(kernels::cross_entropy_gradient(
            double(x[r * K + k]), m, log_s, row_loss, row_g, k == target));
      }
    }
  });
}

}  // namespace

void register_cross_entropy() {
  backend::Registry<backend::CrossEntropyTable>::add(
      DeviceType::cpu, {&cross_entropy_forward, &cross_entropy_backward});
}

}  // namespace latent::cpu
