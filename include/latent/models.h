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
#include <memory>
#include <string>

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

// The deterministic autoencoder: x̂ = sigmoid(decoder(encoder(x))).
class Autoencoder : public nn::Module {
 public:
  Autoencoder(const ConvNetConfig& config, Generator& gen);

  Tensor encode(const Tensor& images);        // latent grid
  Tensor decode_logits(const Tensor& latent);  // logits
  Tensor forward(const Tensor& images) override;  // logits of the reconstruction

  const ConvNetConfig& config() const { return config_; }

 private:
  ConvNetConfig config_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<Decoder> decoder_;
};

}  // namespace latent::models
