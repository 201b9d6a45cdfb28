// Finite scalar quantization (FSQ): the ops and the FSQ autoencoder. Docs: docs/fsq.md;
// kernels: kernels/fsq.cuh.
//
// FSQ rounds each of the d channels of a latent vector to one of L_c levels after bounding
// it with tanh. The codes form an implicit codebook of ΠL_c vectors, a grid that is never
// stored or learned; a code's index is its mixed-radix number with place values
// (1, L_1, L_1·L_2, …).
//
//   latent::Generator gen(0);
//   latent::Tensor z = latent::randn({16, 4}, gen);
//   auto [codes, indices] = latent::fsq_quantize(z, {8, 5, 5, 5});  // codes [16, 4], indices [16]
//   latent::Tensor back = latent::fsq_indices_to_codes(indices, {8, 5, 5, 5});  // == codes
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "latent/models.h"
#include "latent/tensor.h"

namespace latent {

struct FsqOptions {
  // false: the FSQ paper's levels, {−⌊L/2⌋, …, L − 1 − ⌊L/2⌋}/⌊L/2⌋ (an even L has one more
  // level below 0 than above). true: L levels spread evenly over [−1, 1], symmetric around 0
  // for every L.
  bool symmetric = false;
};

// The size ΠL of the implicit codebook of `levels`; throws unless every level is ≥ 2, there
// are 1 to 30 of them and the product fits in int32 (indices are int32).
std::int64_t fsq_codebook_size(const std::vector<std::int64_t>& levels);

struct FsqOutput {
  Tensor codes;    // z's shape and dtype, values on the grid, in [−1, 1]
  Tensor indices;  // int32, z's shape without the last dimension
};

// Quantizes z [..., d] (float32 or float64, d = levels.size()) channel by channel, and
// computes each code's index in the same pass. Differentiable in z through the
// straight-through estimator: dL/dz = dL/dcodes · d(bounded z)/dz.
FsqOutput fsq_quantize(const Tensor& z, const std::vector<std::int64_t>& levels,
                       const FsqOptions& options = {});

// The codes [..., d] of indices [...] (int32); throws when an index is outside [0, ΠL).
Tensor fsq_indices_to_codes(const Tensor& indices, const std::vector<std::int64_t>& levels,
                            const FsqOptions& options = {}, DType dtype = DType::f32);

// The indices [...] of codes [..., d]; a value off the grid snaps to the nearest level.
Tensor fsq_codes_to_indices(const Tensor& codes, const std::vector<std::int64_t>& levels,
                            const FsqOptions& options = {});

namespace models {

// encoder → d = levels.size() latent channels (the encoder's last conv is the projection)
// → FSQ at each of the 7×7 positions → decoder. Tokens are the FSQ indices, [N, 7, 7].
class FsqAutoencoder : public TrainableModel {
 public:
  FsqAutoencoder(const ConvNetConfig& config, std::vector<std::int64_t> levels, Generator& gen,
                 std::string loss = "mse", FsqOptions options = {});

  // The encoder's output before quantization, [N, d, 7, 7].
  Tensor encode(const Tensor& images);
  // Codes [N, d, 7, 7] and indices [N, 7, 7] of images.
  FsqOutput quantize(const Tensor& images);
  Tensor decode_logits(const Tensor& codes);  // codes [N, d, 7, 7] -> logits
  Tensor forward(const Tensor& images) override;  // logits of the reconstruction

  StepOutput training_step(const Tensor& images, std::int64_t step) override;
  Tensor reconstruct(const Tensor& images) override;
  // utilization (fraction of the ΠL codes used on the test set), codes_used, codebook_size,
  // perplexity (exp of the entropy of the code histogram) and its ratio to ΠL.
  std::map<std::string, double> evaluate_extra(const Dataset& test, Device device) override;
  Tensor encode_tokens(const Tensor& images) override;
  Tensor decode_tokens(const Tensor& tokens) override;

  const std::vector<std::int64_t>& levels() const { return levels_; }
  std::int64_t codebook_size() const { return codebook_size_; }
  const FsqOptions& options() const { return options_; }
  // How often each used code occurs over the 7×7 positions of the test images: the
  // histogram behind the metrics (codes never used are absent).
  std::map<std::int32_t, std::int64_t> code_counts(const Dataset& test, Device device);

 private:
  ConvNetConfig config_;
  std::vector<std::int64_t> levels_;
  std::int64_t codebook_size_;
  std::string loss_;
  FsqOptions options_;
  std::shared_ptr<Encoder> encoder_;
  std::shared_ptr<Decoder> decoder_;
};

}  // namespace models
}  // namespace latent
