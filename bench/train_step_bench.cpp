// One training step of each model (forward, loss, backward, AdamW, the model's after-step
// work and the step's check point: tools/train train_step, exactly what `latent train` runs)
// in images per second, on the benchmark device (bench/bench_util.h: the GPU when there is
// one, else cpu; LATENT_BENCH_DEVICE overrides).
//
// Beside the speed, each benchmark reports what a non-logging step asks of the device:
// host_syncs/step (times the host waits for the device: copies to the host, synchronizes,
// check points), d2h_copies/step and launches/step, counted by latent::runtime_counters over
// steps that are not timed (the timing itself waits once per iteration). On cpu all three
// are 0.
#include "bench_util.h"
#include "tools/train/train.h"

namespace {

latent::train::Config model_config(const std::string& model) {
  latent::train::Config c;
  c.model = model == "vqvae_ema" ? "vqvae" : model;
  if (model == "vqvae_ema") {
    c.ema = true;
    c.dead_code_threshold = 1.0;
  }
  if (model == "prior") {
    // The transformer prior at its defaults over a (randomly initialized) default VQ-VAE
    // tokenizer, K = 512: the step tokenizes its batch as `latent train` does.
    latent::train::Config tokenizer;
    tokenizer.model = "vqvae";
    c.tokenizer_config = latent::train::config_to_json(tokenizer);
  }
  return c;
}

void run_model(benchmark::State& state, const std::string& name) {
  const std::int64_t batch = state.range(0);
  const latent::Device device = latent::bench::bench_device();
  const latent::train::Config config = model_config(name);
  latent::Generator gen(11);
  const auto model = latent::train::make_model(config, gen);
  model->to(device);
  latent::optim::AdamW optimizer(model->trainable_parameters(), config.lr);
  latent::Batch images;
  images.images = latent::rand({batch, 1, 28, 28}, gen).to(device);
  std::vector<std::int32_t> labels(static_cast<std::size_t>(batch));
  for (auto& label : labels) label = static_cast<std::int32_t>(gen.next_int(10));
  images.labels = latent::from_vector(labels, {batch}, device);
  std::int64_t step = 0;
  auto one_step = [&] { latent::train::train_step(*model, optimizer, images, step++); };
  latent::bench::time_on_device(state, 0.0, one_step);
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(batch * state.iterations()),
                                                  benchmark::Counter::kIsRate);
  constexpr int kCounted = 3;
  const latent::RuntimeCounters before = latent::runtime_counters(device);
  for (int i = 0; i < kCounted; ++i) one_step();
  const latent::RuntimeCounters cost = latent::runtime_counters(device) - before;
  state.counters["host_syncs/step"] = static_cast<double>(cost.host_synchronizations) / kCounted;
  state.counters["d2h_copies/step"] = static_cast<double>(cost.device_to_host_copies) / kCounted;
  state.counters["launches/step"] = static_cast<double>(cost.kernel_launches) / kCounted;
}

void BM_train_step_ae(benchmark::State& s) { run_model(s, "ae"); }
void BM_train_step_vae(benchmark::State& s) { run_model(s, "vae"); }
void BM_train_step_vqvae(benchmark::State& s) { run_model(s, "vqvae"); }
void BM_train_step_vqvae_ema(benchmark::State& s) { run_model(s, "vqvae_ema"); }
void BM_train_step_fsq(benchmark::State& s) { run_model(s, "fsq"); }
void BM_train_step_prior(benchmark::State& s) { run_model(s, "prior"); }

void batches(benchmark::internal::Benchmark* b) {
  b->Arg(32)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseManualTime();
}

}  // namespace

BENCHMARK(BM_train_step_ae)->Apply(batches);
BENCHMARK(BM_train_step_vae)->Apply(batches);
BENCHMARK(BM_train_step_vqvae)->Apply(batches);
BENCHMARK(BM_train_step_vqvae_ema)->Apply(batches);
BENCHMARK(BM_train_step_fsq)->Apply(batches);
BENCHMARK(BM_train_step_prior)->Apply(batches);
BENCHMARK_MAIN();
