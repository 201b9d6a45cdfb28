// Layer normalization on the cuda backend: the launches of kernels/layer_norm.cuh. Built by
// nvcc for a GPU, or by the host compiler against the SIMT executor (docs/simt.md).
// docs/layer_norm.md.
//
// The row kernels run a warp per row, kLayerNormThreads threads (kLayerNormWarps rows) per
// block, grid grid_for(rows · 32) (capped; they walk the rows grid-stride); the instance is
// picked on the host: affine or not, 16-byte groups or single elements. The dγ, dβ partials
// run a thread per column over a 2-D grid (column blocks × row chunks, the chunks capped
// and walked grid-stride), then a finishing kernel adds the chunks in order.
#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "backends/cuda/cuda.h"
#include "backends/cuda/launch.h"
#include "backends/dispatch.h"
#include "backends/layer_norm.h"
#include "backends/registry.h"
#include "kernels/layer_norm.cuh"

namespace latent::cuda {
namespace {

using kernels::kLayerNormThreads;
using kernels::kWarp;

dim3 row_grid(std::int64_t rows) { return grid_for(rows * kWarp, kLayerNormThreads); }

// 16-byte groups: whole groups per row, and every pointer (null ones pass) 16-byte aligned.
template <class T>
bool vectorizable(std::int64_t cols, std::initializer_list<const Tensor*> tensors) {
  if (cols % kernels::Vec16<T>::width != 0) return false;
  for (const Tensor* t : tensors)
    if (t->defined() && !aligned16(t->data_ptr())) return false;
  return true;
}

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  dispatch_floating(x.dtype(), "layer_norm", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t cols = x.size(-1), rows = x.numel() / cols;
    const bool affine = weight.defined();
    const bool vectorized = vectorizable<T>(cols, {&x, &weight, &bias, &y});
    const T e = static_cast<T>(eps);
#define LATENT_LAYER_NORM_FORWARD(AFFINE, VECTORIZED)                                         \
  LATENT_LAUNCH((kernels::layer_norm_forward_kernel<T, AFFINE, VECTORIZED>), row_grid(rows),    \
                dim3(kLayerNormThreads), 0, stream(), ptr<const T>(x), ptr<const T>(weight),     \
                ptr<const T>(bias), ptr<T>(y), ptr<T>(mean), ptr<T>(rstd), rows, cols, e)
    if (affine && vectorized) LATENT_LAYER_NORM_FORWARD(true, true);
    else if (affine) LATENT_LAYER_NORM_FORWARD(true, false);
    else if (vectorized) LATENT_LAYER_NORM_FORWARD(false, true);
    else LATENT_LAYER_NORM_FORWARD(false, false);
#undef LATENT_LAYER_NORM_FORWARD
  });
}

void layer_norm_backward(const Tensor& x, const Tensor& dL_dy, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd, const Tensor& dL_dx,
                         const Tensor& dL_dweight, const Tensor& dL_dbias) {
  dispatch_floating(x.dtype(), "layer_norm backward", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t cols = x.size(-1), rows = x.numel() / cols;
    if (dL_dx.defined()) {
      const bool affine = weight.defined();
      const bool vectorized = vectorizable<T>(cols, {&x, &dL_dy, &weight, &dL_dx});
#define LATENT_LAYER_NORM_BACKWARD(AFFINE, VECTORIZED)                                       \
  LATENT_LAUNCH((kernels::layer_norm_backward_kernel<T, AFFINE, VECTORIZED>), row_grid(rows),  \
                dim3(kLayerNormThreads), 0, stream(), ptr<const T>(x), ptr<const T>(dL_dy),     \
                ptr<const T>(weight), ptr<const T>(mean), ptr<const T>(rstd), ptr<T>(dL_dx),    \
                rows, cols)
      if (affine && vectorized) LATENT_LAYER_NORM_BACKWARD(true, true);
      else if (affine) LATENT_LAYER_NORM_BACKWARD(true, false);
      else if (vectorized) LATENT_LAYER_NORM_BACKWARD(false, true);
      else LATENT_LAYER_NORM_BACKWARD(false, false);
#undef LATENT_LAYER_NORM_BACKWARD
    }
    if (!dL_dweight.defined() && !dL_dbias.defined()) return;
    const std::int64_t chunk_rows = kernels::layer_norm_chunk_rows(rows);
    const std::int64_t chunks = kernels::layer_norm_chunks(rows);
    // One chunk: the partials are the gradients. Otherwise scratch [chunks, cols] each.
    Tensor dw_partial = dL_dweight, db_partial = dL_dbias;
    if (chunks > 1) {
      if (dL_dweight.defined()) dw_partial = empty({chunks, cols}, x.dtype(), x.device());
      if (dL_dbias.defined()) db_partial = empty({chunks, cols}, x.dtype(), x.device());
    }
    const std::int64_t column_blocks = (cols + kLayerNormThreads - 1) / kLayerNormThreads;
    const std::int64_t chunk_blocks =
        std::min<std::int64_t>(chunks, std::min<std::int64_t>(65535, max_grid_blocks()));
    const dim3 grid(grid_x_checked(column_blocks, "layer_norm backward").x,
                    static_cast<unsigned>(chunk_blocks));
    LATENT_LAUNCH(kernels::layer_norm_param_partials_kernel<T>, grid, dim3(kLayerNormThreads), 0,
                  stream(), ptr<const T>(x), ptr<const T>(dL_dy), ptr<const T>(mean),
                  ptr<const T>(rstd), ptr<T>(dw_partial), ptr<T>(db_partial), rows, cols,
                  chunk_rows, chunks);
    if (chunks > 1) {
      const dim3 finish = grid_for(cols, kLayerNormThreads);
      if (dL_dweight.defined()) {
        LATENT_LAUNCH(kernels::layer_norm_param_finish_kernel<T>, finish, dim3(kLayerNormThreads),
                      0, stream(), ptr<const T>(dw_partial), chunks, cols, ptr<T>(dL_dweight));
      }
      if (dL_dbias.defined()) {
        LATENT_LAUNCH(kernels::layer_norm_param_finish_kernel<T>, finish, dim3(kLayerNormThreads),
                      0, stream(), ptr<const T>(db_partial), chunks, cols, ptr<T>(dL_dbias));
      }
    }
  });
}

}  // namespace

void register_layer_norm() {
  backend::Registry<backend::LayerNormTable>::add(DeviceType::cuda,
                                                  {&layer_norm_forward, &layer_norm_backward});
}

}  // namespace latent::cuda
