// The VQ-VAE: the shared convolutional encoder/decoder around a VectorQuantizer, trained
// with a gradient codebook or an EMA codebook (with optional dead-code revival and k-means
// initialization). `latent train --model vqvae [--ema]`. Docs: docs/vq.md.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "latent/train.h"
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

// An RGB color per token: hues spaced by the golden ratio, so neighbouring indices differ.
void token_color(std::int64_t token, float rgb[3]) {
  const double h = std::fmod(static_cast<double>(token) * 0.6180339887498949, 1.0) * 6.0;
  const double s = 0.65, v = 0.95, c = v * s;
  const double x = c * (1.0 - std::abs(std::fmod(h, 2.0) - 1.0));
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(h)) {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
  }
  rgb[0] = static_cast<float>(r + v - c);
  rgb[1] = static_cast<float>(g + v - c);
  rgb[2] = static_cast<float>(b + v - c);
}

// One panel of per-code bars (height ∝ log(1 + value), codes left to right) on white, with a
// strip under each bar: red for mark 1 (dead), green for mark 2 (revived), none for 0.
std::vector<float> bars_panel(const std::vector<double>& values, const std::vector<int>& marks,
                              std::int64_t bar_width, std::int64_t height,
                              std::int64_t& width_out) {
  constexpr std::int64_t kStrip = 5;
  const std::int64_t K = static_cast<std::int64_t>(values.size());
  const std::int64_t width = K * bar_width, rows = height + kStrip;
  std::vector<float> rgb(static_cast<std::size_t>(3 * rows * width), 1.0f);
  double top = 0.0;
  for (double v : values) top = std::max(top, std::log1p(std::max(v, 0.0)));
  for (std::int64_t k = 0; k < K; ++k) {
    const double scaled = top > 0 ? std::log1p(std::max(values[k], 0.0)) / top : 0.0;
    const std::int64_t bar = static_cast<std::int64_t>(std::lround(scaled * height));
    for (std::int64_t x = k * bar_width; x < (k + 1) * bar_width; ++x) {
      for (std::int64_t y = height - bar; y < height; ++y)
        for (int c = 0; c < 3; ++c) rgb[(c * rows + y) * width + x] = 0.25f;
      if (marks[k] == 0) continue;
      const float color[3] = {marks[k] == 1 ? 0.9f : 0.1f, marks[k] == 1 ? 0.1f : 0.7f, 0.1f};
      for (std::int64_t y = height + 1; y < rows; ++y)
        for (int c = 0; c < 3; ++c) rgb[(c * rows + y) * width + x] = color[c];
    }
  }
  width_out = width;
  return rgb;
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
}

bool VectorQuantizer::initialized() const { return initialized_.item() != 0.0; }

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
      std::vector<double> before = host_doubles(ema_count_);
      const PhiloxKey key{config_.seed ^ kReviveStream, static_cast<std::uint64_t>(step)};
      const Tensor revived =
          vq_revive_dead_codes(codebook_, ema_count_, ema_sum_, rows,
                               config_.dead_code_threshold, config_.dead_code_threshold, key);
      report.revived_mask = revived.to_vector<std::int32_t>();
      for (std::int32_t r : report.revived_mask) report.revived += r;
      if (report.revived > 0) {
        report.count_before = std::move(before);
        report.count_after = host_doubles(ema_count_);
      }
    }
  } else {
    counts = vq_code_counts(indices, K);
  }
  // The usage window: the last step each code was chosen.
  const std::vector<std::int32_t> used = counts.to_vector<std::int32_t>();
  std::vector<std::int32_t> last = last_used_.to_vector<std::int32_t>();
  for (std::int64_t k = 0; k < K; ++k)
    if (used[k] > 0) last[k] = static_cast<std::int32_t>(step);
  last_used_.copy_(from_vector(last, {K}));
  return report;
}

double VectorQuantizer::window_utilization(std::int64_t step) const {
  const std::vector<std::int32_t> last = last_used_.to_vector<std::int32_t>();
  if (step < 0) step = *std::max_element(last.begin(), last.end());
  std::int64_t used = 0;
  for (std::int32_t s : last) used += (s >= 0 && step - s <= config_.usage_window) ? 1 : 0;
  return static_cast<double>(used) / static_cast<double>(last.size());
}

std::int64_t VectorQuantizer::dead_codes() const {
  if (!config_.ema || config_.dead_code_threshold <= 0) return 0;
  std::int64_t dead = 0;
  for (double n : host_doubles(ema_count_)) dead += n < config_.dead_code_threshold ? 1 : 0;
  return dead;
}

// ------------------------------------------------------------------ VqVae
VqVae::VqVae(const VqVaeConfig& c, Generator& gen) : TrainableModel("VqVae"), config_(c) {
  LATENT_CHECK(c.loss == "mse" || c.loss == "bce", "VqVae: unknown loss '", c.loss,
               "' (mse or bce)");
  config_.net.latent_channels = c.quantizer.code_dim;
  encoder_ = register_module("encoder", std::make_shared<Encoder>(config_.net, gen));
  quantizer_ = register_module("quantizer", std::make_shared<VectorQuantizer>(c.quantizer, gen));
  decoder_ = register_module("decoder", std::make_shared<Decoder>(config_.net, gen));
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

  StepOutput out;
  out.loss = add(recon, vq_term);
  out.metrics["recon"] = recon.item();
  out.metrics["commitment"] = q.commitment_loss.item();
  if (!config_.quantizer.ema) out.metrics["codebook_loss"] = q.codebook_loss.item();
  out.metrics["perplexity"] = q.perplexity;
  out.metrics["batch_codes_used"] = static_cast<double>(q.used_codes);
  out.metrics["utilization"] = quantizer_->window_utilization(step);
  if (config_.quantizer.ema && config_.quantizer.dead_code_threshold > 0) {
    out.metrics["dead_codes"] = static_cast<double>(quantizer_->dead_codes());
    out.metrics["revived"] = static_cast<double>(last_revived_);
  }
  return out;
}

void VqVae::after_step(const Tensor&, std::int64_t step) {
  if (!pending_indices_.defined()) return;
  VectorQuantizer::UpdateReport report = quantizer_->update(pending_z_, pending_indices_, step);
  last_revived_ = report.revived;
  if (report.revived > 0) {
    last_revival_ = std::move(report);
    last_revival_step_ = step;
  }
  pending_z_ = Tensor();
  pending_indices_ = Tensor();
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

void VqVae::write_artifacts(const std::string& out_dir, const Dataset& test, Device device) {
  NoGradGuard no_grad;
  const std::int64_t K = config_.quantizer.codebook_size;
  const std::int64_t bar_width = std::max<std::int64_t>(1, 1024 / K), height = 96;

  // Panel 1: how often each code is chosen over the test set; unused codes marked red.
  std::vector<double> usage(static_cast<std::size_t>(K), 0.0);
  constexpr std::int64_t kBatch = 500;
  for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
    const std::int64_t n = std::min(kBatch, test.size() - begin);
    const Tensor idx = quantizer_->nearest(encode_rows(test.images.narrow(0, begin, n).to(device)));
    const std::vector<double> c = host_doubles(vq_code_counts(idx, K));
    for (std::int64_t k = 0; k < K; ++k) usage[k] += c[k];
  }
  std::vector<std::vector<float>> panels;
  std::vector<std::int64_t> panel_rows;
  std::int64_t width = 0;
  auto add_panel = [&](const std::vector<double>& values, const std::vector<int>& marks) {
    panels.push_back(bars_panel(values, marks, bar_width, height, width));
    panel_rows.push_back(height + 5);
  };
  {
    std::vector<int> marks(static_cast<std::size_t>(K));
    for (std::int64_t k = 0; k < K; ++k) marks[k] = usage[k] > 0 ? 0 : 1;
    add_panel(usage, marks);
  }
  if (config_.quantizer.ema) {
    // Panels 2 and 3: the EMA counts just before and just after the last revival, the revived
    // codes marked red before (they were dead) and green after; without revival, the EMA
    // counts now, codes under the threshold (or under 1) marked red.
    if (last_revival_step_ >= 0) {
      std::vector<int> dead(static_cast<std::size_t>(K)), born(static_cast<std::size_t>(K));
      for (std::int64_t k = 0; k < K; ++k) {
        dead[k] = last_revival_.revived_mask[k] ? 1 : 0;
        born[k] = last_revival_.revived_mask[k] ? 2 : 0;
      }
      add_panel(last_revival_.count_before, dead);
      add_panel(last_revival_.count_after, born);
    } else {
      const std::vector<double> counts = host_doubles(quantizer_->ema_count());
      const double limit = config_.quantizer.dead_code_threshold > 0
                               ? config_.quantizer.dead_code_threshold
                               : 1.0;
      std::vector<int> marks(static_cast<std::size_t>(K));
      for (std::int64_t k = 0; k < K; ++k) marks[k] = counts[k] < limit ? 1 : 0;
      add_panel(counts, marks);
    }
  }
  constexpr std::int64_t kGap = 6;
  std::int64_t total_rows = kGap;
  for (std::int64_t r : panel_rows) total_rows += r + kGap;
  std::vector<float> picture(static_cast<std::size_t>(3 * total_rows * width), 1.0f);
  std::int64_t y0 = kGap;
  for (std::size_t p = 0; p < panels.size(); ++p) {
    for (int c = 0; c < 3; ++c)
      for (std::int64_t y = 0; y < panel_rows[p]; ++y)
        for (std::int64_t x = 0; x < width; ++x)
          picture[(c * total_rows + y0 + y) * width + x] =
              panels[p][(c * panel_rows[p] + y) * width + x];
    y0 += panel_rows[p] + kGap;
  }
  save_png(out_dir + "/codebook_usage.png", from_vector(picture, {3, total_rows, width}));

  // Token grids of the first 8 test images: each image beside its 7×7 tokens, one color per
  // code; the tokens also as .npy.
  const std::int64_t n = std::min<std::int64_t>(8, test.size());
  if (n == 0) return;
  const Tensor images = test.images.narrow(0, 0, n).contiguous();
  const Tensor tokens = encode_tokens(images.to(device)).to(Device::cpu());
  save_npy(out_dir + "/tokens.npy", tokens);
  const std::vector<std::int32_t> t = tokens.to_vector<std::int32_t>();
  const std::vector<float> pixels = images.to_vector<float>();
  constexpr std::int64_t kZoom = 3;  // nearest-neighbour upscaling, for legibility
  const std::int64_t side = images.size(2), cell = side / kGrid, big = side * kZoom;
  std::vector<Tensor> tiles;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<float> img(static_cast<std::size_t>(3 * big * big)), grid(img.size());
    for (std::int64_t y = 0; y < big; ++y) {
      for (std::int64_t x = 0; x < big; ++x) {
        const std::int64_t sy = y / kZoom, sx = x / kZoom;
        const float v = pixels[(i * images.size(1)) * side * side + sy * side + sx];
        float rgb[3];
        token_color(t[i * kGrid * kGrid + (sy / cell) * kGrid + sx / cell], rgb);
        for (int c = 0; c < 3; ++c) {
          img[(c * big + y) * big + x] = v;
          grid[(c * big + y) * big + x] = rgb[c];
        }
      }
    }
    tiles.push_back(from_vector(img, {3, big, big}));
    tiles.push_back(from_vector(grid, {3, big, big}));
  }
  save_png(out_dir + "/tokens.png", image_grid(tiles, 8, 4, 1.0));
}

std::shared_ptr<TrainableModel> make_vqvae(const train::Config& c, Generator& gen) {
  VqVaeConfig v;
  v.net = c.net;
  v.loss = c.loss;
  VectorQuantizerConfig& q = v.quantizer;
  q.codebook_size = c.codebook_size;
  q.code_dim = c.code_dim;
  q.beta = c.beta < 0 ? 0.25 : c.beta;
  q.cosine = c.cosine;
  q.ema = c.ema;
  q.decay = c.decay;
  q.dead_code_threshold = c.dead_code_threshold;
  q.kmeans_init = c.kmeans_init;
  q.seed = c.seed;
  return std::make_shared<VqVae>(v, gen);
}

}  // namespace latent::models
