#include "simt/block_runner.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <new>

#include "latent/error.h"

namespace latent::simt::detail {

using latent::detail::concat;

namespace {

constexpr std::size_t kGuardBytes = 1024;
constexpr unsigned char kPoisonByte = 0xff;  // fresh dynamic shared memory: NaN, -1
constexpr unsigned char kGuardByte = 0xcd;   // the guard after it
constexpr std::uint64_t kUndefined = ~std::uint64_t{0};  // a shuffle from an absent lane

thread_local constinit BlockRunner* t_active LATENT_SIMT_TLS = nullptr;
thread_local constinit Lane* t_lane LATENT_SIMT_TLS = nullptr;

std::string triple(const uint3& v) {
  return concat("(", v.x, ",", v.y, ",", v.z, ")");
}

// A source location relative to the repository when it lies in one of its folders.
std::string where_text(const std::source_location& where) {
  std::string file = where.file_name();
  for (const char* root : {"/kernels/", "/tests/", "/src/", "/bench/"}) {
    const auto at = file.rfind(root);
    if (at != std::string::npos) {
      file = file.substr(at + 1);
      break;
    }
  }
  return concat(file, ":", where.line());
}

bool same_place(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         std::strcmp(a.file_name(), b.file_name()) == 0;
}

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::sync: return "__syncwarp";
    case WarpOp::shfl_idx: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
    case WarpOp::reduce_add: return "__reduce_add_sync";
    case WarpOp::reduce_min_u:
    case WarpOp::reduce_min_i: return "__reduce_min_sync";
    case WarpOp::reduce_max_u:
    case WarpOp::reduce_max_i: return "__reduce_max_sync";
  }
  return "a warp primitive";
}

const char* barrier_name(BarrierKind kind) {
  switch (kind) {
    case BarrierKind::sync: return "__syncthreads()";
    case BarrierKind::count: return "__syncthreads_count()";
    case BarrierKind::all: return "__syncthreads_and()";
    case BarrierKind::any: return "__syncthreads_or()";
  }
  return "__syncthreads()";
}

bool is_shuffle(WarpOp op) {
  return op == WarpOp::shfl_idx || op == WarpOp::shfl_up || op == WarpOp::shfl_down ||
         op == WarpOp::shfl_xor;
}

// The source lane of a shuffle, as PTX's shfl.sync defines it: CUDA passes
// c = ((32 - width) << 8) | clamp, clamp = 0 for .up and 31 otherwise; a lane whose source
// falls outside its width-segment reads its own value.
unsigned shuffle_source(WarpOp op, unsigned lane, int param, int width) {
  const unsigned seg_mask = static_cast<unsigned>(32 - width) & 31u;
  const unsigned clamp = op == WarpOp::shfl_up ? 0u : 31u;
  const unsigned min_lane = lane & seg_mask;
  const int max_lane = static_cast<int>(min_lane | (clamp & ~seg_mask));
  const unsigned b = static_cast<unsigned>(param) & 31u;
  int j = 0;
  bool in_range = false;
  switch (op) {
    case WarpOp::shfl_up:
      j = static_cast<int>(lane) - static_cast<int>(b);
      in_range = j >= max_lane;
      break;
    case WarpOp::shfl_down:
      j = static_cast<int>(lane + b);
      in_range = j <= max_lane;
      break;
    case WarpOp::shfl_xor:
      j = static_cast<int>(lane ^ b);
      in_range = j <= max_lane;
      break;
    default:  // shfl_idx
      j = static_cast<int>(min_lane | (b & ~seg_mask));
      in_range = j <= max_lane;
      break;
  }
  return in_range ? static_cast<unsigned>(j) : lane;
}

}  // namespace

void BlockRunner::AlignedDelete::operator()(std::byte* p) const {
  ::operator delete[](p, std::align_val_t{128});
}

BlockRunner::BlockRunner()
    : stacks_(fiber_stack_bytes()), static_shared_(static_shared_ranges_for_this_thread()) {}

BlockRunner& BlockRunner::for_this_thread() {
  thread_local BlockRunner runner;
  return runner;
}

BlockRunner* BlockRunner::active() { return t_active; }

BlockCounts BlockRunner::run(const KernelLaunch& launch, uint3 block_index) {
  prepare(launch, block_index);
  t_active = this;
#if LATENT_SIMT_TSAN
  tsan_os_ = __tsan_get_current_fiber();
  race_ = false;
  stacks_.hold(true);
  __tsan_release(&block_start_sync_);
#endif
  std::exception_ptr error;
  try {
    execute();
  } catch (...) {
    error = std::current_exception();
  }
  // Outside the handler: unwinding a suspended carrier throws on its own stack.
  release_fibers();
#if LATENT_SIMT_TSAN
  __tsan_acquire(&block_end_sync_);
  stacks_.hold(false);
  stacks_.release_held();
#endif
  t_active = nullptr;
  t_lane = nullptr;
  if (error) std::rethrow_exception(error);
  if (failure_) std::rethrow_exception(failure_);
  if (dynamic_bytes_ > 0) check_guard();
  return counts_;
}

void BlockRunner::prepare(const KernelLaunch& launch, uint3 block_index) {
  launch_ = &launch;
  block_index_ = block_index;
  const dim3 shape = launch.block;
  n_ = shape.x * shape.y * shape.z;
  if (shape.x != lane_shape_.x || shape.y != lane_shape_.y || shape.z != lane_shape_.z) {
    lanes_.clear();
    lanes_.resize(n_);
    for (unsigned i = 0; i < n_; ++i) {
      lanes_[i].id = i;
      lanes_[i].index = uint3{i % shape.x, (i / shape.x) % shape.y, i / (shape.x * shape.y)};
    }
    lane_shape_ = shape;
  }
  for (Lane& lane : lanes_) lane.state = LaneState::not_started;
  lay_out_order(launch);
#if LATENT_SIMT_TSAN
  while (tsan_fibers_.size() < n_) tsan_fibers_.push_back(__tsan_create_fiber(0));
#endif
  next_lane_ = 0;
  failure_ = nullptr;
  counts_ = BlockCounts{1, 0, 0};

  blockIdx = block_index;
  blockDim = shape;
  gridDim = launch.grid;

  dynamic_bytes_ = launch.dynamic_shared_bytes;
  dynamic_ = nullptr;
  if (dynamic_bytes_ > 0) {
    const std::size_t need = dynamic_bytes_ + kGuardBytes;
    if (need > dynamic_capacity_) {
      dynamic_storage_.reset(static_cast<std::byte*>(::operator new[](need, std::align_val_t{128})));
      dynamic_capacity_ = need;
    }
    dynamic_ = dynamic_storage_.get();
    std::memset(dynamic_, kPoisonByte, dynamic_bytes_);
    std::memset(dynamic_ + dynamic_bytes_, kGuardByte, kGuardBytes);
  }
  // Static shared memory starts out poisoned too (undefined on a GPU).
  for (const StaticSharedRange& r : static_shared_) std::memset(r.begin, kPoisonByte, r.bytes);
}

void BlockRunner::lay_out_order(const KernelLaunch& launch) {
  auto kind = static_cast<ThreadOrder>(launch.order);
  if (kind == ThreadOrder::rotate) {
    const std::uint64_t b = block_index_.x + static_cast<std::uint64_t>(launch.grid.x) *
                                                 (block_index_.y + static_cast<std::uint64_t>(launch.grid.y) * block_index_.z);
    kind = static_cast<ThreadOrder>((launch.launch_index + b) % 3);
  }
  if (order_.size() == n_ && order_kind_ == static_cast<unsigned>(kind) &&
      (kind != ThreadOrder::shuffle || order_seed_ == launch.order_seed))
    return;
  order_.resize(n_);
  for (unsigned i = 0; i < n_; ++i) order_[i] = kind == ThreadOrder::descending ? n_ - 1 - i : i;
  if (kind == ThreadOrder::shuffle) {
    // Fisher-Yates with splitmix64: the same seed gives the same order on every machine.
    std::uint64_t x = launch.order_seed;
    auto next = [&x] {
      std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      return z ^ (z >> 31);
    };
    for (unsigned i = n_; i > 1; --i) std::swap(order_[i - 1], order_[next() % i]);
  }
  order_kind_ = static_cast<unsigned>(kind);
  order_seed_ = launch.order_seed;
}

// Runs every thread until it finishes or waits, then completes warp operations and
// barriers until the whole block has finished.
void BlockRunner::execute() {
  start_carriers();
  for (;;) {
    check_race();
    if (failure_) return;
    const bool waiting = std::any_of(lanes_.begin(), lanes_.begin() + n_,
                                     [](const Lane& l) { return l.state != LaneState::done; });
    if (!waiting) return;
    if (!complete_warp_ops()) release_barrier();
    for (unsigned k = 0; k < n_ && !failure_; ++k) {
      const unsigned i = order_[k];
      if (lanes_[i].state == LaneState::ready) resume(i);
    }
  }
}

void BlockRunner::start_carriers() {
  while (next_lane_ < n_ && !failure_) {
    ++counts_.fibers;
    boost::context::fiber carrier(std::allocator_arg, PooledStackAllocator{&stacks_},
                                  [this](boost::context::fiber&& scheduler) {
#if LATENT_SIMT_ASAN
                                    __sanitizer_finish_switch_fiber(nullptr, &os_stack_bottom_,
                                                                    &os_stack_size_);
#endif
                                    scheduler_ = std::move(scheduler);
#if LATENT_SIMT_ASAN
                                    try {
                                      carrier_loop();
                                    } catch (const boost::context::detail::forced_unwind&) {
                                      // Unwound by release_fibers: announce the way back to
                                      // its stack, as the normal exit below does.
                                      __sanitizer_start_switch_fiber(nullptr, os_stack_bottom_,
                                                                     os_stack_size_);
                                      throw;
                                    }
#else
                                    carrier_loop();
#endif
#if LATENT_SIMT_ASAN
                                    __sanitizer_start_switch_fiber(nullptr, os_stack_bottom_,
                                                                   os_stack_size_);
#endif
                                    return std::move(scheduler_);
                                  });
    next_stack_ = stacks_.last_allocated();
    before_switch_to(next_stack_);
    carrier = std::move(carrier).resume();
    after_switch_back();
    if (carrier) lanes_[suspended_lane_].fiber = std::move(carrier);
  }
}

// The body of a carrier fiber: start threads one after another until one of them waits
// (then this carrier stays with it) or none is left.
void BlockRunner::carrier_loop() {
  const boost::context::stack_context my_stack = next_stack_;
  while (next_lane_ < n_ && !failure_) {
    Lane& lane = lanes_[order_[next_lane_++]];
    lane.state = LaneState::running;
    lane.stack = my_stack;
    t_lane = &lane;
    threadIdx = lane.index;
    ++counts_.threads;
#if LATENT_SIMT_TSAN
    // The name is written into the runner, not onto this stack: snprintf is intercepted, so
    // TSan records its write (made before the switch to the thread's fiber) as the OS
    // thread's, and a later frame of the CUDA thread reading those stack bytes would be
    // reported as a race with it.
    std::snprintf(tsan_fiber_name_, sizeof tsan_fiber_name_,
                  "thread (%u,%u,%u) of block (%u,%u,%u)", lane.index.x, lane.index.y,
                  lane.index.z, block_index_.x, block_index_.y, block_index_.z);
    __tsan_set_fiber_name(tsan_fibers_[lane.id], tsan_fiber_name_);
    enter_lane(lane);
    __tsan_acquire(&block_start_sync_);
#endif
    try {
      launch_->invoke(launch_->closure);
    } catch (const boost::context::detail::forced_unwind&) {
      throw;  // the runner is unwinding this carrier: let Boost.Context finish it
    } catch (const std::exception& e) {
      failure_ = std::make_exception_ptr(
          Error(concat("SIMT kernel \"", launch_->name, "\" failed in block ",
                       triple(block_index_), ", thread ", triple(lane.index), ": ", e.what())));
    } catch (...) {
      failure_ = std::make_exception_ptr(
          Error(concat("SIMT kernel \"", launch_->name, "\" failed in block ",
                       triple(block_index_), ", thread ", triple(lane.index),
                       ": it threw an exception that is not a std::exception")));
    }
#if LATENT_SIMT_TSAN
    __tsan_release(&block_end_sync_);
    leave_lane(lane);
#endif
    lane.state = LaneState::done;
    // Under ThreadSanitizer every thread runs on a fiber (and a stack) of its own.
    if (LATENT_SIMT_TSAN) break;
  }
}

void BlockRunner::resume(unsigned i) {
  Lane& lane = lanes_[i];
  lane.state = LaneState::running;
  t_lane = &lane;
  threadIdx = lane.index;
  before_switch_to(lane.stack);
  boost::context::fiber carrier = std::move(lane.fiber).resume();
  after_switch_back();
  if (carrier) lanes_[suspended_lane_].fiber = std::move(carrier);
}

void BlockRunner::suspend(Lane& me) {
  suspended_lane_ = me.id;
  leave_lane(me);
#if LATENT_SIMT_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, os_stack_bottom_, os_stack_size_);
#endif
#if LATENT_SIMT_ASAN
  try {
    scheduler_ = std::move(scheduler_).resume();
  } catch (const boost::context::detail::forced_unwind&) {
    // release_fibers unwinds this suspended thread: it arrives here on this stack, by an
    // exception instead of a return.
    __sanitizer_finish_switch_fiber(fake_stack, &os_stack_bottom_, &os_stack_size_);
    throw;
  }
  __sanitizer_finish_switch_fiber(fake_stack, &os_stack_bottom_, &os_stack_size_);
#else
  scheduler_ = std::move(scheduler_).resume();
#endif
  enter_lane(me);
  // Back: the runner has set threadIdx and t_lane for this thread again.
}

void BlockRunner::enter_lane([[maybe_unused]] Lane& lane) {
#if LATENT_SIMT_TSAN
  __tsan_switch_to_fiber(tsan_fibers_[lane.id], 1);  // 1: no synchronization
  in_lane_ = true;
#endif
}

void BlockRunner::leave_lane([[maybe_unused]] Lane& lane) {
#if LATENT_SIMT_TSAN
  in_lane_ = false;
  __tsan_switch_to_fiber(tsan_os_, 1);
#endif
}

void BlockRunner::before_switch_to([[maybe_unused]] const boost::context::stack_context& stack) {
#if LATENT_SIMT_ASAN
  __sanitizer_start_switch_fiber(&runner_fake_stack_, static_cast<char*>(stack.sp) - stack.size,
                                 stack.size);
#endif
}

void BlockRunner::after_switch_back() {
#if LATENT_SIMT_ASAN
  __sanitizer_finish_switch_fiber(runner_fake_stack_, nullptr, nullptr);
#endif
}

int BlockRunner::barrier(BarrierKind kind, int predicate, std::source_location where) {
  Lane& me = *t_lane;
  me.state = LaneState::at_barrier;
  me.barrier = kind;
  me.param = predicate != 0;
  me.where = where;
  suspend(me);
  switch (kind) {
    case BarrierKind::count: return barrier_count_;
    case BarrierKind::all: return barrier_count_ == static_cast<int>(n_);
    case BarrierKind::any: return barrier_count_ != 0;
    case BarrierKind::sync: break;
  }
  return 0;
}

std::uint64_t BlockRunner::warp_exchange(WarpOp op, unsigned mask, std::uint64_t value,
                                         int param, int width, std::source_location where) {
  Lane& me = *t_lane;
  const unsigned lane = me.id % 32;
  if (((mask >> lane) & 1u) == 0)
    LATENT_FAIL(op_name(op), " at ", where_text(where), ": its mask 0x", std::hex, mask,
                std::dec, " does not name the calling lane ", lane,
                " (every caller must be in the mask)");
  const unsigned base = me.id / 32 * 32;
  const unsigned lanes_in_warp = std::min(32u, n_ - base);
  if (lanes_in_warp < 32 && (mask >> lanes_in_warp) != 0)
    LATENT_FAIL(op_name(op), " at ", where_text(where), ": its mask 0x", std::hex, mask,
                std::dec, " names lane ", std::countr_zero(mask >> lanes_in_warp) + lanes_in_warp,
                ", which does not exist: this warp of a block of ", n_, " threads has lanes 0-",
                lanes_in_warp - 1, " (undefined on a GPU: a mask names only lanes that exist and make the call)");
  if (is_shuffle(op) && (width < 1 || width > 32 || (width & (width - 1)) != 0))
    LATENT_FAIL(op_name(op), " at ", where_text(where), ": width ", width,
                " is not a power of two from 1 to 32");
  me.state = LaneState::at_warp_op;
  me.op = op;
  me.mask = mask;
  me.value = value;
  me.param = param;
  me.width = width;
  me.where = where;
  suspend(me);
  return me.value;
}

// Completes every warp operation whose named, non-exited lanes have all arrived with the
// same operation and mask. Returns whether any did.
bool BlockRunner::complete_warp_ops() {
  bool progress = false;
  for (unsigned base = 0; base < n_; base += 32) {
    const unsigned end = std::min(n_, base + 32);
    unsigned live = 0;
    unsigned waiting = 0;
    for (unsigned i = base; i < end; ++i) {
      const LaneState s = lanes_[i].state;
      if (s != LaneState::done) live |= 1u << (i - base);
      if (s == LaneState::at_warp_op) waiting |= 1u << (i - base);
    }
    while (waiting != 0) {
      const Lane& a = lanes_[base + std::countr_zero(waiting)];
      const unsigned present = end - base == 32 ? ~0u : (1u << (end - base)) - 1;
      const unsigned exited = a.mask & present & ~live;
      if (exited != 0) {
        const Lane& gone = lanes_[base + std::countr_zero(exited)];
        fail(concat("thread ", triple(a.index), " calls ", op_name(a.op), " at ",
                    where_text(a.where), " with mask 0x", std::hex, a.mask, std::dec,
                    ", which names lane ", gone.id % 32, " (thread ", triple(gone.index),
                    "), but that thread has exited (undefined on a GPU: the mask must name ",
                    "only threads that make the call)"));
      }
      const unsigned group = a.mask & live;
      bool arrived = true;
      for (unsigned g = group; g != 0; g &= g - 1) {
        const Lane& b = lanes_[base + std::countr_zero(g)];
        if (b.state != LaneState::at_warp_op) {
          arrived = false;
        } else if (b.op != a.op || b.mask != a.mask) {
          fail(concat("the lanes of a warp disagree: thread ", triple(a.index), " calls ",
                      op_name(a.op), " with mask 0x", std::hex, a.mask, std::dec, " at ",
                      where_text(a.where), " while thread ", triple(b.index), ", named in it, calls ",
                      op_name(b.op), " with mask 0x", std::hex, b.mask, std::dec, " at ",
                      where_text(b.where), " (all named lanes must make the same call)"));
        }
      }
      waiting &= ~group;
      if (arrived) {
        complete_warp_group(base, group, a.op);
        progress = true;
      }
    }
  }
  return progress;
}

void BlockRunner::complete_warp_group(unsigned base, unsigned group, WarpOp op) {
  std::uint64_t result[32];
  unsigned ballot = 0;
  std::uint32_t sum = 0;
  std::uint32_t min_u = UINT32_MAX, max_u = 0;
  std::int32_t min_i = INT32_MAX, max_i = INT32_MIN;
  for (unsigned g = group; g != 0; g &= g - 1) {
    const unsigned l = std::countr_zero(g);
    const Lane& lane = lanes_[base + l];
    if (lane.param != 0) ballot |= 1u << l;
    const auto v = static_cast<std::uint32_t>(lane.value);
    sum += v;
    min_u = std::min(min_u, v);
    max_u = std::max(max_u, v);
    min_i = std::min(min_i, static_cast<std::int32_t>(v));
    max_i = std::max(max_i, static_cast<std::int32_t>(v));
  }
  for (unsigned g = group; g != 0; g &= g - 1) {
    const unsigned l = std::countr_zero(g);
    const Lane& lane = lanes_[base + l];
    std::uint64_t r = 0;
    switch (op) {
      case WarpOp::sync: break;
      case WarpOp::shfl_idx:
      case WarpOp::shfl_up:
      case WarpOp::shfl_down:
      case WarpOp::shfl_xor: {
        const unsigned j = shuffle_source(op, l, lane.param, lane.width);
        r = ((group >> j) & 1u) != 0 ? lanes_[base + j].value : kUndefined;
        break;
      }
      case WarpOp::ballot: r = ballot; break;
      case WarpOp::any: r = ballot != 0; break;
      case WarpOp::all: r = ballot == group; break;
      case WarpOp::reduce_add: r = sum; break;
      case WarpOp::reduce_min_u: r = min_u; break;
      case WarpOp::reduce_max_u: r = max_u; break;
      case WarpOp::reduce_min_i: r = static_cast<std::uint32_t>(min_i); break;
      case WarpOp::reduce_max_i: r = static_cast<std::uint32_t>(max_i); break;
    }
    result[l] = r;
  }
  for (unsigned g = group; g != 0; g &= g - 1) {
    const unsigned l = std::countr_zero(g);
    lanes_[base + l].value = result[l];
    lanes_[base + l].state = LaneState::ready;
  }
  synchronize(base, group);
}

// Nothing else can move: every thread that has not finished waits at the block barrier,
// or the block cannot go on.
void BlockRunner::release_barrier() {
  const Lane* first_waiting = nullptr;
  const Lane* first_exited = nullptr;
  unsigned waiting = 0;
  for (unsigned i = 0; i < n_; ++i) {
    const Lane& lane = lanes_[i];
    if (lane.state == LaneState::at_warp_op) {
      // Some lane it names is not there and never will be: it waits at the barrier.
      const unsigned base = i / 32 * 32;
      for (unsigned g = lane.mask; g != 0; g &= g - 1) {
        const unsigned j = base + std::countr_zero(g);
        if (j < n_ && lanes_[j].state == LaneState::at_barrier)
          fail(concat("deadlock: thread ", triple(lane.index), " waits at ", op_name(lane.op),
                      " (", where_text(lane.where), ") for thread ", triple(lanes_[j].index),
                      " of its warp, which waits at ", barrier_name(lanes_[j].barrier), " (",
                      where_text(lanes_[j].where), ")"));
      }
      fail(concat("thread ", triple(lane.index), " waits forever at ", op_name(lane.op), " (",
                  where_text(lane.where), ")"));
    }
    if (lane.state == LaneState::at_barrier) {
      ++waiting;
      if (first_waiting == nullptr) first_waiting = &lane;
    } else if (lane.state == LaneState::done && first_exited == nullptr) {
      first_exited = &lane;
    }
  }
  if (first_exited != nullptr)
    fail(concat("thread ", triple(first_exited->index), " exited without reaching ",
                barrier_name(first_waiting->barrier), " at ", where_text(first_waiting->where),
                ", where ", waiting, " other thread(s) of the block wait: every thread of a block ",
                "must reach every barrier"));
  barrier_count_ = 0;
  for (unsigned i = 0; i < n_; ++i) {
    const Lane& lane = lanes_[i];
    if (!same_place(lane.where, first_waiting->where) || lane.barrier != first_waiting->barrier)
      fail(concat("the threads of the block wait at different barriers: thread ",
                  triple(first_waiting->index), " at ", barrier_name(first_waiting->barrier),
                  " (", where_text(first_waiting->where), "), thread ", triple(lane.index),
                  " at ", barrier_name(lane.barrier), " (", where_text(lane.where), ")"));
    barrier_count_ += lane.param;
  }
  for (unsigned i = 0; i < n_; ++i) lanes_[i].state = LaneState::ready;
  synchronize(0, 0);  // the whole block
}

// Under TSan: the happens-before edges of a completed barrier or warp operation, among its
// participants only (group 0: the whole block), made before any of them resumes: each
// releases on a sync address fresh for this completion, then each acquires it.
void BlockRunner::synchronize([[maybe_unused]] unsigned base, [[maybe_unused]] unsigned group) {
#if LATENT_SIMT_TSAN
  if (sync_pool_.empty()) sync_pool_.resize(1 << 16);
  char* at = &sync_pool_[sync_next_++ % sync_pool_.size()];
  for (int pass = 0; pass < 2; ++pass) {
    auto one = [&](unsigned id) {
      __tsan_switch_to_fiber(tsan_fibers_[id], 1);
      if (pass == 0) __tsan_release(at);
      else __tsan_acquire(at);
    };
    if (group == 0) {  // a block barrier: every thread
      for (unsigned i = 0; i < n_; ++i) one(i);
    } else {
      for (unsigned g = group; g != 0; g &= g - 1) one(base + std::countr_zero(g));
    }
  }
  __tsan_switch_to_fiber(tsan_os_, 1);
#endif
}

void BlockRunner::release_fibers() {
  for (unsigned i = 0; i < n_; ++i) {
    Lane& lane = lanes_[i];
    if (lane.fiber) {
      t_lane = &lane;
      threadIdx = lane.index;
      // The unwinding runs the thread's own frames: under TSan, on its own fiber.
      enter_lane(lane);
      // Under ASan the unwinding is a switch to the carrier's stack and back (suspend and
      // start_carriers announce their halves).
      before_switch_to(lane.stack);
      lane.fiber = boost::context::fiber{};  // unwinds the carrier's stack
      after_switch_back();
#if LATENT_SIMT_TSAN
      __tsan_release(&block_end_sync_);
#endif
      leave_lane(lane);
    }
  }
}

void BlockRunner::check_guard() const {
  for (std::size_t i = 0; i < kGuardBytes; ++i) {
    if (static_cast<unsigned char>(dynamic_[dynamic_bytes_ + i]) != kGuardByte)
      fail(concat("a thread wrote past the end of the block's ", dynamic_bytes_,
                  " bytes of dynamic shared memory (first changed byte: ", i,
                  " after the end), through a raw pointer, which is not bounds-checked"));
  }
}

#if LATENT_SIMT_TSAN
BlockRunner::~BlockRunner() {
  for (void* f : tsan_fibers_) __tsan_destroy_fiber(f);
}

bool BlockRunner::take_race_report(void* report) {
  if (!in_lane_) return false;
  const char* description = nullptr;
  int count = 0, stacks = 0, mops = 0, locs = 0, mutexes = 0, threads = 0, unique_tids = 0;
  void* sleep = nullptr;
  if (__tsan_get_report_data(report, &description, &count, &stacks, &mops, &locs, &mutexes,
                             &threads, &unique_tids, &sleep, 1) == 0 ||
      description == nullptr || std::strcmp(description, "data-race") != 0 || mops < 2)
    return false;
  if (race_) return true;  // the first race of the block is the one reported
  for (int m = 0; m < 2; ++m) {
    RaceAccess& a = race_access_[m];
    a = RaceAccess{};
    int write = 0, atomic = 0;
    __tsan_get_report_mop(report, m, &a.tid, &a.addr, &a.size, &write, &atomic, a.pcs, 8);
    a.write = write != 0;
    a.atomic = atomic != 0;
    for (int t = 0; t < threads; ++t) {
      int tid = -1, running = 0, parent = 0;
      std::uint64_t os_id = 0;
      const char* name = nullptr;
      void* trace[1];
      if (__tsan_get_report_thread(report, t, &tid, &os_id, &running, &name, &parent, trace, 1) &&
          tid == a.tid) {
        if (name != nullptr && *name != 0)
          std::snprintf(a.thread_name, sizeof a.thread_name, "%s", name);
        else
          std::snprintf(a.thread_name, sizeof a.thread_name, "OS thread T%d", tid);
      }
    }
    if (a.thread_name[0] == 0)
      std::snprintf(a.thread_name, sizeof a.thread_name, "TSan thread T%d", a.tid);
  }
  race_ = true;
  return true;
}

namespace {

// The first frame of an access's stack that lies outside the executor and the standard
// library: the kernel's line.
std::string kernel_line(void* const* pcs) {
  std::string fallback;
  for (int i = 0; i < 8 && pcs[i] != nullptr; ++i) {
    char buf[512];
    buf[0] = 0;
    __sanitizer_symbolize_pc(pcs[i], "%s:%l", buf, sizeof buf);
    std::string text = buf;
    if (fallback.empty()) fallback = text;
    if (text.find("/src/simt/") != std::string::npos || text.find("/usr/") == 0) continue;
    for (const char* root : {"/kernels/", "/tests/", "/src/", "/bench/"}) {
      const auto at = text.rfind(root);
      if (at != std::string::npos) return text.substr(at + 1);
    }
    return text;
  }
  return fallback.empty() ? std::string("an unknown line") : fallback;
}

}  // namespace
#endif

void BlockRunner::check_race() const {
#if LATENT_SIMT_TSAN
  if (!race_) return;
  const RaceAccess& now = race_access_[0];
  const RaceAccess& before = race_access_[1];
  const auto* at = static_cast<const std::byte*>(now.addr);
  bool shared = dynamic_ != nullptr && at >= dynamic_ && at < dynamic_ + dynamic_bytes_;
  for (const StaticSharedRange& r : static_shared_)
    shared = shared || (at >= r.begin && at < r.begin + r.bytes);
  auto verb = [](const RaceAccess& a, bool past) {
    const char* v = a.write ? (past ? "wrote" : "writes") : (past ? "read" : "reads");
    return concat(a.atomic ? "atomically " : "", v, " ", a.size, " byte(s)");
  };
  fail(concat("data race on ", shared ? "shared" : "global", " memory at ", now.addr, ": ",
              now.thread_name, " ", verb(now, false), " at ", kernel_line(now.pcs), ", and ",
              before.thread_name, " ", verb(before, true), " there at ", kernel_line(before.pcs),
              ", with no __syncthreads() or warp primitive between them (ThreadSanitizer)"));
#endif
}

void BlockRunner::fail(const std::string& what) const {
  throw Error(concat("SIMT kernel \"", launch_->name, "\", block ", triple(block_index_), ": ",
                     what));
}

}  // namespace latent::simt::detail

#if LATENT_SIMT_TSAN
// ThreadSanitizer's hook for every report (a weak function of its runtime): a race found
// while a CUDA thread of a SIMT block runs becomes that block's latent::Error instead.
namespace __tsan {
struct ReportDesc;
bool OnReport(const ReportDesc* rep, bool suppressed);
}  // namespace __tsan

bool __tsan::OnReport(const ReportDesc* rep, bool suppressed) {
  if (suppressed) return true;
  latent::simt::detail::BlockRunner* runner = latent::simt::detail::BlockRunner::active();
  return runner != nullptr &&
         runner->take_race_report(const_cast<void*>(static_cast<const void*>(rep)));
}
#endif
