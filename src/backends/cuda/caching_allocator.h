// A caching allocator for device memory, like PyTorch's: cudaMalloc and cudaFree are slow
// and synchronize the device, so freed blocks are kept in per-stream free lists keyed by
// their rounded size and handed out again to the next request of that size on that stream.
// A block never moves to another stream: work enqueued later on its own stream is ordered
// after every earlier use there, so reuse needs no wait. (A tensor used on a second stream
// must outlive that use, as with PyTorch's allocator without record_stream.)
//
// Sizes round up to 512 bytes below 1 MiB and to 2 MiB above, so blocks are reusable across
// nearby sizes. When cudaMalloc fails, every cached block is released and the allocation is
// retried once; a second failure is a latent::Error that says how much was asked for, how
// much this allocator holds in use and in cache, and what the device reports as free.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>


namespace latent::cuda {

class CachingAllocator {
 public:
  // A cudaStream_t, kept opaque so that this header is plain C++ (host code of either
  // build can include it).
  using Stream = void*;

  void* allocate(std::size_t nbytes, Stream stream = nullptr);
  void deallocate(void* ptr) noexcept;
  void release_cache() noexcept;  // cudaFree every cached block
  // cudaFree the cached blocks of one stream (which is being destroyed, its work done).
  void release_stream(Stream stream) noexcept;

  struct Stats {
    std::size_t in_use_bytes = 0;
    std::size_t cached_bytes = 0;
    std::uint64_t device_allocations = 0;  // cudaMalloc calls
    std::uint64_t reuses = 0;              // requests served from the cache
  };
  Stats stats() const;

  static std::size_t round_size(std::size_t nbytes);

 private:
  struct Block {
    std::size_t size;
    Stream stream;
  };
  mutable std::mutex mutex_;
  std::unordered_map<void*, Block> live_;
  // (stream, size) -> cached pointers
  std::multimap<std::pair<Stream, std::size_t>, void*> cache_;
  Stats stats_;
};

}  // namespace latent::cuda
