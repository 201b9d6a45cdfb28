// Fuzzes load_png (src/io/png.cpp): libpng's simplified reader as latent drives it, the
// channel handling and the conversion to a [C, H, W] float tensor in [0, 1].
#include "fuzz_util.h"
#include "latent/io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = latent::fuzz::input_file().write(data, size);
  latent::fuzz::expect_only_latent_errors("fuzz_png", [&] {
    const latent::Tensor t = latent::load_png(path);
    latent::fuzz::check_loaded("fuzz_png", t);
    if (t.dim() != 3 || t.size(0) < 1 || t.size(0) > 4)
      latent::fuzz::invariant_failed("fuzz_png", "shape " + latent::shape_str(t.shape()));
    latent::fuzz::check_range("fuzz_png", t, 0.0f, 1.0f);
  });
  return 0;
}
