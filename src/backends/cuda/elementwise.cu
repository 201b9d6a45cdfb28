// The cuda elementwise concept (src/backends/elementwise.h): launches of
// kernels/elementwise.cuh on the current stream; 16-byte vector paths for contiguous aligned
// operands, StridedIndex for the rest.
#include <cstdint>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "backends/cuda/strided.h"
#include "backends/elementwise.h"
#include "kernels/elementwise.cuh"

namespace latent::cuda {
namespace {

constexpr int kThreads = 256;

dim3 grid(std::int64_t work_items) { return grid_for(work_items, kThreads); }
using backend::BinaryOp;
using backend::UnaryOp;
using backend::UnaryParams;
using kernels::StridedIndex;

bool has_zero_stride(const Tensor& t) {
  for (std::int64_t d = 0; d < t.dim(); ++d)
    if (t.strides()[d] == 0 && t.shape()[d] > 1) return true;
  return false;
}


void copy(const Tensor& src, const Tensor& dst) {
  const std::int64_t n = dst.numel();
  if (n == 0) return;
  if (src.dtype() == dst.dtype() && src.is_contiguous() && dst.is_contiguous()) {
    LATENT_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(),
                                      static_cast<std::size_t>(n) * dtype_size(dst.dtype()),
                                      cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  const StridedIndex si = strided_index(src, "copy"), di = strided_index(dst, "copy");
  dispatch_all(src.dtype(), [&](auto s) {
    using S = decltype(s);
    dispatch_all(dst.dtype(), [&](auto d) {
      using D = decltype(d);
      if (use_index32(n, {si, di})) {
        LATENT_LAUNCH((kernels::copy_strided_kernel<S, D, std::int32_t>), grid(n), kThreads, 0,
                      stream(), ptr<S>(src), kernels::to_index32(si), ptr<D>(dst),
                      kernels::to_index32(di), static_cast<std::int32_t>(n));
      } else {
        LATENT_LAUNCH((kernels::copy_strided_kernel<S, D, std::int64_t>), grid(n), kThreads, 0,
                      stream(), ptr<S>(src), si, ptr<D>(dst), di, n);
      }
    });
  });
}

void fill(const Tensor& dst, double value) {
  const std::int64_t n = dst.numel();
  dispatch_all(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    LATENT_LAUNCH(kernels::fill_kernel<T>, grid(n), kThreads, 0, stream(), ptr<T>(dst),
                  static_cast<T>(value), n);
  });
}

void arange(const Tensor& dst, double start, double step) {
  const std::int64_t n = dst.numel();
  dispatch_all(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    LATENT_LAUNCH(kernels::arange_kernel<T>, grid(n), kThreads, 0, stream(), ptr<T>(dst),
                  start, step, n);
  });
}

void unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryParams p) {
  const std::int64_t n = x.numel();
  dispatch_floating(x.dtype(), backend::unary_op_name(op), [&](auto z) {
    using T = decltype(z);
    const bool vectorized = aligned16(x.data_ptr()) && aligned16(out.data_ptr());
    LATENT_LAUNCH(kernels::unary_kernel<T>, grid(n / 4 + 1), kThreads, 0, stream(), op,
                  ptr<T>(x), ptr<T>(out), n, static_cast<T>(p.alpha), static_cast<T>(p.beta),
                  vectorized);
  });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dL_dy,
                    const Tensor& dL_dx, UnaryParams p) {
  const std::int64_t n = x.numel();
  dispatch_floating(x.dtype(), backend::unary_op_name(op), [&](auto z) {
    using T = decltype(z);
    LATENT_LAUNCH(kernels::unary_backward_kernel<T>, grid(n), kThreads, 0, stream(), op,
                  ptr<T>(x), y.defined() ? ptr<T>(y) : ptr<T>(x), ptr<T>(dL_dy),
                  ptr<T>(dL_dx), n, static_cast<T>(p.alpha), static_cast<T>(p.beta));
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const std::int64_t n = out.numel();
  dispatch_floating(out.dtype(), backend::binary_op_name(op), [&](auto z) {
    using T = decltype(z);
    if (a.is_contiguous() && b.is_contiguous() && !has_zero_stride(a) &&
        !has_zero_stride(b)) {
      const bool vectorized =
          aligned16(a.data_ptr()) && aligned16(b.data_ptr()) && aligned16(out.data_ptr());
      LATENT_LAUNCH(kernels::binary_contiguous_kernel<T>, grid(n / 4 + 1), kThreads, 0, stream(), op, ptr<T>(a), ptr<T>(b), ptr<T>(out), n, vectorized);
    } else {
      const StridedIndex ai = strided_index(a, "binary"), bi = strided_index(b, "binary");
      if (use_index32(n, {ai, bi})) {
        LATENT_LAUNCH((kernels::binary_strided_kernel<T, std::int32_t>), grid(n), kThreads, 0,
                      stream(), op, ptr<T>(a), kernels::to_index32(ai), ptr<T>(b),
                      kernels::to_index32(bi), ptr<T>(out), static_cast<std::int32_t>(n));
      } else {
        LATENT_LAUNCH((kernels::binary_strided_kernel<T, std::int64_t>), grid(n), kThreads, 0,
                      stream(), op, ptr<T>(a), ai, ptr<T>(b), bi, ptr<T>(out), n);
      }
    }
  });
}

}  // namespace

void register_elementwise() {
  backend::Registry<backend::ElementwiseTable>::add(
      DeviceType::cuda, {&copy, &fill, &arange, &unary, &unary_backward, &binary});
}

}  // namespace latent::cuda
