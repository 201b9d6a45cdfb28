// The training Config: its JSON form (stored in every checkpoint), its validation, and the
// models it names, each built from its own option struct.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "latent/fsq.h"
#include "latent/prior.h"
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
      {"lr_schedule", c.lr_schedule},
      {"warmup_steps", c.warmup_steps},
      {"tokenizer", c.tokenizer},
      {"tokenizer_config", c.tokenizer_config},
      {"prior_width", c.prior_width},
      {"prior_layers", c.prior_layers},
      {"prior_heads", c.prior_heads},
      {"class_dropout", c.class_dropout},
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
  LATENT_CHECK(j.is_object(), "train config: expected a JSON object, got ", j.type_name());
  // Strict: a checkpoint written by latent reads back exactly; a missing key, an unknown key
  // or a value of another type (4.5 for an integer, −1 for the seed) is an error naming it.
  const json known = json::parse(config_to_json(Config{}));
  for (const auto& item : j.items()) {
    LATENT_CHECK(known.contains(item.key()), "train config: unknown key '", item.key(), "'");
  }
  auto field = [&](const char* key) -> const json& {
    LATENT_CHECK(j.contains(key), "train config: missing key '", key, "'");
    return j.at(key);
  };
  auto read = [&](const char* key, auto& out) {
    using T = std::decay_t<decltype(out)>;
    const json& v = field(key);
    if constexpr (std::is_same_v<T, bool>) {
      LATENT_CHECK(v.is_boolean(), "train config: '", key, "' must be true or false, got ",
                   v.dump());
    } else if constexpr (std::is_unsigned_v<T>) {
      LATENT_CHECK(v.is_number_unsigned(), "train config: '", key,
                   "' must be a non-negative integer, got ", v.dump());
    } else if constexpr (std::is_integral_v<T>) {
      LATENT_CHECK(v.is_number_integer(), "train config: '", key, "' must be an integer, got ",
                   v.dump());
    } else if constexpr (std::is_floating_point_v<T>) {
      LATENT_CHECK(v.is_number(), "train config: '", key, "' must be a number, got ", v.dump());
    } else if constexpr (std::is_same_v<T, std::string>) {
      LATENT_CHECK(v.is_string(), "train config: '", key, "' must be a string, got ", v.dump());
    } else {
      LATENT_CHECK(v.is_array(), "train config: '", key, "' must be an array, got ", v.dump());
      for (const json& e : v)
        LATENT_CHECK(e.is_number_integer(), "train config: '", key,
                     "' must hold integers, got ", v.dump());
    }
    out = v.get<T>();
  };
  Config c;
  try {
    read("model", c.model);
    read("device", c.device);
    read("epochs", c.epochs);
    read("steps", c.steps);
    read("batch_size", c.batch_size);
    read("lr", c.lr);
    read("weight_decay", c.weight_decay);
    read("grad_clip", c.grad_clip);
    read("seed", c.seed);
    read("image_channels", c.net.image_channels);
    read("hidden_channels", c.net.hidden_channels);
    read("latent_channels", c.net.latent_channels);
    read("loss", c.loss);
    read("data_dir", c.data_dir);
    read("train_limit", c.train_limit);
    read("test_limit", c.test_limit);
    read("out_dir", c.out_dir);
    read("checkpoint_every", c.checkpoint_every);
    read("log_every", c.log_every);
    read("beta", c.beta);
    read("latent", c.latent);
    read("latent_dim", c.latent_dim);
    read("kl_warmup", c.kl_warmup);
    read("kl_cycle", c.kl_cycle);
    read("free_bits", c.free_bits);
    read("codebook_size", c.codebook_size);
    read("code_dim", c.code_dim);
    read("ema", c.ema);
    read("decay", c.decay);
    read("dead_code_threshold", c.dead_code_threshold);
    read("kmeans_init", c.kmeans_init);
    read("cosine", c.cosine);
    read("levels", c.levels);
    read("fsq_symmetric", c.fsq_symmetric);
    // Added after the first checkpoints were written: absent in those, which keep the
    // defaults (a constant learning rate, no prior).
    const auto read_optional = [&](const char* key, auto& out) {
      if (j.contains(key)) read(key, out);
    };
    read_optional("lr_schedule", c.lr_schedule);
    read_optional("warmup_steps", c.warmup_steps);
    read_optional("tokenizer", c.tokenizer);
    read_optional("tokenizer_config", c.tokenizer_config);
    read_optional("prior_width", c.prior_width);
    read_optional("prior_layers", c.prior_layers);
    read_optional("prior_heads", c.prior_heads);
    read_optional("class_dropout", c.class_dropout);
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
  LATENT_CHECK(c.lr_schedule == "constant" || c.lr_schedule == "cosine",
               "train: unknown --lr-schedule '", c.lr_schedule, "' (constant or cosine)");
  LATENT_CHECK(c.warmup_steps >= 0, "train: warmup_steps must not be negative, got ",
               c.warmup_steps);
  if (c.model == "prior") {
    LATENT_CHECK(!c.tokenizer.empty() || !c.tokenizer_config.empty(),
                 "train: --model prior needs --tokenizer <a vqvae or fsq checkpoint>");
    LATENT_CHECK(c.class_dropout >= 0 && c.class_dropout <= 1,
                 "train: class_dropout must lie in [0, 1], got ", c.class_dropout);
  }
}

double scheduled_lr(const Config& c, std::int64_t step, std::int64_t total_steps) {
  if (c.warmup_steps > 0 && step < c.warmup_steps)
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.lr_schedule != "cosine") return c.lr;
  const double span = static_cast<double>(std::max<std::int64_t>(total_steps - c.warmup_steps, 1));
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / span);
  return c.lr * 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress));
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
  if (c.model == "prior") {
    LATENT_CHECK(!c.tokenizer_config.empty(), "train: the prior's tokenizer config is not "
                 "recorded (run() reads it from --tokenizer)");
    const Config t = config_from_json(c.tokenizer_config);
    LATENT_CHECK(t.model == "vqvae" || t.model == "fsq", "train: the prior's tokenizer must be a "
                 "vqvae or fsq checkpoint, ", c.tokenizer, " holds a '", t.model, "' model");
    Generator tokenizer_gen(t.seed);
    std::shared_ptr<models::TrainableModel> tokenizer = make_model(t, tokenizer_gen);
    models::PriorConfig p;
    p.vocabulary = t.model == "vqvae" ? t.codebook_size : fsq_codebook_size(t.levels);
    p.width = c.prior_width;
    p.layers = c.prior_layers;
    p.heads = c.prior_heads;
    return std::make_shared<models::TokenPrior>(tokenizer, p, gen, c.class_dropout,
                                                c.seed ^ 0x5851f42d4c957f2dull);
  }
  LATENT_FAIL("train: unknown model '", c.model, "' (available: ae, fsq, prior, vae, vqvae)");
}

}  // namespace latent::train
