// The cpu gemm concept (src/backends/gemm.h): OpenBLAS sgemm / dgemm, row-major.
#include <cblas.h>

#include <cstdint>

#include "backends/cpu/cpu.h"
#include "backends/gemm.h"
#include "backends/registry.h"
#include "latent/error.h"

namespace latent::cpu {

void gemm(DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
          double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
          double beta, void* c, std::int64_t ldc) {
  const auto trans_a = ta ? CblasTrans : CblasNoTrans;
  const auto trans_b = tb ? CblasTrans : CblasNoTrans;
  if (dtype == DType::f32) {
    cblas_sgemm(CblasRowMajor, trans_a, trans_b, m, n, k, static_cast<float>(alpha),
                static_cast<const float*>(a), lda, static_cast<const float*>(b), ldb,
                static_cast<float>(beta), static_cast<float*>(c), ldc);
  } else if (dtype == DType::f64) {
    cblas_dgemm(CblasRowMajor, trans_a, trans_b, m, n, k, alpha,
                static_cast<const double*>(a), lda, static_cast<const double*>(b), ldb,
                beta, static_cast<double*>(c), ldc);
  } else {
    LATENT_FAIL("cpu gemm: expected float32 or float64, got ", dtype_name(dtype));
  }
}

void gemm_strided_batched(DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n,
                          std::int64_t k, double alpha, const void* a, std::int64_t lda,
                          std::int64_t stride_a, const void* b, std::int64_t ldb,
                          std::int64_t stride_b, double beta, void* c, std::int64_t ldc,
                          std::int64_t stride_c, std::int64_t batch) {
  const std::size_t size = dtype_size(dtype);
  const auto* a_bytes = static_cast<const unsigned char*>(a);
  const auto* b_bytes = static_cast<const unsigned char*>(b);
  auto* c_bytes = static_cast<unsigned char*>(c);
  for (std::int64_t i = 0; i < batch; ++i) {
    gemm(dtype, ta, tb, m, n, k, alpha, a_bytes + i * stride_a * size, lda,
         b_bytes + i * stride_b * size, ldb, beta, c_bytes + i * stride_c * size, ldc);
  }
}

void register_gemm() {
  backend::Registry<backend::GemmTable>::add(DeviceType::cpu, {&gemm, &gemm_strided_batched});
}

}  // namespace latent::cpu
