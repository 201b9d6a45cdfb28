// Files in and out: atomic writes, .npy arrays, safetensors checkpoints and PNG images.
//
// Every writer here is atomic: the bytes go to a temporary file in the target's directory,
// are flushed to disk (fsync) and only then renamed over the target, so a crash, a full disk
// or an exception never leaves a half-written file where the user expects a good one.
// Every reader validates what it reads; a malformed file is a latent::Error that names the
// file and says what is wrong with it, never a crash or a silently wrong tensor.
//
// Tensors may live on any device and be non-contiguous views: writers copy them to a
// contiguous host buffer first. Readers return contiguous tensors on the cpu.
//
// docs/files.md describes the formats and how to read latent's files from Python.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "latent/tensor.h"

namespace latent {

// ------------------------------------------------------------------ atomic files

// Writes a file atomically, piece by piece. The constructor creates a temporary file next
// to `path` (same directory, so the final rename never crosses file systems); write()
// appends to it; commit() flushes it to disk and renames it over `path`. If the writer is
// destroyed without commit(), or any step fails, the temporary file is removed and `path`
// is left exactly as it was. Failures throw latent::Error naming the path and the reason.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // Flushes, fsyncs, closes and renames the temporary file over the target. Call once.
  void commit();

  const std::string& path() const { return path_; }
  std::size_t bytes_written() const { return bytes_written_; }

 private:
  void flush_buffer();
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
  std::string buffer_;
  std::size_t bytes_written_ = 0;
};

// Writes `bytes` to `path` atomically (see AtomicFileWriter).
void write_file_atomic(const std::string& path, std::string_view bytes);

// Reads a whole file. Throws latent::Error naming the path if it cannot be opened or read.
std::string read_file(const std::string& path);

// ------------------------------------------------------------------ .npy arrays

// Loads a NumPy .npy file (format versions 1.0, 2.0 and 3.0) into a contiguous cpu tensor.
//   '<f4' -> float32, '<f8' -> float64, '<i4' -> int32 (bit-exact),
//   '<i8' -> int32 (every value must fit, else an error naming the value),
//   '|u1' -> float32 holding the raw values 0..255 (not rescaled).
// fortran_order True arrays are read correctly: the result has the shape the file declares
// and the same logical element order NumPy would show. Big-endian data, other dtypes,
// structured dtypes, a bad magic string, an unparsable header or a data section of the
// wrong length are each a latent::Error naming the file.
Tensor load_npy(const std::string& path);

// Saves a tensor as a version 1.0 .npy file (2.0 if the header would not fit), C order,
// little-endian: float32 '<f4', float64 '<f8', int32 '<i4'. Works for 0-d and empty
// tensors, views and tensors on any device. Atomic.
void save_npy(const std::string& path, const Tensor& tensor);

// ------------------------------------------------------------------ safetensors

// The contents of a safetensors file: tensors in file order (ascending data offset, which is
// the order save_safetensors wrote them) and the "__metadata__" string map.
struct SafetensorsFile {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  bool contains(const std::string& name) const;
  // The tensor called `name`; a latent::Error listing the names present if there is none.
  const Tensor& at(const std::string& name) const;
  std::vector<std::string> names() const;
};

// Saves named tensors in the safetensors format (Hugging Face): an 8-byte little-endian
// header length N, N bytes of JSON (padded with spaces to a multiple of 8) giving each
// tensor's dtype, shape and [begin, end) byte range, then the raw little-endian data.
// Tensors are written in the given order as F32, F64 or I32. Names must be unique, non-empty
// and not "__metadata__". Atomic.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Loads a safetensors file into contiguous cpu tensors. F32, F64 and I32 load bit-exact;
// F16 and BF16 (as PyTorch often saves) widen to float32; I64 narrows to int32 when every
// value fits. The header is validated in full: a sane length, well-formed JSON, known
// dtypes, non-negative shapes, byte ranges that match dtype x shape, lie inside the file,
// and tile the data section with no gap or overlap, and string-only metadata. Each
// violation is a latent::Error naming the file and the tensor.
SafetensorsFile load_safetensors(const std::string& path);

// ------------------------------------------------------------------ PNG images

// Saves an image as an 8-bit PNG. `image` is a float tensor shaped [H, W] (gray) or
// [C, H, W] with C = 1 (gray), 3 (RGB) or 4 (RGBA), values in [0, 1]: each value v becomes
// round(clamp(v, 0, 1) * 255). NaN values are an error. Atomic.
void save_png(const std::string& path, const Tensor& image);

// Loads a PNG as a float32 [C, H, W] tensor in [0, 1] (each 8-bit value divided by 255).
// C is the file's own channel count: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; palette images
// become RGB(A) and 16-bit images are reduced to 8 bits by libpng. An 8-bit image saved by
// save_png loads back exactly.
// The header's size is checked against max_pixels before anything is allocated, so a
// 68-byte file claiming 65535×65535 is an error, not gigabytes of memory.
constexpr std::int64_t kPngMaxPixels = std::int64_t{1} << 26;  // 8192 × 8192
Tensor load_png(const std::string& path, std::int64_t max_pixels = kPngMaxPixels);

// Tiles images into one picture, row by row, like torchvision's make_grid: `columns` images
// per row (fewer if there are fewer images), `padding` pixels of `pad_value` between images
// and around the border. Input: a [N, C, H, W] tensor or N tensors of the same [C, H, W] or
// [H, W] shape. Output: [C, rows*(H+padding)+padding, cols*(W+padding)+padding] with the
// dtype and device of the input.
Tensor image_grid(const Tensor& images, std::int64_t columns = 8, std::int64_t padding = 2,
                  double pad_value = 0.0);
Tensor image_grid(const std::vector<Tensor>& images, std::int64_t columns = 8,
                  std::int64_t padding = 2, double pad_value = 0.0);

}  // namespace latent
