// Checkpoints (checkpoint.h): safetensors with the model under "model.", the optimizer under
// "optimizer.", and the format, Config, step and loader position as metadata.
#include <charconv>

#include "tools/train/checkpoint.h"

#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "latent/io.h"

namespace latent::train {

using json = nlohmann::json;

namespace {

constexpr const char* kFormat = "latent-checkpoint/1";

}  // namespace

void save_checkpoint(const std::string& path, const Config& config, std::int64_t step,
                     const nn::Module& model, const optim::Optimizer& optimizer,
                     const BatchLoader& loader) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : model.state_dict()) tensors.emplace_back("model." + name, t);
  for (auto& [name, t] : optimizer.state_dict())
    tensors.emplace_back("optimizer." + name, t);
  const BatchLoaderState ls = loader.state();
  const json position = {{"seed", ls.seed},         {"epoch_offset", ls.epoch_offset},
                         {"epoch", ls.epoch},       {"position", ls.position},
                         {"dataset_size", ls.dataset_size}};
  save_safetensors(path, tensors,
                   {{"format", kFormat},
                    {"model", config.model},
                    {"config", config_to_json(config)},
                    {"step", std::to_string(step)},
                    {"loader", position.dump()}});
}

Checkpoint read_checkpoint(const std::string& path) {
  const SafetensorsFile file = load_safetensors(path);
  auto meta = [&](const char* key) {
    auto it = file.metadata.find(key);
    LATENT_CHECK(it != file.metadata.end(), "checkpoint ", path, ": metadata '", key,
                 "' missing; not a latent checkpoint");
    return it->second;
  };
  LATENT_CHECK(meta("format") == kFormat, "checkpoint ", path, ": format '", meta("format"),
               "', expected ", kFormat);
  Checkpoint c;
  c.config = config_from_json(meta("config"));
  try {
    // The whole string, a non-negative integer: "1e3" or "4x" is not a step.
    const std::string step = meta("step");
    const auto [end, ec] = std::from_chars(step.data(), step.data() + step.size(), c.step);
    LATENT_CHECK(ec == std::errc() && end == step.data() + step.size() && c.step >= 0,
                 "checkpoint ", path, ": step '", step, "' is not a non-negative integer");
    const json l = json::parse(meta("loader"));
    c.loader.seed = l.at("seed").get<std::uint64_t>();
    c.loader.epoch_offset = l.at("epoch_offset").get<std::uint64_t>();
    c.loader.epoch = l.at("epoch").get<std::int64_t>();
    c.loader.position = l.at("position").get<std::int64_t>();
    c.loader.dataset_size = l.at("dataset_size").get<std::int64_t>();
  } catch (const std::exception& e) {
    LATENT_FAIL("checkpoint ", path, ": malformed step or loader metadata: ", e.what());
  }
  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("model.", 0) == 0) c.model.emplace_back(name.substr(6), t);
    else if (name.rfind("optimizer.", 0) == 0) c.optimizer.emplace_back(name.substr(10), t);
  }
  return c;
}

}  // namespace latent::train
