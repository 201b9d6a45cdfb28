// Vector quantization: the nearest-code search, the straight-through quantizer with its two
// losses, the EMA codebook with dead-code revival, k-means initialization, codebook metrics,
// and the VQ-VAE built from them. The chapter is docs/vq.md; the kernels are
// kernels/vq_argmin.cuh and kernels/vq_ema.cuh.
//
//   latent::Tensor z = ...;                                  // [N, D] encoder outputs
//   latent::Tensor codebook = ...;                           // [K, D]
//   latent::VectorQuantizeResult q = latent::vector_quantize(z, codebook);
//   latent::Tensor loss = recon + q.loss;                    // codebook + β·commitment
//   // q.z_q goes to the decoder; its gradient reaches z unchanged (straight-through)
//
// Every function runs on the device of its inputs (cpu, or cuda: a GPU or the SIMT executor).
// Indices are int32; ties in the argmin go to the lowest code index.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latent/models.h"
#include "latent/random.h"
#include "latent/tensor.h"

namespace latent {

// ------------------------------------------------------------------ nearest code
enum class VqArgminAlgorithm {
  tiled,  // the fused register/shared-memory tiled kernel (the default)
  naive,  // one thread per row (cuda) — a baseline for tests and benchmarks
  gemm,   // GEMM (cuBLAS on a GPU) into an N×K score matrix, then a row argmin — a baseline
};

struct VqArgminOptions {
  VqArgminAlgorithm algorithm = VqArgminAlgorithm::tiled;  // the cpu backend has one loop
  bool distances = false;  // also return ‖z_i − e_idx‖² (computed for the winner only)
  int splits = 0;          // tiled: split the codes over this many blocks per row tile (0: auto)
};

struct VqArgminResult {
  Tensor indices;    // int32 [N]
  Tensor distances;  // [N], z's dtype; undefined unless asked for
};

// idx_i = argmin_k ‖z_i − e_k‖² for z [N, D] and codebook [K, D] (float32 or float64, one
// device), ties to the lowest k. Not differentiable. Throws on K = 0, a D mismatch, and on
// non-finite inputs (a NaN/Inf in the codebook, or a row of z whose distances are not
// finite).
VqArgminResult vq_argmin(const Tensor& z, const Tensor& codebook,
                         const VqArgminOptions& options = {});

// x / max(‖x‖, eps) along the last dimension (differentiable): the cosine mode normalizes
// both the encoder outputs and the codes, so the nearest code is the most similar one.
Tensor l2_normalize_rows(const Tensor& x, double eps = 1e-12);

// z_q = codebook[indices] for indices int32 [N] in [0, K): [N, D]. Differentiable with
// respect to the codebook: dL/de_k = Σ_{i : idx_i = k} dL/dz_q,i (deterministic).
Tensor vq_gather(const Tensor& codebook, const Tensor& indices);

// ------------------------------------------------------------------ code statistics
enum class VqStatsAlgorithm {
  automatic,  // shared on a GPU when K·D fits in shared memory, else (and under SIMT) sorted
  shared,     // per-block shared-memory partials (cuda; deterministic)
  sorted,     // stable sort by code, runs summed in fixed pieces (cuda; deterministic)
  atomic,     // float atomics (cuda; NOT deterministic — benchmarks only)
};

struct VqCodeStats {
  Tensor counts;  // int32 [K]: n_k = #{i : idx_i = k}
  Tensor sums;    // [K, D]:   m_k = Σ_{i : idx_i = k} z_i (undefined from vq_code_counts)
};

// Per-code counts and sums of the rows of z [N, D] by their indices [N] (in [0, K)).
VqCodeStats vq_code_stats(const Tensor& z, const Tensor& indices, std::int64_t codebook_size,
                          VqStatsAlgorithm algorithm = VqStatsAlgorithm::automatic);
// Counts only (a histogram of the indices).
Tensor vq_code_counts(const Tensor& indices, std::int64_t codebook_size);

// ------------------------------------------------------------------ quantization with gradients
struct VectorQuantizeOptions {
  double beta = 0.25;   // commitment weight β (latent puts it on the commitment term)
  bool cosine = false;  // normalize z and the codes first (cosine-similarity lookup)
};

struct VectorQuantizeResult {
  Tensor z_q;              // [N, D]: the codes' values; gradient passes to z unchanged
  Tensor indices;          // int32 [N]
  Tensor codebook_loss;    // mean ‖sg[z] − e‖²: trains the codebook only
  Tensor commitment_loss;  // mean ‖z − sg[e]‖² (unweighted): trains the encoder only
  Tensor loss;             // codebook_loss + β·commitment_loss
  Tensor counts;           // int32 [K]: how many rows chose each code; on the host,
                           // codebook_perplexity(counts) and codebook_utilization(counts)
};

// The VQ-VAE quantizer (van den Oord et al., 2017): z [N, D], codebook [K, D].
// Losses are means over the N·D elements, as torch.nn.functional.mse_loss. With an EMA
// codebook, use β·commitment_loss only (the codebook learns from vq_ema_update).
VectorQuantizeResult vector_quantize(const Tensor& z, const Tensor& codebook,
                                     const VectorQuantizeOptions& options = {});

// ------------------------------------------------------------------ EMA codebook
struct VqEmaOptions {
  double decay = 0.99;    // γ
  double epsilon = 1e-5;  // Laplace smoothing ε
};

// In place, from a batch's statistics (n, m):
//   N ← γN + (1−γ)n,  M ← γM + (1−γ)m,  Ñ_k = (N_k + ε)/(ΣN + Kε)·ΣN,  e_k = M_k / Ñ_k.
// codebook [K, D], ema_count [K], ema_sum [K, D]: one dtype, one device.
void vq_ema_update(const Tensor& codebook, const Tensor& ema_count, const Tensor& ema_sum,
                   const VqCodeStats& batch, const VqEmaOptions& options = {});

// Moves every code with ema_count < threshold onto a row of z [N, D] drawn by Philox from
// `key` (row ⌊u_k·N⌋, u_k the draw for element k) and resets both its statistics:
// ema_count ← reset_count, ema_sum ← reset_count·z_r. Returns int32 [K]: 1 where revived.
Tensor vq_revive_dead_codes(const Tensor& codebook, const Tensor& ema_count,
                            const Tensor& ema_sum, const Tensor& z, double threshold,
                            double reset_count, PhiloxKey key);

// ------------------------------------------------------------------ k-means
struct KMeansResult {
  Tensor centroids;  // [K, D]
  Tensor counts;     // int32 [K]: cluster sizes after the last assignment
};
// Lloyd's algorithm on the rows of x [N, D]: centroids start at K rows chosen by k-means++
// seeding (drawn from `gen`), then `iterations` rounds of assign (vq_argmin) and average
// (vq_code_stats); a cluster left empty restarts at a freshly drawn row.
KMeansResult kmeans(const Tensor& x, std::int64_t clusters, std::int64_t iterations,
                    Generator& gen);

// ------------------------------------------------------------------ metrics (on host)
// exp(−Σ p_k log p_k) with p = counts / Σ counts (0 log 0 = 0); 0 for an empty histogram.
double codebook_perplexity(const Tensor& counts);
// The fraction of codes with a positive count.
double codebook_utilization(const Tensor& counts);

namespace models {

struct VectorQuantizerConfig {
  std::int64_t codebook_size = 512;
  std::int64_t code_dim = 16;
  double beta = 0.25;
  bool cosine = false;
  bool ema = false;
  double decay = 0.99;
  double epsilon = 1e-5;
  double dead_code_threshold = 0.0;  // EMA count under which a code is revived (0: off)
  bool kmeans_init = false;
  std::int64_t kmeans_iterations = 10;
  std::int64_t usage_window = 100;   // steps over which training utilization is measured
  std::uint64_t seed = 0;            // revival and k-means draws
};

// A codebook and everything that keeps it alive. Gradient mode: the codebook is a parameter
// trained by the codebook loss. EMA mode: the codebook and its statistics (ema_count,
// ema_sum) are buffers updated by update(); checkpoints carry them, optimizers skip them.
class VectorQuantizer : public nn::Module {
 public:
  VectorQuantizer(const VectorQuantizerConfig& config, Generator& gen);

  // z [N, D] -> quantized values, indices, losses, batch statistics.
  VectorQuantizeResult quantize(const Tensor& z);
  // Indices only (no graph): the tokenizer's encode.
  Tensor nearest(const Tensor& z);
  // The (normalized, in cosine mode) code vectors of `indices`: the tokenizer's decode.
  Tensor lookup(const Tensor& indices);
  // Runs k-means on z and makes the result the codebook (and the EMA state) once.
  void initialize_from(const Tensor& z);
  // Whether k-means has run (the `initialized` buffer). Cached on the host: known from the
  // constructor and initialize_from, read once after load_state_dict, never per step.
  bool initialized() const;

  // What update() did, as device tensors: nothing is read back to the host. Defined in EMA
  // mode with a dead-code threshold only.
  struct UpdateReport {
    Tensor revived_mask;  // int32 [K]: 1 where the code was revived
    Tensor revived;       // float64 scalar: how many codes were revived
    Tensor count_before;  // copies of the EMA counts just before and just after the revival
    Tensor count_after;
  };
  // After the optimizer step, with the batch's (detached) z and indices: the EMA update and
  // revival (EMA mode), and the usage window (both modes), all on the device.
  UpdateReport update(const Tensor& z, const Tensor& indices, std::int64_t step);

  // Fraction of codes chosen within the last usage_window steps up to `step` (−1: up to the
  // last step any code was chosen). Reads the usage window back to the host.
  double window_utilization(std::int64_t step) const;
  // Codes whose EMA count is under the threshold (EMA mode with a threshold; else 0). Reads
  // the EMA counts back to the host.
  std::int64_t dead_codes() const;

  const VectorQuantizerConfig& config() const { return config_; }
  Tensor codebook() const { return codebook_; }
  Tensor ema_count() const { return ema_count_; }
  Tensor ema_sum() const { return ema_sum_; }
  Tensor last_used() const { return last_used_; }  // int32 [K]: the usage window

 protected:
  void on_state_loaded() override;

 private:
  VectorQuantizerConfig config_;
  Tensor codebook_;     // parameter (gradient mode) or buffer (EMA mode), [K, D]
  Tensor ema_count_;    // buffer [K] (EMA mode)
  Tensor ema_sum_;      // buffer [K, D] (EMA mode)
  Tensor last_used_;    // buffer int32 [K]: the last step a code was chosen, −1 never
  Tensor initialized_;  // buffer int32 [1]: k-means has run
  mutable int initialized_cache_ = -1;  // the buffer's value on the host; −1: not known
};

struct VqVaeConfig {
  ConvNetConfig net;  // latent_channels is set to the code dimension
  VectorQuantizerConfig quantizer;
  std::string loss = "mse";
};

// The VQ-VAE: encoder → 7×7 grid of D-vectors → nearest codes (one token per position) →
// decoder. Loss = reconstruction + codebook loss (gradient mode) + β·commitment loss.
class VqVae : public TrainableModel {
 public:
  VqVae(const VqVaeConfig& config, Generator& gen);

  StepOutput training_step(const Tensor& images, std::int64_t step) override;
  void after_step(const Tensor& images, std::int64_t step) override;
  Tensor reconstruct(const Tensor& images) override;
  std::map<std::string, double> evaluate_extra(const Dataset& test, Device device) override;
  Tensor encode_tokens(const Tensor& images) override;   // int32 [N, 7, 7]
  Tensor decode_tokens(const Tensor& tokens) override;   // images [N, C, 28, 28] in [0, 1]

  // Encoder outputs as rows: [N·49, D] (position-major within each image).
  Tensor encode_rows(const Tensor& images);
  const VqVaeConfig& config() const { return config_; }
  VectorQuantizer& quantizer() { return *quantizer_; }

  // The last training step whose update revived codes (EMA mode with a dead-code threshold),
  // with the EMA counts just before and just after it. The model keeps it on the device,
  // updated each step without a host read; this reads it back. step −1: no revival yet.
  struct Revival {
    std::int64_t step = -1;
    std::vector<double> count_before, count_after;
    std::vector<std::int32_t> revived_mask;
  };
  Revival last_revival() const;

 private:
  Tensor decode_rows(const Tensor& rows, std::int64_t images);  // logits
  void record_revival(const VectorQuantizer::UpdateReport& report, std::int64_t step);

  VqVaeConfig config_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<VectorQuantizer> quantizer_;
  std::shared_ptr<Decoder> decoder_;
  Tensor pending_z_, pending_indices_;  // the last training batch, for after_step
  // With dead-code revival, buffers (saved in checkpoints): the codes revived by the last
  // update, and the last update that revived any. Each update blends its report in with
  // weight 1 when it revived a code and 0 when it did not (exact: products with 0 and 1 round
  // to nothing), on the device.
  Tensor last_revived_;                 // int32 scalar
  Tensor revival_step_;                 // int32 scalar, −1 before any revival
  Tensor revival_before_, revival_after_;  // [K], the EMA counts' dtype
  Tensor revival_mask_;                 // int32 [K]
};

}  // namespace models
}  // namespace latent
