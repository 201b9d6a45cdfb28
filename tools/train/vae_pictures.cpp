// The VAE's pictures (pictures.h): prior samples, interpolations between the means of two
// test images, and, when the latent is a plane, the scatter plot of the test set's means.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "tools/train/pictures.h"

namespace latent::train {
namespace {

// Ten well-separated colours, one per Fashion-MNIST class (matplotlib's tab10).
constexpr std::array<std::array<float, 3>, 10> kClassColours{{
    {0.12f, 0.47f, 0.71f}, {1.00f, 0.50f, 0.05f}, {0.17f, 0.63f, 0.17f}, {0.84f, 0.15f, 0.16f},
    {0.58f, 0.40f, 0.74f}, {0.55f, 0.34f, 0.29f}, {0.89f, 0.47f, 0.76f}, {0.50f, 0.50f, 0.50f},
    {0.74f, 0.74f, 0.13f}, {0.09f, 0.75f, 0.81f},
}};

// The class names of Fashion-MNIST, 0 … 9.
constexpr std::array<const char*, 10> kClassNames{
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};

// A 5×7 bitmap font for the characters the plot writes ('#' is ink).
struct Glyph {
  char c;
  std::array<const char*, 7> rows;
};
constexpr std::array<Glyph, 33> kFont{{
    {'0', {" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "}},
    {'1', {"  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
    {'2', {" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"}},
    {'3', {"#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "}},
    {'4', {"   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "}},
    {'5', {"#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "}},
    {'6', {"  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "}},
    {'7', {"#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "}},
    {'8', {" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "}},
    {'9', {" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "}},
    {'-', {"     ", "     ", "     ", " ### ", "     ", "     ", "     "}},
    {'.', {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "}},
    {'a', {"     ", "     ", " ### ", "    #", " ####", "#   #", " ####"}},
    {'b', {"#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#### "}},
    {'c', {"     ", "     ", " ### ", "#    ", "#    ", "#   #", " ### "}},
    {'d', {"    #", "    #", " ## #", "#  ##", "#   #", "#   #", " ####"}},
    {'e', {"     ", "     ", " ### ", "#   #", "#####", "#    ", " ### "}},
    {'g', {"     ", " ####", "#   #", "#   #", " ####", "    #", " ### "}},
    {'h', {"#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#   #"}},
    {'i', {"  #  ", "     ", " ##  ", "  #  ", "  #  ", "  #  ", " ### "}},
    {'k', {"#    ", "#    ", "#  # ", "# #  ", "##   ", "# #  ", "#  # "}},
    {'l', {" ##  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
    {'n', {"     ", "     ", "# ## ", "##  #", "#   #", "#   #", "#   #"}},
    {'o', {"     ", "     ", " ### ", "#   #", "#   #", "#   #", " ### "}},
    {'p', {"     ", "     ", "#### ", "#   #", "#### ", "#    ", "#    "}},
    {'r', {"     ", "     ", "# ## ", "##  #", "#    ", "#    ", "#    "}},
    {'s', {"     ", "     ", " ####", "#    ", " ### ", "    #", "#### "}},
    {'t', {" #   ", " #   ", "###  ", " #   ", " #   ", " #  #", "  ## "}},
    {'u', {"     ", "     ", "#   #", "#   #", "#   #", "#  ##", " ## #"}},
    {'v', {"     ", "     ", "#   #", "#   #", "#   #", " # # ", "  #  "}},
    {'z', {"     ", "     ", "#####", "   # ", "  #  ", " #   ", "#####"}},
    {'T', {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "}},
    {' ', {"     ", "     ", "     ", "     ", "     ", "     ", "     "}},
}};
constexpr std::int64_t kGlyphWidth = 6, kGlyphHeight = 7;  // with one column of spacing

// An RGB canvas [3, H, W] in [0, 1], drawn pixel by pixel.
class Canvas {
 public:
  Canvas(std::int64_t height, std::int64_t width)
      : h_(height), w_(width), pixels_(3 * height * width, 1.0f) {}
  void put(std::int64_t y, std::int64_t x, const std::array<float, 3>& rgb) {
    if (y < 0 || y >= h_ || x < 0 || x >= w_) return;
    for (int c = 0; c < 3; ++c) pixels_[(c * h_ + y) * w_ + x] = rgb[c];
  }
  void square(std::int64_t cy, std::int64_t cx, int radius, const std::array<float, 3>& rgb) {
    for (std::int64_t y = cy - radius; y <= cy + radius; ++y)
      for (std::int64_t x = cx - radius; x <= cx + radius; ++x) put(y, x, rgb);
  }
  // Text with its top-left corner at (y, x); characters outside the font are skipped.
  void text(std::int64_t y, std::int64_t x, const std::string& s, const std::array<float, 3>& rgb) {
    for (char ch : s) {
      for (const Glyph& g : kFont) {
        if (g.c != ch) continue;
        for (std::int64_t r = 0; r < kGlyphHeight; ++r)
          for (std::int64_t c = 0; c < 5; ++c)
            if (g.rows[static_cast<std::size_t>(r)][c] == '#') put(y + r, x + c, rgb);
      }
      x += kGlyphWidth;
    }
  }
  Tensor tensor() const { return from_vector(pixels_, {3, h_, w_}); }

 private:
  std::int64_t h_, w_;
  std::vector<float> pixels_;
};

std::int64_t text_width(const std::string& s) {
  return static_cast<std::int64_t>(s.size()) * kGlyphWidth - 1;
}

// The smallest of 1, 2, 5 × 10^k that is at least x.
double nice_step(double x) {
  const double decade = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * decade >= x) return m * decade;
  return 10.0 * decade;
}

std::string tick_label(double v, double step) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, step >= 1.0 ? "%.0f" : "%.1f", v);
  return buffer;
}

// The test set's 2-D means as a scatter plot coloured by class, with the prior's 1σ, 2σ and
// 3σ circles, the axes z1 = 0 and z2 = 0 in grey, ticks and their values on the frame (the
// plot's scale follows the data, so read the ticks: an autoencoder's codes can spread ten
// times wider than a VAE's), and a legend of the ten class names below.
Tensor scatter_plot(const std::vector<float>& xy, const std::vector<std::int32_t>& labels) {
  constexpr std::int64_t kSize = 512, kInner = 8;      // the plot square, its inner margin
  constexpr std::int64_t kLeft = 40, kTop = 12, kRight = 16, kBottom = 22;
  constexpr std::int64_t kLegendRow = 16, kLegendRows = 2;
  const std::size_t n = labels.size();
  // Symmetric range: the 99.5th percentile of |coordinate|, so a few outliers do not shrink
  // the cloud, and never less than the prior's 3σ.
  std::vector<float> magnitudes(xy.size());
  for (std::size_t i = 0; i < xy.size(); ++i) magnitudes[i] = std::abs(xy[i]);
  std::sort(magnitudes.begin(), magnitudes.end());
  const double extent =
      1.05 * std::max(3.0, static_cast<double>(
                               magnitudes[std::min(magnitudes.size() - 1,
                                                   static_cast<std::size_t>(0.995 * magnitudes.size()))]));
  const double scale = (kSize - 2 * kInner) / (2.0 * extent);
  auto to_x = [&](double v) { return kLeft + static_cast<std::int64_t>(std::lround(kSize / 2.0 + v * scale)); };
  auto to_y = [&](double v) { return kTop + static_cast<std::int64_t>(std::lround(kSize / 2.0 - v * scale)); };

  const std::int64_t width = kLeft + kSize + kRight;
  const std::int64_t height = kTop + kSize + kBottom + kLegendRows * kLegendRow + 6;
  Canvas canvas(height, width);
  const std::array<float, 3> grey{0.8f, 0.8f, 0.8f}, frame{0.3f, 0.3f, 0.3f};
  for (std::int64_t i = 0; i < kSize; ++i) {
    canvas.put(to_y(0.0), kLeft + i, grey);
    canvas.put(kTop + i, to_x(0.0), grey);
    canvas.put(kTop, kLeft + i, frame);
    canvas.put(kTop + kSize - 1, kLeft + i, frame);
    canvas.put(kTop + i, kLeft, frame);
    canvas.put(kTop + i, kLeft + kSize - 1, frame);
  }
  for (int r = 1; r <= 3; ++r) {
    for (int k = 0; k < 2000; ++k) {
      const double a = 2.0 * std::numbers::pi * k / 2000.0;
      canvas.put(to_y(r * std::sin(a)), to_x(r * std::cos(a)), grey);
    }
  }
  // Ticks every `step` on all four sides, values on the left and the bottom.
  const double step = nice_step(extent / 4.0);
  const auto last_tick = static_cast<std::int64_t>(std::floor(extent / step));
  for (std::int64_t t = -last_tick; t <= last_tick; ++t) {
    const double v = static_cast<double>(t) * step;
    const std::int64_t x = to_x(v), y = to_y(v);
    for (std::int64_t k = 0; k < 5; ++k) {
      canvas.put(kTop + kSize - 1 - k, x, frame);
      canvas.put(kTop + k, x, frame);
      canvas.put(y, kLeft + k, frame);
      canvas.put(y, kLeft + kSize - 1 - k, frame);
    }
    const std::string label = tick_label(v, step);
    canvas.text(kTop + kSize + 4, x - text_width(label) / 2, label, frame);
    canvas.text(y - kGlyphHeight / 2, kLeft - 4 - text_width(label), label, frame);
  }
  canvas.text(kTop + kSize - 12, kLeft + kSize - 8 - text_width("z1"), "z1", frame);
  canvas.text(kTop + 8, kLeft + 8, "z2", frame);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& colour = kClassColours[static_cast<std::size_t>(labels[i]) % 10];
    canvas.square(to_y(xy[2 * i + 1]), to_x(xy[2 * i]), 1, colour);
  }
  // The legend: two rows of five classes, a colour square and the name.
  for (std::int64_t c = 0; c < 10; ++c) {
    const std::int64_t row = c / 5, column = c % 5;
    const std::int64_t y = kTop + kSize + kBottom + row * kLegendRow + kLegendRow / 2;
    const std::int64_t x = kLeft + column * (kSize / 5);
    canvas.square(y, x + 5, 5, kClassColours[static_cast<std::size_t>(c)]);
    canvas.text(y - kGlyphHeight / 2, x + 14, kClassNames[static_cast<std::size_t>(c)], frame);
  }
  return canvas.tensor();
}

// The index of the first test image of each class (−1 where a class is absent).
std::array<std::int64_t, 10> first_of_each_class(const Dataset& test) {
  std::array<std::int64_t, 10> first;
  first.fill(-1);
  const std::vector<std::int32_t> labels = test.labels.to_vector<std::int32_t>();
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const auto c = static_cast<std::size_t>(labels[i]);
    if (c < 10 && first[c] < 0) first[c] = static_cast<std::int64_t>(i);
  }
  return first;
}

}  // namespace

void write_vae_pictures(models::Vae& model, const std::string& out_dir, const Dataset& test,
                        Device device) {
  NoGradGuard no_grad;
  // Samples from the prior.
  Generator gen(model.config().noise_seed ^ 0x5eed5eed5eedull);
  save_png(out_dir + "/samples.png",
           image_grid(model.sample(64, gen).to(Device::cpu()), 8, 2, 1.0));

  // Interpolation strips: image A, ten decodings along the line from μ(A) to μ(B), image B.
  const std::array<std::int64_t, 10> first = first_of_each_class(test);
  const std::array<std::pair<int, int>, 4> pairs{{{0, 1}, {7, 9}, {8, 3}, {2, 5}}};
  std::vector<Tensor> tiles;
  constexpr int kSteps = 10;
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    std::int64_t a = first[pairs[p].first], b = first[pairs[p].second];
    if (a < 0 || b < 0) {  // small or unusual test sets: consecutive images instead
      a = static_cast<std::int64_t>(2 * p) % test.size();
      b = static_cast<std::int64_t>(2 * p + 1) % test.size();
    }
    const Tensor ends = concat({test.images.narrow(0, a, 1), test.images.narrow(0, b, 1)}, 0);
    const Tensor mu = model.encode(ends.to(device)).mu.contiguous();
    const Tensor mu_a = mu.narrow(0, 0, 1), mu_b = mu.narrow(0, 1, 1);
    std::vector<Tensor> steps;
    for (int k = 0; k < kSteps; ++k) {
      const double t = static_cast<double>(k) / (kSteps - 1);
      steps.push_back(add(mul(mu_a, 1.0 - t), mul(mu_b, t)));
    }
    const Tensor decoded = sigmoid(model.decode_logits(concat(steps, 0))).to(Device::cpu());
    tiles.push_back(ends.narrow(0, 0, 1).squeeze(0));
    for (int k = 0; k < kSteps; ++k) tiles.push_back(decoded.narrow(0, k, 1).squeeze(0));
    tiles.push_back(ends.narrow(0, 1, 1).squeeze(0));
  }
  save_png(out_dir + "/interpolation.png", image_grid(tiles, kSteps + 2, 2, 1.0));

  // The latent space itself, when it is a plane.
  if (shape_numel(model.latent_shape()) == 2) {
    std::vector<float> xy;
    constexpr std::int64_t kBatch = 500;
    for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
      const std::int64_t count = std::min(kBatch, test.size() - begin);
      const Tensor mu = model.encode(test.images.narrow(0, begin, count).to(device)).mu;
      const std::vector<float> v = mu.contiguous().to(Device::cpu()).to(DType::f32).to_vector<float>();
      xy.insert(xy.end(), v.begin(), v.end());
    }
    save_png(out_dir + "/latent_scatter.png",
             scatter_plot(xy, test.labels.to_vector<std::int32_t>()));
  }
}

}  // namespace latent::train
