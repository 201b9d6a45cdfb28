// The transformer prior over token grids (include/latent/prior.h, docs/prior.md): GPT-2's
// pre-norm decoder blocks at a size that trains on a laptop's CPU, over a start token and
// 48 of a grid's 49 tokens.
#include "latent/prior.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "latent/attention.h"
#include "latent/autograd.h"
#include "latent/cross_entropy.h"
#include "latent/embedding.h"
#include "latent/layer_norm.h"
#include "latent/ops.h"
#include "ops/checks.h"

namespace latent::models {
namespace {

// GPT-2's initialization: every weight N(0, 0.02²), biases 0, and the two projections that
// write into the residual stream scaled by 1/√(2·layers), so the stream's variance at the
// output does not grow with depth.
constexpr double kInitStd = 0.02;

std::shared_ptr<nn::Linear> linear_layer(std::int64_t in, std::int64_t out, double std,
                                         Generator& gen) {
  auto layer = std::make_shared<nn::Linear>(in, out, gen);
  nn::init::normal_(layer->weight, 0.0, std, gen);
  nn::init::zeros_(layer->bias);
  return layer;
}

void check_config(const PriorConfig& c) {
  LATENT_CHECK(c.vocabulary >= 2, "TokenTransformer: the vocabulary needs at least 2 tokens, got ",
               c.vocabulary);
  LATENT_CHECK(c.tokens >= 1 && c.tokens <= kAttentionMaxTokens, "TokenTransformer: ", c.tokens,
               " tokens per grid; the fused attention holds 1 to ", kAttentionMaxTokens);
  LATENT_CHECK(c.classes >= 0, "TokenTransformer: classes must be >= 0, got ", c.classes);
  LATENT_CHECK(c.layers >= 1 && c.width >= 1 && c.mlp_ratio >= 1, "TokenTransformer: layers (",
               c.layers, "), width (", c.width, ") and mlp_ratio (", c.mlp_ratio,
               ") must be at least 1");
  LATENT_CHECK(c.heads >= 1 && c.width % c.heads == 0, "TokenTransformer: width ", c.width,
               " must be a multiple of heads (", c.heads, ")");
  LATENT_CHECK(c.width / c.heads <= kAttentionMaxHeadDim, "TokenTransformer: width / heads = ",
               c.width / c.heads, " channels per head; at most ", kAttentionMaxHeadDim);
}

}  // namespace

TransformerBlock::TransformerBlock(const PriorConfig& c, Generator& gen)
    : nn::Module("TransformerBlock"), heads_(c.heads) {
  const double residual_std = kInitStd / std::sqrt(2.0 * static_cast<double>(c.layers));
  ln1_weight_ = register_parameter("ln1_weight", full({c.width}, 1.0));
  ln1_bias_ = register_parameter("ln1_bias", zeros({c.width}));
  qkv_ = register_module("qkv", linear_layer(c.width, 3 * c.width, kInitStd, gen));
  proj_ = register_module("proj", linear_layer(c.width, c.width, residual_std, gen));
  ln2_weight_ = register_parameter("ln2_weight", full({c.width}, 1.0));
  ln2_bias_ = register_parameter("ln2_bias", zeros({c.width}));
  fc1_ = register_module("fc1", linear_layer(c.width, c.mlp_ratio * c.width, kInitStd, gen));
  fc2_ = register_module("fc2", linear_layer(c.mlp_ratio * c.width, c.width, residual_std, gen));
}

Tensor TransformerBlock::mlp(const Tensor& x) {
  return fc2_->forward(gelu(fc1_->forward(layer_norm(x, ln2_weight_, ln2_bias_))));
}

Tensor TransformerBlock::forward(const Tensor& x) {
  const Tensor attended =
      causal_self_attention(qkv_->forward(layer_norm(x, ln1_weight_, ln1_bias_)), heads_);
  const Tensor h = add(x, proj_->forward(attended));
  return add(h, mlp(h));
}

Tensor TransformerBlock::step(const Tensor& x, const Tensor& keys, const Tensor& values,
                              std::int64_t position) {
  const Tensor qkv = qkv_->forward(layer_norm(x, ln1_weight_, ln1_bias_));
  const Tensor h = add(x, proj_->forward(attention_decode_step(qkv, keys, values, position, heads_)));
  return add(h, mlp(h));
}

TokenTransformer::TokenTransformer(const PriorConfig& c, Generator& gen)
    : nn::Module("TokenTransformer"), config_(c) {
  check_config(c);
  embedding_ = register_parameter("embedding", randn({c.vocabulary + c.classes + 1, c.width}, gen));
  nn::init::normal_(embedding_, 0.0, kInitStd, gen);
  position_ = register_parameter("position", randn({c.tokens, c.width}, gen));
  nn::init::normal_(position_, 0.0, kInitStd, gen);
  for (std::int64_t l = 0; l < c.layers; ++l) {
    blocks_.push_back(register_module("block" + std::to_string(l),
                                      std::make_shared<TransformerBlock>(c, gen)));
  }
  ln_weight_ = register_parameter("ln_weight", full({c.width}, 1.0));
  ln_bias_ = register_parameter("ln_bias", zeros({c.width}));
  out_ = register_module("out", linear_layer(c.width, c.vocabulary, kInitStd, gen));
}

// [label's start token, token_0, …, token_{T−2}] as rows of the embedding table.
Tensor TokenTransformer::input_ids(const Tensor& tokens, const Tensor& labels) const {
  const PriorConfig& c = config_;
  LATENT_CHECK(tokens.dtype() == DType::i32 && tokens.dim() == 2 && tokens.size(1) == c.tokens,
               "TokenTransformer: tokens must be int32 [batch, ", c.tokens, "], got ",
               dtype_name(tokens.dtype()), " ", shape_str(tokens.shape()));
  LATENT_CHECK(labels.dtype() == DType::i32 && labels.dim() == 1 && labels.size(0) == tokens.size(0),
               "TokenTransformer: labels must be int32 [", tokens.size(0), "], got ",
               dtype_name(labels.dtype()), " ", shape_str(labels.shape()));
  // A token ≥ K or a label outside [0, classes] would land on another row of the table
  // without any error: both are checked (on the device, no wait).
  ops::check_index_range(tokens, 0, c.vocabulary, "TokenTransformer: token ",
                         detail::concat(" is outside the vocabulary [0, ", c.vocabulary, ")"));
  ops::check_index_range(labels, 0, c.classes + 1, "TokenTransformer: label ",
                         detail::concat(" is outside [0, ", c.classes, "] (", c.classes,
                                        ": no class)"));
  // The start token's row: K + label.
  const Tensor start = add(labels.to(DType::f32), static_cast<double>(c.vocabulary))
                           .to(DType::i32)
                           .unsqueeze(1);
  if (c.tokens == 1) return start;
  return concat({start, tokens.narrow(1, 0, c.tokens - 1)}, 1);
}

Tensor TokenTransformer::head(const Tensor& h) {
  return out_->forward(layer_norm(h, ln_weight_, ln_bias_));
}

Tensor TokenTransformer::logits(const Tensor& tokens, const Tensor& labels) {
  Tensor h = add(embedding(embedding_, input_ids(tokens, labels)), position_);
  for (const auto& block : blocks_) h = block->forward(h);
  return head(h);
}

Tensor TokenTransformer::token_nll(const Tensor& tokens, const Tensor& labels) {
  return cross_entropy_rows(logits(tokens, labels), tokens);
}

std::vector<std::int32_t> sample_categorical(const Tensor& logits, const std::vector<double>& u,
                                             const SampleOptions& options) {
  LATENT_CHECK(options.temperature > 0 && std::isfinite(options.temperature),
               "sample: the temperature must be positive and finite, got ", options.temperature);
  LATENT_CHECK(options.top_k >= 0, "sample: top_k must be >= 0 (0: every token), got ",
               options.top_k);
  LATENT_CHECK(logits.dim() == 2, "sample: logits must be [rows, K], got ",
               shape_str(logits.shape()));
  const std::int64_t rows = logits.size(0), K = logits.size(1);
  LATENT_CHECK(static_cast<std::int64_t>(u.size()) == rows, "sample: ", u.size(),
               " uniforms for ", rows, " rows");
  const std::vector<double> values = logits.to(Device::cpu()).to(DType::f64).contiguous().to_vector<double>();
  std::vector<std::int32_t> drawn(static_cast<std::size_t>(rows));
  std::vector<double> p(static_cast<std::size_t>(K));
  for (std::int64_t r = 0; r < rows; ++r) {
    const double* row = values.data() + r * K;
    double threshold = -INFINITY;
    if (options.top_k > 0 && options.top_k < K) {
      std::vector<double> sorted(row, row + K);
      std::nth_element(sorted.begin(), sorted.begin() + (options.top_k - 1), sorted.end(),
                       std::greater<double>());
      threshold = sorted[options.top_k - 1];
    }
    double m = -INFINITY;
    for (std::int64_t k = 0; k < K; ++k) {
      LATENT_CHECK(std::isfinite(row[k]), "sample: logit ", k, " of row ", r, " is ", row[k]);
      if (row[k] >= threshold) m = std::max(m, row[k]);
    }
    double total = 0.0;
    for (std::int64_t k = 0; k < K; ++k)
      total += (p[k] = row[k] >= threshold ? std::exp((row[k] - m) / options.temperature) : 0.0);
    // The first k whose cumulative mass passes u·total; the last kept token if rounding
    // leaves u·total beyond the sum.
    const double target = u[r] * total;
    double cumulative = 0.0;
    std::int64_t pick = -1;
    for (std::int64_t k = 0; k < K; ++k) {
      if (p[k] <= 0.0) continue;
      cumulative += p[k];
      pick = k;
      if (cumulative > target) break;
    }
    drawn[r] = static_cast<std::int32_t>(pick);
  }
  return drawn;
}

Tensor TokenTransformer::sample(const Tensor& labels, PhiloxKey key, const SampleOptions& options) {
  NoGradGuard no_grad;
  const PriorConfig& c = config_;
  LATENT_CHECK(labels.dtype() == DType::i32 && labels.dim() == 1,
               "TokenTransformer::sample: labels must be int32 [batch], got ",
               dtype_name(labels.dtype()), " ", shape_str(labels.shape()));
  for (const std::int32_t label : labels.to_vector<std::int32_t>()) {
    LATENT_CHECK(label >= 0 && label <= c.classes, "TokenTransformer::sample: label ", label,
                 " is outside [0, ", c.classes, "] (", c.classes, ": no class)");
  }
  const std::int64_t B = labels.size(0);
  const Device device = embedding_.device();
  const DType dtype = embedding_.dtype();
  Generator gen;
  gen.set_state(key.seed, key.offset);
  const std::vector<double> u = uniform({c.tokens * B}, 0.0, 1.0, gen, DType::f64).to_vector<double>();
  std::vector<Tensor> keys, values;
  for (std::size_t l = 0; l < blocks_.size(); ++l) {
    keys.push_back(zeros({B, c.tokens, c.width}, dtype, device));
    values.push_back(zeros({B, c.tokens, c.width}, dtype, device));
  }
  std::vector<std::int32_t> grid(static_cast<std::size_t>(B * c.tokens));
  Tensor ids = add(labels.to(device).to(DType::f32), static_cast<double>(c.vocabulary)).to(DType::i32);
  for (std::int64_t t = 0; t < c.tokens; ++t) {
    Tensor h = add(embedding(embedding_, ids), position_.narrow(0, t, 1));
    for (std::size_t l = 0; l < blocks_.size(); ++l) h = blocks_[l]->step(h, keys[l], values[l], t);
    const std::vector<double> step_u(u.begin() + t * B, u.begin() + (t + 1) * B);
    const std::vector<std::int32_t> drawn = sample_categorical(head(h), step_u, options);
    for (std::int64_t b = 0; b < B; ++b) grid[b * c.tokens + t] = drawn[b];
    ids = from_vector(drawn, {B}, device);
  }
  return from_vector(grid, {B, c.tokens}, device);
}

}  // namespace latent::models

namespace latent::models {

TokenPrior::TokenPrior(std::shared_ptr<TrainableModel> tokenizer, const PriorConfig& config,
                       Generator& gen, double class_dropout, std::uint64_t seed)
    : TrainableModel("TokenPrior"), class_dropout_(class_dropout), seed_(seed) {
  LATENT_CHECK(tokenizer != nullptr, "TokenPrior: no tokenizer");
  LATENT_CHECK(class_dropout >= 0.0 && class_dropout <= 1.0,
               "TokenPrior: class_dropout must lie in [0, 1], got ", class_dropout);
  tokenizer_ = register_module("tokenizer", std::move(tokenizer));
  for (Tensor p : tokenizer_->parameters()) p.requires_grad_(false);
  prior_ = register_module("prior", std::make_shared<TokenTransformer>(config, gen));
}

Tensor TokenPrior::grid_tokens(const Tensor& images) {
  NoGradGuard no_grad;
  tokenizer_->eval();
  const Tensor tokens = tokenizer_->encode_tokens(images);
  const std::int64_t T = prior_->config().tokens;
  LATENT_CHECK(tokens.numel() == images.size(0) * T, "TokenPrior: the tokenizer gives grids of ",
               tokens.numel() / std::max<std::int64_t>(images.size(0), 1), " tokens, the prior models ",
               T);
  return tokens.reshape({images.size(0), T});
}

TrainableModel::StepOutput TokenPrior::training_step(const Tensor&, std::int64_t) {
  LATENT_FAIL("TokenPrior: a training step needs the batch's labels (training_step_on)");
}

TrainableModel::StepOutput TokenPrior::training_step_on(const Batch& batch, std::int64_t step) {
  const PriorConfig& c = prior_->config();
  const Tensor tokens = grid_tokens(batch.images);
  const std::int64_t B = batch.images.size(0);
  // Class dropout: a Philox draw of (seed, step) per row on the host (nothing read back),
  // applied on the device as label + drop·(classes − label).
  Generator gen;
  gen.set_state(seed_ ^ 0x70726f72ull, static_cast<std::uint64_t>(step));
  const std::vector<double> u = uniform({B}, 0.0, 1.0, gen, DType::f64).to_vector<double>();
  std::vector<float> drop(static_cast<std::size_t>(B));
  for (std::int64_t b = 0; b < B; ++b) drop[b] = u[b] < class_dropout_ ? 1.0f : 0.0f;
  const Tensor label_f = batch.labels.to(DType::f32);
  const Tensor mask = from_vector(drop, {B}, batch.images.device());
  const Tensor labels =
      add(label_f, mul(mask, rsub(static_cast<double>(c.classes), label_f))).to(DType::i32);
  StepOutput out;
  out.loss = mean(prior_->token_nll(tokens, labels));
  const Tensor bits = mul(out.loss.detach(), 1.0 / std::log(2.0));
  out.metrics["bits_per_token"] = deferred_item(bits);
  return out;
}

std::vector<Tensor> TokenPrior::trainable_parameters() { return prior_->parameters(); }

Tensor TokenPrior::reconstruct(const Tensor& images) { return tokenizer_->reconstruct(images); }

std::map<std::string, double> TokenPrior::evaluate_extra(const Dataset& test, Device device) {
  NoGradGuard no_grad;
  const PriorConfig& c = prior_->config();
  constexpr std::int64_t kBatch = 500;
  double conditional = 0.0, unconditional = 0.0;
  std::vector<std::int64_t> counts(static_cast<std::size_t>(c.vocabulary), 0);
  for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
    const std::int64_t n = std::min(kBatch, test.size() - begin);
    const Tensor tokens = grid_tokens(test.images.narrow(0, begin, n).to(device));
    const Tensor labels = test.labels.narrow(0, begin, n).to(device);
    conditional += sum(prior_->token_nll(tokens, labels).to(DType::f64)).item();
    const Tensor none = full({n}, static_cast<double>(c.classes), DType::i32, device);
    unconditional += sum(prior_->token_nll(tokens, none).to(DType::f64)).item();
    for (const std::int32_t t : tokens.to_vector<std::int32_t>()) ++counts[t];
  }
  const double images = static_cast<double>(test.size());
  const double total_tokens = images * static_cast<double>(c.tokens);
  double entropy = 0.0;  // bits per token of the test tokens' own histogram
  for (const std::int64_t k : counts) {
    if (k == 0) continue;
    const double p = static_cast<double>(k) / total_tokens;
    entropy -= p * std::log2(p);
  }
  const double ln2 = std::log(2.0);
  return {
      {"nll_bits_per_token", conditional / ln2 / total_tokens},
      {"nll_bits_per_image", conditional / ln2 / images},
      {"unconditional_bits_per_image", unconditional / ln2 / images},
      {"uniform_bits_per_image", static_cast<double>(c.tokens) * std::log2(static_cast<double>(c.vocabulary))},
      {"unigram_bits_per_image", static_cast<double>(c.tokens) * entropy},
  };
}

Tensor TokenPrior::sample_tokens(const Tensor& labels, PhiloxKey key, const SampleOptions& options) {
  const Tensor grids = prior_->sample(labels, key, options);
  const std::int64_t side = static_cast<std::int64_t>(std::lround(std::sqrt(static_cast<double>(prior_->config().tokens))));
  if (side * side != prior_->config().tokens) return grids;
  return grids.reshape({labels.size(0), side, side});
}

Tensor TokenPrior::sample_images(const Tensor& labels, PhiloxKey key, const SampleOptions& options) {
  NoGradGuard no_grad;
  tokenizer_->eval();
  return tokenizer_->decode_tokens(sample_tokens(labels, key, options));
}

Tensor TokenPrior::sample(std::int64_t n, Generator& gen) {
  const Device device = prior_->parameters().front().device();
  const Tensor labels = full({n}, static_cast<double>(prior_->config().classes), DType::i32, device);
  return sample_images(labels, gen.next());
}

}  // namespace latent::models
