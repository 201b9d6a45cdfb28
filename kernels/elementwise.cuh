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

#include "kernels/device.cuh"
#include "kernels/grid.cuh"
#include "kernels/indexing.cuh"
#include "kernels/unary_ops.cuh"
#include "kernels/vec16.cuh"

namespace latent::kernels {

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
    for (std::int64_t p = grid_stride_begin(); p < packs; p += grid_stride_step()) {
      Pack<T> in, out;
      in.vector = xv[p];
#pragma unroll
      for (int j = 0; j < W; ++j) out.lane[j] = unary_value(op, in.lane[j], alpha, beta);
      yv[p] = out.vector;
    }
    done = packs * W;
  }
  for (std::int64_t i = done + grid_stride_begin(); i < n; i += grid_stride_step())
    y[i] = unary_value(op, x[i], alpha, beta);
}

template <class T>
__global__ void unary_backward_kernel(UnaryOp op, const T* x, const T* y, const T* dL_dy,
                                      T* dL_dx, std::int64_t n, T alpha, T beta) {
  for (std::int64_t i = grid_stride_begin(); i < n; i += grid_stride_step())
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
    for (std::int64_t p = grid_stride_begin(); p < packs; p += grid_stride_step()) {
      Pack<T> pa, pb, po;
      pa.vector = av[p];
      pb.vector = bv[p];
#pragma unroll
      for (int j = 0; j < W; ++j) po.lane[j] = binary_value(op, pa.lane[j], pb.lane[j]);
      ov[p] = po.vector;
    }
    done = packs * W;
  }
  for (std::int64_t i = done + grid_stride_begin(); i < n; i += grid_stride_step())
    out[i] = binary_value(op, a[i], b[i]);
}

// a and b are views broadcast to out's shape (stride 0 where broadcast); out contiguous.
// Index: std::int64_t, or std::int32_t when every extent fits (index32_fits).
template <class T, class Index>
__global__ void binary_strided_kernel(BinaryOp op, const T* a, StridedIndexT<Index> a_index,
                                      const T* b, StridedIndexT<Index> b_index, T* out,
                                      Index n) {
  for (Index i = static_cast<Index>(grid_stride_begin()); i < n;
       i += static_cast<Index>(grid_stride_step()))
    out[i] = binary_value(op, a[a_index.offset(i)], b[b_index.offset(i)]);
}

// ---------------------------------------------------------------- copy, fill, arange
template <class S, class D, class Index>
__global__ void copy_strided_kernel(const S* src, StridedIndexT<Index> src_index, D* dst,
                                    StridedIndexT<Index> dst_index, Index n) {
  for (Index i = static_cast<Index>(grid_stride_begin()); i < n;
       i += static_cast<Index>(grid_stride_step()))
    dst[dst_index.offset(i)] = static_cast<D>(src[src_index.offset(i)]);
}

template <class T>
__global__ void fill_kernel(T* dst, T value, std::int64_t n) {
  for (std::int64_t i = grid_stride_begin(); i < n; i += grid_stride_step()) dst[i] = value;
}

template <class T>
__global__ void arange_kernel(T* dst, double start, double step, std::int64_t n) {
  for (std::int64_t i = grid_stride_begin(); i < n; i += grid_stride_step())
    dst[i] = static_cast<T>(add_product_rn(start, step, static_cast<double>(i)));
}

}  // namespace latent::kernels
