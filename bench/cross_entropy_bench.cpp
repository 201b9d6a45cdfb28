// Softmax cross-entropy (kernels/cross_entropy.cuh) against its baselines, at 6272 rows
// (128 images × 49 tokens of a 7×7 latent grid) of K = 256, 512, 1000, 4096 float32 logits:
//
//   copy                    the device-to-device copy of the logits: read 4·rows·K, write as much
//   fused_forward           loss and (max, log-sum) per row in one pass: read the logits once
//   naive_forward           the composition of existing ops: log(sum(exp(x), -1)) − sum(x·onehot, -1),
//                           which writes and reads the [rows, K] exponentials and products
//   fused_forward_backward  the forward, then dL/dlogits = g·(softmax − one-hot) recomputed from
//                           the logits: read them twice, write the gradient once
//   naive_forward_backward  the composition under autograd, mean loss, backward through exp,
//                           sum, log, mul (every intermediate a [rows, K] tensor)
//
// bytes/s counts the compulsory traffic of the fused op (cases::cross_entropy_forward and
// cross_entropy_backward in tests/op_cases.h), the same figure for the fused and the naive
// runs, so a higher figure is a faster run and fused / copy is the fraction of copy bandwidth.
#include "backends/cross_entropy.h"
#include "backends/registry.h"
#include "bench_util.h"
#include "latent/cross_entropy.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

constexpr std::int64_t kRows = cases::kCrossEntropyBenchRows;

struct Inputs {
  Tensor logits, targets, one_hot;
};

Inputs make_inputs(std::int64_t K, bool one_hot) {
  Generator gen(1);
  const Device device = bench_device();
  std::vector<std::int32_t> t(kRows);
  for (auto& v : t) v = static_cast<std::int32_t>(gen.next_int(K));
  Inputs in{mul(randn({kRows, K}, gen, DType::f32, device), 2.0),
            from_vector(t, {kRows}).to(device), Tensor()};
  if (one_hot) {
    std::vector<float> h(static_cast<std::size_t>(kRows * K), 0.0f);
    for (std::int64_t r = 0; r < kRows; ++r) h[r * K + t[r]] = 1.0f;
    in.one_hot = from_vector(h, {kRows, K}).to(device);
  }
  return in;
}

void forward(const Inputs& in, const Tensor& loss, const Tensor& lse) {
  // With the target check on, as cross_entropy_rows runs it (fused into the same pass).
  const backend::CheckMessage message = [](std::int64_t) { return std::string("target"); };
  backend::lookup<backend::CrossEntropyTable>(in.logits.device())
      .forward(in.logits, in.targets, loss, lse, message);
}

Tensor naive_loss(const Inputs& in) {
  return sub(log(sum(exp(in.logits), {-1})), sum(mul(in.logits, in.one_hot), {-1}));
}

void BM_cross_entropy_copy(benchmark::State& state) {
  const std::int64_t K = state.range(0);
  const Inputs in = make_inputs(K, false);
  const Tensor dst = empty_like(in.logits);
  time_on_device(state, cases::copy(kRows * K, DType::f32, DType::f32).bytes,
                 [&] { bench_backend().copy(in.logits, dst); });
}

void BM_cross_entropy_fused_forward(benchmark::State& state) {
  const std::int64_t K = state.range(0);
  const Inputs in = make_inputs(K, false);
  const Tensor loss = empty({kRows}, DType::f32, in.logits.device());
  const Tensor lse = empty({kRows, 2}, DType::f32, in.logits.device());
  time_on_device(state, cases::cross_entropy_forward(kRows, K, DType::f32).bytes,
                 [&] { forward(in, loss, lse); });
}

void BM_cross_entropy_naive_forward(benchmark::State& state) {
  const std::int64_t K = state.range(0);
  const Inputs in = make_inputs(K, true);
  NoGradGuard no_grad;
  time_on_device(state, cases::cross_entropy_forward(kRows, K, DType::f32).bytes,
                 [&] { benchmark::DoNotOptimize(naive_loss(in)); });
}

void BM_cross_entropy_fused_forward_backward(benchmark::State& state) {
  const std::int64_t K = state.range(0);
  const Inputs in = make_inputs(K, false);
  const Device device = in.logits.device();
  const Tensor loss = empty({kRows}, DType::f32, device);
  const Tensor lse = empty({kRows, 2}, DType::f32, device);
  const Tensor dloss = full({kRows}, 1.0 / kRows, DType::f32, device);
  const Tensor dlogits = empty_like(in.logits);
  const double bytes = cases::cross_entropy_forward(kRows, K, DType::f32).bytes +
                       cases::cross_entropy_backward(kRows, K, DType::f32).bytes;
  time_on_device(state, bytes, [&] {
    forward(in, loss, lse);
    backend::lookup<backend::CrossEntropyTable>(device)
        .backward(in.logits, in.targets, lse, dloss, dlogits);
  });
}

void BM_cross_entropy_naive_forward_backward(benchmark::State& state) {
  const std::int64_t K = state.range(0);
  Inputs in = make_inputs(K, true);
  const double bytes = cases::cross_entropy_forward(kRows, K, DType::f32).bytes +
                       cases::cross_entropy_backward(kRows, K, DType::f32).bytes;
  time_on_device(state, bytes, [&] {
    Tensor x = in.logits.detach();
    x.requires_grad_();
    Inputs leaf{x, in.targets, in.one_hot};
    mean(naive_loss(leaf)).backward();
    benchmark::DoNotOptimize(x.grad());
  });
}

// The op itself (validation, allocation, autograd), forward and backward.
void BM_cross_entropy_op_forward_backward(benchmark::State& state) {
  const std::int64_t K = state.range(0);
  const Inputs in = make_inputs(K, false);
  const double bytes = cases::cross_entropy_forward(kRows, K, DType::f32).bytes +
                       cases::cross_entropy_backward(kRows, K, DType::f32).bytes;
  time_on_device(state, bytes, [&] {
    Tensor x = in.logits.detach();
    x.requires_grad_();
    cross_entropy(x, in.targets).backward();
    benchmark::DoNotOptimize(x.grad());
  });
}

void classes(benchmark::internal::Benchmark* b) {
  for (const std::int64_t K : cases::cross_entropy_bench_classes()) b->Arg(K);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_cross_entropy_copy)->Apply(latent::bench::classes);
BENCHMARK(latent::bench::BM_cross_entropy_fused_forward)->Apply(latent::bench::classes);
BENCHMARK(latent::bench::BM_cross_entropy_naive_forward)->Apply(latent::bench::classes);
BENCHMARK(latent::bench::BM_cross_entropy_fused_forward_backward)->Apply(latent::bench::classes);
BENCHMARK(latent::bench::BM_cross_entropy_naive_forward_backward)->Apply(latent::bench::classes);
BENCHMARK(latent::bench::BM_cross_entropy_op_forward_backward)->Apply(latent::bench::classes);
BENCHMARK_MAIN();
