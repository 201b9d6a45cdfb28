// The FSQ autoencoder's picture (pictures.h): the implicit codebook as a grid of squares,
// one per code, brightness log(1 + test-set count), unused codes dark red.
#include <algorithm>
#include <cmath>
#include <vector>

#include "latent/io.h"
#include "tools/train/pictures.h"

namespace latent::train {

void write_fsq_pictures(models::FsqAutoencoder& model, const std::string& out_dir,
                        const Dataset& test, Device device) {
  const std::int64_t codebook_size = model.codebook_size();
  // The codebook as a width × height picture, pixel (x, y) = code x + width·y: the low
  // channels run along x, the high ones along y. Width = the product of the first levels
  // that comes closest to √ΠL. Codebooks over 2^20 codes are not drawn.
  if (codebook_size > (std::int64_t{1} << 20) || test.size() == 0) return;
  const double target = std::log(std::sqrt(static_cast<double>(codebook_size)));
  std::int64_t width = 1, best = 1;
  for (const std::int64_t L : model.levels()) {
    width *= L;
    if (std::abs(std::log(static_cast<double>(width)) - target) <
        std::abs(std::log(static_cast<double>(best)) - target))
      best = width;
  }
  width = best;
  const std::int64_t height = codebook_size / width;
  const std::int64_t scale = std::clamp<std::int64_t>(512 / std::max(width, height), 1, 16);

  const auto counts = model.code_counts(test, device);
  std::int64_t most = 1;
  for (const auto& [code, n] : counts) most = std::max(most, n);
  std::vector<float> rgb(3 * width * height * scale * scale, 0.0f);
  const std::int64_t W = width * scale, H = height * scale;
  for (std::int64_t code = 0; code < codebook_size; ++code) {
    const auto it = counts.find(static_cast<std::int32_t>(code));
    float r = 0.35f, g = 0.0f, b = 0.0f;  // unused: dark red
    if (it != counts.end()) {
      r = g = b = static_cast<float>(0.2 + 0.8 * std::log1p(static_cast<double>(it->second)) /
                                               std::log1p(static_cast<double>(most)));
    }
    const std::int64_t x0 = (code % width) * scale, y0 = (code / width) * scale;
    for (std::int64_t y = y0; y < y0 + scale; ++y) {
      for (std::int64_t x = x0; x < x0 + scale; ++x) {
        rgb[(0 * H + y) * W + x] = r;
        rgb[(1 * H + y) * W + x] = g;
        rgb[(2 * H + y) * W + x] = b;
      }
    }
  }
  save_png(out_dir + "/codebook_usage.png", from_vector(rgb, {3, H, W}));
}

}  // namespace latent::train
