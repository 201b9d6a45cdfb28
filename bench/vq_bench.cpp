// Vector quantization (kernels/vq_argmin.cuh, kernels/vq_ema.cuh) against its baselines.
//
// Nearest-code argmin, N rows of z [N, D] against a codebook [K, D], float32:
//   fused    vq_argmin_tiled_kernel: GEMM-style tiles with a running (min, index) per row;
//            the N×K distance matrix never exists
//   naive    one thread per row walking all K codes
//   cublas   S = −2·Z·Eᵀ by cuBLAS SGEMM (in row chunks of at most 2^28 scores), then a
//            row argmin of ‖e_k‖² + S: what a framework composes
// FLOPs counted per iteration: 2·N·K·D (the dot products) + 3·N·K (bias, scale, compare),
// the same count for all three so the rates compare directly; `peak` is that rate over
// the FP32 peak (SMs × clock × 128 lanes × 2, a GPU only). bytes/s counts the compulsory
// traffic N·D + K·D floats in and N indices out (cublas also writes and reads N×K scores).
// Suite on a GPU: N ∈ {4096, 65536, 262144} × K ∈ {512, 1024, 8192, 16384} × D ∈ {8, 32, 64,
// 256} (naive only up to 2^36 multiply-adds); on the CPU or SIMT a small corner of it.
//
// EMA statistics, n_k and m_k from N rows of z [N, D] and their codes, float32, with the
// codes uniform (spread 0) or all on one code (spread 1, a collapsed codebook):
//   shared / sorted   the two deterministic paths; atomic  float atomics (non-deterministic)
//   copy              a device-to-device copy of the same N·D floats, the bandwidth reference
// bytes/s counts N·D floats + N indices read and K·D + K written. And the EMA update itself
// (N, M, E of K codes): bytes/s over the 5 words per codebook element it must move.
//
// Suites and costs: cases::vq_argmin_bench_suite, vq_argmin, vq_argmin_gemm, vq_stats,
// vq_ema_update in tests/op_cases.h, which tests/vq_test.cpp and vq_ema_test.cpp name too.
//
// Select the device with LATENT_BENCH_DEVICE=cuda (SIMT without a GPU) or cpu; on cpu only the
// reference loops run (the cuda variants report an error row).
#include <cmath>

#include "backends/registry.h"
#include "backends/vq.h"
#include "bench_util.h"
#include "tests/op_cases.h"

namespace latent::bench {
namespace {

bool on_gpu() { return bench_device().is_cuda() && !backend_is_simulated(DeviceType::cuda); }

bool need_cuda(benchmark::State& state) {
  if (bench_device().is_cuda()) return true;
  state.SkipWithError("needs the cuda device (LATENT_BENCH_DEVICE=cuda runs it under SIMT)");
  return false;
}

// ------------------------------------------------------------------ argmin
void argmin_sizes(benchmark::internal::Benchmark* b) {
  for (const cases::Vq& v : cases::vq_argmin_bench_suite(on_gpu())) b->Args({v.N, v.K, v.D});
  b->ArgNames({"N", "K", "D"})->UseManualTime()->Unit(benchmark::kMillisecond);
}

void run_argmin(benchmark::State& state, VqArgminAlgorithm algorithm, bool cpu_reference) {
  const std::int64_t N = state.range(0), K = state.range(1), D = state.range(2);
  if (!cpu_reference && !need_cuda(state)) return;
  if (cpu_reference && !bench_device().is_cpu()) {
    state.SkipWithError("the cpu reference runs with LATENT_BENCH_DEVICE=cpu");
    return;
  }
  if (algorithm == VqArgminAlgorithm::naive && static_cast<double>(N) * K * D > std::ldexp(1.0, 36)) {
    state.SkipWithError("naive: skipped above 2^36 multiply-adds (it would take seconds)");
    return;
  }
  Generator gen(1);
  const Device device = bench_device();
  const Tensor z = uniform({N, D}, -1.0, 1.0, gen, DType::f32, device);
  const Tensor codes = uniform({K, D}, -1.0, 1.0, gen, DType::f32, device);
  const Tensor indices = empty({N}, DType::i32, device);
  const cases::Vq v{N, K, D};
  const cases::Cost cost = algorithm == VqArgminAlgorithm::gemm ? cases::vq_argmin_gemm(v, DType::f32)
                                                                : cases::vq_argmin(v, DType::f32);
  time_on_device(state, cost.bytes, [&] {
    VqArgminOptions options;
    options.algorithm = algorithm;
    backend::lookup<backend::VqTable>(cpu_reference ? Device::cpu() : device)
        .argmin(z, codes, indices, Tensor(), options);
  });
  const double flops = cost.flops;
  state.counters["FLOP/s"] =
      benchmark::Counter(flops * state.iterations(), benchmark::Counter::kIsRate);
  if (on_gpu()) {
    const double peak = cuda::fp32_peak_flops();
    // kIsRate divides by the total time, so the rate over the peak is a rate of flops/peak.
    if (peak > 0)
      state.counters["peak"] =
          benchmark::Counter(flops / peak * state.iterations(), benchmark::Counter::kIsRate);
  }
}

void BM_vq_argmin_fused(benchmark::State& s) { run_argmin(s, VqArgminAlgorithm::tiled, false); }
void BM_vq_argmin_naive(benchmark::State& s) { run_argmin(s, VqArgminAlgorithm::naive, false); }
void BM_vq_argmin_cublas(benchmark::State& s) { run_argmin(s, VqArgminAlgorithm::gemm, false); }
void BM_vq_argmin_cpu_reference(benchmark::State& s) {
  run_argmin(s, VqArgminAlgorithm::tiled, true);
}

// ------------------------------------------------------------------ EMA statistics
void stats_sizes(benchmark::internal::Benchmark* b) {
  const std::vector<std::int64_t> rows =
      on_gpu() ? std::vector<std::int64_t>{65536, 262144, 1048576} : std::vector<std::int64_t>{65536};
  for (std::int64_t n : rows)
    for (const cases::Vq& v : cases::vq_stats_bench_codebooks(n))
      for (std::int64_t spread : {0, 1}) b->Args({v.N, v.K, v.D, spread});
  b->ArgNames({"N", "K", "D", "spread"})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void run_stats(benchmark::State& state, VqStatsAlgorithm algorithm) {
  const std::int64_t N = state.range(0), K = state.range(1), D = state.range(2);
  const bool collapsed = state.range(3) == 1;
  const Device device = bench_device();
  if (device.is_cuda() && algorithm == VqStatsAlgorithm::shared &&
      !cuda::vq_stats_fit_shared(K, D, DType::f32)) {
    state.SkipWithError("shared: K·D does not fit in shared memory");
    return;
  }
  if (device.is_cpu() && algorithm != VqStatsAlgorithm::automatic) {
    state.SkipWithError("needs the cuda device (LATENT_BENCH_DEVICE=cuda runs it under SIMT)");
    return;
  }
  Generator gen(2);
  const Tensor z = uniform({N, D}, -1.0, 1.0, gen, DType::f32, device);
  Tensor indices;
  if (collapsed) {
    indices = full({N}, 7.0, DType::i32, device);
  } else {
    indices = uniform({N}, 0.0, static_cast<double>(K), gen, DType::f32).to(DType::i32).to(device);
  }
  const Tensor counts = empty({K}, DType::i32, device), sums = empty({K, D}, DType::f32, device);
  time_on_device(state, cases::vq_stats({N, K, D}, DType::f32).bytes, [&] {
    backend::lookup<backend::VqTable>(device).code_stats(z, indices, counts, sums, algorithm);
  });
}

void BM_vq_stats_shared(benchmark::State& s) { run_stats(s, VqStatsAlgorithm::shared); }
void BM_vq_stats_sorted(benchmark::State& s) { run_stats(s, VqStatsAlgorithm::sorted); }
void BM_vq_stats_atomic(benchmark::State& s) { run_stats(s, VqStatsAlgorithm::atomic); }
void BM_vq_stats_cpu_reference(benchmark::State& s) {
  if (!bench_device().is_cpu()) {
    s.SkipWithError("the cpu reference runs with LATENT_BENCH_DEVICE=cpu");
    return;
  }
  run_stats(s, VqStatsAlgorithm::automatic);
}

void BM_vq_stats_copy(benchmark::State& state) {
  const std::int64_t N = state.range(0), D = state.range(2);
  if (state.range(3) != 0) {
    state.SkipWithError("one copy row per size (spread 0)");
    return;
  }
  Generator gen(3);
  const Tensor src = rand({N * D}, gen, DType::f32, bench_device());
  const Tensor dst = empty({N * D}, DType::f32, bench_device());
  time_on_device(state, cases::copy(N * D, DType::f32, DType::f32).bytes,
                 [&] { bench_backend().copy(src, dst); });
}

// ------------------------------------------------------------------ EMA update
void BM_vq_ema_update(benchmark::State& state) {
  const std::int64_t K = state.range(0), D = state.range(1);
  const Device device = bench_device();
  Generator gen(4);
  const Tensor codebook = uniform({K, D}, -1.0, 1.0, gen, DType::f32, device);
  const Tensor ema_count = uniform({K}, 1.0, 2.0, gen, DType::f32, device);
  const Tensor ema_sum = uniform({K, D}, -1.0, 1.0, gen, DType::f32, device);
  const Tensor counts = full({K}, 3.0, DType::i32, device);
  const Tensor sums = uniform({K, D}, -1.0, 1.0, gen, DType::f32, device);
  // Per element: read M and m, write M and E; per code: read N and n, write N (and re-read N).
  // With the non-finite checks on, as vq_ema_update runs it (they ride on the same pass).
  const backend::CheckMessage check = [](std::int64_t) { return std::string("non-finite"); };
  time_on_device(state, cases::vq_ema_update(K, D, DType::f32).bytes, [&] {
    backend::lookup<backend::VqTable>(device)
        .ema_update(codebook, ema_count, ema_sum, counts, sums, 0.99, 1e-5, check, check);
  });
}

void ema_sizes(benchmark::internal::Benchmark* b) {
  b->Args({512, 16})->Args({8192, 64})->Args({16384, 256});
  if (on_gpu()) b->Args({65536, 256});
  b->ArgNames({"K", "D"})->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace
}  // namespace latent::bench

BENCHMARK(latent::bench::BM_vq_argmin_fused)->Apply(latent::bench::argmin_sizes);
BENCHMARK(latent::bench::BM_vq_argmin_cublas)->Apply(latent::bench::argmin_sizes);
BENCHMARK(latent::bench::BM_vq_argmin_naive)->Apply(latent::bench::argmin_sizes);
BENCHMARK(latent::bench::BM_vq_argmin_cpu_reference)->Apply(latent::bench::argmin_sizes);
BENCHMARK(latent::bench::BM_vq_stats_copy)->Apply(latent::bench::stats_sizes);
BENCHMARK(latent::bench::BM_vq_stats_shared)->Apply(latent::bench::stats_sizes);
BENCHMARK(latent::bench::BM_vq_stats_sorted)->Apply(latent::bench::stats_sizes);
BENCHMARK(latent::bench::BM_vq_stats_atomic)->Apply(latent::bench::stats_sizes);
BENCHMARK(latent::bench::BM_vq_stats_cpu_reference)->Apply(latent::bench::stats_sizes);
BENCHMARK(latent::bench::BM_vq_ema_update)->Apply(latent::bench::ema_sizes);
BENCHMARK_MAIN();
