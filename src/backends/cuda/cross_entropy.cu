// Softmax cross-entropy on the cuda backend: the launches of kernels/cross_entropy.cuh.
// Built by nvcc for a GPU, or by the host compiler against the SIMT executor (docs/simt.md).
// docs/cross_entropy.md.
//
// Both kernels run one warp per row: blocks of kCrossEntropyWarps warps, grid
// grid_for(rows, kCrossEntropyWarps) (capped; the kernels walk the rows grid-stride), no
// shared memory.
#include <cstdint>

#include "backends/cross_entropy.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/registry.h"
#include "kernels/cross_entropy.cuh"

namespace latent::cuda {
namespace {

using kernels::kCrossEntropyThreads;
using kernels::kCrossEntropyWarps;

dim3 row_grid(std::int64_t rows) { return grid_for(rows, kCrossEntropyWarps); }

// Rows start on 16-byte boundaries when the first does and K is a multiple of the width.
template <class T>
bool rows_vectorized(std::int64_t K, const Tensor& a, const Tensor& b = Tensor()) {
  return K % kernels::Vec16<T>::width == 0 && aligned16(a.data_ptr()) &&
         (!b.defined() || aligned16(b.data_ptr()));
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss,
                           const Tensor& lse, const backend::CheckMessage& target_message) {
  const std::int64_t rows = logits.size(0), K = logits.size(1);
  if (rows == 0) return;
  kernels::CheckSite target_check;
  if (target_message) target_check = register_check_site(target_message);
  dispatch_floating(logits.dtype(), "cross_entropy_forward", [&](auto zero) {
    using T = decltype(zero);
    LATENT_LAUNCH(kernels::cross_entropy_forward_kernel<T>, row_grid(rows),
                  dim3(kCrossEntropyThreads), 0, stream(), ptr<const T>(logits),
                  ptr<const std::int32_t>(targets), rows, K, rows_vectorized<T>(K, logits),
                  ptr<T>(loss), ptr<T>(lse), target_check);
  });
  if (target_message) after_check();
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                            const Tensor& dloss, const Tensor& dlogits) {
  const std::int64_t rows = logits.size(0), K = logits.size(1);
  if (rows == 0) return;
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&](auto zero) {
    using T = decltype(zero);
    LATENT_LAUNCH(kernels::cross_entropy_backward_kernel<T>, row_grid(rows),
                  dim3(kCrossEntropyThreads), 0, stream(), ptr<const T>(logits),
                  ptr<const std::int32_t>(targets), ptr<const T>(lse), ptr<const T>(dloss),
                  rows, K, rows_vectorized<T>(K, logits, dlogits), ptr<T>(dlogits));
  });
}

}  // namespace

void register_cross_entropy() {
  backend::Registry<backend::CrossEntropyTable>::add(
      DeviceType::cuda, {&cross_entropy_forward, &cross_entropy_backward});
}

}  // namespace latent::cuda
