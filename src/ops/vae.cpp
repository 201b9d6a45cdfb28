// The VAE ops: reparameterize, gaussian_kl and the fused reparameterize_kl.
//
// All three validate, make mu and logvar contiguous, allocate the outputs and call one
// primitive pair of src/backends/vae.h on the inputs' device. Their backward closures keep
// mu and logvar (detached) and the Philox key, never ε: the backward kernel draws ε again.
//
// The fused op records one node with two outputs (z, kl), so its backward launches the one
// fused backward kernel once with both dL/dz and dL/dkl (either undefined when unused).
#include "backends/registry.h"
#include "backends/vae.h"
#include "latent/autograd.h"
#include "latent/ops.h"
#include "latent/vae.h"

namespace latent {
namespace {

using backend::ReparamConfig;

struct Prepared {
  Tensor mu, logvar;  // contiguous (differentiable copies when the inputs were views)
  ReparamConfig config;
};

Prepared prepare(const char* op, const Tensor& mu, const Tensor& logvar, PhiloxKey key,
                 const ReparamOptions& options) {
  LATENT_CHECK(mu.defined() && logvar.defined(), op, ": undefined mu or logvar");
  LATENT_CHECK(is_floating(mu.dtype()) && mu.dtype() == logvar.dtype(), op,
               ": mu and logvar must share a float32 or float64 dtype, got ",
               dtype_name(mu.dtype()), " and ", dtype_name(logvar.dtype()));
  LATENT_CHECK(mu.shape() == logvar.shape(), op, ": mu ", shape_str(mu.shape()),
               " and logvar ", shape_str(logvar.shape()), " must have the same shape");
  LATENT_CHECK(mu.device() == logvar.device(), op, ": mu is on ", mu.device().str(),
               ", logvar on ", logvar.device().str());
  LATENT_CHECK(mu.dim() >= 1 && mu.size(0) > 0, op,
               ": expected a non-empty batch [N, ...] with N >= 1, got ", shape_str(mu.shape()));
  LATENT_CHECK(mu.numel() > 0, op, ": a sample of shape ", shape_str(mu.shape()),
               " has no latent dimensions");
  LATENT_CHECK(options.logvar_min <= options.logvar_max, op, ": logvar clamp [",
               options.logvar_min, ", ", options.logvar_max, "] is empty");
  Prepared p;
  p.mu = mu.contiguous();
  p.logvar = logvar.contiguous();
  p.config.key = key;
  p.config.logvar_min = options.logvar_min;
  p.config.logvar_max = options.logvar_max;
  if (options.check_finite) {
    p.config.nonfinite_mu_message =
        detail::concat(op, ": mu ", shape_str(p.mu.shape()), " holds NaN or Inf");
    p.config.nonfinite_logvar_message =
        detail::concat(op, ": logvar ", shape_str(p.logvar.shape()), " holds NaN or Inf");
  }
  return p;
}

// Non-finite mu / logvar fail the device-side check the forward kernel raises (the
// messages are in p.config): at once on cpu, at the next check point on cuda.
void forward(const Prepared& p, const Tensor& z, const Tensor& kl) {
  backend::lookup<backend::VaeTable>(p.mu.device())
      .reparam_kl_forward(p.config, p.mu, p.logvar, z, kl);
}

// dL/dmu and dL/dlogvar from dL/dz and/or dL/dkl (either may be undefined).
std::vector<Tensor> backward(const ReparamConfig& config, const Tensor& mu,
                             const Tensor& logvar, const Tensor& dL_dz, const Tensor& dL_dkl) {
  const Tensor dz = dL_dz.defined() ? dL_dz.contiguous() : Tensor();
  const Tensor dkl = dL_dkl.defined() ? dL_dkl.contiguous() : Tensor();
  Tensor dmu = empty_like(mu), dlogvar = empty_like(logvar);
  backend::lookup<backend::VaeTable>(mu.device())
      .reparam_kl_backward(config, mu, logvar, dz, dkl, dmu, dlogvar);
  return {dmu, dlogvar};
}

void check_gradient(const char* op, const Tensor& g, const Tensor& like) {
  LATENT_CHECK(g.shape() == like.shape() && g.dtype() == like.dtype() &&
                   g.device() == like.device(),
               op, " backward: gradient ", shape_str(g.shape()), " ", dtype_name(g.dtype()),
               " on ", g.device().str(), " for an output ", shape_str(like.shape()), " ",
               dtype_name(like.dtype()), " on ", like.device().str());
}

}  // namespace

Tensor reparameterize(const Tensor& mu, const Tensor& logvar, PhiloxKey key,
                      const ReparamOptions& options) {
  const Prepared p = prepare("reparameterize", mu, logvar, key, options);
  Tensor z = empty(p.mu.shape(), p.mu.dtype(), p.mu.device());
  forward(p, z, Tensor());
  const Tensor saved_mu = p.mu.detach(), saved_logvar = p.logvar.detach();
  const ReparamConfig config = p.config;
  return record(z, "reparameterize", {p.mu, p.logvar},
                [saved_mu, saved_logvar, config](const Tensor& dL_dz) {
                  check_gradient("reparameterize", dL_dz, saved_mu);
                  return backward(config, saved_mu, saved_logvar, dL_dz, Tensor());
                });
}

Tensor reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen,
                      const ReparamOptions& options) {
  return reparameterize(mu, logvar, gen.next(), options);
}

Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, const ReparamOptions& options) {
  const Prepared p = prepare("gaussian_kl", mu, logvar, PhiloxKey{}, options);
  Tensor kl = empty({p.mu.size(0)}, p.mu.dtype(), p.mu.device());
  forward(p, Tensor(), kl);
  const Tensor saved_mu = p.mu.detach(), saved_logvar = p.logvar.detach();
  const ReparamConfig config = p.config;
  return record(kl, "gaussian_kl", {p.mu, p.logvar},
                [saved_mu, saved_logvar, config, rows = kl.shape()](const Tensor& dL_dkl) {
                  LATENT_CHECK(dL_dkl.shape() == rows, "gaussian_kl backward: gradient ",
                               shape_str(dL_dkl.shape()), " for an output ", shape_str(rows));
                  return backward(config, saved_mu, saved_logvar, Tensor(), dL_dkl);
                });
}

ReparamKl reparameterize_kl(const Tensor& mu, const Tensor& logvar, PhiloxKey key,
                            const ReparamOptions& options) {
  const Prepared p = prepare("reparameterize_kl", mu, logvar, key, options);
  Tensor z = empty(p.mu.shape(), p.mu.dtype(), p.mu.device());
  Tensor kl = empty({p.mu.size(0)}, p.mu.dtype(), p.mu.device());
  forward(p, z, kl);

  const Tensor saved_mu = p.mu.detach(), saved_logvar = p.logvar.detach();
  const ReparamConfig config = p.config;
  const std::vector<Tensor> z_kl =
      record({z, kl}, "reparameterize_kl", {p.mu, p.logvar},
             [saved_mu, saved_logvar, config](const std::vector<Tensor>& dL_dz_dkl) {
               const Tensor &dL_dz = dL_dz_dkl[0], &dL_dkl = dL_dz_dkl[1];
               if (dL_dz.defined()) check_gradient("reparameterize_kl", dL_dz, saved_mu);
               return backward(config, saved_mu, saved_logvar, dL_dz, dL_dkl);
             });
  return {z_kl[0], z_kl[1]};
}

ReparamKl reparameterize_kl(const Tensor& mu, const Tensor& logvar, Generator& gen,
                            const ReparamOptions& options) {
  return reparameterize_kl(mu, logvar, gen.next(), options);
}

}  // namespace latent
