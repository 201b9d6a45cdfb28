// The VAE's pictures (pictures.h): prior samples, interpolations between the means of two
// test images, and, when the latent is a plane, the scatter plot of the test set's means and
// the reparameterization picture (μ, σ and draws z = μ + σ·ε of a few test images).
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
#include "tools/train/canvas.h"
#include "tools/train/pictures.h"

namespace latent::train {
namespace {

// The class names of Fashion-MNIST, 0 … 9.
constexpr std::array<const char*, 10> kClassNames{
    "T-shirt", "trouser", "pullover", "dress", "coat",
    "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};

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
  const Rgb grey = kLightGrey, frame = kFrameGrey;
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
    const Rgb colour = category_colour(labels[i]);
    canvas.square(to_y(xy[2 * i + 1]), to_x(xy[2 * i]), 1, colour);
  }
  // The legend: two rows of five classes, a colour square and the name.
  for (std::int64_t c = 0; c < 10; ++c) {
    const std::int64_t row = c / 5, column = c % 5;
    const std::int64_t y = kTop + kSize + kBottom + row * kLegendRow + kLegendRow / 2;
    const std::int64_t x = kLeft + column * (kSize / 5);
    canvas.square(y, x + 5, 5, category_colour(c));
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
    write_reparameterization_picture(model, out_dir + "/reparameterization.png", test, device);
  }
}

void write_reparameterization_picture(models::Vae& model, const std::string& path,
                                      const Dataset& test, Device device) {
  NoGradGuard no_grad;
  LATENT_CHECK(shape_numel(model.latent_shape()) == 2,
               "reparameterization picture: needs a 2-D latent (--latent flat --latent-dim 2)");
  if (test.size() == 0) return;
  // Four test images: a trouser, a sandal, a bag and a T-shirt where the set has them.
  const std::array<std::int64_t, 10> first = first_of_each_class(test);
  std::vector<std::int64_t> chosen;
  for (int c : {1, 5, 8, 0})
    if (first[static_cast<std::size_t>(c)] >= 0) chosen.push_back(first[static_cast<std::size_t>(c)]);
  for (std::int64_t i = 0; static_cast<std::int64_t>(chosen.size()) < 4 && i < test.size(); ++i)
    if (std::find(chosen.begin(), chosen.end(), i) == chosen.end()) chosen.push_back(i);
  const auto n = static_cast<std::int64_t>(chosen.size());
  std::vector<Tensor> rows;
  for (std::int64_t i : chosen) rows.push_back(test.images.narrow(0, i, 1));
  const Tensor images = concat(rows, 0);
  const models::Vae::Posterior post = model.encode(images.to(device));
  auto host = [](const Tensor& t) {
    return t.contiguous().to(Device::cpu()).to(DType::f64).to_vector<double>();
  };
  const std::vector<double> mu = host(post.mu), logvar = host(post.logvar);
  std::vector<double> sigma(mu.size());
  for (std::size_t k = 0; k < mu.size(); ++k)
    sigma[k] = std::exp(0.5 * std::clamp(logvar[k], -30.0, 20.0));  // reparameterize's clamp

  // K draws per image, z = μ + σ·ε, by the library's own op (its Philox stream).
  constexpr std::int64_t kDraws = 64, kDecoded = 5;
  std::vector<Tensor> mus, logvars;
  for (std::int64_t i = 0; i < n; ++i) {
    mus.push_back(expand(post.mu.narrow(0, i, 1), {kDraws, 2}));
    logvars.push_back(expand(post.logvar.narrow(0, i, 1), {kDraws, 2}));
  }
  Generator gen(model.config().noise_seed ^ 0x2e9a2a3e7e9aull);
  const Tensor z = reparameterize(concat(mus, 0).contiguous(), concat(logvars, 0).contiguous(), gen);
  const std::vector<double> zs = host(z);
  // Decoded: μ, then the first kDecoded draws, per image.
  std::vector<Tensor> to_decode;
  for (std::int64_t i = 0; i < n; ++i) {
    to_decode.push_back(post.mu.narrow(0, i, 1));
    to_decode.push_back(z.narrow(0, i * kDraws, kDecoded));
  }
  const Tensor decoded =
      sigmoid(model.decode_logits(concat(to_decode, 0).contiguous())).to(Device::cpu());

  // The context: the means of the first 2,000 test images.
  std::vector<double> cloud;
  const std::int64_t context = std::min<std::int64_t>(2000, test.size());
  for (std::int64_t begin = 0; begin < context; begin += 500) {
    const std::int64_t count = std::min<std::int64_t>(500, context - begin);
    const std::vector<double> v = host(model.encode(test.images.narrow(0, begin, count).to(device)).mu);
    cloud.insert(cloud.end(), v.begin(), v.end());
  }
  std::vector<double> magnitudes;
  for (double v : cloud) magnitudes.push_back(std::abs(v));
  std::sort(magnitudes.begin(), magnitudes.end());
  double extent = std::max(3.0, magnitudes[std::min(magnitudes.size() - 1,
                                                      static_cast<std::size_t>(0.995 * magnitudes.size()))]);
  for (std::size_t k = 0; k < mu.size(); ++k) extent = std::max(extent, std::abs(mu[k]) + 2.5 * sigma[k]);
  extent *= 1.05;

  constexpr std::int64_t kPlot = 400, kLeft = 40, kTop = 24, kZoom = 96, kTile = 56, kRow = 112;
  const std::int64_t right = kLeft + kPlot + 28;
  const std::int64_t tiles_left = right + kZoom + 12;
  const std::int64_t width = tiles_left + (2 + kDecoded) * (kTile + 4) + 4;
  const std::int64_t height = std::max(kTop + kPlot + 22, kTop + n * kRow) + 4;
  Canvas canvas(height, width);
  canvas.text(6, kLeft, "q(z|x) = N(mu, sigma^2) of four test images, and draws z = mu + sigma * eps",
              kFrameGrey);
  PlotArea plane = square_area(-extent, extent, -extent, extent, kLeft, kTop, kPlot, 0.0);
  for (std::int64_t i = 1; i < kPlot - 1; ++i) {
    canvas.put(plane.py(0.0), kLeft + i, kLightGrey);
    canvas.put(kTop + i, plane.px(0.0), kLightGrey);
  }
  for (int r = 1; r <= 3; ++r)
    canvas.ellipse(plane.py(0.0), plane.px(0.0), r * plane.y_scale(), r * plane.x_scale(), kLightGrey);
  const Rgb cloud_grey{0.72f, 0.72f, 0.72f};
  for (std::size_t k = 0; k + 1 < cloud.size(); k += 2) canvas.put(plane.py(cloud[k + 1]), plane.px(cloud[k]), cloud_grey);
  plane.draw_frame(canvas, "z1", "z2");
  char buffer[128];
  for (std::int64_t i = 0; i < n; ++i) {
    const Rgb colour = category_colour(i == 0 ? 3 : i == 1 ? 0 : i == 2 ? 2 : 4);
    const double mx = mu[2 * i], my = mu[2 * i + 1], sx = sigma[2 * i], sy = sigma[2 * i + 1];
    const std::string number = std::to_string(i + 1);
    // In the plane: the draws, μ ± σ and μ ± 2σ, μ, and the image's number.
    for (std::int64_t k = 0; k < kDraws; ++k)
      canvas.put(plane.py(zs[2 * (i * kDraws + k) + 1]), plane.px(zs[2 * (i * kDraws + k)]), colour);
    for (int r = 1; r <= 2; ++r)
      canvas.ellipse(plane.py(my), plane.px(mx), r * sy * plane.y_scale(), r * sx * plane.x_scale(), colour);
    canvas.square(plane.py(my), plane.px(mx), 1, kBlack);
    canvas.text(plane.py(my) - 12, plane.px(mx) + 6, number, kBlack);

    // The zoom: μ ± 3.2 σ_max, the same scale on both axes.
    const std::int64_t top = kTop + i * kRow;
    const double half = 3.2 * std::max(sx, sy);
    const PlotArea zoom = square_area(mx - half, mx + half, my - half, my + half, right, top, kZoom, 0.0);
    for (std::int64_t p = 0; p < kZoom; ++p) {
      canvas.put(top, right + p, colour);
      canvas.put(top + kZoom - 1, right + p, colour);
      canvas.put(top + p, right, colour);
      canvas.put(top + p, right + kZoom - 1, colour);
    }
    for (int r = 1; r <= 2; ++r)
      canvas.ellipse(zoom.py(my), zoom.px(mx), r * sy * zoom.y_scale(), r * sx * zoom.x_scale(), colour);
    for (std::int64_t k = 0; k < kDraws; ++k) {
      const double x = zs[2 * (i * kDraws + k)], y = zs[2 * (i * kDraws + k) + 1];
      if (x < zoom.x_min || x > zoom.x_max || y < zoom.y_min || y > zoom.y_max) continue;
      canvas.square(zoom.py(y), zoom.px(x), k < kDecoded ? 2 : 1, k < kDecoded ? kBlack : colour);
      if (k < kDecoded) canvas.text(zoom.py(y) - 3, zoom.px(x) + 4, std::to_string(k + 1), kBlack);
    }
    canvas.square(zoom.py(my), zoom.px(mx), 0, kBlack);
    canvas.text(top + 3, right + 3, number, kBlack);
    std::snprintf(buffer, sizeof buffer, "width %.2f", zoom.x_max - zoom.x_min);
    canvas.text(top + kZoom + 3, right, buffer, kFrameGrey);

    // The image, decode(μ) and the decoded draws.
    const std::array<std::string, 2> heads{"x", "dec(mu)"};
    for (std::int64_t t = 0; t < 2 + kDecoded; ++t) {
      const std::int64_t x0 = tiles_left + t * (kTile + 4);
      std::string head = heads[0];
      if (t == 1) head = heads[1];
      if (t >= 2) head = std::string(1, 'z').append(std::to_string(t - 1));
      canvas.text(top, x0 + (kTile - text_width(head)) / 2, head, kFrameGrey);
      const Tensor tile = t == 0 ? images.narrow(0, i, 1).squeeze(0)
                                 : decoded.narrow(0, i * (1 + kDecoded) + t - 1, 1).squeeze(0);
      canvas.image(top + 10, x0, tile, kTile / 28);
    }
    std::snprintf(buffer, sizeof buffer, "mu (%.2f, %.2f)  sigma (%.3f, %.3f)", mx, my, sx, sy);
    canvas.text(top + 10 + kTile + 6, tiles_left, buffer, kBlack);
  }
  save_png(path, canvas.tensor());
}

}  // namespace latent::train
