// Fiber stacks for the SIMT executor, recycled per OS thread.
//
// A block of 1024 CUDA threads in fiber mode needs 1024 stacks at once; mapping them anew
// for every block would cost more than most kernels. Each OS thread keeps the stacks it has
// mapped and hands them out again (last freed, first reused, so a kernel whose threads
// finish one after another keeps running on the same warm stack). Every stack has an
// inaccessible guard page below it: a kernel that overflows its fiber stack faults at
// once instead of corrupting its neighbour.
#pragma once

#include <cstddef>
#include <vector>

#include <boost/context/stack_context.hpp>

namespace latent::simt::detail {

class FiberStackPool {
 public:
  explicit FiberStackPool(std::size_t usable_bytes);
  ~FiberStackPool();
  FiberStackPool(const FiberStackPool&) = delete;
  FiberStackPool& operator=(const FiberStackPool&) = delete;

  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;

  std::size_t mapped_stacks() const { return mappings_.size(); }
  // The stack the last allocate() handed out.
  const boost::context::stack_context& last_allocated() const { return last_; }
  // While held, freed stacks are kept aside until release_held(): under ThreadSanitizer
  // every CUDA thread of a block gets a stack of its own, so that two threads' frames never
  // share addresses (which the race detector would take for a race between them).
  void hold(bool on) { hold_ = on; }
  void release_held() noexcept;

 private:
  std::size_t usable_bytes_;
  std::size_t page_bytes_;
  std::vector<boost::context::stack_context> free_;
  std::vector<boost::context::stack_context> held_;
  boost::context::stack_context last_{};
  bool hold_ = false;
  std::vector<void*> mappings_;
};

// The StackAllocator that boost::context::fiber takes, drawing from a pool.
struct PooledStackAllocator {
  FiberStackPool* pool;
  boost::context::stack_context allocate() { return pool->allocate(); }
  void deallocate(boost::context::stack_context& stack) noexcept { pool->deallocate(stack); }
};

}  // namespace latent::simt::detail
