// Elementwise kernels: unary ops and their derivatives, broadcasting binary ops, fill,
// arange and the dtype-converting strided copy. Docs: docs/architecture.md (backends).
//
//   unary            y = f(x)                      read 1, write 1 element
//   unary_backward   dL/dx = dL/dy · f'(x, y)      read 3, write 1 element
//   binary           out = a ∘ b  (+ − × ÷)        read 2, write 1 element
//   copy             dst[i] = (D) src[i]           read 1, write 1 element
//
// All of them are memory-bound (≤ 10 FLOPs per element against 8–16 bytes), so what
// matters is moving bytes: contiguous operands take a path with 16-byte vector loads
// (float4 / double2) when the pointers are 16-byte aligned, and a grid-stride loop keeps
// a fixed-size grid busy for any n. Strided and broadcast operands go through StridedIndex.
#pragma once

#include <cstdint>

#include "backends/backend.h"
#include "kernels/device.cuh"
#include "kernels/indexing.cuh"
#include "kernels/vec16.cuh"

namespace latent::kernels {

using backend::BinaryOp;
using backend::UnaryOp;

// ---------------------------------------------------------------- device math
__device__ __forceinline__ float dev_exp(float x) { return expf(x); }
__device__ __forceinline__ double dev_exp(double x) { return exp(x); }
__device__ __forceinline__ float dev_log(float x) { return logf(x); }
__device__ __forceinline__ double dev_log(double x) { return log(x); }
__device__ __forceinline__ float dev_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double dev_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float dev_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double dev_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float dev_pow(float x, float p) { return powf(x, p); }
__device__ __forceinline__ double dev_pow(double x, double p) { return pow(x, p); }

template <class T>
__device__ __forceinline__ T unary_value(UnaryOp op, T x, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return dev_exp(x);
    case UnaryOp::log: return dev_log(x);
    case UnaryOp::sqrt: return dev_sqrt(x);
    case UnaryOp::abs: return x < T(0) ? -x : x;
    case UnaryOp::square: return x * x;
    case UnaryOp::relu: return x > T(0) ? x : T(0);
    case UnaryOp::leaky_relu: return x > T(0) ? x : alpha * x;
    case UnaryOp::silu: return x / (T(1) + dev_exp(-x));
    case UnaryOp::sigmoid: return T(1) / (T(1) + dev_exp(-x));
    case UnaryOp::tanh: return dev_tanh(x);
    case UnaryOp::pow: return dev_pow(x, alpha);
    case UnaryOp::add_scalar: return x + alpha;
    case UnaryOp::mul_scalar: return x * alpha;
    case UnaryOp::rsub_scalar: return alpha - x;
    case UnaryOp::clamp: return x < alpha ? alpha : (x > beta ? beta : x);
  }
  return x;
}

// f'(x) expressed through x and y = f(x), whichever is cheaper.
template <class T>
__device__ __forceinline__ T unary_slope(UnaryOp op, T x, T y, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return T(-1);
    case UnaryOp::exp: return y;
    case UnaryOp::log: return T(1) / x;
    case UnaryOp::sqrt: return T(0.5) / y;
    case UnaryOp::abs: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryOp::square: return T(2) * x;
    case UnaryOp::relu: return x > T(0) ? T(1) : T(0);
    case UnaryOp::leaky_relu: return x > T(0) ? T(1) : alpha;
    case UnaryOp::silu: {
      const T s = T(1) / (T(1) + dev_exp(-x));
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::sigmoid: return y * (T(1) - y);
    case UnaryOp::tanh: return T(1) - y * y;
    case UnaryOp::pow: return alpha == T(0) ? T(0) : alpha * dev_pow(x, alpha - T(1));
    case UnaryOp::add_scalar: return T(1);
    case UnaryOp::mul_scalar: return alpha;
    case UnaryOp::rsub_scalar: return T(-1);
    case UnaryOp::clamp: return (x >= alpha && x <= beta) ? T(1) : T(0);
  }
  return T(0);
}

template <class T>
__device__ __forceinline__ T binary_value(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return a;
}

__device__ __forceinline__ std::int64_t global_thread() {
  return static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::int64_t grid_threads() {
  return static_cast<std::int64_t>(gridDim.x) * blockDim.x;
}

// ---------------------------------------------------------------- unary
// Contiguous x and y; `vectorized` means both are 16-byte aligned.
template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* y, std::int64_t n, T alpha, T beta,
                             bool vectorized) {
  constexpr int W = Vec16<T>::width;
  std::int64_t done = 0;
  if (vectorized) {
    const std::int64_t packs = n / W;
    const auto* xv = reinterpret_cast<const typename Vec16<T>::type*>(x);
    auto* yv = reinterpret_cast<typename Vec16<T>::type*>(y);
    for (std::int64_t p = global_thread(); p < packs; p += grid_threads()) {
      Pack<T> in, out;
      in.vector = xv[p];
#pragma unroll
      for (int j = 0; j < W; ++j) out.lane[j] = unary_value(op, in.lane[j], alpha, beta);
      yv[p] = out.vector;
    }
    done = packs * W;
  }
  for (std::int64_t i = done + global_thread(); i < n; i += grid_threads())
    y[i] = unary_value(op, x[i], alpha, beta);
}

template <class T>
__global__ void unary_backward_kernel(UnaryOp op, const T* x, const T* y, const T* dL_dy,
                                      T* dL_dx, std::int64_t n, T alpha, T beta) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads())
    dL_dx[i] = dL_dy[i] * unary_slope(op, x[i], y[i], alpha, beta);
}

// ---------------------------------------------------------------- binary
template <class T>
__global__ void binary_contiguous_kernel(BinaryOp op, const T* a, const T* b, T* out,
                                         std::int64_t n, bool vectorized) {
  constexpr int W = Vec16<T>::width;
  std::int64_t done = 0;
  if (vectorized) {
    const std::int64_t packs = n / W;
    const auto* av = reinterpret_cast<const typename Vec16<T>::type*>(a);
    const auto* bv = reinterpret_cast<const typename Vec16<T>::type*>(b);
    auto* ov = reinterpret_cast<typename Vec16<T>::type*>(out);
    for (std::int64_t p = global_thread(); p < packs; p += grid_threads()) {
      Pack<T> pa, pb, po;
      pa.vector = av[p];
      pb.vector = bv[p];
#pragma unroll
      for (int j = 0; j < W; ++j) po.lane[j] = binary_value(op, pa.lane[j], pb.lane[j]);
      ov[p] = po.vector;
    }
    done = packs * W;
  }
  for (std::int64_t i = done + global_thread(); i < n; i += grid_threads())
    out[i] = binary_value(op, a[i], b[i]);
}

// a and b are views broadcast to out's shape (stride 0 where broadcast); out contiguous.
template <class T>
__global__ void binary_strided_kernel(BinaryOp op, const T* a, StridedIndex a_index,
                                      const T* b, StridedIndex b_index, T* out,
                                      std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads())
    out[i] = binary_value(op, a[a_index.offset(i)], b[b_index.offset(i)]);
}

// ---------------------------------------------------------------- copy, fill, arange
template <class S, class D>
__global__ void copy_strided_kernel(const S* src, StridedIndex src_index, D* dst,
                                    StridedIndex dst_index, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads())
    dst[dst_index.offset(i)] = static_cast<D>(src[src_index.offset(i)]);
}

template <class T>
__global__ void fill_kernel(T* dst, T value, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads()) dst[i] = value;
}

template <class T>
__global__ void arange_kernel(T* dst, double start, double step, std::int64_t n) {
  for (std::int64_t i = global_thread(); i < n; i += grid_threads())
    dst[i] = static_cast<T>(start + step * static_cast<double>(i));
}

}  // namespace latent::kernels
