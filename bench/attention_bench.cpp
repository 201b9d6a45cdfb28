// Causal self-attention (kernels/attention.cuh) against the naive composition, at the prior's
// shapes: B sequences of T = 49 tokens (a start token and 48 of a 7×7 grid), H heads of d
// channels, float32.
//
//   fused_forward           causal_attention_forward_kernel: q, k, v read once, the scores
//                           on the chip
//   unfused_forward         causal_self_attention_unfused: a strided batched GEMM writes the
//                           [B, H, T, T] scores, the causal softmax rewrites them, a second
//                           GEMM reads them with V
//   fused_forward_backward  the forward, then causal_attention_backward_kernel (recomputing
//                           the scores from q, k and the saved log-sum-exp)
//   decode_step             one token of sampling through the key/value cache, at the last
//                           position (the most keys)
//
// Arguments: B, H, d. bytes/s counts the fused op's compulsory traffic (qkv read, out and lse
// written; the backward adds out, dout and lse read and dqkv written) for both the fused and
// the unfused runs, so a higher figure is a faster run; FLOP/s counts 2·T²·d per head and
// direction (4 in all, forward and backward's four products ≈ 5).
#include "backends/attention.h"
#include "backends/registry.h"
#include "bench_util.h"
#include "latent/attention.h"

namespace latent::bench {
namespace {

constexpr std::int64_t kTokens = 49;

struct Shape3 {
  std::int64_t batch, heads, head_dim;
  std::int64_t channels() const { return heads * head_dim; }
};
Shape3 shape_of(const benchmark::State& state) {
  return {state.range(0), state.range(1), state.range(2)};
}
double words(double n) { return 4.0 * n; }
double forward_bytes(const Shape3& s) {
  return words(static_cast<double>(s.batch) * kTokens * (3 * s.channels() + s.channels() + s.heads));
}
double backward_bytes(const Shape3& s) {
  // qkv, out, dout, lse read; dqkv written
  return words(static_cast<double>(s.batch) * kTokens * (3 * s.channels() * 2 + 2 * s.channels() + s.heads));
}
double head_flops(const Shape3& s) {
  return static_cast<double>(s.batch * s.heads) * kTokens * (kTokens + 1) / 2.0 * s.head_dim * 2.0;
}

Tensor make_qkv(const Shape3& s) {
  Generator gen(1);
  return uniform({s.batch, kTokens, 3 * s.channels()}, -2, 2, gen, DType::f32, bench_device());
}

void set_flops(benchmark::State& state, double flops) {
  state.counters["FLOP/s"] = benchmark::Counter(flops * state.iterations(),
                                                benchmark::Counter::kIsRate);
}

void BM_attention_fused_forward(benchmark::State& state) {
  const Shape3 s = shape_of(state);
  const Tensor qkv = make_qkv(s);
  NoGradGuard no_grad;
  time_on_device(state, forward_bytes(s),
                 [&] { benchmark::DoNotOptimize(causal_self_attention(qkv, s.heads)); });
  set_flops(state, 2 * head_flops(s));
}

void BM_attention_unfused_forward(benchmark::State& state) {
  const Shape3 s = shape_of(state);
  const Tensor qkv = make_qkv(s);
  NoGradGuard no_grad;
  time_on_device(state, forward_bytes(s),
                 [&] { benchmark::DoNotOptimize(causal_self_attention_unfused(qkv, s.heads)); });
  set_flops(state, 2 * head_flops(s));
}

void BM_attention_fused_forward_backward(benchmark::State& state) {
  const Shape3 s = shape_of(state);
  const Tensor qkv = make_qkv(s);
  Generator gen(2);
  const Tensor w = uniform({s.batch, kTokens, s.channels()}, -1, 1, gen, DType::f32, qkv.device());
  time_on_device(state, forward_bytes(s) + backward_bytes(s), [&] {
    Tensor x = qkv.detach();
    x.requires_grad_();
    causal_self_attention(x, s.heads).backward(w);
    benchmark::DoNotOptimize(x.grad());
  });
  set_flops(state, 7 * head_flops(s));
}

void BM_attention_decode_step(benchmark::State& state) {
  const Shape3 s = shape_of(state);
  const Device device = bench_device();
  Generator gen(3);
  const Tensor step = uniform({s.batch, 3 * s.channels()}, -2, 2, gen, DType::f32, device);
  const Tensor keys = uniform({s.batch, kTokens, s.channels()}, -2, 2, gen, DType::f32, device);
  const Tensor values = uniform({s.batch, kTokens, s.channels()}, -2, 2, gen, DType::f32, device);
  time_on_device(state, words(static_cast<double>(s.batch) * (3 * s.channels() + 2 * kTokens * s.channels() + s.channels())), [&] {
    benchmark::DoNotOptimize(attention_decode_step(step, keys, values, kTokens - 1, s.heads));
  });
}

void shapes(benchmark::internal::Benchmark* b) {
  b->Args({128, 4, 32})->Args({128, 8, 64})->Args({512, 4, 32});
  if (bench_device().is_cuda()) b->Args({4096, 4, 32});
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_attention_fused_forward)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_attention_unfused_forward)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_attention_fused_forward_backward)->Apply(latent::bench::shapes);
BENCHMARK(latent::bench::BM_attention_decode_step)->Apply(latent::bench::shapes);
BENCHMARK_MAIN();
