// The SIMT executor under ThreadSanitizer and AddressSanitizer (tools/test --sanitize,
// docs/simt.md "The executor as a sanitizer"). Empty in an ordinary build.
//
// ThreadSanitizer: every CUDA thread of a block is a TSan fiber of its own, and the
// executor switches TSan's notion of the running thread with every switch between CUDA
// threads, without synchronizing (__tsan_switch_to_fiber(..., 1)). The only happens-before
// edges between the CUDA threads of a block are the ones CUDA gives: a __syncthreads()
// (every thread releases before it waits and acquires after), a warp primitive (among the
// lanes of the warp) and the start and the end of the block. So a write by one thread and
// an access to the same bytes by another with no barrier between them is a data race to
// TSan; the executor turns its report into a latent::Error naming the kernel, the block,
// the address, both threads and both source lines. The executor's own sources are compiled
// without TSan instrumentation (its bookkeeping would otherwise link every thread to the
// scheduler and hide the races).
//
// AddressSanitizer: the fiber switches are announced with __sanitizer_start_switch_fiber /
// __sanitizer_finish_switch_fiber, so that ASan knows which stack runs.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_THREAD__) || defined(LATENT_SANITIZE_THREAD)
#define LATENT_SIMT_TSAN 1
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_set_fiber_name(void* fiber, const char* name);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
int __tsan_get_report_data(void* report, const char** description, int* count,
                           int* stack_count, int* mop_count, int* loc_count, int* mutex_count,
                           int* thread_count, int* unique_tid_count, void** sleep_trace,
                           std::uintptr_t trace_size);
int __tsan_get_report_mop(void* report, std::uintptr_t idx, int* tid, void** addr, int* size,
                          int* write, int* atomic, void** trace, std::uintptr_t trace_size);
int __tsan_get_report_thread(void* report, std::uintptr_t idx, int* tid, std::uint64_t* os_id,
                             int* running, const char** name, int* parent_tid, void** trace,
                             std::uintptr_t trace_size);
}
#else
#define LATENT_SIMT_TSAN 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#define LATENT_SIMT_ASAN 1
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                     std::size_t* size_old);
}
#else
#define LATENT_SIMT_ASAN 0
#endif

#if LATENT_SIMT_TSAN || LATENT_SIMT_ASAN
extern "C" int __sanitizer_symbolize_pc(void* pc, const char* fmt, char* out_buf,
                                        std::size_t out_buf_size);
#endif

namespace latent::simt {
// Whether this build detects races between the CUDA threads of a block (ThreadSanitizer).
constexpr bool kDetectsRaces = LATENT_SIMT_TSAN != 0;
}  // namespace latent::simt
