// The cpu device: plain loops, OpenMP and OpenBLAS. It is the reference every other device
// is tested against, so clarity wins over cleverness wherever the two differ, except on the
// few paths a training step spends its time in (float convolutions, SiLU, the VQ argmin),
// which are fast and say exactly what they promise about their results (docs/cpu.md).
//
// One file per concept (src/backends/cpu/<concept>.cpp), each registering its table;
// register_device() (register.cpp) calls them all once, on the first table lookup.
#pragma once

#include <cstdint>

#include "latent/dtype.h"

namespace latent::cpu {

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

// Row-major GEMM through OpenBLAS; the SIMT build of the cuda device calls it too, since its
// "device memory" is host memory.
void gemm(DType dtype, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n,
          std::int64_t k, double alpha, const void* a, std::int64_t lda, const void* b,
          std::int64_t ldb, double beta, void* c, std::int64_t ldc);
void gemm_strided_batched(DType dtype, bool transpose_a, bool transpose_b, std::int64_t m,
                          std::int64_t n, std::int64_t k, double alpha, const void* a,
                          std::int64_t lda, std::int64_t stride_a, const void* b,
                          std::int64_t ldb, std::int64_t stride_b, double beta, void* c,
                          std::int64_t ldc, std::int64_t stride_c, std::int64_t batch);

}  // namespace latent::cpu
