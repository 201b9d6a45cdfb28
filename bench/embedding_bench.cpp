// The embedding (kernels/embedding.cuh: the vq gather and per-code sums) at 6272 ids (128
// images × 49 tokens), a table of V = 1024 rows of C = 128 float32 channels:
//
//   copy              the device-to-device copy of the output: read and write 4·rows·C bytes
//   forward           out = table[ids]: read the ids and a table row per id, write the rows
//   backward          dtable = per-id sums of the gradient rows, deterministic (the default)
//   backward_atomic   the same sums with float atomics (cuda; the non-deterministic baseline
//                     the default path is measured against; the cpu backend has one path)
//   backward_hot      the default backward with every id the same (a collapsed table, one
//                     long run of the sorted order)
//
// bytes/s counts the compulsory traffic (cases::embedding_forward and embedding_backward in
// tests/op_cases.h).
#include "backends/registry.h"
#include "backends/vq.h"
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

const cases::EmbeddingShape kShape = cases::embedding_bench_shape();

struct Inputs {
  Tensor table, ids, out, dout, dtable;
};

Inputs make_inputs(bool one_id = false) {
  Generator gen(1);
  const Device device = bench_device();
  std::vector<std::int32_t> ids(kShape.rows);
  for (auto& v : ids) v = one_id ? 7 : static_cast<std::int32_t>(gen.next_int(kShape.V));
  return {randn({kShape.V, kShape.C}, gen, DType::f32, device),
          from_vector(ids, {kShape.rows}).to(device),
          empty({kShape.rows, kShape.C}, DType::f32, device),
          randn({kShape.rows, kShape.C}, gen, DType::f32, device),
          empty({kShape.V, kShape.C}, DType::f32, device)};
}

const backend::VqTable& table(const Inputs& in) {
  return backend::lookup<backend::VqTable>(in.table.device());
}

// The embedding's backward: the per-code sums of the gradient rows (counts are scratch).
void backward(const Inputs& in, const Tensor& counts) {
  table(in).code_stats(in.dout, in.ids, counts, in.dtable, VqStatsAlgorithm::automatic);
}

void BM_embedding_copy(benchmark::State& state) {
  const Inputs in = make_inputs();
  time_on_device(state, cases::copy(kShape.rows * kShape.C, DType::f32, DType::f32).bytes,
                 [&] { bench_backend().copy(in.dout, in.out); });
}

void BM_embedding_forward(benchmark::State& state) {
  const Inputs in = make_inputs();
  time_on_device(state, cases::embedding_forward(kShape.rows, kShape.C, DType::f32).bytes,
                 [&] { table(in).gather(in.table, in.ids, in.out); });
}

void BM_embedding_backward(benchmark::State& state) {
  const Inputs in = make_inputs();
  const Tensor counts = empty({kShape.V}, DType::i32, in.table.device());
  time_on_device(state,
                 cases::embedding_backward(kShape.rows, kShape.V, kShape.C, DType::f32).bytes,
                 [&] { backward(in, counts); });
}

void BM_embedding_backward_atomic(benchmark::State& state) {
  const Inputs in = make_inputs();
  const Tensor counts = empty({kShape.V}, DType::i32, in.table.device());
  time_on_device(state,
                 cases::embedding_backward(kShape.rows, kShape.V, kShape.C, DType::f32).bytes,
                 [&] {
                   table(in).code_stats(in.dout, in.ids, counts, in.dtable,
                                        VqStatsAlgorithm::atomic);
                 });
}

void BM_embedding_backward_hot(benchmark::State& state) {
  const Inputs in = make_inputs(true);
  const Tensor counts = empty({kShape.V}, DType::i32, in.table.device());
  time_on_device(state,
                 cases::embedding_backward(kShape.rows, kShape.V, kShape.C, DType::f32).bytes,
                 [&] { backward(in, counts); });
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_embedding_copy)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(latent::bench::BM_embedding_forward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(latent::bench::BM_embedding_backward)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(latent::bench::BM_embedding_backward_atomic)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(latent::bench::BM_embedding_backward_hot)->UseManualTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
