// Fuzzes load_safetensors (src/io/safetensors.cpp): the header length, the JSON header,
// dtypes, shapes, data_offsets tiling, metadata, and the F16/BF16/I64 conversions.
#include <set>

#include "fuzz_util.h"
#include "latent/io.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& path = latent::fuzz::input_file().write(data, size);
  latent::fuzz::expect_only_latent_errors("fuzz_safetensors", [&] {
    const latent::SafetensorsFile file = latent::load_safetensors(path);
    std::set<std::string> names;
    for (const auto& [name, tensor] : file.tensors) {
      if (name.empty() || name == "__metadata__" || !names.insert(name).second)
        latent::fuzz::invariant_failed("fuzz_safetensors", "accepted tensor name '" + name + "'");
      latent::fuzz::check_loaded("fuzz_safetensors", tensor);
    }
  });
  return 0;
}
