#include "simt/fiber_stack.h"

#include <sys/mman.h>
#include <unistd.h>

#include "latent/error.h"
#include "simt/sanitizer.h"

#if LATENT_SIMT_ASAN
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, std::size_t size);
#endif

namespace latent::simt::detail {

FiberStackPool::FiberStackPool(std::size_t usable_bytes)
    : page_bytes_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {
  usable_bytes_ = (usable_bytes + page_bytes_ - 1) / page_bytes_ * page_bytes_;
}

FiberStackPool::~FiberStackPool() {
  for (void* mapping : mappings_) ::munmap(mapping, usable_bytes_ + page_bytes_);
}

boost::context::stack_context FiberStackPool::allocate() {
  if (!free_.empty()) {
    const boost::context::stack_context stack = free_.back();
    free_.pop_back();
#if LATENT_SIMT_ASAN
    // A reused stack may still carry the redzones of frames its last fiber left by a switch
    // or an unwind ASan did not see return: a fresh fiber starts on clean shadow.
    __asan_unpoison_memory_region(static_cast<char*>(stack.sp) - stack.size, stack.size);
#endif
    last_ = stack;
    return stack;
  }
  const std::size_t total = usable_bytes_ + page_bytes_;
  void* mapping = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  LATENT_CHECK(mapping != MAP_FAILED, "SIMT: cannot map a fiber stack of ", total,
               " bytes (", mappings_.size(), " stacks mapped on this OS thread)");
  // Stacks grow down: the guard page is the lowest one.
  ::mprotect(mapping, page_bytes_, PROT_NONE);
  mappings_.push_back(mapping);
  free_.reserve(mappings_.size());  // so that deallocate never allocates
  held_.reserve(mappings_.size());
  // Stagger the stack tops by a cache line per stack ("colouring"): identical page offsets
  // would put the hot top of every stack in the same L1 sets and thrash them.
  const std::size_t colour = (mappings_.size() - 1) % 64 * 64;
  boost::context::stack_context stack;
  stack.size = usable_bytes_ - colour;
  stack.sp = static_cast<char*>(mapping) + total - colour;
#if LATENT_SIMT_ASAN
  // The range may have held another OS thread's stacks, unmapped with their shadow poisoned.
  __asan_unpoison_memory_region(static_cast<char*>(stack.sp) - stack.size, stack.size);
#endif
  last_ = stack;
  return stack;
}

void FiberStackPool::deallocate(boost::context::stack_context& stack) noexcept {
  (hold_ ? held_ : free_).push_back(stack);
}

void FiberStackPool::release_held() noexcept {
  for (const boost::context::stack_context& s : held_) free_.push_back(s);
  held_.clear();
}

}  // namespace latent::simt::detail
