// Shared pieces of the kernel benchmarks: which device to run on, and timing that waits for
// the device.
//
// The device is LATENT_BENCH_DEVICE (cpu, cuda) when set; otherwise the GPU when the cuda
// backend runs on one, else cpu. Every benchmark labels itself with the backend that ran it
// ("cpu", "cuda", "cuda (SIMT)"), so a results table never mixes them up.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "backends/backend.h"
#include "latent/latent.h"

namespace latent::bench {

inline Device bench_device() {
  if (const char* name = std::getenv("LATENT_BENCH_DEVICE")) return parse_device(name);
  return backend_available(DeviceType::cuda) && !backend_is_simulated(DeviceType::cuda)
             ? Device::cuda(0)
             : Device::cpu();
}

inline backend::Backend& bench_backend() { return backend::get(bench_device()); }

// Times `body` (one or more launches) per iteration, waiting for the device at the end, and
// reports the time through manual timing; sets bytes/s from `bytes` per iteration.
template <class Body>
void time_on_device(benchmark::State& state, double bytes, Body&& body) {
  backend::Backend& be = bench_backend();
  body();  // warm-up: first-touch allocation, cuBLAS handle, caches
  be.synchronize();
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    body();
    be.synchronize();
    const auto stop = std::chrono::steady_clock::now();
    state.SetIterationTime(std::chrono::duration<double>(stop - start).count());
  }
  if (bytes > 0) state.SetBytesProcessed(static_cast<std::int64_t>(bytes * state.iterations()));
  state.SetLabel(be.name());
}

// 2^16 … 2^26 elements on a GPU; up to 2^24 on the CPU to keep runs short.
inline void element_counts(benchmark::internal::Benchmark* b) {
  const int top = bench_device().is_cuda() ? 26 : 24;
  for (int log2 = 16; log2 <= top; log2 += 2) b->Arg(std::int64_t{1} << log2);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace latent::bench
