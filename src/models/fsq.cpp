// The FSQ autoencoder: encoder → d = len(levels) channels → FSQ at every 7×7 position →
// decoder. No codebook, no commitment loss, no auxiliary term: the loss is the reconstruction
// alone, and the gradient reaches the encoder through the straight-through rounding.
// docs/fsq.md. The codebook picture is drawn by `latent train` (tools/train/fsq_pictures.cpp).
#include <algorithm>
#include <cmath>

#include "latent/autograd.h"
#include "latent/fsq.h"
#include "latent/ops.h"

namespace latent::models {
namespace {

ConvNetConfig with_latent_channels(ConvNetConfig c, std::int64_t channels) {
  c.latent_channels = channels;
  return c;
}

// Perplexity exp(H) of a histogram, H = −Σ p·ln p.
double perplexity(const std::map<std::int32_t, std::int64_t>& counts) {
  double total = 0.0;
  for (const auto& [code, n] : counts) total += static_cast<double>(n);
  if (total <= 0.0) return 0.0;
  double entropy = 0.0;
  for (const auto& [code, n] : counts) {
    const double p = static_cast<double>(n) / total;
    entropy -= p * std::log(p);
  }
  return std::exp(entropy);
}

std::map<std::int32_t, std::int64_t> histogram(const Tensor& indices) {
  std::map<std::int32_t, std::int64_t> counts;
  for (const std::int32_t i : indices.to_vector<std::int32_t>()) ++counts[i];
  return counts;
}

}  // namespace

FsqAutoencoder::FsqAutoencoder(const ConvNetConfig& c, std::vector<std::int64_t> levels,
                               Generator& gen, std::string loss, FsqOptions options)
    : TrainableModel("FsqAutoencoder"),
      config_(with_latent_channels(c, static_cast<std::int64_t>(levels.size()))),
      levels_(std::move(levels)),
      codebook_size_(fsq_codebook_size(levels_)),
      loss_(std::move(loss)),
      options_(options) {
  LATENT_CHECK(loss_ == "mse" || loss_ == "bce", "FsqAutoencoder: unknown loss '", loss_,
               "' (mse or bce)");
  // A 2-level channel of the asymmetric level set sits at bound(z) = tanh(z + atanh(0.999))·½
  // − ½ ≈ 0 for every z > −3.8: it codes almost every input as 0 and carries no information
  // (docs/fsq.md). The symmetric variant spreads its 2 levels over ±1 instead.
  for (std::size_t c = 0; c < levels_.size(); ++c) {
    LATENT_CHECK(options_.symmetric || levels_[c] != 2, "FsqAutoencoder: level 2 of channel ",
                 c, " in levels ", shape_str(levels_),
                 " collapses: without the symmetric variant a 2-level channel codes almost "
                 "every input as 0; use the symmetric level sets (--symmetric, "
                 "FsqOptions::symmetric) or L >= 3");
  }
  encoder_ = register_module("encoder", std::make_shared<Encoder>(config_, gen));
  decoder_ = register_module("decoder", std::make_shared<Decoder>(config_, gen));
}

Tensor FsqAutoencoder::encode(const Tensor& images) { return encoder_->forward(images); }

FsqOutput FsqAutoencoder::quantize(const Tensor& images) {
  // FSQ works on the last dimension: [N, d, 7, 7] → [N, 7, 7, d] → codes → [N, d, 7, 7].
  FsqOutput q = fsq_quantize(encode(images).permute({0, 2, 3, 1}), levels_, options_);
  q.codes = q.codes.permute({0, 3, 1, 2});
  return q;
}

Tensor FsqAutoencoder::decode_logits(const Tensor& codes) { return decoder_->forward(codes); }

Tensor FsqAutoencoder::forward(const Tensor& images) {
  return decode_logits(quantize(images).codes);
}

TrainableModel::StepOutput FsqAutoencoder::training_step(const Tensor& images, std::int64_t) {
  const FsqOutput q = quantize(images);
  const Tensor loss = reconstruction_loss(loss_, decode_logits(q.codes), images);
  // The batch's code perplexity: a cheap collapse monitor (it cannot exceed the batch's
  // 49·N positions, nor ΠL). The indices stay on the device until it is logged.
  const Tensor indices = q.indices.detach();
  return {loss, {{"perplexity", [indices] { return perplexity(histogram(indices)); }}}};
}

Tensor FsqAutoencoder::reconstruct(const Tensor& images) {
  NoGradGuard no_grad;
  return sigmoid(forward(images));
}

std::map<std::int32_t, std::int64_t> FsqAutoencoder::code_counts(const Dataset& test,
                                                                  Device device) {
  constexpr std::int64_t kBatch = 500;
  std::map<std::int32_t, std::int64_t> counts;
  for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
    const std::int64_t n = std::min(kBatch, test.size() - begin);
    for (const auto& [code, k] :
         histogram(encode_tokens(test.images.narrow(0, begin, n).to(device))))
      counts[code] += k;
  }
  return counts;
}

std::map<std::string, double> FsqAutoencoder::evaluate_extra(const Dataset& test,
                                                             Device device) {
  const auto counts = code_counts(test, device);
  const double used = static_cast<double>(counts.size());
  const double size = static_cast<double>(codebook_size_);
  const double ppl = perplexity(counts);
  return {{"utilization", used / size},
          {"codes_used", used},
          {"codebook_size", size},
          {"perplexity", ppl},
          {"perplexity_ratio", ppl / size}};
}

Tensor FsqAutoencoder::encode_tokens(const Tensor& images) {
  NoGradGuard no_grad;
  return quantize(images).indices;
}

Tensor FsqAutoencoder::decode_tokens(const Tensor& tokens) {
  LATENT_CHECK(tokens.dtype() == DType::i32 && tokens.dim() == 3 && tokens.size(1) == 7 &&
                   tokens.size(2) == 7,
               "FsqAutoencoder: expected int32 tokens [N, 7, 7], got ",
               dtype_name(tokens.dtype()), " ", shape_str(tokens.shape()));
  NoGradGuard no_grad;
  const DType dtype = parameters().front().dtype();
  const Tensor codes = fsq_indices_to_codes(tokens, levels_, options_, dtype);
  return sigmoid(decode_logits(codes.permute({0, 3, 1, 2})));
}

}  // namespace latent::models
