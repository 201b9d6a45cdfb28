// Causal self-attention on the cuda backend: the launches of kernels/attention.cuh. Built by
// nvcc for a GPU, or by the host compiler against the SIMT executor (docs/simt.md).
// docs/attention.md.
//
// Forward and backward: one block of kAttentionThreads per (sequence, head), grid B·H. The
// backward keeps p and ds of the head in shared memory and asks for more than the default
// 48 KiB when the head needs it (up to 97 KiB at T = d = 64 in float32, 194 KiB in float64;
// an H100/H200 block may have 227 KiB). Decoding: one warp per (sequence, head).
#include <cmath>
#include <cstdint>

#include "backends/attention.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/registry.h"
#include "kernels/attention.cuh"

namespace latent::cuda {
namespace {

using backend::AttentionShape;

constexpr std::size_t kDefaultSharedBytes = 48 * 1024;

template <class Kernel>
void allow_shared(Kernel kernel, std::size_t bytes) {
  if (bytes > kDefaultSharedBytes) {
    LATENT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           static_cast<int>(bytes)));
  }
}

dim3 head_grid(const AttentionShape& s, const char* op) {
  return grid_x_checked(s.batch * s.heads, op);
}

void attention_forward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                       const AttentionShape& shape) {
  dispatch_floating(qkv.dtype(), "attention_forward", [&](auto zero) {
    using T = decltype(zero);
    const int n = static_cast<int>(shape.tokens), d = static_cast<int>(shape.head_dim);
    const std::size_t bytes = kernels::attention_forward_shared_bytes<T>(n, d);
    allow_shared(kernels::causal_attention_forward_kernel<T>, bytes);
    LATENT_LAUNCH(kernels::causal_attention_forward_kernel<T>, head_grid(shape, "attention"),
                  kernels::kAttentionThreads, bytes, stream(), ptr<const T>(qkv), ptr<T>(out),
                  ptr<T>(lse), n, static_cast<int>(shape.heads), d,
                  static_cast<T>(1.0 / std::sqrt(static_cast<double>(d))));
  });
}

void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const Tensor& dqkv, const AttentionShape& shape) {
  dispatch_floating(qkv.dtype(), "attention_backward", [&](auto zero) {
    using T = decltype(zero);
    const int n = static_cast<int>(shape.tokens), d = static_cast<int>(shape.head_dim);
    const std::size_t bytes = kernels::attention_backward_shared_bytes<T>(n, d);
    allow_shared(kernels::causal_attention_backward_kernel<T>, bytes);
    LATENT_LAUNCH(kernels::causal_attention_backward_kernel<T>,
                  head_grid(shape, "attention_backward"), kernels::kAttentionThreads, bytes,
                  stream(), ptr<const T>(qkv), ptr<const T>(out), ptr<const T>(lse),
                  ptr<const T>(dout), ptr<T>(dqkv), n, static_cast<int>(shape.heads), d,
                  static_cast<T>(1.0 / std::sqrt(static_cast<double>(d))));
  });
}

void attention_decode_step(const Tensor& qkv, const Tensor& keys, const Tensor& values,
                           const Tensor& out, std::int64_t position, const AttentionShape& shape) {
  dispatch_floating(qkv.dtype(), "attention_decode_step", [&](auto zero) {
    using T = decltype(zero);
    const int d = static_cast<int>(shape.head_dim);
    LATENT_LAUNCH(kernels::attention_decode_kernel<T>, head_grid(shape, "attention_decode_step"),
                  32, kernels::attention_decode_shared_bytes<T>(d), stream(), ptr<const T>(qkv),
                  ptr<T>(keys), ptr<T>(values), ptr<T>(out), static_cast<int>(position),
                  static_cast<int>(shape.tokens), static_cast<int>(shape.heads), d,
                  static_cast<T>(1.0 / std::sqrt(static_cast<double>(d))));
  });
}

void causal_softmax(const Tensor& scores, std::int64_t tokens) {
  dispatch_floating(scores.dtype(), "causal_softmax", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t rows = scores.numel() / tokens;
    LATENT_LAUNCH(kernels::causal_softmax_kernel<T>, grid_for(rows, 8), 256, 0, stream(),
                  ptr<T>(scores), rows, static_cast<int>(tokens));
  });
}

}  // namespace

void register_attention() {
  backend::Registry<backend::AttentionTable>::add(
      DeviceType::cuda,
      {&attention_forward, &attention_backward, &attention_decode_step, &causal_softmax});
}

}  // namespace latent::cuda
