// The trainer behind `latent train`, `eval`, `sample`, `encode` and `decode`: the static
// target latent_train (tools/train/), which the latent CLI and the tests link. It is not
// part of the library: liblatent has the ops, the modules and the models; this is what
// trains, logs, checkpoints and draws them on Fashion-MNIST.
//
// Everything a run needs is in Config, so a checkpoint (which stores the Config, the model,
// the optimizer and the data loader's position) resumes a run exactly: a run interrupted at
// step k and resumed ends bit-identical to one that never stopped.
//
// Every model is a models::TrainableModel: the trainer calls training_step() for the loss,
// lets the optimizer step, calls after_step() (EMA codebook updates and the like), and at
// the end asks the model for its test metrics and draws its pictures (pictures.h).
// make_model() builds one by name, translating Config into the model's own options
// (VaeConfig, VqVaeConfig, …).
//
// A step that is not a logging step (--log-every) reads nothing back from the device: the
// loss of the log window is summed on the device, and the models' metrics are closures over
// device tensors, called on logging steps (and before each checkpoint).
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latent/data.h"
#include "latent/models.h"
#include "latent/optim.h"
#include "latent/vae.h"
#include "latent/vq.h"

namespace latent::train {

struct Config {
  std::string model = "ae";          // ae, vae, vqvae, fsq
  std::string device = "auto";       // cpu, cuda, cuda:N or auto (a GPU when one is present)
  std::int64_t epochs = 1;
  std::int64_t steps = 0;            // total optimizer steps; 0 means epochs × batches/epoch
  std::int64_t batch_size = 128;
  double lr = 2e-3;                  // AdamW
  double weight_decay = 0.0;
  double grad_clip = 0.0;            // max global gradient norm; 0 disables clipping
  std::uint64_t seed = 0;            // initialization and shuffling
  models::ConvNetConfig net;
  std::string loss = "mse";          // reconstruction term: mse on sigmoid(logits), or bce
  std::string data_dir;              // "" means the Debian package's directory
  std::int64_t train_limit = 0;      // use only the first N training images (0: all)
  std::int64_t test_limit = 0;       // evaluate on the first N test images (0: all)
  std::string out_dir;               // "" means runs/<model>
  std::int64_t checkpoint_every = 0; // steps between periodic checkpoints; 0: final only
  std::int64_t log_every = 50;       // steps between metrics lines
  bool progress = true;              // a progress bar on the progress stream
  bool overwrite = false;            // replace a run already in out_dir (not saved)

  // ---- VAE and β-VAE (--model vae)
  double beta = -1.0;                // KL weight (vae, default 1) or commitment weight (vqvae,
                                     // default 0.25); negative means the model's default
  std::string latent = "spatial";    // vae: spatial (a 7×7 grid) or flat (a vector)
  std::int64_t latent_dim = 16;      // vae with a flat latent: its dimension
  std::int64_t kl_warmup = 0;        // steps of linear KL annealing from 0 (0: off)
  std::int64_t kl_cycle = 0;         // cyclical annealing period in steps (0: off)
  double free_bits = 0.0;            // minimum KL per latent dimension, nats (0: off)

  // ---- VQ-VAE (--model vqvae)
  std::int64_t codebook_size = 512;
  std::int64_t code_dim = 16;        // channels of the latent grid = code vector length
  bool ema = false;                  // EMA codebook instead of a gradient-trained one
  double decay = 0.99;               // EMA decay γ
  double dead_code_threshold = 0.0;  // revive codes whose EMA count falls below (0: off)
  bool kmeans_init = false;          // initialize the codebook by k-means on the first batches
  bool cosine = false;               // cosine-similarity codebook lookup

  // ---- FSQ (--model fsq)
  std::vector<std::int64_t> levels = {8, 5, 5, 5};
  bool fsq_symmetric = false;        // every level set symmetric around 0 (FsqOptions)
  // ---- learning-rate schedule (every model)
  std::string lr_schedule = "constant";  // constant, or cosine (from lr down to 0 at the end)
  std::int64_t warmup_steps = 0;     // linear warm-up from lr/warmup to lr (0: none)
  // ---- the transformer prior over a tokenizer's grids (--model prior)
  std::string tokenizer;             // the vqvae or fsq checkpoint whose tokens it models
  std::string tokenizer_config;      // that checkpoint's Config (JSON), recorded at the start
  std::int64_t prior_width = 128;
  std::int64_t prior_layers = 4;
  std::int64_t prior_heads = 4;
  double class_dropout = 0.1;        // probability of training a row without its label
};

// The learning rate of step `step` (from 0) of `total_steps` under config's schedule.
double scheduled_lr(const Config& config, std::int64_t step, std::int64_t total_steps);

std::string config_to_json(const Config& config);
Config config_from_json(const std::string& json);
// Throws on a Config that cannot train (unknown loss, non-positive batch size, …).
void validate_config(const Config& config);

// Test-set reconstruction quality. psnr = 10·log10(1 / mse), pixels in [0, 1]; `extra` holds
// each model's own numbers (KL, active units, codebook utilization, perplexity, …).
struct Metrics {
  double mse = 0.0;
  double psnr = 0.0;
  std::int64_t images = 0;
  std::map<std::string, double> extra;
};

// Builds the model a Config names (initialized from `gen`), or throws naming the models.
std::shared_ptr<models::TrainableModel> make_model(const Config& config, Generator& gen);
// The model options a Config describes: --beta, --latent, --latent-dim, --kl-warmup,
// --kl-cycle, --free-bits, --loss for the vae; --codebook-size, --code-dim, --beta, --ema,
// --decay, --dead-code-threshold, --kmeans-init, --cosine for the vqvae.
models::VaeConfig vae_config(const Config& config);
models::VqVaeConfig vqvae_config(const Config& config);

struct Result {
  std::int64_t steps = 0;
  double final_loss = 0.0;       // mean training loss over the last log window
  Metrics test;
  double seconds = 0.0;          // wall time of the training loop
  double images_per_second = 0.0;
  std::string checkpoint;        // path of the final checkpoint
  std::string grid;              // path of the reconstruction grid
};

// One optimizer step of `model` on a batch of images in [0, 1] at step `step`: the loss
// (training_step), backward, optional clipping by global norm, the optimizer step and
// after_step, then the step's one check point (latent::check_errors). On a GPU that check
// point is the only time a non-logging step waits for the device (and only when the step's
// ops raised device-side checks); the returned metrics are read later, on logging steps.
models::TrainableModel::StepOutput train_step(models::TrainableModel& model,
                                              optim::Optimizer& optimizer, const Tensor& images,
                                              std::int64_t step, double grad_clip = 0.0);
// The same on a whole batch (labels included: the prior learns from them).
models::TrainableModel::StepOutput train_step(models::TrainableModel& model,
                                              optim::Optimizer& optimizer, const Batch& batch,
                                              std::int64_t step, double grad_clip = 0.0);

// Trains from scratch, or from `resume` (a checkpoint path) when it is non-empty; in that
// case the run's Config comes from the checkpoint except out_dir, progress, overwrite and
// device, which `config` may change, and steps, epochs, checkpoint_every and log_every,
// which it changes when they are not negative (negative: continue the saved run's). The
// resumed run's metrics.jsonl loses the lines logged after the checkpoint's step (the
// interrupted run's), so no step is logged twice.
// Writes to out_dir (runs/<model> when empty): metrics.jsonl, checkpoint-<step>.safetensors
// (periodic), checkpoint.safetensors (final), reconstructions.png and the model's own
// pictures. A fresh run into a folder that holds another run's metrics or checkpoints is an
// error unless config.overwrite (which removes them first). The results (test metrics and
// where the files are) go to `log`, and the progress too when config.progress (nullptr:
// silent).
Result run(const Config& config, const std::string& resume = "", std::ostream* log = nullptr);

// A model restored from a checkpoint, with the Config it was trained with.
struct LoadedModel {
  Config config;
  std::int64_t step = 0;
  Device device;
  std::shared_ptr<models::TrainableModel> model;
};
// device overrides the checkpoint's when non-empty.
LoadedModel load_model(const std::string& checkpoint, const std::string& device = "");

// Reloads a checkpoint and recomputes the test metrics (and the grid, when grid_path is
// non-empty). device and data_dir override the checkpoint's when non-empty.
Result evaluate(const std::string& checkpoint, const std::string& grid_path,
                const std::string& device = "", const std::string& data_dir = "",
                std::int64_t test_limit = 0);

// "auto" resolves to the first GPU when the cuda backend runs on a real GPU, else cpu.
Device resolve_device(const std::string& name);

// model.reconstruct in eval mode, without gradients, restoring the mode afterwards.
Tensor reconstruct_eval(models::TrainableModel& model, const Tensor& images);

// Test-set MSE/PSNR of model->reconstruct, plus evaluate_extra.
Metrics evaluate_model(models::TrainableModel& model, const Dataset& test, Device device);

}  // namespace latent::train
