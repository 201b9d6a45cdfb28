// The SIMT executor in one include: what kernels/device.cuh pulls in when the host compiler
// (not nvcc) compiles kernels/*.cuh and the CUDA backend. See docs/simt.md.
#pragma once

#include "cuda_runtime_shim.h"
#include "device_api.h"
#include "launch.h"
