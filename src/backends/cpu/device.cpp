// The cpu device table (src/backends/device.h): aligned host memory, memcpy copies, and
// streams and events that are no-ops, since cpu work runs in order on the calling thread.
//
// Large blocks are cached. A training step allocates the same few-megabyte activations and
// gradients every step; from the C library each is a fresh mmap whose pages fault in one by
// one and go back to the kernel on free (7 % of an autoencoder step, in the kernel). A freed
// block of kCachedFrom bytes or more is kept instead, in a free list keyed by its size
// rounded up to kCacheUnit, and handed to the next request of that rounded size, up to
// kCacheLimit bytes in all (beyond it, freed blocks go back to the system). Small blocks go
// straight to the C library, which keeps them in its own free lists. Each block carries its
// rounded size in a 64-byte header in front of it. Under AddressSanitizer nothing is cached,
// so a use after free is still caught.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "backends/cpu/cpu.h"
#include "backends/device.h"
#include "backends/registry.h"
#include "latent/error.h"

namespace latent::cpu {
namespace {

std::atomic<bool> poison{false};

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheBlocks = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kCacheBlocks = false;
#else
constexpr bool kCacheBlocks = true;
#endif
#else
constexpr bool kCacheBlocks = true;
#endif

constexpr std::size_t kHeader = 64;  // keeps the block 64-byte aligned: whole cache lines
constexpr std::size_t kCachedFrom = 256u << 10;
constexpr std::size_t kCacheUnit = 64u << 10;
constexpr std::size_t kCacheLimit = 1u << 30;

struct BlockCache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free_blocks;  // rounded size -> block (header included)
  std::size_t cached_bytes = 0;
};
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive statics
  return *cache;
}

std::size_t rounded_size(std::size_t nbytes) {
  const std::size_t n = std::max<std::size_t>(nbytes, 1);
  const std::size_t unit = kCacheBlocks && n >= kCachedFrom ? kCacheUnit : 64;
  return (n + unit - 1) / unit * unit;
}

void* allocate(std::size_t nbytes) {
  LATENT_CHECK(nbytes <= (std::size_t{1} << 62), "cpu allocate: out of memory asking for ",
               nbytes, " bytes");
  const std::size_t size = rounded_size(nbytes);
  void* block = nullptr;
  if (kCacheBlocks && size >= kCachedFrom) {
    BlockCache& cache = block_cache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (auto it = cache.free_blocks.find(size); it != cache.free_blocks.end()) {
      block = it->second;
      cache.free_blocks.erase(it);
      cache.cached_bytes -= size;
    }
  }
  if (block == nullptr) block = std::aligned_alloc(64, kHeader + size);
  LATENT_CHECK(block != nullptr, "cpu allocate: out of memory asking for ", nbytes, " bytes");
  std::memcpy(block, &size, sizeof size);
  void* p = static_cast<char*>(block) + kHeader;
  if (poison.load(std::memory_order_relaxed)) std::memset(p, 0xFF, size);
  return p;
}

void deallocate(void* p) noexcept {
  if (p == nullptr) return;
  void* block = static_cast<char*>(p) - kHeader;
  std::size_t size;
  std::memcpy(&size, block, sizeof size);
  if (kCacheBlocks && size >= kCachedFrom) {
    BlockCache& cache = block_cache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (cache.cached_bytes + size <= kCacheLimit) {
      cache.free_blocks.emplace(size, block);
      cache.cached_bytes += size;
      return;
    }
  }
  std::free(block);
}
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
