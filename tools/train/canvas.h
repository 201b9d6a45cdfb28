// A small RGB canvas for the pictures of `latent train` and `latent info` (pictures.h): pixels,
// squares, discs, rings, ellipses, lines, a 5×7 bitmap font and pasted gray images, plus
// PlotArea, which maps a rectangle of the plane onto the canvas and draws its frame and ticks.
// No plotting library: the result is a [3, H, W] tensor for save_png (latent/io.h).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "latent/tensor.h"

namespace latent::train {

using Rgb = std::array<float, 3>;

inline constexpr Rgb kWhite{1.0f, 1.0f, 1.0f};
inline constexpr Rgb kBlack{0.0f, 0.0f, 0.0f};
inline constexpr Rgb kFrameGrey{0.3f, 0.3f, 0.3f};
inline constexpr Rgb kLightGrey{0.8f, 0.8f, 0.8f};

// Ten well-separated colours (matplotlib's tab10), e.g. one per Fashion-MNIST class.
Rgb category_colour(std::int64_t i);
// A colour per code index: hues spaced by the golden ratio, so neighbouring indices differ.
Rgb code_colour(std::int64_t code);
// a·(1 − t) + b·t, channel by channel.
Rgb mix(const Rgb& a, const Rgb& b, double t);

// The font's cell: 5×7 glyphs and one column of spacing.
inline constexpr std::int64_t kGlyphWidth = 6, kGlyphHeight = 7;
// Pixels that text(s) covers horizontally.
std::int64_t text_width(const std::string& s);

// An RGB canvas [3, H, W] in [0, 1]. Everything outside the canvas is clipped.
class Canvas {
 public:
  Canvas(std::int64_t height, std::int64_t width, const Rgb& background = kWhite);

  std::int64_t height() const { return h_; }
  std::int64_t width() const { return w_; }
  void put(std::int64_t y, std::int64_t x, const Rgb& rgb);
  Rgb at(std::int64_t y, std::int64_t x) const;  // the pixel (must lie inside)
  // A filled square of side 2·radius + 1 centred on (cy, cx).
  void square(std::int64_t cy, std::int64_t cx, int radius, const Rgb& rgb);
  void rectangle(std::int64_t y0, std::int64_t x0, std::int64_t height, std::int64_t width,
                 const Rgb& rgb);  // filled
  // The pixels within `radius` of (cy, cx), filled (disc) or a one-pixel outline (ring).
  void disc(std::int64_t cy, std::int64_t cx, double radius, const Rgb& rgb);
  void ring(std::int64_t cy, std::int64_t cx, double radius, const Rgb& rgb);
  // The outline of the axis-aligned ellipse with semi-axes rx, ry (pixels, fractional)
  // around the pixel centre (cy, cx); at least one pixel even when both radii are tiny.
  void ellipse(double cy, double cx, double ry, double rx, const Rgb& rgb);
  // A one-pixel line from (y0, x0) to (y1, x1), both ends included (Bresenham).
  void line(std::int64_t y0, std::int64_t x0, std::int64_t y1, std::int64_t x1, const Rgb& rgb);
  // Text with its top-left corner at (y, x); characters outside the font are left blank.
  void text(std::int64_t y, std::int64_t x, const std::string& s, const Rgb& rgb);
  // A gray image [H, W] or [1, H, W] in [0, 1], each pixel drawn as a zoom × zoom block with
  // its top-left corner at (y, x).
  void image(std::int64_t y, std::int64_t x, const Tensor& gray, std::int64_t zoom = 1);
  Tensor tensor() const;  // [3, H, W] float32

 private:
  std::int64_t h_, w_;
  std::vector<float> pixels_;
};

// The smallest of 1, 2, 5 × 10^k that is at least x (> 0).
double nice_step(double x);
// A tick value with as many decimals as the step needs (0, 1 or 2).
std::string tick_label(double v, double step);

// A rectangle [x_min, x_max] × [y_min, y_max] of the plane drawn into the pixel box whose
// top-left corner is (left, top) and whose size is width × height; y grows upwards.
struct PlotArea {
  double x_min = -1, x_max = 1, y_min = -1, y_max = 1;
  std::int64_t left = 0, top = 0, width = 1, height = 1;

  // The pixel column of x and row of y (rounded to the nearest pixel centre).
  std::int64_t px(double x) const;
  std::int64_t py(double y) const;
  // Pixels per unit along x and along y.
  double x_scale() const;
  double y_scale() const;
  // The frame, ticks every nice step on all four sides, the values on the left and bottom,
  // and the axis names inside the top-left and bottom-right corners.
  void draw_frame(Canvas& canvas, const std::string& x_name, const std::string& y_name) const;
};

// A square PlotArea of `size` pixels at (left, top) that shows [x_lo, x_hi] × [y_lo, y_hi]
// with equal scales on both axes (the shorter side widened around its centre) and `margin`
// (a fraction of the span) added on every side.
PlotArea square_area(double x_lo, double x_hi, double y_lo, double y_hi, std::int64_t left,
                     std::int64_t top, std::int64_t size, double margin = 0.05);

}  // namespace latent::train
