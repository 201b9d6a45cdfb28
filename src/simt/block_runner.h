// One block of a SIMT launch, run start to finish on the calling OS thread.
//
// The CUDA threads of a block run on *carrier* fibers. A carrier takes the next thread that
// has not started yet, calls the kernel for it as a plain function call, and when the call
// returns takes the next one, so a block whose threads never wait runs on a single fiber:
// a plain loop. When a thread waits (at __syncthreads or a warp primitive) it suspends its
// carrier, which from then on belongs to that thread alone, and the runner starts a new
// carrier for the threads after it. A block that synchronizes thus ends up with one fiber
// per thread, a block that does not with one fiber in all, and no guess is ever needed.
//
// Once every thread has either finished or is waiting, the runner completes what can be
// completed: a warp operation whose named lanes have all arrived, else the block barrier
// when every thread waits at it. Anything else is an error (a barrier that some thread
// exited without reaching, threads at different barriers, lanes that disagree on a warp
// operation, a warp operation waiting on a lane that waits at the barrier).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <source_location>
#include <string>
#include <vector>

#include <boost/context/fiber.hpp>

#include "simt/fiber_stack.h"
#include "simt/launch.h"
#include "simt/sanitizer.h"
#include "simt/static_shared.h"
#include "simt/worker_pool.h"

namespace latent::simt::detail {

enum class LaneState : std::uint8_t { not_started, running, ready, at_barrier, at_warp_op, done };
enum class BarrierKind : std::uint8_t { sync, count, all, any };

// One CUDA thread of the running block.
struct Lane {
  uint3 index{};
  unsigned id = 0;  // linear index in the block: x + y·Dx + z·Dx·Dy
  LaneState state = LaneState::not_started;
  // What the thread waits at, and its operands (a warp operation's result comes back in
  // `value`).
  BarrierKind barrier = BarrierKind::sync;
  WarpOp op = WarpOp::sync;
  unsigned mask = 0;
  int param = 0;
  int width = 32;
  std::uint64_t value = 0;
  std::source_location where;
  // The suspended carrier this thread waits on (empty unless the thread waits), and its
  // stack (for AddressSanitizer's fiber annotations).
  boost::context::fiber fiber;
  boost::context::stack_context stack{};
};

class BlockRunner {
 public:
  BlockRunner();

  // The runner of this OS thread (created on first use).
  static BlockRunner& for_this_thread();
  // The runner whose block is running on this OS thread, or nullptr outside a kernel.
  static BlockRunner* active();

  // Runs one block; throws latent::Error naming the kernel, block and thread on failure.
  BlockCounts run(const KernelLaunch& launch, uint3 block_index);

  // Called by the primitives of the running CUDA thread.
  int barrier(BarrierKind kind, int predicate, std::source_location where);
  std::uint64_t warp_exchange(WarpOp op, unsigned mask, std::uint64_t value, int param,
                              int width, std::source_location where);
  DynamicSharedBuffer dynamic_shared() const { return {dynamic_, dynamic_bytes_}; }
  const char* kernel_name() const { return launch_->name; }

  // ThreadSanitizer reported a race while a CUDA thread of this block ran: remember it
  // (the block fails at the next switch). Returns whether the report is taken.
  bool take_race_report(void* report);

 private:
  void prepare(const KernelLaunch& launch, uint3 block_index);
  void execute();
  void start_carriers();
  void carrier_loop();
  void resume(unsigned lane);
  void suspend(Lane& me);
  bool complete_warp_ops();
  void complete_warp_group(unsigned base, unsigned group, WarpOp op);
  void release_barrier();
  void release_fibers();
  void check_guard() const;
  void lay_out_order(const KernelLaunch& launch);
  // Sanitizer annotations around every switch (no-ops in an ordinary build).
  void enter_lane(Lane& lane);     // on the lane's fiber, when it starts or resumes
  void leave_lane(Lane& lane);     // on the lane's fiber, before it switches back
  void before_switch_to(const boost::context::stack_context& stack);  // on the runner
  void after_switch_back();                                            // on the runner
  void check_race() const;
  void synchronize(unsigned base, unsigned group);

  std::string describe(const Lane& lane) const;
  [[noreturn]] void fail(const std::string& what) const;

  const KernelLaunch* launch_ = nullptr;
  uint3 block_index_{};
  unsigned n_ = 0;
  dim3 lane_shape_{0, 0, 0};  // the block shape `lanes_` was laid out for
  std::vector<Lane> lanes_;
  // The order threads start and resume in (a permutation of 0..n-1, ThreadOrder) and what
  // it was laid out for.
  std::vector<unsigned> order_;
  unsigned order_kind_ = ~0u;
  std::uint64_t order_seed_ = 0;
  unsigned next_lane_ = 0;       // the next position in order_ a carrier will start
  unsigned suspended_lane_ = 0;  // the thread that last suspended its carrier
  boost::context::fiber scheduler_;  // inside a carrier: the way back to the runner
  FiberStackPool stacks_;
  std::exception_ptr failure_;  // an exception thrown by a CUDA thread, wrapped
  int barrier_count_ = 0;
  BlockCounts counts_;

  // Dynamic shared memory: [dynamic_bytes_ poisoned][kGuardBytes of guard pattern].
  struct AlignedDelete {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte[], AlignedDelete> dynamic_storage_;
  std::size_t dynamic_capacity_ = 0;
  std::byte* dynamic_ = nullptr;
  std::size_t dynamic_bytes_ = 0;

  // Static __shared__ variables of this OS thread, poisoned before every block.
  std::vector<StaticSharedRange> static_shared_;

  // AddressSanitizer: the runner's own stack, learnt at the first switch into a fiber.
  boost::context::stack_context next_stack_{};  // the stack the runner switches to
  const void* os_stack_bottom_ = nullptr;
  std::size_t os_stack_size_ = 0;
  void* runner_fake_stack_ = nullptr;

#if LATENT_SIMT_TSAN
 public:
  ~BlockRunner();

 private:
  std::vector<void*> tsan_fibers_;  // one per linear thread index, reused block after block
  char tsan_fiber_name_[96] = {};  // the name being given to a thread's fiber (see carrier_loop)
  void* tsan_os_ = nullptr;         // the OS thread's own TSan context
  bool in_lane_ = false;
  // Addresses TSan synchronizes on: the block's start and end, each completed barrier.
  char block_start_sync_ = 0, block_end_sync_ = 0;
  std::vector<char> sync_pool_;  // one address per completed barrier or warp operation
  std::size_t sync_next_ = 0;
  struct RaceAccess {
    int tid = -1;
    void* addr = nullptr;
    int size = 0;
    bool write = false, atomic = false;
    void* pcs[8] = {};
    char thread_name[96] = {};
  };
  bool race_ = false;
  RaceAccess race_access_[2];
#endif
};

}  // namespace latent::simt::detail
