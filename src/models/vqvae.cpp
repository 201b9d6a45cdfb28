// The VQ-VAE: the shared convolutional encoder/decoder around a VectorQuantizer, trained
// with a gradient codebook or an EMA codebook (with optional dead-code revival and k-means
// initialization). `latent train --model vqvae [--ema]`. Docs: docs/vq.md. The pictures
// (usage bars, token grids) are drawn by `latent train` (tools/train/vq_pictures.cpp).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "latent/autograd.h"
#include "latent/ops.h"
#include "latent/vq.h"

namespace latent::models {
namespace {

constexpr std::int64_t kGrid = 7;                                // the latent grid is 7×7
constexpr std::uint64_t kReviveStream = 0x7265766976652d31ull;   // Philox seeds, xor'ed with
constexpr std::uint64_t kKMeansStream = 0x6b6d65616e732d31ull;   // the run's seed

std::vector<double> host_doubles(const Tensor& t) {
  NoGradGuard no_grad;
  return t.detach().to(DType::f64).to_vector<double>();
}

// The fraction of codes of a usage window `last` (the last step each code was chosen, −1
// never) chosen within `window` steps up to `step` (−1: up to the latest entry).
double utilization_of(const std::vector<std::int32_t>& last, std::int64_t step,
                      std::int64_t window) {
  if (step < 0) step = *std::max_element(last.begin(), last.end());
  std::int64_t used = 0;
  for (std::int32_t s : last) used += (s >= 0 && step - s <= window) ? 1 : 0;
  return static_cast<double>(used) / static_cast<double>(last.size());
}

std::int64_t count_below(const std::vector<double>& counts, double threshold) {
  std::int64_t below = 0;
  for (double n : counts) below += n < threshold ? 1 : 0;
  return below;
}

// a·w + b·(1 − w) for a weight w that is exactly 0 or 1: a or b, value for value (x·1 = x,
// x·0 = ±0 and x ± 0 = x for every finite x; only a −0 could come back as +0).
Tensor select(const Tensor& w, const Tensor& a, const Tensor& b) {
  return add(mul(a, w), mul(b, rsub(1.0, w)));
}

}  // namespace

// ------------------------------------------------------------------ VectorQuantizer
VectorQuantizer::VectorQuantizer(const VectorQuantizerConfig& c, Generator& gen)
    : nn::Module("VectorQuantizer"), config_(c) {
  LATENT_CHECK(c.codebook_size > 0 && c.code_dim > 0, "VectorQuantizer: codebook size (",
               c.codebook_size, ") and code dimension (", c.code_dim, ") must be positive");
  LATENT_CHECK(std::isfinite(c.beta) && c.beta >= 0, "VectorQuantizer: beta must be >= 0, got ",
               c.beta);
  LATENT_CHECK(c.decay >= 0 && c.decay < 1, "VectorQuantizer: decay must lie in [0, 1), got ",
               c.decay);
  LATENT_CHECK(c.epsilon > 0, "VectorQuantizer: epsilon must be positive, got ", c.epsilon);
  LATENT_CHECK(c.dead_code_threshold >= 0 && std::isfinite(c.dead_code_threshold),
               "VectorQuantizer: the dead-code threshold must be >= 0, got ",
               c.dead_code_threshold);
  LATENT_CHECK(c.dead_code_threshold == 0 || c.ema,
               "VectorQuantizer: dead-code revival works on the EMA statistics; it needs the "
               "EMA codebook (--ema)");
  LATENT_CHECK(c.usage_window > 0 && c.kmeans_iterations >= 0,
               "VectorQuantizer: usage window must be positive and k-means iterations >= 0");
  const std::int64_t K = c.codebook_size, D = c.code_dim;
  // Small codes around the origin, as taming-transformers: U(−1/K, 1/K).
  const Tensor init = uniform({K, D}, -1.0 / K, 1.0 / K, gen);
  if (c.ema) {
    codebook_ = register_buffer("codebook", init);
    // N = 1, M = e: an unused code's count and sum decay together, so it stays where it is.
    ema_count_ = register_buffer("ema_count", ones({K}));
    ema_sum_ = register_buffer("ema_sum", init.clone());
  } else {
    codebook_ = register_parameter("codebook", init);
  }
  last_used_ = register_buffer("last_used", full({K}, -1.0, DType::i32));
  initialized_ = register_buffer("initialized", full({1}, c.kmeans_init ? 0.0 : 1.0, DType::i32));
  initialized_cache_ = c.kmeans_init ? 0 : 1;
}

bool VectorQuantizer::initialized() const {
  if (initialized_cache_ < 0) initialized_cache_ = initialized_.item() != 0.0 ? 1 : 0;
  return initialized_cache_ == 1;
}

// load_state_dict may have written another value into the buffer: read it when next asked.
void VectorQuantizer::on_state_loaded() { initialized_cache_ = -1; }

VectorQuantizeResult VectorQuantizer::quantize(const Tensor& z) {
  return vector_quantize(z, codebook_, {config_.beta, config_.cosine});
}

Tensor VectorQuantizer::nearest(const Tensor& z) {
  NoGradGuard no_grad;
  const Tensor rows = config_.cosine ? l2_normalize_rows(z) : z;
  const Tensor codes = config_.cosine ? l2_normalize_rows(codebook_) : codebook_;
  return vq_argmin(rows, codes).indices;
}

Tensor VectorQuantizer::lookup(const Tensor& indices) {
  const Tensor codes = config_.cosine ? l2_normalize_rows(codebook_) : codebook_;
  return vq_gather(codes, indices);
}

void VectorQuantizer::initialize_from(const Tensor& z) {
  if (initialized()) return;
  NoGradGuard no_grad;
  const Tensor rows = config_.cosine ? l2_normalize_rows(z.detach()) : z.detach();
  Generator gen(config_.seed ^ kKMeansStream);
  const KMeansResult km =
      kmeans(rows.to(codebook_.dtype()), config_.codebook_size, config_.kmeans_iterations, gen);
  codebook_.copy_(km.centroids);
  if (config_.ema) {
    // Consistent statistics: N_k = the cluster size (at least 1), M_k = N_k·e_k.
    const Tensor count = clamp(km.counts.to(codebook_.dtype()), 1.0, 1e30);
    ema_count_.copy_(count);
    ema_sum_.copy_(mul(km.centroids, count.unsqueeze(1)));
  }
  initialized_.fill_(1.0);
  initialized_cache_ = 1;
}

VectorQuantizer::UpdateReport VectorQuantizer::update(const Tensor& z, const Tensor& indices,
                                                      std::int64_t step) {
  NoGradGuard no_grad;
  UpdateReport report;
  const std::int64_t K = config_.codebook_size;
  Tensor counts;
  if (config_.ema) {
    const Tensor rows = config_.cosine ? l2_normalize_rows(z.detach()) : z.detach();
    const VqCodeStats stats = vq_code_stats(rows, indices, K);
    vq_ema_update(codebook_, ema_count_, ema_sum_, stats, {config_.decay, config_.epsilon});
    counts = stats.counts;
    if (config_.dead_code_threshold > 0) {
      report.count_before = ema_count_.clone();
      const PhiloxKey key{config_.seed ^ kReviveStream, static_cast<std::uint64_t>(step)};
      report.revived_mask =
          vq_revive_dead_codes(codebook_, ema_count_, ema_sum_, rows,
                               config_.dead_code_threshold, config_.dead_code_threshold, key);
      report.revived = sum(report.revived_mask.to(DType::f64));
      report.count_after = ema_count_.clone();
    }
  } else {
    counts = vq_code_counts(indices, K);
  }
  // The usage window, on the device: last_k ← step where code k was chosen (u_k = 1), else
  // last_k. In float64, exact for every int32: last·(1 − u) + u·step.
  const Tensor used = clamp(counts.to(DType::f64), 0.0, 1.0);
  last_used_.copy_(add(mul(last_used_.to(DType::f64), rsub(1.0, used)),
                       mul(used, static_cast<double>(step))));
  return report;
}

double VectorQuantizer::window_utilization(std::int64_t step) const {
  return utilization_of(last_used_.to_vector<std::int32_t>(), step, config_.usage_window);
}

std::int64_t VectorQuantizer::dead_codes() const {
  if (!config_.ema || config_.dead_code_threshold <= 0) return 0;
  return count_below(host_doubles(ema_count_), config_.dead_code_threshold);
}

// ------------------------------------------------------------------ VqVae
VqVae::VqVae(const VqVaeConfig& c, Generator& gen) : TrainableModel("VqVae"), config_(c) {
  LATENT_CHECK(c.loss == "mse" || c.loss == "bce", "VqVae: unknown loss '", c.loss,
               "' (mse or bce)");
  config_.net.latent_channels = c.quantizer.code_dim;
  encoder_ = register_module("encoder", std::make_shared<Encoder>(config_.net, gen));
  quantizer_ = register_module("quantizer", std::make_shared<VectorQuantizer>(c.quantizer, gen));
  decoder_ = register_module("decoder", std::make_shared<Decoder>(config_.net, gen));
  if (c.quantizer.ema && c.quantizer.dead_code_threshold > 0) {
    // Everything the "revived" metric and the usage picture read is a buffer, so a resumed
    // run logs what the uninterrupted one does.
    const Shape K{c.quantizer.codebook_size};
    last_revived_ = register_buffer("last_revived", scalar_tensor(0.0, DType::i32));
    revival_step_ = register_buffer("last_revival_step", scalar_tensor(-1.0, DType::i32));
    revival_before_ = register_buffer("last_revival_count_before", zeros(K));
    revival_after_ = register_buffer("last_revival_count_after", zeros(K));
    revival_mask_ = register_buffer("last_revival_mask", zeros(K, DType::i32));
  }
}

Tensor VqVae::encode_rows(const Tensor& images) {
  const Tensor z = encoder_->forward(images);  // [B, D, 7, 7]
  return z.permute({0, 2, 3, 1}).contiguous().reshape({-1, z.size(1)});
}

Tensor VqVae::decode_rows(const Tensor& rows, std::int64_t images) {
  const Tensor grid = rows.reshape({images, kGrid, kGrid, rows.size(1)}).permute({0, 3, 1, 2});
  return decoder_->forward(grid.contiguous());
}

TrainableModel::StepOutput VqVae::training_step(const Tensor& images, std::int64_t step) {
  const std::int64_t B = images.size(0);
  const Tensor rows = encode_rows(images);
  if (!quantizer_->initialized()) quantizer_->initialize_from(rows);
  const VectorQuantizeResult q = quantizer_->quantize(rows);
  const Tensor recon = reconstruction_loss(config_.loss, decode_rows(q.z_q, B), images);
  const double beta = config_.quantizer.beta;
  const Tensor vq_term = config_.quantizer.ema ? mul(q.commitment_loss, beta) : q.loss;
  pending_z_ = rows.detach();
  pending_indices_ = q.indices;

  // The metrics keep device tensors, and copies of the state that later steps overwrite in
  // place (the usage window, the EMA counts); they are read when logged.
  StepOutput out;
  out.loss = add(recon, vq_term);
  out.metrics["recon"] = deferred_item(recon);
  out.metrics["commitment"] = deferred_item(q.commitment_loss);
  if (!config_.quantizer.ema) out.metrics["codebook_loss"] = deferred_item(q.codebook_loss);
  const Tensor counts = q.counts;
  out.metrics["perplexity"] = [counts] { return codebook_perplexity(counts); };
  out.metrics["batch_codes_used"] = [counts] {
    std::int64_t used = 0;
    for (std::int32_t c : counts.to_vector<std::int32_t>()) used += c > 0 ? 1 : 0;
    return static_cast<double>(used);
  };
  const Tensor last_used = quantizer_->last_used().clone();
  const std::int64_t window = config_.quantizer.usage_window;
  out.metrics["utilization"] = [last_used, step, window] {
    return utilization_of(last_used.to_vector<std::int32_t>(), step, window);
  };
  if (config_.quantizer.ema && config_.quantizer.dead_code_threshold > 0) {
    const Tensor ema_count = quantizer_->ema_count().clone();
    const double threshold = config_.quantizer.dead_code_threshold;
    out.metrics["dead_codes"] = [ema_count, threshold] {
      return static_cast<double>(count_below(host_doubles(ema_count), threshold));
    };
    out.metrics["revived"] = deferred_item(last_revived_.clone());
  }
  return out;
}

void VqVae::after_step(const Tensor&, std::int64_t step) {
  if (!pending_indices_.defined()) return;
  const VectorQuantizer::UpdateReport report =
      quantizer_->update(pending_z_, pending_indices_, step);
  if (report.revived.defined() && last_revived_.defined()) record_revival(report, step);
  pending_z_ = Tensor();
  pending_indices_ = Tensor();
}

void VqVae::record_revival(const VectorQuantizer::UpdateReport& report, std::int64_t step) {
  NoGradGuard no_grad;
  // The buffers are overwritten in place (copy_ converts to their dtype): a metric or a
  // checkpoint that holds them took a copy.
  last_revived_.copy_(report.revived);
  // any = 1 when this update revived a code, else 0: the new state is the report or the old.
  const Tensor any = clamp(report.revived, 0.0, 1.0);
  const Tensor any_counts = any.to(report.count_after.dtype());
  revival_step_.copy_(
      select(any, mul(any, static_cast<double>(step)), revival_step_.to(DType::f64)));
  revival_before_.copy_(select(any_counts, report.count_before, revival_before_));
  revival_after_.copy_(select(any_counts, report.count_after, revival_after_));
  revival_mask_.copy_(select(any, report.revived_mask.to(DType::f64), revival_mask_.to(DType::f64)));
}

VqVae::Revival VqVae::last_revival() const {
  Revival r;
  if (!revival_step_.defined()) return r;
  r.step = static_cast<std::int64_t>(revival_step_.item());
  if (r.step < 0) return r;
  r.count_before = host_doubles(revival_before_);
  r.count_after = host_doubles(revival_after_);
  r.revived_mask = revival_mask_.to_vector<std::int32_t>();
  return r;
}

Tensor VqVae::reconstruct(const Tensor& images) {
  NoGradGuard no_grad;
  const Tensor rows = encode_rows(images);
  return sigmoid(decode_rows(quantizer_->lookup(quantizer_->nearest(rows)), images.size(0)));
}

Tensor VqVae::encode_tokens(const Tensor& images) {
  NoGradGuard no_grad;
  return quantizer_->nearest(encode_rows(images)).reshape({images.size(0), kGrid, kGrid});
}

Tensor VqVae::decode_tokens(const Tensor& tokens) {
  LATENT_CHECK(tokens.defined() && tokens.dtype() == DType::i32 && tokens.dim() == 3 &&
                   tokens.size(1) == kGrid && tokens.size(2) == kGrid,
               "VqVae::decode_tokens: expected int32 tokens [N, 7, 7], got ",
               tokens.defined() ? shape_str(tokens.shape()) : "undefined", " ",
               tokens.defined() ? dtype_name(tokens.dtype()) : "");
  NoGradGuard no_grad;
  const Tensor codes = quantizer_->lookup(tokens.contiguous().reshape({-1}));
  return sigmoid(decode_rows(codes, tokens.size(0)));
}

std::map<std::string, double> VqVae::evaluate_extra(const Dataset& test, Device device) {
  NoGradGuard no_grad;
  const std::int64_t K = config_.quantizer.codebook_size;
  std::vector<double> counts(static_cast<std::size_t>(K), 0.0);
  constexpr std::int64_t kBatch = 500;
  for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
    const std::int64_t n = std::min(kBatch, test.size() - begin);
    const Tensor idx = quantizer_->nearest(encode_rows(test.images.narrow(0, begin, n).to(device)));
    const std::vector<double> c = host_doubles(vq_code_counts(idx, K));
    for (std::int64_t k = 0; k < K; ++k) counts[k] += c[k];
  }
  const Tensor histogram = from_vector(counts, {K});
  std::int64_t used = 0;
  for (double c : counts) used += c > 0 ? 1 : 0;
  std::map<std::string, double> extra;
  extra["utilization"] = codebook_utilization(histogram);
  extra["perplexity"] = codebook_perplexity(histogram);
  extra["dead_codes"] = static_cast<double>(K - used);
  extra["train_utilization"] = quantizer_->window_utilization(-1);
  if (config_.quantizer.ema && config_.quantizer.dead_code_threshold > 0)
    extra["ema_dead_codes"] = static_cast<double>(quantizer_->dead_codes());
  return extra;
}

}  // namespace latent::models
