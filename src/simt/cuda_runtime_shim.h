// The host side of the SIMT executor: the CUDA runtime calls a backend makes, for a build
// without nvcc. Device memory is host memory; every launch runs to completion before
// simt::launch returns, so streams are always idle, copies are synchronous and an event's
// timestamp is taken when it is recorded. Each call returns CUDA's error code for the same
// misuse (and sets the per-thread last error, as the CUDA runtime does).
//
// As in device_api.h, everything lives in latent::simt and is brought into the global
// namespace with using-declarations.
#pragma once

#include <cstddef>

namespace latent::simt {

// CUDA's numbering, so that logs read the same on both builds.
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidSymbol = 13,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorMisalignedAddress = 716,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
using cudaError_t = cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxBlockDimX = 2,
  cudaDevAttrMaxGridDimX = 5,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrL2CacheSize = 38,
  cudaDevAttrMaxThreadsPerMultiProcessor = 39,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

constexpr unsigned cudaStreamDefault = 0x0;
constexpr unsigned cudaStreamNonBlocking = 0x1;
constexpr unsigned cudaEventDefault = 0x0;
constexpr unsigned cudaEventBlockingSync = 0x1;
constexpr unsigned cudaEventDisableTiming = 0x2;

// Opaque handles; the default stream is nullptr (0), as in CUDA.
struct Stream;
struct Event;
using cudaStream_t = Stream*;
using cudaEvent_t = Event*;

// The fields of CUDA's cudaDeviceProp that a backend reads, with the limits the executor
// enforces (an sm_90 part's) and the host's core count and memory.
struct cudaDeviceProp {
  char name[256];
  std::size_t totalGlobalMem;
  std::size_t sharedMemPerBlock;
  std::size_t sharedMemPerBlockOptin;
  std::size_t sharedMemPerMultiprocessor;
  std::size_t totalConstMem;
  int regsPerBlock;
  int regsPerMultiprocessor;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int maxThreadsPerMultiProcessor;
  int maxBlocksPerMultiProcessor;
  int major;
  int minor;
  int multiProcessorCount;
  int concurrentKernels;
  int unifiedAddressing;
  int memoryBusWidth;
  int l2CacheSize;
};

// ---------------------------------------------------------------- errors
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t error);
const char* cudaGetErrorName(cudaError_t error);

// ---------------------------------------------------------------- device
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes);

// ---------------------------------------------------------------- memory
cudaError_t cudaMalloc(void** pointer, std::size_t bytes);
cudaError_t cudaFree(void* pointer);
cudaError_t cudaMallocAsync(void** pointer, std::size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* pointer, cudaStream_t stream);
cudaError_t cudaMallocHost(void** pointer, std::size_t bytes);
cudaError_t cudaFreeHost(void* pointer);
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, std::size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes,
                            cudaStream_t stream = nullptr);

template <class T>
cudaError_t cudaMalloc(T** pointer, std::size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(pointer), bytes);
}
template <class T>
cudaError_t cudaMallocAsync(T** pointer, std::size_t bytes, cudaStream_t stream) {
  return cudaMallocAsync(reinterpret_cast<void**>(pointer), bytes, stream);
}
template <class T>
cudaError_t cudaMallocHost(T** pointer, std::size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(pointer), bytes);
}

// __constant__ and __device__ variables are ordinary globals under SIMT.
cudaError_t memcpy_symbol(void* dst, const void* src, std::size_t bytes, std::size_t offset,
                          std::size_t symbol_bytes, bool to_symbol);
template <class T>
cudaError_t cudaMemcpyToSymbol(T& symbol, const void* src, std::size_t bytes,
                               std::size_t offset = 0,
                               cudaMemcpyKind = cudaMemcpyHostToDevice) {
  return memcpy_symbol(&symbol, src, bytes, offset, sizeof(T), true);
}
template <class T>
cudaError_t cudaMemcpyFromSymbol(void* dst, const T& symbol, std::size_t bytes,
                                 std::size_t offset = 0,
                                 cudaMemcpyKind = cudaMemcpyDeviceToHost) {
  return memcpy_symbol(dst, &symbol, bytes, offset, sizeof(T), false);
}

// ---------------------------------------------------------------- streams and events
cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* milliseconds, cudaEvent_t start, cudaEvent_t end);

// ---------------------------------------------------------------- kernel attributes
// Only cudaFuncAttributeMaxDynamicSharedMemorySize: like a GPU, a launch asking for more
// than 48 KiB of dynamic shared memory fails unless the kernel opted in (up to 227 KiB).
cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value);
template <class R, class... Params>
cudaError_t cudaFuncSetAttribute(R (*kernel)(Params...), cudaFuncAttribute attr, int value) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}

// For the executor: whether `stream` is the default stream or a live stream.
bool is_valid_stream(cudaStream_t stream);
// For the executor: the dynamic shared memory `kernel` may ask for (48 KiB by default).
std::size_t max_dynamic_shared_bytes(const void* kernel);

}  // namespace latent::simt

using latent::simt::cudaDeviceProp;
using latent::simt::cudaError_t;
using latent::simt::cudaEvent_t;
using latent::simt::cudaStream_t;
using enum latent::simt::cudaError;
using enum latent::simt::cudaMemcpyKind;
using enum latent::simt::cudaFuncAttribute;
using enum latent::simt::cudaDeviceAttr;
using latent::simt::cudaDeviceAttr;
using latent::simt::cudaFuncAttribute;
using latent::simt::cudaMemcpyKind;
using latent::simt::cudaEventBlockingSync;
using latent::simt::cudaEventDefault;
using latent::simt::cudaEventDisableTiming;
using latent::simt::cudaStreamDefault;
using latent::simt::cudaStreamNonBlocking;

using latent::simt::cudaDeviceGetAttribute;
using latent::simt::cudaDeviceReset;
using latent::simt::cudaDeviceSynchronize;
using latent::simt::cudaEventCreate;
using latent::simt::cudaEventCreateWithFlags;
using latent::simt::cudaEventDestroy;
using latent::simt::cudaEventElapsedTime;
using latent::simt::cudaEventQuery;
using latent::simt::cudaEventRecord;
using latent::simt::cudaEventSynchronize;
using latent::simt::cudaFree;
using latent::simt::cudaFreeAsync;
using latent::simt::cudaFreeHost;
using latent::simt::cudaFuncSetAttribute;
using latent::simt::cudaGetDevice;
using latent::simt::cudaGetDeviceCount;
using latent::simt::cudaGetDeviceProperties;
using latent::simt::cudaGetErrorName;
using latent::simt::cudaGetErrorString;
using latent::simt::cudaGetLastError;
using latent::simt::cudaMalloc;
using latent::simt::cudaMallocAsync;
using latent::simt::cudaMallocHost;
using latent::simt::cudaMemcpy;
using latent::simt::cudaMemcpyAsync;
using latent::simt::cudaMemcpyFromSymbol;
using latent::simt::cudaMemcpyToSymbol;
using latent::simt::cudaMemGetInfo;
using latent::simt::cudaMemset;
using latent::simt::cudaMemsetAsync;
using latent::simt::cudaPeekAtLastError;
using latent::simt::cudaSetDevice;
using latent::simt::cudaStreamCreate;
using latent::simt::cudaStreamCreateWithFlags;
using latent::simt::cudaStreamDestroy;
using latent::simt::cudaStreamQuery;
using latent::simt::cudaStreamSynchronize;
using latent::simt::cudaStreamWaitEvent;
