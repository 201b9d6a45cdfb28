// The VAE / β-VAE (include/latent/vae.h): the autoencoder's encoder and decoder around the
// fused reparameterize + KL op, KL annealing and free bits, the test-set ELBO and active
// units. The pictures (samples, interpolations, the 2-D latent scatter plot) are drawn by
// `latent train` (tools/train/vae_pictures.cpp).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "latent/autograd.h"
#include "latent/ops.h"
#include "latent/vae.h"

namespace latent::models {
namespace {

constexpr double kLogvarMin = -30.0, kLogvarMax = 20.0;  // ReparamOptions' defaults
// Evaluation draws ε from offsets 2^62 + batch, far from the training steps' offsets.
constexpr std::uint64_t kEvalOffset = std::uint64_t{1} << 62;
// A unit is active when its KL, averaged over the test set, exceeds this (nats).
constexpr double kActiveUnitNats = 0.01;
// Burda et al. (2016) call a unit active when Cov_x(E_q[z]), the variance of its mean over the
// test set, exceeds this; evaluate_extra reports both counts.
constexpr double kActiveUnitCov = 0.01;

ConvNetConfig with_latent_channels(ConvNetConfig net, std::int64_t channels) {
  net.latent_channels = channels;
  return net;
}

Device device_of(const nn::Module& m) {
  const std::vector<Tensor> params = m.parameters();
  return params.empty() ? Device::cpu() : params.front().device();
}

// KL of every latent unit, ½(μ² + exp(ℓc) − ℓc − 1), as differentiable elementwise ops:
// the per-unit view that free bits and the active-unit count need.
Tensor kl_per_unit(const Tensor& mu, const Tensor& logvar) {
  const Tensor lc = clamp(logvar, kLogvarMin, kLogvarMax);
  return mul(sub(add(square(mu), exp(lc)), add(lc, 1.0)), 0.5);
}

}  // namespace

Vae::Vae(const VaeConfig& c, Generator& gen) : TrainableModel("Vae"), config_(c) {
  LATENT_CHECK(c.loss == "mse" || c.loss == "bce", "Vae: unknown loss '", c.loss,
               "' (mse or bce)");
  LATENT_CHECK(c.beta >= 0 && std::isfinite(c.beta), "Vae: beta must be >= 0, got ", c.beta);
  LATENT_CHECK(c.kl_warmup >= 0 && c.kl_cycle >= 0, "Vae: kl_warmup and kl_cycle must be >= 0");
  LATENT_CHECK(c.free_bits >= 0, "Vae: free_bits must be >= 0, got ", c.free_bits);
  LATENT_CHECK(!c.flat || c.latent_dim > 0, "Vae: latent_dim must be positive, got ",
               c.latent_dim);
  LATENT_CHECK(c.net.latent_channels > 0 && c.net.hidden_channels > 0,
               "Vae: channel counts must be positive");
  const std::int64_t wide = 2 * c.net.hidden_channels;  // channels of the 7×7 stage
  if (c.flat) {
    encoder_ = register_module("encoder", std::make_shared<Encoder>(with_latent_channels(c.net, wide), gen));
    to_posterior_ = register_module(
        "to_posterior", std::make_shared<nn::Linear>(wide * 49, 2 * c.latent_dim, gen));
    from_latent_ = register_module("from_latent",
                                   std::make_shared<nn::Linear>(c.latent_dim, wide * 49, gen));
    decoder_ = register_module("decoder", std::make_shared<Decoder>(with_latent_channels(c.net, wide), gen));
  } else {
    encoder_ = register_module(
        "encoder", std::make_shared<Encoder>(with_latent_channels(c.net, 2 * c.net.latent_channels), gen));
    decoder_ = register_module("decoder", std::make_shared<Decoder>(c.net, gen));
  }
}

Shape Vae::latent_shape() const {
  if (config_.flat) return {config_.latent_dim};
  return {config_.net.latent_channels, 7, 7};
}

Vae::Posterior Vae::encode(const Tensor& images) {
  const Tensor features = encoder_->forward(images);
  if (config_.flat) {
    const Tensor both = to_posterior_->forward(flatten(silu(features), 1));
    return {both.narrow(1, 0, config_.latent_dim),
            both.narrow(1, config_.latent_dim, config_.latent_dim)};
  }
  const std::int64_t c = config_.net.latent_channels;
  return {features.narrow(1, 0, c), features.narrow(1, c, c)};
}

Tensor Vae::decode_logits(const Tensor& z) {
  if (config_.flat) {
    LATENT_CHECK(z.dim() == 2 && z.size(1) == config_.latent_dim, "Vae: expected z [N, ",
                 config_.latent_dim, "], got ", shape_str(z.shape()));
    const Tensor h = silu(from_latent_->forward(z));
    return decoder_->forward(h.reshape({z.size(0), 2 * config_.net.hidden_channels, 7, 7}));
  }
  return decoder_->forward(z);
}

Tensor Vae::forward(const Tensor& images) { return decode_logits(encode(images).mu); }

double Vae::kl_weight(std::int64_t step) const {
  double w = 1.0;
  if (config_.kl_warmup > 0) w *= std::min(1.0, static_cast<double>(step) / config_.kl_warmup);
  if (config_.kl_cycle > 0) {
    // Cyclical annealing (Fu et al., 2019): within each cycle, rise linearly from 0 over the
    // first half, then hold at 1.
    const double phase = static_cast<double>(step % config_.kl_cycle) / config_.kl_cycle;
    w *= std::min(1.0, 2.0 * phase);
  }
  return config_.beta * w;
}

Tensor Vae::reconstruction_nats(const Tensor& logits, const Tensor& images) const {
  const double pixels = static_cast<double>(images.numel() / images.size(0));
  if (config_.loss == "bce") {
    // Bernoulli decoder: −log p(x | z) = Σ_pixels BCE(logits, x) per image.
    return mul(binary_cross_entropy_with_logits(logits, images), pixels);
  }
  // Gaussian decoder N(x̂, σ²I) with σ² at its maximum-likelihood value, the mean squared
  // error: −log p = D/2·(1 + log 2π) + D/2·log σ² per image.
  const Tensor variance = clamp(mse_loss(sigmoid(logits), images), 1e-12, 1e12);
  return add(mul(log(variance), 0.5 * pixels),
             0.5 * pixels * (1.0 + std::log(2.0 * std::numbers::pi)));
}

TrainableModel::StepOutput Vae::training_step(const Tensor& images, std::int64_t step) {
  const Posterior q = encode(images);
  if (config_.beta == 0.0) {
    // β = 0: no KL, no noise; the plain autoencoder with this model's bottleneck.
    const Tensor recon = reconstruction_nats(decode_logits(q.mu), images);
    return {recon, {{"recon", deferred_item(recon)}}};
  }
  const PhiloxKey key{config_.noise_seed, static_cast<std::uint64_t>(step)};
  const ReparamKl zk = reparameterize_kl(q.mu, q.logvar, key);
  const Tensor recon = reconstruction_nats(decode_logits(zk.z), images);
  const double w = kl_weight(step);
  Tensor kl_term, per_unit;
  if (config_.free_bits > 0) {
    // Free bits (Kingma et al., 2016): a unit's batch-mean KL counts at least λ nats, and
    // below λ it gets no gradient, so the encoder is not pushed to switch it off.
    per_unit = mean(kl_per_unit(q.mu, q.logvar), {0});
    kl_term = sum(add(relu(sub(per_unit, config_.free_bits)), config_.free_bits));
  } else {
    kl_term = mean(zk.kl);
  }
  const Tensor loss = w > 0 ? add(recon, mul(kl_term, w)) : recon;
  // The metrics, on the device until they are logged.
  const Tensor recon_value = recon.detach();
  Tensor kl_value, unit_kl;
  {
    NoGradGuard no_grad;
    kl_value = mean(zk.kl.detach());
    if (!per_unit.defined()) per_unit = mean(kl_per_unit(q.mu.detach(), q.logvar.detach()), {0});
    unit_kl = per_unit.detach();
  }
  return {loss,
          {{"recon", deferred_item(recon_value)},
           {"kl", deferred_item(kl_value)},
           {"neg_elbo_nats", [recon_value, kl_value] { return recon_value.item() + kl_value.item(); }},
           // Active units of this batch: batch-mean KL above 0.01 nats.
           {"active_units",
            [unit_kl] {
              double active = 0;
              for (double v : unit_kl.to(DType::f64).to(Device::cpu()).to_vector<double>())
                active += v > kActiveUnitNats;
              return active;
            }},
           {"beta", [w] { return w; }}}};
}

Tensor Vae::reconstruct(const Tensor& images) {
  NoGradGuard no_grad;
  return sigmoid(forward(images));
}

std::map<std::string, double> Vae::evaluate_extra(const Dataset& test, Device device) {
  NoGradGuard no_grad;
  constexpr std::int64_t kBatch = 500;
  const std::int64_t n = test.size();
  LATENT_CHECK(n > 0, "Vae::evaluate_extra: the test set is empty");
  const bool variational = config_.beta > 0;
  double kl_total = 0.0, recon_total = 0.0, squared_error = 0.0, log_normalizer = 0.0;
  std::vector<double> unit_kl, mu_sum, mu_square_sum;
  std::int64_t batch_index = 0, pixels = 0;
  for (std::int64_t begin = 0; begin < n; begin += kBatch, ++batch_index) {
    const std::int64_t count = std::min(kBatch, n - begin);
    const Tensor images = test.images.narrow(0, begin, count).to(device);
    pixels = images.numel() / count;
    const Posterior q = encode(images);
    Tensor z = q.mu;
    if (variational) {
      const PhiloxKey key{config_.noise_seed, kEvalOffset + static_cast<std::uint64_t>(batch_index)};
      const ReparamKl zk = reparameterize_kl(q.mu, q.logvar, key);
      z = zk.z;
      kl_total += sum(zk.kl).item();
      const std::vector<double> units =
          sum(kl_per_unit(q.mu, q.logvar), {0}).to(DType::f64).to(Device::cpu()).to_vector<double>();
      if (unit_kl.empty()) unit_kl.assign(units.size(), 0.0);
      for (std::size_t u = 0; u < units.size(); ++u) unit_kl[u] += units[u];
      // Burda et al.'s activity: the variance over the test set of each unit's mean.
      const std::vector<double> mu_values =
          q.mu.contiguous().to(DType::f64).to(Device::cpu()).to_vector<double>();
      const std::size_t units_per_image = units.size();
      if (mu_sum.empty()) mu_sum.assign(units_per_image, 0.0), mu_square_sum.assign(units_per_image, 0.0);
      for (std::size_t i = 0; i < mu_values.size(); ++i) {
        mu_sum[i % units_per_image] += mu_values[i];
        mu_square_sum[i % units_per_image] += mu_values[i] * mu_values[i];
      }
    }
    const Tensor logits = decode_logits(z);
    if (config_.loss == "bce") {
      recon_total += reconstruction_nats(logits, images).item() * count;
      // The continuous Bernoulli (Loaiza-Ganem & Cunningham, 2019) normalizes the BCE into a
      // density on [0, 1]: log p(x | λ) = −BCE(λ, x) + log C(λ), with the logit a of λ,
      // C = 2·atanh(1 − 2λ)/(1 − 2λ) = a / tanh(a/2) (2 at a = 0).
      for (double a : logits.contiguous().to(DType::f64).to(Device::cpu()).to_vector<double>())
        log_normalizer += std::abs(a) < 1e-4 ? std::log(2.0) + a * a / 12.0
                                             : std::log(a / std::tanh(0.5 * a));
    } else {
      squared_error += sum(square(sub(sigmoid(logits), images))).item();
    }
  }
  double recon = recon_total / n;
  std::map<std::string, double> out{{"latent_units", static_cast<double>(shape_numel(latent_shape()))}};
  // Nats per image of a density on [0, 1]^D to bits per dimension of the 8-bit data: the
  // dequantization correction adds D·ln 256 (a bin of width 1/256 per pixel).
  auto bits_per_dim = [pixels](double nats) {
    return (nats / static_cast<double>(pixels) + std::log(256.0)) / std::log(2.0);
  };
  if (config_.loss != "bce") {
    // σ² is the pooled squared error of the decodings of the sampled z.
    const double variance = std::max(squared_error / (static_cast<double>(n) * pixels), 1e-12);
    recon = 0.5 * pixels * (1.0 + std::log(2.0 * std::numbers::pi * variance));
    out["recon_mse"] = variance;
  } else {
    out["cb_recon_nats"] = recon - log_normalizer / n;
  }
  out["recon_nats"] = recon;
  if (variational) {
    const double kl = kl_total / n;
    std::int64_t active = 0, active_cov = 0;
    for (double total : unit_kl) active += total / n > kActiveUnitNats;
    for (std::size_t u = 0; u < mu_sum.size(); ++u) {
      const double mean_mu = mu_sum[u] / n;
      active_cov += mu_square_sum[u] / n - mean_mu * mean_mu > kActiveUnitCov;
    }
    out["kl_nats"] = kl;
    out["neg_elbo_nats"] = recon + kl;
    out["active_units"] = static_cast<double>(active);
    out["active_units_cov"] = static_cast<double>(active_cov);
    if (config_.loss == "bce") {
      out["cb_neg_elbo_nats"] = out["cb_recon_nats"] + kl;
      out["cb_bits_per_dim"] = bits_per_dim(out["cb_neg_elbo_nats"]);
    } else {
      out["bits_per_dim"] = bits_per_dim(recon + kl);
    }
  }
  return out;
}

Tensor Vae::sample(std::int64_t n, Generator& gen) {
  LATENT_CHECK(n > 0, "Vae::sample: count must be positive, got ", n);
  NoGradGuard no_grad;
  Shape shape{n};
  for (std::int64_t d : latent_shape()) shape.push_back(d);
  return sigmoid(decode_logits(randn(shape, gen, DType::f32, device_of(*this))));
}

}  // namespace latent::models
