// The cpu device table (src/backends/device.h): aligned host memory, memcpy copies, and
// streams and events that are no-ops, since cpu work runs in order on the calling thread.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/cpu.h"
#include "backends/device.h"
#include "backends/registry.h"
#include "latent/error.h"

namespace latent::cpu {
namespace {

std::atomic<bool> poison{false};

void* allocate(std::size_t nbytes) {
  // 64-byte alignment: whole cache lines, and aligned for any vector width.
  const std::size_t rounded = ((std::max<std::size_t>(nbytes, 1) + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, rounded);
  LATENT_CHECK(p != nullptr, "cpu allocate: out of memory asking for ", nbytes, " bytes");
  if (poison.load(std::memory_order_relaxed)) std::memset(p, 0xFF, rounded);
  return p;
}
void deallocate(void* p) noexcept { std::free(p); }
void copy_bytes(void* dst, const void* src, std::size_t n) {
  if (n) std::memcpy(dst, src, n);
}

}  // namespace

void register_device_table() {
  backend::DeviceTable t{};
  t.name = [] { return "cpu"; };
  t.simulated = [] { return false; };
  t.allocate = &allocate;
  t.deallocate = &deallocate;
  t.copy_to_host = &copy_bytes;
  t.copy_from_host = &copy_bytes;
  t.set_poison_allocations = [](bool on) { poison.store(on); };
  t.stream_create = []() -> void* { return nullptr; };
  t.stream_destroy = [](void*) noexcept {};
  t.stream_synchronize = [](void*) {};
  t.event_create = []() -> void* { return nullptr; };
  t.event_destroy = [](void*) noexcept {};
  t.event_record = [](void*, void*) {};
  t.stream_wait_event = [](void*, void*) {};
  t.event_synchronize = [](void*) {};
  t.event_query = [](void*) { return true; };
  t.check_errors = [] {};
  t.counters = [] { return RuntimeCounters{}; };
  t.stream_launches = [](void*) -> std::uint64_t { return 0; };
  backend::Registry<backend::DeviceTable>::add(DeviceType::cpu, t);
}

}  // namespace latent::cpu
