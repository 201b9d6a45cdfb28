// The implicit-GEMM convolution tiles of src/backends/cpu/conv_implicit.h.
//
// One template per tile (forward_tile, weight_tile) over a vector type S (AVX-512, AVX2 or
// scalar float) and the tile shape; each instruction set has its own entry points, built with
// that set enabled (`target` attribute) and everything they call inlined into them
// (`flatten`), so one source gives three machine codes and the process picks one at run time.
#include "backends/cpu/conv_implicit.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define LATENT_X86_TILES 1
#pragma GCC diagnostic ignored "-Wpsabi"  // __m512 / __m256 values in inline helpers
#endif

namespace latent::cpu {

namespace {
std::atomic<int> chosen_isa{-1};
std::atomic<bool> isa_forced{false};
}

VectorIsa best_vector_isa() {
#if defined(LATENT_X86_TILES)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return VectorIsa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VectorIsa::avx2;
#endif
  return VectorIsa::scalar;
}

VectorIsa vector_isa() {
  int isa = chosen_isa.load(std::memory_order_relaxed);
  if (isa < 0) {
    isa = static_cast<int>(best_vector_isa());
    chosen_isa.store(isa, std::memory_order_relaxed);
  }
  return static_cast<VectorIsa>(isa);
}

void set_vector_isa(VectorIsa isa) {
  chosen_isa.store(static_cast<int>(std::min(isa, best_vector_isa())), std::memory_order_relaxed);
  isa_forced.store(true, std::memory_order_relaxed);
}

const char* vector_isa_name(VectorIsa isa) {
  switch (isa) {
    case VectorIsa::avx512: return "avx512";
    case VectorIsa::avx2: return "avx2";
    case VectorIsa::scalar: return "scalar";
  }
  return "?";
}

namespace implicit_conv {
namespace {

std::int64_t lanes_of(VectorIsa isa) {
  return isa == VectorIsa::avx512 ? 16 : isa == VectorIsa::avx2 ? 8 : 1;
}
// Vectors of output channels per tile, at most.
std::int64_t max_vectors(VectorIsa isa) { return isa == VectorIsa::scalar ? 4 : isa == VectorIsa::avx2 ? 2 : 4; }

struct ScalarVec {
  using V = float;
  static constexpr int kLanes = 1;
  static constexpr int kAccumulators = 12;
  static V zero() { return 0.0f; }
  static V load(const float* p) { return *p; }
  static V broadcast(float x) { return x; }
  static V fma(V a, V b, V c) { return std::fma(a, b, c); }
  static void store(float* p, V v) { *p = v; }
};

#if defined(LATENT_X86_TILES)
struct Avx512Vec {
  using V = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kAccumulators = 24;
  __attribute__((target("avx512f"))) static V zero() { return _mm512_setzero_ps(); }
  __attribute__((target("avx512f"))) static V load(const float* p) { return _mm512_loadu_ps(p); }
  __attribute__((target("avx512f"))) static V broadcast(float x) { return _mm512_set1_ps(x); }
  __attribute__((target("avx512f"))) static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  __attribute__((target("avx512f"))) static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
};

struct Avx2Vec {
  using V = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kAccumulators = 12;
  __attribute__((target("avx2,fma"))) static V zero() { return _mm256_setzero_ps(); }
  __attribute__((target("avx2,fma"))) static V load(const float* p) { return _mm256_loadu_ps(p); }
  __attribute__((target("avx2,fma"))) static V broadcast(float x) { return _mm256_set1_ps(x); }
  __attribute__((target("avx2,fma"))) static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  __attribute__((target("avx2,fma"))) static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
#endif

// ------------------------------------------------------------------ forward

// y[oc0 + v·L + l, p0 + j] for j < NP, v < NV: one tile of sums over every tap k.
template <class S, int NV, int NP>
inline void forward_tile(const Plan& plan, const float* weights_t, const float* padded,
                         std::int64_t oc0, std::int64_t p0, float* y) {
  using V = typename S::V;
  std::int32_t base[NP];
  for (int j = 0; j < NP; ++j)
    base[j] = plan.bases[static_cast<std::size_t>(std::min(p0 + j, plan.positions - 1))];
  V acc[NP][NV];
  for (int j = 0; j < NP; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = S::zero();
  const float* w = weights_t + oc0;
  for (std::int64_t k = 0; k < plan.taps; ++k, w += plan.padded_channels) {
    V wv[NV];
    for (int v = 0; v < NV; ++v) wv[v] = S::load(w + v * S::kLanes);
    const float* xk = padded + plan.offsets[static_cast<std::size_t>(k)];
    for (int j = 0; j < NP; ++j) {
      const V b = S::broadcast(xk[base[j]]);
      for (int v = 0; v < NV; ++v) acc[j][v] = S::fma(wv[v], b, acc[j][v]);
    }
  }
  float lanes[NV * S::kLanes];
  for (int j = 0; j < NP && p0 + j < plan.positions; ++j) {
    for (int v = 0; v < NV; ++v) S::store(lanes + v * S::kLanes, acc[j][v]);
    const std::int64_t valid = std::min<std::int64_t>(NV * S::kLanes, plan.out_channels - oc0);
    const std::int64_t at = plan.out_index[static_cast<std::size_t>(p0 + j)];
    for (std::int64_t l = 0; l < valid; ++l) y[(oc0 + l) * plan.out_stride + at] = lanes[l];
  }
}

template <class S, int NV>
inline void forward_tiles(const Plan& plan, const float* weights_t, const float* padded, float* y) {
  constexpr int NP = S::kAccumulators / NV;
  for (std::int64_t oc0 = 0; oc0 < plan.out_channels; oc0 += NV * S::kLanes)
    for (std::int64_t p0 = 0; p0 < plan.positions; p0 += NP)
      forward_tile<S, NV, NP>(plan, weights_t, padded, oc0, p0, y);
}

template <class S>
inline void forward_any(const Plan& plan, const float* weights_t, const float* padded, float* y) {
  switch (plan.vectors) {
    case 1: return forward_tiles<S, 1>(plan, weights_t, padded, y);
    case 2: return forward_tiles<S, 2>(plan, weights_t, padded, y);
    case 3: return forward_tiles<S, 3>(plan, weights_t, padded, y);
    default: return forward_tiles<S, 4>(plan, weights_t, padded, y);
  }
}

// ------------------------------------------------------------------ weight gradient

// dw_t[k0 + j, oc0 + v·L + l] for j < NK, v < NV: one tile of sums over every image and position.
template <class S, int NV, int NK>
inline void weight_tile(const Plan& plan, const float* dy_t, const float* padded,
                        std::int64_t images, std::int64_t oc0, std::int64_t k0, float* dw_t) {
  using V = typename S::V;
  std::int32_t offset[NK];
  for (int j = 0; j < NK; ++j)
    offset[j] = plan.offsets[static_cast<std::size_t>(std::min(k0 + j, plan.taps - 1))];
  V acc[NK][NV];
  for (int j = 0; j < NK; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = S::zero();
  for (std::int64_t n = 0; n < images; ++n) {
    const float* x = padded + n * plan.padded_size;
    const float* d = dy_t + n * plan.positions * plan.padded_channels + oc0;
    for (std::int64_t p = 0; p < plan.positions; ++p, d += plan.padded_channels) {
      V dv[NV];
      for (int v = 0; v < NV; ++v) dv[v] = S::load(d + v * S::kLanes);
      const float* xp = x + plan.bases[static_cast<std::size_t>(p)];
      for (int j = 0; j < NK; ++j) {
        const V b = S::broadcast(xp[offset[j]]);
        for (int v = 0; v < NV; ++v) acc[j][v] = S::fma(dv[v], b, acc[j][v]);
      }
    }
  }
  // dw_t [K, padded_channels]: whole vectors, contiguous (the padded channels' dy is zero).
  for (int j = 0; j < NK && k0 + j < plan.taps; ++j)
    for (int v = 0; v < NV; ++v)
      S::store(dw_t + (k0 + j) * plan.padded_channels + oc0 + v * S::kLanes, acc[j][v]);
}

template <class S, int NV>
inline void weight_tiles(const Plan& plan, const float* dy_t, const float* padded,
                         std::int64_t images, float* dw_t) {
  constexpr int NK = S::kAccumulators / NV;
  for (std::int64_t oc0 = 0; oc0 < plan.out_channels; oc0 += NV * S::kLanes)
    for (std::int64_t k0 = 0; k0 < plan.taps; k0 += NK)
      weight_tile<S, NV, NK>(plan, dy_t, padded, images, oc0, k0, dw_t);
}

template <class S>
inline void weight_any(const Plan& plan, const float* dy_t, const float* padded,
                       std::int64_t images, float* dw) {
  switch (plan.vectors) {
    case 1: return weight_tiles<S, 1>(plan, dy_t, padded, images, dw);
    case 2: return weight_tiles<S, 2>(plan, dy_t, padded, images, dw);
    case 3: return weight_tiles<S, 3>(plan, dy_t, padded, images, dw);
    default: return weight_tiles<S, 4>(plan, dy_t, padded, images, dw);
  }
}

// ------------------------------------------------------------------ input gradient

// slab[k − k0, p] = Σ_oc W[oc, k] · dy[oc, p] for k0 ≤ k < k0 + NV·L, p0 ≤ p < p0 + NP.
template <class S, int NV, int NP>
inline void input_tile(const Plan& plan, const float* weights_k, const float* dy,
                       std::int64_t k0, std::int64_t p0, float* slab) {
  using V = typename S::V;
  const std::int64_t positions = std::min<std::int64_t>(NP, plan.positions - p0);
  V acc[NP][NV];
  for (int j = 0; j < NP; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = S::zero();
  for (std::int64_t oc = 0; oc < plan.out_channels; ++oc) {
    V wv[NV];
    const float* w = weights_k + oc * plan.padded_taps + k0;
    for (int v = 0; v < NV; ++v) wv[v] = S::load(w + v * S::kLanes);
    const float* d = dy + oc * plan.positions + p0;
    for (int j = 0; j < NP; ++j) {
      const V b = S::broadcast(d[j < positions ? j : 0]);
      for (int v = 0; v < NV; ++v) acc[j][v] = S::fma(wv[v], b, acc[j][v]);
    }
  }
  float lanes[NV * S::kLanes];
  for (int j = 0; j < positions; ++j) {
    for (int v = 0; v < NV; ++v) S::store(lanes + v * S::kLanes, acc[j][v]);
    for (int l = 0; l < NV * S::kLanes; ++l) slab[l * plan.positions + p0 + j] = lanes[l];
  }
}

// at[oh·s·PW + ow·s] += row[oh·OW + ow]: one tap's terms into the padded gradient, the
// stride a constant for the strides the models use.
template <std::int64_t kStride>
inline void add_tap(const Plan& plan, const float* row, float* at) {
  const std::int64_t s = kStride > 0 ? kStride : plan.g.stride;
  for (std::int64_t oh = 0; oh < plan.g.out_h; ++oh, row += plan.g.out_w) {
    float* dst = at + oh * s * plan.padded_width;
    for (std::int64_t ow = 0; ow < plan.g.out_w; ++ow) dst[ow * s] += row[ow];
  }
}

// The taps [k0, k0 + NV·L) of every position into the slab, then added into the padded
// gradient tap by tap: each pixel receives its terms in ascending k, whatever the tile shape,
// so every instruction set gives the same bits (and the order of the cuda col2im's gather).
template <class S, int NV>
inline void input_tiles(const Plan& plan, const float* weights_k, const float* dy, float* padded,
                        float* slab) {
  constexpr int NP = S::kAccumulators / NV;
  for (std::int64_t k0 = 0; k0 < plan.taps; k0 += NV * S::kLanes) {
    for (std::int64_t p0 = 0; p0 < plan.positions; p0 += NP)
      input_tile<S, NV, NP>(plan, weights_k, dy, k0, p0, slab);
    const std::int64_t taps = std::min<std::int64_t>(NV * S::kLanes, plan.taps - k0);
    for (std::int64_t l = 0; l < taps; ++l) {
      float* at = padded + plan.offsets[static_cast<std::size_t>(k0 + l)];
      const float* row = slab + l * plan.positions;
      switch (plan.g.stride) {
        case 1: add_tap<1>(plan, row, at); break;
        case 2: add_tap<2>(plan, row, at); break;
        default: add_tap<0>(plan, row, at); break;
      }
    }
  }
}

template <class S>
inline void input_any(const Plan& plan, const float* weights_k, const float* dy, float* padded,
                      float* slab) {
  switch (plan.tap_vectors) {
    case 1: return input_tiles<S, 1>(plan, weights_k, dy, padded, slab);
    case 2: return input_tiles<S, 2>(plan, weights_k, dy, padded, slab);
    case 3: return input_tiles<S, 3>(plan, weights_k, dy, padded, slab);
    default: return input_tiles<S, 4>(plan, weights_k, dy, padded, slab);
  }
}

// ------------------------------------------------------------------ entry points per ISA

#if defined(LATENT_X86_TILES)
__attribute__((target("arch=x86-64-v4"), flatten)) void forward_avx512(
    const Plan& plan, const float* weights_t, const float* padded, float* y) {
  forward_any<Avx512Vec>(plan, weights_t, padded, y);
}
__attribute__((target("arch=x86-64-v3"), flatten)) void forward_avx2(
    const Plan& plan, const float* weights_t, const float* padded, float* y) {
  forward_any<Avx2Vec>(plan, weights_t, padded, y);
}
__attribute__((target("arch=x86-64-v4"), flatten)) void weight_avx512(
    const Plan& plan, const float* dy_t, const float* padded, std::int64_t images, float* dw) {
  weight_any<Avx512Vec>(plan, dy_t, padded, images, dw);
}
__attribute__((target("arch=x86-64-v3"), flatten)) void weight_avx2(
    const Plan& plan, const float* dy_t, const float* padded, std::int64_t images, float* dw) {
  weight_any<Avx2Vec>(plan, dy_t, padded, images, dw);
}
__attribute__((target("arch=x86-64-v4"), flatten)) void input_avx512(
    const Plan& plan, const float* weights_k, const float* dy, float* padded, float* slab) {
  input_any<Avx512Vec>(plan, weights_k, dy, padded, slab);
}
__attribute__((target("arch=x86-64-v3"), flatten)) void input_avx2(
    const Plan& plan, const float* weights_k, const float* dy, float* padded, float* slab) {
  input_any<Avx2Vec>(plan, weights_k, dy, padded, slab);
}
#endif

// The tiles' instruction set for OC output channels: AVX2's 8 lanes where 16 would be at
// least half empty.
VectorIsa tile_isa(std::int64_t out_channels) {
  const VectorIsa isa = vector_isa();
  return isa == VectorIsa::avx512 && out_channels < 16 ? VectorIsa::avx2 : isa;
}

// Whether tiles of this instruction set may run over a buffer of `elements`: the scalar tiles
// only when a test asked for them (without vectors OpenBLAS's own kernels are faster), and
// every index within 32 bits.
bool tiles_serve(VectorIsa isa, std::int64_t elements) {
  if (isa == VectorIsa::scalar && !isa_forced.load(std::memory_order_relaxed)) return false;
  return elements < std::numeric_limits<std::int32_t>::max();
}
std::int64_t padded_input_size(const ConvGeometry& g) {
  return g.channels * (g.height + 2 * g.padding) * (g.width + 2 * g.padding);
}
}  // namespace

bool eligible(const ConvGeometry& g, std::int64_t out_channels) {
  const VectorIsa isa = tile_isa(out_channels);
  return tiles_serve(isa, padded_input_size(g)) && 2 * out_channels >= lanes_of(isa);
}

bool input_gradient_eligible(const ConvGeometry& g, std::int64_t out_channels) {
  const VectorIsa isa = tile_isa(out_channels);
  return tiles_serve(isa, padded_input_size(g)) && out_channels > 0 && g.col_rows() >= lanes_of(isa);
}

namespace {
// The tile shape along output channels and taps, from plan.out_channels and plan.taps.
void set_tiles(Plan& plan) {
  const VectorIsa isa = tile_isa(plan.out_channels);
  plan.lanes = lanes_of(isa);
  const std::int64_t channel_vectors = (plan.out_channels + plan.lanes - 1) / plan.lanes;
  plan.vectors = std::min(channel_vectors, max_vectors(isa));
  const std::int64_t tiles = (channel_vectors + plan.vectors - 1) / plan.vectors;
  plan.padded_channels = tiles * plan.vectors * plan.lanes;
  const std::int64_t tap_vectors = std::max<std::int64_t>(1, (plan.taps + plan.lanes - 1) / plan.lanes);
  plan.tap_vectors = std::min(tap_vectors, max_vectors(isa));
  plan.padded_taps = (tap_vectors + plan.tap_vectors - 1) / plan.tap_vectors * plan.tap_vectors * plan.lanes;
}
}  // namespace

bool phase_gradient_eligible(const ConvGeometry& g, std::int64_t out_channels) {
  const VectorIsa isa = tile_isa(g.channels);
  const std::int64_t pad = (std::max(g.kernel_h, g.kernel_w) + g.stride - 1) / g.stride + 1;
  const std::int64_t dy = out_channels * (g.out_h + 2 * pad + g.height) * (g.out_w + 2 * pad + g.width);
  return tiles_serve(isa, std::max(dy, g.channels * g.height * g.width)) &&
         2 * g.channels >= lanes_of(isa);
}

PhaseGradient make_phase_gradient(const ConvGeometry& g, std::int64_t out_channels, const float* w) {
  PhaseGradient pg;
  const std::int64_t s = g.stride, C = g.channels, OC = out_channels;
  const std::int64_t KH = g.kernel_h, KW = g.kernel_w;
  // dy is padded so that every i' − t and j' − u a phase pixel reads lies inside: t < KH/s + 1
  // rows above, and below the last row up to the last pixel's i' ≤ (H − 1 + p)/s.
  pg.dy_padding = (std::max(KH, KW) + s - 1) / s + 1;
  const std::int64_t below_h = std::max<std::int64_t>(0, (g.height - 1 + g.padding) / s + 1 - g.out_h);
  const std::int64_t below_w = std::max<std::int64_t>(0, (g.width - 1 + g.padding) / s + 1 - g.out_w);
  pg.dy_height = g.out_h + 2 * pg.dy_padding + below_h;
  pg.dy_width = g.out_w + 2 * pg.dy_padding + below_w;
  pg.dy_channels = OC;
  pg.dy_size = OC * pg.dy_height * pg.dy_width;
  for (std::int64_t a = 0; a < s; ++a) {
    for (std::int64_t b = 0; b < s; ++b) {
      const std::int64_t th = a < KH ? (KH - a + s - 1) / s : 0;
      const std::int64_t tw = b < KW ? (KW - b + s - 1) / s : 0;
      Plan plan;
      plan.g = g;
      plan.out_channels = C;
      plan.taps = OC * th * tw;
      plan.out_stride = g.height * g.width;
      // The phase's pixels: ih = s·i' + a − p in [0, H), iw likewise (i', j' ≥ 0).
      for (std::int64_t i = 0; s * i + a - g.padding < g.height; ++i) {
        if (s * i + a - g.padding < 0) continue;
        for (std::int64_t j = 0; s * j + b - g.padding < g.width; ++j) {
          if (s * j + b - g.padding < 0) continue;
          plan.bases.push_back(static_cast<std::int32_t>((i + pg.dy_padding) * pg.dy_width + j + pg.dy_padding));
          plan.out_index.push_back(static_cast<std::int32_t>((s * i + a - g.padding) * g.width + s * j + b - g.padding));
        }
      }
      plan.positions = static_cast<std::int64_t>(plan.bases.size());
      if (plan.positions == 0) continue;
      set_tiles(plan);  // with no taps (no kernel row or column in this phase) it stores zeros
      std::vector<float> weights(static_cast<std::size_t>(std::max<std::int64_t>(plan.taps, 1) * plan.padded_channels), 0.0f);
      for (std::int64_t oc = 0, k = 0; oc < OC; ++oc)
        for (std::int64_t t = 0; t < th; ++t)
          for (std::int64_t u = 0; u < tw; ++u, ++k) {
            plan.offsets.push_back(static_cast<std::int32_t>((oc * pg.dy_height - t) * pg.dy_width - u));
            for (std::int64_t c = 0; c < C; ++c)
              weights[static_cast<std::size_t>(k * plan.padded_channels + c)] =
                  w[((oc * C + c) * KH + a + s * t) * KW + b + s * u];
          }
      pg.phases.push_back(std::move(plan));
      pg.weights.push_back(std::move(weights));
    }
  }
  return pg;
}

void phase_gradient_image(const PhaseGradient& pg, const float* dy, float* scratch, float* dx) {
  const ConvGeometry& g = pg.phases.front().g;
  std::fill(scratch, scratch + pg.dy_size, 0.0f);
  for (std::int64_t oc = 0; oc < pg.dy_channels; ++oc)
    for (std::int64_t h = 0; h < g.out_h; ++h) {
      const float* src = dy + (oc * g.out_h + h) * g.out_w;
      float* dst = scratch + (oc * pg.dy_height + h + pg.dy_padding) * pg.dy_width + pg.dy_padding;
      for (std::int64_t x = 0; x < g.out_w; ++x) dst[x] = src[x];
    }
  for (std::size_t i = 0; i < pg.phases.size(); ++i)
    forward_image(pg.phases[i], pg.weights[i].data(), scratch, dx);
}

Plan make_plan(const ConvGeometry& g, std::int64_t out_channels) {
  Plan plan;
  plan.g = g;
  plan.out_channels = out_channels;
  plan.taps = g.col_rows();
  plan.positions = g.out_h * g.out_w;
  plan.padded_height = g.height + 2 * g.padding;
  plan.padded_width = g.width + 2 * g.padding;
  plan.padded_size = g.channels * plan.padded_height * plan.padded_width;
  plan.out_stride = plan.positions;
  plan.out_index.resize(static_cast<std::size_t>(plan.positions));
  for (std::int64_t p = 0; p < plan.positions; ++p) plan.out_index[static_cast<std::size_t>(p)] = static_cast<std::int32_t>(p);
  set_tiles(plan);
  plan.offsets.resize(static_cast<std::size_t>(plan.taps));
  for (std::int64_t c = 0, k = 0; c < g.channels; ++c)
    for (std::int64_t kh = 0; kh < g.kernel_h; ++kh)
      for (std::int64_t kw = 0; kw < g.kernel_w; ++kw, ++k)
        plan.offsets[static_cast<std::size_t>(k)] =
            static_cast<std::int32_t>((c * plan.padded_height + kh) * plan.padded_width + kw);
  plan.bases.resize(static_cast<std::size_t>(plan.positions));
  for (std::int64_t oh = 0, p = 0; oh < g.out_h; ++oh)
    for (std::int64_t ow = 0; ow < g.out_w; ++ow, ++p)
      plan.bases[static_cast<std::size_t>(p)] =
          static_cast<std::int32_t>(oh * g.stride * plan.padded_width + ow * g.stride);
  return plan;
}

void pad_image(const Plan& plan, const float* image, float* padded) {
  const ConvGeometry& g = plan.g;
  std::fill(padded, padded + plan.padded_size, 0.0f);
  for (std::int64_t c = 0; c < g.channels; ++c)
    for (std::int64_t h = 0; h < g.height; ++h) {
      const float* src = image + (c * g.height + h) * g.width;
      float* dst = padded + (c * plan.padded_height + h + g.padding) * plan.padded_width + g.padding;
      for (std::int64_t w = 0; w < g.width; ++w) dst[w] = src[w];
    }
}

std::vector<float> transpose_weights(const Plan& plan, const float* w) {
  std::vector<float> t(static_cast<std::size_t>(plan.taps * plan.padded_channels), 0.0f);
  for (std::int64_t oc = 0; oc < plan.out_channels; ++oc)
    for (std::int64_t k = 0; k < plan.taps; ++k)
      t[static_cast<std::size_t>(k * plan.padded_channels + oc)] = w[oc * plan.taps + k];
  return t;
}

std::vector<float> pad_weight_taps(const Plan& plan, const float* w) {
  std::vector<float> padded(static_cast<std::size_t>(plan.out_channels * plan.padded_taps), 0.0f);
  for (std::int64_t oc = 0; oc < plan.out_channels; ++oc)
    for (std::int64_t k = 0; k < plan.taps; ++k)
      padded[static_cast<std::size_t>(oc * plan.padded_taps + k)] = w[oc * plan.taps + k];
  return padded;
}

std::int64_t input_gradient_scratch(const Plan& plan) {
  return plan.padded_size + plan.tap_vectors * plan.lanes * plan.positions;
}

void input_gradient_image(const Plan& plan, const float* weights_k, const float* dy,
                          float* scratch, float* dx) {
  float* padded = scratch;
  float* slab = scratch + plan.padded_size;
  std::fill(padded, padded + plan.padded_size, 0.0f);
#if defined(LATENT_X86_TILES)
  if (plan.lanes == 16) {
    input_avx512(plan, weights_k, dy, padded, slab);
  } else if (plan.lanes == 8) {
    input_avx2(plan, weights_k, dy, padded, slab);
  } else
#endif
  {
    input_any<ScalarVec>(plan, weights_k, dy, padded, slab);
  }
  const ConvGeometry& g = plan.g;
  for (std::int64_t c = 0; c < g.channels; ++c)
    for (std::int64_t h = 0; h < g.height; ++h) {
      const float* src = padded + (c * plan.padded_height + h + g.padding) * plan.padded_width + g.padding;
      float* dst = dx + (c * g.height + h) * g.width;
      for (std::int64_t w = 0; w < g.width; ++w) dst[w] = src[w];
    }
}

namespace {

// dy_t[p, oc] = dy[oc, p] over [oc0, oc1) × [p0, p1), element by element.
void transpose_elements(const Plan& plan, const float* dy, float* dy_t, std::int64_t oc0,
                        std::int64_t oc1, std::int64_t p0, std::int64_t p1) {
  for (std::int64_t p = p0; p < p1; ++p)
    for (std::int64_t oc = oc0; oc < oc1; ++oc)
      dy_t[p * plan.padded_channels + oc] = dy[oc * plan.positions + p];
}

#if defined(LATENT_X86_TILES)
// The same by 8 × 8 blocks in AVX registers (the classic unpack / shuffle / permute
// sequence), the edges element by element.
__attribute__((target("avx2"))) void transpose_avx2(const Plan& plan, const float* dy,
                                                    float* dy_t) {
  const std::int64_t P = plan.positions, OC = plan.out_channels, ld = plan.padded_channels;
  const std::int64_t oc_blocks = OC / 8 * 8, p_blocks = P / 8 * 8;
  for (std::int64_t oc = 0; oc < oc_blocks; oc += 8) {
    for (std::int64_t p = 0; p < p_blocks; p += 8) {
      __m256 r[8], t[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(dy + (oc + i) * P + p);
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
      }
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dy_t + (p + i) * ld + oc, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dy_t + (p + i + 4) * ld + oc, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
      }
    }
    transpose_elements(plan, dy, dy_t, oc, oc + 8, p_blocks, P);
  }
  transpose_elements(plan, dy, dy_t, oc_blocks, OC, 0, P);
}
#endif

}  // namespace

void transpose_output_gradient(const Plan& plan, const float* dy, float* dy_t) {
#if defined(LATENT_X86_TILES)
  if (plan.lanes > 1) {
    transpose_avx2(plan, dy, dy_t);
  } else
#endif
  {
    transpose_elements(plan, dy, dy_t, 0, plan.out_channels, 0, plan.positions);
  }
  for (std::int64_t p = 0; p < plan.positions; ++p)
    for (std::int64_t oc = plan.out_channels; oc < plan.padded_channels; ++oc)
      dy_t[p * plan.padded_channels + oc] = 0.0f;
}

void forward_image(const Plan& plan, const float* weights_t, const float* padded, float* y) {
#if defined(LATENT_X86_TILES)
  if (plan.lanes == 16) return forward_avx512(plan, weights_t, padded, y);
  if (plan.lanes == 8) return forward_avx2(plan, weights_t, padded, y);
#endif
  forward_any<ScalarVec>(plan, weights_t, padded, y);
}

void weight_gradient(const Plan& plan, const float* dy_t, const float* padded,
                     std::int64_t images, float* dw) {
#if defined(LATENT_X86_TILES)
  if (plan.lanes == 16) return weight_avx512(plan, dy_t, padded, images, dw);
  if (plan.lanes == 8) return weight_avx2(plan, dy_t, padded, images, dw);
#endif
  weight_any<ScalarVec>(plan, dy_t, padded, images, dw);
}

}  // namespace implicit_conv
}  // namespace latent::cpu
