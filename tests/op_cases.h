// The case descriptions that the kernel tests (tests/*_test.cpp, through tests/op_harness.h)
// and the benchmarks (bench/*_bench.cpp) share: the shapes each kernel family is run at and
// the napkin math of every op, the bytes it must move and the FLOPs it must do.
//
// A test case names its cost (`OpCase::cost`) with these functions at the test's small, odd
// sizes; a benchmark sets its bytes/s and FLOP/s counters with the same functions at its
// large sizes, over the shape lists below. One formula per op, so a counter and the kernel
// header comment it was derived from cannot drift apart unnoticed.
//
// Bytes are the compulsory traffic (every input read once, every output written once);
// FLOPs count one per add, multiply, compare or transcendental call. Integer work (Philox,
// index arithmetic) counts no FLOPs. Plain C++: no GoogleTest, no Google Benchmark.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "latent/dtype.h"

namespace latent::cases {

struct Cost {
  double bytes = 0.0;
  double flops = 0.0;
};

inline double words(double count, DType dtype) {
  return count * static_cast<double>(dtype_size(dtype));
}

// Bytes and FLOPs in a few characters: "8.0 MB, 1.0 MFLOP".
inline std::string describe(const Cost& c) {
  auto scaled = [](double v, const char* unit) {
    const char* prefix[] = {"", "k", "M", "G", "T"};
    int p = 0;
    while (v >= 1000.0 && p < 4) v /= 1000.0, ++p;
    char text[48];
    std::snprintf(text, sizeof text, "%.1f %s%s", v, prefix[p], unit);
    return std::string(text);
  };
  return scaled(c.bytes, "B") + ", " + scaled(c.flops, "FLOP");
}

// ------------------------------------------------------------------ elementwise
// y = op(x): read x, write y; one FLOP an element (a transcendental counts as one).
inline Cost unary(std::int64_t n, DType dtype) { return {words(2.0 * n, dtype), double(n)}; }
// dL/dx = dL/dy · op'(x, y): read x, y and dL/dy, write dL/dx.
inline Cost unary_backward(std::int64_t n, DType dtype) {
  return {words(4.0 * n, dtype), 2.0 * n};
}
// out = a op b with broadcasting: each operand read once, the output written once.
inline Cost binary(std::int64_t a, std::int64_t b, std::int64_t out, DType dtype) {
  return {words(double(a) + b + out, dtype), double(out)};
}
// dst = src, converting: read n of one dtype, write n of the other.
inline Cost copy(std::int64_t n, DType from, DType to) {
  return {words(double(n), from) + words(double(n), to), 0.0};
}
// A fill (full, arange, zeros): write n.
inline Cost fill(std::int64_t n, DType dtype) { return {words(double(n), dtype), 0.0}; }

// ------------------------------------------------------------------ reduce
// out = Σ x over some dims: read every input once, write every output, one add an input.
inline Cost sum(std::int64_t in, std::int64_t out, DType dtype) {
  return {words(double(in) + out, dtype), double(in)};
}
// out[r] = argmax x[r, :]: read x, write rows int32 indices, one compare an element.
inline Cost argmax(std::int64_t in, std::int64_t rows, DType dtype) {
  return {words(double(in), dtype) + 4.0 * rows, double(in)};
}

// ------------------------------------------------------------------ gemm
// C[b] = A[b] · B[b], A [batch, M, K], B [batch, K, N] (batch 0: plain 2-D).
struct Gemm {
  std::int64_t batch, m, k, n;
  std::int64_t batches() const { return batch > 0 ? batch : 1; }
  std::string str() const {
    return (batch ? std::to_string(batch) + "x" : "") + std::to_string(m) + "x" +
           std::to_string(k) + " @ " + std::to_string(k) + "x" + std::to_string(n);
  }
};
inline Cost gemm(const Gemm& g, DType dtype) {
  const double b = static_cast<double>(g.batches());
  return {words(b * (double(g.m) * g.k + double(g.k) * g.n + double(g.m) * g.n), dtype),
          2.0 * b * g.m * g.n * g.k};
}
// The forward and both gradients of a product: three GEMMs of the same size.
inline Cost gemm_forward_backward(const Gemm& g, DType dtype) {
  const Cost one = gemm(g, dtype);
  return {3.0 * one.bytes, 3.0 * one.flops};
}
// bench/gemm_bench's shapes: squares around the cache sizes and the autoencoder's largest
// layer as a GEMM (6272 = 128·7·7 output pixels).
inline const std::vector<Gemm>& gemm_bench_shapes() {
  static const std::vector<Gemm> shapes = {
      {0, 128, 128, 128}, {0, 256, 256, 256}, {0, 512, 512, 512}, {0, 1024, 1024, 1024},
      {0, 6272, 512, 64}};
  return shapes;
}

// ------------------------------------------------------------------ conv
// A 2-D convolution of x [n, c, h, w] by w [oc, c, kh, kw] (conv2d), or a transposed
// convolution of x [n, c, h, w] by w [c, oc, kh, kw] (conv_transpose2d).
struct Conv {
  std::int64_t n, c, h, w, oc, kh, kw, stride, padding, output_padding;
  bool bias;
  std::int64_t out_h() const { return (h + 2 * padding - kh) / stride + 1; }
  std::int64_t out_w() const { return (w + 2 * padding - kw) / stride + 1; }
  std::int64_t transposed_out_h() const {
    return (h - 1) * stride - 2 * padding + kh + output_padding;
  }
  std::int64_t transposed_out_w() const {
    return (w - 1) * stride - 2 * padding + kw + output_padding;
  }
  std::string str() const {
    return "N" + std::to_string(n) + " C" + std::to_string(c) + " H" + std::to_string(h) +
           " W" + std::to_string(w) + " OC" + std::to_string(oc) + " K" + std::to_string(kh) +
           "x" + std::to_string(kw) + " s" + std::to_string(stride) + " p" +
           std::to_string(padding) + " op" + std::to_string(output_padding) +
           (bias ? " bias" : "");
  }
};
// conv2d: 2·N·OC·OH·OW·C·KH·KW FLOPs (+ the bias); reads x and w, writes y.
inline Cost conv2d(const Conv& k, DType dtype) {
  const double out = double(k.n) * k.oc * k.out_h() * k.out_w();
  return {words(double(k.n) * k.c * k.h * k.w + double(k.oc) * k.c * k.kh * k.kw + out, dtype),
          2.0 * out * k.c * k.kh * k.kw + (k.bias ? out : 0.0)};
}
// conv_transpose2d: the same multiply-adds, scattered (every input pixel meets every tap).
inline Cost conv_transpose2d(const Conv& k, DType dtype) {
  const double in = double(k.n) * k.c * k.h * k.w;
  const double out = double(k.n) * k.oc * k.transposed_out_h() * k.transposed_out_w();
  return {words(in + double(k.c) * k.oc * k.kh * k.kw + out, dtype),
          2.0 * in * k.oc * k.kh * k.kw + (k.bias ? out : 0.0)};
}
// Forward and backward (input and weight gradients): three products of the same size.
inline Cost conv2d_forward_backward(const Conv& k, DType dtype) {
  const Cost one = conv2d(k, dtype);
  return {3.0 * one.bytes, 3.0 * one.flops};
}
// im2col reads the image once and writes C·KH·KW × N·OH·OW columns; col2im the reverse.
inline Cost im2col(const Conv& k, DType dtype) {
  const double cols = double(k.c) * k.kh * k.kw * k.n * k.out_h() * k.out_w();
  return {words(double(k.n) * k.c * k.h * k.w + cols, dtype), 0.0};
}
// The Fashion-MNIST autoencoder's encoder layers (src/models): two strided 4×4
// convolutions and a 3×3 one at 7×7; the decoder runs them transposed.
inline std::vector<Conv> autoencoder_layers(std::int64_t batch) {
  return {{batch, 1, 28, 28, 32, 4, 4, 2, 1, 0, false},
          {batch, 32, 14, 14, 64, 4, 4, 2, 1, 0, false},
          {batch, 64, 7, 7, 64, 3, 3, 1, 1, 0, false}};
}

// ------------------------------------------------------------------ random
// A Philox fill (uniform or normal): write n; the generator is integer work.
inline Cost random_fill(std::int64_t n, DType dtype) { return {words(double(n), dtype), 0.0}; }

// ------------------------------------------------------------------ adam
// One fused Adam/AdamW step (kernels/adam.cuh): read p, g, m, v and write p, m, v
// (7 words, 28 bytes an element in float32); about a dozen FLOPs an element.
inline Cost adam(std::int64_t n, DType dtype) { return {words(7.0 * n, dtype), 12.0 * n}; }

// ------------------------------------------------------------------ vae
// bench/vae_bench's rows: a 4×64×64 latent per sample (Stable Diffusion's autoencoder at 512²).
constexpr std::int64_t kVaeRowLength = 16384;
// reparameterize + KL (kernels/vae.cuh): read μ, ℓ, write z, and one KL per row.
inline Cost reparam_kl_forward(std::int64_t rows, std::int64_t cols, DType dtype) {
  const double n = double(rows) * cols;
  return {words(3.0 * n + rows, dtype), 12.0 * n};
}
// The fused backward: read μ, ℓ, dL/dz (and dL/dKL per row), write dL/dμ, dL/dℓ.
inline Cost reparam_kl_backward(std::int64_t rows, std::int64_t cols, DType dtype) {
  const double n = double(rows) * cols;
  return {words(5.0 * n + rows, dtype), 14.0 * n};
}

// ------------------------------------------------------------------ vq
struct Vq {
  std::int64_t N, K, D;
  std::string str() const {
    return "N=" + std::to_string(N) + " K=" + std::to_string(K) + " D=" + std::to_string(D);
  }
};
// Nearest-code argmin: 2·N·K·D (the dot products) + 3·N·K (bias, scale, compare) FLOPs;
// reads z and the codebook, writes N int32 indices (and N distances when asked).
inline Cost vq_argmin(const Vq& v, DType dtype, bool distances = false) {
  return {words(double(v.N) * v.D + double(v.K) * v.D + (distances ? v.N : 0), dtype) + 4.0 * v.N,
          2.0 * v.N * v.K * v.D + 3.0 * v.N * v.K};
}
// The cuBLAS composition also writes and reads the N×K scores.
inline Cost vq_argmin_gemm(const Vq& v, DType dtype) {
  Cost c = vq_argmin(v, dtype);
  c.bytes += 2.0 * words(double(v.N) * v.K, dtype);
  return c;
}
// z_q = E[idx]: read N indices and N rows of the codebook, write N rows.
inline Cost vq_gather(std::int64_t N, std::int64_t D, DType dtype) {
  return {4.0 * N + words(2.0 * N * D, dtype), 0.0};
}
// n_k, m_k: read z and the indices, write K counts and K·D sums; one add an element of z.
inline Cost vq_stats(const Vq& v, DType dtype) {
  return {words(double(v.N) * v.D + double(v.K) * v.D, dtype) + 4.0 * (v.N + v.K),
          double(v.N) * v.D};
}
// The EMA update of K codes: per element read M and m, write M and E; per code read N and
// n, write N (and read N again).
inline Cost vq_ema_update(std::int64_t K, std::int64_t D, DType dtype) {
  return {words(4.0 * K * D + 4.0 * K, dtype), 4.0 * K * D + 6.0 * K};
}
// Dead-code revival: read the counts, and for each dead code one row of z; write it into
// the codebook and the sums.
inline Cost vq_revive(std::int64_t K, std::int64_t D, DType dtype) {
  return {words(double(K) + 3.0 * K * D, dtype), double(K)};
}
// bench/vq_bench's argmin suite: the whole grid on a GPU, a small corner elsewhere.
inline std::vector<Vq> vq_argmin_bench_suite(bool gpu) {
  std::vector<Vq> suite;
  if (gpu) {
    for (std::int64_t n : {4096, 65536, 262144})
      for (std::int64_t k : {512, 1024, 8192, 16384})
        for (std::int64_t d : {8, 32, 64, 256}) suite.push_back({n, k, d});
  } else {
    for (std::int64_t k : {512, 1024})
      for (std::int64_t d : {8, 32}) suite.push_back({4096, k, d});
  }
  return suite;
}
// The (K, D) codebooks of bench/vq_bench's statistics runs.
inline std::vector<Vq> vq_stats_bench_codebooks(std::int64_t N) {
  return {{N, 512, 16}, {N, 1024, 8}, {N, 512, 64}, {N, 8192, 64}};
}

// ------------------------------------------------------------------ fsq
// bench/fsq_bench's level sets: d = 4 (16-byte rows) and d = 6 (rows that straddle them).
inline const std::vector<std::int64_t>& fsq_levels_d4() {
  static const std::vector<std::int64_t> levels = {8, 5, 5, 5};
  return levels;
}
inline const std::vector<std::int64_t>& fsq_levels_d6() {
  static const std::vector<std::int64_t> levels = {8, 8, 8, 5, 5, 5};
  return levels;
}
// Codes and indices in one pass: read z, write the codes and one int32 index a row; a
// tanh, a scale, a round and a clamp per element.
inline Cost fsq_quantize(std::int64_t rows, std::int64_t d, DType dtype) {
  const double n = double(rows) * d;
  return {words(2.0 * n, dtype) + 4.0 * rows, 6.0 * n};
}
// The two-pass composition moves the codes through memory once more.
inline Cost fsq_two_pass(std::int64_t rows, std::int64_t d, DType dtype) {
  Cost c = fsq_quantize(rows, d, dtype);
  c.bytes += words(double(rows) * d, dtype);
  return c;
}
// Straight-through backward: read z and dL/dcodes, write dL/dz.
inline Cost fsq_backward(std::int64_t rows, std::int64_t d, DType dtype) {
  const double n = double(rows) * d;
  return {words(3.0 * n, dtype), 4.0 * n};
}
// Indices to codes: read one int32 a row, write the codes.
inline Cost fsq_decode(std::int64_t rows, std::int64_t d, DType dtype) {
  return {4.0 * rows + words(double(rows) * d, dtype), 2.0 * rows * d};
}

// ------------------------------------------------------------------ layer_norm
// bench/layer_norm_bench's (rows, C): 128 images × 49 tokens at three widths, and a large case.
struct LayerNormShape {
  std::int64_t rows, cols;
  std::string str() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};
inline const std::vector<LayerNormShape>& layer_norm_bench_shapes() {
  static const std::vector<LayerNormShape> shapes = {
      {6272, 128}, {6272, 256}, {6272, 512}, {65536, 1024}};
  return shapes;
}
// Forward (kernels/layer_norm.cuh): read x, write y, write mean and rstd a row, read γ and
// β once; about 12 FLOPs an element.
inline Cost layer_norm_forward(std::int64_t rows, std::int64_t cols, DType dtype) {
  const double n = double(rows) * cols;
  return {words(2.0 * n + 2.0 * rows + 2.0 * cols, dtype), 12.0 * n};
}
// Backward, the compulsory traffic: read x, dL/dy, mean, rstd and γ, write dL/dx, dL/dγ,
// dL/dβ; about 15 FLOPs an element (dx ≈ 10, the parameter sums ≈ 5).
inline Cost layer_norm_backward(std::int64_t rows, std::int64_t cols, DType dtype) {
  const double n = double(rows) * cols;
  return {words(3.0 * n + 2.0 * rows + 3.0 * cols, dtype), 15.0 * n};
}

// ------------------------------------------------------------------ cross_entropy
// bench/cross_entropy_bench's rows: 128 images × 49 tokens of a 7×7 latent grid.
constexpr std::int64_t kCrossEntropyBenchRows = 6272;
inline const std::vector<std::int64_t>& cross_entropy_bench_classes() {
  static const std::vector<std::int64_t> classes = {256, 512, 1000, 4096};
  return classes;
}
// Fused forward (kernels/cross_entropy.cuh): read the logits and one int32 target a row,
// write the loss and lse = (max, log-sum) a row; about 6 FLOPs an element (the exp counted
// as one).
inline Cost cross_entropy_forward(std::int64_t rows, std::int64_t K, DType dtype) {
  const double n = double(rows) * K;
  return {words(n + 3.0 * rows, dtype) + 4.0 * rows, 6.0 * n};
}
// Fused backward: read the logits, and the target, lse (two words) and dL/dloss a row,
// write dL/dlogits; about 4 FLOPs an element.
inline Cost cross_entropy_backward(std::int64_t rows, std::int64_t K, DType dtype) {
  const double n = double(rows) * K;
  return {words(2.0 * n + 3.0 * rows, dtype) + 4.0 * rows, 4.0 * n};
}

// ------------------------------------------------------------------ embedding
// bench/embedding_bench's shape: 6272 tokens, a table of 1024 rows of 128 channels.
struct EmbeddingShape {
  std::int64_t rows, V, C;
};
inline EmbeddingShape embedding_bench_shape() { return {6272, 1024, 128}; }
// Forward (the vq gather): read an int32 id and a table row a row, write the row.
inline Cost embedding_forward(std::int64_t rows, std::int64_t C, DType dtype) {
  return {4.0 * rows + words(2.0 * rows * C, dtype), 0.0};
}
// Backward (the per-id sums): read dL/dout and the ids, write dL/dtable; one add an element.
inline Cost embedding_backward(std::int64_t rows, std::int64_t V, std::int64_t C, DType dtype) {
  return {4.0 * rows + words(double(rows) * C + double(V) * C, dtype), double(rows) * C};
}

}  // namespace latent::cases
