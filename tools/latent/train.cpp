// `latent train` and `latent eval`.
#include <cstdio>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "tools/train/train.h"
#include "tools/latent/commands.h"

namespace latent::cli {

void add_train(CLI::App& app) {
  auto config = std::make_shared<train::Config>();
  auto resume = std::make_shared<std::string>();
  auto quiet = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Train a model on Fashion-MNIST; writes checkpoints, metrics.jsonl and a\n"
      "reconstruction grid to --out and prints the test MSE and PSNR.\n\n"
      "Example:\n  latent train --model ae --epochs 2            # into runs/ae\n"
      "  latent train --resume runs/ae/checkpoint-200.safetensors --out runs/ae");
  cmd->add_option("--model", config->model,
                  "Model to train: ae (autoencoder), vae (VAE / beta-VAE), vqvae (VQ-VAE), fsq "
                  "(finite scalar quantization), prior (a transformer over a vqvae or fsq tokenizer's "
                  "token grids: needs --tokenizer)")
      ->capture_default_str();
  cmd->add_option("--device", config->device, "cpu, cuda, cuda:N or auto")->capture_default_str();
  cmd->add_option("--epochs", config->epochs, "Passes over the training set")->capture_default_str();
  cmd->add_option("--steps", config->steps, "Total optimizer steps (overrides --epochs when > 0)")
      ->capture_default_str();
  cmd->add_option("--batch-size", config->batch_size, "Images per step")->capture_default_str();
  cmd->add_option("--lr", config->lr, "AdamW learning rate")->capture_default_str();
  cmd->add_option("--lr-schedule", config->lr_schedule,
                  "constant, or cosine (decays from --lr to 0 over the run)")
      ->capture_default_str();
  cmd->add_option("--warmup-steps", config->warmup_steps,
                  "Steps of linear learning-rate warm-up (0: none)")
      ->capture_default_str();
  cmd->add_option("--weight-decay", config->weight_decay, "AdamW decoupled weight decay")
      ->capture_default_str();
  cmd->add_option("--grad-clip", config->grad_clip, "Max global gradient norm (0: off)")
      ->capture_default_str();
  cmd->add_option("--seed", config->seed, "Seed of initialization and shuffling")
      ->capture_default_str();
  cmd->add_option("--hidden-channels", config->net.hidden_channels,
                  "Channels of the first conv (the 7x7 stage has twice as many)")
      ->capture_default_str();
  cmd->add_option("--latent-channels", config->net.latent_channels,
                  "Channels of the 7x7 latent grid")
      ->capture_default_str();
  cmd->add_option("--loss", config->loss, "Reconstruction loss: mse or bce")->capture_default_str();
  cmd->add_option("--data-dir", config->data_dir,
                  "Directory of the four Fashion-MNIST .gz files (default: the Debian package's)");
  cmd->add_option("--train-limit", config->train_limit, "Train on the first N images only (0: all)")
      ->capture_default_str();
  cmd->add_option("--test-limit", config->test_limit, "Evaluate on the first N test images (0: all)")
      ->capture_default_str();
  cmd->add_option("--out", config->out_dir, "Output directory (default: runs/<model>)");
  cmd->add_flag("--overwrite", config->overwrite,
                "Replace a run already in --out (its metrics.jsonl and checkpoints)");
  cmd->add_option("--checkpoint-every", config->checkpoint_every,
                  "Steps between periodic checkpoints (0: final only)")
      ->capture_default_str();
  cmd->add_option("--log-every", config->log_every, "Steps between metrics lines")
      ->capture_default_str();
  cmd->add_option("--resume", *resume, "Continue from this checkpoint");

  // VAE / beta-VAE
  cmd->add_option("--beta", config->beta,
                  "vae: KL weight (default 1); vqvae: commitment weight (default 0.25)");
  cmd->add_option("--latent", config->latent, "vae: spatial (7x7 grid) or flat (a vector)")
      ->capture_default_str();
  cmd->add_option("--latent-dim", config->latent_dim, "vae --latent flat: dimension")
      ->capture_default_str();
  cmd->add_option("--kl-warmup", config->kl_warmup, "vae: steps of linear KL annealing from 0")
      ->capture_default_str();
  cmd->add_option("--kl-cycle", config->kl_cycle, "vae: cyclical KL annealing period in steps")
      ->capture_default_str();
  cmd->add_option("--free-bits", config->free_bits, "vae: minimum KL per latent dimension (nats)")
      ->capture_default_str();
  // VQ-VAE
  cmd->add_option("--codebook-size", config->codebook_size, "vqvae: number of codes K")
      ->capture_default_str();
  cmd->add_option("--code-dim", config->code_dim, "vqvae: code vector length D")
      ->capture_default_str();
  cmd->add_flag("--ema", config->ema, "vqvae: EMA codebook updates instead of gradients");
  cmd->add_option("--decay", config->decay, "vqvae --ema: EMA decay")->capture_default_str();
  cmd->add_option("--dead-code-threshold", config->dead_code_threshold,
                  "vqvae --ema: revive codes whose EMA count falls below this (0: off)")
      ->capture_default_str();
  cmd->add_flag("--kmeans-init", config->kmeans_init,
                "vqvae: k-means codebook initialization (costs N·K·D per iteration on the "
                "first batch: seconds at K = 100000)");
  cmd->add_flag("--cosine", config->cosine, "vqvae: cosine-similarity code lookup");
  // FSQ
  add_levels_option(cmd, &config->levels,
                    "fsq: levels per dimension, e.g. 8,5,5,5. The FSQ paper's sets: 2^8: 8,6,5; "
                    "2^10: 8,5,5,5; 2^12: 7,5,5,5,5; 2^14: 8,8,8,6,5; 2^16: 8,8,8,5,5,5. A level "
                    "of 2 needs --symmetric (otherwise the channel collapses to one code)");
  cmd->add_flag("--symmetric", config->fsq_symmetric,
                "fsq: symmetric level sets (every L spread evenly over [-1, 1])");
  // The transformer prior
  cmd->add_option("--tokenizer", config->tokenizer,
                  "prior: the vqvae or fsq checkpoint whose token grids it models (frozen; "
                  "the prior's checkpoints carry it)");
  cmd->add_option("--width", config->prior_width, "prior: channels of the residual stream")
      ->capture_default_str();
  cmd->add_option("--layers", config->prior_layers, "prior: transformer blocks")
      ->capture_default_str();
  cmd->add_option("--heads", config->prior_heads,
                  "prior: attention heads (width / heads <= 64 channels each)")
      ->capture_default_str();
  cmd->add_option("--class-dropout", config->class_dropout,
                  "prior: probability of training a row without its class, so that the model "
                  "also samples unconditionally")
      ->capture_default_str();
  auto silent = std::make_shared<bool>(false);
  cmd->add_flag("--quiet", *quiet, "No progress output (the results still print)");
  cmd->add_flag("--silent", *silent, "Print nothing (the files are written as usual)");
  cmd->callback([cmd, config, resume, quiet, silent] {
    config->progress = !*quiet && !*silent;
    if (!resume->empty()) {
      // Resuming continues the saved run: only what the command line names changes it.
      if (cmd->count("--steps") == 0) config->steps = -1;
      if (cmd->count("--epochs") == 0) config->epochs = -1;
      if (cmd->count("--checkpoint-every") == 0) config->checkpoint_every = -1;
      if (cmd->count("--log-every") == 0) config->log_every = -1;
    }
    train::run(*config, *resume, *silent ? nullptr : &std::cerr);
  });
}

void add_eval(CLI::App& app) {
  auto checkpoint = std::make_shared<std::string>();
  auto grid = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>();
  auto data_dir = std::make_shared<std::string>();
  auto test_limit = std::make_shared<std::int64_t>(0);
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Recompute a checkpoint's test MSE and PSNR and its reconstruction grid.\n\n"
      "Example:\n  latent eval --checkpoint runs/ae/checkpoint.safetensors --grid recon.png");
  cmd->add_option("--checkpoint", *checkpoint, "Checkpoint written by latent train")
      ->required();
  cmd->add_option("--grid", *grid, "Write the originals/reconstructions grid to this PNG");
  cmd->add_option("--device", *device, "cpu, cuda, cuda:N or auto (default: the checkpoint's)");
  cmd->add_option("--data-dir", *data_dir, "Directory of the Fashion-MNIST files");
  cmd->add_option("--test-limit", *test_limit, "Evaluate on the first N test images (0: all)");
  auto as_json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *as_json, "Print one JSON line (the keys of metrics.jsonl's final line)");
  cmd->callback([=] {
    const train::Result r = train::evaluate(*checkpoint, *grid, *device, *data_dir, *test_limit);
    // The numbers exactly as metrics.jsonl holds them (shortest round-trip decimal form).
    nlohmann::ordered_json line = {{"checkpoint", *checkpoint},
                                   {"step", r.steps},
                                   {"test_mse", r.test.mse},
                                   {"test_psnr", r.test.psnr},
                                   {"test_images", r.test.images}};
    for (const auto& [name, value] : r.test.extra) line["test_" + name] = value;
    if (*as_json) {
      std::printf("%s\n", line.dump().c_str());
      return;
    }
    for (const auto& [key, value] : line.items()) {
      const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
      std::printf("%-22s %s\n", key.c_str(), text.c_str());
    }
  });
}

}  // namespace latent::cli
