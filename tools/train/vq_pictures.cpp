// The VQ-VAE's pictures (pictures.h): per-code usage bars (the test set; with an EMA
// codebook, the counts around the last revival), the token grids of a few test images and,
// when the codes have two dimensions, the snapping of encoder outputs to their nearest codes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "tools/train/canvas.h"
#include "tools/train/pictures.h"

namespace latent::train {
namespace {

constexpr std::int64_t kGrid = 7;  // the latent grid is 7×7

std::vector<double> host_doubles(const Tensor& t) {
  NoGradGuard no_grad;
  return t.detach().to(DType::f64).to_vector<double>();
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
        const Rgb rgb = code_colour(t[i * kGrid * kGrid + (sy / cell) * kGrid + sx / cell]);
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

  if (model.config().quantizer.code_dim == 2)
    write_snapping_picture(model, out_dir + "/snapping.png", test, device);
}

Rgb snapping_line_colour(std::int64_t code) { return mix(code_colour(code), kBlack, 0.15); }

Tensor snapping_plot(const std::vector<float>& points, const std::vector<float>& codes,
                     const std::vector<std::int32_t>& assignment, bool cosine,
                     const std::string& caption, PlotArea* area_out) {
  const std::size_t n = points.size() / 2, K = codes.size() / 2;
  LATENT_CHECK(points.size() == 2 * n && codes.size() == 2 * K && K > 0 && assignment.size() == n,
               "snapping plot: expected points [n, 2], codes [K, 2] and n assignments");
  // The plot shows every code and the central 99 % of the points along each axis.
  double x_lo = codes[0], x_hi = codes[0], y_lo = codes[1], y_hi = codes[1];
  for (std::size_t k = 0; k < K; ++k) {
    x_lo = std::min<double>(x_lo, codes[2 * k]), x_hi = std::max<double>(x_hi, codes[2 * k]);
    y_lo = std::min<double>(y_lo, codes[2 * k + 1]), y_hi = std::max<double>(y_hi, codes[2 * k + 1]);
  }
  if (n > 0) {
    for (int axis = 0; axis < 2; ++axis) {
      std::vector<float> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = points[2 * i + axis];
      std::sort(v.begin(), v.end());
      const double lo = v[static_cast<std::size_t>(0.005 * (n - 1))];
      const double hi = v[static_cast<std::size_t>(0.995 * (n - 1))];
      (axis == 0 ? x_lo : y_lo) = std::min(axis == 0 ? x_lo : y_lo, lo);
      (axis == 0 ? x_hi : y_hi) = std::max(axis == 0 ? x_hi : y_hi, hi);
    }
  }
  constexpr std::int64_t kSize = 512, kLeft = 44, kTop = 24;
  const PlotArea area = square_area(x_lo, x_hi, y_lo, y_hi, kLeft, kTop, kSize, 0.06);
  Canvas canvas(kTop + kSize + 22, kLeft + kSize + 16);
  canvas.text(6, kLeft, caption, kFrameGrey);

  // Each code's cell: the pixels whose nearest code it is (by direction, in cosine mode),
  // tinted; the cells' edges in grey.
  std::vector<std::int32_t> cell(static_cast<std::size_t>(kSize * kSize));
  std::vector<double> normalized(codes.begin(), codes.end());
  if (cosine) {
    for (std::size_t k = 0; k < K; ++k) {
      const double norm = std::max(std::hypot(normalized[2 * k], normalized[2 * k + 1]), 1e-12);
      normalized[2 * k] /= norm, normalized[2 * k + 1] /= norm;
    }
  }
  for (std::int64_t py = 0; py < kSize; ++py) {
    for (std::int64_t px = 0; px < kSize; ++px) {
      double x = area.x_min + (px + 0.5) / area.x_scale();
      double y = area.y_min + (kSize - 1 - py + 0.5) / area.y_scale();
      if (cosine) {
        const double norm = std::max(std::hypot(x, y), 1e-12);
        x /= norm, y /= norm;
      }
      std::int32_t best = 0;
      double best_d = INFINITY;
      for (std::size_t k = 0; k < K; ++k) {
        const double dx = x - normalized[2 * k], dy = y - normalized[2 * k + 1];
        const double d = dx * dx + dy * dy;
        if (d < best_d) best_d = d, best = static_cast<std::int32_t>(k);
      }
      cell[static_cast<std::size_t>(py * kSize + px)] = best;
    }
  }
  for (std::int64_t py = 0; py < kSize; ++py) {
    for (std::int64_t px = 0; px < kSize; ++px) {
      const std::int32_t c = cell[static_cast<std::size_t>(py * kSize + px)];
      const bool edge = (px + 1 < kSize && cell[static_cast<std::size_t>(py * kSize + px + 1)] != c) ||
                        (py + 1 < kSize && cell[static_cast<std::size_t>((py + 1) * kSize + px)] != c);
      canvas.put(kTop + py, kLeft + px, edge ? kLightGrey : mix(kWhite, code_colour(c), 0.16));
    }
  }
  area.draw_frame(canvas, "z1", "z2");
  // A line from each output to its code, then the outputs, then the codes on top.
  std::vector<bool> used(K, false);
  for (std::size_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(assignment[i]);
    LATENT_CHECK(k < K, "snapping plot: assignment ", assignment[i], " is not a code");
    used[k] = true;
    canvas.line(area.py(points[2 * i + 1]), area.px(points[2 * i]), area.py(codes[2 * k + 1]),
                area.px(codes[2 * k]), snapping_line_colour(static_cast<std::int64_t>(k)));
  }
  for (std::size_t i = 0; i < n; ++i)
    canvas.square(area.py(points[2 * i + 1]), area.px(points[2 * i]), 1,
                  mix(code_colour(assignment[i]), kBlack, 0.45));
  for (std::size_t k = 0; k < K; ++k) {
    const std::int64_t y = area.py(codes[2 * k + 1]), x = area.px(codes[2 * k]);
    canvas.disc(y, x, 5.0, used[k] ? code_colour(static_cast<std::int64_t>(k)) : kWhite);
    canvas.ring(y, x, 6.0, used[k] ? kBlack : kFrameGrey);
  }
  if (area_out) *area_out = area;
  return canvas.tensor();
}

void write_snapping_picture(models::VqVae& model, const std::string& path, const Dataset& test,
                            Device device) {
  NoGradGuard no_grad;
  const models::VectorQuantizerConfig& q = model.config().quantizer;
  LATENT_CHECK(q.code_dim == 2, "snapping picture: needs codes of two dimensions (--code-dim 2), "
               "got ", q.code_dim);
  const std::int64_t images = std::min<std::int64_t>(40, test.size());
  if (images == 0) return;
  const Tensor z = model.encode_rows(test.images.narrow(0, 0, images).to(device));
  const Tensor indices = model.quantizer().nearest(z);
  const Tensor shown = q.cosine ? l2_normalize_rows(z) : z;
  const Tensor codes = model.quantizer().lookup(arange(q.codebook_size, DType::i32, device));
  auto floats = [](const Tensor& t) {
    return t.contiguous().to(Device::cpu()).to(DType::f32).to_vector<float>();
  };
  const std::vector<float> points = floats(shown), code_xy = floats(codes);
  const std::vector<std::int32_t> assignment = indices.to(Device::cpu()).to_vector<std::int32_t>();
  std::vector<bool> used(static_cast<std::size_t>(q.codebook_size), false);
  double distance = 0.0;
  for (std::size_t i = 0; i < assignment.size(); ++i) {
    const auto k = static_cast<std::size_t>(assignment[i]);
    used[k] = true;
    distance += std::hypot(points[2 * i] - code_xy[2 * k], points[2 * i + 1] - code_xy[2 * k + 1]);
  }
  const auto codes_used = std::count(used.begin(), used.end(), true);
  char caption[160];
  std::snprintf(caption, sizeof caption,
                "K = %lld codes of D = 2%s; %zu outputs of %lld test images use %lld; mean "
                "distance %.3f",
                static_cast<long long>(q.codebook_size), q.cosine ? " (cosine)" : "",
                assignment.size(), static_cast<long long>(images),
                static_cast<long long>(codes_used),
                assignment.empty() ? 0.0 : distance / static_cast<double>(assignment.size()));
  save_png(path, snapping_plot(points, code_xy, assignment, q.cosine, caption));
}

}  // namespace latent::train
