// The pictures' canvas (canvas.h).
#include "tools/train/canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace latent::train {
namespace {

// A 5×7 bitmap font ('#' is ink).
struct Glyph {
  char c;
  std::array<const char*, 7> rows;
};
constexpr Glyph kFont[] = {
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
    {'+', {"     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "}},
    {'=', {"     ", "     ", "#####", "     ", "#####", "     ", "     "}},
    {'.', {"     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "}},
    {',', {"     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "}},
    {':', {"     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "}},
    {';', {"     ", " ##  ", " ##  ", "     ", " ##  ", "  #  ", " #   "}},
    {'(', {"   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "}},
    {')', {" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "}},
    {'[', {" ### ", " #   ", " #   ", " #   ", " #   ", " #   ", " ### "}},
    {']', {" ### ", "   # ", "   # ", "   # ", "   # ", "   # ", " ### "}},
    {'/', {"     ", "    #", "   # ", "  #  ", " #   ", "#    ", "     "}},
    {'%', {"##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"}},
    {'<', {"   # ", "  #  ", " #   ", "#    ", " #   ", "  #  ", "   # "}},
    {'>', {" #   ", "  #  ", "   # ", "    #", "   # ", "  #  ", " #   "}},
    {'|', {"  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "}},
    {'^', {"  #  ", " # # ", "#   #", "     ", "     ", "     ", "     "}},
    {'*', {"     ", "# # #", " ### ", "#####", " ### ", "# # #", "     "}},
    {'a', {"     ", "     ", " ### ", "    #", " ####", "#   #", " ####"}},
    {'b', {"#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#### "}},
    {'c', {"     ", "     ", " ### ", "#    ", "#    ", "#   #", " ### "}},
    {'d', {"    #", "    #", " ## #", "#  ##", "#   #", "#   #", " ####"}},
    {'e', {"     ", "     ", " ### ", "#   #", "#####", "#    ", " ### "}},
    {'f', {"  ## ", " #  #", " #   ", "###  ", " #   ", " #   ", " #   "}},
    {'g', {"     ", " ####", "#   #", "#   #", " ####", "    #", " ### "}},
    {'h', {"#    ", "#    ", "# ## ", "##  #", "#   #", "#   #", "#   #"}},
    {'i', {"  #  ", "     ", " ##  ", "  #  ", "  #  ", "  #  ", " ### "}},
    {'j', {"   # ", "     ", "  ## ", "   # ", "   # ", "#  # ", " ##  "}},
    {'k', {"#    ", "#    ", "#  # ", "# #  ", "##   ", "# #  ", "#  # "}},
    {'l', {" ##  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
    {'m', {"     ", "     ", "## # ", "# # #", "# # #", "#   #", "#   #"}},
    {'n', {"     ", "     ", "# ## ", "##  #", "#   #", "#   #", "#   #"}},
    {'o', {"     ", "     ", " ### ", "#   #", "#   #", "#   #", " ### "}},
    {'p', {"     ", "     ", "#### ", "#   #", "#### ", "#    ", "#    "}},
    {'q', {"     ", "     ", " ## #", "#  ##", " ####", "    #", "    #"}},
    {'r', {"     ", "     ", "# ## ", "##  #", "#    ", "#    ", "#    "}},
    {'s', {"     ", "     ", " ####", "#    ", " ### ", "    #", "#### "}},
    {'t', {" #   ", " #   ", "###  ", " #   ", " #   ", " #  #", "  ## "}},
    {'u', {"     ", "     ", "#   #", "#   #", "#   #", "#  ##", " ## #"}},
    {'v', {"     ", "     ", "#   #", "#   #", "#   #", " # # ", "  #  "}},
    {'w', {"     ", "     ", "#   #", "#   #", "# # #", "# # #", " # # "}},
    {'x', {"     ", "     ", "#   #", " # # ", "  #  ", " # # ", "#   #"}},
    {'y', {"     ", "     ", "#   #", "#   #", " ####", "    #", " ### "}},
    {'z', {"     ", "     ", "#####", "   # ", "  #  ", " #   ", "#####"}},
    {'A', {" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"}},
    {'B', {"#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "}},
    {'C', {" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "}},
    {'D', {"###  ", "#  # ", "#   #", "#   #", "#   #", "#  # ", "###  "}},
    {'E', {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"}},
    {'F', {"#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "}},
    {'G', {" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"}},
    {'H', {"#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"}},
    {'I', {" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "}},
    {'J', {"  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "}},
    {'K', {"#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"}},
    {'L', {"#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"}},
    {'M', {"#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"}},
    {'N', {"#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"}},
    {'O', {" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "}},
    {'P', {"#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "}},
    {'Q', {" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"}},
    {'R', {"#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"}},
    {'S', {" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "}},
    {'T', {"#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "}},
    {'U', {"#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "}},
    {'V', {"#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "}},
    {'W', {"#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "}},
    {'X', {"#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"}},
    {'Y', {"#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "}},
    {'Z', {"#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"}},
};

const Glyph* glyph(char c) {
  for (const Glyph& g : kFont)
    if (g.c == c) return &g;
  return nullptr;
}

}  // namespace

Rgb category_colour(std::int64_t i) {
  static constexpr std::array<Rgb, 10> kTab10{{
      {0.12f, 0.47f, 0.71f}, {1.00f, 0.50f, 0.05f}, {0.17f, 0.63f, 0.17f}, {0.84f, 0.15f, 0.16f},
      {0.58f, 0.40f, 0.74f}, {0.55f, 0.34f, 0.29f}, {0.89f, 0.47f, 0.76f}, {0.50f, 0.50f, 0.50f},
      {0.74f, 0.74f, 0.13f}, {0.09f, 0.75f, 0.81f},
  }};
  return kTab10[static_cast<std::size_t>(((i % 10) + 10) % 10)];
}

Rgb code_colour(std::int64_t code) {
  const double h = std::fmod(static_cast<double>(code) * 0.6180339887498949, 1.0) * 6.0;
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
  return {static_cast<float>(r + v - c), static_cast<float>(g + v - c),
          static_cast<float>(b + v - c)};
}

Rgb mix(const Rgb& a, const Rgb& b, double t) {
  Rgb out;
  for (int c = 0; c < 3; ++c) out[c] = static_cast<float>(a[c] * (1.0 - t) + b[c] * t);
  return out;
}

std::int64_t text_width(const std::string& s) {
  return s.empty() ? 0 : static_cast<std::int64_t>(s.size()) * kGlyphWidth - 1;
}

Canvas::Canvas(std::int64_t height, std::int64_t width, const Rgb& background)
    : h_(height), w_(width), pixels_(static_cast<std::size_t>(3 * height * width)) {
  for (int c = 0; c < 3; ++c)
    std::fill(pixels_.begin() + c * h_ * w_, pixels_.begin() + (c + 1) * h_ * w_, background[c]);
}

void Canvas::put(std::int64_t y, std::int64_t x, const Rgb& rgb) {
  if (y < 0 || y >= h_ || x < 0 || x >= w_) return;
  for (int c = 0; c < 3; ++c) pixels_[static_cast<std::size_t>((c * h_ + y) * w_ + x)] = rgb[c];
}

Rgb Canvas::at(std::int64_t y, std::int64_t x) const {
  Rgb rgb;
  for (int c = 0; c < 3; ++c) rgb[c] = pixels_[static_cast<std::size_t>((c * h_ + y) * w_ + x)];
  return rgb;
}

void Canvas::square(std::int64_t cy, std::int64_t cx, int radius, const Rgb& rgb) {
  for (std::int64_t y = cy - radius; y <= cy + radius; ++y)
    for (std::int64_t x = cx - radius; x <= cx + radius; ++x) put(y, x, rgb);
}

void Canvas::rectangle(std::int64_t y0, std::int64_t x0, std::int64_t height, std::int64_t width,
                       const Rgb& rgb) {
  for (std::int64_t y = y0; y < y0 + height; ++y)
    for (std::int64_t x = x0; x < x0 + width; ++x) put(y, x, rgb);
}

void Canvas::disc(std::int64_t cy, std::int64_t cx, double radius, const Rgb& rgb) {
  const auto r = static_cast<std::int64_t>(std::ceil(radius));
  for (std::int64_t dy = -r; dy <= r; ++dy)
    for (std::int64_t dx = -r; dx <= r; ++dx)
      if (static_cast<double>(dy * dy + dx * dx) <= radius * radius + 1e-9) put(cy + dy, cx + dx, rgb);
}

void Canvas::ring(std::int64_t cy, std::int64_t cx, double radius, const Rgb& rgb) {
  const auto r = static_cast<std::int64_t>(std::ceil(radius + 0.5));
  for (std::int64_t dy = -r; dy <= r; ++dy) {
    for (std::int64_t dx = -r; dx <= r; ++dx) {
      const double d = std::sqrt(static_cast<double>(dy * dy + dx * dx));
      if (std::abs(d - radius) < 0.5) put(cy + dy, cx + dx, rgb);
    }
  }
}

void Canvas::ellipse(double cy, double cx, double ry, double rx, const Rgb& rgb) {
  // Enough angles that consecutive points are under a pixel apart.
  const double perimeter = 2.0 * 3.14159265358979323846 * std::max({rx, ry, 1.0});
  const int steps = static_cast<int>(std::ceil(perimeter * 2.0)) + 8;
  for (int k = 0; k < steps; ++k) {
    const double a = 2.0 * 3.14159265358979323846 * k / steps;
    put(static_cast<std::int64_t>(std::lround(cy - ry * std::sin(a))),
        static_cast<std::int64_t>(std::lround(cx + rx * std::cos(a))), rgb);
  }
}

void Canvas::line(std::int64_t y0, std::int64_t x0, std::int64_t y1, std::int64_t x1,
                  const Rgb& rgb) {
  const std::int64_t dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  const std::int64_t sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  std::int64_t error = dx + dy;
  for (;;) {
    put(y0, x0, rgb);
    if (x0 == x1 && y0 == y1) break;
    const std::int64_t e2 = 2 * error;
    if (e2 >= dy) error += dy, x0 += sx;
    if (e2 <= dx) error += dx, y0 += sy;
  }
}

void Canvas::text(std::int64_t y, std::int64_t x, const std::string& s, const Rgb& rgb) {
  for (char ch : s) {
    if (const Glyph* g = glyph(ch)) {
      for (std::int64_t r = 0; r < kGlyphHeight; ++r)
        for (std::int64_t c = 0; c < 5; ++c)
          if (g->rows[static_cast<std::size_t>(r)][c] == '#') put(y + r, x + c, rgb);
    }
    x += kGlyphWidth;
  }
}

void Canvas::image(std::int64_t y0, std::int64_t x0, const Tensor& gray, std::int64_t zoom) {
  const std::int64_t h = gray.size(gray.dim() - 2), w = gray.size(gray.dim() - 1);
  const std::vector<float> v = gray.contiguous().to(Device::cpu()).to(DType::f32).to_vector<float>();
  for (std::int64_t y = 0; y < h * zoom; ++y) {
    for (std::int64_t x = 0; x < w * zoom; ++x) {
      const float g = std::clamp(v[static_cast<std::size_t>((y / zoom) * w + x / zoom)], 0.0f, 1.0f);
      put(y0 + y, x0 + x, {g, g, g});
    }
  }
}

Tensor Canvas::tensor() const { return from_vector(pixels_, {3, h_, w_}); }

double nice_step(double x) {
  const double decade = std::pow(10.0, std::floor(std::log10(x)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * decade >= x * (1.0 - 1e-12)) return m * decade;
  return 10.0 * decade;
}

std::string tick_label(double v, double step) {
  char buffer[32];
  const int decimals = step >= 1.0 ? 0 : step >= 0.1 - 1e-12 ? 1 : 2;
  if (std::abs(v) < step * 1e-6) v = 0.0;  // no "-0.0"
  std::snprintf(buffer, sizeof buffer, "%.*f", decimals, v);
  return buffer;
}

std::int64_t PlotArea::px(double x) const {
  return left + static_cast<std::int64_t>(std::floor((x - x_min) * x_scale()));
}

std::int64_t PlotArea::py(double y) const {
  return top + height - 1 - static_cast<std::int64_t>(std::floor((y - y_min) * y_scale()));
}

double PlotArea::x_scale() const { return static_cast<double>(width) / (x_max - x_min); }
double PlotArea::y_scale() const { return static_cast<double>(height) / (y_max - y_min); }

void PlotArea::draw_frame(Canvas& canvas, const std::string& x_name,
                          const std::string& y_name) const {
  for (std::int64_t i = 0; i < width; ++i) {
    canvas.put(top, left + i, kFrameGrey);
    canvas.put(top + height - 1, left + i, kFrameGrey);
  }
  for (std::int64_t i = 0; i < height; ++i) {
    canvas.put(top + i, left, kFrameGrey);
    canvas.put(top + i, left + width - 1, kFrameGrey);
  }
  const double step = nice_step(std::max(x_max - x_min, y_max - y_min) / 6.0);
  for (std::int64_t t = static_cast<std::int64_t>(std::ceil(x_min / step));
       t * step <= x_max; ++t) {
    const double v = static_cast<double>(t) * step;
    const std::int64_t x = px(v);
    for (std::int64_t k = 0; k < 5; ++k) {
      canvas.put(top + height - 1 - k, x, kFrameGrey);
      canvas.put(top + k, x, kFrameGrey);
    }
    const std::string label = tick_label(v, step);
    canvas.text(top + height + 4, x - text_width(label) / 2, label, kFrameGrey);
  }
  for (std::int64_t t = static_cast<std::int64_t>(std::ceil(y_min / step));
       t * step <= y_max; ++t) {
    const double v = static_cast<double>(t) * step;
    const std::int64_t y = py(v);
    for (std::int64_t k = 0; k < 5; ++k) {
      canvas.put(y, left + k, kFrameGrey);
      canvas.put(y, left + width - 1 - k, kFrameGrey);
    }
    const std::string label = tick_label(v, step);
    canvas.text(y - kGlyphHeight / 2, left - 4 - text_width(label), label, kFrameGrey);
  }
  canvas.text(top + height - 14, left + width - 8 - text_width(x_name), x_name, kFrameGrey);
  canvas.text(top + 8, left + 8, y_name, kFrameGrey);
}

PlotArea square_area(double x_lo, double x_hi, double y_lo, double y_hi, std::int64_t left,
                     std::int64_t top, std::int64_t size, double margin) {
  double span = std::max({x_hi - x_lo, y_hi - y_lo, 1e-6});
  span *= 1.0 + 2.0 * margin;
  const double cx = 0.5 * (x_lo + x_hi), cy = 0.5 * (y_lo + y_hi);
  PlotArea area;
  area.x_min = cx - span / 2;
  area.x_max = cx + span / 2;
  area.y_min = cy - span / 2;
  area.y_max = cy + span / 2;
  area.left = left;
  area.top = top;
  area.width = size;
  area.height = size;
  return area;
}

}  // namespace latent::train
