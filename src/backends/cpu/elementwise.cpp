// The cpu elementwise concept (src/backends/elementwise.h): strided copies, fills and the
// unary and binary ops of kernels/unary_ops.cuh as plain loops, OpenMP over long runs.
// SiLU in float, the activation of every convolutional model, runs its forward and backward
// on the vectorized exp of src/backends/cpu/vector_math.h instead of the C library's expf.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "backends/cpu/cpu.h"
#include "backends/cpu/strided_loop.h"
#include "backends/dispatch.h"
#include "backends/elementwise.h"
#include "backends/registry.h"
#include "backends/cpu/vector_math.h"
#include "kernels/unary_ops.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_all;
using backend::dispatch_floating;
using backend::ptr;
using backend::BinaryOp;
using backend::UnaryOp;
using backend::UnaryParams;

void copy(const Tensor& src, const Tensor& dst) {
  dispatch_all(src.dtype(), [&](auto s) {
    using S = decltype(s);
    dispatch_all(dst.dtype(), [&](auto d) {
      using D = decltype(d);
      const S* in = ptr<S>(src);
      D* out = ptr<D>(dst);
      StridedLoop<2>(dst.shape(), {src.strides(), dst.strides()})
          .run([&](const auto& off, std::int64_t n, const auto& step) {
            const S* a = in + off[0];
            D* b = out + off[1];
            if (step[0] == 1 && step[1] == 1) {
              for (std::int64_t j = 0; j < n; ++j) b[j] = static_cast<D>(a[j]);
            } else {
              for (std::int64_t j = 0; j < n; ++j)
                b[j * step[1]] = static_cast<D>(a[j * step[0]]);
            }
          });
    });
  });
}

void fill(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    T* out = ptr<T>(dst);
    const T v = static_cast<T>(value);
    const std::int64_t n = dst.numel();
#pragma omp parallel for if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) out[i] = v;
  });
}

void arange(const Tensor& dst, double start, double step) {
  dispatch_all(dst.dtype(), [&](auto z) {
    using T = decltype(z);
    T* out = ptr<T>(dst);
    const std::int64_t n = dst.numel();
    for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(start + step * i);
  });
}

// Elements per OpenMP work item of the vectorized loops.
constexpr std::int64_t kVectorBlock = 1 << 14;

LATENT_CPU_VECTOR_CLONES
void silu_block(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = vector_silu(x[i]);
}

LATENT_CPU_VECTOR_CLONES
void silu_backward_block(const float* x, const float* dy, float* dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * vector_silu_slope(x[i]);
}

template <class Block>
void for_each_block(std::int64_t n, const Block& block) {
  const std::int64_t blocks = (n + kVectorBlock - 1) / kVectorBlock;
#pragma omp parallel for schedule(dynamic) if (n > kParallelThreshold)
  for (std::int64_t b = 0; b < blocks; ++b)
    block(b * kVectorBlock, std::min(kVectorBlock, n - b * kVectorBlock));
}

void unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryParams p) {
  if (op == UnaryOp::silu && x.dtype() == DType::f32) {
    const float* in = ptr<float>(x);
    float* o = ptr<float>(out);
    for_each_block(x.numel(), [&](std::int64_t i, std::int64_t n) { silu_block(in + i, o + i, n); });
    return;
  }
  dispatch_floating(x.dtype(), backend::unary_op_name(op), [&](auto z) {
    using T = decltype(z);
    const T* in = ptr<T>(x);
    T* o = ptr<T>(out);
    const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
    const std::int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) o[i] = kernels::unary_value(op, in[i], alpha, beta);
  });
}

void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dL_dy,
                    const Tensor& dL_dx, UnaryParams p) {
  if (op == UnaryOp::silu && x.dtype() == DType::f32) {
    const float* xs = ptr<float>(x);
    const float* g = ptr<float>(dL_dy);
    float* o = ptr<float>(dL_dx);
    for_each_block(x.numel(), [&](std::int64_t i, std::int64_t n) {
      silu_backward_block(xs + i, g + i, o + i, n);
    });
    return;
  }
  dispatch_floating(x.dtype(), backend::unary_op_name(op), [&](auto z) {
    using T = decltype(z);
    const T* xs = ptr<T>(x);
    const T* ys = y.defined() ? ptr<T>(y) : xs;
    const T* g = ptr<T>(dL_dy);
    T* o = ptr<T>(dL_dx);
    const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
    const std::int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i)
      o[i] = g[i] * kernels::unary_slope(op, xs[i], ys[i], alpha, beta);
  });
}

// Calls body(std::integral_constant<BinaryOp, op>{}), so that the loops inside are compiled
// once per op, without a switch per element.
template <class Body>
void with_binary_op(BinaryOp op, const Body& body) {
  switch (op) {
    case BinaryOp::add: return body(std::integral_constant<BinaryOp, BinaryOp::add>{});
    case BinaryOp::sub: return body(std::integral_constant<BinaryOp, BinaryOp::sub>{});
    case BinaryOp::mul: return body(std::integral_constant<BinaryOp, BinaryOp::mul>{});
    case BinaryOp::div: return body(std::integral_constant<BinaryOp, BinaryOp::div>{});
  }
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_floating(out.dtype(), backend::binary_op_name(op), [&](auto z) {
    using T = decltype(z);
    const T* pa = ptr<T>(a);
    const T* pb = ptr<T>(b);
    T* po = ptr<T>(out);
    with_binary_op(op, [&](auto op_constant) {
      constexpr BinaryOp kOp = decltype(op_constant)::value;
      StridedLoop<3>(out.shape(), {a.strides(), b.strides(), out.strides()})
          .run([&](const auto& off, std::int64_t n, const auto& step) {
            const T* x = pa + off[0];
            const T* y = pb + off[1];
            T* o = po + off[2];
            if (step[0] == 1 && step[1] == 1 && step[2] == 1) {
              for (std::int64_t j = 0; j < n; ++j) o[j] = kernels::binary_value(kOp, x[j], y[j]);
            } else if (step[0] == 1 && step[1] == 0 && step[2] == 1) {  // a per-channel bias
              const T v = *y;
              for (std::int64_t j = 0; j < n; ++j) o[j] = kernels::binary_value(kOp, x[j], v);
            } else if (step[0] == 0 && step[1] == 1 && step[2] == 1) {
              const T v = *x;
              for (std::int64_t j = 0; j < n; ++j) o[j] = kernels::binary_value(kOp, v, y[j]);
            } else {
              for (std::int64_t j = 0; j < n; ++j)
                o[j * step[2]] = kernels::binary_value(kOp, x[j * step[0]], y[j * step[1]]);
            }
          });
    });
  });
}

}  // namespace

void register_elementwise() {
  backend::Registry<backend::ElementwiseTable>::add(
      DeviceType::cpu, {&copy, &fill, &arange, &unary, &unary_backward, &binary});
}

}  // namespace latent::cpu
