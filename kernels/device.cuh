// The one compatibility header of kernels/: every kernel file includes it first.
//
// Under nvcc it is CUDA itself. Under a host compiler it is the SIMT executor
// (src/simt/, docs/simt.md), which defines the same names (__global__, __shared__,
// threadIdx, __syncthreads, the warp shuffles, atomics, the runtime calls) and runs the
// kernels on the CPU with CUDA's execution model.
//
// Dynamic shared memory is declared with LATENT_DYNAMIC_SHARED(type, name) instead of
// `extern __shared__ type name[]`, which the host compiler cannot express; under SIMT the
// name checks every subscript against the size given at launch.
#pragma once

#if defined(__CUDACC__)

#include <cuda_runtime.h>

// One untyped extern array for every kernel (a typed one would clash between template
// instantiations of different types), viewed as `type*`.
#define LATENT_DYNAMIC_SHARED(type, name)                                        \
  extern __shared__ __align__(16) unsigned char latent_dynamic_shared_bytes_[]; \
  type* name = reinterpret_cast<type*>(latent_dynamic_shared_bytes_)

#else

#include "../src/simt/simt.h"

#endif

#include "host_device.cuh"
