// LATENT_HOST_DEVICE marks code that runs on the host and on the device: under nvcc it is
// `__host__ __device__`; under a plain C++ compiler (the cpu backend, the SIMT executor) it
// is nothing. Kernel-side helpers that every backend shares are written with it.
#pragma once

#if defined(__CUDACC__)
#define LATENT_HOST_DEVICE __host__ __device__
#define LATENT_FORCEINLINE __forceinline__
#else
#define LATENT_HOST_DEVICE
#define LATENT_FORCEINLINE inline
#endif

// `#pragma unroll` for loops in host-and-device code: the device pass unrolls; the host
// compiler of either build does not know the pragma (and the nvcc build treats its warning
// as an error), so it sees nothing.
#if defined(__CUDA_ARCH__)
#define LATENT_UNROLL _Pragma("unroll")
#else
#define LATENT_UNROLL
#endif
