// safetensors: the checkpoint format of Hugging Face, readable by PyTorch
// (safetensors.torch.load_file), JAX and the Rust crate.
//
// Layout (https://github.com/huggingface/safetensors, "Format"):
//   8 bytes    N, the header length, unsigned little-endian
//   N bytes    UTF-8 JSON object: for each tensor
//                "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//              and optionally "__metadata__": {"key": "value", ...} (strings only).
//              Writers pad it with spaces so the data section starts 8-byte aligned.
//   the rest   the data section: each tensor's little-endian, row-major bytes at
//              [begin, end) relative to the start of this section, the ranges tiling the
//              section exactly (no gaps, no overlaps).
//
// The loader checks all of that before it trusts any offset, because a checkpoint may come
// from anywhere; the writer streams tensors straight from their storage into an atomic file.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "io/io_detail.h"
#include "latent/io.h"

namespace latent {

static_assert(std::endian::native == std::endian::little,
              "the file readers assume a little-endian host");

namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we.
constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";

// A file dtype latent can read, its width and the dtype it becomes.
struct FileDType {
  const char* name;
  std::size_t bytes;
  DType loads_as;
};
constexpr FileDType kReadable[] = {
    {"F32", 4, DType::f32}, {"F64", 8, DType::f64},  {"I32", 4, DType::i32},
    {"I64", 8, DType::i32}, {"F16", 2, DType::f32},  {"BF16", 2, DType::f32},
};

const char* file_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i32: return "I32";
  }
  return "?";
}

// IEEE half -> float, exactly (every half is representable as a float).
float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0x1F) {  // inf or nan
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal half: normalize into a float
    std::uint32_t e = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

struct Entry {
  std::string name;
  const FileDType* dtype = nullptr;
  Shape shape;
  std::uint64_t begin = 0, end = 0;
};

// Reads a JSON value that must be a non-negative integer.
std::uint64_t non_negative(const json& value, const std::string& path, const std::string& name,
                           const char* field) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  LATENT_FAIL("'", path, "': tensor '", name, "' has an invalid ", field, " entry ", value.dump(),
              " (expected a non-negative integer)");
}

Entry parse_entry(const std::string& name, const json& info, const std::string& path) {
  LATENT_CHECK(info.is_object(), "'", path, "': the header entry for tensor '", name,
               "' is not a JSON object");
  Entry entry;
  entry.name = name;

  const auto dtype_it = info.find("dtype");
  LATENT_CHECK(dtype_it != info.end() && dtype_it->is_string(), "'", path, "': tensor '", name,
               "' has no \"dtype\" string");
  const std::string dtype = dtype_it->get<std::string>();
  for (const FileDType& candidate : kReadable)
    if (dtype == candidate.name) entry.dtype = &candidate;
  LATENT_CHECK(entry.dtype != nullptr, "'", path, "': tensor '", name, "' has dtype '", dtype,
               "', which latent does not read (it reads F32, F64, I32, I64, F16 and BF16)");

  const auto shape_it = info.find("shape");
  LATENT_CHECK(shape_it != info.end() && shape_it->is_array(), "'", path, "': tensor '", name,
               "' has no \"shape\" array");
  std::uint64_t numel = 1;
  for (const json& d : *shape_it) {
    const std::uint64_t extent = non_negative(d, path, name, "shape");
    LATENT_CHECK(extent <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) &&
                     !__builtin_mul_overflow(numel, extent, &numel),
                 "'", path, "': tensor '", name, "' has an absurdly large shape ",
                 shape_it->dump());
    entry.shape.push_back(static_cast<std::int64_t>(extent));
  }
  checked_numel(entry.shape, "'" + path + "': tensor '" + name + "'");  // zeros in any order

  const auto offsets_it = info.find("data_offsets");
  LATENT_CHECK(offsets_it != info.end() && offsets_it->is_array() && offsets_it->size() == 2,
               "'", path, "': tensor '", name, "' needs \"data_offsets\": [begin, end]");
  entry.begin = non_negative((*offsets_it)[0], path, name, "data_offsets");
  entry.end = non_negative((*offsets_it)[1], path, name, "data_offsets");
  LATENT_CHECK(entry.begin <= entry.end, "'", path, "': tensor '", name, "' has data_offsets [",
               entry.begin, ", ", entry.end, "] with begin after end");

  std::uint64_t expected_bytes = 0;
  LATENT_CHECK(!__builtin_mul_overflow(numel, entry.dtype->bytes, &expected_bytes), "'", path,
               "': tensor '", name, "' has an absurdly large shape ", shape_it->dump());
  LATENT_CHECK(entry.end - entry.begin == expected_bytes, "'", path, "': tensor '", name,
               "' has data_offsets [", entry.begin, ", ", entry.end, "] (", entry.end - entry.begin,
               " bytes) but dtype ", dtype, " and shape ", shape_str(entry.shape), " need ",
               expected_bytes, " bytes");
  return entry;
}

// Reads one tensor's bytes from the file into a new cpu tensor, converting if needed.
Tensor read_tensor(const io_detail::InputFile& file, std::uint64_t data_start, const Entry& entry) {
  Tensor out = empty(entry.shape, entry.dtype->loads_as);
  const std::size_t count = static_cast<std::size_t>(shape_numel(entry.shape));
  const std::size_t bytes = static_cast<std::size_t>(entry.end - entry.begin);
  if (count == 0) return out;
  const std::string what = "tensor '" + entry.name + "'";
  const std::uint64_t at = data_start + entry.begin;
  const std::string dtype = entry.dtype->name;
  if (dtype == "F32" || dtype == "F64" || dtype == "I32") {
    file.read_at(at, out.data_ptr(), bytes, what.c_str());
  } else if (dtype == "I64") {
    std::vector<std::int64_t> wide(count);
    file.read_at(at, wide.data(), bytes, what.c_str());
    std::int32_t* dst = out.data<std::int32_t>();
    for (std::size_t i = 0; i < count; ++i) {
      LATENT_CHECK(wide[i] >= std::numeric_limits<std::int32_t>::min() &&
                       wide[i] <= std::numeric_limits<std::int32_t>::max(),
                   "'", file.path(), "': tensor '", entry.name, "' (I64) holds ", wide[i],
                   " at flat index ", i, ", which does not fit the int32 latent loads it as");
      dst[i] = static_cast<std::int32_t>(wide[i]);
    }
  } else {  // F16 or BF16
    std::vector<std::uint16_t> narrow(count);
    file.read_at(at, narrow.data(), bytes, what.c_str());
    float* dst = out.data<float>();
    const bool brain = dtype == "BF16";
    for (std::size_t i = 0; i < count; ++i)
      dst[i] = brain ? std::bit_cast<float>(static_cast<std::uint32_t>(narrow[i]) << 16)
                     : half_to_float(narrow[i]);
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------ SafetensorsFile
bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(),
                     [&](const auto& item) { return item.first == name; });
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& item : tensors)
    if (item.first == name) return item.second;
  std::string present;
  for (const auto& item : tensors) present += (present.empty() ? "" : ", ") + item.first;
  LATENT_FAIL("safetensors: no tensor named '", name, "' (present: ",
              present.empty() ? "none" : present, ")");
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(tensors.size());
  for (const auto& item : tensors) out.push_back(item.first);
  return out;
}

// ------------------------------------------------------------------ load
SafetensorsFile load_safetensors(const std::string& path) {
  const io_detail::InputFile file(path);
  LATENT_CHECK(file.size() >= 8, "'", path, "' is not a safetensors file: only ", file.size(),
               " bytes long (the header length alone takes 8)");
  unsigned char length_bytes[8];
  file.read_at(0, length_bytes, 8, "the header length");
  std::uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | length_bytes[i];
  LATENT_CHECK(header_bytes <= kMaxHeaderBytes, "'", path,
               "' is not a valid safetensors file: header length ", header_bytes,
               " exceeds the 100 MB limit");
  LATENT_CHECK(header_bytes <= file.size() - 8, "'", path, "' is truncated: the header claims ",
               header_bytes, " bytes but only ", file.size() - 8, " follow");
  std::string header_text(static_cast<std::size_t>(header_bytes), '\0');
  file.read_at(8, header_text.data(), header_text.size(), "the header");

  // Parse, noting duplicate top-level keys (JSON parsers would silently keep the last).
  std::string duplicate;
  std::set<std::string> seen;
  const json::parser_callback_t note_duplicates = [&](int depth, json::parse_event_t event,
                                                       json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && parsed.is_string() &&
        !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header;
  try {
    header = json::parse(header_text, note_duplicates);
  } catch (const json::exception& e) {
    LATENT_FAIL("'", path, "' is not a valid safetensors file: the header is not valid JSON (",
                e.what(), ")");
  }
  LATENT_CHECK(header.is_object(), "'", path,
               "' is not a valid safetensors file: the header is not a JSON object");
  LATENT_CHECK(duplicate.empty(), "'", path, "': the header names tensor '", duplicate,
               "' more than once");

  SafetensorsFile result;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == kMetadataKey) {
      LATENT_CHECK(it->is_object(), "'", path, "': \"__metadata__\" is not a JSON object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        LATENT_CHECK(m->is_string(), "'", path, "': metadata value for '", m.key(),
                     "' is not a string (safetensors metadata maps strings to strings)");
        result.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(it.key(), *it, path));
  }

  // The byte ranges must tile the data section: sorted by offset, each starts where the
  // previous one ended, the first at 0 and the last at the end of the file.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const std::uint64_t data_start = 8 + header_bytes;
  const std::uint64_t data_bytes = file.size() - data_start;
  std::uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Entry& entry : entries) {
    LATENT_CHECK(entry.begin >= covered, "'", path, "': tensor '", entry.name,
                 "' (bytes [", entry.begin, ", ", entry.end, ")) overlaps tensor '",
                 previous ? previous->name : "", "'");
    LATENT_CHECK(entry.begin == covered, "'", path, "': a gap of ", entry.begin - covered,
                 " bytes precedes tensor '", entry.name, "' in the data section");
    LATENT_CHECK(entry.end <= data_bytes, "'", path, "' is truncated: tensor '", entry.name,
                 "' needs data bytes [", entry.begin, ", ", entry.end, ") but the data section has ",
                 data_bytes, " bytes");
    covered = entry.end;
    previous = &entry;
  }
  LATENT_CHECK(covered == data_bytes, "'", path, "': the data section has ", data_bytes,
               " bytes but the tensors cover only ", covered, " (trailing bytes)");

  result.tensors.reserve(entries.size());
  for (const Entry& entry : entries)
    result.tensors.emplace_back(entry.name, read_tensor(file, data_start, entry));
  return result;
}

// ------------------------------------------------------------------ save
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::set<std::string> names;
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header[kMetadataKey] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    LATENT_CHECK(!name.empty(), "save_safetensors('", path, "'): a tensor has an empty name");
    LATENT_CHECK(name != kMetadataKey, "save_safetensors('", path,
                 "'): '__metadata__' is reserved and cannot name a tensor");
    LATENT_CHECK(names.insert(name).second, "save_safetensors('", path, "'): tensor name '",
                 name, "' appears more than once");
    LATENT_CHECK(tensor.defined(), "save_safetensors('", path, "'): tensor '", name,
                 "' is undefined");
    host.push_back(io_detail::host_contiguous(tensor));
    const Tensor& t = host.back();
    const std::uint64_t bytes = static_cast<std::uint64_t>(t.numel()) * dtype_size(t.dtype());
    header[name] = {{"dtype", file_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }

  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    LATENT_FAIL("save_safetensors('", path,
                "'): a tensor name or metadata string is not valid UTF-8 (", e.what(), ")");
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const std::uint64_t header_bytes = header_text.size();
  char length_bytes[8];
  for (int i = 0; i < 8; ++i) length_bytes[i] = static_cast<char>((header_bytes >> (8 * i)) & 0xFF);

  AtomicFileWriter writer(path);
  writer.write(length_bytes, 8);
  writer.write(header_text);
  for (const Tensor& t : host)
    writer.write(t.data_ptr(), static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()));
  writer.commit();
}

}  // namespace latent
