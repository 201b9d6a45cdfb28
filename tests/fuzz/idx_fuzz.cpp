// Fuzzes the IDX reader (src/data/idx.cpp): gzip or plain input, the magic number, the
// sizes and the data length. Each input goes to both load_idx_images and load_idx_labels.
#include "fuzz_util.h"
#include "latent/data.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = latent::fuzz::input_file().write(data, size);
  latent::fuzz::expect_only_latent_errors("fuzz_idx", [&] {
    const latent::Tensor images = latent::load_idx_images(path);
    latent::fuzz::check_loaded("fuzz_idx", images);
    if (images.dim() != 4 || images.size(1) != 1)
      latent::fuzz::invariant_failed("fuzz_idx", "images shaped " +
                                                     latent::shape_str(images.shape()));
    latent::fuzz::check_range("fuzz_idx", images, 0.0f, 1.0f);
  });
  latent::fuzz::expect_only_latent_errors("fuzz_idx", [&] {
    const latent::Tensor labels = latent::load_idx_labels(path);
    latent::fuzz::check_loaded("fuzz_idx", labels);
    const std::int32_t* p = labels.data<std::int32_t>();
    for (std::int64_t i = 0; i < labels.numel(); ++i)
      if (p[i] < 0 || p[i] > 255)
        latent::fuzz::invariant_failed("fuzz_idx", "label " + std::to_string(p[i]));
  });
  return 0;
}
