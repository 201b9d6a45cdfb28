// A run's checkpoint: the model, the optimizer, the data loader's position, the step and the
// Config, in one safetensors file (written atomically), so that a resumed run ends
// bit-identical to one that never stopped.
#pragma once

#include <cstdint>
#include <string>

#include "latent/data.h"
#include "latent/nn.h"
#include "latent/optim.h"
#include "tools/train/train.h"

namespace latent::train {

struct Checkpoint {
  Config config;
  std::int64_t step = 0;
  BatchLoaderState loader;
  nn::NamedTensors model, optimizer;
};

void save_checkpoint(const std::string& path, const Config& config, std::int64_t step,
                     const nn::Module& model, const optim::Optimizer& optimizer,
                     const BatchLoader& loader);
Checkpoint read_checkpoint(const std::string& path);

}  // namespace latent::train
