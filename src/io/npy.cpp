// .npy arrays: NumPy's single-array file format.
//
// Layout (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
//   bytes 0-5   magic "\x93NUMPY"
//   bytes 6-7   format version, major then minor (1.0, 2.0 or 3.0)
//   then        header length: 2 bytes little-endian in 1.0, 4 bytes in 2.0 and 3.0
//   then        header: a Python dict literal, e.g.
//                 {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//               padded with spaces and ended by '\n' so the data starts on a 64-byte boundary
//   then        the raw element data, C order (row-major) unless fortran_order is True
//
// Reading parses that small dict with a hand-written parser for the Python literal subset
// NumPy writes (strings, True/False, tuples of integers) and checks that the data section
// has exactly the length the dtype and shape imply.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <vector>

#include "io/io_detail.h"
#include "latent/autograd.h"
#include "latent/io.h"

namespace latent {

static_assert(std::endian::native == std::endian::little,
              "the file readers assume a little-endian host");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicBytes = 6;

// The element types a .npy file may hold, as far as latent is concerned.
enum class NpyType { f4, f8, i4, i8, u1 };

struct NpyHeader {
  NpyType type = NpyType::f4;
  std::size_t item_bytes = 4;
  bool fortran_order = false;
  Shape shape;
};

// Parses the dict literal of a .npy header. Errors name the file and the offending text.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

  NpyHeader parse() {
    NpyHeader header;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    expect('{');
    while (true) {
      skip_space();
      if (consume('}')) break;
      const std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (a list in 'descr') are not supported");
        parse_descr(parse_string(), header);
        have_descr = true;
      } else if (key == "fortran_order") {
        header.fortran_order = parse_bool();
        have_order = true;
      } else if (key == "shape") {
        header.shape = parse_shape();
        have_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      skip_space();
      if (consume('}')) break;
      expect(',');
    }
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the closing '}'");
    if (!have_descr) fail("the key 'descr' is missing");
    if (!have_order) fail("the key 'fortran_order' is missing");
    if (!have_shape) fail("the key 'shape' is missing");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    LATENT_FAIL("'", path_, "' is not a valid .npy file: cannot parse the header (", what,
                ") in: ", io_detail::printable(std::string(text_)));
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  bool consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!consume(c)) fail(std::string("expected '") + c + "' at offset " + std::to_string(pos_));
  }
  bool consume_word(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::string parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("expected a quoted string at offset " +
                                            std::to_string(pos_));
    ++pos_;
    const std::size_t end = text_.find(quote, pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string value(text_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return value;
  }

  bool parse_bool() {
    if (consume_word("True")) return true;
    if (consume_word("False")) return false;
    fail("expected True or False for 'fortran_order'");
  }

  Shape parse_shape() {
    Shape shape;
    expect('(');
    skip_space();
    while (!consume(')')) {
      shape.push_back(parse_dimension());
      skip_space();
      if (consume(')')) break;
      expect(',');
      skip_space();
    }
    return shape;
  }

  std::int64_t parse_dimension() {
    const std::size_t start = pos_;
    std::int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      const int digit = text_[pos_++] - '0';
      if (value > (std::numeric_limits<std::int64_t>::max() - digit) / 10)
        fail("dimension too large");
      value = value * 10 + digit;
    }
    if (pos_ == start) fail("expected a non-negative integer in 'shape' at offset " +
                            std::to_string(pos_));
    consume('L');  // Python 2 long literals, as very old NumPy wrote them
    return value;
  }

  void parse_descr(const std::string& descr, NpyHeader& header) const {
    if (descr.size() < 3) fail("unknown dtype '" + descr + "'");
    const char order = descr[0];
    const std::string kind = descr.substr(1);
    const bool one_byte = kind == "u1";
    if (order == '>' && !one_byte)
      LATENT_FAIL("'", path_, "': big-endian data ('", descr,
                  "') is not supported; convert it with numpy: a.astype(a.dtype.newbyteorder('<'))");
    if (order != '<' && order != '|' && order != '=' && !(order == '>' && one_byte))
      fail("unknown byte order in dtype '" + descr + "'");
    if (kind == "f4") header.type = NpyType::f4, header.item_bytes = 4;
    else if (kind == "f8") header.type = NpyType::f8, header.item_bytes = 8;
    else if (kind == "i4") header.type = NpyType::i4, header.item_bytes = 4;
    else if (kind == "i8") header.type = NpyType::i8, header.item_bytes = 8;
    else if (kind == "u1") header.type = NpyType::u1, header.item_bytes = 1;
    else
      LATENT_FAIL("'", path_, "': unsupported dtype '", descr,
                  "' (latent reads '<f4', '<f8', '<i4', '<i8' and '|u1')");
  }

  std::string_view text_;
  const std::string& path_;
  std::size_t pos_ = 0;
};

DType latent_dtype(NpyType type) {
  switch (type) {
    case NpyType::f4: return DType::f32;
    case NpyType::f8: return DType::f64;
    case NpyType::i4: return DType::i32;
    case NpyType::i8: return DType::i32;
    case NpyType::u1: return DType::f32;
  }
  return DType::f32;
}

const char* npy_descr(DType dtype) {
  switch (dtype) {
    case DType::f32: return "<f4";
    case DType::f64: return "<f8";
    case DType::i32: return "<i4";
  }
  return "?";
}

std::string shape_literal(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::uint32_t read_le32(const unsigned char* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

}  // namespace

Tensor load_npy(const std::string& path) {
  const io_detail::InputFile file(path);
  LATENT_CHECK(file.size() >= 10, "'", path, "' is not a valid .npy file: only ", file.size(),
               " bytes long");
  unsigned char prefix[12] = {};
  file.read_at(0, prefix, 10, "the .npy preamble");
  LATENT_CHECK(std::memcmp(prefix, kMagic, kMagicBytes) == 0, "'", path,
               "' is not a .npy file: bad magic bytes (expected \\x93NUMPY)");
  const int major = prefix[6], minor = prefix[7];
  std::uint64_t header_start = 0, header_bytes = 0;
  if (major == 1) {
    header_start = 10;
    header_bytes = static_cast<std::uint64_t>(prefix[8]) | static_cast<std::uint64_t>(prefix[9]) << 8;
  } else if (major == 2 || major == 3) {
    file.read_at(10, prefix + 10, 2, "the .npy header length");
    header_start = 12;
    header_bytes = read_le32(prefix + 8);
  } else {
    LATENT_FAIL("'", path, "': unsupported .npy format version ", major, ".", minor,
                " (latent reads 1.0, 2.0 and 3.0)");
  }
  LATENT_CHECK(header_bytes <= file.size() - header_start, "'", path,
               "' is truncated: the header claims ", header_bytes, " bytes but only ",
               file.size() - header_start, " follow");
  std::string header_text(static_cast<std::size_t>(header_bytes), '\0');
  file.read_at(header_start, header_text.data(), header_text.size(), "the .npy header");
  const NpyHeader header = HeaderParser(header_text, path).parse();

  // Element count and data length, guarding against overflow from a hostile shape (in any
  // order of its dimensions, zeros included: checked_numel).
  for (const std::int64_t d : header.shape)
    LATENT_CHECK(d >= 0, "'", path, "': negative size in shape ", shape_str(header.shape));
  const std::uint64_t numel =
      static_cast<std::uint64_t>(checked_numel(header.shape, "'" + path + "'"));
  std::uint64_t data_bytes = 0;
  LATENT_CHECK(!__builtin_mul_overflow(numel, header.item_bytes, &data_bytes), "'", path,
               "': shape ", shape_str(header.shape), " is too large");
  const std::uint64_t data_start = header_start + header_bytes;
  const std::uint64_t available = file.size() - data_start;
  LATENT_CHECK(available >= data_bytes, "'", path, "' is truncated: shape ",
               shape_str(header.shape), " needs ", data_bytes, " bytes of data but only ",
               available, " are present");
  LATENT_CHECK(available == data_bytes, "'", path, "' has ", available - data_bytes,
               " unexpected bytes after the array data (shape ", shape_str(header.shape), ")");

  // C order of the reversed shape is Fortran order of the declared shape.
  Shape stored_shape = header.shape;
  if (header.fortran_order) std::reverse(stored_shape.begin(), stored_shape.end());

  Tensor out = empty(stored_shape, latent_dtype(header.type));
  const std::size_t count = static_cast<std::size_t>(numel);
  switch (header.type) {
    case NpyType::f4:
    case NpyType::f8:
    case NpyType::i4:
      if (count > 0) file.read_at(data_start, out.data_ptr(), count * header.item_bytes, "the array data");
      break;
    case NpyType::i8: {
      std::vector<std::int64_t> wide(count);
      if (count > 0) file.read_at(data_start, wide.data(), count * 8, "the array data");
      std::int32_t* dst = out.data<std::int32_t>();
      for (std::size_t i = 0; i < count; ++i) {
        LATENT_CHECK(wide[i] >= std::numeric_limits<std::int32_t>::min() &&
                         wide[i] <= std::numeric_limits<std::int32_t>::max(),
                     "'", path, "': int64 value ", wide[i], " at flat index ", i,
                     " does not fit in int32 (latent loads '<i8' arrays as int32)");
        dst[i] = static_cast<std::int32_t>(wide[i]);
      }
      break;
    }
    case NpyType::u1: {
      std::vector<std::uint8_t> bytes(count);
      if (count > 0) file.read_at(data_start, bytes.data(), count, "the array data");
      float* dst = out.data<float>();
      for (std::size_t i = 0; i < count; ++i) dst[i] = static_cast<float>(bytes[i]);
      break;
    }
  }
  if (header.fortran_order && header.shape.size() > 1) {
    NoGradGuard no_grad;
    std::vector<std::int64_t> reverse_order(header.shape.size());
    for (std::size_t i = 0; i < reverse_order.size(); ++i)
      reverse_order[i] = static_cast<std::int64_t>(reverse_order.size() - 1 - i);
    out = out.permute(reverse_order).contiguous();
  }
  return out;
}

void save_npy(const std::string& path, const Tensor& tensor) {
  const Tensor data = io_detail::host_contiguous(tensor);
  std::string header = std::string("{'descr': '") + npy_descr(data.dtype()) +
                       "', 'fortran_order': False, 'shape': " + shape_literal(data.shape()) +
                       ", }";
  // Pad with spaces and a final newline so that the data starts on a 64-byte boundary.
  std::size_t prefix_bytes = 10;
  auto padded_length = [&](std::size_t prefix) {
    const std::size_t unpadded = prefix + header.size() + 1;
    return header.size() + 1 + (64 - unpadded % 64) % 64;
  };
  std::size_t header_bytes = padded_length(prefix_bytes);
  int major = 1;
  if (header_bytes > 0xFFFF) {  // does not fit the 2-byte length of version 1.0
    major = 2;
    prefix_bytes = 12;
    header_bytes = padded_length(prefix_bytes);
  }
  header.append(header_bytes - header.size() - 1, ' ');
  header.push_back('\n');

  std::string prefix(kMagic, kMagicBytes);
  prefix.push_back(static_cast<char>(major));
  prefix.push_back(0);
  for (std::size_t i = 0; i < prefix_bytes - 8; ++i)
    prefix.push_back(static_cast<char>((header_bytes >> (8 * i)) & 0xFF));

  AtomicFileWriter writer(path);
  writer.write(prefix);
  writer.write(header);
  writer.write(data.data_ptr(), static_cast<std::size_t>(data.numel()) * dtype_size(data.dtype()));
  writer.commit();
}

}  // namespace latent
