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

#include "backends/adam.h"
#include "backends/conv.h"
#include "backends/device.h"
#include "backends/elementwise.h"
#include "backends/random.h"
#include "backends/reduce.h"
#include "backends/registry.h"
#include "latent/latent.h"

namespace latent::bench {

inline Device bench_device() {
  if (const char* name = std::getenv("LATENT_BENCH_DEVICE")) return parse_device(name);
  return backend_available(DeviceType::cuda) && !backend_is_simulated(DeviceType::cuda)
             ? Device::cuda(0)
             : Device::cpu();
}

// The bench device's concept tables, behind one handle.
struct BenchBackend {
  Device device = bench_device();
  const backend::ElementwiseTable& elementwise() const {
    return backend::lookup<backend::ElementwiseTable>(device);
  }
  void copy(const Tensor& s, const Tensor& d) const { elementwise().copy(s, d); }
  void unary(backend::UnaryOp op, const Tensor& x, const Tensor& y,
             backend::UnaryParams p) const {
    elementwise().unary(op, x, y, p);
  }
  void unary_backward(backend::UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g,
                      const Tensor& dx, backend::UnaryParams p) const {
    elementwise().unary_backward(op, x, y, g, dx, p);
  }
  void binary(backend::BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& o) const {
    elementwise().binary(op, a, b, o);
  }
  void sum(const Tensor& x, const Tensor& o) const {
    backend::lookup<backend::ReduceTable>(device).sum(x, o);
  }
  void argmax_rows(const Tensor& x, const Tensor& o) const {
    backend::lookup<backend::ReduceTable>(device).argmax_rows(x, o);
  }
  void im2col(const backend::ConvGeometry& g, const Tensor& x, const Tensor& c) const {
    backend::lookup<backend::ConvTable>(device).im2col(g, x, c);
  }
  void col2im(const backend::ConvGeometry& g, const Tensor& c, const Tensor& x) const {
    backend::lookup<backend::ConvTable>(device).col2im(g, c, x);
  }
  void adam_step(const kernels::AdamConstants& c, const Tensor& p, const Tensor& g,
                 const Tensor& m, const Tensor& v) const {
    backend::lookup<backend::AdamTable>(device).step(c, p, g, m, v);
  }
  void random_uniform(const Tensor& t, PhiloxKey key, double low, double high) const {
    backend::lookup<backend::RandomTable>(device).uniform(t, key, low, high);
  }
  void random_normal(const Tensor& t, PhiloxKey key) const {
    backend::lookup<backend::RandomTable>(device).normal(t, key);
  }
  void synchronize() const { latent::synchronize(device); }
  const char* name() const { return backend::device_table(device).name(); }
};

inline BenchBackend bench_backend() { return BenchBackend{}; }

// Times `body` (one or more launches) per iteration, waiting for the device at the end, and
// reports the time through manual timing; sets bytes/s from `bytes` per iteration.
template <class Body>
void time_on_device(benchmark::State& state, double bytes, Body&& body) {
  const BenchBackend be = bench_backend();
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
