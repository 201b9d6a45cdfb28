// Layer normalization on the cpu backend: plain loops over rows, OpenMP across rows, every
// sum in double (for float32 and float64 alike): the statistics in two passes over the row
// shifted by its first element (the mean, then Σ(x − μ)², the textbook-stable way; the
// kernels' one-pass Welford merge is for the GPU's single read of the row), the dγ, dβ
// column sums over fixed chunks of rows, then the chunks in order. So results do not depend on the thread count. kernels/layer_norm.cuh derives the
// math; docs/layer_norm.md.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "backends/cpu/cpu.h"
#include "backends/dispatch.h"
#include "backends/layer_norm.h"
#include "backends/registry.h"
#include "kernels/layer_norm.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;

constexpr std::int64_t kParallelElements = 1 << 15;
constexpr std::int64_t kChunkRows = 256;  // rows per partial of dγ, dβ

void layer_norm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  dispatch_floating(x.dtype(), "layer_norm", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t cols = x.size(-1), rows = x.numel() / cols;
    const T* in = x.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* b = bias.defined() ? bias.data<T>() : nullptr;
    T* out = y.data<T>();
    T* mean_out = mean.data<T>();
    T* rstd_out = rstd.data<T>();
#pragma omp parallel for if (rows * cols > kParallelElements)
    for (std::int64_t r = 0; r < rows; ++r) {
      const T* row = in + r * cols;
      // Shifted by the row's first element K (as the kernels are): the sums are then of
      // the row's own spread, not of its mean, and μ = K + m keeps σ's relative accuracy.
      const double shift = static_cast<double>(row[0]);
      double sum = 0.0;
      for (std::int64_t c = 0; c < cols; ++c) sum += static_cast<double>(row[c]) - shift;
      const double centre = sum / static_cast<double>(cols);
      double m2 = 0.0;
      for (std::int64_t c = 0; c < cols; ++c) {
        const double d = (static_cast<double>(row[c]) - shift) - centre;
        m2 += d * d;
      }
      const double mu = shift + centre;
      const double rs = kernels::layer_norm_rstd(m2 / static_cast<double>(cols), eps);
      mean_out[r] = static_cast<T>(mu);
      rstd_out[r] = static_cast<T>(rs);
      for (std::int64_t c = 0; c < cols; ++c) {
        const double xhat = ((static_cast<double>(row[c]) - shift) - centre) * rs;
        out[r * cols + c] =
            static_cast<T>(w ? xhat * static_cast<double>(w[c]) + static_cast<double>(b[c]) : xhat);
      }
    }
  });
}

void layer_norm_backward(const Tensor& x, const Tensor& dL_dy, const Tensor& weight,
                         const Tensor& mean, const Tensor& rstd, const Tensor& dL_dx,
                         const Tensor& dL_dweight, const Tensor& dL_dbias) {
  dispatch_floating(x.dtype(), "layer_norm backward", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t cols = x.size(-1), rows = x.numel() / cols;
    const T* in = x.data<T>();
    const T* g = dL_dy.data<T>();
    const T* w = weight.defined() ? weight.data<T>() : nullptr;
    const T* mu = mean.data<T>();
    const T* rs = rstd.data<T>();
    auto xhat = [&](std::int64_t r, std::int64_t c) {
      return (static_cast<double>(in[r * cols + c]) - static_cast<double>(mu[r])) *
             static_cast<double>(rs[r]);
    };
    if (dL_dx.defined()) {
      T* dx = dL_dx.data<T>();
#pragma omp parallel for if (rows * cols > kParallelElements)
      for (std::int64_t r = 0; r < rows; ++r) {
        double sum_gw = 0.0, sum_gw_xhat = 0.0;
        for (std::int64_t c = 0; c < cols; ++c) {
          const double gw = static_cast<double>(g[r * cols + c]) * (w ? static_cast<double>(w[c]) : 1.0);
          sum_gw += gw;
          sum_gw_xhat += gw * xhat(r, c);
        }
        const double mean_gw = sum_gw / static_cast<double>(cols);
        const double mean_gw_xhat = sum_gw_xhat / static_cast<double>(cols);
        const double r_std = static_cast<double>(rs[r]);
        for (std::int64_t c = 0; c < cols; ++c) {
          const double gw = static_cast<double>(g[r * cols + c]) * (w ? static_cast<double>(w[c]) : 1.0);
          dx[r * cols + c] =
              static_cast<T>(kernels::layer_norm_dx(gw, xhat(r, c), mean_gw, mean_gw_xhat, r_std));
        }
      }
    }
    if (!dL_dweight.defined() && !dL_dbias.defined()) return;
    // Fixed chunks of rows into double partials, then the chunks in order.
    const std::int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
    std::vector<double> dw(static_cast<std::size_t>(chunks * cols), 0.0);
    std::vector<double> db(static_cast<std::size_t>(chunks * cols), 0.0);
#pragma omp parallel for if (rows * cols > kParallelElements)
    for (std::int64_t k = 0; k < chunks; ++k) {
      double* dw_k = dw.data() + k * cols;
      double* db_k = db.data() + k * cols;
      const std::int64_t last = std::min(rows, (k + 1) * kChunkRows);
      for (std::int64_t r = k * kChunkRows; r < last; ++r) {
        for (std::int64_t c = 0; c < cols; ++c) {
          const double gv = static_cast<double>(g[r * cols + c]);
          db_k[c] += gv;
          dw_k[c] += gv * xhat(r, c);
        }
      }
    }
    T* dweight = dL_dweight.defined() ? dL_dweight.data<T>() : nullptr;
    T* dbias = dL_dbias.defined() ? dL_dbias.data<T>() : nullptr;
    for (std::int64_t c = 0; c < cols; ++c) {
      double sw = 0.0, sb = 0.0;
      for (std::int64_t k = 0; k < chunks; ++k) {
        sw += dw[k * cols + c];
        sb += db[k * cols + c];
      }
      if (dweight) dweight[c] = static_cast<T>(sw);
      if (dbias) dbias[c] = static_cast<T>(sb);
    }
  });
}

}  // namespace

void register_layer_norm() {
  backend::Registry<backend::LayerNormTable>::add(DeviceType::cpu,
                                                  {&layer_norm_forward, &layer_norm_backward});
}

}  // namespace latent::cpu
