// The cpu backend: plain loops, OpenMP and OpenBLAS. It is the reference every other
// backend is tested against, so clarity wins over cleverness wherever the two differ.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "backends/dispatch.h"
#include "backends/backend.h"
#include "backends/cpu/strided_loop.h"
#include "kernels/adam.cuh"
#include "kernels/philox.cuh"
#include "kernels/philox_normal.cuh"

namespace latent::cpu {
namespace {

using backend::dispatch_floating;
using backend::dispatch_all;
using backend::ptr;

using backend::BinaryOp;
using backend::ConvGeometry;
using backend::UnaryOp;
using backend::UnaryParams;

// Calls f(T{}) with T the C++ type of a floating dtype.
template <class T>
T unary_forward(UnaryOp op, T x, T alpha, T beta) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::abs: return std::abs(x);
    case UnaryOp::square: return x * x;
    case UnaryOp::relu: return x > T(0) ? x : T(0);
    case UnaryOp::leaky_relu: return x > T(0) ? x : alpha * x;
    case UnaryOp::silu: return x / (T(1) + std::exp(-x));
    case UnaryOp::sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::pow: return std::pow(x, alpha);
    case UnaryOp::add_scalar: return x + alpha;
    case UnaryOp::mul_scalar: return x * alpha;
    case UnaryOp::rsub_scalar: return alpha - x;
    case UnaryOp::clamp: return std::min(std::max(x, alpha), beta);
  }
  return x;
}

// d op(x) / dx, given x and y = op(x).
template <class T>
T unary_derivative(UnaryOp op, T x, T y, T alpha, T beta) {
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
      const T s = T(1) / (T(1) + std::exp(-x));
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryOp::sigmoid: return y * (T(1) - y);
    case UnaryOp::tanh: return T(1) - y * y;
    // x^0 is constant: its derivative is 0 even at x = 0, where alpha·x^(alpha−1) = 0·inf.
    case UnaryOp::pow: return alpha == T(0) ? T(0) : alpha * std::pow(x, alpha - T(1));
    case UnaryOp::add_scalar: return T(1);
    case UnaryOp::mul_scalar: return alpha;
    case UnaryOp::rsub_scalar: return T(-1);
    case UnaryOp::clamp: return (x >= alpha && x <= beta) ? T(1) : T(0);
  }
  return T(0);
}

template <class T>
T binary_apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
  }
  return a;
}

class CpuBackend final : public backend::Backend {
 public:
  const char* name() const override { return "cpu"; }

  void* allocate(std::size_t nbytes) override {
    // 64-byte alignment: whole cache lines, and aligned for any vector width.
    const std::size_t rounded = ((std::max<std::size_t>(nbytes, 1) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, rounded);
    LATENT_CHECK(p != nullptr, "cpu allocate: out of memory asking for ", nbytes, " bytes");
    if (poison_allocations()) std::memset(p, 0xFF, rounded);
    return p;
  }
  void deallocate(void* p, std::size_t) noexcept override { std::free(p); }
  void copy_to_host(void* dst, const void* src, std::size_t n) override {
    if (n) std::memcpy(dst, src, n);
  }
  void copy_from_host(void* dst, const void* src, std::size_t n) override {
    if (n) std::memcpy(dst, src, n);
  }

  void copy(const Tensor& src, const Tensor& dst) override {
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

  void fill(const Tensor& dst, double value) override {
    dispatch_all(dst.dtype(), [&](auto z) {
      using T = decltype(z);
      T* out = ptr<T>(dst);
      const T v = static_cast<T>(value);
      const std::int64_t n = dst.numel();
#pragma omp parallel for if (n > kParallelThreshold)
      for (std::int64_t i = 0; i < n; ++i) out[i] = v;
    });
  }

  void arange(const Tensor& dst, double start, double step) override {
    dispatch_all(dst.dtype(), [&](auto z) {
      using T = decltype(z);
      T* out = ptr<T>(dst);
      const std::int64_t n = dst.numel();
      for (std::int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(start + step * i);
    });
  }

  void random_uniform(const Tensor& dst, PhiloxKey key, double low, double high) override {
    const std::int64_t n = dst.numel();
    const double scale = high - low;
    dispatch_floating(dst.dtype(), "random_uniform", [&](auto z) {
      using T = decltype(z);
      T* out = ptr<T>(dst);
#pragma omp parallel for if (n > kParallelThreshold)
      for (std::int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<T, float>) {
          out[i] = static_cast<float>(low + scale * kernels::philox_uniform_f32(
                                                        key.seed, key.offset, i));
        } else {
          out[i] = low + scale * kernels::philox_uniform_f64(key.seed, key.offset, i);
        }
      }
    });
  }

  void random_normal(const Tensor& dst, PhiloxKey key) override {
    const std::int64_t n = dst.numel();
    const std::int64_t groups = (n + 3) / 4;
    dispatch_floating(dst.dtype(), "random_normal", [&](auto z) {
      using T = decltype(z);
      T* out = ptr<T>(dst);
#pragma omp parallel for if (n > kParallelThreshold)
      for (std::int64_t g = 0; g < groups; ++g) {
        // Box–Muller with exactly rounded arithmetic: bitwise the same on every backend.
        const kernels::Normal4 v = kernels::philox_normal4(key.seed, key.offset, g);
        for (int j = 0; j < 4 && g * 4 + j < n; ++j) out[g * 4 + j] = static_cast<T>(v.v[j]);
      }
    });
  }

  void unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryParams p) override {
    dispatch_floating(x.dtype(), backend::unary_op_name(op), [&](auto z) {
      using T = decltype(z);
      const T* in = ptr<T>(x);
      T* o = ptr<T>(out);
      const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
      const std::int64_t n = x.numel();
#pragma omp parallel for if (n > kParallelThreshold)
      for (std::int64_t i = 0; i < n; ++i) o[i] = unary_forward(op, in[i], alpha, beta);
    });
  }

  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& dL_dy,
                      const Tensor& dL_dx, UnaryParams p) override {
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
        o[i] = g[i] * unary_derivative(op, xs[i], ys[i], alpha, beta);
    });
  }

  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override {
    dispatch_floating(out.dtype(), backend::binary_op_name(op), [&](auto z) {
      using T = decltype(z);
      const T* pa = ptr<T>(a);
      const T* pb = ptr<T>(b);
      T* po = ptr<T>(out);
      StridedLoop<3>(out.shape(), {a.strides(), b.strides(), out.strides()})
          .run([&](const auto& off, std::int64_t n, const auto& step) {
            const T* x = pa + off[0];
            const T* y = pb + off[1];
            T* o = po + off[2];
            if (step[0] == 1 && step[1] == 1 && step[2] == 1) {
              for (std::int64_t j = 0; j < n; ++j) o[j] = binary_apply(op, x[j], y[j]);
            } else {
              for (std::int64_t j = 0; j < n; ++j)
                o[j * step[2]] = binary_apply(op, x[j * step[0]], y[j * step[1]]);
            }
          });
    });
  }

  void sum(const Tensor& x, const Tensor& out) override {
    // Split x's dims into kept (out size > 1) and reduced (out size 1, x size > 1).
    Shape kept_shape, kept_strides, reduced_shape, reduced_strides;
    for (std::int64_t d = 0; d < x.dim(); ++d) {
      if (x.shape()[d] == 1) continue;
      if (out.shape()[d] == 1) {
        reduced_shape.push_back(x.shape()[d]);
        reduced_strides.push_back(x.strides()[d]);
      } else {
        kept_shape.push_back(x.shape()[d]);
        kept_strides.push_back(x.strides()[d]);
      }
    }
    const StridedLoop<1> reduced(reduced_shape, {reduced_strides});
    const std::int64_t outputs = out.numel();
    const std::int64_t per_output = shape_numel(reduced_shape);
    dispatch_floating(x.dtype(), "sum", [&](auto z) {
      using T = decltype(z);
      const T* in = ptr<T>(x);
      T* o = ptr<T>(out);
      // Sum of the reduced block starting at `base`, accumulated in double, in a fixed order.
      auto reduce_block = [&](std::int64_t base) {
        double acc = 0.0;
        walk_sequential(reduced, [&](std::int64_t off, std::int64_t n, std::int64_t step) {
          const T* p = in + base + off;
          if (step == 1) {
            for (std::int64_t j = 0; j < n; ++j) acc += p[j];
          } else {
            for (std::int64_t j = 0; j < n; ++j) acc += p[j * step];
          }
        });
        return acc;
      };
      auto output_base = [&](std::int64_t index) {
        std::int64_t base = 0;
        for (std::int64_t d = static_cast<std::int64_t>(kept_shape.size()) - 1; d >= 0; --d) {
          base += (index % kept_shape[d]) * kept_strides[d];
          index /= kept_shape[d];
        }
        return base;
      };
      if (outputs == 1 && reduced.shape.size() <= 1 && per_output > kParallelThreshold) {
        // One long contiguous-or-strided run: fixed-size chunks summed in parallel, then
        // combined in chunk order, so the result does not depend on the thread count.
        const std::int64_t step = reduced.shape.empty() ? 1 : reduced.strides[0][0];
        constexpr std::int64_t kChunk = 1 << 13;
        const std::int64_t chunks = (per_output + kChunk - 1) / kChunk;
        std::vector<double> partial(chunks);
#pragma omp parallel for schedule(static)
        for (std::int64_t c = 0; c < chunks; ++c) {
          const std::int64_t begin = c * kChunk, end = std::min(per_output, begin + kChunk);
          double acc = 0.0;
          for (std::int64_t j = begin; j < end; ++j) acc += in[j * step];
          partial[c] = acc;
        }
        double total = 0.0;
        for (double v : partial) total += v;
        o[0] = static_cast<T>(total);
        return;
      }
#pragma omp parallel for schedule(static) if (x.numel() > kParallelThreshold && outputs > 1)
      for (std::int64_t i = 0; i < outputs; ++i) {
        o[i] = static_cast<T>(reduce_block(output_base(i)));
      }
    });
  }

  void argmax_rows(const Tensor& x, const Tensor& out) override {
    const std::int64_t rows = x.shape()[0], cols = x.shape()[1];
    std::int32_t* o = ptr<std::int32_t>(out);
    dispatch_floating(x.dtype(), "argmax", [&](auto z) {
      using T = decltype(z);
      const T* in = ptr<T>(x);
#pragma omp parallel for if (x.numel() > kParallelThreshold)
      for (std::int64_t r = 0; r < rows; ++r) {
        const T* row = in + r * cols;
        std::int64_t best = 0;
        // NaN beats every number, as in torch.argmax; ties keep the earlier column.
        for (std::int64_t c = 1; c < cols && row[best] == row[best]; ++c)
          if (row[c] > row[best] || row[c] != row[c]) best = c;
        o[r] = static_cast<std::int32_t>(best);
      }
    });
  }

  void gemm(DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k,
            double alpha, const void* a, std::int64_t lda, const void* b, std::int64_t ldb,
            double beta, void* c, std::int64_t ldc) override {
    const auto trans_a = ta ? CblasTrans : CblasNoTrans;
    const auto trans_b = tb ? CblasTrans : CblasNoTrans;
    if (dtype == DType::f32) {
      cblas_sgemm(CblasRowMajor, trans_a, trans_b, m, n, k, static_cast<float>(alpha),
                  static_cast<const float*>(a), lda, static_cast<const float*>(b), ldb,
                  static_cast<float>(beta), static_cast<float*>(c), ldc);
    } else if (dtype == DType::f64) {
      cblas_dgemm(CblasRowMajor, trans_a, trans_b, m, n, k, alpha,
                  static_cast<const double*>(a), lda, static_cast<const double*>(b), ldb,
                  beta, static_cast<double*>(c), ldc);
    } else {
      LATENT_FAIL("cpu gemm: expected float32 or float64, got ", dtype_name(dtype));
    }
  }

  // The valid output columns [begin, end) of kernel column kw: those whose input column
  // ow·stride − padding + kw lies inside the image.
  static void valid_range(std::int64_t out, std::int64_t size, std::int64_t stride,
                          std::int64_t offset, std::int64_t& begin, std::int64_t& end) {
    // ow·stride + offset >= 0  and  ow·stride + offset < size
    begin = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    end = size - offset <= 0 ? 0 : std::min(out, (size - offset + stride - 1) / stride);
    if (end < begin) end = begin;
  }

  void im2col(const ConvGeometry& g, const Tensor& x, const Tensor& cols) override {
    dispatch_floating(x.dtype(), "im2col", [&](auto z) {
      using T = decltype(z);
      const T* in = ptr<T>(x);
      T* out = ptr<T>(cols);
      const std::int64_t row_len = g.col_cols(), plane = g.out_h * g.out_w;
#pragma omp parallel for collapse(2) if (cols.numel() > kParallelThreshold)
      for (std::int64_t row = 0; row < g.col_rows(); ++row) {
        for (std::int64_t n = 0; n < g.batch; ++n) {
          const std::int64_t c = row / (g.kernel_h * g.kernel_w);
          const std::int64_t kh = (row / g.kernel_w) % g.kernel_h, kw = row % g.kernel_w;
          const T* image = in + (n * g.channels + c) * g.height * g.width;
          T* dst = out + row * row_len + n * plane;
          std::int64_t ow_begin, ow_end;
          valid_range(g.out_w, g.width, g.stride, kw - g.padding, ow_begin, ow_end);
          for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
            T* line = dst + oh * g.out_w;
            const std::int64_t ih = oh * g.stride - g.padding + kh;
            if (ih < 0 || ih >= g.height) {
              std::fill(line, line + g.out_w, T(0));
              continue;
            }
            const T* src = image + ih * g.width;
            const std::int64_t shift = kw - g.padding;
            std::fill(line, line + ow_begin, T(0));
            for (std::int64_t ow = ow_begin; ow < ow_end; ++ow) line[ow] = src[ow * g.stride + shift];
            std::fill(line + ow_end, line + g.out_w, T(0));
          }
        }
      }
    });
  }

  void col2im(const ConvGeometry& g, const Tensor& cols, const Tensor& x) override {
    // Scatter form, one image plane per thread: every plane (n, c) adds the rows of its
    // channel in a fixed (kh, kw, oh, ow) order, so each pixel sums its contributions in
    // ascending (kh, kw) order — deterministic, and the order the cuda gather uses.
    dispatch_floating(x.dtype(), "col2im", [&](auto z) {
      using T = decltype(z);
      const T* in = ptr<T>(cols);
      T* out = ptr<T>(x);
      const std::int64_t row_len = g.col_cols(), plane = g.out_h * g.out_w;
#pragma omp parallel for collapse(2) if (x.numel() > 4096)
      for (std::int64_t n = 0; n < g.batch; ++n) {
        for (std::int64_t c = 0; c < g.channels; ++c) {
          T* image = out + (n * g.channels + c) * g.height * g.width;
          std::fill(image, image + g.height * g.width, T(0));
          for (std::int64_t kh = 0; kh < g.kernel_h; ++kh) {
            for (std::int64_t kw = 0; kw < g.kernel_w; ++kw) {
              const std::int64_t row = (c * g.kernel_h + kh) * g.kernel_w + kw;
              const T* src = in + row * row_len + n * plane;
              std::int64_t ow_begin, ow_end;
              valid_range(g.out_w, g.width, g.stride, kw - g.padding, ow_begin, ow_end);
              for (std::int64_t oh = 0; oh < g.out_h; ++oh) {
                const std::int64_t ih = oh * g.stride - g.padding + kh;
                if (ih < 0 || ih >= g.height) continue;
                T* dst = image + ih * g.width;
                const std::int64_t shift = kw - g.padding;
                const T* line = src + oh * g.out_w;
                for (std::int64_t ow = ow_begin; ow < ow_end; ++ow)
                  dst[ow * g.stride + shift] += line[ow];
              }
            }
          }
        }
      }
    });
  }

  void adam_step(const kernels::AdamConstants& c, const Tensor& param, const Tensor& grad,
                 const Tensor& exp_avg, const Tensor& exp_avg_sq) override {
    dispatch_floating(param.dtype(), "adam_step", [&](auto z) {
      using T = decltype(z);
      T* p = ptr<T>(param);
      const T* g = ptr<T>(grad);
      T* m = ptr<T>(exp_avg);
      T* v = ptr<T>(exp_avg_sq);
      const std::int64_t n = param.numel();
#pragma omp parallel for if (n > kParallelThreshold)
      for (std::int64_t i = 0; i < n; ++i) kernels::adam_element(c, p[i], g[i], m[i], v[i]);
    });
  }

 private:
  // Visits the runs of a single-operand loop in order, on the calling thread.
  template <class Body>
  static void walk_sequential(const StridedLoop<1>& loop, Body&& body) {
    if (loop.shape.empty()) {
      body(0, 1, 1);
      return;
    }
    const std::size_t rank = loop.shape.size();
    const std::int64_t inner = loop.shape.back(), step = loop.strides[0].back();
    std::vector<std::int64_t> index(rank, 0);
    std::int64_t offset = 0;
    while (true) {
      body(offset, inner, step);
      std::int64_t d = static_cast<std::int64_t>(rank) - 2;
      for (; d >= 0; --d) {
        offset += loop.strides[0][d];
        if (++index[d] < loop.shape[d]) break;
        offset -= loop.strides[0][d] * loop.shape[d];
        index[d] = 0;
      }
      if (d < 0) return;
    }
  }
};

CpuBackend cpu_backend_instance;

}  // namespace
}  // namespace latent::cpu

namespace latent::backend {
Backend& cpu() { return cpu::cpu_backend_instance; }
}  // namespace latent::backend
