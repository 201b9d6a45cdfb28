// The reconstruction grid of every model, and the dispatch to each model's own pictures.
#include "tools/train/pictures.h"

#include <algorithm>
#include <vector>

#include "latent/io.h"
#include "tools/train/train.h"

namespace latent::train {

void write_reconstruction_grid(models::TrainableModel& model, const Dataset& test, Device device,
                               const std::string& path) {
  const std::int64_t n = std::min<std::int64_t>(16, test.size());
  const Tensor originals = test.images.narrow(0, 0, n);
  const Tensor recon = reconstruct_eval(model, originals.to(device)).to(Device::cpu());
  std::vector<Tensor> tiles;
  for (std::int64_t row = 0; row < n; row += 8) {
    const std::int64_t k = std::min<std::int64_t>(8, n - row);
    for (std::int64_t i = 0; i < k; ++i) tiles.push_back(originals.narrow(0, row + i, 1).squeeze(0));
    for (std::int64_t i = 0; i < k; ++i) tiles.push_back(recon.narrow(0, row + i, 1).squeeze(0));
  }
  save_png(path, image_grid(tiles, std::min<std::int64_t>(8, n), 2, 1.0));
}

void write_pictures(models::TrainableModel& model, const std::string& out_dir,
                    const Dataset& test, Device device) {
  if (auto* vae = dynamic_cast<models::Vae*>(&model)) {
    write_vae_pictures(*vae, out_dir, test, device);
  } else if (auto* vq = dynamic_cast<models::VqVae*>(&model)) {
    write_vqvae_pictures(*vq, out_dir, test, device);
  } else if (auto* fsq = dynamic_cast<models::FsqAutoencoder*>(&model)) {
    write_fsq_pictures(*fsq, out_dir, test, device);
  }
}

}  // namespace latent::train
