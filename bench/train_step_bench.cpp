// One training step of the Fashion-MNIST autoencoder (forward, MSE loss, backward, AdamW),
// in images per second, at the batch sizes people train with, on the benchmark device
// (bench/bench_util.h: the GPU when there is one, else cpu; LATENT_BENCH_DEVICE overrides).
#include "bench_util.h"

namespace {

void BM_autoencoder_train_step(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  latent::Generator gen(11);
  const latent::Device device = latent::bench::bench_device();
  latent::models::Autoencoder model(latent::models::ConvNetConfig{}, gen);
  model.to(device);
  latent::optim::AdamW optimizer(model.parameters(), 2e-3);
  const latent::Tensor images = latent::rand({batch, 1, 28, 28}, gen).to(device);
  auto step = [&] {
    const latent::Tensor loss = latent::mse_loss(latent::sigmoid(model.forward(images)), images);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  };
  latent::bench::time_on_device(state, 0.0, step);
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()),
                         benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_autoencoder_train_step)
    ->Arg(32)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK_MAIN();
