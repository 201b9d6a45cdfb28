// `latent op reparam` (z = μ + exp(½·logvar)·ε) and `latent op kl` (per-sample KL to
// N(0, I)), on .npy files. docs/vae.md.
#include <cstdio>
#include <memory>
#include <string>

#include "latent/latent.h"
#include "latent/vae.h"
#include "tools/latent/commands.h"

namespace latent::cli {
namespace {

struct VaeOpArgs {
  std::string mu, logvar, out;
  std::string device = "cpu";
  double logvar_min = -30.0, logvar_max = 20.0;
};

void add_vae_common(CLI::App* cmd, VaeOpArgs& args) {
  cmd->add_option("mu", args.mu, "Means [N, ...] (.npy, float32 or float64)")->required();
  cmd->add_option("logvar", args.logvar, "Log-variances, the same shape (.npy)")->required();
  cmd->add_option("--logvar-min", args.logvar_min, "Lower clamp of logvar")->capture_default_str();
  cmd->add_option("--logvar-max", args.logvar_max, "Upper clamp of logvar")->capture_default_str();
  cmd->add_option("--device", args.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("-o,--out", args.out, "Output (.npy)")->required();
}

struct Loaded {
  Tensor mu, logvar;
  ReparamOptions options;
};

Loaded load(const VaeOpArgs& args) {
  const Device device = parse_device(args.device);
  Loaded l;
  l.mu = load_npy(args.mu).to(device);
  l.logvar = load_npy(args.logvar).to(device);
  l.options.logvar_min = args.logvar_min;
  l.options.logvar_max = args.logvar_max;
  return l;
}

void save(const std::string& path, const Tensor& t) { save_op_output(path, t); }

void add_vae_ops(CLI::App* op) {
  {
    auto args = std::make_shared<VaeOpArgs>();
    auto seed = std::make_shared<std::uint64_t>(0);
    auto offset = std::make_shared<std::uint64_t>(0);
    auto kl_out = std::make_shared<std::string>();
    CLI::App* cmd = op->add_subcommand(
        "reparam",
        "The reparameterization trick: z = mu + exp(logvar / 2) * eps, eps ~ N(0, 1) from the\n"
        "Philox stream (seed, offset); the same seed and offset give the same eps on every\n"
        "device. With --kl, also the per-sample KL [N] from the same (fused) pass.\n\n"
        "Example:\n  latent op reparam mu.npy logvar.npy --seed 7 -o z.npy --kl kl.npy");
    add_vae_common(cmd, *args);
    cmd->add_option("--seed", *seed, "Philox seed of eps")->capture_default_str();
    cmd->add_option("--offset", *offset, "Philox offset of eps")->capture_default_str();
    cmd->add_option("--kl", *kl_out, "Also write the per-sample KL [N] (.npy)");
    cmd->callback([=] {
      const Loaded l = load(*args);
      const PhiloxKey key{*seed, *offset};
      if (kl_out->empty()) {
        save(args->out, reparameterize(l.mu, l.logvar, key, l.options));
      } else {
        const ReparamKl r = reparameterize_kl(l.mu, l.logvar, key, l.options);
        save(args->out, r.z);
        save(*kl_out, r.kl);
      }
    });
  }
  {
    auto args = std::make_shared<VaeOpArgs>();
    CLI::App* cmd = op->add_subcommand(
        "kl",
        "KL(N(mu, exp(logvar)) || N(0, I)) per sample, in nats: kl[n] = 1/2 sum over every\n"
        "dimension but the first of (mu^2 + exp(logvar) - logvar - 1). Output: [N].\n\n"
        "Example:\n  latent op kl mu.npy logvar.npy -o kl.npy");
    add_vae_common(cmd, *args);
    cmd->callback([=] {
      const Loaded l = load(*args);
      save(args->out, gaussian_kl(l.mu, l.logvar, l.options));
    });
  }
}

static const OpRegistration registration(add_vae_ops);

}  // namespace
}  // namespace latent::cli
