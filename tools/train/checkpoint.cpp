// Checkpoints (checkpoint.h): safetensors with the model under "model.", the optimizer under
// "optimizer.", and the format, Config, step and loader position as metadata.
#include "tools/train/checkpoint.h"

#include <charconv>
#include <iterator>
#include <limits>
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
    // The loader's state as latent writes it: exactly these keys, each a whole number of
    // its range (json's get<> would wrap −1 into an unsigned field and truncate 4.5).
    const json l = json::parse(meta("loader"));
    static const char* const kKeys[] = {"seed", "epoch_offset", "epoch", "position",
                                        "dataset_size"};
    LATENT_CHECK(l.is_object() && l.size() == std::size(kKeys), "the loader state must be an "
                 "object with exactly the keys seed, epoch_offset, epoch, position, "
                 "dataset_size, got ", l.dump());
    auto whole = [&](const char* key) -> const json& {
      const json& v = l.at(key);
      LATENT_CHECK(v.is_number_unsigned(), "loader '", key,
                   "' must be a non-negative whole number, got ", v.dump());
      return v;
    };
    auto below_2_63 = [&](const char* key) {
      const auto v = whole(key).get<std::uint64_t>();
      LATENT_CHECK(v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()),
                   "loader '", key, "' is out of range: ", v);
      return static_cast<std::int64_t>(v);
    };
    c.loader.seed = whole("seed").get<std::uint64_t>();
    c.loader.epoch_offset = whole("epoch_offset").get<std::uint64_t>();
    c.loader.epoch = below_2_63("epoch");
    c.loader.position = below_2_63("position");
    c.loader.dataset_size = below_2_63("dataset_size");
    LATENT_CHECK(c.loader.position <= c.loader.dataset_size, "loader position ",
                 c.loader.position, " is past the dataset's ", c.loader.dataset_size, " images");
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
