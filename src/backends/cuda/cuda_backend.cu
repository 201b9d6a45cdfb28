// The cuda backend: the primitives of backends/backend.h as launches of the kernels in
// kernels/, GEMM through cuBLAS, memory through the caching allocator.
//
// The same file builds two ways: with nvcc for a GPU (LATENT_CUDA=ON), and with the host
// compiler against the SIMT executor (docs/simt.md), where "device memory" is host memory
// and GEMM is the cpu backend's BLAS. Launch shapes: 256 threads per block and grid-stride
// loops over a grid capped at a few blocks per SM, so any size runs with one launch.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#include "backends/dispatch.h"
#include "backends/backend.h"
#include "backends/cuda/caching_allocator.h"
#include "backends/cuda/launch.h"
#include "kernels/adam.cuh"
#include "kernels/elementwise.cuh"
#include "kernels/im2col.cuh"
#include "kernels/indexing.cuh"
#include "kernels/random.cuh"
#include "kernels/reduce.cuh"

#if defined(__CUDACC__)
#include <cublas_v2.h>
#endif

namespace latent::cuda {

[[noreturn]] void fail(cudaError_t status, const char* what, const char* file, int line) {
  std::string where = file;
  const auto slash = where.rfind("/src/");
  if (slash != std::string::npos) where = where.substr(slash + 1);
  throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status) + " (" +
              where + ":" + std::to_string(line) + ")");
}

bool sync_after_launch() {
  static const bool enabled = [] {
    const char* v = std::getenv("LATENT_CUDA_SYNC");
    return v && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

namespace {

using backend::dispatch_floating;
using backend::dispatch_all;
using backend::ptr;
using backend::aligned16;

using backend::BinaryOp;
using backend::ConvGeometry;
using backend::UnaryOp;
using backend::UnaryParams;
using kernels::StridedIndex;

constexpr int kThreads = 256;

kernels::StridedIndex strided_index(const Shape& shape, const Shape& strides, const char* op) {
  LATENT_CHECK(shape.size() <= static_cast<std::size_t>(kernels::kMaxDims), "cuda ", op,
               ": tensors of rank ", shape.size(), " exceed the kernel limit of ",
               kernels::kMaxDims);
  StridedIndex index;
  index.rank = static_cast<int>(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    index.shape[d] = shape[d];
    index.strides[d] = strides[d];
  }
  return index;
}
StridedIndex strided_index(const Tensor& t, const char* op) {
  return strided_index(t.shape(), t.strides(), op);
}

class CudaBackend final : public backend::Backend {
 public:
  const char* name() const override { return simulated() ? "cuda (SIMT)" : "cuda"; }

  bool simulated() const override {
#if defined(__CUDACC__)
    return false;
#else
    return true;
#endif
  }

  bool available() {
    std::call_once(init_once_, [this] {
      int count = 0;
      if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        cudaGetLastError();
        device_count_ = 0;
        return;
      }
      device_count_ = count;
      cudaDeviceProp props{};
      if (cudaGetDeviceProperties(&props, 0) == cudaSuccess) {
        max_blocks_ = simulated() ? 16 : props.multiProcessorCount * 8;
      }
    });
    return device_count_ > 0;
  }

  // ---- memory
  void* allocate(std::size_t nbytes) override {
    void* p = allocator_.allocate(nbytes);
    if (poison_allocations() && nbytes > 0) LATENT_CUDA_CHECK(cudaMemset(p, 0xFF, nbytes));
    return p;
  }
  void deallocate(void* p, std::size_t) noexcept override { allocator_.deallocate(p); }
  void copy_to_host(void* dst, const void* src, std::size_t n) override {
    if (n) LATENT_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost));
  }
  void copy_from_host(void* dst, const void* src, std::size_t n) override {
    if (n) LATENT_CUDA_CHECK(cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice));
  }
  void synchronize() override { LATENT_CUDA_CHECK(cudaDeviceSynchronize()); }

  // ---- data movement and creation
  void copy(const Tensor& src, const Tensor& dst) override {
    const std::int64_t n = dst.numel();
    if (n == 0) return;
    if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
      LATENT_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(),
                                        static_cast<std::size_t>(n) * dtype_size(dst.dtype()),
                                        cudaMemcpyDeviceToDevice, nullptr));
      return;
    }
    const StridedIndex si = strided_index(src, "copy"), di = strided_index(dst, "copy");
    dispatch_all(src.dtype(), [&](auto s) {
      using S = decltype(s);
      dispatch_all(dst.dtype(), [&](auto d) {
        using D = decltype(d);
        LATENT_LAUNCH((kernels::copy_strided_kernel<S, D>), grid(n), kThreads, 0, nullptr,
                      ptr<S>(src), si, ptr<D>(dst), di, n);
      });
    });
  }

  void fill(const Tensor& dst, double value) override {
    const std::int64_t n = dst.numel();
    dispatch_all(dst.dtype(), [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::fill_kernel<T>, grid(n), kThreads, 0, nullptr, ptr<T>(dst),
                    static_cast<T>(value), n);
    });
  }

  void arange(const Tensor& dst, double start, double step) override {
    const std::int64_t n = dst.numel();
    dispatch_all(dst.dtype(), [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::arange_kernel<T>, grid(n), kThreads, 0, nullptr, ptr<T>(dst),
                    start, step, n);
    });
  }

  void random_uniform(const Tensor& dst, PhiloxKey key, double low, double high) override {
    const std::int64_t n = dst.numel();
    dispatch_floating(dst.dtype(), "random_uniform", [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::random_uniform_kernel<T>, grid(n), kThreads, 0, nullptr,
                    ptr<T>(dst), n, key.seed, key.offset, low, high - low);
    });
  }

  void random_normal(const Tensor& dst, PhiloxKey key) override {
    const std::int64_t n = dst.numel();
    dispatch_floating(dst.dtype(), "random_normal", [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::random_normal_kernel<T>, grid((n + 3) / 4), kThreads, 0, nullptr,
                    ptr<T>(dst), n, key.seed, key.offset);
    });
  }

  // ---- elementwise
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryParams p) override {
    const std::int64_t n = x.numel();
    dispatch_floating(x.dtype(), backend::unary_op_name(op), [&](auto z) {
      using T = decltype(z);
      const bool vectorized = aligned16(x.data_ptr()) && aligned16(out.data_ptr());
      LATENT_LAUNCH(kernels::unary_kernel<T>, grid(n / 4 + 1), kThreads, 0, nullptr, op,
                    ptr<T>(x), ptr<T>(out), n, static_cast<T>(p.alpha), static_cast<T>(p.beta),
                    vectorized);
    });
  }

  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dL_dy,
                      const Tensor& dL_dx, UnaryParams p) override {
    const std::int64_t n = x.numel();
    dispatch_floating(x.dtype(), backend::unary_op_name(op), [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::unary_backward_kernel<T>, grid(n), kThreads, 0, nullptr, op,
                    ptr<T>(x), y.defined() ? ptr<T>(y) : ptr<T>(x), ptr<T>(dL_dy),
                    ptr<T>(dL_dx), n, static_cast<T>(p.alpha), static_cast<T>(p.beta));
    });
  }

  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override {
    const std::int64_t n = out.numel();
    dispatch_floating(out.dtype(), backend::binary_op_name(op), [&](auto z) {
      using T = decltype(z);
      if (a.is_contiguous() && b.is_contiguous() && !has_zero_stride(a) &&
          !has_zero_stride(b)) {
        const bool vectorized =
            aligned16(a.data_ptr()) && aligned16(b.data_ptr()) && aligned16(out.data_ptr());
        LATENT_LAUNCH(kernels::binary_contiguous_kernel<T>, grid(n / 4 + 1), kThreads, 0,
                      nullptr, op, ptr<T>(a), ptr<T>(b), ptr<T>(out), n, vectorized);
      } else {
        LATENT_LAUNCH(kernels::binary_strided_kernel<T>, grid(n), kThreads, 0, nullptr, op,
                      ptr<T>(a), strided_index(a, "binary"), ptr<T>(b),
                      strided_index(b, "binary"), ptr<T>(out), n);
      }
    });
  }

  // ---- reductions
  void sum(const Tensor& x, const Tensor& out) override {
    Shape kept_shape, kept_strides, reduced_shape, reduced_strides;
    for (std::int64_t d = 0; d < x.dim(); ++d) {
      if (out.shape()[d] == 1 && x.shape()[d] != 1) {
        reduced_shape.push_back(x.shape()[d]);
        reduced_strides.push_back(x.strides()[d]);
      } else {
        kept_shape.push_back(x.shape()[d]);
        kept_strides.push_back(x.strides()[d]);
      }
    }
    const StridedIndex kept = strided_index(kept_shape, kept_strides, "sum");
    const StridedIndex reduced = strided_index(reduced_shape, reduced_strides, "sum");
    const std::int64_t outputs = out.numel(), count = shape_numel(reduced_shape);
    dispatch_floating(x.dtype(), "sum", [&](auto z) {
      using T = decltype(z);
      if (count <= 32 && outputs >= 1024) {
        LATENT_LAUNCH(kernels::sum_per_thread_kernel<T>, grid(outputs), kThreads, 0, nullptr,
                      ptr<T>(x), kept, reduced, count, outputs, ptr<T>(out));
        return;
      }
      // Chunks of at least 16 elements per thread; enough blocks to fill the device.
      constexpr std::int64_t kMinChunk = kThreads * 16;
      std::int64_t chunks = (count + kMinChunk - 1) / kMinChunk;
      const std::int64_t wanted_blocks = static_cast<std::int64_t>(max_blocks_) * 4;
      chunks = std::max<std::int64_t>(1, std::min(chunks, wanted_blocks / outputs));
      const std::int64_t chunk = (count + chunks - 1) / chunks;
      if (chunks == 1) {
        LATENT_LAUNCH(kernels::sum_partials_kernel<T>, dim3(static_cast<unsigned>(outputs)),
                      kThreads, 0, nullptr, ptr<T>(x), kept, reduced, count, chunks, chunk,
                      ptr<T>(out));
        return;
      }
      Tensor partial = empty({outputs * chunks}, x.dtype(), x.device());
      LATENT_LAUNCH(kernels::sum_partials_kernel<T>,
                    dim3(static_cast<unsigned>(outputs * chunks)), kThreads, 0, nullptr,
                    ptr<T>(x), kept, reduced, count, chunks, chunk, ptr<T>(partial));
      LATENT_LAUNCH(kernels::sum_finish_kernel<T>,
                    dim3(static_cast<unsigned>(std::min<std::int64_t>(outputs, 65535))),
                    kThreads, 0, nullptr, ptr<T>(partial), chunks, outputs, ptr<T>(out));
    });
  }

  void argmax_rows(const Tensor& x, const Tensor& out) override {
    const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
    dispatch_floating(x.dtype(), "argmax", [&](auto z) {
      using T = decltype(z);
      // One warp per row: rows · 32 threads.
      LATENT_LAUNCH(kernels::argmax_rows_kernel<T>, grid(rows * kernels::kWarp), kThreads, 0, nullptr,
                    ptr<T>(x), rows, cols, ptr<std::int32_t>(out));
    });
  }

  // ---- linear algebra
  void gemm(DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
            double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
            double beta, void* c, std::int64_t ldc) override {
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
    backend::cpu().gemm(dtype, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
  }

  void im2col(const ConvGeometry& g, const Tensor& x, const Tensor& cols) override {
    dispatch_floating(x.dtype(), "im2col", [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::im2col_kernel<T>, grid(cols.numel()), kThreads, 0, nullptr, g,
                    ptr<T>(x), ptr<T>(cols));
    });
  }

  void col2im(const ConvGeometry& g, const Tensor& cols, const Tensor& x) override {
    dispatch_floating(x.dtype(), "col2im", [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::col2im_kernel<T>, grid(x.numel()), kThreads, 0, nullptr, g,
                    ptr<T>(cols), ptr<T>(x));
    });
  }

  void adam_step(const kernels::AdamConstants& c, const Tensor& param, const Tensor& grad,
                 const Tensor& exp_avg, const Tensor& exp_avg_sq) override {
    const std::int64_t n = param.numel();
    dispatch_floating(param.dtype(), "adam_step", [&](auto z) {
      using T = decltype(z);
      LATENT_LAUNCH(kernels::adam_step_kernel<T>, grid(n), kThreads, 0, nullptr, c,
                    ptr<T>(param), ptr<T>(grad), ptr<T>(exp_avg), ptr<T>(exp_avg_sq), n);
    });
  }

 private:
  static bool has_zero_stride(const Tensor& t) {
    for (std::int64_t d = 0; d < t.dim(); ++d)
      if (t.strides()[d] == 0 && t.shape()[d] > 1) return true;
    return false;
  }

  static dim3 grid(std::int64_t work_items) { return grid_for(work_items, kThreads); }

#if defined(__CUDACC__)
  cublasHandle_t cublas() {
    std::call_once(cublas_once_, [this] {
      LATENT_CHECK(cublasCreate(&cublas_) == CUBLAS_STATUS_SUCCESS, "cublasCreate failed");
    });
    return cublas_;
  }
  std::once_flag cublas_once_;
  cublasHandle_t cublas_ = nullptr;
#endif

  std::once_flag init_once_;
  int device_count_ = 0;

 public:
  int max_blocks_ = 16;
  CachingAllocator allocator_;
};

// Never destroyed: tensors held in static storage may outlive any static destructor.
CudaBackend& instance() {
  static CudaBackend* backend = new CudaBackend;
  return *backend;
}

}  // namespace

int max_grid_blocks() {
  CudaBackend& b = instance();
  b.available();
  return b.max_blocks_;
}

}  // namespace latent::cuda

namespace latent::backend {

Backend* cuda_if_available() {
  auto& b = cuda::instance();
  return b.available() ? &b : nullptr;
}

}  // namespace latent::backend
