// The gemm concept: row-major C = alpha·op(A)·op(B) + beta·C (cpu: OpenBLAS; cuda: cuBLAS on
// the current stream, OpenBLAS under the SIMT executor).
#pragma once

#include <cstdint>

#include "latent/dtype.h"

namespace latent::backend {

struct GemmTable {
  static constexpr const char* kConcept = "gemm";
  // A, B, C are raw element pointers on the table's device with leading dimensions.
  void (*gemm)(DType dtype, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n,
               std::int64_t k, double alpha, const void* a, std::int64_t lda, const void* b,
               std::int64_t ldb, double beta, void* c, std::int64_t ldc);
  // `batch` independent products C_i = alpha·op(A_i)·op(B_i) + beta·C_i, with A_i = a + i·stride_a
  // (elements), and likewise for B and C (cuBLAS's strided batched GEMM; the cpu loops gemm).
  void (*gemm_strided_batched)(DType dtype, bool transpose_a, bool transpose_b, std::int64_t m,
                               std::int64_t n, std::int64_t k, double alpha, const void* a,
                               std::int64_t lda, std::int64_t stride_a, const void* b,
                               std::int64_t ldb, std::int64_t stride_b, double beta, void* c,
                               std::int64_t ldc, std::int64_t stride_c, std::int64_t batch);
};

}  // namespace latent::backend
