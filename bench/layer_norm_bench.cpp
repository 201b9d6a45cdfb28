// Layer normalization (kernels/layer_norm.cuh) against its baselines, float32, at the
// transformer prior's sizes (rows = 128 images × 49 tokens, C = 128, 256, 512) and a large
// case (rows = 65536, C = 1024):
//
//   copy              the device-to-device copy of rows·C floats: read 4n, write 4n bytes
//   fused             layer_norm (the op, no graph): one kernel reads x, writes y, mean, rstd
//   naive             the composition of existing ops: mean, sub, square, mean, add, sqrt,
//                     div, mul, add (nine kernels, ~7 intermediates of n or rows elements)
//   fused_backward    forward and backward through autograd: the row kernel for dx, the
//                     dγ, dβ partials and their finishing sums
//   naive_backward    forward and backward of the composition through autograd
//
// bytes/s counts the bytes the operation must move at least (cases::layer_norm_forward, and
// for forward + backward that plus cases::layer_norm_backward), the same figure for the fused
// op and the composition, so a higher figure is a faster run and fused / copy is the fraction
// of copy bandwidth reached.
#include "bench_util.h"
#include "latent/layer_norm.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

constexpr double kEps = 1e-5;

struct Inputs {
  Tensor x, weight, bias, g;
};

Inputs make_inputs(std::int64_t rows, std::int64_t cols) {
  Generator gen(1);
  const Device device = bench_device();
  return {randn({rows, cols}, gen, DType::f32, device),
          uniform({cols}, 0.5, 1.5, gen, DType::f32, device),
          uniform({cols}, -0.5, 0.5, gen, DType::f32, device),
          randn({rows, cols}, gen, DType::f32, device)};
}

// The composition of existing ops (differentiable through each of them).
Tensor naive_layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const Tensor centred = sub(x, mean(x, {-1}, true));
  const Tensor variance = mean(square(centred), {-1}, true);
  const Tensor xhat = div(centred, sqrt(add(variance, kEps)));
  return add(mul(xhat, weight), bias);
}

double forward_bytes(std::int64_t rows, std::int64_t cols) {
  return cases::layer_norm_forward(rows, cols, DType::f32).bytes;
}
double forward_backward_bytes(std::int64_t rows, std::int64_t cols) {
  return forward_bytes(rows, cols) + cases::layer_norm_backward(rows, cols, DType::f32).bytes;
}

void set_flops(benchmark::State& state, double flops) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_layer_norm_copy(benchmark::State& state) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const Inputs in = make_inputs(rows, cols);
  const Tensor dst = empty_like(in.x);
  time_on_device(state, cases::copy(rows * cols, DType::f32, DType::f32).bytes,
                 [&] { bench_backend().copy(in.x, dst); });
}

void BM_layer_norm_fused(benchmark::State& state) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const Inputs in = make_inputs(rows, cols);
  NoGradGuard no_grad;
  time_on_device(state, forward_bytes(rows, cols),
                 [&] { benchmark::DoNotOptimize(layer_norm(in.x, in.weight, in.bias, kEps)); });
  set_flops(state, cases::layer_norm_forward(rows, cols, DType::f32).flops);
}

void BM_layer_norm_naive(benchmark::State& state) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  const Inputs in = make_inputs(rows, cols);
  NoGradGuard no_grad;
  time_on_device(state, forward_bytes(rows, cols),
                 [&] { benchmark::DoNotOptimize(naive_layer_norm(in.x, in.weight, in.bias)); });
  set_flops(state, cases::layer_norm_forward(rows, cols, DType::f32).flops);
}

// Forward and backward through autograd; the leaves' gradients are dropped every iteration,
// so no accumulation is timed.
template <class Forward>
void forward_backward(benchmark::State& state, Forward&& forward) {
  const std::int64_t rows = state.range(0), cols = state.range(1);
  Inputs in = make_inputs(rows, cols);
  in.x.requires_grad_(true);
  in.weight.requires_grad_(true);
  in.bias.requires_grad_(true);
  time_on_device(state, forward_backward_bytes(rows, cols), [&] {
    in.x.zero_grad();
    in.weight.zero_grad();
    in.bias.zero_grad();
    run_backward(forward(in.x, in.weight, in.bias), in.g);
  });
  const double flops = cases::layer_norm_forward(rows, cols, DType::f32).flops +
                       cases::layer_norm_backward(rows, cols, DType::f32).flops;
  set_flops(state, flops);
}

void BM_layer_norm_fused_backward(benchmark::State& state) {
  forward_backward(state, [](const Tensor& x, const Tensor& w, const Tensor& b) {
    return layer_norm(x, w, b, kEps);
  });
}

void BM_layer_norm_naive_backward(benchmark::State& state) {
  forward_backward(state, naive_layer_norm);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (const cases::LayerNormShape& s : cases::layer_norm_bench_shapes()) b->Args({s.rows, s.cols});
  b->ArgNames({"rows", "C"})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_layer_norm_copy)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_layer_norm_fused)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_layer_norm_naive)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_layer_norm_fused_backward)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_layer_norm_naive_backward)->Apply(latent::bench::shapes);
BENCHMARK_MAIN();
