// The convolutional encoder and decoder shared by every model of latent, and the plain
// autoencoder built from them.
//
//   Encoder  [N, 1, 28, 28] ─conv 4×4 s2─▶ [N, h, 14, 14] ─conv 4×4 s2─▶ [N, 2h, 7, 7]
//            ─conv 3×3─▶ [N, latent_channels, 7, 7]                       (SiLU between)
//   Decoder  [N, latent_channels, 7, 7] ─conv 3×3─▶ [N, 2h, 7, 7] ─convT 4×4 s2─▶ [N, h, 14, 14]
//            ─convT 4×4 s2─▶ [N, 1, 28, 28] logits                          (SiLU between)
//
// The latent is a 7×7 grid: a spatial latent, as in the autoencoders of latent diffusion.
// The decoder outputs logits; the reconstruction is sigmoid(logits), in [0, 1] like the
// pixels. The VAE, VQ-VAE and FSQ models reuse Encoder and Decoder with other latent widths.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "latent/data.h"
#include "latent/nn.h"

namespace latent::models {

struct ConvNetConfig {
  std::int64_t image_channels = 1;
  std::int64_t hidden_channels = 32;  // h above; the 7×7 stage has 2h
  std::int64_t latent_channels = 4;
};

class Encoder : public nn::Module {
 public:
  Encoder(const ConvNetConfig& config, Generator& gen);
  Tensor forward(const Tensor& images) override;  // -> [N, latent_channels, 7, 7]

 private:
  std::shared_ptr<nn::Sequential> layers_;
};

class Decoder : public nn::Module {
 public:
  Decoder(const ConvNetConfig& config, Generator& gen);
  Tensor forward(const Tensor& latent) override;  // -> logits [N, image_channels, 28, 28]

 private:
  std::shared_ptr<nn::Sequential> layers_;
};

// A model that a training loop (such as `latent train`, tools/train) can train. Implementations
// live in src/models/, one file per model.
class TrainableModel : public nn::Module {
 public:
  using nn::Module::Module;

  // A step's metrics, read only when asked for: each closure holds device tensors (or
  // device-side snapshots) of its step and reads them back to the host when called, so a
  // step whose metrics are not logged never waits for the device. A closure gives the same
  // number whenever it is called.
  using Metrics = std::map<std::string, std::function<double()>>;

  struct StepOutput {
    Tensor loss;      // scalar; backward() is called on it
    Metrics metrics;  // logged with the step (recon, kl, …)
  };
  // The loss of one batch of images in [0, 1], at optimizer step `step` (from 0). Nothing is
  // read back to the host.
  virtual StepOutput training_step(const Tensor& images, std::int64_t step) = 0;
  // The same for a whole batch, labels included (what the trainer calls); models that learn
  // from the images alone keep this default.
  virtual StepOutput training_step_on(const Batch& batch, std::int64_t step) {
    return training_step(batch.images, step);
  }
  // What the optimizer updates: every parameter, unless part of the model is frozen.
  virtual std::vector<Tensor> trainable_parameters() { return parameters(); }
  // Called after the optimizer step (EMA codebook updates, dead-code revival, …); nothing is
  // read back to the host.
  virtual void after_step(const Tensor& images, std::int64_t step) {}
  // Reconstructions in [0, 1] of images in [0, 1], in eval mode, without gradients.
  virtual Tensor reconstruct(const Tensor& images) = 0;
  // Extra test metrics; called once at the end of training and by `latent eval`.
  virtual std::map<std::string, double> evaluate_extra(const Dataset& test, Device device) {
    return {};
  }

  // Generative models: n images in [0, 1] decoded from the prior. Others throw.
  virtual Tensor sample(std::int64_t n, Generator& gen);
  // Tokenizers (VQ, FSQ): images -> int32 token grids [N, 7, 7], and back to images.
  virtual Tensor encode_tokens(const Tensor& images);
  virtual Tensor decode_tokens(const Tensor& tokens);
};

// A metric that reads one scalar tensor (detached) when called.
std::function<double()> deferred_item(const Tensor& scalar);
// Calls every metric of a step: the host numbers, by name.
std::map<std::string, double> read_metrics(const TrainableModel::Metrics& metrics);

// The reconstruction term of every model: "mse" (on sigmoid(logits)) or "bce" (with logits),
// averaged over pixels.
Tensor reconstruction_loss(const std::string& kind, const Tensor& logits, const Tensor& images);

// The deterministic autoencoder: x̂ = sigmoid(decoder(encoder(x))).
class Autoencoder : public TrainableModel {
 public:
  Autoencoder(const ConvNetConfig& config, Generator& gen, std::string loss = "mse");

  Tensor encode(const Tensor& images);        // latent grid
  Tensor decode_logits(const Tensor& latent);  // logits
  Tensor forward(const Tensor& images) override;  // logits of the reconstruction

  StepOutput training_step(const Tensor& images, std::int64_t step) override;
  Tensor reconstruct(const Tensor& images) override;

  const ConvNetConfig& config() const { return config_; }

 private:
  ConvNetConfig config_;
  std::string loss_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<Decoder> decoder_;
};

}  // namespace latent::models
