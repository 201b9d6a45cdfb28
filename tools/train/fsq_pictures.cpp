// The FSQ autoencoder's pictures (pictures.h): the implicit codebook as a grid of squares,
// one per code, brightness log(1 + test-set count), unused codes dark red; and the rounding
// of the bounded encoder outputs to the level grid, in the plane of the first two channels.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "tools/train/canvas.h"
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
  if (model.levels().size() >= 2)
    write_rounding_picture(model, out_dir + "/rounding.png", test, device);
}

double fsq_bound(double z, std::int64_t L, bool symmetric) {
  if (symmetric) return std::tanh(z);  // (L − 1)·tanh(z)/2 levels from the middle, over (L − 1)/2
  const double h = static_cast<double>(L / 2);
  const double half = static_cast<double>(L - 1) * (1.0 + 1e-3) / 2.0;
  const double offset = L % 2 == 0 ? 0.5 : 0.0;
  const double shift = std::atanh(offset / half);
  return (std::tanh(z + shift) * half - offset) / h;
}

std::vector<double> fsq_levels(std::int64_t L, bool symmetric) {
  std::vector<double> levels;
  for (std::int64_t d = 0; d < L; ++d) {
    levels.push_back(symmetric ? static_cast<double>(2 * d - (L - 1)) / static_cast<double>(L - 1)
                               : static_cast<double>(d - L / 2) / static_cast<double>(L / 2));
  }
  return levels;
}

Rgb rounding_line_colour() { return {0.55f, 0.70f, 0.95f}; }
Rgb rounding_code_colour() { return {0.85f, 0.25f, 0.15f}; }

Tensor rounding_plot(const std::vector<float>& bounded, const std::vector<float>& codes,
                     std::int64_t l0, std::int64_t l1, bool symmetric, const std::string& caption,
                     PlotArea* area_out) {
  const std::size_t n = bounded.size() / 2;
  LATENT_CHECK(bounded.size() == 2 * n && codes.size() == bounded.size(),
               "rounding plot: expected bounded [n, 2] and codes [n, 2]");
  const std::vector<double> xs = fsq_levels(l0, symmetric), ys = fsq_levels(l1, symmetric);
  // Each channel's rounding cells: between the midpoints of neighbouring levels, the outer
  // ones half a level beyond the outermost levels.
  auto edges = [](const std::vector<double>& levels) {
    const double step = levels[1] - levels[0];
    std::vector<double> e{levels.front() - step / 2};
    for (std::size_t k = 0; k + 1 < levels.size(); ++k) e.push_back((levels[k] + levels[k + 1]) / 2);
    e.push_back(levels.back() + step / 2);
    return e;
  };
  const std::vector<double> x_edges = edges(xs), y_edges = edges(ys);
  constexpr std::int64_t kSize = 512, kLeft = 44, kTop = 24;
  const PlotArea area = square_area(std::min(x_edges.front(), y_edges.front()),
                                    std::max(x_edges.back(), y_edges.back()),
                                    std::min(x_edges.front(), y_edges.front()),
                                    std::max(x_edges.back(), y_edges.back()), kLeft, kTop, kSize,
                                    0.03);
  Canvas canvas(kTop + kSize + 22, kLeft + kSize + 16);
  canvas.text(6, kLeft, caption, kFrameGrey);
  // The cells' edges, then the range the bound reaches (dotted), then the frame.
  const std::int64_t x0 = area.px(x_edges.front()), x1 = area.px(x_edges.back());
  const std::int64_t y0 = area.py(y_edges.back()), y1 = area.py(y_edges.front());
  for (double e : x_edges) canvas.line(y0, area.px(e), y1, area.px(e), kLightGrey);
  for (double e : y_edges) canvas.line(area.py(e), x0, area.py(e), x1, kLightGrey);
  const double bx_lo = fsq_bound(-40.0, l0, symmetric), bx_hi = fsq_bound(40.0, l0, symmetric);
  const double by_lo = fsq_bound(-40.0, l1, symmetric), by_hi = fsq_bound(40.0, l1, symmetric);
  for (std::int64_t x = area.px(bx_lo); x <= area.px(bx_hi); x += 3) {
    canvas.put(area.py(by_lo), x, kFrameGrey);
    canvas.put(area.py(by_hi), x, kFrameGrey);
  }
  for (std::int64_t y = area.py(by_hi); y <= area.py(by_lo); y += 3) {
    canvas.put(y, area.px(bx_lo), kFrameGrey);
    canvas.put(y, area.px(bx_hi), kFrameGrey);
  }
  area.draw_frame(canvas, "channel 1", "channel 2");
  // A line from each bounded output to its code, the outputs, then the level grid on top:
  // filled where some output rounds to it, hollow where none does.
  std::set<std::pair<std::int64_t, std::int64_t>> used;
  for (std::size_t i = 0; i < n; ++i) {
    canvas.line(area.py(bounded[2 * i + 1]), area.px(bounded[2 * i]), area.py(codes[2 * i + 1]),
                area.px(codes[2 * i]), rounding_line_colour());
    used.insert({area.px(codes[2 * i]), area.py(codes[2 * i + 1])});
  }
  const Rgb dot{0.10f, 0.25f, 0.60f};
  for (std::size_t i = 0; i < n; ++i)
    canvas.square(area.py(bounded[2 * i + 1]), area.px(bounded[2 * i]), 1, dot);
  for (double y : ys) {
    for (double x : xs) {
      const std::int64_t px = area.px(x), py = area.py(y);
      const bool is_used = used.count({px, py}) > 0;
      canvas.disc(py, px, 4.0, is_used ? rounding_code_colour() : kWhite);
      canvas.ring(py, px, 5.0, is_used ? kBlack : kFrameGrey);
    }
  }
  if (area_out) *area_out = area;
  return canvas.tensor();
}

void write_rounding_picture(models::FsqAutoencoder& model, const std::string& path,
                            const Dataset& test, Device device) {
  NoGradGuard no_grad;
  const std::vector<std::int64_t>& levels = model.levels();
  LATENT_CHECK(levels.size() >= 2, "rounding picture: needs at least two channels, got ",
               levels.size());
  const std::int64_t images = std::min<std::int64_t>(40, test.size());
  if (images == 0) return;
  const Tensor x = test.images.narrow(0, 0, images).to(device);
  const bool symmetric = model.options().symmetric;
  auto channels = [](const Tensor& t) {  // [N, d, 7, 7] -> rows of (channel 1, channel 2)
    return t.narrow(1, 0, 2).permute({0, 2, 3, 1}).contiguous().to(Device::cpu())
        .to(DType::f64).to_vector<double>();
  };
  const std::vector<double> z = channels(model.encode(x));
  const std::vector<double> code = channels(model.quantize(x).codes);
  std::vector<float> bounded(z.size()), codes(z.size());
  std::int64_t outermost = 0;
  std::set<std::pair<double, double>> used;
  const std::vector<double> l0 = fsq_levels(levels[0], symmetric), l1 = fsq_levels(levels[1], symmetric);
  for (std::size_t i = 0; i < z.size(); ++i) {
    bounded[i] = static_cast<float>(fsq_bound(z[i], levels[i % 2], symmetric));
    codes[i] = static_cast<float>(code[i]);
    const std::vector<double>& grid = i % 2 == 0 ? l0 : l1;
    outermost += code[i] == grid.front() || code[i] == grid.back();
    if (i % 2 == 1) used.insert({code[i - 1], code[i]});
  }
  char caption[200];
  std::snprintf(caption, sizeof caption,
                "levels %lld x %lld%s: %zu positions of %lld test images use %zu of %lld codes; "
                "%.0f%% at an outer level",
                static_cast<long long>(levels[0]), static_cast<long long>(levels[1]),
                symmetric ? " (symmetric)" : "", z.size() / 2, static_cast<long long>(images),
                used.size(), static_cast<long long>(levels[0] * levels[1]),
                100.0 * static_cast<double>(outermost) / static_cast<double>(z.size()));
  save_png(path, rounding_plot(bounded, codes, levels[0], levels[1], symmetric, caption));
}

}  // namespace latent::train
