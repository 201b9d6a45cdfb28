#include "latent/models.h"

#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent::models {

namespace {
void check_config(const ConvNetConfig& c) {
  LATENT_CHECK(c.image_channels > 0 && c.hidden_channels > 0 && c.latent_channels > 0,
               "ConvNetConfig: channel counts must be positive (image ", c.image_channels,
               ", hidden ", c.hidden_channels, ", latent ", c.latent_channels, ")");
}
}  // namespace

Encoder::Encoder(const ConvNetConfig& c, Generator& gen) : nn::Module("Encoder") {
  check_config(c);
  const std::int64_t h = c.hidden_channels;
  // One statement per layer: the layers draw their initial weights from `gen` in order.
  layers_ = register_module("layers", std::make_shared<nn::Sequential>());
  layers_->push_back(std::make_shared<nn::Conv2d>(c.image_channels, h, 4, gen, nn::ConvOptions{2, 1}));
  layers_->push_back(std::make_shared<nn::SiLU>());
  layers_->push_back(std::make_shared<nn::Conv2d>(h, 2 * h, 4, gen, nn::ConvOptions{2, 1}));
  layers_->push_back(std::make_shared<nn::SiLU>());
  layers_->push_back(
      std::make_shared<nn::Conv2d>(2 * h, c.latent_channels, 3, gen, nn::ConvOptions{1, 1}));
}

Tensor Encoder::forward(const Tensor& images) {
  LATENT_CHECK(images.dim() == 4 && images.size(2) == 28 && images.size(3) == 28,
               "Encoder: expected images [N, C, 28, 28], got ", shape_str(images.shape()));
  return layers_->forward(images);
}

Decoder::Decoder(const ConvNetConfig& c, Generator& gen) : nn::Module("Decoder") {
  check_config(c);
  const std::int64_t h = c.hidden_channels;
  layers_ = register_module("layers", std::make_shared<nn::Sequential>());
  layers_->push_back(
      std::make_shared<nn::Conv2d>(c.latent_channels, 2 * h, 3, gen, nn::ConvOptions{1, 1}));
  layers_->push_back(std::make_shared<nn::SiLU>());
  layers_->push_back(std::make_shared<nn::ConvTranspose2d>(2 * h, h, 4, gen, nn::ConvOptions{2, 1}));
  layers_->push_back(std::make_shared<nn::SiLU>());
  layers_->push_back(
      std::make_shared<nn::ConvTranspose2d>(h, c.image_channels, 4, gen, nn::ConvOptions{2, 1}));
}

Tensor Decoder::forward(const Tensor& latent) {
  LATENT_CHECK(latent.dim() == 4 && latent.size(2) == 7 && latent.size(3) == 7,
               "Decoder: expected a latent grid [N, C, 7, 7], got ", shape_str(latent.shape()));
  return layers_->forward(latent);
}

Autoencoder::Autoencoder(const ConvNetConfig& c, Generator& gen, std::string loss)
    : TrainableModel("Autoencoder"), config_(c), loss_(std::move(loss)) {
  LATENT_CHECK(loss_ == "mse" || loss_ == "bce", "Autoencoder: unknown loss '", loss_,
               "' (mse or bce)");
  encoder_ = register_module("encoder", std::make_shared<Encoder>(c, gen));
  decoder_ = register_module("decoder", std::make_shared<Decoder>(c, gen));
}

Tensor Autoencoder::encode(const Tensor& images) { return encoder_->forward(images); }
Tensor Autoencoder::decode_logits(const Tensor& latent) { return decoder_->forward(latent); }
Tensor Autoencoder::forward(const Tensor& images) { return decode_logits(encode(images)); }

TrainableModel::StepOutput Autoencoder::training_step(const Tensor& images, std::int64_t) {
  return {reconstruction_loss(loss_, forward(images), images), {}};
}

Tensor Autoencoder::reconstruct(const Tensor& images) {
  NoGradGuard no_grad;
  return sigmoid(forward(images));
}

Tensor reconstruction_loss(const std::string& kind, const Tensor& logits, const Tensor& images) {
  if (kind == "bce") return binary_cross_entropy_with_logits(logits, images);
  LATENT_CHECK(kind == "mse", "reconstruction_loss: unknown kind '", kind, "' (mse or bce)");
  return mse_loss(sigmoid(logits), images);
}

std::function<double()> deferred_item(const Tensor& scalar) {
  const Tensor value = scalar.detach();
  LATENT_CHECK(value.defined() && value.numel() == 1, "deferred_item: expected a tensor of one "
               "element, got ", value.defined() ? shape_str(value.shape()) : "undefined");
  return [value] { return value.item(); };
}

std::map<std::string, double> read_metrics(const TrainableModel::Metrics& metrics) {
  std::map<std::string, double> values;
  for (const auto& [name, read] : metrics) values[name] = read();
  return values;
}

Tensor TrainableModel::sample(std::int64_t, Generator&) {
  LATENT_FAIL(type_name(), " is not a generative model: it cannot sample (train a vae)");
}
Tensor TrainableModel::encode_tokens(const Tensor&) {
  LATENT_FAIL(type_name(), " has no discrete tokens (train a vqvae or fsq model)");
}
Tensor TrainableModel::decode_tokens(const Tensor&) {
  LATENT_FAIL(type_name(), " has no discrete tokens (train a vqvae or fsq model)");
}

}  // namespace latent::models
