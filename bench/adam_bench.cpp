// The fused Adam/AdamW step (kernels/adam.cuh, 28 bytes per float32 element) against the
// same update composed of separate elementwise ops (what an eager framework runs), and the
// copy of the same bytes as the bandwidth reference (cases::adam in tests/op_cases.h).
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

void BM_adamw_fused(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Generator gen(12);
  const Tensor p = rand({n}, gen, DType::f32, bench_device());
  const Tensor g = rand({n}, gen, DType::f32, bench_device());
  const Tensor m = zeros({n}, DType::f32, bench_device());
  const Tensor v = zeros({n}, DType::f32, bench_device());
  kernels::AdamConstants c{1e-3, 0.9, 0.999, 1e-8, 1e-2, 1e-2, 0.03, true};
  time_on_device(state, cases::adam(n, DType::f32).bytes,
                 [&] { bench_backend().adam_step(c, p, g, m, v); });
}

void BM_adamw_unfused(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Generator gen(13);
  Tensor p = rand({n}, gen, DType::f32, bench_device());
  const Tensor g = rand({n}, gen, DType::f32, bench_device());
  Tensor m = zeros({n}, DType::f32, bench_device());
  Tensor v = zeros({n}, DType::f32, bench_device());
  NoGradGuard no_grad;
  time_on_device(state, cases::adam(n, DType::f32).bytes, [&] {
    p.copy_(mul(p, 1.0 - 1e-5));
    m.copy_(add(mul(m, 0.9), mul(g, 0.1)));
    v.copy_(add(mul(v, 0.999), mul(square(g), 0.001)));
    p.copy_(sub(p, mul(div(m, add(div(sqrt(v), 0.03), 1e-8)), 1e-2)));
  });
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_adamw_fused)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_adamw_unfused)->Apply(latent::bench::element_counts);
BENCHMARK_MAIN();
