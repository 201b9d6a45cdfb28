// Implicit-GEMM convolution tiles for the cpu backend, float32: the forward and the weight
// gradient as register-blocked GEMMs whose "column matrix" is read straight from the
// zero-padded input image, so no im2col buffer is ever written.
//
// With k = (c, kh, kw) over C·KH·KW, p = (oh, ow) over OH·OW and the image zero-padded to
// PH × PW = (H + 2p) × (W + 2p):
//     X(k, p)   = padded[offset[k] + base[p]],  offset[k] = (c·PH + kh)·PW + kw,
//                                               base[p]   = oh·s·PW + ow·s
//     forward:          y[oc, p]  = Σ_k W[oc, k] · X(k, p)
//     weight gradient:  dW[oc, k] = Σ_n Σ_p dy_n[oc, p] · X_n(k, p)
//     input gradient:   dX(k, p) += Σ_oc W[oc, k] · dy[oc, p]   (a scatter into the padded
//                       gradient image, whose border is then dropped: col2im without cols)
// Each tile keeps NV vectors of output channels (16 lanes with AVX-512, 8 with AVX2, 1
// without) by NP positions (forward) or NP taps (weight gradient) of sums in registers,
// NV·NP = 24 with AVX-512 (32 vector registers), 12 with AVX2 (16), 12 scalar. Per step of
// the reduction it loads NV vectors (weights [k][oc], or dy transposed to [p][oc]) and
// broadcasts NP input values, for NV·NP fmas: FMA-bound from NV·NP / (NV + NP) ≥ 2.4. The
// input gradient's tiles run along taps instead (NV vectors of W [oc][k], NP positions of dy)
// into a slab of NV·L taps by P positions, which is then added into the padded gradient tap
// by tap, so that every pixel sums its terms in ascending k (col2im's order).
// Output channels are padded to whole tiles with zero weights (or zero dy) and the lanes
// past OC are never stored; position and tap tails repeat the last valid one, unstored.
//
// Every sum is one fma chain in the order of its reduction index (k ascending; n, then p
// ascending), in every instruction set: AVX-512, AVX2 and the scalar path give the same bits.
// Which one runs is chosen once from the cpu (vector_isa(); tests force each in turn); with
// fewer than 16 output channels an AVX-512 cpu runs the AVX2 tiles, whose 8 lanes they fill.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/conv.cuh"

namespace latent::cpu {

enum class VectorIsa { scalar, avx2, avx512 };
VectorIsa vector_isa();                  // the one the tiles use
VectorIsa best_vector_isa();             // the best this cpu supports
void set_vector_isa(VectorIsa isa);      // for tests: must not exceed best_vector_isa()
const char* vector_isa_name(VectorIsa isa);

namespace implicit_conv {

using kernels::ConvGeometry;

// Everything the tiles need that depends only on the geometry and the output channels.
struct Plan {
  ConvGeometry g;
  std::int64_t out_channels = 0, taps = 0, positions = 0;  // OC, K = C·KH·KW, P = OH·OW
  std::int64_t padded_height = 0, padded_width = 0, padded_size = 0;  // C·PH·PW
  std::int64_t lanes = 1, vectors = 1, padded_channels = 0;  // NV, OC rounded up to tiles
  std::int64_t tap_vectors = 1, padded_taps = 0;             // the same along K
  std::vector<std::int32_t> offsets;  // [K]
  std::vector<std::int32_t> bases;    // [P]
  // Where the forward tiles store y[oc, p]: oc · out_stride + out_index[p] (p and P for a
  // whole output; the pixels of one phase for the input gradient's phase convolutions).
  std::vector<std::int32_t> out_index;  // [P]
  std::int64_t out_stride = 0;
};

// The input gradient as s² convolutions, one per phase (a, b) of the input pixels
// (ih + p ≡ a, iw + p ≡ b mod s): with kh = a + s·t, oh = i' − t for ih + p = s·i' + a,
//     dx[c, s·i' + a − p, s·j' + b − p] = Σ_(oc, t, u) W[oc, c, a + s·t, b + s·u] · dy[oc, i' − t, j' − u]
// a stride-1 convolution of dy (zero-padded) by the phase's taps of the kernel, with C output
// channels: the forward tiles run it, each pixel one sum with no scatter. Phases that no tap
// reaches (s > KH or s > KW) are zero.
struct PhaseGradient {
  std::vector<Plan> phases;                 // the phases that some tap reaches
  std::vector<std::vector<float>> weights;  // per phase: [taps, padded C], for the tiles
  std::int64_t dy_channels = 0, dy_padding = 0, dy_height = 0, dy_width = 0, dy_size = 0;
};
// Whether it serves this convolution (C ≥ lanes / 2: the tiles' channels are the input's).
bool phase_gradient_eligible(const ConvGeometry& g, std::int64_t out_channels);
PhaseGradient make_phase_gradient(const ConvGeometry& g, std::int64_t out_channels, const float* w);
// dx [C, H, W] of one image from dy [OC, OH, OW], with dy_size elements of scratch.
void phase_gradient_image(const PhaseGradient& pg, const float* dy, float* scratch, float* dx);

// Whether the implicit tiles serve this convolution: a vector instruction set (the scalar
// tiles only when set_vector_isa asked for them), enough output channels to fill at least
// half a vector (OC ≥ lanes / 2: 4 on AVX2, whose tiles AVX-512 cpus use below 16) and every
// padded index within 32 bits. Otherwise im2col + GEMM.
bool eligible(const ConvGeometry& g, std::int64_t out_channels);
Plan make_plan(const ConvGeometry& g, std::int64_t out_channels);

// padded [C·PH·PW] = image [C, H, W] with `padding` zeros around each plane.
void pad_image(const Plan& plan, const float* image, float* padded);

// weights_t [K, padded_channels] = W [OC, K] transposed, zero past OC.
std::vector<float> transpose_weights(const Plan& plan, const float* w);

// y [OC, P] of one image from its padded input.
void forward_image(const Plan& plan, const float* weights_t, const float* padded, float* y);

// Whether the input-gradient tiles serve it: a vector set and K ≥ lanes.
bool input_gradient_eligible(const ConvGeometry& g, std::int64_t out_channels);

// weights_k [OC, padded_taps] = W [OC, K], zero past K.
std::vector<float> pad_weight_taps(const Plan& plan, const float* w);

// dx [C, H, W] of one image from dy [OC, P], with input_gradient_scratch(plan) elements of
// scratch (the padded gradient and one tile row of taps by every position).
std::int64_t input_gradient_scratch(const Plan& plan);
void input_gradient_image(const Plan& plan, const float* weights_k, const float* dy,
                          float* scratch, float* dx);

// dy_t [P, padded_channels] = dy [OC, P] transposed, zero past OC.
void transpose_output_gradient(const Plan& plan, const float* dy, float* dy_t);

// dw_t [K, padded_channels] = (Σ over `images` images of dy_t[n] and padded[n], each
// padded_size apart)ᵀ: the weight gradient transposed, so that tiles store whole vectors.
void weight_gradient(const Plan& plan, const float* dy_t, const float* padded,
                     std::int64_t images, float* dw_t);

}  // namespace implicit_conv
}  // namespace latent::cpu
