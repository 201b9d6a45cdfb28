// Fuzzes the checkpoint config parser, config_from_json (tools/train/config.cpp), and
// validate_config on what it accepts. An accepted config must also survive a round trip:
// config_to_json of it reads back to a config that writes the very same JSON.
#include "fuzz_util.h"
#include "tools/train/train.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  latent::fuzz::expect_only_latent_errors("fuzz_config", [&] {
    const latent::train::Config config = latent::train::config_from_json(text);
    const std::string once = latent::train::config_to_json(config);
    const std::string twice =
        latent::train::config_to_json(latent::train::config_from_json(once));
    if (once != twice)
      latent::fuzz::invariant_failed("fuzz_config", "round trip changed\n  " + once +
                                                        "\nto\n  " + twice);
    latent::train::validate_config(config);
  });
  return 0;
}
