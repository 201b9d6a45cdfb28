// Vector quantization ops (include/latent/vq.h): validation, allocation, dispatch to the cpu
// or cuda primitives (src/backends/vq.h), and the autograd of the quantizer.
//
// The gradients of vector_quantize, for z [N, D], codebook E [K, D], idx = argmin:
//   z_q = E[idx] with the straight-through estimator: dL/dz += dL/dz_q (the argmin is
//       treated as the identity; E gets nothing through z_q)
//   codebook loss  Lc = mean ‖sg[z] − E[idx]‖²:  dLc/de_k = 2/(N·D)·Σ_{i: idx_i=k} (e_k − z_i)
//   commitment     Lm = mean ‖z − sg[E[idx]]‖²:  dLm/dz_i = 2/(N·D)·(z_i − e_{idx_i})
// The codebook gradient is the backward of vq_gather: a per-code sum of gradient rows, the
// same deterministic kernel as the EMA statistics.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/check.h"
#include "backends/registry.h"
#include "backends/vq.h"
#include "kernels/vq_ema.cuh"
#include "latent/autograd.h"
#include "latent/ops.h"
#include "latent/vq.h"
#include "ops/checks.h"

namespace latent {
namespace {

void check_matrix(const Tensor& t, const char* op, const char* name) {
  LATENT_CHECK(t.defined(), op, ": ", name, " is undefined");
  LATENT_CHECK(t.dim() == 2, op, ": ", name, " must be a matrix [rows, D], got ",
               shape_str(t.shape()));
  LATENT_CHECK(is_floating(t.dtype()), op, ": ", name, " must be float32 or float64, got ",
               dtype_name(t.dtype()));
}

void check_same(const Tensor& a, const Tensor& b, const char* op, const char* a_name,
                const char* b_name) {
  LATENT_CHECK(a.device() == b.device(), op, ": ", a_name, " is on ", a.device().str(), " but ",
               b_name, " is on ", b.device().str());
  LATENT_CHECK(a.dtype() == b.dtype(), op, ": ", a_name, " is ", dtype_name(a.dtype()), " but ",
               b_name, " is ", dtype_name(b.dtype()));
}

// Indices: int32 [N] with every value in [0, K) (a device-side check: ops/checks.h).
void check_indices(const Tensor& indices, std::int64_t K, const char* op) {
  LATENT_CHECK(indices.defined(), op, ": indices are undefined");
  LATENT_CHECK(indices.dtype() == DType::i32, op, ": indices must be int32, got ",
               dtype_name(indices.dtype()));
  LATENT_CHECK(indices.dim() == 1, op, ": indices must be a vector [N], got ",
               shape_str(indices.shape()));
  ops::check_index_range(indices, 0, K, detail::concat(op, ": "),
                         detail::concat(" is out of range for a codebook of ", K, " codes"));
}

void check_finite(const Tensor& t, const char* op, const char* name) {
  ops::check_finite(t, detail::concat(op, ": ", name));
}

// The z_q of the straight-through estimator: the values of `codes`, the gradient of `z`.
Tensor straight_through(const Tensor& z, const Tensor& codes) {
  return record(codes.detach(), "vq_straight_through", {z},
                [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

std::vector<double> host_counts(const Tensor& counts) {
  const std::vector<std::int32_t> c = counts.to_vector<std::int32_t>();
  return std::vector<double>(c.begin(), c.end());
}

}  // namespace

VqArgminResult vq_argmin(const Tensor& z_in, const Tensor& codebook_in,
                         const VqArgminOptions& options) {
  check_matrix(z_in, "vq_argmin", "z");
  check_matrix(codebook_in, "vq_argmin", "codebook");
  check_same(z_in, codebook_in, "vq_argmin", "z", "codebook");
  const std::int64_t N = z_in.size(0), D = z_in.size(1), K = codebook_in.size(0);
  LATENT_CHECK(K > 0, "vq_argmin: the codebook is empty (K = 0), shape ",
               shape_str(codebook_in.shape()));
  LATENT_CHECK(codebook_in.size(1) == D, "vq_argmin: z ", shape_str(z_in.shape()),
               " and codebook ", shape_str(codebook_in.shape()),
               " differ in the code dimension D");
  LATENT_CHECK(D > 0, "vq_argmin: the code dimension D is 0");
  LATENT_CHECK(K <= std::numeric_limits<std::int32_t>::max(), "vq_argmin: K = ", K,
               " codes do not fit int32 indices");
  NoGradGuard no_grad;
  const Tensor z = z_in.detach().contiguous(), codebook = codebook_in.detach().contiguous();
  check_finite(codebook, "vq_argmin", "codebook");

  VqArgminResult result;
  result.indices = empty({N}, DType::i32, z.device());
  if (options.distances) result.distances = empty({N}, z.dtype(), z.device());
  if (N == 0) return result;
  backend::lookup<backend::VqTable>(z.device()).argmin(z, codebook, result.indices, result.distances, options);
  // A row whose distances are all non-finite gets index −1 from the kernel.
  const Tensor indices = result.indices;
  backend::lookup<backend::CheckTable>(z.device())
      .index_range(indices, 0, K, [shape = z.shape()](std::int64_t i) {
        return detail::concat("vq_argmin: row ", i, " of z ", shape_str(shape),
                              " has no finite distance to the codebook (a NaN or Inf in z)");
      });
  return result;
}

Tensor l2_normalize_rows(const Tensor& x, double eps) {
  LATENT_CHECK(x.defined() && x.dim() >= 1, "l2_normalize_rows: expected a tensor of rank >= 1");
  const Tensor norm = sqrt(sum(square(x), {-1}, true));
  return div(x, clamp(norm, eps, std::numeric_limits<double>::infinity()));
}

Tensor vq_gather(const Tensor& codebook, const Tensor& indices) {
  check_matrix(codebook, "vq_gather", "codebook");
  LATENT_CHECK(indices.defined() && indices.device() == codebook.device(),
               "vq_gather: indices must be on the codebook's device ", codebook.device().str());
  const std::int64_t K = codebook.size(0), D = codebook.size(1);
  check_indices(indices, K, "vq_gather");
  const Tensor idx = indices.contiguous();
  Tensor out;
  {
    NoGradGuard no_grad;
    const Tensor codes = codebook.detach().contiguous();
    out = empty({idx.numel(), D}, codebook.dtype(), codebook.device());
    backend::lookup<backend::VqTable>(codes.device()).gather(codes, idx, out);
  }
  return record(out, "vq_gather", {codebook}, [idx, K](const Tensor& dL_dzq) {
    return std::vector<Tensor>{vq_code_stats(dL_dzq.contiguous(), idx, K).sums};
  });
}

VqCodeStats vq_code_stats(const Tensor& z_in, const Tensor& indices,
                          std::int64_t codebook_size, VqStatsAlgorithm algorithm) {
  check_matrix(z_in, "vq_code_stats", "z");
  LATENT_CHECK(codebook_size > 0, "vq_code_stats: the codebook size must be positive, got ",
               codebook_size);
  LATENT_CHECK(indices.defined() && indices.device() == z_in.device(),
               "vq_code_stats: indices must be on z's device ", z_in.device().str());
  check_indices(indices, codebook_size, "vq_code_stats");
  LATENT_CHECK(indices.numel() == z_in.size(0), "vq_code_stats: ", indices.numel(),
               " indices for ", z_in.size(0), " rows of z ", shape_str(z_in.shape()));
  NoGradGuard no_grad;
  const Tensor z = z_in.detach().contiguous(), idx = indices.contiguous();
  VqCodeStats stats;
  stats.counts = empty({codebook_size}, DType::i32, z.device());
  stats.sums = empty({codebook_size, z.size(1)}, z.dtype(), z.device());
  backend::lookup<backend::VqTable>(z.device()).code_stats(z, idx, stats.counts, stats.sums, algorithm);
  return stats;
}

Tensor vq_code_counts(const Tensor& indices, std::int64_t codebook_size) {
  LATENT_CHECK(codebook_size > 0, "vq_code_counts: the codebook size must be positive, got ",
               codebook_size);
  check_indices(indices, codebook_size, "vq_code_counts");
  const Tensor idx = indices.contiguous();
  Tensor counts = empty({codebook_size}, DType::i32, idx.device());
  backend::lookup<backend::VqTable>(idx.device()).code_counts(idx, counts);
  return counts;
}

VectorQuantizeResult vector_quantize(const Tensor& z, const Tensor& codebook,
                                     const VectorQuantizeOptions& options) {
  check_matrix(z, "vector_quantize", "z");
  check_matrix(codebook, "vector_quantize", "codebook");
  check_same(z, codebook, "vector_quantize", "z", "codebook");
  LATENT_CHECK(z.size(0) > 0, "vector_quantize: z is empty, shape ", shape_str(z.shape()));
  LATENT_CHECK(std::isfinite(options.beta) && options.beta >= 0,
               "vector_quantize: beta must be a finite non-negative number, got ", options.beta);
  const std::int64_t K = codebook.size(0);
  const Tensor zn = options.cosine ? l2_normalize_rows(z) : z.contiguous();
  const Tensor codes = options.cosine ? l2_normalize_rows(codebook) : codebook;

  VectorQuantizeResult r;
  r.indices = vq_argmin(zn, codes).indices;
  const Tensor zq = vq_gather(codes, r.indices);
  r.z_q = straight_through(zn, zq);
  r.codebook_loss = mse_loss(zq, zn.detach());
  r.commitment_loss = mse_loss(zn, zq.detach());
  r.loss = add(r.codebook_loss, mul(r.commitment_loss, options.beta));
  r.counts = vq_code_counts(r.indices, K);
  return r;
}

void vq_ema_update(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                   const VqCodeStats& batch, const VqEmaOptions& options) {
  check_matrix(codebook, "vq_ema_update", "codebook");
  check_matrix(ema_sum, "vq_ema_update", "ema_sum");
  check_matrix(batch.sums, "vq_ema_update", "batch sums");
  check_same(codebook, ema_sum, "vq_ema_update", "codebook", "ema_sum");
  check_same(codebook, ema_count, "vq_ema_update", "codebook", "ema_count");
  check_same(codebook, batch.sums, "vq_ema_update", "codebook", "batch sums");
  const std::int64_t K = codebook.size(0);
  LATENT_CHECK(K > 0, "vq_ema_update: the codebook is empty");
  LATENT_CHECK(ema_sum.shape() == codebook.shape() && batch.sums.shape() == codebook.shape() &&
                   ema_count.shape() == Shape{K},
               "vq_ema_update: shapes disagree: codebook ", shape_str(codebook.shape()),
               ", ema_count ", shape_str(ema_count.shape()), " (want [", K, "]), ema_sum ",
               shape_str(ema_sum.shape()), ", batch sums ", shape_str(batch.sums.shape()));
  LATENT_CHECK(batch.counts.defined() && batch.counts.dtype() == DType::i32 &&
                   batch.counts.shape() == Shape{K} &&
                   batch.counts.device() == codebook.device(),
               "vq_ema_update: batch counts must be int32 [", K, "] on ", codebook.device().str());
  LATENT_CHECK(codebook.is_contiguous() && ema_count.is_contiguous() && ema_sum.is_contiguous(),
               "vq_ema_update: the codebook and its statistics are updated in place and must "
               "be contiguous");
  LATENT_CHECK(options.decay >= 0 && options.decay <= 1, "vq_ema_update: decay must lie in "
               "[0, 1], got ", options.decay);
  LATENT_CHECK(options.epsilon > 0 && std::isfinite(options.epsilon),
               "vq_ema_update: epsilon must be positive, got ", options.epsilon);
  NoGradGuard no_grad;
  const Tensor counts = batch.counts.contiguous(), sums = batch.sums.contiguous();
  // NaN or Inf in the statistics would spread into the codebook rows: the update checks what
  // it computes, in the same pass (a non-finite input gives a non-finite result there).
  const backend::CheckMessage count_message = [shape = ema_count.shape()](std::int64_t i) {
    return detail::concat("vq_ema_update: ema_count ", shape_str(shape),
                          " holds a non-finite value at element ", i,
                          " (the updated count is not finite)");
  };
  const backend::CheckMessage sum_message = [shape = ema_sum.shape()](std::int64_t i) {
    return detail::concat("vq_ema_update: ema_sum or the batch sums ", shape_str(shape),
                          " hold a non-finite value at element ", i,
                          " (the updated sum is not finite)");
  };
  backend::lookup<backend::VqTable>(codebook.device())
      .ema_update(codebook, ema_count, ema_sum, counts, sums, options.decay, options.epsilon,
                  count_message, sum_message);
}

Tensor vq_revive_dead_codes(const Tensor& codebook, const Tensor& ema_count,
                            const Tensor& ema_sum, const Tensor& z, double threshold,
                            double reset_count, PhiloxKey key) {
  check_matrix(codebook, "vq_revive_dead_codes", "codebook");
  check_matrix(z, "vq_revive_dead_codes", "z");
  check_same(codebook, z, "vq_revive_dead_codes", "codebook", "z");
  check_same(codebook, ema_sum, "vq_revive_dead_codes", "codebook", "ema_sum");
  check_same(codebook, ema_count, "vq_revive_dead_codes", "codebook", "ema_count");
  const std::int64_t K = codebook.size(0);
  LATENT_CHECK(z.size(1) == codebook.size(1), "vq_revive_dead_codes: z ", shape_str(z.shape()),
               " and codebook ", shape_str(codebook.shape()), " differ in D");
  LATENT_CHECK(z.size(0) > 0, "vq_revive_dead_codes: z has no rows to revive codes from");
  LATENT_CHECK(ema_sum.shape() == codebook.shape() && ema_count.shape() == Shape{K},
               "vq_revive_dead_codes: ema_count ", shape_str(ema_count.shape()), " / ema_sum ",
               shape_str(ema_sum.shape()), " do not match codebook ",
               shape_str(codebook.shape()));
  LATENT_CHECK(codebook.is_contiguous() && ema_count.is_contiguous() && ema_sum.is_contiguous(),
               "vq_revive_dead_codes: the codebook and its statistics must be contiguous");
  LATENT_CHECK(std::isfinite(threshold) && std::isfinite(reset_count) && reset_count > 0,
               "vq_revive_dead_codes: threshold ", threshold, " and reset count ", reset_count,
               " must be finite, the reset count positive");
  NoGradGuard no_grad;
  const Tensor rows = z.detach().contiguous();
  Tensor revived = empty({K}, DType::i32, codebook.device());
  backend::lookup<backend::VqTable>(codebook.device())
      .revive(codebook, ema_count, ema_sum, rows, threshold, reset_count, key, revived);
  return revived;
}

KMeansResult kmeans(const Tensor& x_in, std::int64_t clusters, std::int64_t iterations,
                    Generator& gen) {
  check_matrix(x_in, "kmeans", "x");
  LATENT_CHECK(clusters > 0, "kmeans: the number of clusters must be positive, got ", clusters);
  LATENT_CHECK(iterations >= 0, "kmeans: iterations must not be negative, got ", iterations);
  LATENT_CHECK(x_in.size(0) > 0, "kmeans: x has no rows");
  NoGradGuard no_grad;
  const Tensor x = x_in.detach().contiguous();
  const std::int64_t N = x.size(0), D = x.size(1);
  check_finite(x, "kmeans", "x");

  // K rows drawn with the revival formula: row ⌊u_k·N⌋ of the Philox stream `key` (the
  // restarts of empty clusters).
  auto draw_rows = [&](PhiloxKey key) {
    std::vector<std::int32_t> rows(static_cast<std::size_t>(clusters));
    for (std::int64_t k = 0; k < clusters; ++k)
      rows[k] = static_cast<std::int32_t>(kernels::vq_revival_row(key.seed, key.offset, k, N));
    return rows;
  };
  // k-means++ seeding (Arthur & Vassilvitskii, 2007), on the host: each next centre is a row
  // drawn with probability ∝ its squared distance to the nearest centre so far.
  const std::vector<double> host_rows = x.to(DType::f64).to_vector<double>();
  std::vector<std::int32_t> first(static_cast<std::size_t>(clusters));
  {
    std::vector<double> nearest(static_cast<std::size_t>(N),
                                std::numeric_limits<double>::infinity());
    std::int64_t pick = gen.next_int(N);
    for (std::int64_t k = 0; k < clusters; ++k) {
      first[k] = static_cast<std::int32_t>(pick);
      double total = 0.0;
      for (std::int64_t i = 0; i < N; ++i) {
        double d2 = 0.0;
        for (std::int64_t d = 0; d < D; ++d) {
          const double diff = host_rows[i * D + d] - host_rows[pick * D + d];
          d2 += diff * diff;
        }
        nearest[i] = std::min(nearest[i], d2);
        total += nearest[i];
      }
      if (k + 1 == clusters) break;
      if (!(total > 0)) {  // every row already sits on a centre
        pick = gen.next_int(N);
        continue;
      }
      const double target = gen.next_uniform() * total;
      double running = 0.0;
      pick = N - 1;
      for (std::int64_t i = 0; i < N; ++i) {
        running += nearest[i];
        if (running > target) {
          pick = i;
          break;
        }
      }
    }
  }
  Tensor centroids = vq_gather(x, from_vector(first, {clusters}).to(x.device())).contiguous();
  for (std::int64_t it = 0; it < iterations; ++it) {
    const Tensor idx = vq_argmin(x, centroids).indices;
    const VqCodeStats stats = vq_code_stats(x, idx, clusters);
    const std::vector<double> counts = host_counts(stats.counts);
    const std::vector<double> sums = stats.sums.to(DType::f64).to_vector<double>();
    const std::vector<std::int32_t> restart = draw_rows(gen.next());
    std::vector<double> next(static_cast<std::size_t>(clusters * D));
    for (std::int64_t k = 0; k < clusters; ++k) {
      for (std::int64_t d = 0; d < D; ++d) {
        next[k * D + d] = counts[k] > 0 ? sums[k * D + d] / counts[k]
                                        : host_rows[std::int64_t{restart[k]} * D + d];
      }
    }
    centroids = from_vector(next, {clusters, D}).to(x.dtype()).to(x.device());
  }
  KMeansResult result;
  result.centroids = centroids;
  result.counts = vq_code_counts(vq_argmin(x, centroids).indices, clusters);
  return result;
}

double codebook_perplexity(const Tensor& counts) {
  LATENT_CHECK(counts.defined() && counts.dim() == 1,
               "codebook_perplexity: expected a histogram [K]");
  const std::vector<double> c = counts.to(DType::f64).to_vector<double>();
  double total = 0.0;
  for (double v : c) {
    LATENT_CHECK(v >= 0 && std::isfinite(v), "codebook_perplexity: negative or non-finite count ",
                 v);
    total += v;
  }
  if (total <= 0) return 0.0;
  double entropy = 0.0;
  for (double v : c) {
    if (v > 0) entropy -= (v / total) * std::log(v / total);
  }
  return std::exp(entropy);
}

double codebook_utilization(const Tensor& counts) {
  LATENT_CHECK(counts.defined() && counts.dim() == 1 && counts.numel() > 0,
               "codebook_utilization: expected a non-empty histogram [K]");
  const std::vector<double> c = counts.to(DType::f64).to_vector<double>();
  double used = 0.0;
  for (double v : c) used += v > 0 ? 1.0 : 0.0;
  return used / static_cast<double>(c.size());
}

}  // namespace latent
