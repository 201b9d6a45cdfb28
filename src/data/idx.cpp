// IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).
//
//   bytes 0-1   zero
//   byte  2     element type (0x08: unsigned byte, the only one these datasets use)
//   byte  3     number of dimensions d
//   then        d sizes, each a 32-bit big-endian unsigned integer
//   then        the elements, row-major
// So the magic number read as one big-endian integer is 2051 (0x803) for image files
// ([N, rows, cols]) and 2049 (0x801) for label files ([N]).
//
// Reading goes through zlib's gzopen/gzread, which decompresses a gzip file and passes a
// plain file through unchanged; writing compresses in memory when the name ends in ".gz"
// and then writes the file atomically.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/io_detail.h"
#include "latent/data.h"
#include "latent/io.h"

namespace latent {

namespace {

constexpr std::uint32_t kImagesMagic = 2051;
constexpr std::uint32_t kLabelsMagic = 2049;

// The whole decompressed content of a gzip (or plain) file.
std::string read_maybe_gzipped(const std::string& path) {
  std::error_code ec;
  LATENT_CHECK(std::filesystem::exists(path, ec), "cannot open '", path,
               "': no such file");
  LATENT_CHECK(!std::filesystem::is_directory(path, ec), "cannot read '", path,
               "': it is a directory");
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    const int e = errno;
    LATENT_FAIL("cannot open '", path, "': ",
                e ? io_detail::errno_message(e) : std::string("out of memory"));
  }
  std::string content;
  constexpr unsigned kChunk = 1u << 20;
  while (true) {
    const std::size_t used = content.size();
    content.resize(used + kChunk);
    const int n = gzread(file, content.data() + used, kChunk);
    if (n < 0) {
      int code = 0;
      const std::string message = gzerror(file, &code);
      gzclose_r(file);
      LATENT_FAIL("'", path, "' is corrupt: ", message);
    }
    content.resize(used + static_cast<std::size_t>(n));
    if (n == 0) break;
  }
  int code = Z_OK;
  const std::string message = gzerror(file, &code);
  const int close_code = gzclose_r(file);
  LATENT_CHECK(code == Z_OK && close_code == Z_OK, "'", path,
               "' is corrupt or truncated (gzip: ",
               code != Z_OK ? message : std::string("unexpected end of file"), ")");
  return content;
}

std::uint32_t read_be32(const std::string& bytes, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | static_cast<std::uint32_t>(p[3]);
}

void append_be32(std::string& bytes, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    bytes.push_back(static_cast<char>((value >> shift) & 0xFF));
}

// An unsigned-byte IDX array: its sizes and where its elements start in `content`.
struct IdxArray {
  std::string content;
  std::vector<std::uint32_t> sizes;
  std::size_t data_start = 0;
};

IdxArray read_idx(const std::string& path, std::uint32_t expected_magic, const char* kind) {
  IdxArray idx;
  idx.content = read_maybe_gzipped(path);
  const std::string& c = idx.content;
  LATENT_CHECK(c.size() >= 4, "'", path, "' is not an IDX file: only ", c.size(), " bytes");
  const std::uint32_t magic = read_be32(c, 0);
  if (magic != expected_magic) {
    const char* found = magic == kImagesMagic   ? " (that of an image file)"
                        : magic == kLabelsMagic ? " (that of a label file)"
                                                : "";
    LATENT_FAIL("'", path, "' is not an IDX ", kind, " file: magic number ", magic, found,
                ", expected ", expected_magic);
  }
  const std::size_t rank = static_cast<unsigned char>(c[3]);
  idx.data_start = 4 + 4 * rank;
  LATENT_CHECK(c.size() >= idx.data_start, "'", path, "' is truncated: its header lists ",
               rank, " sizes but the file has only ", c.size(), " bytes");
  std::uint64_t numel = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    idx.sizes.push_back(read_be32(c, 4 + 4 * d));
    // Checked: a rank of up to 255 sizes of 32 bits each overflows any fixed width.
    LATENT_CHECK(!__builtin_mul_overflow(numel, std::uint64_t{idx.sizes.back()}, &numel) &&
                     numel <= (std::uint64_t{1} << 40),
                 "'", path, "': sizes are absurdly large");
  }
  const std::uint64_t present = c.size() - idx.data_start;
  LATENT_CHECK(present >= numel, "'", path, "' is truncated: its header promises ", numel,
               " bytes of data but only ", present, " are present");
  LATENT_CHECK(present == numel, "'", path, "' has ", present - numel,
               " unexpected bytes after its data");
  return idx;
}

// Compresses `data` into a complete gzip stream.
std::string gzip(const std::string& data, const std::string& path) {
  z_stream stream{};
  LATENT_CHECK(deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                            Z_DEFAULT_STRATEGY) == Z_OK,
               "cannot write '", path, "': zlib deflateInit2 failed");
  std::string out;
  std::size_t consumed = 0;
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    const std::size_t in_chunk = std::min<std::size_t>(data.size() - consumed, 1u << 30);
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + consumed));
    stream.avail_in = static_cast<uInt>(in_chunk);
    const bool last = consumed + in_chunk == data.size();
    const std::size_t used = out.size();
    out.resize(used + (1u << 20));
    stream.next_out = reinterpret_cast<Bytef*>(out.data() + used);
    stream.avail_out = 1u << 20;
    status = deflate(&stream, last ? Z_FINISH : Z_NO_FLUSH);
    out.resize(used + ((1u << 20) - stream.avail_out));
    consumed += in_chunk - stream.avail_in;
    if (status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR) {
      deflateEnd(&stream);
      LATENT_FAIL("cannot write '", path, "': zlib deflate failed (", status, ")");
    }
  }
  deflateEnd(&stream);
  return out;
}

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void write_idx(const std::string& path, std::string content) {
  write_file_atomic(path, ends_with(path, ".gz") ? gzip(content, path) : content);
}

}  // namespace

Tensor load_idx_images(const std::string& path) {
  const IdxArray idx = read_idx(path, kImagesMagic, "image");
  LATENT_CHECK(idx.sizes.size() == 3, "'", path, "': an IDX image file must have 3 sizes "
               "[N, rows, cols], this one has ", idx.sizes.size());
  const std::int64_t n = idx.sizes[0], rows = idx.sizes[1], cols = idx.sizes[2];
  Tensor images = empty({n, 1, rows, cols}, DType::f32);
  float* dst = images.data<float>();
  const auto* src = reinterpret_cast<const unsigned char*>(idx.content.data() + idx.data_start);
  const std::int64_t count = images.numel();
  for (std::int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(src[i]) / 255.0f;
  return images;
}

Tensor load_idx_labels(const std::string& path) {
  const IdxArray idx = read_idx(path, kLabelsMagic, "label");
  LATENT_CHECK(idx.sizes.size() == 1, "'", path, "': an IDX label file must have 1 size [N], "
               "this one has ", idx.sizes.size());
  const std::int64_t n = idx.sizes[0];
  Tensor labels = empty({n}, DType::i32);
  std::int32_t* dst = labels.data<std::int32_t>();
  const auto* src = reinterpret_cast<const unsigned char*>(idx.content.data() + idx.data_start);
  for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i];
  return labels;
}

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path) {
  Dataset dataset{load_idx_images(images_path), load_idx_labels(labels_path)};
  LATENT_CHECK(dataset.images.size(0) == dataset.labels.size(0), "'", images_path, "' holds ",
               dataset.images.size(0), " images but '", labels_path, "' holds ",
               dataset.labels.size(0), " labels");
  return dataset;
}

void save_idx_images(const std::string& path, const Tensor& images) {
  LATENT_CHECK(images.defined() && is_floating(images.dtype()), "save_idx_images('", path,
               "'): expected a float tensor with values in [0, 1]");
  LATENT_CHECK(images.dim() == 3 || (images.dim() == 4 && images.size(1) == 1),
               "save_idx_images('", path, "'): expected images shaped [N, 1, H, W] or "
               "[N, H, W], got ", shape_str(images.shape()));
  const std::int64_t n = images.size(0), rows = images.size(-2), cols = images.size(-1);
  for (const std::int64_t s : {n, rows, cols})
    LATENT_CHECK(s <= 0xFFFFFFFFll, "save_idx_images('", path, "'): size ", s,
                 " does not fit IDX's 32-bit sizes");
  const std::vector<float> values =
      io_detail::host_contiguous(images).to(DType::f32).to_vector<float>();
  std::string content;
  content.reserve(16 + values.size());
  append_be32(content, kImagesMagic);
  append_be32(content, static_cast<std::uint32_t>(n));
  append_be32(content, static_cast<std::uint32_t>(rows));
  append_be32(content, static_cast<std::uint32_t>(cols));
  for (std::size_t i = 0; i < values.size(); ++i) {
    LATENT_CHECK(!std::isnan(values[i]), "save_idx_images('", path,
                 "'): NaN at flat index ", i);
    content.push_back(static_cast<char>(std::lround(std::clamp(values[i], 0.0f, 1.0f) * 255.0f)));
  }
  write_idx(path, std::move(content));
}

void save_idx_labels(const std::string& path, const Tensor& labels) {
  LATENT_CHECK(labels.defined() && labels.dtype() == DType::i32 && labels.dim() == 1,
               "save_idx_labels('", path, "'): expected an int32 tensor shaped [N], got ",
               labels.defined() ? dtype_name(labels.dtype()) + std::string(" ") +
                                      shape_str(labels.shape())
                                : std::string("undefined"));
  const std::vector<std::int32_t> values = io_detail::host_contiguous(labels).to_vector<std::int32_t>();
  std::string content;
  content.reserve(8 + values.size());
  append_be32(content, kLabelsMagic);
  append_be32(content, static_cast<std::uint32_t>(values.size()));
  for (std::size_t i = 0; i < values.size(); ++i) {
    LATENT_CHECK(values[i] >= 0 && values[i] <= 255, "save_idx_labels('", path, "'): label ",
                 values[i], " at index ", i, " does not fit an unsigned byte");
    content.push_back(static_cast<char>(values[i]));
  }
  write_idx(path, std::move(content));
}

}  // namespace latent
