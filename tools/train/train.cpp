// The training loop behind `latent train`, and the evaluation behind `latent eval`.
//
// A step that is not a logging step reads nothing back from the device: LogWindow sums the
// loss on the device and keeps each step's metric closures (models.h) until the logging step,
// where it reads the sum, checks that every loss was finite and calls the closures, in step
// order, so that metrics.jsonl holds exactly the numbers an eager read of every step gave.
#include "tools/train/train.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <utility>
#include <vector>

#include "latent/autograd.h"
#include "latent/io.h"
#include "latent/stream.h"
#include "latent/ops.h"
#include "latent/optim.h"
#include "latent/prior.h"
#include "tools/train/checkpoint.h"
#include "tools/train/pictures.h"
#include "tools/train/progress.h"

namespace latent::train {

using json = nlohmann::json;

namespace {

Dataset limited(Dataset d, std::int64_t limit) {
  return limit > 0 && limit < d.size() ? d.slice(0, limit) : d;
}

struct RunState {
  Config config;
  Device device;
  std::shared_ptr<models::TrainableModel> model;
  std::unique_ptr<optim::AdamW> optimizer;
  std::unique_ptr<BatchLoader> loader;
  std::int64_t step = 0;
};

RunState build(const Config& config, Device device, const Dataset& train_set) {
  RunState run;
  run.config = config;
  run.device = device;
  Generator init(config.seed);
  run.model = make_model(config, init);
  run.model->to(device);
  run.optimizer = std::make_unique<optim::AdamW>(run.model->trainable_parameters(), config.lr,
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

// The losses and metrics of one log window, on the device until read() reads them. The loss
// is summed on the device in float64 and in step order, which gives the very double that
// summing loss.item() on the host gave; the metric closures are called in step order and
// summed by name on the host.
class LogWindow {
 public:
  // A window longer than this (--log-every 0, or above it) is read every kMaxPending steps,
  // so that the tensors its closures hold do not pile up on the device.
  static constexpr std::size_t kMaxPending = 1000;

  void record(std::int64_t step, const Tensor& loss, models::TrainableModel::Metrics metrics) {
    NoGradGuard no_grad;
    const Tensor value = loss.detach();
    if (!loss_sum_.defined()) loss_sum_ = scalar_tensor(0.0, DType::f64, value.device());
    loss_sum_ = add(loss_sum_, value.to(DType::f64));
    pending_.push_back({step, value, std::move(metrics)});
    ++steps_;
  }
  bool full() const { return pending_.size() >= kMaxPending; }

  // Reads what is pending: the loss sum (one read), each step's loss only when the sum is not
  // finite (to name the first step whose loss was not), then the metrics.
  void read() {
    if (pending_.empty()) return;
    loss_total_ = loss_sum_.item();
    if (!std::isfinite(loss_total_)) {
      for (const Pending& p : pending_) {
        const double value = p.loss.item();
        LATENT_CHECK(std::isfinite(value), "train: the loss became ", value, " at step ", p.step,
                     "; lower --lr or enable --grad-clip");
      }
    }
    for (const Pending& p : pending_)
      for (const auto& [name, metric] : p.metrics) metric_totals_[name] += metric();
    pending_.clear();
  }

  // After read(): the window's means, each over every step of the window.
  std::int64_t steps() const { return steps_; }
  double mean_loss() const { return loss_total_ / steps_; }
  std::map<std::string, double> mean_metrics() const {
    std::map<std::string, double> means;
    for (const auto& [name, total] : metric_totals_) means[name] = total / steps_;
    return means;
  }
  void clear() { *this = LogWindow(); }

 private:
  struct Pending {
    std::int64_t step;  // counted from 1: the step the loss message names
    Tensor loss;
    models::TrainableModel::Metrics metrics;
  };
  Tensor loss_sum_;  // float64 scalar on the device
  std::vector<Pending> pending_;
  double loss_total_ = 0.0;
  std::map<std::string, double> metric_totals_;
  std::int64_t steps_ = 0;
};

}  // namespace

Tensor reconstruct_eval(models::TrainableModel& model, const Tensor& images) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Tensor recon = model.reconstruct(images);
  model.train(was_training);
  return recon;
}

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

models::TrainableModel::StepOutput train_step(models::TrainableModel& model,
                                              optim::Optimizer& optimizer, const Tensor& images,
                                              std::int64_t step, double grad_clip) {
  Batch batch;
  batch.images = images;
  return train_step(model, optimizer, batch, step, grad_clip);
}

models::TrainableModel::StepOutput train_step(models::TrainableModel& model,
                                              optim::Optimizer& optimizer, const Batch& batch,
                                              std::int64_t step, double grad_clip) {
  models::TrainableModel::StepOutput out = model.training_step_on(batch, step);
  optimizer.zero_grad();
  out.loss.backward();
  if (grad_clip > 0) nn::clip_grad_norm(model.trainable_parameters(), grad_clip);
  optimizer.step();
  model.after_step(batch.images, step);
  // The step's one check point: the device-side checks of its ops (NaN inputs, indices out
  // of range) are read here, once, instead of after each op.
  check_errors(batch.images.device());
  return out;
}

namespace {

// The files of a run in `dir`: its metrics, and its final and periodic checkpoints.
std::vector<std::filesystem::path> run_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const bool checkpoint = name.rfind("checkpoint", 0) == 0 &&
                            name.size() > 12 && name.substr(name.size() - 12) == ".safetensors";
    if (name == "metrics.jsonl" || checkpoint) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// A fresh run never mixes into another run's folder: that is an error unless the run resumes
// (and appends) or overwrite says to start over (the old metrics and checkpoints go).
void prepare_out_dir(const Config& config, bool resuming) {
  namespace fs = std::filesystem;
  // Writable before anything is loaded or built: create it and write a probe.
  std::error_code ec;
  fs::create_directories(config.out_dir, ec);
  LATENT_CHECK(!ec && fs::is_directory(config.out_dir), "train: cannot create the output folder ",
               config.out_dir, (ec ? ": " + ec.message() : std::string()));
  const std::string probe = config.out_dir + "/.latent-write-probe";
  write_file_atomic(probe, "");
  fs::remove(probe, ec);
  // Temporary files of latent's own atomic writes (.<name>.tmp.<pid>.<n>) that an
  // interrupted run left behind: their writer is gone.
  for (const fs::directory_entry& entry : fs::directory_iterator(config.out_dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto tmp = name.find(".tmp.");
    if (name.empty() || name[0] != '.' || tmp == std::string::npos) continue;
    const std::string pid_text = name.substr(tmp + 5, name.find('.', tmp + 5) - (tmp + 5));
    long pid = 0;
    try {
      pid = std::stol(pid_text);
    } catch (const std::exception&) {
      continue;
    }
    if (pid > 0 && pid != static_cast<long>(::getpid()) && ::kill(pid, 0) != 0)
      fs::remove(entry.path(), ec);
  }
  const std::vector<std::filesystem::path> existing = run_files(config.out_dir);
  if (existing.empty() || resuming) return;
  LATENT_CHECK(config.overwrite, "train: ", config.out_dir, " already holds a run (",
               existing.front().filename().string(),
               "); pass --resume <checkpoint> to continue it, --overwrite to replace it, or "
               "--out another folder");
  for (const std::filesystem::path& file : existing) std::filesystem::remove(file);
}

// Resuming from step k: the lines an interrupted run logged after step k are dropped, so the
// continued run logs each step once.
void trim_metrics(const std::string& out_dir, std::int64_t step) {
  const std::string path = out_dir + "/metrics.jsonl";
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  bool dropped = false;
  while (std::getline(in, line)) {
    bool keep = true;
    try {
      const json j = json::parse(line);
      keep = !j.contains("step") || !j.at("step").is_number_integer() ||
             j.at("step").get<std::int64_t>() <= step;
    } catch (const json::exception&) {
      keep = false;  // a line cut by the interruption
    }
    if (keep) kept += line + "\n";
    dropped = dropped || !keep;
  }
  if (dropped) write_file_atomic(path, kept);
}

}  // namespace

Result run(const Config& requested, const std::string& resume, std::ostream* log) {
  Config config = requested;
  Checkpoint checkpoint;
  if (!resume.empty()) {
    checkpoint = read_checkpoint(resume);
    Config saved = checkpoint.config;
    saved.out_dir = requested.out_dir;
    // The run continues the run that was saved: its targets and intervals come from the
    // checkpoint unless the caller names them (a negative value: not named).
    if (requested.steps >= 0) saved.steps = requested.steps;
    if (requested.epochs >= 0) saved.epochs = requested.epochs;
    if (requested.checkpoint_every >= 0) saved.checkpoint_every = requested.checkpoint_every;
    if (requested.log_every >= 0) saved.log_every = requested.log_every;
    saved.progress = requested.progress;
    saved.overwrite = requested.overwrite;
    if (!requested.device.empty() && requested.device != "auto") saved.device = requested.device;
    config = saved;
  }
  if (config.model == "prior" && config.tokenizer_config.empty()) {
    LATENT_CHECK(!config.tokenizer.empty(), "train: --model prior needs --tokenizer <a vqvae or "
                 "fsq checkpoint>");
    config.tokenizer_config = config_to_json(read_checkpoint(config.tokenizer).config);
  }
  validate_config(config);
  if (config.out_dir.empty()) config.out_dir = "runs/" + config.model;
  prepare_out_dir(config, !resume.empty());
  if (!resume.empty()) trim_metrics(config.out_dir, checkpoint.step);
  const Device device = resolve_device(config.device);
  const Dataset train_set = limited(load_fashion_mnist("train", config.data_dir), config.train_limit);
  const Dataset test_set = limited(load_fashion_mnist("test", config.data_dir), config.test_limit);

  RunState run = build(config, device, train_set);
  if (!resume.empty()) {
    run.model->load_state_dict(checkpoint.model);
    run.optimizer->load_state_dict(checkpoint.optimizer);
    run.loader->restore(checkpoint.loader);
    run.step = checkpoint.step;
  } else if (auto* prior = dynamic_cast<models::TokenPrior*>(run.model.get())) {
    // A fresh prior starts from the trained tokenizer (then frozen; the checkpoints carry it).
    const Checkpoint tokenizer = read_checkpoint(config.tokenizer);
    prior->tokenizer().load_state_dict(tokenizer.model);
  }
  const std::int64_t total_steps =
      config.steps > 0 ? config.steps : config.epochs * run.loader->batches_per_epoch();
  LATENT_CHECK(run.step <= total_steps, "train: the checkpoint is at step ", run.step,
               ", past the requested total of ", total_steps, " steps");

  std::filesystem::create_directories(config.out_dir);
  std::ofstream metrics(config.out_dir + "/metrics.jsonl", std::ios::app);
  LATENT_CHECK(metrics.good(), "train: cannot open ", config.out_dir, "/metrics.jsonl");
  // Progress (the header, the bar or its log lines) only when asked for; the results at the
  // end always go to `log`.
  std::ostream* progress_log = config.progress ? log : nullptr;
  const bool tty = progress_log && ::isatty(STDERR_FILENO);
  if (progress_log) {
    std::ostream* log = progress_log;
    *log << "latent train: model " << config.model << " (" << run.model->parameter_count()
         << " parameters) on " << device.str() << ", " << train_set.size()
         << " training images, batch " << config.batch_size << ", steps " << run.step << " → "
         << total_steps << "\n";
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto window_start = start;
  double last_loss = 0.0;
  LogWindow window;
  Progress progress;
  progress.total_steps = total_steps;
  std::int64_t images_seen = 0;
  const std::int64_t first_step = run.step;
  while (run.step < total_steps) {
    const Batch batch = run.loader->next();
    run.optimizer->set_lr(scheduled_lr(config, run.step, total_steps));
    models::TrainableModel::StepOutput out =
        train_step(*run.model, *run.optimizer, batch, run.step, config.grad_clip);
    ++run.step;
    window.record(run.step, out.loss, std::move(out.metrics));
    images_seen += batch.images.size(0);

    const bool last = run.step == total_steps;
    const bool log_step = (config.log_every > 0 && run.step % config.log_every == 0) || last;
    const bool checkpoint_step =
        config.checkpoint_every > 0 && run.step % config.checkpoint_every == 0 && !last;
    // A checkpoint reads the whole model anyway; reading the window first keeps a non-finite
    // loss out of every checkpoint.
    if (log_step || checkpoint_step || window.full()) window.read();

    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    progress.step = run.step;
    progress.images_per_second = images_seen / std::max(elapsed, 1e-9);
    progress.eta_seconds = (total_steps - run.step) * config.batch_size /
                           std::max(progress.images_per_second, 1e-9);
    if (log_step) {
      const auto now = clock::now();
      const double window_seconds = std::chrono::duration<double>(now - window_start).count();
      last_loss = window.mean_loss();
      json line = {{"step", run.step},
                   {"epoch", batch.epoch},
                   {"loss", last_loss},
                   {"lr", run.optimizer->lr()},
                   {"images_per_second",
                    window.steps() * config.batch_size / std::max(window_seconds, 1e-9)},
                   {"seconds", elapsed}};
      for (const auto& [name, value] : window.mean_metrics()) line[name] = value;
      metrics << line.dump() << "\n" << std::flush;
      progress.has_loss = true;
      progress.loss = last_loss;
      if (progress_log && !tty) *progress_log << progress_line(progress) << "\n" << std::flush;
      window.clear();
      window_start = now;
    }
    if (tty) draw_progress_bar(progress);
    if (checkpoint_step) {
      save_checkpoint(config.out_dir + "/checkpoint-" + std::to_string(run.step) + ".safetensors",
                      run.config, run.step, *run.model, *run.optimizer, *run.loader);
    }
  }
  Result result;
  result.seconds = std::chrono::duration<double>(clock::now() - start).count();
  result.steps = run.step;
  result.final_loss = last_loss;
  result.images_per_second = images_seen / std::max(result.seconds, 1e-9);
  result.checkpoint = config.out_dir + "/checkpoint.safetensors";
  save_checkpoint(result.checkpoint, run.config, run.step, *run.model, *run.optimizer,
                  *run.loader);
  result.test = evaluate_model(*run.model, test_set, device);
  result.grid = config.out_dir + "/reconstructions.png";
  write_reconstruction_grid(*run.model, test_set, device, result.grid);
  {
    const bool was_training = run.model->is_training();
    run.model->eval();
    write_pictures(*run.model, config.out_dir, test_set, device);
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
  validate_config(loaded.config);
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
    write_reconstruction_grid(*loaded.model, test_set, loaded.device, grid_path);
    result.grid = grid_path;
  }
  return result;
}

}  // namespace latent::train
