// One training step of the Fashion-MNIST autoencoder (forward, MSE loss, backward, AdamW)
// on the cpu backend, in images per second, at the batch sizes people train with.
#include <benchmark/benchmark.h>

#include "latent/latent.h"

namespace {

void BM_autoencoder_train_step(benchmark::State& state) {
  const std::int64_t batch = state.range(0);
  latent::Generator gen(11);
  latent::models::Autoencoder model(latent::models::ConvNetConfig{}, gen);
  latent::optim::AdamW optimizer(model.parameters(), 2e-3);
  const latent::Tensor images = latent::rand({batch, 1, 28, 28}, gen);
  for (auto _ : state) {
    const latent::Tensor loss = latent::mse_loss(latent::sigmoid(model.forward(images)), images);
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    benchmark::DoNotOptimize(loss.item());
  }
  state.counters["images/s"] =
      benchmark::Counter(static_cast<double>(batch * state.iterations()),
                         benchmark::Counter::kIsRate);
  state.SetLabel("cpu");
}

}  // namespace

BENCHMARK(BM_autoencoder_train_step)
    ->Arg(32)->Arg(128)->Arg(256)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
