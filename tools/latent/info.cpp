// `latent info`: what a model's latent costs. For each checkpoint (or, with none, the default
// configuration of every image model: what `latent train --model M` builds), the latent's
// form, its numbers, its bits per image and the compression ratio against the image's 8-bit
// pixels; --picture draws the same as bars (tools/train/compression_pictures.cpp).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/train/pictures.h"
#include "tools/train/train.h"
#include "tools/latent/commands.h"

namespace latent::cli {

void add_info(CLI::App& app) {
  auto checkpoints = std::make_shared<std::vector<std::string>>();
  auto picture = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  CLI::App* cmd = app.add_subcommand(
      "info",
      "The size of each model's latent: its numbers, bits per image and compression ratio\n"
      "(image bits / latent bits; a 28x28 image of 8-bit pixels is 6272 bits). Without\n"
      "--checkpoint: the default configuration of ae, vae, vqvae and fsq.\n\n"
      "Example:\n  latent info --picture compression.png\n"
      "  latent info --checkpoint runs/vq/checkpoint.safetensors");
  cmd->add_option("--checkpoint", *checkpoints, "Checkpoints written by latent train (repeatable)");
  cmd->add_option("--picture", *picture, "Also draw the bits per image as bars into this PNG");
  cmd->add_flag("--json", *as_json, "Print one JSON object per latent instead of the table");
  cmd->callback([=] {
    std::vector<train::LatentBudget> budgets;
    auto add = [&](const std::vector<train::LatentBudget>& rows) {
      budgets.insert(budgets.end(), rows.begin(), rows.end());
    };
    if (checkpoints->empty()) {
      for (const char* name : {"ae", "vae", "vqvae", "fsq"}) {
        train::Config config;
        config.model = name;
        Generator gen(config.seed);
        const auto model = train::make_model(config, gen);
        add(train::latent_budgets(*model, name, config.net.image_channels, Device::cpu()));
      }
    } else {
      for (const std::string& path : *checkpoints) {
        train::LoadedModel loaded = train::load_model(path, "cpu");
        const std::string label = checkpoints->size() == 1 ? loaded.config.model : path;
        add(train::latent_budgets(*loaded.model, label, loaded.config.net.image_channels,
                                  Device::cpu()));
      }
    }
    if (*as_json) {
      for (const train::LatentBudget& b : budgets) {
        const nlohmann::ordered_json line = {{"model", b.label},     {"latent", b.latent},
                                             {"numbers", b.numbers}, {"bits", b.bits},
                                             {"image_bits", b.image_bits}, {"ratio", b.ratio()}};
        std::printf("%s\n", line.dump().c_str());
      }
    } else {
      int width = 18;
      for (const train::LatentBudget& b : budgets)
        width = std::max(width, static_cast<int>(b.label.size()));
      std::printf("%-*s %-38s %8s %11s %7s\n", width, "model", "latent", "numbers", "bits/image",
                  "ratio");
      std::printf("%-*s %-38s %8lld %11.0f %7s\n", width, "image", "28x28 pixels of 8 bits",
                  static_cast<long long>(budgets.front().image_bits / 8),
                  budgets.front().image_bits, "1");
      for (const train::LatentBudget& b : budgets)
        std::printf("%-*s %-38s %8lld %11.1f %7.2f\n", width, b.label.c_str(), b.latent.c_str(),
                    static_cast<long long>(b.numbers), b.bits, b.ratio());
    }
    if (!picture->empty()) {
      train::write_compression_picture(budgets, *picture);
      if (!*as_json) std::printf("picture: %s\n", picture->c_str());
    }
  });
}

}  // namespace latent::cli
