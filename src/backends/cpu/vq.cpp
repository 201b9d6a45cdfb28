// The cpu backend's vector-quantization primitives: the reference every cuda kernel of
// kernels/vq_argmin.cuh and kernels/vq_ema.cuh is tested against. Plain loops (OpenMP over
// independent rows or codes), sums accumulated in double in a fixed order, so the results
// do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "backends/dispatch.h"
#include "backends/cpu/cpu.h"
#include "backends/cpu/vector_math.h"
#include "backends/registry.h"
#include "backends/vq.h"
#include "kernels/vq_ema.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;
using backend::ptr;

constexpr std::int64_t kParallelWork = 1 << 15;

// s_ik = ‖e_k‖² − 2·z_i·e_k in double, summed over d in order; the first of equal values
// wins (lowest k). The whole definition of the cpu argmin: every answer below is this one.
template <class T>
double exact_score(const T* row, const T* e, double norm, std::int64_t D) {
  double dot = 0.0;
  for (std::int64_t d = 0; d < D; ++d) dot += double(row[d]) * e[d];
  return norm - 2.0 * dot;
}

// The definition over the codes `considered(k)` admits: the first k of the smallest exact
// score, or −1 when none is finite.
template <class T, class Considered>
std::int32_t exact_argmin(const T* row, const T* ep, const std::vector<double>& norms,
                          std::int64_t K, std::int64_t D, const Considered& considered) {
  double best = std::numeric_limits<double>::infinity();
  std::int64_t best_k = -1;
  for (std::int64_t k = 0; k < K; ++k) {
    if (!considered(k)) continue;
    const double s = exact_score(row, ep + k * D, norms[k], D);
    if (s < best) {
      best = s;
      best_k = k;
    }
  }
  return std::isfinite(best) ? static_cast<std::int32_t>(best_k) : -1;
}
constexpr auto every_code = [](std::int64_t) { return true; };

// Codes screened per block of the float pass: 128 floats of accumulators, eight AVX-512 or
// sixteen AVX2 registers, enough independent fma chains to hide the fma latency.
constexpr std::int64_t kScreenBlock = 128;

// The float screening pass for one row: scores[k] = fl(‖e_k‖²) − 2·z·e_k, the dot product an
// fma chain over d, vectorized across codes (the codebook transposed to [D, K padded]).
LATENT_CPU_VECTOR_CLONES
void screen_row(const float* row, std::int64_t D, const float* codes_t, const float* norms,
                std::int64_t k_padded, float* scores) {
  for (std::int64_t k0 = 0; k0 < k_padded; k0 += kScreenBlock) {
    float acc[kScreenBlock] = {};
    for (std::int64_t d = 0; d < D; ++d) {
      const float zd = row[d];
      const float* column = codes_t + d * k_padded + k0;
      for (std::int64_t j = 0; j < kScreenBlock; ++j) acc[j] = std::fma(zd, column[j], acc[j]);
    }
    for (std::int64_t j = 0; j < kScreenBlock; ++j) scores[k0 + j] = norms[k0 + j] - 2.0f * acc[j];
  }
}

// For float inputs the codes are first screened in float, then only the codes whose float
// score is within the float error of the best are scored exactly (exact_score). The float
// score of any code is within B of its exact score, where
//     B = (D + 4) · 2^−23 · (max_k ‖e_k‖² + 2·‖z‖·max_k ‖e_k‖) + D · 2^−126
// (the fma chain's γ_D·Σ|z_d·e_d| ≤ γ_D·‖z‖·‖e‖ by Cauchy–Schwarz, the norm's and the
// subtraction's roundings, underflow, and the exact score's own double roundings, all with
// room to spare). The exact winner k* then has float score ≤ min_k float score + 2B, so it is
// among the rescored codes, and so is every code tied with it: the answer, ties included, is
// the exact loop's. Rows where the float pass could overflow (bound ≥ 1e36) or meet a NaN
// are scored exactly throughout. Typically one or two codes per row are rescored; the float
// pass is K·D/16 AVX-512 fmas per row instead of K·D dependent double multiply-adds.
void argmin_screened(const float* zp, const float* ep, std::int64_t N, std::int64_t K,
                     std::int64_t D, const std::vector<double>& norms, std::int32_t* out) {
  const std::int64_t k_padded = (K + kScreenBlock - 1) / kScreenBlock * kScreenBlock;
  std::vector<float> codes_t(static_cast<std::size_t>(D * k_padded), 0.0f);
  std::vector<float> norms_f(static_cast<std::size_t>(k_padded),
                             std::numeric_limits<float>::infinity());
  double max_norm = 0.0;
  for (std::int64_t k = 0; k < K; ++k) {
    for (std::int64_t d = 0; d < D; ++d) codes_t[d * k_padded + k] = ep[k * D + d];
    norms_f[k] = static_cast<float>(norms[k]);
    max_norm = std::max(max_norm, norms[k]);  // NaN norms leave it; caught below
  }
  bool codebook_finite = true;
  for (std::int64_t k = 0; k < K; ++k) codebook_finite = codebook_finite && std::isfinite(norms[k]);
  const double max_length = std::sqrt(max_norm);
#pragma omp parallel if (N * K * D > kParallelWork)
  {
    std::vector<float> scores(static_cast<std::size_t>(k_padded));
#pragma omp for schedule(dynamic, 64)
    for (std::int64_t i = 0; i < N; ++i) {
      const float* row = zp + i * D;
      double row_norm = 0.0;
      for (std::int64_t d = 0; d < D; ++d) row_norm += double(row[d]) * row[d];
      const double scale = max_norm + 2.0 * std::sqrt(row_norm) * max_length;
      if (!(codebook_finite && scale < 1e36)) {
        out[i] = exact_argmin(row, ep, norms, K, D, every_code);
        continue;
      }
      screen_row(row, D, codes_t.data(), norms_f.data(), k_padded, scores.data());
      float lowest = scores[0];
      for (std::int64_t k = 1; k < K; ++k) lowest = std::min(lowest, scores[k]);
      const double bound = double(D + 4) * 0x1p-23 * scale + double(D) * 0x1p-126;
      const double threshold = double(lowest) + 2.0 * bound;
      out[i] = exact_argmin(row, ep, norms, K, D,
                            [&](std::int64_t k) { return double(scores[k]) <= threshold; });
    }
  }
}

void vq_argmin(const Tensor& z, const Tensor& codebook, const Tensor& indices,
               const Tensor& distances, const VqArgminOptions&) {
  const std::int64_t N = z.size(0), K = codebook.size(0), D = z.size(1);
  dispatch_floating(z.dtype(), "vq_argmin", [&](auto tag) {
    using T = decltype(tag);
    const T* zp = ptr<T>(z);
    const T* ep = ptr<T>(codebook);
    std::int32_t* out = ptr<std::int32_t>(indices);
    T* dist = distances.defined() ? ptr<T>(distances) : nullptr;
    std::vector<double> norms(static_cast<std::size_t>(K));
    for (std::int64_t k = 0; k < K; ++k) {
      double acc = 0.0;
      for (std::int64_t d = 0; d < D; ++d) acc += double(ep[k * D + d]) * ep[k * D + d];
      norms[k] = acc;
    }
    if constexpr (std::is_same_v<T, float>) {
      argmin_screened(zp, ep, N, K, D, norms, out);
    } else {
#pragma omp parallel for schedule(static) if (N * K * D > kParallelWork)
      for (std::int64_t i = 0; i < N; ++i) out[i] = exact_argmin(zp + i * D, ep, norms, K, D, every_code);
    }
    if (!dist) return;
#pragma omp parallel for schedule(static) if (N * D > kParallelWork)
    for (std::int64_t i = 0; i < N; ++i) {
      const std::int64_t best_k = out[i];
      if (best_k < 0) {
        dist[i] = std::numeric_limits<T>::quiet_NaN();
        continue;
      }
      double acc = 0.0;
      for (std::int64_t d = 0; d < D; ++d) {
        const double diff = double(zp[i * D + d]) - ep[best_k * D + d];
        acc += diff * diff;
      }
      dist[i] = static_cast<T>(acc);
    }
  });
}

void vq_gather(const Tensor& codebook, const Tensor& indices, const Tensor& out) {
  const std::int64_t N = indices.numel(), D = codebook.size(1);
  dispatch_floating(codebook.dtype(), "vq_gather", [&](auto tag) {
    using T = decltype(tag);
    const T* ep = ptr<T>(codebook);
    const std::int32_t* idx = ptr<std::int32_t>(indices);
    T* o = ptr<T>(out);
#pragma omp parallel for schedule(static) if (N * D > kParallelWork)
    for (std::int64_t i = 0; i < N; ++i)
      for (std::int64_t d = 0; d < D; ++d) o[i * D + d] = ep[std::int64_t{idx[i]} * D + d];
  });
}

void vq_code_counts(const Tensor& indices, const Tensor& counts) {
  const std::int64_t N = indices.numel(), K = counts.numel();
  const std::int32_t* idx = ptr<std::int32_t>(indices);
  std::int32_t* c = ptr<std::int32_t>(counts);
  for (std::int64_t k = 0; k < K; ++k) c[k] = 0;
  for (std::int64_t i = 0; i < N; ++i)
    if (idx[i] >= 0 && idx[i] < K) ++c[idx[i]];
}

// m_k accumulated in double over the rows in row order.
void vq_code_stats(const Tensor& z, const Tensor& indices, const Tensor& counts,
                   const Tensor& sums, VqStatsAlgorithm) {
  const std::int64_t N = z.size(0), D = z.size(1), K = counts.numel();
  vq_code_counts(indices, counts);
  dispatch_floating(z.dtype(), "vq_code_stats", [&](auto tag) {
    using T = decltype(tag);
    const T* zp = ptr<T>(z);
    const std::int32_t* idx = ptr<std::int32_t>(indices);
    std::vector<double> acc(static_cast<std::size_t>(K * D), 0.0);
    for (std::int64_t i = 0; i < N; ++i) {
      const std::int64_t k = idx[i];
      if (k < 0 || k >= K) continue;
      for (std::int64_t d = 0; d < D; ++d) acc[k * D + d] += zp[i * D + d];
    }
    T* s = ptr<T>(sums);
    for (std::int64_t e = 0; e < K * D; ++e) s[e] = static_cast<T>(acc[e]);
  });
}

void vq_ema_update(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                   const Tensor& counts, const Tensor& sums, double decay, double epsilon,
                   const backend::CheckMessage& count_message,
                   const backend::CheckMessage& sum_message) {
  const std::int64_t K = codebook.size(0), D = codebook.size(1);
  std::int64_t bad_count = -1, bad_sum = -1;  // the first non-finite new N_k and M element
  dispatch_floating(codebook.dtype(), "vq_ema_update", [&](auto tag) {
    using T = decltype(tag);
    T* e = ptr<T>(codebook);
    T* n = ptr<T>(ema_count);
    T* m = ptr<T>(ema_sum);
    const std::int32_t* c = ptr<std::int32_t>(counts);
    const T* s = ptr<T>(sums);
    const T keep = static_cast<T>(decay), take = static_cast<T>(1.0 - decay);
    double total = 0.0;
    for (std::int64_t k = 0; k < K; ++k) {
      n[k] = keep * n[k] + take * static_cast<T>(c[k]);
      if (bad_count < 0 && !std::isfinite(n[k])) bad_count = k;
      total += n[k];
    }
    const double scale = total > 0 ? total / (total + static_cast<double>(K) * epsilon) : 1.0;
    for (std::int64_t k = 0; k < K; ++k) {
      const T smoothed = static_cast<T>((n[k] + epsilon) * scale);
      for (std::int64_t d = 0; d < D; ++d) {
        const std::int64_t i = k * D + d;
        m[i] = keep * m[i] + take * s[i];
        if (bad_sum < 0 && !std::isfinite(m[i])) bad_sum = i;
        e[i] = m[i] / smoothed;
      }
    }
  });
  if (count_message && bad_count >= 0) LATENT_FAIL(count_message(bad_count));
  if (sum_message && bad_sum >= 0) LATENT_FAIL(sum_message(bad_sum));
}

void vq_revive(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
               const Tensor& z, double threshold, double reset_count, PhiloxKey key,
               const Tensor& revived) {
  const std::int64_t K = codebook.size(0), D = codebook.size(1), N = z.size(0);
  dispatch_floating(codebook.dtype(), "vq_revive", [&](auto tag) {
    using T = decltype(tag);
    T* e = ptr<T>(codebook);
    T* n = ptr<T>(ema_count);
    T* m = ptr<T>(ema_sum);
    const T* zp = ptr<T>(z);
    std::int32_t* flag = ptr<std::int32_t>(revived);
    const T limit = static_cast<T>(threshold), reset = static_cast<T>(reset_count);
    for (std::int64_t k = 0; k < K; ++k) {
      flag[k] = n[k] < limit ? 1 : 0;
      if (!flag[k]) continue;
      const T* row = zp + kernels::vq_revival_row(key.seed, key.offset, k, N) * D;
      for (std::int64_t d = 0; d < D; ++d) {
        e[k * D + d] = row[d];
        m[k * D + d] = reset * row[d];
      }
      n[k] = reset;
    }
  });
}

}  // namespace

void register_vq() {
  backend::Registry<backend::VqTable>::add(
      DeviceType::cpu, {&vq_argmin, &vq_gather, &vq_code_counts, &vq_code_stats,
                        &vq_ema_update, &vq_revive});
}

}  // namespace latent::cpu
