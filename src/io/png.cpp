// PNG images through libpng's "simplified" API (png_image_*), plus image_grid.
//
// The simplified API reports errors through png_image::message instead of longjmp, which
// keeps C++ objects safe: libpng's classic API jumps over destructors on every error.
// Images are encoded in memory and written with write_file_atomic, so a failed save never
// leaves a partial PNG behind.
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "io/io_detail.h"
#include "latent/autograd.h"
#include "latent/io.h"
#include "latent/ops.h"

namespace latent {

namespace {

// Releases libpng's internal state for a png_image on every path out of a function.
struct PngImageGuard {
  png_image& image;
  ~PngImageGuard() { png_image_free(&image); }
};

// Every chunk's length against the bytes left in the file, before libpng sees it: libpng
// allocates a text or palette chunk's buffer from the length field (up to 2 GB) before it
// finds that the data is not there.
void check_chunk_lengths(const std::string& bytes, const std::string& path) {
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) return;  // libpng says
  std::size_t at = 8;
  while (bytes.size() - at >= 8) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    const std::uint64_t length = (std::uint64_t{p[0]} << 24) | (std::uint64_t{p[1]} << 16) |
                                 (std::uint64_t{p[2]} << 8) | std::uint64_t{p[3]};
    const std::string type(bytes.data() + at + 4, 4);
    const std::uint64_t left = bytes.size() - at - 8;  // after the length and type fields
    LATENT_CHECK(length + 4 <= left, "'", path, "' is not a readable PNG: its ",
                 io_detail::printable(type), " chunk at byte ", at, " claims ", length,
                 " bytes of data, and the file has ", left < 4 ? 0 : left - 4, " left");
    if (type == "IEND") return;
    at += 12 + static_cast<std::size_t>(length);
  }
}

}  // namespace

void save_png(const std::string& path, const Tensor& image) {
  LATENT_CHECK(image.defined(), "save_png('", path, "'): the image is undefined");
  LATENT_CHECK(is_floating(image.dtype()), "save_png('", path,
               "'): expected a float image with values in [0, 1], got ", dtype_name(image.dtype()));
  LATENT_CHECK(image.dim() == 2 || image.dim() == 3, "save_png('", path,
               "'): expected an image shaped [H, W] or [C, H, W], got ", shape_str(image.shape()));
  const std::int64_t channels = image.dim() == 2 ? 1 : image.size(0);
  const std::int64_t height = image.size(-2), width = image.size(-1);
  LATENT_CHECK(channels == 1 || channels == 3 || channels == 4, "save_png('", path,
               "'): expected 1, 3 or 4 channels, got shape ", shape_str(image.shape()));
  LATENT_CHECK(height > 0 && width > 0 && height <= 0x7FFFFFFF / 4 && width <= 0x7FFFFFFF / 4,
               "save_png('", path, "'): cannot save an image of size ", height, "x", width);

  const std::vector<float> values = io_detail::host_contiguous(image).to(DType::f32).to_vector<float>();
  // Planar [C, H, W] floats -> interleaved 8-bit rows.
  const std::size_t plane = static_cast<std::size_t>(height * width);
  std::vector<png_byte> pixels(plane * static_cast<std::size_t>(channels));
  for (std::int64_t c = 0; c < channels; ++c) {
    for (std::size_t i = 0; i < plane; ++i) {
      const float v = values[static_cast<std::size_t>(c) * plane + i];
      LATENT_CHECK(!std::isnan(v), "save_png('", path, "'): the image contains NaN (channel ", c,
                   ", row ", i / width, ", column ", i % width, ")");
      const float clamped = std::clamp(v, 0.0f, 1.0f);
      pixels[i * channels + c] = static_cast<png_byte>(std::lround(clamped * 255.0f));
    }
  }

  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(width);
  png.height = static_cast<png_uint_32>(height);
  png.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
  PngImageGuard guard{png};
  // First ask for the encoded size, then encode into a buffer of that size.
  png_alloc_size_t encoded_bytes = 0;
  if (!png_image_write_to_memory(&png, nullptr, &encoded_bytes, 0, pixels.data(), 0, nullptr))
    LATENT_FAIL("save_png('", path, "'): libpng could not encode the image: ", png.message);
  std::string encoded(encoded_bytes, '\0');
  if (!png_image_write_to_memory(&png, encoded.data(), &encoded_bytes, 0, pixels.data(), 0,
                                 nullptr))
    LATENT_FAIL("save_png('", path, "'): libpng could not encode the image: ", png.message);
  encoded.resize(encoded_bytes);
  write_file_atomic(path, encoded);
}

Tensor load_png(const std::string& path, std::int64_t max_pixels) {
  const std::string bytes = read_file(path);
  check_chunk_lengths(bytes, path);
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  PngImageGuard guard{png};
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    LATENT_FAIL("'", path, "' is not a readable PNG: ", png.message);
  // Keep the file's own channels, as 8-bit samples without a palette.
  png.format &= ~(PNG_FORMAT_FLAG_LINEAR | PNG_FORMAT_FLAG_COLORMAP);
  const std::int64_t channels = PNG_IMAGE_SAMPLE_CHANNELS(png.format);
  const std::int64_t height = png.height, width = png.width;
  LATENT_CHECK(height * width <= max_pixels, "'", path, "': its header claims ", width, "x",
               height, " pixels, more than the ", max_pixels,
               " this read accepts; nothing was allocated");
  std::vector<png_byte> pixels(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, pixels.data(), 0, nullptr))
    LATENT_FAIL("'", path, "' is not a readable PNG: ", png.message);

  Tensor out = empty({channels, height, width}, DType::f32);
  float* dst = out.data<float>();
  const std::size_t plane = static_cast<std::size_t>(height * width);
  for (std::int64_t c = 0; c < channels; ++c)
    for (std::size_t i = 0; i < plane; ++i)
      dst[static_cast<std::size_t>(c) * plane + i] =
          static_cast<float>(pixels[i * channels + c]) / 255.0f;
  return out;
}

// ------------------------------------------------------------------ image_grid
Tensor image_grid(const Tensor& images, std::int64_t columns, std::int64_t padding,
                  double pad_value) {
  LATENT_CHECK(images.defined() && images.dim() == 4, "image_grid: expected images shaped "
               "[N, C, H, W], got ", images.defined() ? shape_str(images.shape()) : "undefined");
  const std::int64_t n = images.size(0), channels = images.size(1);
  const std::int64_t height = images.size(2), width = images.size(3);
  LATENT_CHECK(n > 0, "image_grid: no images (shape ", shape_str(images.shape()), ")");
  LATENT_CHECK(columns > 0, "image_grid: columns must be positive, got ", columns);
  LATENT_CHECK(padding >= 0, "image_grid: padding must be non-negative, got ", padding);
  const std::int64_t cols = std::min(columns, n);
  const std::int64_t rows = (n + cols - 1) / cols;
  NoGradGuard no_grad;
  const Tensor source = images.detach();
  Tensor grid = full({channels, rows * (height + padding) + padding,
                      cols * (width + padding) + padding},
                     pad_value, images.dtype(), images.device());
  for (std::int64_t k = 0; k < n; ++k) {
    const std::int64_t top = padding + (k / cols) * (height + padding);
    const std::int64_t left = padding + (k % cols) * (width + padding);
    grid.narrow(1, top, height).narrow(2, left, width).copy_(source.narrow(0, k, 1).squeeze(0));
  }
  return grid;
}

Tensor image_grid(const std::vector<Tensor>& images, std::int64_t columns, std::int64_t padding,
                  double pad_value) {
  LATENT_CHECK(!images.empty(), "image_grid: no images");
  NoGradGuard no_grad;
  std::vector<Tensor> stacked;
  stacked.reserve(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) {
    const Tensor& image = images[i];
    LATENT_CHECK(image.defined() && (image.dim() == 2 || image.dim() == 3),
                 "image_grid: image ", i, " must be shaped [H, W] or [C, H, W], got ",
                 image.defined() ? shape_str(image.shape()) : "undefined");
    const Tensor chw = image.dim() == 2 ? image.detach().unsqueeze(0) : image.detach();
    stacked.push_back(chw.unsqueeze(0));
    LATENT_CHECK(stacked.back().shape() == stacked.front().shape(), "image_grid: image ", i,
                 " has shape ", shape_str(image.shape()), " but image 0 has shape ",
                 shape_str(images.front().shape()));
  }
  return image_grid(concat(stacked, 0), columns, padding, pad_value);
}

}  // namespace latent
