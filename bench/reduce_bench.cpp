// Deterministic reductions (kernels/reduce.cuh) against the copy of the same bytes.
//   sum of everything:     read 4 bytes per float32 element, write one value
//   row sums [n/1024, 1024] over dim 1, column sums over dim 0 (the bias-gradient shape)
//   argmax over rows of [n/1024, 1024]
// (cases::sum, cases::argmax in tests/op_cases.h.)
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

void run_sum(benchmark::State& state, const Shape& shape, const Shape& out_shape) {
  Generator gen(7);
  const Tensor x = rand(shape, gen, DType::f32, bench_device());
  const Tensor out = empty(out_shape, DType::f32, bench_device());
  time_on_device(state, cases::sum(x.numel(), out.numel(), DType::f32).bytes,
                 [&] { bench_backend().sum(x, out); });
}

void BM_sum_all(benchmark::State& state) { run_sum(state, {state.range(0)}, {1}); }
void BM_sum_rows(benchmark::State& state) {
  const std::int64_t rows = state.range(0) / 1024;
  run_sum(state, {rows, 1024}, {rows, 1});
}
void BM_sum_columns(benchmark::State& state) {
  const std::int64_t rows = state.range(0) / 1024;
  run_sum(state, {rows, 1024}, {1, 1024});
}

void BM_argmax_rows(benchmark::State& state) {
  const std::int64_t rows = state.range(0) / 1024;
  Generator gen(8);
  const Tensor x = rand({rows, 1024}, gen, DType::f32, bench_device());
  const Tensor out = empty({rows}, DType::i32, bench_device());
  time_on_device(state, cases::argmax(x.numel(), rows, DType::f32).bytes,
                 [&] { bench_backend().argmax_rows(x, out); });
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_sum_all)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_sum_rows)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_sum_columns)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_argmax_rows)->Apply(latent::bench::element_counts);
BENCHMARK_MAIN();
