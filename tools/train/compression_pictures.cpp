// The bits of each model's latent against the image's (pictures.h): measured by encoding one
// blank image through the model's public API, and drawn as horizontal bars for `latent info`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "tools/train/canvas.h"
#include "tools/train/pictures.h"

namespace latent::train {
namespace {

std::string shape_text(const Shape& shape) {
  std::string s;
  for (std::size_t k = 1; k < shape.size(); ++k) {
    if (k > 1) s.push_back('x');
    s.append(std::to_string(shape[k]));
  }
  return s;
}

std::string format(const char* pattern, double a, double b = 0.0) {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, pattern, a, b);
  return buffer;
}

}  // namespace

std::vector<LatentBudget> latent_budgets(models::TrainableModel& model, const std::string& label,
                                         std::int64_t image_channels, Device device) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const Tensor image = zeros({1, image_channels, 28, 28}, DType::f32, device);
  const double image_bits = 8.0 * static_cast<double>(image.numel());
  const std::string prefix = label.empty() ? "" : label + " ";
  std::vector<LatentBudget> out;
  auto floats = [&](const std::string& name, const Tensor& latent, int copies) {
    LatentBudget b;
    b.label = name;
    b.numbers = copies * latent.numel();
    b.bits = 32.0 * static_cast<double>(b.numbers);
    b.latent = (copies > 1 ? std::to_string(copies) + " x " : std::string()) +
               shape_text(latent.shape()) + " float32";
    b.image_bits = image_bits;
    out.push_back(b);
  };
  auto tokens = [&](const std::string& name, const Tensor& grid, std::int64_t codebook) {
    LatentBudget b;
    b.label = name;
    b.numbers = grid.numel();
    b.bits = static_cast<double>(b.numbers) * std::log2(static_cast<double>(codebook));
    b.latent = std::to_string(b.numbers) + " tokens of log2 " + std::to_string(codebook) + " = " +
               format("%.2f", std::log2(static_cast<double>(codebook))) + " bits";
    b.image_bits = image_bits;
    out.push_back(b);
  };
  if (auto* vae = dynamic_cast<models::Vae*>(&model)) {
    const models::Vae::Posterior post = vae->encode(image);
    floats(prefix + "(mu, sigma)", post.mu, 2);
    floats(prefix + "sample z", post.mu, 1);
  } else if (auto* vq = dynamic_cast<models::VqVae*>(&model)) {
    tokens(label, vq->encode_tokens(image), vq->config().quantizer.codebook_size);
  } else if (auto* fsq = dynamic_cast<models::FsqAutoencoder*>(&model)) {
    tokens(label, fsq->encode_tokens(image), fsq->codebook_size());
  } else if (auto* ae = dynamic_cast<models::Autoencoder*>(&model)) {
    floats(label, ae->encode(image), 1);
  } else {
    model.train(was_training);
    LATENT_FAIL("latent budget: ", label, " has no latent of its own (an ae, vae, vqvae or fsq "
                "model compresses images)");
  }
  model.train(was_training);
  return out;
}

void write_compression_picture(const std::vector<LatentBudget>& budgets, const std::string& path) {
  LATENT_CHECK(!budgets.empty(), "compression picture: no latents to draw");
  std::vector<LatentBudget> rows;
  LatentBudget image;
  image.label = "image";
  image.image_bits = budgets.front().image_bits;
  image.bits = image.image_bits;
  image.numbers = static_cast<std::int64_t>(image.bits / 8.0);
  image.latent = "28x28 pixels of 8 bits";
  rows.push_back(image);
  rows.insert(rows.end(), budgets.begin(), budgets.end());

  std::size_t longest = 0;
  for (const LatentBudget& b : rows) longest = std::max(longest, b.label.size());
  const std::int64_t kRow = 30, kBar = 16, kTop = 26, kBars = 420, kRight = 150;
  const std::int64_t left = 10 + text_width(std::string(longest, 'x')) + 10;
  const std::int64_t n = static_cast<std::int64_t>(rows.size());
  const std::int64_t height = kTop + n * kRow + 10, width = left + kBars + kRight;
  Canvas canvas(height, width);
  canvas.text(8, 10, "bits per image, and the compression ratio image bits / latent bits",
              kFrameGrey);
  double top = 0.0;
  for (const LatentBudget& b : rows) top = std::max(top, b.bits);
  const auto bar_end = [&](double bits) {
    return left + std::max<std::int64_t>(1, std::lround(bits / top * kBars));
  };
  const std::int64_t image_x = bar_end(image.bits);
  for (std::int64_t r = 0; r < n; ++r) {
    const LatentBudget& b = rows[static_cast<std::size_t>(r)];
    const std::int64_t y = kTop + r * kRow;
    const Rgb colour = r == 0 ? Rgb{0.45f, 0.45f, 0.45f}
                      : b.ratio() >= 1.0 + 1e-9 ? category_colour(2)
                      : b.ratio() < 1.0 - 1e-9 ? category_colour(3)
                                               : category_colour(0);
    canvas.text(y + (kBar - kGlyphHeight) / 2, left - 8 - text_width(b.label), b.label, kBlack);
    canvas.rectangle(y, left, kBar, bar_end(b.bits) - left, colour);
    const std::string value =
        format("%.0f bits", b.bits) + (r == 0 ? std::string() : format("  %.1fx", b.ratio()));
    canvas.text(y + (kBar - kGlyphHeight) / 2, bar_end(b.bits) + 6, value, kBlack);
    canvas.text(y + kBar + 2, left, b.latent, kFrameGrey);
  }
  // The image's bits as a dotted line across the rows.
  for (std::int64_t y = kTop; y < kTop + n * kRow - 10; y += 3) canvas.put(y, image_x, kBlack);
  save_png(path, canvas.tensor());
}

}  // namespace latent::train
