#include "backends/cuda/caching_allocator.h"

#include <cstdio>

#include "backends/cuda/launch.h"
#include "latent/error.h"

namespace latent::cuda {

std::size_t CachingAllocator::round_size(std::size_t nbytes) {
  constexpr std::size_t kSmall = 512, kLarge = 2u << 20, kLargeFrom = 1u << 20;
  const std::size_t n = nbytes == 0 ? 1 : nbytes;
  const std::size_t unit = n < kLargeFrom ? kSmall : kLarge;
  return (n + unit - 1) / unit * unit;
}

void* CachingAllocator::allocate(std::size_t nbytes, Stream stream) {
  const std::size_t size = round_size(nbytes);
  std::lock_guard<std::mutex> lock(mutex_);
  auto cached = cache_.find({stream, size});
  if (cached != cache_.end()) {
    void* ptr = cached->second;
    cache_.erase(cached);
    stats_.cached_bytes -= size;
    stats_.in_use_bytes += size;
    ++stats_.reuses;
    live_[ptr] = {size, stream};
    return ptr;
  }
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, size);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state before retrying
    for (auto& [key, p] : cache_) cudaFree(p);
    cache_.clear();
    stats_.cached_bytes = 0;
    status = cudaMalloc(&ptr, size);
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    LATENT_FAIL("cuda out of memory: asked for ", nbytes, " bytes (", size,
                " rounded); this allocator holds ", stats_.in_use_bytes, " bytes in use and ",
                stats_.cached_bytes, " cached; the device reports ", free_bytes, " of ",
                total_bytes, " bytes free (", cudaGetErrorString(status), ")");
  }
  ++stats_.device_allocations;
  stats_.in_use_bytes += size;
  live_[ptr] = {size, stream};
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) noexcept {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(ptr);
  if (it == live_.end()) {
    std::fprintf(stderr, "latent: CachingAllocator::deallocate of an unknown pointer %p\n", ptr);
    return;
  }
  const Block block = it->second;
  live_.erase(it);
  stats_.in_use_bytes -= block.size;
  stats_.cached_bytes += block.size;
  cache_.emplace(std::make_pair(block.stream, block.size), ptr);
}

void CachingAllocator::release_cache() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [key, p] : cache_) cudaFree(p);
  cache_.clear();
  stats_.cached_bytes = 0;
}

void CachingAllocator::release_stream(Stream stream) noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    if (it->first.first == stream) {
      cudaFree(it->second);
      stats_.cached_bytes -= it->first.second;
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

}  // namespace latent::cuda
