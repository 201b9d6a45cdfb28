// Training and evaluation of latent's models on Fashion-MNIST: what `latent train` and
// `latent eval` run. Everything a run needs is in Config, so a checkpoint (which stores the
// Config, the model, the optimizer and the data loader's position) resumes a run exactly:
// a run interrupted at step k and resumed ends bit-identical to one that never stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

#include "latent/models.h"

namespace latent::train {

struct Config {
  std::string model = "ae";          // ae (later issues add vae, vqvae, fsq)
  std::string device = "auto";       // cpu, cuda, cuda:N or auto (a GPU when one is present)
  std::int64_t epochs = 1;
  std::int64_t steps = 0;            // total optimizer steps; 0 means epochs × batches/epoch
  std::int64_t batch_size = 128;
  double lr = 2e-3;                  // AdamW
  double weight_decay = 0.0;
  double grad_clip = 0.0;            // max global gradient norm; 0 disables clipping
  std::uint64_t seed = 0;            // initialization and shuffling
  models::ConvNetConfig net;
  std::string loss = "mse";          // mse on sigmoid(logits), or bce (with logits)
  std::string data_dir;              // "" means the Debian package's directory
  std::int64_t train_limit = 0;      // use only the first N training images (0: all)
  std::int64_t test_limit = 0;       // evaluate on the first N test images (0: all)
  std::string out_dir = "runs/ae";
  std::int64_t checkpoint_every = 0; // steps between periodic checkpoints; 0: final only
  std::int64_t log_every = 50;       // steps between metrics lines
  bool progress = true;              // a progress bar on the progress stream
};

std::string config_to_json(const Config& config);
Config config_from_json(const std::string& json);

// Test-set reconstruction quality. psnr = 10·log10(1 / mse), pixels in [0, 1].
struct Metrics {
  double mse = 0.0;
  double psnr = 0.0;
  std::int64_t images = 0;
};

struct Result {
  std::int64_t steps = 0;
  double final_loss = 0.0;       // mean training loss over the last log window
  Metrics test;
  double seconds = 0.0;          // wall time of the training loop
  double images_per_second = 0.0;
  std::string checkpoint;        // path of the final checkpoint
  std::string grid;              // path of the reconstruction grid
};

// Trains from scratch, or from `resume` (a checkpoint path) when it is non-empty; in that
// case the run's Config comes from the checkpoint except out_dir, steps, epochs,
// checkpoint_every, log_every and progress, which `config` may change. Writes to out_dir:
// metrics.jsonl, checkpoint-<step>.safetensors (periodic), checkpoint.safetensors (final),
// reconstructions.png. Progress and the summary go to `log` (nullptr: silent).
Result run(const Config& config, const std::string& resume = "", std::ostream* log = nullptr);

// Reloads a checkpoint and recomputes the test metrics (and the grid, when grid_path is
// non-empty). device and data_dir override the checkpoint's when non-empty.
Result evaluate(const std::string& checkpoint, const std::string& grid_path,
                const std::string& device = "", const std::string& data_dir = "",
                std::int64_t test_limit = 0);

// "auto" resolves to the first GPU when the cuda backend runs on a real GPU, else cpu.
Device resolve_device(const std::string& name);

}  // namespace latent::train
