// The fused reparameterization + KL (kernels/vae.cuh) against the unfused composition of
// generic kernels and against a copy of the same bytes, forward and backward.
//
// Shapes: [n / D, D] float32 with D = 16384 (a 4×64×64 latent, as Stable Diffusion's
// autoencoder makes for a 512² image), or one row of n when n < D.
//
//   fused forward      read μ, ℓ, write z, KL[N]                                 12 B/element
//   unfused forward    randn ε; ½ℓ; exp; σ·ε; μ + σε; μ²; e^ℓ; +; −ℓ; −1; sum      96 B/element
//   fused backward     read μ, ℓ, dL/dz, write dL/dμ, dL/dℓ (ε recomputed)       20 B/element
//   unfused backward   what autograd of the composition runs, with ε, σ, e^ℓ kept  ~100 B/element
//   copy               the same bytes as the fused kernel, device to device
//
// bytes/s counts the fused kernel's bytes for the fused and unfused rows alike, so the
// unfused row's number is the effective rate (time to do the same job), not its own traffic.
#include "backends/registry.h"
// Row length and costs: cases::kVaeRowLength, reparam_kl_forward and reparam_kl_backward in
// tests/op_cases.h, which tests/vae_test.cpp names too.
#include "backends/vae.h"
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

using backend::BinaryOp;
using backend::UnaryOp;

constexpr std::int64_t kRowLength = cases::kVaeRowLength;

Shape latent_shape(std::int64_t n) {
  return n < kRowLength ? Shape{1, n} : Shape{n / kRowLength, kRowLength};
}

using backend::ReparamConfig;
// The fused kernels' compulsory bytes for n elements in latent_shape(n).
double forward_bytes(std::int64_t n) {
  const Shape s = latent_shape(n);
  return cases::reparam_kl_forward(s[0], s[1], DType::f32).bytes;
}
double backward_bytes(std::int64_t n) {
  const Shape s = latent_shape(n);
  return cases::reparam_kl_backward(s[0], s[1], DType::f32).bytes;
}

ReparamConfig bench_config() {
  ReparamConfig c;
  c.key = PhiloxKey{1, 2};  // no check messages: the composition does not check either
  return c;
}

int fused_forward(const ReparamConfig& c, const Tensor& mu, const Tensor& lv, const Tensor& z,
                  const Tensor& kl) {
  backend::lookup<backend::VaeTable>(mu.device()).reparam_kl_forward(c, mu, lv, z, kl);
  return 0;
}

void fused_backward(const ReparamConfig& c, const Tensor& mu, const Tensor& lv,
                    const Tensor& dz, const Tensor& dkl, const Tensor& dmu, const Tensor& dlv) {
  backend::lookup<backend::VaeTable>(mu.device()).reparam_kl_backward(c, mu, lv, dz, dkl, dmu, dlv);
}

struct Operands {
  Tensor mu, lv, z, kl;
  explicit Operands(std::int64_t n) {
    Generator gen(3);
    const Shape shape = latent_shape(n);
    mu = uniform(shape, -1.0, 1.0, gen, DType::f32, bench_device());
    lv = uniform(shape, -2.0, 1.0, gen, DType::f32, bench_device());
    z = empty(shape, DType::f32, bench_device());
    kl = empty({shape[0]}, DType::f32, bench_device());
  }
};

void BM_reparam_kl_fused_forward(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Operands o(n);
  const ReparamConfig c = bench_config();
  time_on_device(state, forward_bytes(n), [&] { fused_forward(c, o.mu, o.lv, o.z, o.kl); });
}

// The same job as separate kernels, each through device memory (PyTorch eager's way).
void BM_reparam_kl_unfused_forward(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Operands o(n);
  const BenchBackend be = bench_backend();
  const Shape shape = o.mu.shape();
  Tensor eps = empty(shape, DType::f32, bench_device()), half = empty_like(eps),
         sigma = empty_like(eps), noise = empty_like(eps), mu2 = empty_like(eps),
         var = empty_like(eps), t1 = empty_like(eps), t2 = empty_like(eps),
         t3 = empty_like(eps);
  Tensor row_sum = empty({shape[0], 1}, DType::f32, bench_device());
  const PhiloxKey key{1, 2};
  time_on_device(state, forward_bytes(n), [&] {
    be.random_normal(eps, key);
    be.unary(UnaryOp::mul_scalar, o.lv, half, {0.5});
    be.unary(UnaryOp::exp, half, sigma, {});
    be.binary(BinaryOp::mul, sigma, eps, noise);
    be.binary(BinaryOp::add, o.mu, noise, o.z);
    be.unary(UnaryOp::square, o.mu, mu2, {});
    be.unary(UnaryOp::exp, o.lv, var, {});
    be.binary(BinaryOp::add, mu2, var, t1);
    be.binary(BinaryOp::sub, t1, o.lv, t2);
    be.unary(UnaryOp::add_scalar, t2, t3, {-1.0});
    be.sum(t3, row_sum);
    be.unary(UnaryOp::mul_scalar, row_sum, row_sum, {0.5});
  });
}

void BM_reparam_kl_fused_backward(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Operands o(n);
  Generator gen(4);
  const Tensor dz = uniform(o.mu.shape(), -1.0, 1.0, gen, DType::f32, bench_device());
  const Tensor dkl = full({o.mu.size(0)}, 0.01, DType::f32, bench_device());
  const Tensor dmu = empty_like(o.mu), dlv = empty_like(o.mu);
  const ReparamConfig c = bench_config();
  time_on_device(state, backward_bytes(n), [&] { fused_backward(c, o.mu, o.lv, dz, dkl, dmu, dlv); });
}

// What autograd runs for the composition: ε, σ and e^ℓ come from the forward (kept in
// memory), g = dL/dKL is broadcast over each row.
void BM_reparam_kl_unfused_backward(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Operands o(n);
  const BenchBackend be = bench_backend();
  Generator gen(4);
  const Shape shape = o.mu.shape();
  const Tensor dz = uniform(shape, -1.0, 1.0, gen, DType::f32, bench_device());
  const Tensor eps = randn(shape, gen, DType::f32, bench_device());
  const Tensor sigma = rand(shape, gen, DType::f32, bench_device());
  const Tensor var = rand(shape, gen, DType::f32, bench_device());
  const Tensor g = full({shape[0], 1}, 0.01, DType::f32, bench_device());
  Tensor dmu = empty_like(o.mu), dlv = empty_like(o.mu);
  Tensor a = empty_like(o.mu), b = empty_like(o.mu), c = empty_like(o.mu), d = empty_like(o.mu);
  const Tensor g_broadcast = expand(g, shape);  // materialized once, outside the timing
  time_on_device(state, backward_bytes(n), [&] {
    // dL/dμ = dz + g·μ
    be.binary(BinaryOp::mul, o.mu, g_broadcast, a);
    be.binary(BinaryOp::add, dz, a, dmu);
    // dL/dℓ = dz·ε·σ·½ + g·½·(e^ℓ − 1)
    be.binary(BinaryOp::mul, dz, eps, a);
    be.binary(BinaryOp::mul, a, sigma, b);
    be.unary(UnaryOp::mul_scalar, b, c, {0.5});
    be.unary(UnaryOp::add_scalar, var, a, {-1.0});
    be.binary(BinaryOp::mul, a, g_broadcast, b);
    be.unary(UnaryOp::mul_scalar, b, d, {0.5});
    be.binary(BinaryOp::add, c, d, dlv);
  });
}

// A device-to-device copy of `bytes` (half read, half written).
void copy_of(benchmark::State& state, double bytes) {
  const auto floats = static_cast<std::int64_t>(bytes / 8.0);
  Generator gen(1);
  const Tensor src = rand({floats}, gen, DType::f32, bench_device());
  const Tensor dst = empty({floats}, DType::f32, bench_device());
  time_on_device(state, cases::copy(floats, DType::f32, DType::f32).bytes,
                 [&] { bench_backend().copy(src, dst); });
}
void BM_copy_forward_bytes(benchmark::State& state) { copy_of(state, forward_bytes(state.range(0))); }
void BM_copy_backward_bytes(benchmark::State& state) { copy_of(state, backward_bytes(state.range(0))); }

// ε alone: a standard-normal fill (Philox + the exact Box–Muller), 4 B/element written.
void BM_randn(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Tensor out = empty({n}, DType::f32, bench_device());
  time_on_device(state, cases::random_fill(n, DType::f32).bytes,
                 [&] { bench_backend().random_normal(out, PhiloxKey{1, 2}); });
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_reparam_kl_fused_forward)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_reparam_kl_unfused_forward)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_copy_forward_bytes)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_reparam_kl_fused_backward)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_reparam_kl_unfused_backward)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_copy_backward_bytes)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_randn)->Apply(latent::bench::element_counts);
BENCHMARK_MAIN();
