// The Philox4x32-10 fills (kernels/philox.cuh, kernels/philox_normal.cuh, kernels/random.cuh)
// on the benchmark device (bench_util.h), 2^16 … 2^26 elements, in bytes written
// (cases::random_fill in tests/op_cases.h; tests/random_test.cpp checks the same fills):
//   uniform   one 32-bit word a float32 element (two a float64): integer work only
//   normal    the exact Box–Muller, float64 inside whatever the dtype: compute-bound on a CPU,
//             memory-bound on a GPU (docs/vae.md, section 9)
// Element i draws from Philox(seed, offset, i) alone, so every size runs the same per-element
// work; bytes/s against BM_copy (elementwise_bench) says how close a fill gets to a write.
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

void uniform_fill(benchmark::State& state, DType dtype) {
  const std::int64_t n = state.range(0);
  const Tensor out = empty({n}, dtype, bench_device());
  time_on_device(state, cases::random_fill(n, dtype).bytes,
                 [&] { bench_backend().random_uniform(out, PhiloxKey{1, 2}, 0.0, 1.0); });
}

void normal_fill(benchmark::State& state, DType dtype) {
  const std::int64_t n = state.range(0);
  const Tensor out = empty({n}, dtype, bench_device());
  time_on_device(state, cases::random_fill(n, dtype).bytes,
                 [&] { bench_backend().random_normal(out, PhiloxKey{1, 2}); });
}

void BM_random_uniform(benchmark::State& state) { uniform_fill(state, DType::f32); }
void BM_random_uniform_f64(benchmark::State& state) { uniform_fill(state, DType::f64); }
void BM_random_normal(benchmark::State& state) { normal_fill(state, DType::f32); }
void BM_random_normal_f64(benchmark::State& state) { normal_fill(state, DType::f64); }

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_random_uniform)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_random_uniform_f64)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_random_normal)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_random_normal_f64)->Apply(latent::bench::element_counts);
BENCHMARK_MAIN();
