// The CUDA runtime shim (cuda_runtime_shim.h): device memory is host memory, allocations
// are tracked so that frees and copies can be checked as the CUDA runtime checks them, and
// work is never pending (launches run to completion before they return).
#include <sys/sysinfo.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <thread>
#include <unordered_map>

#include "simt/cuda_runtime_shim.h"
#include "simt/launch.h"

namespace latent::simt {

struct Stream {
  unsigned flags = 0;
};

struct Event {
  unsigned flags = 0;
  bool recorded = false;
  std::chrono::steady_clock::time_point when;
};

namespace {

constexpr std::size_t kAlignment = 256;  // cudaMalloc's guarantee
constexpr std::size_t kDefaultDynamicShared = 48 * 1024;
constexpr std::size_t kOptinDynamicShared = 227 * 1024;

thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t record(cudaError_t error) {
  if (error != cudaSuccess) t_last_error = error;
  return error;
}

// Everything the shim tracks, behind one mutex.
struct Registry {
  std::mutex mutex;
  std::map<const std::byte*, std::size_t> device;  // start -> bytes
  std::size_t device_bytes = 0;
  std::set<const void*> host;
  std::set<const Stream*> streams;
  std::set<const Event*> events;
  std::unordered_map<const void*, std::size_t> shared_limits;
  int current_device = 0;
};

Registry& registry() {
  static Registry r;
  return r;
}

// Whether [p, p + bytes) lies inside one live device allocation. Caller holds the mutex.
bool in_device_allocation(const Registry& r, const void* p, std::size_t bytes) {
  const auto* b = static_cast<const std::byte*>(p);
  auto it = r.device.upper_bound(b);
  if (it == r.device.begin()) return false;
  --it;
  return b >= it->first && b + bytes <= it->first + it->second;
}

bool valid_stream(const Registry& r, cudaStream_t stream) {
  return stream == nullptr || r.streams.count(stream) != 0;
}

std::size_t host_memory_bytes() {
  struct sysinfo info {};
  if (::sysinfo(&info) != 0) return std::size_t{16} << 30;
  return static_cast<std::size_t>(info.totalram) * info.mem_unit;
}

std::size_t host_free_bytes() {
  struct sysinfo info {};
  if (::sysinfo(&info) != 0) return std::size_t{8} << 30;
  return static_cast<std::size_t>(info.freeram) * info.mem_unit;
}

}  // namespace

// ---------------------------------------------------------------- errors

cudaError_t cudaGetLastError() {
  const cudaError_t error = t_last_error;
  t_last_error = cudaSuccess;
  return error;
}

cudaError_t cudaPeekAtLastError() { return t_last_error; }

const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    case cudaErrorUnknown: return "unknown error";
  }
  return "unrecognized error code";
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorMisalignedAddress: return "cudaErrorMisalignedAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnrecognized";
}

// ---------------------------------------------------------------- device

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return record(cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return record(cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : record(cudaErrorInvalidDevice);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (prop == nullptr) return record(cudaErrorInvalidValue);
  if (device != 0) return record(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof(prop->name), "latent SIMT executor (%u CPU threads)",
                os_thread_count());
  prop->totalGlobalMem = host_memory_bytes();
  prop->sharedMemPerBlock = kDefaultDynamicShared;
  prop->sharedMemPerBlockOptin = kOptinDynamicShared;
  prop->sharedMemPerMultiprocessor = 228 * 1024;
  prop->totalConstMem = 64 * 1024;
  prop->regsPerBlock = 65536;
  prop->regsPerMultiprocessor = 65536;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxThreadsDim[0] = 1024;
  prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = 65535;
  prop->maxGridSize[2] = 65535;
  prop->maxThreadsPerMultiProcessor = 2048;
  prop->maxBlocksPerMultiProcessor = 32;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = static_cast<int>(os_thread_count());
  prop->concurrentKernels = 1;
  prop->unifiedAddressing = 1;
  prop->memoryBusWidth = 64;
  prop->l2CacheSize = 32 * 1024 * 1024;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (value == nullptr) return record(cudaErrorInvalidValue);
  cudaDeviceProp prop;
  if (const cudaError_t e = cudaGetDeviceProperties(&prop, device); e != cudaSuccess) return e;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = prop.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *value = prop.maxThreadsDim[0]; break;
    case cudaDevAttrMaxGridDimX: *value = prop.maxGridSize[0]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(prop.sharedMemPerBlock); break;
    case cudaDevAttrWarpSize: *value = prop.warpSize; break;
    case cudaDevAttrMultiProcessorCount: *value = prop.multiProcessorCount; break;
    case cudaDevAttrL2CacheSize: *value = prop.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = prop.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrComputeCapabilityMajor: *value = prop.major; break;
    case cudaDevAttrComputeCapabilityMinor: *value = prop.minor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = static_cast<int>(prop.sharedMemPerBlockOptin);
      break;
    default: return record(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaDeviceReset() { return cudaSuccess; }

cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  if (free_bytes == nullptr || total_bytes == nullptr) return record(cudaErrorInvalidValue);
  *total_bytes = host_memory_bytes();
  *free_bytes = host_free_bytes();
  return cudaSuccess;
}

// ---------------------------------------------------------------- memory

cudaError_t cudaMalloc(void** pointer, std::size_t bytes) {
  if (pointer == nullptr) return record(cudaErrorInvalidValue);
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;  // as CUDA: success, null pointer
  // Round up so that a 16-byte vector access at the end stays inside the allocation.
  const std::size_t padded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (padded < bytes) return record(cudaErrorMemoryAllocation);
  void* p = ::operator new(padded, std::align_val_t{kAlignment}, std::nothrow);
  if (p == nullptr) return record(cudaErrorMemoryAllocation);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.device.emplace(static_cast<const std::byte*>(p), bytes);
  r.device_bytes += bytes;
  *pointer = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* pointer) {
  if (pointer == nullptr) return cudaSuccess;
  Registry& r = registry();
  {
    std::lock_guard lock(r.mutex);
    const auto it = r.device.find(static_cast<const std::byte*>(pointer));
    if (it == r.device.end()) return record(cudaErrorInvalidValue);
    r.device_bytes -= it->second;
    r.device.erase(it);
  }
  ::operator delete(pointer, std::align_val_t{kAlignment});
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** pointer, std::size_t bytes, cudaStream_t stream) {
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (!valid_stream(r, stream)) return record(cudaErrorInvalidResourceHandle);
  }
  return cudaMalloc(pointer, bytes);
}

cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream) {
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (!valid_stream(r, stream)) return record(cudaErrorInvalidResourceHandle);
  }
  return cudaFree(pointer);
}

cudaError_t cudaMallocHost(void** pointer, std::size_t bytes) {
  if (pointer == nullptr) return record(cudaErrorInvalidValue);
  *pointer = nullptr;
  if (bytes == 0) return cudaSuccess;
  void* p = ::operator new(bytes, std::align_val_t{kAlignment}, std::nothrow);
  if (p == nullptr) return record(cudaErrorMemoryAllocation);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.host.insert(p);
  *pointer = p;
  return cudaSuccess;
}

cudaError_t cudaFreeHost(void* pointer) {
  if (pointer == nullptr) return cudaSuccess;
  Registry& r = registry();
  {
    std::lock_guard lock(r.mutex);
    if (r.host.erase(pointer) == 0) return record(cudaErrorInvalidValue);
  }
  ::operator delete(pointer, std::align_val_t{kAlignment});
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return record(cudaErrorInvalidMemcpyDirection);
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return record(cudaErrorInvalidValue);
  {
    // The device side of a directed copy must lie inside one cudaMalloc allocation, as
    // the CUDA runtime requires; this catches a host pointer passed as a device pointer.
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    const bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    const bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (dst_device && !in_device_allocation(r, dst, bytes)) return record(cudaErrorInvalidValue);
    if (src_device && !in_device_allocation(r, src, bytes)) return record(cudaErrorInvalidValue);
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (!valid_stream(r, stream)) return record(cudaErrorInvalidResourceHandle);
  }
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* dst, int value, std::size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (dst == nullptr || !in_device_allocation(r, dst, bytes))
      return record(cudaErrorInvalidValue);
  }
  std::memset(dst, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t stream) {
  {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    if (!valid_stream(r, stream)) return record(cudaErrorInvalidResourceHandle);
  }
  return cudaMemset(dst, value, bytes);
}

cudaError_t memcpy_symbol(void* dst, const void* src, std::size_t bytes, std::size_t offset,
                          std::size_t symbol_bytes, bool to_symbol) {
  if (offset > symbol_bytes || bytes > symbol_bytes - offset) return record(cudaErrorInvalidValue);
  if (bytes == 0) return cudaSuccess;
  if (dst == nullptr || src == nullptr) return record(cudaErrorInvalidValue);
  if (to_symbol) {
    std::memcpy(static_cast<std::byte*>(dst) + offset, src, bytes);
  } else {
    std::memcpy(dst, static_cast<const std::byte*>(src) + offset, bytes);
  }
  return cudaSuccess;
}

// ---------------------------------------------------------------- streams and events

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  if (stream == nullptr || (flags & ~cudaStreamNonBlocking) != 0)
    return record(cudaErrorInvalidValue);
  auto* s = new Stream{flags};
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  if (stream == nullptr) return record(cudaErrorInvalidResourceHandle);
  Registry& r = registry();
  {
    std::lock_guard lock(r.mutex);
    if (r.streams.erase(stream) == 0) return record(cudaErrorInvalidResourceHandle);
  }
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return valid_stream(r, stream) ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (!valid_stream(r, stream) || r.events.count(event) == 0)
    return record(cudaErrorInvalidResourceHandle);
  return flags == 0 ? cudaSuccess : record(cudaErrorInvalidValue);
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  if (event == nullptr || (flags & ~(cudaEventBlockingSync | cudaEventDisableTiming)) != 0)
    return record(cudaErrorInvalidValue);
  auto* e = new Event{flags, false, {}};
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.events.insert(e);
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  Registry& r = registry();
  {
    std::lock_guard lock(r.mutex);
    if (r.events.erase(event) == 0) return record(cudaErrorInvalidResourceHandle);
  }
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.events.count(event) == 0 || !valid_stream(r, stream))
    return record(cudaErrorInvalidResourceHandle);
  event->recorded = true;
  event->when = std::chrono::steady_clock::now();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return r.events.count(event) != 0 ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end) {
  if (milliseconds == nullptr) return record(cudaErrorInvalidValue);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  if (r.events.count(start) == 0 || r.events.count(end) == 0)
    return record(cudaErrorInvalidResourceHandle);
  if (((start->flags | end->flags) & cudaEventDisableTiming) != 0)
    return record(cudaErrorInvalidResourceHandle);
  if (!start->recorded || !end->recorded) return record(cudaErrorInvalidResourceHandle);
  *milliseconds =
      std::chrono::duration<float, std::milli>(end->when - start->when).count();
  return cudaSuccess;
}

// ---------------------------------------------------------------- kernel attributes

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
  if (kernel == nullptr) return record(cudaErrorInvalidDeviceFunction);
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<std::size_t>(value) > kOptinDynamicShared)
    return record(cudaErrorInvalidValue);
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.shared_limits[kernel] = static_cast<std::size_t>(value);
  return cudaSuccess;
}

bool is_valid_stream(cudaStream_t stream) {
  if (stream == nullptr) return true;
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  return valid_stream(r, stream);
}

std::size_t max_dynamic_shared_bytes(const void* kernel) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  const auto it = r.shared_limits.find(kernel);
  // As on a GPU, the opt-in sets the limit; below 48 KiB the default still applies.
  return it == r.shared_limits.end() ? kDefaultDynamicShared
                                     : std::max(kDefaultDynamicShared, it->second);
}

}  // namespace latent::simt
