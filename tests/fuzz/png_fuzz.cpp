// Fuzzes load_png (src/io/png.cpp): libpng's simplified reader as latent drives it, the
// channel handling and the conversion to a [C, H, W] float tensor in [0, 1].
//
// libpng rejects a chunk whose CRC does not match, so almost every mutation of a real PNG
// would die at the first CRC check and never reach latent's code with odd sizes or formats.
// The target therefore recomputes the CRC of every complete chunk before the file is read:
// the fuzzer mutates chunk contents (the IHDR sizes, bit depth and colour type above all)
// and libpng sees them as intact.
#include <zlib.h>

#include <vector>

#include "fuzz_util.h"
#include "latent/io.h"

namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

// A copy of `data` with the CRC of each chunk after the 8-byte signature made correct.
std::vector<std::uint8_t> with_fixed_crcs(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> out(data, data + size);
  std::size_t at = 8;
  while (at + 12 <= size) {
    const std::uint64_t length = be32(&out[at]);
    if (length > size - at - 12) break;
    const std::size_t crc_at = at + 8 + static_cast<std::size_t>(length);
    const uLong crc = crc32(0, &out[at + 4], static_cast<uInt>(length + 4));
    for (int i = 0; i < 4; ++i) out[crc_at + i] = static_cast<std::uint8_t>(crc >> (24 - 8 * i));
    at = crc_at + 4;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<std::uint8_t> fixed = with_fixed_crcs(data, size);
  const std::string& path = latent::fuzz::input_file().write(fixed.data(), fixed.size());
  latent::fuzz::expect_only_latent_errors("fuzz_png", [&] {
    const latent::Tensor t = latent::load_png(path);
    latent::fuzz::check_loaded("fuzz_png", t);
    if (t.dim() != 3 || t.size(0) < 1 || t.size(0) > 4)
      latent::fuzz::invariant_failed("fuzz_png", "shape " + latent::shape_str(t.shape()));
    latent::fuzz::check_range("fuzz_png", t, 0.0f, 1.0f);
  });
  return 0;
}
