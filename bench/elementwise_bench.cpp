// Elementwise kernels against the device-to-device copy of the same bytes, the bandwidth
// every memory-bound kernel is measured against (DESIGN.md: targets).
//   copy:          read 4, write 4 bytes per float32 element (cudaMemcpy D2D on a GPU)
//   unary exp:     read 4, write 4
//   binary add:    read 8, write 4
//   broadcast add: [n/1024, 1024] + [1024]: read 4 (+ the row, cached), write 4
//   unary_backward (tanh): read 12, write 4
// (cases::copy, unary, binary, unary_backward in tests/op_cases.h: the same napkin math the
// tests' cases name.)
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

using backend::BinaryOp;
using backend::UnaryOp;

void BM_copy(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Generator gen(1);
  const Tensor src = rand({n}, gen, DType::f32, bench_device());
  const Tensor dst = empty({n}, DType::f32, bench_device());
  time_on_device(state, cases::copy(n, DType::f32, DType::f32).bytes,
                 [&] { bench_backend().copy(src, dst); });
}

void BM_unary_exp(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Generator gen(2);
  const Tensor x = rand({n}, gen, DType::f32, bench_device());
  const Tensor y = empty({n}, DType::f32, bench_device());
  time_on_device(state, cases::unary(n, DType::f32).bytes,
                 [&] { bench_backend().unary(UnaryOp::exp, x, y, {}); });
}

void BM_unary_backward_tanh(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Generator gen(3);
  const Tensor x = rand({n}, gen, DType::f32, bench_device());
  const Tensor y = rand({n}, gen, DType::f32, bench_device());
  const Tensor g = rand({n}, gen, DType::f32, bench_device());
  const Tensor dx = empty({n}, DType::f32, bench_device());
  time_on_device(state, cases::unary_backward(n, DType::f32).bytes,
                 [&] { bench_backend().unary_backward(UnaryOp::tanh, x, y, g, dx, {}); });
}

void BM_binary_add(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Generator gen(4);
  const Tensor a = rand({n}, gen, DType::f32, bench_device());
  const Tensor b = rand({n}, gen, DType::f32, bench_device());
  const Tensor out = empty({n}, DType::f32, bench_device());
  time_on_device(state, cases::binary(n, n, n, DType::f32).bytes,
                 [&] { bench_backend().binary(BinaryOp::add, a, b, out); });
}

// The public op, output allocation included (the cuda caching allocator makes it cheap).
void BM_add_broadcast_row(benchmark::State& state) {
  const std::int64_t n = state.range(0), cols = 1024, rows = n / cols;
  Generator gen(5);
  const Tensor a = rand({rows, cols}, gen, DType::f32, bench_device());
  const Tensor row = rand({cols}, gen, DType::f32, bench_device());
  time_on_device(state, cases::binary(n, cols, n, DType::f32).bytes,
                 [&] { benchmark::DoNotOptimize(add(a, row).data_ptr()); });
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_copy)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_unary_exp)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_unary_backward_tanh)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_binary_add)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_add_broadcast_row)->Apply(latent::bench::element_counts);
BENCHMARK_MAIN();
