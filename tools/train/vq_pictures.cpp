// The VQ-VAE's pictures (pictures.h): per-code usage bars (the test set; with an EMA
// codebook, the counts around the last revival) and the token grids of a few test images.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "tools/train/pictures.h"

namespace latent::train {
namespace {

constexpr std::int64_t kGrid = 7;  // the latent grid is 7×7

std::vector<double> host_doubles(const Tensor& t) {
  NoGradGuard no_grad;
  return t.detach().to(DType::f64).to_vector<double>();
}

// An RGB color per token: hues spaced by the golden ratio, so neighbouring indices differ.
void token_color(std::int64_t token, float rgb[3]) {
  const double h = std::fmod(static_cast<double>(token) * 0.6180339887498949, 1.0) * 6.0;
  const double s = 0.65, v = 0.95, c = v * s;
  const double x = c * (1.0 - std::abs(std::fmod(h, 2.0) - 1.0));
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(h)) {
    case 0: r = c, g = x; break;
    case 1: r = x, g = c; break;
    case 2: g = c, b = x; break;
    case 3: g = x, b = c; break;
    case 4: r = x, b = c; break;
    default: r = c, b = x; break;
  }
  rgb[0] = static_cast<float>(r + v - c);
  rgb[1] = static_cast<float>(g + v - c);
  rgb[2] = static_cast<float>(b + v - c);
}

// One panel of per-code bars (height ∝ log(1 + value), codes left to right) on white, with a
// strip under each bar: red for mark 1 (dead), green for mark 2 (revived), none for 0.
std::vector<float> bars_panel(const std::vector<double>& values, const std::vector<int>& marks,
                              std::int64_t bar_width, std::int64_t height,
                              std::int64_t& width_out) {
  constexpr std::int64_t kStrip = 5;
  const std::int64_t K = static_cast<std::int64_t>(values.size());
  const std::int64_t width = K * bar_width, rows = height + kStrip;
  std::vector<float> rgb(static_cast<std::size_t>(3 * rows * width), 1.0f);
  double top = 0.0;
  for (double v : values) top = std::max(top, std::log1p(std::max(v, 0.0)));
  for (std::int64_t k = 0; k < K; ++k) {
    const double scaled = top > 0 ? std::log1p(std::max(values[k], 0.0)) / top : 0.0;
    const std::int64_t bar = static_cast<std::int64_t>(std::lround(scaled * height));
    for (std::int64_t x = k * bar_width; x < (k + 1) * bar_width; ++x) {
      for (std::int64_t y = height - bar; y < height; ++y)
        for (int c = 0; c < 3; ++c) rgb[(c * rows + y) * width + x] = 0.25f;
      if (marks[k] == 0) continue;
      const float color[3] = {marks[k] == 1 ? 0.9f : 0.1f, marks[k] == 1 ? 0.1f : 0.7f, 0.1f};
      for (std::int64_t y = height + 1; y < rows; ++y)
        for (int c = 0; c < 3; ++c) rgb[(c * rows + y) * width + x] = color[c];
    }
  }
  width_out = width;
  return rgb;
}

}  // namespace

void write_vqvae_pictures(models::VqVae& model, const std::string& out_dir, const Dataset& test,
                          Device device) {
  NoGradGuard no_grad;
  const std::int64_t K = model.config().quantizer.codebook_size;
  const std::int64_t bar_width = std::max<std::int64_t>(1, 1024 / K), height = 96;

  // Panel 1: how often each code is chosen over the test set; unused codes marked red.
  std::vector<double> usage(static_cast<std::size_t>(K), 0.0);
  constexpr std::int64_t kBatch = 500;
  for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
    const std::int64_t n = std::min(kBatch, test.size() - begin);
    const Tensor idx = model.quantizer().nearest(model.encode_rows(test.images.narrow(0, begin, n).to(device)));
    const std::vector<double> c = host_doubles(vq_code_counts(idx, K));
    for (std::int64_t k = 0; k < K; ++k) usage[k] += c[k];
  }
  std::vector<std::vector<float>> panels;
  std::vector<std::int64_t> panel_rows;
  std::int64_t width = 0;
  auto add_panel = [&](const std::vector<double>& values, const std::vector<int>& marks) {
    panels.push_back(bars_panel(values, marks, bar_width, height, width));
    panel_rows.push_back(height + 5);
  };
  {
    std::vector<int> marks(static_cast<std::size_t>(K));
    for (std::int64_t k = 0; k < K; ++k) marks[k] = usage[k] > 0 ? 0 : 1;
    add_panel(usage, marks);
  }
  if (model.config().quantizer.ema) {
    // Panels 2 and 3: the EMA counts just before and just after the last revival, the revived
    // codes marked red before (they were dead) and green after; without revival, the EMA
    // counts now, codes under the threshold (or under 1) marked red.
    const models::VqVae::Revival revival = model.last_revival();
    if (revival.step >= 0) {
      std::vector<int> dead(static_cast<std::size_t>(K)), born(static_cast<std::size_t>(K));
      for (std::int64_t k = 0; k < K; ++k) {
        dead[k] = revival.revived_mask[k] ? 1 : 0;
        born[k] = revival.revived_mask[k] ? 2 : 0;
      }
      add_panel(revival.count_before, dead);
      add_panel(revival.count_after, born);
    } else {
      const std::vector<double> counts = host_doubles(model.quantizer().ema_count());
      const double limit = model.config().quantizer.dead_code_threshold > 0
                               ? model.config().quantizer.dead_code_threshold
                               : 1.0;
      std::vector<int> marks(static_cast<std::size_t>(K));
      for (std::int64_t k = 0; k < K; ++k) marks[k] = counts[k] < limit ? 1 : 0;
      add_panel(counts, marks);
    }
  }
  constexpr std::int64_t kGap = 6;
  std::int64_t total_rows = kGap;
  for (std::int64_t r : panel_rows) total_rows += r + kGap;
  std::vector<float> picture(static_cast<std::size_t>(3 * total_rows * width), 1.0f);
  std::int64_t y0 = kGap;
  for (std::size_t p = 0; p < panels.size(); ++p) {
    for (int c = 0; c < 3; ++c)
      for (std::int64_t y = 0; y < panel_rows[p]; ++y)
        for (std::int64_t x = 0; x < width; ++x)
          picture[(c * total_rows + y0 + y) * width + x] =
              panels[p][(c * panel_rows[p] + y) * width + x];
    y0 += panel_rows[p] + kGap;
  }
  save_png(out_dir + "/codebook_usage.png", from_vector(picture, {3, total_rows, width}));

  // Token grids of the first 8 test images: each image beside its 7×7 tokens, one color per
  // code; the tokens also as .npy.
  const std::int64_t n = std::min<std::int64_t>(8, test.size());
  if (n == 0) return;
  const Tensor images = test.images.narrow(0, 0, n).contiguous();
  const Tensor tokens = model.encode_tokens(images.to(device)).to(Device::cpu());
  save_npy(out_dir + "/tokens.npy", tokens);
  const std::vector<std::int32_t> t = tokens.to_vector<std::int32_t>();
  const std::vector<float> pixels = images.to_vector<float>();
  constexpr std::int64_t kZoom = 3;  // nearest-neighbour upscaling, for legibility
  const std::int64_t side = images.size(2), cell = side / kGrid, big = side * kZoom;
  std::vector<Tensor> tiles;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<float> img(static_cast<std::size_t>(3 * big * big)), grid(img.size());
    for (std::int64_t y = 0; y < big; ++y) {
      for (std::int64_t x = 0; x < big; ++x) {
        const std::int64_t sy = y / kZoom, sx = x / kZoom;
        const float v = pixels[(i * images.size(1)) * side * side + sy * side + sx];
        float rgb[3];
        token_color(t[i * kGrid * kGrid + (sy / cell) * kGrid + sx / cell], rgb);
        for (int c = 0; c < 3; ++c) {
          img[(c * big + y) * big + x] = v;
          grid[(c * big + y) * big + x] = rgb[c];
        }
      }
    }
    tiles.push_back(from_vector(img, {3, big, big}));
    tiles.push_back(from_vector(grid, {3, big, big}));
  }
  save_png(out_dir + "/tokens.png", image_grid(tiles, 8, 4, 1.0));
}

}  // namespace latent::train
