// The cuda device table (src/backends/device.h): memory through the caching allocator on the
// current stream, copies, streams and events, the per-stream check word of kernels/check.cuh,
// and the counters of host synchronizations, copies and launches.
//
// Host synchronizations happen only where the host needs device data: a copy to the host,
// a stream or event synchronize, and check_errors() when checks are pending. Each is
// counted (runtime_counters), on a GPU and under the SIMT executor alike, so a test can hold
// a training step to one.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/cuda/caching_allocator.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/device.h"
#include "backends/registry.h"
#include "latent/stream.h"

namespace latent::cuda {

[[noreturn]] void fail(cudaError_t status, const char* what, const char* file, int line) {
  std::string where = file;
  const auto slash = where.rfind("/src/");
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status) + " (" +
              where + ":" + std::to_string(line) + ")");
}

bool sync_after_launch() {
  static const bool enabled = [] {
    const char* v = std::getenv("LATENT_CUDA_SYNC");
    return v && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

namespace {

// One stream's device-side checks: the word (device memory) and the message of each site
// registered since the word was last read.
struct StreamState {
  unsigned long long* check_word = nullptr;
  std::vector<std::function<std::string(std::int64_t)>> sites;
  std::uint64_t launches = 0;
};

struct Runtime {
  std::once_flag init;
  int device_count = 0;
  int sms = 16;
  int max_blocks = 16;
  CachingAllocator allocator;
  std::atomic<bool> poison{false};
  std::mutex mutex;  // guards streams
  std::unordered_map<cudaStream_t, std::unique_ptr<StreamState>> streams;
  std::atomic<std::uint64_t> syncs{0}, d2h{0}, h2d{0}, launches{0};
};

// Never destroyed: tensors held in static storage may outlive any static destructor.
Runtime& runtime() {
  static Runtime* r = new Runtime;
  std::call_once(r->init, [] {
    Runtime& rt = *r;
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError();
      return;
    }
    rt.device_count = count;
#if defined(__CUDACC__)
    // Launches, allocations and the occupancy queries below all use device 0: make it this
    // process's current device before any of them.
    if (cudaSetDevice(0) != cudaSuccess) {
      cudaGetLastError();
      rt.device_count = 0;
      return;
    }
#endif
    cudaDeviceProp props{};
    if (cudaGetDeviceProperties(&props, 0) == cudaSuccess) {
      rt.sms = simulated() ? 16 : props.multiProcessorCount;
      rt.max_blocks = simulated() ? 16 : props.multiProcessorCount * 8;
    }
  });
  return *r;
}

// The state of `s`; the caller holds runtime().mutex.
StreamState& state_locked(cudaStream_t s) {
  auto& slot = runtime().streams[s];
  if (!slot) slot = std::make_unique<StreamState>();
  return *slot;
}

void wait_for(cudaStream_t s) {
  ++runtime().syncs;
  LATENT_CUDA_CHECK(cudaStreamSynchronize(s));
}

// Reads and resets the word of an idle stream; throws the recorded failure, if any.
void read_check_word(cudaStream_t s) {
  Runtime& rt = runtime();
  unsigned long long word = kernels::kCheckPassed;
  std::function<std::string(std::int64_t)> message;
  {
    std::lock_guard<std::mutex> lock(rt.mutex);
    StreamState& st = state_locked(s);
    if (st.sites.empty()) return;
    ++rt.d2h;
    LATENT_CUDA_CHECK(
        cudaMemcpyAsync(&word, st.check_word, sizeof word, cudaMemcpyDeviceToHost, s));
    LATENT_CUDA_CHECK(cudaStreamSynchronize(s));  // idle already: no wait to count
    if (word != kernels::kCheckPassed) {
      const std::size_t site = static_cast<std::size_t>(word >> kernels::kCheckPositionBits);
      if (site < st.sites.size()) message = std::move(st.sites[site]);
      LATENT_CUDA_CHECK(cudaMemsetAsync(st.check_word, 0xFF, sizeof word, s));
    }
    st.sites.clear();  // before formatting: the message may read device data itself
  }
  if (word == kernels::kCheckPassed) return;
  const std::int64_t position =
      static_cast<std::int64_t>(word & ((1ull << kernels::kCheckPositionBits) - 1));
  throw Error(message ? message(position) : "a device-side check failed (unknown site)");
}

bool has_pending_checks(cudaStream_t s) {
  Runtime& rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mutex);
  auto it = rt.streams.find(s);
  return it != rt.streams.end() && !it->second->sites.empty();
}

void* allocate(std::size_t nbytes) {
  Runtime& rt = runtime();
  const cudaStream_t s = stream();
  void* p = rt.allocator.allocate(nbytes, s);
  if (rt.poison.load(std::memory_order_relaxed) && nbytes > 0)
    LATENT_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, nbytes, s));
  return p;
}

void deallocate(void* p) noexcept { runtime().allocator.deallocate(p); }

void copy_to_host(void* dst, const void* src, std::size_t n) {
  if (n == 0) return;
  const cudaStream_t s = stream();
  ++runtime().d2h;
  LATENT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, s));
  wait_for(s);
  // The stream is idle: surface a failed check of earlier work now, as a GPU fault would.
  read_check_word(s);
}

void copy_from_host(void* dst, const void* src, std::size_t n) {
  if (n == 0) return;
  ++runtime().h2d;
  // Pageable host memory is staged by the driver before this returns, so the caller may
  // reuse `src` at once; the host does not wait for the stream.
  LATENT_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream()));
}

void* stream_create() {
  cudaStream_t s = nullptr;
  LATENT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void stream_destroy(void* native) noexcept {
  const auto s = static_cast<cudaStream_t>(native);
  Runtime& rt = runtime();
  // Its cached blocks must not reach a later stream that reuses the handle: wait for the
  // stream's work, then hand them back to the device.
  cudaStreamSynchronize(s);
  rt.allocator.release_stream(s);
  {
    std::lock_guard<std::mutex> lock(rt.mutex);
    auto it = rt.streams.find(s);
    if (it != rt.streams.end()) {
      if (it->second->check_word) cudaFree(it->second->check_word);
      rt.streams.erase(it);
    }
  }
  cudaStreamDestroy(s);
}

void* event_create() {
  cudaEvent_t e = nullptr;
  LATENT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

RuntimeCounters counters() {
  Runtime& rt = runtime();
  return {rt.syncs.load(), rt.d2h.load(), rt.h2d.load(), rt.launches.load()};
}

}  // namespace

bool simulated() {
#if defined(__CUDACC__)
  return false;
#else
  return true;
#endif
}

bool can_run() { return runtime().device_count > 0; }
int multiprocessors() { return runtime().sms; }
int max_grid_blocks() { return runtime().max_blocks; }

cudaStream_t stream() {
  return static_cast<cudaStream_t>(backend::current_native_stream(DeviceType::cuda));
}

void note_launch(cudaStream_t s) {
  Runtime& rt = runtime();
  ++rt.launches;
  std::lock_guard<std::mutex> lock(rt.mutex);
  ++state_locked(s).launches;
}

kernels::CheckSite register_check_site(std::function<std::string(std::int64_t)> message) {
  Runtime& rt = runtime();
  const cudaStream_t s = stream();
  std::lock_guard<std::mutex> lock(rt.mutex);
  StreamState& st = state_locked(s);
  if (st.check_word == nullptr) {
    LATENT_CUDA_CHECK(cudaMalloc(&st.check_word, sizeof(unsigned long long)));
    LATENT_CUDA_CHECK(cudaMemsetAsync(st.check_word, 0xFF, sizeof(unsigned long long), s));
  }
  kernels::CheckSite site;
  site.word = st.check_word;
  site.site = st.sites.size();
  st.sites.push_back(std::move(message));
  return site;
}

void after_check() {
  // Immediate checks, or a long run of unread checks (a loop that never reads device data):
  // read the word now, so neither an error nor the messages' memory can pile up.
  constexpr std::size_t kMaxPendingSites = 4096;
  const cudaStream_t s = stream();
  bool read_now = immediate_checks();
  if (!read_now) {
    Runtime& rt = runtime();
    std::lock_guard<std::mutex> lock(rt.mutex);
    read_now = state_locked(s).sites.size() >= kMaxPendingSites;
  }
  if (read_now) {
    wait_for(s);
    read_check_word(s);
  }
}

void register_device_table() {
  backend::DeviceTable t{};
  t.name = [] { return simulated() ? "cuda (SIMT)" : "cuda"; };
  t.simulated = &simulated;
  t.allocate = &allocate;
  t.deallocate = &deallocate;
  t.copy_to_host = &copy_to_host;
  t.copy_from_host = &copy_from_host;
  t.set_poison_allocations = [](bool on) { runtime().poison.store(on); };
  t.stream_create = &stream_create;
  t.stream_destroy = &stream_destroy;
  t.stream_synchronize = [](void* s) { wait_for(static_cast<cudaStream_t>(s)); };
  t.event_create = &event_create;
  t.event_destroy = [](void* e) noexcept { cudaEventDestroy(static_cast<cudaEvent_t>(e)); };
  t.event_record = [](void* e, void* s) {
    LATENT_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(s)));
  };
  t.stream_wait_event = [](void* s, void* e) {
    LATENT_CUDA_CHECK(
        cudaStreamWaitEvent(static_cast<cudaStream_t>(s), static_cast<cudaEvent_t>(e), 0));
  };
  t.event_synchronize = [](void* e) {
    ++runtime().syncs;
    LATENT_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(e)));
  };
  t.event_query = [](void* e) {
    const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(e));
    if (status == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    LATENT_CUDA_CHECK(status);
    return true;
  };
  t.check_errors = [] {
    const cudaStream_t s = stream();
    if (!has_pending_checks(s)) return;
    wait_for(s);
    read_check_word(s);
  };
  t.counters = &counters;
  t.stream_launches = [](void* s) {
    Runtime& rt = runtime();
    std::lock_guard<std::mutex> lock(rt.mutex);
    return state_locked(static_cast<cudaStream_t>(s)).launches;
  };
  backend::Registry<backend::DeviceTable>::add(DeviceType::cuda, t);
}

}  // namespace latent::cuda
