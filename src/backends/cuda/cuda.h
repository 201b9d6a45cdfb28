// The cuda device: the kernels of kernels/ launched on the current stream, GEMM through
// cuBLAS, memory through the caching allocator. The same files build two ways: with nvcc
// for a GPU (LATENT_CUDA=ON), and with the host compiler against the SIMT executor
// (docs/simt.md), where "device memory" is host memory and GEMM is the cpu BLAS.
//
// One file per concept (src/backends/cuda/<concept>.cu), each registering its table;
// register_device() (register.cu) calls them all once, on the first table lookup, when
// can_run() says the device is there.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "kernels/check.cuh"
#include "kernels/device.cuh"

namespace latent::cuda {

bool can_run();          // a GPU is present, or this is the SIMT build
void register_device();  // all of the below

void register_device_table();
void register_check();
void register_elementwise();
void register_reduce();
void register_conv();
void register_random();
void register_adam();
void register_gemm();
void register_vae();
void register_vq();
void register_fsq();
void register_layer_norm();
void register_cross_entropy();
void register_attention();

// The calling thread's current cuda stream (latent::current_stream).
cudaStream_t stream();
// True when device code runs on the host (the SIMT build).
bool simulated();
// The device's multiprocessor count (16 under SIMT).
int multiprocessors();

// Registers a device-side check on the current stream: the returned site goes to a kernel
// (kernels/check.cuh), and `message` formats the failure when the host reads the word.
// Call after_check() once the kernel is enqueued.
kernels::CheckSite register_check_site(std::function<std::string(std::int64_t)> message);
void after_check();

// Counted by the launch helper (launch.h).
void note_launch(cudaStream_t stream);

}  // namespace latent::cuda
