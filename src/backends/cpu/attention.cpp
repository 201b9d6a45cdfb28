// Causal self-attention on the cpu backend: the formulas of kernels/attention.cuh as plain
// loops, one (sequence, head) per OpenMP iteration, every sum accumulated in double and
// rounded once (the reference the kernels are checked against), the loops vectorized by
// target clones. docs/attention.md.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/attention.h"
#include "backends/cpu/cpu.h"
#include "backends/cpu/vector_math.h"
#include "backends/dispatch.h"
#include "backends/registry.h"

namespace latent::cpu {
namespace {

using backend::AttentionShape;
using backend::dispatch_floating;

// The per-head work, on double arrays: q, k, v, g row-major [T][d], kᵀ and vᵀ [d][T]. Every
// loop is an axpy over j or c (no reductions to reorder), so the AVX-512 / AVX2 clones give
// the bits of the baseline loop (the library builds with -ffp-contract=off).

// p [T][T] (0 above the diagonal) and each row's log-sum-exp.
LATENT_CPU_VECTOR_CLONES
void head_probabilities(const double* q, const double* k_t, std::int64_t n, std::int64_t d,
                        double scale, double* p, double* lse) {
  std::fill(p, p + n * n, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    double* s = p + i * n;
    for (std::int64_t c = 0; c < d; ++c) {
      const double qc = q[i * d + c];
      const double* kc = k_t + c * n;
      for (std::int64_t j = 0; j <= i; ++j) s[j] += qc * kc[j];
    }
    double m = -INFINITY;
    for (std::int64_t j = 0; j <= i; ++j) m = std::max(m, s[j] *= scale);
    double l = 0.0;
    for (std::int64_t j = 0; j <= i; ++j) l += (s[j] = std::exp(s[j] - m));
    lse[i] = m + std::log(l);
    const double inverse = 1.0 / l;
    for (std::int64_t j = 0; j <= i; ++j) s[j] *= inverse;
  }
}

// out [T][d] = p·v.
LATENT_CPU_VECTOR_CLONES
void head_output(const double* p, const double* v, std::int64_t n, std::int64_t d, double* out) {
  std::fill(out, out + n * d, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    double* o = out + i * d;
    for (std::int64_t j = 0; j <= i; ++j) {
      const double pij = p[i * n + j];
      const double* vj = v + j * d;
      for (std::int64_t c = 0; c < d; ++c) o[c] += pij * vj[c];
    }
  }
}

// dq, dk, dv [T][d] (dq and dk without the scale) from p and g.
LATENT_CPU_VECTOR_CLONES
void head_gradients(const double* q, const double* k, const double* v_t, const double* g,
                    const double* p, std::int64_t n, std::int64_t d, double* ds, double* dq,
                    double* dk, double* dv) {
  // ds_ij = p_ij·(g_i·v_j − Σ_k p_ik·g_i·v_k)
  std::fill(ds, ds + n * n, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    double* dp = ds + i * n;
    for (std::int64_t c = 0; c < d; ++c) {
      const double gc = g[i * d + c];
      const double* vc = v_t + c * n;
      for (std::int64_t j = 0; j <= i; ++j) dp[j] += gc * vc[j];
    }
    double delta = 0.0;
    for (std::int64_t j = 0; j <= i; ++j) delta += p[i * n + j] * dp[j];
    for (std::int64_t j = 0; j <= i; ++j) dp[j] = p[i * n + j] * (dp[j] - delta);
  }
  std::fill(dq, dq + n * d, 0.0);
  std::fill(dk, dk + n * d, 0.0);
  std::fill(dv, dv + n * d, 0.0);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j <= i; ++j) {
      const double dsij = ds[i * n + j], pij = p[i * n + j];
      const double* kj = k + j * d;
      const double* qi = q + i * d;
      const double* gi = g + i * d;
      double* dqi = dq + i * d;
      double* dkj = dk + j * d;
      double* dvj = dv + j * d;
      for (std::int64_t c = 0; c < d; ++c) {
        dqi[c] += dsij * kj[c];
        dkj[c] += dsij * qi[c];
        dvj[c] += pij * gi[c];
      }
    }
  }
}

// One head of one sequence staged as double: q, k, v row-major and k, v transposed.
struct Head {
  std::int64_t n = 0, d = 0;
  std::vector<double> q, k, v, k_t, v_t, p, lse;

  template <class T>
  Head(const T* qkv, std::int64_t b, std::int64_t h, std::int64_t tokens, std::int64_t head_dim,
       std::int64_t channels)
      : n(tokens), d(head_dim) {
    const std::size_t size = static_cast<std::size_t>(n * d);
    q.resize(size);
    k.resize(size);
    v.resize(size);
    k_t.resize(size);
    v_t.resize(size);
    for (std::int64_t t = 0; t < n; ++t) {
      const T* row = qkv + (b * n + t) * 3 * channels + h * d;
      for (std::int64_t c = 0; c < d; ++c) {
        q[t * d + c] = static_cast<double>(row[c]);
        k[t * d + c] = k_t[c * n + t] = static_cast<double>(row[channels + c]);
        v[t * d + c] = v_t[c * n + t] = static_cast<double>(row[2 * channels + c]);
      }
    }
    p.resize(static_cast<std::size_t>(n * n));
    lse.resize(static_cast<std::size_t>(n));
    head_probabilities(q.data(), k_t.data(), n, d, 1.0 / std::sqrt(static_cast<double>(d)),
                       p.data(), lse.data());
  }
};

void attention_forward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                       const AttentionShape& shape) {
  dispatch_floating(qkv.dtype(), "attention_forward", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t n = shape.tokens, d = shape.head_dim, C = shape.channels();
    const T* in = qkv.data<T>();
    T* o = out.data<T>();
    T* row_lse = lse.data<T>();
#pragma omp parallel for schedule(static)
    for (std::int64_t bh = 0; bh < shape.batch * shape.heads; ++bh) {
      const std::int64_t b = bh / shape.heads, h = bh % shape.heads;
      const Head head(in, b, h, n, d, C);
      std::vector<double> acc(static_cast<std::size_t>(n * d));
      head_output(head.p.data(), head.v.data(), n, d, acc.data());
      for (std::int64_t i = 0; i < n; ++i) {
        for (std::int64_t c = 0; c < d; ++c) o[(b * n + i) * C + h * d + c] = static_cast<T>(acc[i * d + c]);
        row_lse[bh * n + i] = static_cast<T>(head.lse[i]);
      }
    }
  });
}

// The probabilities are recomputed in double from qkv (the reference does not use the saved,
// rounded lse or out), then the formulas of the header.
void attention_backward(const Tensor& qkv, const Tensor& out, const Tensor& lse,
                        const Tensor& dout, const Tensor& dqkv, const AttentionShape& shape) {
  (void)out;
  (void)lse;
  dispatch_floating(qkv.dtype(), "attention_backward", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t n = shape.tokens, d = shape.head_dim, C = shape.channels();
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const T* in = qkv.data<T>();
    const T* g = dout.data<T>();
    T* dx = dqkv.data<T>();
#pragma omp parallel for schedule(static)
    for (std::int64_t bh = 0; bh < shape.batch * shape.heads; ++bh) {
      const std::int64_t b = bh / shape.heads, h = bh % shape.heads;
      const Head head(in, b, h, n, d, C);
      const std::size_t size = static_cast<std::size_t>(n * d);
      std::vector<double> grad(size), ds(static_cast<std::size_t>(n * n)), dq(size), dk(size), dv(size);
      for (std::int64_t t = 0; t < n; ++t)
        for (std::int64_t c = 0; c < d; ++c) grad[t * d + c] = static_cast<double>(g[(b * n + t) * C + h * d + c]);
      head_gradients(head.q.data(), head.k.data(), head.v_t.data(), grad.data(), head.p.data(), n,
                     d, ds.data(), dq.data(), dk.data(), dv.data());
      for (std::int64_t r = 0; r < n; ++r) {
        T* row = dx + (b * n + r) * 3 * C + h * d;
        for (std::int64_t c = 0; c < d; ++c) {
          row[c] = static_cast<T>(scale * dq[r * d + c]);
          row[C + c] = static_cast<T>(scale * dk[r * d + c]);
          row[2 * C + c] = static_cast<T>(dv[r * d + c]);
        }
      }
    }
  });
}

void attention_decode_step(const Tensor& qkv, const Tensor& keys, const Tensor& values,
                           const Tensor& out, std::int64_t position, const AttentionShape& shape) {
  dispatch_floating(qkv.dtype(), "attention_decode_step", [&](auto zero) {
    using T = decltype(zero);
    const std::int64_t d = shape.head_dim, C = shape.channels(), capacity = shape.tokens;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    const T* in = qkv.data<T>();
    T* k = keys.data<T>();
    T* v = values.data<T>();
    T* o = out.data<T>();
    for (std::int64_t b = 0; b < shape.batch; ++b) {
      for (std::int64_t c = 0; c < C; ++c) {
        k[(b * capacity + position) * C + c] = in[b * 3 * C + C + c];
        v[(b * capacity + position) * C + c] = in[b * 3 * C + 2 * C + c];
      }
    }
#pragma omp parallel for schedule(static) if (shape.batch * shape.heads >= 64)
    for (std::int64_t bh = 0; bh < shape.batch * shape.heads; ++bh) {
      const std::int64_t b = bh / shape.heads, h = bh % shape.heads;
      std::vector<double> s(static_cast<std::size_t>(position + 1));
      double m = -INFINITY;
      for (std::int64_t j = 0; j <= position; ++j) {
        double dot = 0.0;
        for (std::int64_t c = 0; c < d; ++c) {
          dot += static_cast<double>(in[b * 3 * C + h * d + c]) *
                 static_cast<double>(k[(b * capacity + j) * C + h * d + c]);
        }
        s[j] = scale * dot;
        m = std::max(m, s[j]);
      }
      double l = 0.0;
      for (std::int64_t j = 0; j <= position; ++j) l += (s[j] = std::exp(s[j] - m));
      for (std::int64_t c = 0; c < d; ++c) {
        double acc = 0.0;
        for (std::int64_t j = 0; j <= position; ++j)
          acc += s[j] * static_cast<double>(v[(b * capacity + j) * C + h * d + c]);
        o[b * C + h * d + c] = static_cast<T>(acc / l);
      }
    }
  });
}

void causal_softmax(const Tensor& scores, std::int64_t tokens) {
  dispatch_floating(scores.dtype(), "causal_softmax", [&](auto zero) {
    using T = decltype(zero);
    T* s = scores.data<T>();
    const std::int64_t rows = scores.numel() / tokens;
#pragma omp parallel for schedule(static) if (rows >= 1024)
    for (std::int64_t r = 0; r < rows; ++r) {
      T* row = s + r * tokens;
      const std::int64_t i = r % tokens;
      double m = -INFINITY;
      for (std::int64_t j = 0; j <= i; ++j) m = std::max(m, static_cast<double>(row[j]));
      double l = 0.0;
      for (std::int64_t j = 0; j <= i; ++j) l += std::exp(static_cast<double>(row[j]) - m);
      for (std::int64_t j = 0; j < tokens; ++j)
        row[j] = j <= i ? static_cast<T>(std::exp(static_cast<double>(row[j]) - m) / l) : T(0);
    }
  });
}

}  // namespace

void register_attention() {
  backend::Registry<backend::AttentionTable>::add(
      DeviceType::cpu,
      {&attention_forward, &attention_backward, &attention_decode_step, &causal_softmax});
}

}  // namespace latent::cpu
