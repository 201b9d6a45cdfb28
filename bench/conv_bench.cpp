// Convolutions at the layer shapes of the Fashion-MNIST autoencoder (cases::autoencoder_layers
// in tests/op_cases.h, which tests/conv_test.cpp checks too), float32, on the benchmark
// device (bench_util.h):
//   im2col, col2im      kernels/conv.cuh alone, batch 256, in bytes moved: im2col reads the
//                       image once (cached) and writes C·KH·KW·N·OH·OW columns; col2im reads
//                       every column entry once and writes the image
//   conv2d              batch 128, 2·N·OC·OH·OW·C·KH·KW FLOPs: on a GPU im2col + one cuBLAS
//                       GEMM; on cpu, float32, the implicit-GEMM tiles (docs/cpu.md)
//   conv2d forward+backward  the input and weight gradients counted too (3× the FLOPs)
//   conv_transpose2d    the decoder's mirror of each layer: the same FLOPs
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

cases::Conv layer(const benchmark::State& state, std::int64_t batch) {
  return cases::autoencoder_layers(batch)[state.range(0)];
}

backend::ConvGeometry geometry(const cases::Conv& k) {
  return {k.n, k.c, k.h, k.w, k.kh, k.kw, k.stride, k.padding, k.out_h(), k.out_w()};
}

void set_flops(benchmark::State& state, const cases::Cost& cost) {
  state.counters["FLOP/s"] =
      benchmark::Counter(cost.flops * state.iterations(), benchmark::Counter::kIsRate);
}

void BM_im2col(benchmark::State& state) {
  const cases::Conv k = layer(state, 256);
  const backend::ConvGeometry g = geometry(k);
  Generator gen(9);
  const Tensor x = rand({g.batch, g.channels, g.height, g.width}, gen, DType::f32, bench_device());
  const Tensor cols = empty({g.col_rows(), g.col_cols()}, DType::f32, bench_device());
  time_on_device(state, cases::im2col(k, DType::f32).bytes,
                 [&] { bench_backend().im2col(g, x, cols); });
}

void BM_col2im(benchmark::State& state) {
  const cases::Conv k = layer(state, 256);
  const backend::ConvGeometry g = geometry(k);
  Generator gen(10);
  const Tensor cols = rand({g.col_rows(), g.col_cols()}, gen, DType::f32, bench_device());
  const Tensor x = empty({g.batch, g.channels, g.height, g.width}, DType::f32, bench_device());
  time_on_device(state, cases::im2col(k, DType::f32).bytes,
                 [&] { bench_backend().col2im(g, cols, x); });
}

void BM_conv2d_forward(benchmark::State& state) {
  const cases::Conv k = layer(state, 128);
  Generator gen(3);
  const Tensor x = randn({k.n, k.c, k.h, k.w}, gen, DType::f32, bench_device());
  const Tensor w = randn({k.oc, k.c, k.kh, k.kw}, gen, DType::f32, bench_device());
  const cases::Cost cost = cases::conv2d(k, DType::f32);
  time_on_device(state, cost.bytes, [&] {
    benchmark::DoNotOptimize(conv2d(x, w, {}, {k.stride, k.padding}).data_ptr());
  });
  set_flops(state, cost);
}

void BM_conv2d_forward_backward(benchmark::State& state) {
  const cases::Conv k = layer(state, 128);
  Generator gen(4);
  Tensor x = randn({k.n, k.c, k.h, k.w}, gen, DType::f32, bench_device()).requires_grad_();
  Tensor w = randn({k.oc, k.c, k.kh, k.kw}, gen, DType::f32, bench_device()).requires_grad_();
  const cases::Cost cost = cases::conv2d_forward_backward(k, DType::f32);
  time_on_device(state, cost.bytes, [&] {
    x.zero_grad();
    w.zero_grad();
    sum(conv2d(x, w, {}, {k.stride, k.padding})).backward();
    benchmark::DoNotOptimize(w.grad().data_ptr());
  });
  set_flops(state, cost);
}

void BM_conv_transpose2d_forward(benchmark::State& state) {
  // The decoder mirrors the encoder: input is the conv's output, output its input.
  const cases::Conv l = layer(state, 128);
  const cases::Conv k{l.n, l.oc, l.out_h(), l.out_w(), l.c, l.kh, l.kw, l.stride, l.padding, 0, false};
  Generator gen(5);
  const Tensor x = randn({k.n, k.c, k.h, k.w}, gen, DType::f32, bench_device());
  const Tensor w = randn({k.c, k.oc, k.kh, k.kw}, gen, DType::f32, bench_device());
  const cases::Cost cost = cases::conv_transpose2d(k, DType::f32);
  time_on_device(state, cost.bytes, [&] {
    benchmark::DoNotOptimize(conv_transpose2d(x, w, {}, {k.stride, k.padding}).data_ptr());
  });
  set_flops(state, cost);
}

void layers(benchmark::internal::Benchmark* b) {
  b->DenseRange(0, static_cast<int>(cases::autoencoder_layers(1).size()) - 1)
      ->ArgName("layer")
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_im2col)->Apply(latent::bench::layers);
BENCHMARK(latent::bench::BM_col2im)->Apply(latent::bench::layers);
BENCHMARK(latent::bench::BM_conv2d_forward)->Apply(latent::bench::layers);
BENCHMARK(latent::bench::BM_conv2d_forward_backward)->Apply(latent::bench::layers);
BENCHMARK(latent::bench::BM_conv_transpose2d_forward)->Apply(latent::bench::layers);
BENCHMARK_MAIN();
