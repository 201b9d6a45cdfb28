// Variational autoencoders: the reparameterization trick, the closed-form Gaussian KL, and
// the VAE / β-VAE model that `latent train --model vae` trains. docs/vae.md explains them.
//
// The ops run on the device of their inputs (cpu, or cuda: a GPU or the SIMT executor) and
// are differentiable in mu and logvar. ε is drawn from Philox keyed (seed, offset, element
// index), bitwise-identical on every backend, and is never stored: the backward pass draws
// it again from the same counter.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "latent/models.h"
#include "latent/random.h"
#include "latent/tensor.h"

namespace latent {

struct ReparamOptions {
  // logvar is clamped to [logvar_min, logvar_max] (Stable Diffusion's autoencoder uses
  // [−30, 20]); outside that range its gradient is 0, as for clamp().
  double logvar_min = -30.0;
  double logvar_max = 20.0;
  // Throw when mu or logvar holds NaN or ±Inf. On a GPU the check is a flag raised by the
  // forward kernel itself, read back after it (one 4-byte copy).
  bool check_finite = true;
};

// z = mu + exp(½·logvar)·ε with ε ~ N(0, I) drawn from the Philox stream `key` (element i of
// the flat tensor takes normal i). mu and logvar: the same shape [N, ...], N ≥ 1.
Tensor reparameterize(const Tensor& mu, const Tensor& logvar, PhiloxKey key,
                      const ReparamOptions& options = {});
Tensor reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen,
                      const ReparamOptions& options = {});

// KL(N(mu, exp(logvar)) ‖ N(0, I)) per sample, in nats: a [N] tensor with
// kl[n] = ½ Σ_j (mu² + exp(logvar) − logvar − 1) over every dimension but the first.
// The sum is deterministic (bitwise-repeatable on each backend).
Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, const ReparamOptions& options = {});

// Both at once, in one pass over mu and logvar, with a fused backward: one kernel reads
// mu, logvar and dL/dz once and writes dL/dmu and dL/dlogvar, adding the KL's gradient.
struct ReparamKl {
  Tensor z;   // as reparameterize
  Tensor kl;  // as gaussian_kl
};
ReparamKl reparameterize_kl(const Tensor& mu, const Tensor& logvar, PhiloxKey key,
                            const ReparamOptions& options = {});
ReparamKl reparameterize_kl(const Tensor& mu, const Tensor& logvar, Generator& gen,
                            const ReparamOptions& options = {});

namespace models {

struct VaeConfig {
  ConvNetConfig net;              // latent_channels: channels of the spatial latent grid
  bool flat = false;              // a latent vector of latent_dim instead of a 7×7 grid
  std::int64_t latent_dim = 16;   // flat only
  double beta = 1.0;              // KL weight; 0 turns the model into a plain autoencoder
  std::int64_t kl_warmup = 0;     // steps of linear KL annealing from 0 (0: off)
  std::int64_t kl_cycle = 0;      // cyclical annealing period in steps (0: off)
  double free_bits = 0.0;         // minimum KL per latent unit in the loss, nats (0: off)
  std::string loss = "mse";       // mse: Gaussian decoder; bce: Bernoulli decoder
  std::uint64_t noise_seed = 0;   // Philox seed of ε; training step s uses offset s
};

// The VAE / β-VAE. The encoder of the autoencoder (models.h) outputs μ and logvar, the
// decoder of the autoencoder maps z back to logits. Per image, in nats:
//   recon = −log p(x | z)        bce: Σ_pixels BCE(logits, x)  (Bernoulli)
//                                 mse: D/2·(1 + log(2π·σ²)), σ² = the batch's mean squared
//                                      error (a Gaussian decoder whose one variance is set
//                                      to its maximum-likelihood value)
//   kl    = KL(q(z | x) ‖ N(0, I))
//   loss  = recon + β·w(step)·kl  (w: annealing; with free bits the KL term is
//           Σ_units max(λ, batch-mean KL of the unit))
//   −ELBO = recon + kl
class Vae : public TrainableModel {
 public:
  Vae(const VaeConfig& config, Generator& gen);

  struct Posterior {
    Tensor mu, logvar;  // [N, C, 7, 7] (spatial) or [N, latent_dim] (flat)
  };
  Posterior encode(const Tensor& images);
  Tensor decode_logits(const Tensor& z);
  Tensor forward(const Tensor& images) override;  // logits of the reconstruction from z = μ

  // The KL weight β·w(step) at an optimizer step.
  double kl_weight(std::int64_t step) const;
  // −log p(x | z) per image (mean over the batch), from the decoder's logits.
  Tensor reconstruction_nats(const Tensor& logits, const Tensor& images) const;

  StepOutput training_step(const Tensor& images, std::int64_t step) override;
  Tensor reconstruct(const Tensor& images) override;
  std::map<std::string, double> evaluate_extra(const Dataset& test, Device device) override;
  Tensor sample(std::int64_t n, Generator& gen) override;

  const VaeConfig& config() const { return config_; }
  // The shape of one sample's latent: {C, 7, 7} or {latent_dim}.
  Shape latent_shape() const;

 private:
  VaeConfig config_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<Decoder> decoder_;
  std::shared_ptr<nn::Linear> to_posterior_;  // flat only: features → (μ, logvar)
  std::shared_ptr<nn::Linear> from_latent_;   // flat only: z → decoder features
};

}  // namespace models
}  // namespace latent
