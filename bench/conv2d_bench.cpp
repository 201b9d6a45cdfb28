// conv2d and conv_transpose2d (im2col/col2im + one GEMM) on the cpu backend, float32, at the
// layer shapes of the Fashion-MNIST autoencoder. FLOPs: 2·N·OC·OH·OW·C·KH·KW per conv;
// forward+backward counts the two extra GEMMs (input and weight gradients).
#include <benchmark/benchmark.h>

#include "latent/latent.h"

namespace {

struct Layer {
  std::int64_t batch, in_channels, size, out_channels, kernel, stride, padding;
};

// The encoder's two strided convolutions and a 3x3 conv at 7x7 (see src/models).
const Layer kLayers[] = {
    {128, 1, 28, 32, 4, 2, 1},
    {128, 32, 14, 64, 4, 2, 1},
    {128, 64, 7, 64, 3, 1, 1},
};

double conv_flops(const Layer& l) {
  const std::int64_t out = (l.size + 2 * l.padding - l.kernel) / l.stride + 1;
  return 2.0 * l.batch * l.out_channels * out * out * l.in_channels * l.kernel * l.kernel;
}

void BM_conv2d_forward(benchmark::State& state) {
  const Layer& l = kLayers[state.range(0)];
  latent::Generator gen(3);
  const auto x = latent::randn({l.batch, l.in_channels, l.size, l.size}, gen);
  const auto w = latent::randn({l.out_channels, l.in_channels, l.kernel, l.kernel}, gen);
  for (auto _ : state) {
    auto y = latent::conv2d(x, w, {}, {l.stride, l.padding});
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(conv_flops(l) * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel("cpu");
}

void BM_conv2d_forward_backward(benchmark::State& state) {
  const Layer& l = kLayers[state.range(0)];
  latent::Generator gen(4);
  auto x = latent::randn({l.batch, l.in_channels, l.size, l.size}, gen).requires_grad_();
  auto w = latent::randn({l.out_channels, l.in_channels, l.kernel, l.kernel}, gen)
               .requires_grad_();
  for (auto _ : state) {
    x.zero_grad();
    w.zero_grad();
    latent::sum(latent::conv2d(x, w, {}, {l.stride, l.padding})).backward();
    benchmark::DoNotOptimize(w.grad().data_ptr());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(3.0 * conv_flops(l) * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel("cpu");
}

void BM_conv_transpose2d_forward(benchmark::State& state) {
  // The decoder mirrors the encoder: input is the conv's output, output its input.
  const Layer& l = kLayers[state.range(0)];
  const std::int64_t in = (l.size + 2 * l.padding - l.kernel) / l.stride + 1;
  latent::Generator gen(5);
  const auto x = latent::randn({l.batch, l.out_channels, in, in}, gen);
  const auto w = latent::randn({l.out_channels, l.in_channels, l.kernel, l.kernel}, gen);
  for (auto _ : state) {
    auto y = latent::conv_transpose2d(x, w, {}, {l.stride, l.padding});
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.counters["FLOP/s"] =
      benchmark::Counter(conv_flops(l) * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel("cpu");
}

}  // namespace

BENCHMARK(BM_conv2d_forward)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_conv2d_forward_backward)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_conv_transpose2d_forward)->DenseRange(0, 2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
