// The cuda gemm concept (src/backends/gemm.h): cuBLAS on the current stream; under the SIMT
// executor, where device memory is host memory, the cpu device's OpenBLAS call.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/gemm.h"
#include "backends/registry.h"

#if defined(__CUDACC__)
#include <cublas_v2.h>
#endif

namespace latent::cuda {
namespace {

// cuBLAS takes int sizes: refuse what would wrap around, naming every size.
void check_int_sizes(const char* op,
                     std::initializer_list<std::pair<const char*, std::int64_t>> sizes) {
  std::string listed;
  bool fits = true;
  for (const auto& [name, value] : sizes) {
    fits = fits && value >= 0 && value <= 2147483647LL;
    listed += detail::concat(listed.empty() ? "" : ", ", name, " = ", value);
  }
  LATENT_CHECK(fits, "cuda ", op, ": ", listed, ": cuBLAS takes 32-bit int sizes (at most 2^31 - 1)");
}

#if defined(__CUDACC__)
// One handle for the process (never destroyed: it may be used until exit), on the calling
// thread's current stream.
cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    LATENT_CHECK(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "cublasCreate failed");
    return h;
  }();
  LATENT_CHECK(cublasSetStream(handle, stream()) == CUBLAS_STATUS_SUCCESS,
               "cublasSetStream failed");
  return handle;
}
#endif

void gemm(DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
          double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
          double beta, void* c, std::int64_t ldc) {
  check_int_sizes("gemm", {{"m", m}, {"n", n}, {"k", k}, {"lda", lda}, {"ldb", ldb}, {"ldc", ldc}});
#if defined(__CUDACC__)
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands.
  cublasHandle_t handle = cublas();
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t status;
  if (dtype == DType::f32) {
    const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
    status = cublasSgemm(handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m),
                         static_cast<int>(k), &fa, static_cast<const float*>(b),
                         static_cast<int>(ldb), static_cast<const float*>(a),
                         static_cast<int>(lda), &fb, static_cast<float*>(c),
                         static_cast<int>(ldc));
  } else if (dtype == DType::f64) {
    status = cublasDgemm(handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m),
                         static_cast<int>(k), &alpha, static_cast<const double*>(b),
                         static_cast<int>(ldb), static_cast<const double*>(a),
                         static_cast<int>(lda), &beta, static_cast<double*>(c),
                         static_cast<int>(ldc));
  } else {
    LATENT_FAIL("cuda gemm: expected float32 or float64, got ", dtype_name(dtype));
  }
  LATENT_CHECK(status == CUBLAS_STATUS_SUCCESS, "cublas gemm (", m, "x", n, "x", k,
               ") failed with status ", static_cast<int>(status));
#else
  // SIMT: device memory is host memory, so the cpu backend's BLAS reads it directly.
  cpu::gemm(dtype, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

void gemm_strided_batched(DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n,
                          std::int64_t k, double alpha, const void* a, std::int64_t lda,
                          std::int64_t stride_a, const void* b, std::int64_t ldb,
                          std::int64_t stride_b, double beta, void* c, std::int64_t ldc,
                          std::int64_t stride_c, std::int64_t batch) {
  check_int_sizes("gemm_strided_batched", {{"m", m}, {"n", n}, {"k", k}, {"lda", lda},
                                           {"ldb", ldb}, {"ldc", ldc}, {"batch", batch}});
#if defined(__CUDACC__)
  cublasHandle_t handle = cublas();
  const cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  cublasStatus_t status;
  // Row-major to column-major as in gemm: the operands (and their strides) swap.
  if (dtype == DType::f32) {
    const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
    status = cublasSgemmStridedBatched(
        handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), &fa,
        static_cast<const float*>(b), static_cast<int>(ldb), stride_b,
        static_cast<const float*>(a), static_cast<int>(lda), stride_a, &fb,
        static_cast<float*>(c), static_cast<int>(ldc), stride_c, static_cast<int>(batch));
  } else if (dtype == DType::f64) {
    status = cublasDgemmStridedBatched(
        handle, op_b, op_a, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k),
        &alpha, static_cast<const double*>(b), static_cast<int>(ldb), stride_b,
        static_cast<const double*>(a), static_cast<int>(lda), stride_a, &beta,
        static_cast<double*>(c), static_cast<int>(ldc), stride_c, static_cast<int>(batch));
  } else {
    LATENT_FAIL("cuda gemm_strided_batched: expected float32 or float64, got ",
                dtype_name(dtype));
  }
  LATENT_CHECK(status == CUBLAS_STATUS_SUCCESS, "cublas strided batched gemm (", batch, " of ",
               m, "x", n, "x", k, ") failed with status ", static_cast<int>(status));
#else
  cpu::gemm_strided_batched(dtype, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                            beta, c, ldc, stride_c, batch);
#endif
}

}  // namespace

void register_gemm() {
  backend::Registry<backend::GemmTable>::add(DeviceType::cuda, {&gemm, &gemm_strided_batched});
}

}  // namespace latent::cuda
