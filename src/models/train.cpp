// The training loop behind `latent train` and `latent eval`.
#include "latent/train.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <ostream>

#include "latent/autograd.h"
#include "latent/data.h"
#include "latent/fsq.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "latent/optim.h"
#include "latent/vae.h"
#include "latent/vq.h"

namespace latent::train {

using json = nlohmann::json;

// ------------------------------------------------------------------ config
std::string config_to_json(const Config& c) {
  const json j = {
      {"model", c.model},
      {"device", c.device},
      {"epochs", c.epochs},
      {"steps", c.steps},
      {"batch_size", c.batch_size},
      {"lr", c.lr},
      {"weight_decay", c.weight_decay},
      {"grad_clip", c.grad_clip},
      {"seed", c.seed},
      {"image_channels", c.net.image_channels},
      {"hidden_channels", c.net.hidden_channels},
      {"latent_channels", c.net.latent_channels},
      {"loss", c.loss},
      {"data_dir", c.data_dir},
      {"train_limit", c.train_limit},
      {"test_limit", c.test_limit},
      {"out_dir", c.out_dir},
      {"checkpoint_every", c.checkpoint_every},
      {"log_every", c.log_every},
      {"beta", c.beta},
      {"latent", c.latent},
      {"latent_dim", c.latent_dim},
      {"kl_warmup", c.kl_warmup},
      {"kl_cycle", c.kl_cycle},
      {"free_bits", c.free_bits},
      {"codebook_size", c.codebook_size},
      {"code_dim", c.code_dim},
      {"ema", c.ema},
      {"decay", c.decay},
      {"dead_code_threshold", c.dead_code_threshold},
      {"kmeans_init", c.kmeans_init},
      {"cosine", c.cosine},
      {"levels", c.levels},
      {"fsq_symmetric", c.fsq_symmetric},
  };
  return j.dump();
}

Config config_from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    LATENT_FAIL("train config: malformed JSON: ", e.what());
  }
  Config c;
  try {
    c.model = j.value("model", c.model);
    c.device = j.value("device", c.device);
    c.epochs = j.value("epochs", c.epochs);
    c.steps = j.value("steps", c.steps);
    c.batch_size = j.value("batch_size", c.batch_size);
    c.lr = j.value("lr", c.lr);
    c.weight_decay = j.value("weight_decay", c.weight_decay);
    c.grad_clip = j.value("grad_clip", c.grad_clip);
    c.seed = j.value("seed", c.seed);
    c.net.image_channels = j.value("image_channels", c.net.image_channels);
    c.net.hidden_channels = j.value("hidden_channels", c.net.hidden_channels);
    c.net.latent_channels = j.value("latent_channels", c.net.latent_channels);
    c.loss = j.value("loss", c.loss);
    c.data_dir = j.value("data_dir", c.data_dir);
    c.train_limit = j.value("train_limit", c.train_limit);
    c.test_limit = j.value("test_limit", c.test_limit);
    c.out_dir = j.value("out_dir", c.out_dir);
    c.checkpoint_every = j.value("checkpoint_every", c.checkpoint_every);
    c.log_every = j.value("log_every", c.log_every);
    c.beta = j.value("beta", c.beta);
    c.latent = j.value("latent", c.latent);
    c.latent_dim = j.value("latent_dim", c.latent_dim);
    c.kl_warmup = j.value("kl_warmup", c.kl_warmup);
    c.kl_cycle = j.value("kl_cycle", c.kl_cycle);
    c.free_bits = j.value("free_bits", c.free_bits);
    c.codebook_size = j.value("codebook_size", c.codebook_size);
    c.code_dim = j.value("code_dim", c.code_dim);
    c.ema = j.value("ema", c.ema);
    c.decay = j.value("decay", c.decay);
    c.dead_code_threshold = j.value("dead_code_threshold", c.dead_code_threshold);
    c.kmeans_init = j.value("kmeans_init", c.kmeans_init);
    c.cosine = j.value("cosine", c.cosine);
    c.levels = j.value("levels", c.levels);
    c.fsq_symmetric = j.value("fsq_symmetric", c.fsq_symmetric);
  } catch (const json::exception& e) {
    LATENT_FAIL("train config: a field has the wrong type: ", e.what());
  }
  return c;
}

namespace {

void validate(const Config& c) {
  LATENT_CHECK(c.loss == "mse" || c.loss == "bce", "train: unknown loss '", c.loss,
               "' (mse or bce)");
  LATENT_CHECK(c.batch_size > 0, "train: batch size must be positive, got ", c.batch_size);
  LATENT_CHECK(c.epochs > 0 || c.steps > 0, "train: need epochs > 0 or steps > 0");
  LATENT_CHECK(c.steps >= 0 && c.train_limit >= 0 && c.test_limit >= 0 &&
                   c.checkpoint_every >= 0,
               "train: steps, limits and checkpoint interval must not be negative");
  LATENT_CHECK(c.lr > 0 && std::isfinite(c.lr), "train: learning rate must be positive, got ",
               c.lr);
  LATENT_CHECK(c.grad_clip >= 0, "train: grad_clip must not be negative, got ", c.grad_clip);
}

Dataset limited(Dataset d, std::int64_t limit) {
  return limit > 0 && limit < d.size() ? d.slice(0, limit) : d;
}

// model.reconstruct in eval mode, restoring the mode afterwards.
Tensor reconstruct_eval(models::TrainableModel& model, const Tensor& images) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Tensor recon = model.reconstruct(images);
  model.train(was_training);
  return recon;
}

// Eight test images above their reconstructions, twice: a 4×8 grid.
void write_grid(models::TrainableModel& model, const Dataset& test, Device device,
                const std::string& path) {
  const std::int64_t n = std::min<std::int64_t>(16, test.size());
  const Tensor originals = test.images.narrow(0, 0, n);
  const Tensor recon = reconstruct_eval(model, originals.to(device)).to(Device::cpu());
  std::vector<Tensor> tiles;
  for (std::int64_t row = 0; row < n; row += 8) {
    const std::int64_t k = std::min<std::int64_t>(8, n - row);
    for (std::int64_t i = 0; i < k; ++i) tiles.push_back(originals.narrow(0, row + i, 1).squeeze(0));
    for (std::int64_t i = 0; i < k; ++i) tiles.push_back(recon.narrow(0, row + i, 1).squeeze(0));
  }
  save_png(path, image_grid(tiles, std::min<std::int64_t>(8, n), 2, 1.0));
}

std::string format_duration(double seconds) {
  const long s = static_cast<long>(std::max(0.0, seconds) + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

struct RunState {
  Config config;
  Device device;
  std::shared_ptr<models::TrainableModel> model;
  std::unique_ptr<optim::AdamW> optimizer;
  std::unique_ptr<BatchLoader> loader;
  std::int64_t step = 0;
};

constexpr const char* kFormat = "latent-checkpoint/1";

void save_checkpoint(const std::string& path, const RunState& run) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : run.model->state_dict()) tensors.emplace_back("model." + name, t);
  for (auto& [name, t] : run.optimizer->state_dict())
    tensors.emplace_back("optimizer." + name, t);
  const BatchLoaderState ls = run.loader->state();
  const json loader = {{"seed", ls.seed},         {"epoch_offset", ls.epoch_offset},
                       {"epoch", ls.epoch},       {"position", ls.position},
                       {"dataset_size", ls.dataset_size}};
  save_safetensors(path, tensors,
                   {{"format", kFormat},
                    {"model", run.config.model},
                    {"config", config_to_json(run.config)},
                    {"step", std::to_string(run.step)},
                    {"loader", loader.dump()}});
}

struct Checkpoint {
  Config config;
  std::int64_t step = 0;
  BatchLoaderState loader;
  nn::NamedTensors model, optimizer;
};

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
    c.step = std::stoll(meta("step"));
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

RunState build(const Config& config, Device device, const Dataset& train_set) {
  RunState run;
  run.config = config;
  run.device = device;
  Generator init(config.seed);
  run.model = make_model(config, init);
  run.model->to(device);
  run.optimizer = std::make_unique<optim::AdamW>(run.model->parameters(), config.lr,
                                                 optim::Betas{}, 1e-8, config.weight_decay);
  BatchLoaderOptions options;
  options.batch_size = config.batch_size;
  options.shuffle = true;
  options.drop_last = train_set.size() > config.batch_size;
  options.seed = config.seed + 1;
  options.device = device;
  run.loader = std::make_unique<BatchLoader>(train_set, options);
  return run;
}

}  // namespace

Metrics evaluate_model(models::TrainableModel& model, const Dataset& test, Device device) {
  LATENT_CHECK(test.size() > 0, "evaluate: the test set is empty");
  constexpr std::int64_t kBatch = 500;
  double squared_error = 0.0;
  for (std::int64_t begin = 0; begin < test.size(); begin += kBatch) {
    const std::int64_t n = std::min(kBatch, test.size() - begin);
    const Tensor images = test.images.narrow(0, begin, n).to(device);
    NoGradGuard no_grad;
    squared_error += sum(square(sub(reconstruct_eval(model, images), images))).item();
  }
  Metrics m;
  m.images = test.size();
  m.mse = squared_error / static_cast<double>(test.images.numel());
  m.psnr = 10.0 * std::log10(1.0 / std::max(m.mse, 1e-12));
  const bool was_training = model.is_training();
  model.eval();
  m.extra = model.evaluate_extra(test, device);
  model.train(was_training);
  return m;
}

std::shared_ptr<models::TrainableModel> make_model(const Config& c, Generator& gen) {
  // One line per model; each factory lives beside its model in src/models/.
  if (c.model == "ae") return std::make_shared<models::Autoencoder>(c.net, gen, c.loss);
  if (c.model == "vae") return models::make_vae(c, gen);
  if (c.model == "fsq") {
    FsqOptions options;
    options.symmetric = c.fsq_symmetric;
    return std::make_shared<models::FsqAutoencoder>(c.net, c.levels, gen, c.loss, options);
  }
  if (c.model == "vqvae") return models::make_vqvae(c, gen);
  LATENT_FAIL("train: unknown model '", c.model, "' (available: ae, fsq, vae, vqvae)");
}

Device resolve_device(const std::string& name) {
  if (name == "auto" || name.empty()) {
    return backend_available(DeviceType::cuda) && !backend_is_simulated(DeviceType::cuda)
               ? Device::cuda(0)
               : Device::cpu();
  }
  const Device d = parse_device(name);
  LATENT_CHECK(backend_available(d.type), "device ", d.str(),
               " is not available in this build of latent");
  return d;
}

Result run(const Config& requested, const std::string& resume, std::ostream* log) {
  Config config = requested;
  Checkpoint checkpoint;
  if (!resume.empty()) {
    checkpoint = read_checkpoint(resume);
    Config saved = checkpoint.config;
    saved.out_dir = requested.out_dir;
    saved.steps = requested.steps;
    saved.epochs = requested.epochs;
    saved.checkpoint_every = requested.checkpoint_every;
    saved.log_every = requested.log_every;
    saved.progress = requested.progress;
    if (!requested.device.empty() && requested.device != "auto") saved.device = requested.device;
    config = saved;
  }
  validate(config);
  const Device device = resolve_device(config.device);
  const Dataset train_set = limited(load_fashion_mnist("train", config.data_dir), config.train_limit);
  const Dataset test_set = limited(load_fashion_mnist("test", config.data_dir), config.test_limit);

  RunState run = build(config, device, train_set);
  if (!resume.empty()) {
    run.model->load_state_dict(checkpoint.model);
    run.optimizer->load_state_dict(checkpoint.optimizer);
    run.loader->restore(checkpoint.loader);
    run.step = checkpoint.step;
  }
  const std::int64_t total_steps =
      config.steps > 0 ? config.steps : config.epochs * run.loader->batches_per_epoch();
  LATENT_CHECK(run.step <= total_steps, "train: the checkpoint is at step ", run.step,
               ", past the requested total of ", total_steps, " steps");

  std::filesystem::create_directories(config.out_dir);
  std::ofstream metrics(config.out_dir + "/metrics.jsonl", std::ios::app);
  LATENT_CHECK(metrics.good(), "train: cannot open ", config.out_dir, "/metrics.jsonl");
  const bool tty = log && config.progress && ::isatty(STDERR_FILENO);
  if (log) {
    *log << "latent train: model " << config.model << " (" << run.model->parameter_count()
         << " parameters) on " << device.str() << ", " << train_set.size()
         << " training images, batch " << config.batch_size << ", steps " << run.step << " → "
         << total_steps << "\n";
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto window_start = start;
  double window_loss = 0.0, last_loss = 0.0;
  std::map<std::string, double> window_metrics;
  std::int64_t window_steps = 0, images_seen = 0;
  const std::int64_t first_step = run.step;
  while (run.step < total_steps) {
    const Batch batch = run.loader->next();
    const models::TrainableModel::StepOutput out =
        run.model->training_step(batch.images, run.step);
    const Tensor& loss = out.loss;
    run.optimizer->zero_grad();
    loss.backward();
    if (config.grad_clip > 0) nn::clip_grad_norm(run.model->parameters(), config.grad_clip);
    run.optimizer->step();
    run.model->after_step(batch.images, run.step);
    ++run.step;
    const double loss_value = loss.item();
    LATENT_CHECK(std::isfinite(loss_value), "train: the loss became ", loss_value, " at step ",
                 run.step, "; lower --lr or enable --grad-clip");
    window_loss += loss_value;
    for (const auto& [name, value] : out.metrics) window_metrics[name] += value;
    ++window_steps;
    images_seen += batch.images.size(0);

    const bool last = run.step == total_steps;
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    const double rate = images_seen / std::max(elapsed, 1e-9);
    const double eta = (total_steps - run.step) * config.batch_size / std::max(rate, 1e-9);
    if (tty) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(kWidth * run.step / total_steps);
      std::fprintf(stderr, "\r[%s%s] step %lld/%lld  loss %.5f  %.0f img/s  ETA %s   ",
                   std::string(filled, '=').c_str(), std::string(kWidth - filled, ' ').c_str(),
                   static_cast<long long>(run.step), static_cast<long long>(total_steps),
                   loss_value, rate, format_duration(eta).c_str());
      if (last) std::fprintf(stderr, "\n");
    }
    if ((config.log_every > 0 && run.step % config.log_every == 0) || last) {
      const auto now = clock::now();
      const double window_seconds = std::chrono::duration<double>(now - window_start).count();
      last_loss = window_loss / window_steps;
      json line = {{"step", run.step},
                   {"epoch", batch.epoch},
                   {"loss", last_loss},
                   {"lr", run.optimizer->lr()},
                   {"images_per_second",
                    window_steps * config.batch_size / std::max(window_seconds, 1e-9)},
                   {"seconds", elapsed}};
      for (const auto& [name, total] : window_metrics) line[name] = total / window_steps;
      window_metrics.clear();
      metrics << line.dump() << "\n" << std::flush;
      if (log && !tty) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "step %lld/%lld  loss %.5f  %.0f img/s  ETA %s\n",
                      static_cast<long long>(run.step), static_cast<long long>(total_steps),
                      last_loss, rate, format_duration(eta).c_str());
        *log << buf << std::flush;
      }
      window_loss = 0.0;
      window_steps = 0;
      window_start = now;
    }
    if (config.checkpoint_every > 0 && run.step % config.checkpoint_every == 0 && !last) {
      save_checkpoint(config.out_dir + "/checkpoint-" + std::to_string(run.step) + ".safetensors",
                      run);
    }
  }
  Result result;
  result.seconds = std::chrono::duration<double>(clock::now() - start).count();
  result.steps = run.step;
  result.final_loss = last_loss;
  result.images_per_second = images_seen / std::max(result.seconds, 1e-9);
  result.checkpoint = config.out_dir + "/checkpoint.safetensors";
  save_checkpoint(result.checkpoint, run);
  result.test = evaluate_model(*run.model, test_set, device);
  result.grid = config.out_dir + "/reconstructions.png";
  write_grid(*run.model, test_set, device, result.grid);
  {
    const bool was_training = run.model->is_training();
    run.model->eval();
    run.model->write_artifacts(config.out_dir, test_set, device);
    run.model->train(was_training);
  }
  json summary = {{"event", "final"},
                  {"step", run.step},
                  {"test_mse", result.test.mse},
                  {"test_psnr", result.test.psnr},
                  {"test_images", result.test.images},
                  {"train_seconds", result.seconds},
                  {"images_per_second", result.images_per_second},
                  {"steps_this_run", run.step - first_step}};
  for (const auto& [name, value] : result.test.extra) summary["test_" + name] = value;
  metrics << summary.dump() << "\n";
  if (log) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "test MSE %.6f  PSNR %.2f dB over %lld images; %.1f s, %.0f img/s\n",
                  result.test.mse, result.test.psnr, static_cast<long long>(result.test.images),
                  result.seconds, result.images_per_second);
    *log << buf;
    for (const auto& [name, value] : result.test.extra) *log << "  test " << name << ": " << value << "\n";
    *log << "checkpoint: " << result.checkpoint << "\nreconstructions: " << result.grid
         << "\n";
  }
  return result;
}

LoadedModel load_model(const std::string& checkpoint_path, const std::string& device_name) {
  const Checkpoint checkpoint = read_checkpoint(checkpoint_path);
  LoadedModel loaded;
  loaded.config = checkpoint.config;
  if (!device_name.empty()) loaded.config.device = device_name;
  validate(loaded.config);
  loaded.step = checkpoint.step;
  loaded.device = resolve_device(loaded.config.device);
  Generator init(loaded.config.seed);
  loaded.model = make_model(loaded.config, init);
  loaded.model->load_state_dict(checkpoint.model);
  loaded.model->to(loaded.device);
  loaded.model->eval();
  return loaded;
}

Result evaluate(const std::string& checkpoint_path, const std::string& grid_path,
                const std::string& device_name, const std::string& data_dir,
                std::int64_t test_limit) {
  LoadedModel loaded = load_model(checkpoint_path, device_name);
  Config& config = loaded.config;
  if (!data_dir.empty()) config.data_dir = data_dir;
  if (test_limit > 0) config.test_limit = test_limit;
  const Dataset test_set = limited(load_fashion_mnist("test", config.data_dir), config.test_limit);
  Result result;
  result.steps = loaded.step;
  result.checkpoint = checkpoint_path;
  result.test = evaluate_model(*loaded.model, test_set, loaded.device);
  if (!grid_path.empty()) {
    write_grid(*loaded.model, test_set, loaded.device, grid_path);
    result.grid = grid_path;
  }
  return result;
}

}  // namespace latent::train
