// The second stage of an image generator: an autoregressive transformer over a tokenizer's
// token grids. Docs: docs/prior.md. Kernels: kernels/attention.cuh, kernels/layer_norm.cuh,
// kernels/cross_entropy.cuh, kernels/embedding.cuh (and GELU in kernels/unary_ops.cuh).
//
// A VQ-VAE or FSQ tokenizer maps an image to a 7×7 grid of tokens in [0, K). The prior models
// their joint distribution in raster order, p(x) = Π_t p(x_t | x_<t, class), with a
// decoder-only transformer: the sequence fed in is a start token that carries the class (one
// of `classes` labels, or the extra "no class" value) followed by the first 48 tokens, and
// position t predicts token t. Sampling draws the tokens one by one and hands the grid to the
// tokenizer's decoder.
//
//   latent::models::TokenTransformer prior(config, gen);
//   latent::Tensor logits = prior.logits(tokens, labels);     // [B, 49, K]
//   latent::Tensor nll = prior.token_nll(tokens, labels);      // [B, 49] nats
//   latent::Tensor grids = prior.sample(labels, key, options); // int32 [B, 49]
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "latent/models.h"
#include "latent/nn.h"
#include "latent/random.h"
#include "latent/tensor.h"

namespace latent::models {

struct PriorConfig {
  std::int64_t vocabulary = 512;  // K, the tokenizer's codebook size
  std::int64_t tokens = 49;       // positions of a grid (7×7), at most 64
  std::int64_t classes = 10;      // class labels; label `classes` means "no class"
  std::int64_t width = 128;       // C, the residual stream
  std::int64_t layers = 4;
  std::int64_t heads = 4;         // C / heads channels per head, at most 64
  std::int64_t mlp_ratio = 4;     // the MLP's hidden width is mlp_ratio·C
};

// One pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)).
class TransformerBlock : public nn::Module {
 public:
  TransformerBlock(const PriorConfig& config, Generator& gen);
  Tensor forward(const Tensor& x) override;  // [B, T, C] -> [B, T, C]
  // One decoding step: x [B, C] is the token at `position`; keys/values [B, tokens, C] are
  // this block's cache, filled in place.
  Tensor step(const Tensor& x, const Tensor& keys, const Tensor& values, std::int64_t position);

 private:
  Tensor mlp(const Tensor& x);
  std::int64_t heads_;
  Tensor ln1_weight_, ln1_bias_, ln2_weight_, ln2_bias_;
  std::shared_ptr<nn::Linear> qkv_, proj_, fc1_, fc2_;
};

struct SampleOptions {
  double temperature = 1.0;  // logits are divided by it; > 0
  std::int64_t top_k = 0;    // keep the k most likely tokens at each step (0: all)
};

class TokenTransformer : public nn::Module {
 public:
  TokenTransformer(const PriorConfig& config, Generator& gen);

  // tokens int32 [B, tokens] in [0, K); labels int32 [B] in [0, classes] (classes: no
  // class). Logits [B, tokens, K] of each token given the ones before it and the label.
  Tensor logits(const Tensor& tokens, const Tensor& labels);
  // −ln p(token_t | …) per position, [B, tokens] (float32; differentiable).
  Tensor token_nll(const Tensor& tokens, const Tensor& labels);
  // Draws token grids [B, tokens] for labels [B] (int32 on the model's device; `classes`
  // for unconditional samples) with a key/value cache: one token step per position. Every
  // draw is a Philox uniform of `key` (row b, position t: element t·B + b of one draw), so
  // the same key gives the same grids.
  Tensor sample(const Tensor& labels, PhiloxKey key, const SampleOptions& options = {});

  const PriorConfig& config() const { return config_; }

 private:
  Tensor input_ids(const Tensor& tokens, const Tensor& labels) const;
  Tensor head(const Tensor& h);  // final layer norm and the projection to K logits
  PriorConfig config_;
  Tensor embedding_;  // [K + classes + 1, C]: tokens, then the start tokens of the labels
  Tensor position_;   // [tokens, C]
  Tensor ln_weight_, ln_bias_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
  std::shared_ptr<nn::Linear> out_;
};

// The prior as a model `latent train` trains: a frozen tokenizer (a VqVae or an
// FsqAutoencoder, registered as the child "tokenizer" so that a checkpoint carries it) and the
// transformer (child "prior", the only trainable parameters). Each step tokenizes its batch
// (the tokenizer in eval mode, without gradients: every image's tokens once per epoch) and
// minimizes the mean token NLL; with probability class_dropout a row's label becomes "no
// class", so one model samples with and without a class.
class TokenPrior : public TrainableModel {
 public:
  TokenPrior(std::shared_ptr<TrainableModel> tokenizer, const PriorConfig& config,
             Generator& gen, double class_dropout = 0.1, std::uint64_t seed = 0);

  StepOutput training_step(const Tensor& images, std::int64_t step) override;  // needs labels: throws
  StepOutput training_step_on(const Batch& batch, std::int64_t step) override;
  std::vector<Tensor> trainable_parameters() override;
  // The tokenizer's reconstruction (the prior adds nothing to it).
  Tensor reconstruct(const Tensor& images) override;
  // Test negative log-likelihood: nll_bits_per_token and nll_bits_per_image with the labels,
  // unconditional_bits_per_image with "no class", beside uniform_bits_per_image
  // (tokens·log2 K, the tokenizer's raw code length) and unigram_bits_per_image (tokens × the
  // entropy of the test tokens' histogram).
  std::map<std::string, double> evaluate_extra(const Dataset& test, Device device) override;
  // n unconditional samples, decoded.
  Tensor sample(std::int64_t n, Generator& gen) override;
  // Token grids [B, 7, 7] for labels [B] (int32; `classes` for no class), and their images.
  Tensor sample_tokens(const Tensor& labels, PhiloxKey key, const SampleOptions& options = {});
  Tensor sample_images(const Tensor& labels, PhiloxKey key, const SampleOptions& options = {});

  TokenTransformer& transformer() { return *prior_; }
  TrainableModel& tokenizer() { return *tokenizer_; }

 private:
  Tensor grid_tokens(const Tensor& images);  // [B, tokens] int32
  std::shared_ptr<TrainableModel> tokenizer_;
  std::shared_ptr<TokenTransformer> prior_;
  double class_dropout_;
  std::uint64_t seed_;
};

// Draws one index per row of probabilities-to-be: logits [B, K] on any device (read back to
// the host), u [B] uniforms in [0, 1). Temperature and top-k as in SampleOptions; the inverse
// distribution function in double, ties of the top-k threshold kept. int32 [B] on the host.
std::vector<std::int32_t> sample_categorical(const Tensor& logits, const std::vector<double>& u,
                                             const SampleOptions& options);

}  // namespace latent::models
