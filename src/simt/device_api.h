// The kernel side of the SIMT executor: the part of CUDA that kernels/*.cuh see when they
// are compiled by the host compiler instead of nvcc (kernels include kernels/device.cuh,
// never this file directly). docs/simt.md lists the supported subset and how it runs.
//
// Everything is declared in namespace latent::simt (so that no symbol of liblatent.a can
// clash with another library's) and brought into the global namespace with
// using-declarations, where kernel code expects CUDA's names.
//
//   qualifiers      __global__ __device__ __host__ __forceinline__ __shared__ ... (macros)
//   built-ins       threadIdx blockIdx blockDim gridDim (per OS thread, set by the
//                   executor before it resumes a CUDA thread), warpSize
//   block           __syncthreads, __syncthreads_count/_and/_or
//   warp            __syncwarp, __shfl_sync, __shfl_up/down/xor_sync, __ballot_sync,
//                   __any_sync, __all_sync, __reduce_add/min/max_sync
//   memory          atomics (std::atomic_ref), fences, __ldg, LATENT_DYNAMIC_SHARED
//   math            the float intrinsics (__expf, __logf, __fdividef, rsqrtf, ...), bit casts
#pragma once

#include <math.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

// Lets a kernel file tell the SIMT build apart from both nvcc passes.
#define LATENT_SIMT 1

// `#pragma unroll` is a hint nvcc understands and the host compiler does not; kernels use
// it freely, so the SIMT build should not warn about it. (GCC 13 honours this; GCC 12
// ignores diagnostic pragmas for preprocessor warnings: build with -Wno-unknown-pragmas.)
#pragma GCC diagnostic ignored "-Wunknown-pragmas"

// ---------------------------------------------------------------- qualifiers
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __constant__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one copy per OS thread. The executor runs every block from start
// to finish on one OS thread (its CUDA threads are fibers of that OS thread), so the blocks
// that run at the same time each see their own copy. At block scope `thread_local` implies
// `static`, so `static __shared__` works too. The abi_tag changes only the mangled name
// (it ends in `B13latent_shared`), which is how the executor finds every static shared
// variable in the symbol table and poisons it at the start of each block (static_shared.h).
#define __shared__ thread_local __attribute__((abi_tag("latent_shared")))

// The executor's built-in variables live in thread-local storage with the initial-exec
// model: one %fs-relative load, no call, even in position-independent code.
#define LATENT_SIMT_TLS __attribute__((tls_model("initial-exec")))

namespace latent::simt {

// ---------------------------------------------------------------- vector types
struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

struct __align__(8) int2 { int x, y; };
struct int3 { int x, y, z; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) uint2 { unsigned x, y; };
struct __align__(16) uint4 { unsigned x, y, z, w; };
struct __align__(8) float2 { float x, y; };
struct float3 { float x, y, z; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(16) double2 { double x, y; };

inline int2 make_int2(int x, int y) { return {x, y}; }
inline int3 make_int3(int x, int y, int z) { return {x, y, z}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint3 make_uint3(unsigned x, unsigned y, unsigned z) { return {x, y, z}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float3 make_float3(float x, float y, float z) { return {x, y, z}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

// ---------------------------------------------------------------- built-in variables
// Written by the executor: blockIdx/blockDim/gridDim once per block, threadIdx before
// every switch to a CUDA thread. Kernels only read them.
extern thread_local constinit uint3 threadIdx LATENT_SIMT_TLS;
extern thread_local constinit uint3 blockIdx LATENT_SIMT_TLS;
extern thread_local constinit dim3 blockDim LATENT_SIMT_TLS;
extern thread_local constinit dim3 gridDim LATENT_SIMT_TLS;
constexpr int warpSize = 32;

// ---------------------------------------------------------------- block barrier
// Every barrier records where it was called so that a block whose threads wait at
// different __syncthreads() (undefined on a GPU) is reported with both places.
void __syncthreads(std::source_location where = std::source_location::current());
int __syncthreads_count(int predicate,
                        std::source_location where = std::source_location::current());
int __syncthreads_and(int predicate,
                      std::source_location where = std::source_location::current());
int __syncthreads_or(int predicate,
                     std::source_location where = std::source_location::current());

// ---------------------------------------------------------------- warp primitives
namespace detail {

// The warp operations the executor knows; `warp_exchange` is their one entry point.
enum class WarpOp : std::uint8_t {
  sync,
  shfl_idx,
  shfl_up,
  shfl_down,
  shfl_xor,
  ballot,
  any,
  all,
  reduce_add,
  reduce_min_u,
  reduce_max_u,
  reduce_min_i,
  reduce_max_i,
};

// Suspends the calling CUDA thread until every non-exited lane named in `mask` has made
// the same call, then returns this lane's result as raw bits (shuffles: the value of the
// source lane, or all ones when the source lane did not take part: undefined on a GPU).
std::uint64_t warp_exchange(WarpOp op, unsigned mask, std::uint64_t value, int param,
                            int width, std::source_location where);

template <class T>
std::uint64_t to_bits(T value) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                "SIMT: warp shuffles move trivially copyable values of at most 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  return bits;
}

template <class T>
T from_bits(std::uint64_t bits) {
  T value;
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

}  // namespace detail

inline void __syncwarp(unsigned mask = 0xffffffffu,
                       std::source_location where = std::source_location::current()) {
  detail::warp_exchange(detail::WarpOp::sync, mask, 0, 0, warpSize, where);
}

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
              std::source_location where = std::source_location::current()) {
  return detail::from_bits<T>(detail::warp_exchange(detail::WarpOp::shfl_idx, mask,
                                                    detail::to_bits(var), src_lane, width,
                                                    where));
}

template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                 std::source_location where = std::source_location::current()) {
  return detail::from_bits<T>(detail::warp_exchange(detail::WarpOp::shfl_up, mask,
                                                    detail::to_bits(var),
                                                    static_cast<int>(delta), width, where));
}

template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                   std::source_location where = std::source_location::current()) {
  return detail::from_bits<T>(detail::warp_exchange(detail::WarpOp::shfl_down, mask,
                                                    detail::to_bits(var),
                                                    static_cast<int>(delta), width, where));
}

template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                  std::source_location where = std::source_location::current()) {
  return detail::from_bits<T>(detail::warp_exchange(detail::WarpOp::shfl_xor, mask,
                                                    detail::to_bits(var), lane_mask, width,
                                                    where));
}

inline unsigned __ballot_sync(unsigned mask, int predicate,
                              std::source_location where = std::source_location::current()) {
  return static_cast<unsigned>(
      detail::warp_exchange(detail::WarpOp::ballot, mask, 0, predicate != 0, warpSize, where));
}

inline int __any_sync(unsigned mask, int predicate,
                      std::source_location where = std::source_location::current()) {
  return static_cast<int>(
      detail::warp_exchange(detail::WarpOp::any, mask, 0, predicate != 0, warpSize, where));
}

inline int __all_sync(unsigned mask, int predicate,
                      std::source_location where = std::source_location::current()) {
  return static_cast<int>(
      detail::warp_exchange(detail::WarpOp::all, mask, 0, predicate != 0, warpSize, where));
}

inline unsigned __reduce_add_sync(unsigned mask, unsigned value,
                                  std::source_location where = std::source_location::current()) {
  return static_cast<unsigned>(
      detail::warp_exchange(detail::WarpOp::reduce_add, mask, value, 0, warpSize, where));
}
inline int __reduce_add_sync(unsigned mask, int value,
                             std::source_location where = std::source_location::current()) {
  return static_cast<int>(detail::warp_exchange(
      detail::WarpOp::reduce_add, mask, static_cast<unsigned>(value), 0, warpSize, where));
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned value,
                                  std::source_location where = std::source_location::current()) {
  return static_cast<unsigned>(
      detail::warp_exchange(detail::WarpOp::reduce_min_u, mask, value, 0, warpSize, where));
}
inline int __reduce_min_sync(unsigned mask, int value,
                             std::source_location where = std::source_location::current()) {
  return static_cast<int>(detail::warp_exchange(
      detail::WarpOp::reduce_min_i, mask, static_cast<unsigned>(value), 0, warpSize, where));
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned value,
                                  std::source_location where = std::source_location::current()) {
  return static_cast<unsigned>(
      detail::warp_exchange(detail::WarpOp::reduce_max_u, mask, value, 0, warpSize, where));
}
inline int __reduce_max_sync(unsigned mask, int value,
                             std::source_location where = std::source_location::current()) {
  return static_cast<int>(detail::warp_exchange(
      detail::WarpOp::reduce_max_i, mask, static_cast<unsigned>(value), 0, warpSize, where));
}

// ---------------------------------------------------------------- atomics and fences
// CUDA's atomics are relaxed read-modify-writes on naturally aligned words; so are these.
// Ordering with other memory comes from the fences, as on a GPU.
namespace detail {

[[noreturn]] void misaligned_atomic(const void* address, std::size_t alignment);

template <class T>
std::atomic_ref<T> atomic_at(T* address) {
  if (reinterpret_cast<std::uintptr_t>(address) % std::atomic_ref<T>::required_alignment != 0)
    misaligned_atomic(address, std::atomic_ref<T>::required_alignment);
  return std::atomic_ref<T>(*address);
}

template <class T, class Update>
T atomic_update(T* address, Update update) {
  std::atomic_ref<T> ref = atomic_at(address);
  T old = ref.load(std::memory_order_relaxed);
  while (!ref.compare_exchange_weak(old, update(old), std::memory_order_relaxed)) {
  }
  return old;
}

template <class T>
T atomic_add(T* address, T value) {
  return atomic_at(address).fetch_add(value, std::memory_order_relaxed);
}
template <class T>
T atomic_max(T* address, T value) {
  return atomic_update(address, [value](T old) { return old < value ? value : old; });
}
template <class T>
T atomic_min(T* address, T value) {
  return atomic_update(address, [value](T old) { return value < old ? value : old; });
}
template <class T>
T atomic_cas(T* address, T compare, T value) {
  T expected = compare;
  atomic_at(address).compare_exchange_strong(expected, value, std::memory_order_relaxed);
  return expected;  // the old value, whether or not the swap happened
}
template <class T>
T atomic_exch(T* address, T value) {
  return atomic_at(address).exchange(value, std::memory_order_relaxed);
}

}  // namespace detail

inline int atomicAdd(int* a, int v) { return detail::atomic_add(a, v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return detail::atomic_add(a, v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  return detail::atomic_add(a, v);
}
inline float atomicAdd(float* a, float v) { return detail::atomic_add(a, v); }
inline double atomicAdd(double* a, double v) { return detail::atomic_add(a, v); }

inline int atomicSub(int* a, int v) { return detail::atomic_add(a, -v); }
inline unsigned atomicSub(unsigned* a, unsigned v) { return detail::atomic_add(a, 0u - v); }

inline int atomicMax(int* a, int v) { return detail::atomic_max(a, v); }
inline unsigned atomicMax(unsigned* a, unsigned v) { return detail::atomic_max(a, v); }
inline long long atomicMax(long long* a, long long v) { return detail::atomic_max(a, v); }
inline unsigned long long atomicMax(unsigned long long* a, unsigned long long v) {
  return detail::atomic_max(a, v);
}
inline int atomicMin(int* a, int v) { return detail::atomic_min(a, v); }
inline unsigned atomicMin(unsigned* a, unsigned v) { return detail::atomic_min(a, v); }
inline long long atomicMin(long long* a, long long v) { return detail::atomic_min(a, v); }
inline unsigned long long atomicMin(unsigned long long* a, unsigned long long v) {
  return detail::atomic_min(a, v);
}

inline int atomicCAS(int* a, int compare, int v) { return detail::atomic_cas(a, compare, v); }
inline unsigned atomicCAS(unsigned* a, unsigned compare, unsigned v) {
  return detail::atomic_cas(a, compare, v);
}
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long compare,
                                    unsigned long long v) {
  return detail::atomic_cas(a, compare, v);
}

inline int atomicExch(int* a, int v) { return detail::atomic_exch(a, v); }
inline unsigned atomicExch(unsigned* a, unsigned v) { return detail::atomic_exch(a, v); }
inline unsigned long long atomicExch(unsigned long long* a, unsigned long long v) {
  return detail::atomic_exch(a, v);
}
inline float atomicExch(float* a, float v) { return detail::atomic_exch(a, v); }

inline int atomicAnd(int* a, int v) { return detail::atomic_at(a).fetch_and(v); }
inline unsigned atomicAnd(unsigned* a, unsigned v) { return detail::atomic_at(a).fetch_and(v); }
inline int atomicOr(int* a, int v) { return detail::atomic_at(a).fetch_or(v); }
inline unsigned atomicOr(unsigned* a, unsigned v) { return detail::atomic_at(a).fetch_or(v); }
inline int atomicXor(int* a, int v) { return detail::atomic_at(a).fetch_xor(v); }
inline unsigned atomicXor(unsigned* a, unsigned v) { return detail::atomic_at(a).fetch_xor(v); }

// ((old >= limit) ? 0 : old + 1) and ((old == 0 || old > limit) ? limit : old - 1).
inline unsigned atomicInc(unsigned* a, unsigned limit) {
  return detail::atomic_update(a, [limit](unsigned old) { return old >= limit ? 0u : old + 1; });
}
inline unsigned atomicDec(unsigned* a, unsigned limit) {
  return detail::atomic_update(
      a, [limit](unsigned old) { return (old == 0 || old > limit) ? limit : old - 1; });
}

inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_system() { std::atomic_thread_fence(std::memory_order_seq_cst); }
// A block's threads share one OS thread: keeping the compiler from reordering is enough.
inline void __threadfence_block() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Read-only data cache load: a plain load on the CPU.
template <class T>
T __ldg(const T* address) {
  return *address;
}

// ---------------------------------------------------------------- dynamic shared memory
// The running block's dynamic shared buffer (bytes given at launch); called by the macro.
struct DynamicSharedBuffer {
  std::byte* data;
  std::size_t bytes;
};
DynamicSharedBuffer current_dynamic_shared();

namespace detail {
[[noreturn]] void dynamic_shared_out_of_range(const char* name, std::ptrdiff_t index,
                                              std::size_t count, std::size_t element_bytes);
}

// What LATENT_DYNAMIC_SHARED(type, name) declares under SIMT: a pointer into the block's
// dynamic shared buffer that checks every subscript against the size given at launch.
// Converting it to a raw `T*` (implicitly) gives up the check; writes past the end through
// a raw pointer are still caught by the guard bytes the executor verifies after the block.
template <class T>
class DynamicSharedArray {
 public:
  DynamicSharedArray(T* base, std::size_t count, const char* name, std::ptrdiff_t offset = 0)
      : base_(base), count_(count), name_(name), offset_(offset) {}

  T& operator[](std::ptrdiff_t index) const {
    const std::ptrdiff_t at = offset_ + index;
    if (at < 0 || static_cast<std::size_t>(at) >= count_)
      detail::dynamic_shared_out_of_range(name_, at, count_, sizeof(T));
    return base_[at];
  }
  T& operator*() const { return (*this)[0]; }
  T* operator->() const { return &(*this)[0]; }
  operator T*() const { return base_ + offset_; }

  DynamicSharedArray operator+(std::ptrdiff_t delta) const {
    return DynamicSharedArray(base_, count_, name_, offset_ + delta);
  }
  DynamicSharedArray operator-(std::ptrdiff_t delta) const {
    return DynamicSharedArray(base_, count_, name_, offset_ - delta);
  }
  friend DynamicSharedArray operator+(std::ptrdiff_t delta, const DynamicSharedArray& a) {
    return a + delta;
  }

 private:
  T* base_;
  std::size_t count_;
  const char* name_;
  std::ptrdiff_t offset_;
};

template <class T>
DynamicSharedArray<T> dynamic_shared_array(const char* name) {
  const DynamicSharedBuffer buffer = current_dynamic_shared();
  return DynamicSharedArray<T>(reinterpret_cast<T*>(buffer.data), buffer.bytes / sizeof(T),
                               name);
}

// ---------------------------------------------------------------- math intrinsics
// The fast-math intrinsics are computed at full precision here; a GPU's approximations
// differ by a few ulp, which tests comparing the two must allow for.
inline float __expf(float x) { return std::exp(x); }
inline float __exp10f(float x) { return std::pow(10.0f, x); }
inline float __logf(float x) { return std::log(x); }
inline float __log2f(float x) { return std::log2(x); }
inline float __log10f(float x) { return std::log10(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanf(float x) { return std::tan(x); }
inline void __sincosf(float x, float* s, float* c) {
  *s = std::sin(x);
  *c = std::cos(x);
}
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fsub_rn(float x, float y) { return x - y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fmaf_rn(float x, float y, float z) { return std::fma(x, y, z); }
inline double __dadd_rn(double x, double y) { return x + y; }
inline double __dmul_rn(double x, double y) { return x * y; }
inline double __fma_rn(double x, double y, double z) { return std::fma(x, y, z); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }

inline int __float2int_rn(float x) { return static_cast<int>(std::nearbyint(x)); }
inline int __float2int_rz(float x) { return static_cast<int>(x); }
inline int __float2int_rd(float x) { return static_cast<int>(std::floor(x)); }
inline int __float2int_ru(float x) { return static_cast<int>(std::ceil(x)); }
inline unsigned __float2uint_rn(float x) { return static_cast<unsigned>(std::nearbyint(x)); }
inline float __int2float_rn(int x) { return static_cast<float>(x); }

inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }

inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __clzll(long long x) { return std::countl_zero(static_cast<unsigned long long>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
inline int __ffsll(long long x) {
  return x == 0 ? 0 : std::countr_zero(static_cast<unsigned long long>(x)) + 1;
}
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1u);
  return r;
}
inline unsigned __umulhi(unsigned x, unsigned y) {
  return static_cast<unsigned>((static_cast<unsigned long long>(x) * y) >> 32);
}
inline int __mulhi(int x, int y) {
  return static_cast<int>((static_cast<long long>(x) * y) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long x, unsigned long long y) {
  return static_cast<unsigned long long>((static_cast<unsigned __int128>(x) * y) >> 64);
}

// CUDA's min/max for mixed arithmetic arguments: compared in the common type, as nvcc's
// overloads do (int with unsigned compares unsigned; float with double compares double).
template <class A, class B>
  requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B>
constexpr std::common_type_t<A, B> min(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <class A, class B>
  requires std::is_arithmetic_v<A> && std::is_arithmetic_v<B>
constexpr std::common_type_t<A, B> max(A a, B b) {
  using C = std::common_type_t<A, B>;
  return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}

}  // namespace latent::simt

// ---------------------------------------------------------------- CUDA's global names
using latent::simt::dim3;
using latent::simt::double2;
using latent::simt::float2;
using latent::simt::float3;
using latent::simt::float4;
using latent::simt::int2;
using latent::simt::int3;
using latent::simt::int4;
using latent::simt::uint2;
using latent::simt::uint3;
using latent::simt::uint4;
using latent::simt::make_double2;
using latent::simt::make_float2;
using latent::simt::make_float3;
using latent::simt::make_float4;
using latent::simt::make_int2;
using latent::simt::make_int3;
using latent::simt::make_int4;
using latent::simt::make_uint2;
using latent::simt::make_uint3;
using latent::simt::make_uint4;

using latent::simt::blockDim;
using latent::simt::blockIdx;
using latent::simt::gridDim;
using latent::simt::threadIdx;
using latent::simt::warpSize;

using latent::simt::__syncthreads;
using latent::simt::__syncthreads_and;
using latent::simt::__syncthreads_count;
using latent::simt::__syncthreads_or;

using latent::simt::__all_sync;
using latent::simt::__any_sync;
using latent::simt::__ballot_sync;
using latent::simt::__reduce_add_sync;
using latent::simt::__reduce_max_sync;
using latent::simt::__reduce_min_sync;
using latent::simt::__shfl_down_sync;
using latent::simt::__shfl_sync;
using latent::simt::__shfl_up_sync;
using latent::simt::__shfl_xor_sync;
using latent::simt::__syncwarp;

using latent::simt::atomicAdd;
using latent::simt::atomicAnd;
using latent::simt::atomicCAS;
using latent::simt::atomicDec;
using latent::simt::atomicExch;
using latent::simt::atomicInc;
using latent::simt::atomicMax;
using latent::simt::atomicMin;
using latent::simt::atomicOr;
using latent::simt::atomicSub;
using latent::simt::atomicXor;
using latent::simt::__ldg;
using latent::simt::__threadfence;
using latent::simt::__threadfence_block;
using latent::simt::__threadfence_system;

using latent::simt::__brev;
using latent::simt::__clz;
using latent::simt::__clzll;
using latent::simt::__dadd_rn;
using latent::simt::__dmul_rn;
using latent::simt::__double_as_longlong;
using latent::simt::__fadd_rn;
using latent::simt::__fdiv_rn;
using latent::simt::__fdividef;
using latent::simt::__ffs;
using latent::simt::__ffsll;
using latent::simt::__float2int_rd;
using latent::simt::__float2int_rn;
using latent::simt::__float2int_ru;
using latent::simt::__float2int_rz;
using latent::simt::__float2uint_rn;
using latent::simt::__float_as_int;
using latent::simt::__float_as_uint;
using latent::simt::__fma_rn;
using latent::simt::__fmaf_rn;
using latent::simt::__fmul_rn;
using latent::simt::__frcp_rn;
using latent::simt::__fsqrt_rn;
using latent::simt::__fsub_rn;
using latent::simt::__int2float_rn;
using latent::simt::__int_as_float;
using latent::simt::__longlong_as_double;
using latent::simt::__mulhi;
using latent::simt::__popc;
using latent::simt::__popcll;
using latent::simt::__saturatef;
using latent::simt::__uint_as_float;
using latent::simt::__umul64hi;
using latent::simt::__umulhi;
using latent::simt::max;
using latent::simt::min;
using latent::simt::rsqrt;
using latent::simt::rsqrtf;

// glibc's <math.h> already declares these names (internal, unexported functions), so they
// cannot be brought in with using-declarations; they are macros instead.
#define __expf ::latent::simt::__expf
#define __exp10f ::latent::simt::__exp10f
#define __logf ::latent::simt::__logf
#define __log2f ::latent::simt::__log2f
#define __log10f ::latent::simt::__log10f
#define __powf ::latent::simt::__powf
#define __sinf ::latent::simt::__sinf
#define __cosf ::latent::simt::__cosf
#define __tanf ::latent::simt::__tanf
#define __sincosf ::latent::simt::__sincosf

// LATENT_DYNAMIC_SHARED(type, name): the block's dynamic shared memory (the size given at
// launch) seen as an array of `type`. Use it at the top of a kernel body, once per name.
#define LATENT_DYNAMIC_SHARED(type, name)               \
  ::latent::simt::DynamicSharedArray<type> name =       \
      ::latent::simt::dynamic_shared_array<type>(#name)
