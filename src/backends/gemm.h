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
};

}  // namespace latent::backend
