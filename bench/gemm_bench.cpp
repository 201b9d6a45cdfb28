// GEMM: C[M, N] = A[M, K] · B[K, N] through matmul (OpenBLAS on cpu, cuBLAS on cuda),
// float32, on the benchmark device (bench_util.h), with the FLOP rate (2·M·N·K per product)
// and the forward+backward rate (3 products). Shapes and costs: tests/op_cases.h
// (cases::gemm_bench_shapes, cases::gemm), which tests/gemm_test.cpp checks too.
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

cases::Gemm shape_of(const benchmark::State& state) {
  return {0, state.range(0), state.range(1), state.range(2)};
}

void set_flops(benchmark::State& state, const cases::Cost& cost) {
  state.counters["FLOP/s"] =
      benchmark::Counter(cost.flops * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_gemm_forward(benchmark::State& state) {
  const cases::Gemm g = shape_of(state);
  Generator gen(1);
  const Tensor a = randn({g.m, g.k}, gen, DType::f32, bench_device());
  const Tensor b = randn({g.k, g.n}, gen, DType::f32, bench_device());
  const cases::Cost cost = cases::gemm(g, DType::f32);
  time_on_device(state, cost.bytes, [&] { benchmark::DoNotOptimize(matmul(a, b).data_ptr()); });
  set_flops(state, cost);
}

void BM_gemm_forward_backward(benchmark::State& state) {
  const cases::Gemm g = shape_of(state);
  Generator gen(2);
  Tensor a = randn({g.m, g.k}, gen, DType::f32, bench_device()).requires_grad_();
  Tensor b = randn({g.k, g.n}, gen, DType::f32, bench_device()).requires_grad_();
  const cases::Cost cost = cases::gemm_forward_backward(g, DType::f32);
  time_on_device(state, cost.bytes, [&] {
    a.zero_grad();
    b.zero_grad();
    sum(matmul(a, b)).backward();
    benchmark::DoNotOptimize(a.grad().data_ptr());
  });
  set_flops(state, cost);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (const cases::Gemm& g : cases::gemm_bench_shapes()) b->Args({g.m, g.k, g.n});
  b->ArgNames({"M", "K", "N"})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_gemm_forward)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_gemm_forward_backward)->Apply(latent::bench::shapes);
BENCHMARK_MAIN();
