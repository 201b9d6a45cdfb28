// FSQ (kernels/fsq.cuh) against its baselines, for n = 2^16 … 2^26 float32 elements of z
// (n/d latent vectors of d channels):
//
//   copy           the device-to-device copy of n floats: read 4n, write 4n bytes
//   fused          codes and indices in one pass: read 4n, write 4n + 4n/d
//   two_pass       the unfused composition: codes (read 4n, write 4n), then the indices
//                  from the codes (read 4n, write 4n/d): 12n + 4n/d bytes of traffic
//   backward       dL/dz = dL/dcodes · slope(z): read 8n, write 4n
//   decode         indices to codes: read 4n/d, write 4n, plus the read-back of the 4-byte
//                  out-of-range flag (a device synchronization, as in the op)
//
// bytes/s counts the bytes the operation must move at least (for fused and two_pass alike
// 8n + 4n/d), so a higher figure is a faster run and fused / copy is the fraction of copy
// bandwidth reached (DESIGN.md: ≥ 90 % at 2^26, ≥ 2× the unfused composition). Levels:
// 8,5,5,5 (d = 4) and 8,8,8,5,5,5 (d = 6, rows that do not line up with 16-byte vectors).
#include "backends/registry.h"
// Levels and costs: cases::fsq_levels_d4/d6, fsq_quantize, fsq_backward, fsq_decode in
// tests/op_cases.h, which tests/fsq_test.cpp names too.
#include "backends/fsq.h"
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

const std::vector<std::int64_t>& kLevels4 = cases::fsq_levels_d4();
const std::vector<std::int64_t>& kLevels6 = cases::fsq_levels_d6();

void quantize(const Tensor& z, const Tensor& codes, const Tensor& indices,
              const std::vector<std::int64_t>& levels) {
  // With the NaN check on, as fsq_quantize runs it (it is fused into the same pass).
  const backend::CheckMessage nan_message = [](std::int64_t) { return std::string("NaN"); };
  backend::lookup<backend::FsqTable>(z.device())
      .quantize(z, codes, indices, levels, {}, nan_message);
}

void codes_to_indices(const Tensor& codes, const Tensor& indices,
                      const std::vector<std::int64_t>& levels) {
  backend::lookup<backend::FsqTable>(codes.device()).codes_to_indices(codes, indices, levels, {});
}

struct Buffers {
  Tensor z, codes, indices;
};

Buffers make_buffers(std::int64_t n, const std::vector<std::int64_t>& levels) {
  const std::int64_t d = static_cast<std::int64_t>(levels.size()), rows = n / d;
  Generator gen(1);
  const Device device = bench_device();
  return {mul(randn({rows, d}, gen, DType::f32, device), 1.5),
          empty({rows, d}, DType::f32, device), empty({rows}, DType::i32, device)};
}

// What both fused and two_pass must move at least: read z, write the codes and the indices.
double minimal_bytes(std::int64_t n, std::int64_t d) {
  return cases::fsq_quantize(n / d, d, DType::f32).bytes;
}

void BM_fsq_copy(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  Generator gen(1);
  const Tensor src = rand({n}, gen, DType::f32, bench_device());
  const Tensor dst = empty({n}, DType::f32, bench_device());
  time_on_device(state, cases::copy(n, DType::f32, DType::f32).bytes,
                 [&] { bench_backend().copy(src, dst); });
}

void fused(benchmark::State& state, const std::vector<std::int64_t>& levels) {
  const std::int64_t n = state.range(0), d = levels.size();
  const Buffers b = make_buffers(n, levels);
  time_on_device(state, minimal_bytes(b.z.numel(), d),
                 [&] { quantize(b.z, b.codes, b.indices, levels); });
}

void two_pass(benchmark::State& state, const std::vector<std::int64_t>& levels) {
  const std::int64_t n = state.range(0), d = levels.size();
  const Buffers b = make_buffers(n, levels);
  time_on_device(state, minimal_bytes(b.z.numel(), d), [&] {
    quantize(b.z, b.codes, Tensor(), levels);  // codes only
    codes_to_indices(b.codes, b.indices, levels);
  });
}

void BM_fsq_fused_d4(benchmark::State& state) { fused(state, kLevels4); }
void BM_fsq_two_pass_d4(benchmark::State& state) { two_pass(state, kLevels4); }
void BM_fsq_fused_d6(benchmark::State& state) { fused(state, kLevels6); }
void BM_fsq_two_pass_d6(benchmark::State& state) { two_pass(state, kLevels6); }

void BM_fsq_backward_d4(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Buffers b = make_buffers(n, kLevels4);
  Generator gen(2);
  const Tensor g = randn(b.z.shape(), gen, DType::f32, bench_device());
  const Tensor dz = empty_like(b.z);
  time_on_device(state, cases::fsq_backward(b.z.size(0), 4, DType::f32).bytes, [&] {
    backend::lookup<backend::FsqTable>(b.z.device()).quantize_backward(b.z, g, dz, kLevels4, {});
  });
}

void BM_fsq_decode_d4(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Buffers b = make_buffers(n, kLevels4);
  quantize(b.z, b.codes, b.indices, kLevels4);
  time_on_device(state, cases::fsq_decode(b.indices.numel(), 4, DType::f32).bytes, [&] {
    backend::lookup<backend::FsqTable>(b.z.device()).indices_to_codes(b.indices, b.codes, kLevels4, {});
  });
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_fsq_copy)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_fsq_fused_d4)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_fsq_two_pass_d4)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_fsq_fused_d6)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_fsq_two_pass_d6)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_fsq_backward_d4)->Apply(latent::bench::element_counts);
BENCHMARK(latent::bench::BM_fsq_decode_d4)->Apply(latent::bench::element_counts);
BENCHMARK_MAIN();
