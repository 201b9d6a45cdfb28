// The training Config: its JSON form (stored in every checkpoint), its validation, and the
// models it names, each built from its own option struct.
#include <cmath>
#include <nlohmann/json.hpp>

#include "latent/fsq.h"
#include "latent/vae.h"
#include "latent/vq.h"
#include "tools/train/train.h"

namespace latent::train {

using json = nlohmann::json;

// ------------------------------------------------------------------ config
std::string config_to_json(const Config& c) {
  const json j = {
      {"model", c.model},
      {"device", c.device},
      {"epochs", c.epochs},
      {"steps", c.steps},
      {"batch_size", c.batch_size},
      {"lr", c.lr},
      {"weight_decay", c.weight_decay},
      {"grad_clip", c.grad_clip},
      {"seed", c.seed},
      {"image_channels", c.net.image_channels},
      {"hidden_channels", c.net.hidden_channels},
      {"latent_channels", c.net.latent_channels},
      {"loss", c.loss},
      {"data_dir", c.data_dir},
      {"train_limit", c.train_limit},
      {"test_limit", c.test_limit},
      {"out_dir", c.out_dir},
      {"checkpoint_every", c.checkpoint_every},
      {"log_every", c.log_every},
      {"beta", c.beta},
      {"latent", c.latent},
      {"latent_dim", c.latent_dim},
      {"kl_warmup", c.kl_warmup},
      {"kl_cycle", c.kl_cycle},
      {"free_bits", c.free_bits},
      {"codebook_size", c.codebook_size},
      {"code_dim", c.code_dim},
      {"ema", c.ema},
      {"decay", c.decay},
      {"dead_code_threshold", c.dead_code_threshold},
      {"kmeans_init", c.kmeans_init},
      {"cosine", c.cosine},
      {"levels", c.levels},
      {"fsq_symmetric", c.fsq_symmetric},
  };
  return j.dump();
}

Config config_from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    LATENT_FAIL("train config: malformed JSON: ", e.what());
  }
  Config c;
  try {
    c.model = j.value("model", c.model);
    c.device = j.value("device", c.device);
    c.epochs = j.value("epochs", c.epochs);
    c.steps = j.value("steps", c.steps);
    c.batch_size = j.value("batch_size", c.batch_size);
    c.lr = j.value("lr", c.lr);
    c.weight_decay = j.value("weight_decay", c.weight_decay);
    c.grad_clip = j.value("grad_clip", c.grad_clip);
    c.seed = j.value("seed", c.seed);
    c.net.image_channels = j.value("image_channels", c.net.image_channels);
    c.net.hidden_channels = j.value("hidden_channels", c.net.hidden_channels);
    c.net.latent_channels = j.value("latent_channels", c.net.latent_channels);
    c.loss = j.value("loss", c.loss);
    c.data_dir = j.value("data_dir", c.data_dir);
    c.train_limit = j.value("train_limit", c.train_limit);
    c.test_limit = j.value("test_limit", c.test_limit);
    c.out_dir = j.value("out_dir", c.out_dir);
    c.checkpoint_every = j.value("checkpoint_every", c.checkpoint_every);
    c.log_every = j.value("log_every", c.log_every);
    c.beta = j.value("beta", c.beta);
    c.latent = j.value("latent", c.latent);
    c.latent_dim = j.value("latent_dim", c.latent_dim);
    c.kl_warmup = j.value("kl_warmup", c.kl_warmup);
    c.kl_cycle = j.value("kl_cycle", c.kl_cycle);
    c.free_bits = j.value("free_bits", c.free_bits);
    c.codebook_size = j.value("codebook_size", c.codebook_size);
    c.code_dim = j.value("code_dim", c.code_dim);
    c.ema = j.value("ema", c.ema);
    c.decay = j.value("decay", c.decay);
    c.dead_code_threshold = j.value("dead_code_threshold", c.dead_code_threshold);
    c.kmeans_init = j.value("kmeans_init", c.kmeans_init);
    c.cosine = j.value("cosine", c.cosine);
    c.levels = j.value("levels", c.levels);
    c.fsq_symmetric = j.value("fsq_symmetric", c.fsq_symmetric);
  } catch (const json::exception& e) {
    LATENT_FAIL("train config: a field has the wrong type: ", e.what());
  }
  return c;
}

void validate_config(const Config& c) {
  LATENT_CHECK(c.loss == "mse" || c.loss == "bce", "train: unknown loss '", c.loss,
               "' (mse or bce)");
  LATENT_CHECK(c.batch_size > 0, "train: batch size must be positive, got ", c.batch_size);
  LATENT_CHECK(c.epochs > 0 || c.steps > 0, "train: need epochs > 0 or steps > 0");
  LATENT_CHECK(c.steps >= 0 && c.train_limit >= 0 && c.test_limit >= 0 &&
                   c.checkpoint_every >= 0,
               "train: steps, limits and checkpoint interval must not be negative");
  LATENT_CHECK(c.lr > 0 && std::isfinite(c.lr), "train: learning rate must be positive, got ",
               c.lr);
  LATENT_CHECK(c.grad_clip >= 0, "train: grad_clip must not be negative, got ", c.grad_clip);
}

models::VaeConfig vae_config(const Config& c) {
  LATENT_CHECK(c.latent == "spatial" || c.latent == "flat", "vae: unknown --latent '", c.latent,
               "' (spatial or flat)");
  models::VaeConfig v;
  v.net = c.net;
  v.flat = c.latent == "flat";
  v.latent_dim = c.latent_dim;
  v.beta = c.beta < 0 ? 1.0 : c.beta;
  v.kl_warmup = c.kl_warmup;
  v.kl_cycle = c.kl_cycle;
  v.free_bits = c.free_bits;
  v.loss = c.loss;
  v.noise_seed = c.seed ^ 0x9e3779b97f4a7c15ull;  // its own stream, not the init's
  return v;
}

models::VqVaeConfig vqvae_config(const Config& c) {
  models::VqVaeConfig v;
  v.net = c.net;
  v.loss = c.loss;
  models::VectorQuantizerConfig& q = v.quantizer;
  q.codebook_size = c.codebook_size;
  q.code_dim = c.code_dim;
  q.beta = c.beta < 0 ? 0.25 : c.beta;
  q.cosine = c.cosine;
  q.ema = c.ema;
  q.decay = c.decay;
  q.dead_code_threshold = c.dead_code_threshold;
  q.kmeans_init = c.kmeans_init;
  q.seed = c.seed;
  return v;
}

std::shared_ptr<models::TrainableModel> make_model(const Config& c, Generator& gen) {
  // One line per model.
  if (c.model == "ae") return std::make_shared<models::Autoencoder>(c.net, gen, c.loss);
  if (c.model == "vae") return std::make_shared<models::Vae>(vae_config(c), gen);
  if (c.model == "fsq") {
    FsqOptions options;
    options.symmetric = c.fsq_symmetric;
    return std::make_shared<models::FsqAutoencoder>(c.net, c.levels, gen, c.loss, options);
  }
  if (c.model == "vqvae") return std::make_shared<models::VqVae>(vqvae_config(c), gen);
  LATENT_FAIL("train: unknown model '", c.model, "' (available: ae, fsq, vae, vqvae)");
}

}  // namespace latent::train
