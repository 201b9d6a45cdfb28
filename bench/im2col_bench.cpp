// im2col and col2im (kernels/conv.cuh) at the autoencoder's layer shapes, batch 256, in
// bytes moved: im2col reads the image once (cached) and writes C·KH·KW·N·OH·OW columns;
// col2im reads every column entry once and writes the image.
#include "bench_util.h"

namespace latent::bench {
namespace {

backend::ConvGeometry layer(std::int64_t index) {
  // {N, C, H, W, KH, KW, stride, padding, OH, OW}
  const backend::ConvGeometry layers[] = {
      {256, 1, 28, 28, 4, 4, 2, 1, 14, 14},
      {256, 32, 14, 14, 4, 4, 2, 1, 7, 7},
      {256, 64, 7, 7, 3, 3, 1, 1, 7, 7},
  };
  return layers[index];
}

void BM_im2col(benchmark::State& state) {
  const backend::ConvGeometry g = layer(state.range(0));
  Generator gen(9);
  const Tensor x = rand({g.batch, g.channels, g.height, g.width}, gen, DType::f32, bench_device());
  const Tensor cols = empty({g.col_rows(), g.col_cols()}, DType::f32, bench_device());
  time_on_device(state, 4.0 * (x.numel() + cols.numel()),
                 [&] { bench_backend().im2col(g, x, cols); });
}

void BM_col2im(benchmark::State& state) {
  const backend::ConvGeometry g = layer(state.range(0));
  Generator gen(10);
  const Tensor cols = rand({g.col_rows(), g.col_cols()}, gen, DType::f32, bench_device());
  const Tensor x = empty({g.batch, g.channels, g.height, g.width}, DType::f32, bench_device());
  time_on_device(state, 4.0 * (x.numel() + cols.numel()),
                 [&] { bench_backend().col2im(g, cols, x); });
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_im2col)->DenseRange(0, 2)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(latent::bench::BM_col2im)->DenseRange(0, 2)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
