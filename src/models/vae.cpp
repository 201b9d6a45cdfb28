// The VAE / β-VAE (include/latent/vae.h): the autoencoder's encoder and decoder around the
// fused reparameterize + KL op, KL annealing and free bits, the test-set ELBO and active
// units, and the pictures (samples, interpolations, the 2-D latent scatter plot).
#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "latent/train.h"
#include "latent/vae.h"

namespace latent::models {
namespace {

constexpr double kLogvarMin = -30.0, kLogvarMax = 20.0;  // ReparamOptions' defaults
// Evaluation draws ε from offsets 2^62 + batch, far from the training steps' offsets.
constexpr std::uint64_t kEvalOffset = std::uint64_t{1} << 62;
// A unit is active when its KL, averaged over the test set, exceeds this (nats).
constexpr double kActiveUnitNats = 0.01;

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

std::shared_ptr<Vae> make_vae(const train::Config& c, Generator& gen) {
  LATENT_CHECK(c.latent == "spatial" || c.latent == "flat", "vae: unknown --latent '", c.latent,
               "' (spatial or flat)");
  VaeConfig v;
  v.net = c.net;
  v.flat = c.latent == "flat";
  v.latent_dim = c.latent_dim;
  v.beta = c.beta < 0 ? 1.0 : c.beta;
  v.kl_warmup = c.kl_warmup;
  v.kl_cycle = c.kl_cycle;
  v.free_bits = c.free_bits;
  v.loss = c.loss;
  v.noise_seed = c.seed ^ 0x9e3779b97f4a7c15ull;  // its own stream, not the init's
  return std::make_shared<Vae>(v, gen);
}

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
    return {recon, {{"recon", recon.item()}}};
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
  const double recon_value = recon.item();
  const double kl_value = mean(zk.kl.detach()).item();
  // Active units of this batch: batch-mean KL above 0.01 nats.
  double active = 0;
  {
    NoGradGuard no_grad;
    if (!per_unit.defined()) per_unit = mean(kl_per_unit(q.mu.detach(), q.logvar.detach()), {0});
    for (double v : per_unit.detach().to(DType::f64).to(Device::cpu()).to_vector<double>())
      active += v > kActiveUnitNats;
  }
  return {loss,
          {{"recon", recon_value},
           {"kl", kl_value},
           {"neg_elbo_nats", recon_value + kl_value},
           {"active_units", active},
           {"beta", w}}};
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
  double kl_total = 0.0, recon_total = 0.0, squared_error = 0.0;
  std::vector<double> unit_kl;
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
    }
    const Tensor logits = decode_logits(z);
    if (config_.loss == "bce") {
      recon_total += reconstruction_nats(logits, images).item() * count;
    } else {
      squared_error += sum(square(sub(sigmoid(logits), images))).item();
    }
  }
  double recon = recon_total / n;
  if (config_.loss != "bce") {
    const double variance = std::max(squared_error / (static_cast<double>(n) * pixels), 1e-12);
    recon = 0.5 * pixels * (1.0 + std::log(2.0 * std::numbers::pi * variance));
  }
  std::map<std::string, double> out{{"recon_nats", recon},
                                    {"latent_units", static_cast<double>(shape_numel(latent_shape()))}};
  if (variational) {
    const double kl = kl_total / n;
    std::int64_t active = 0;
    for (double total : unit_kl) active += total / n > kActiveUnitNats;
    out["kl_nats"] = kl;
    out["neg_elbo_nats"] = recon + kl;
    out["active_units"] = static_cast<double>(active);
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

// ------------------------------------------------------------------ pictures
namespace {

// Ten well-separated colours, one per Fashion-MNIST class (matplotlib's tab10).
constexpr std::array<std::array<float, 3>, 10> kClassColours{{
    {0.12f, 0.47f, 0.71f}, {1.00f, 0.50f, 0.05f}, {0.17f, 0.63f, 0.17f}, {0.84f, 0.15f, 0.16f},
    {0.58f, 0.40f, 0.74f}, {0.55f, 0.34f, 0.29f}, {0.89f, 0.47f, 0.76f}, {0.50f, 0.50f, 0.50f},
    {0.74f, 0.74f, 0.13f}, {0.09f, 0.75f, 0.81f},
}};

// An RGB canvas [3, H, W] in [0, 1], drawn pixel by pixel.
class Canvas {
 public:
  Canvas(std::int64_t height, std::int64_t width)
      : h_(height), w_(width), pixels_(3 * height * width, 1.0f) {}
  void put(std::int64_t y, std::int64_t x, const std::array<float, 3>& rgb) {
    if (y < 0 || y >= h_ || x < 0 || x >= w_) return;
    for (int c = 0; c < 3; ++c) pixels_[(c * h_ + y) * w_ + x] = rgb[c];
  }
  void square(std::int64_t cy, std::int64_t cx, int radius, const std::array<float, 3>& rgb) {
    for (std::int64_t y = cy - radius; y <= cy + radius; ++y)
      for (std::int64_t x = cx - radius; x <= cx + radius; ++x) put(y, x, rgb);
  }
  Tensor tensor() const { return from_vector(pixels_, {3, h_, w_}); }

 private:
  std::int64_t h_, w_;
  std::vector<float> pixels_;
};

// The test set's 2-D means as a scatter plot coloured by class, with the prior's 1σ, 2σ and
// 3σ circles and the axes in grey, and a legend strip of the ten class colours (0 … 9, left
// to right) below.
Tensor scatter_plot(const std::vector<float>& xy, const std::vector<std::int32_t>& labels) {
  constexpr std::int64_t kSize = 512, kMargin = 16, kLegend = 28;
  const std::size_t n = labels.size();
  // Symmetric range: the 99.5th percentile of |coordinate|, so a few outliers do not shrink
  // the cloud, and never less than the prior's 3σ.
  std::vector<float> magnitudes(xy.size());
  for (std::size_t i = 0; i < xy.size(); ++i) magnitudes[i] = std::abs(xy[i]);
  std::sort(magnitudes.begin(), magnitudes.end());
  const double extent =
      1.05 * std::max(3.0, static_cast<double>(
                               magnitudes[std::min(magnitudes.size() - 1,
                                                   static_cast<std::size_t>(0.995 * magnitudes.size()))]));
  const double scale = (kSize - 2 * kMargin) / (2.0 * extent);
  auto to_x = [&](double v) { return static_cast<std::int64_t>(std::lround(kSize / 2.0 + v * scale)); };
  auto to_y = [&](double v) { return static_cast<std::int64_t>(std::lround(kSize / 2.0 - v * scale)); };

  Canvas canvas(kSize + kLegend, kSize);
  const std::array<float, 3> grey{0.8f, 0.8f, 0.8f}, frame{0.3f, 0.3f, 0.3f};
  for (std::int64_t i = 0; i < kSize; ++i) {
    canvas.put(to_y(0.0), i, grey);
    canvas.put(i, to_x(0.0), grey);
    canvas.put(0, i, frame);
    canvas.put(kSize - 1, i, frame);
    canvas.put(i, 0, frame);
    canvas.put(i, kSize - 1, frame);
  }
  for (int r = 1; r <= 3; ++r) {
    for (int k = 0; k < 2000; ++k) {
      const double a = 2.0 * std::numbers::pi * k / 2000.0;
      canvas.put(to_y(r * std::sin(a)), to_x(r * std::cos(a)), grey);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto& colour = kClassColours[static_cast<std::size_t>(labels[i]) % 10];
    canvas.square(to_y(xy[2 * i + 1]), to_x(xy[2 * i]), 1, colour);
  }
  for (std::int64_t c = 0; c < 10; ++c) {
    const std::int64_t cx = kMargin + 8 + c * (kSize - 2 * kMargin) / 10;
    canvas.square(kSize + kLegend / 2, cx, 6, kClassColours[c]);
  }
  return canvas.tensor();
}

// The index of the first test image of each class (−1 where a class is absent).
std::array<std::int64_t, 10> first_of_each_class(const Dataset& test) {
  std::array<std::int64_t, 10> first;
  first.fill(-1);
  const std::vector<std::int32_t> labels = test.labels.to_vector<std::int32_t>();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    if (c < 10 && first[c] < 0) first[c] = static_cast<std::int64_t>(i);
  }
  return first;
}

}  // namespace

void Vae::write_artifacts(const std::string& out_dir, const Dataset& test, Device device) {
  NoGradGuard no_grad;
  // Samples from the prior.
  Generator gen(config_.noise_seed ^ 0x5eed5eed5eedull);
  save_png(out_dir + "/samples.png",
           image_grid(sample(64, gen).to(Device::cpu()), 8, 2, 1.0));

  // Interpolation strips: image A, ten decodings along the line from μ(A) to μ(B), image B.
  const std::array<std::int64_t, 10> first = first_of_each_class(test);
  const std::array<std::pair<int, int>, 4> pairs{{{0, 1}, {7, 9}, {8, 3}, {2, 5}}};
  std::vector<Tensor> tiles;
  constexpr int kSteps = 10;
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    std::int64_t a = first[pairs[p].first], b = first[pairs[p].second];
    if (a < 0 || b < 0) {  // small or unusual test sets: consecutive images instead
      a = static_cast<std::int64_t>(2 * p) % test.size();
      b = static_cast<std::int64_t>(2 * p + 1) % test.size();
    }
    const Tensor ends = concat({test.images.narrow(0, a, 1), test.images.narrow(0, b, 1)}, 0);
    const Tensor mu = encode(ends.to(device)).mu.contiguous();
    const Tensor mu_a = mu.narrow(0, 0, 1), mu_b = mu.narrow(0, 1, 1);
    std::vector<Tensor> steps;
    for (int k = 0; k < kSteps; ++k) {
      const double t = static_cast<double>(k) / (kSteps - 1);
      steps.push_back(add(mul(mu_a, 1.0 - t), mul(mu_b, t)));
    }
    const Tensor decoded = sigmoid(decode_logits(concat(steps, 0))).to(Device::cpu());
    tiles.push_back(ends.narrow(0, 0, 1).squeeze(0));
    for (int k = 0; k < kSteps; ++k) tiles.push_back(decoded.narrow(0, k, 1).squeeze(0));
    tiles.push_back(ends.narrow(0, 1, 1).squeeze(0));
  }
  save_png(out_dir + "/interpolation.png", image_grid(tiles, kSteps + 2, 2, 1.0));

  // The latent space itself, when it is a plane.
  if (shape_numel(latent_shape()) == 2) {
    std::vector<float> xy;
    constexpr std::int64_t kBatch = 500;
    for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
      const std::int64_t count = std::min(kBatch, test.size() - begin);
      const Tensor mu = encode(test.images.narrow(0, begin, count).to(device)).mu;
      const std::vector<float> v = mu.contiguous().to(Device::cpu()).to(DType::f32).to_vector<float>();
      xy.insert(xy.end(), v.begin(), v.end());
    }
    save_png(out_dir + "/latent_scatter.png",
             scatter_plot(xy, test.labels.to_vector<std::int32_t>()));
  }
}

}  // namespace latent::models
