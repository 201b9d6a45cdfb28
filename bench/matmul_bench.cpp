// matmul: C[M, N] = A[M, K] · B[K, N] on the cpu backend (OpenBLAS), float32, with the
// FLOP rate (2·M·N·K per product) and the forward+backward rate (3 products).
#include <benchmark/benchmark.h>

#include "latent/latent.h"

namespace {

void BM_matmul_forward(benchmark::State& state) {
  const std::int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  latent::Generator gen(1);
  const latent::Tensor a = latent::randn({m, k}, gen), b = latent::randn({k, n}, gen);
  for (auto _ : state) {
    latent::Tensor c = latent::matmul(a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * m * n * k * state.iterations(),
                                                benchmark::Counter::kIsRate);
  state.SetLabel("cpu");
}

void BM_matmul_forward_backward(benchmark::State& state) {
  const std::int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  latent::Generator gen(2);
  latent::Tensor a = latent::randn({m, k}, gen).requires_grad_();
  latent::Tensor b = latent::randn({k, n}, gen).requires_grad_();
  for (auto _ : state) {
    a.zero_grad();
    b.zero_grad();
    latent::sum(latent::matmul(a, b)).backward();
    benchmark::DoNotOptimize(a.grad().data_ptr());
  }
  state.counters["FLOP/s"] = benchmark::Counter(6.0 * m * n * k * state.iterations(),
                                                benchmark::Counter::kIsRate);
  state.SetLabel("cpu");
}

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({128, 128, 128})->Args({256, 256, 256})->Args({512, 512, 512})
      ->Args({1024, 1024, 1024})->Args({6272, 64, 512})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_matmul_forward)->Apply(shapes);
BENCHMARK(BM_matmul_forward_backward)->Apply(shapes);
BENCHMARK_MAIN();
