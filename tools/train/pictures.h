// The pictures `latent train` writes beside a checkpoint: the reconstruction grid of every
// model, and each model's own (VAE samples, interpolations and 2-D latent scatter plot; VQ-VAE
// codebook-usage bars, token grids and, for 2-D codes, the snapping picture; the FSQ codebook
// and rounding pictures), and the compression bars of `latent info`. They read the model
// through its public API only; one file per model (vae_pictures.cpp, vq_pictures.cpp,
// fsq_pictures.cpp) and one for the bits of every model's latent (compression_pictures.cpp),
// all drawn on canvas.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "latent/data.h"
#include "latent/fsq.h"
#include "latent/models.h"
#include "latent/vae.h"
#include "latent/vq.h"
#include "tools/train/canvas.h"

namespace latent::train {

// Eight test images above their reconstructions, twice: a 4×8 grid, saved as a PNG.
void write_reconstruction_grid(models::TrainableModel& model, const Dataset& test, Device device,
                               const std::string& path);

// The model's own pictures into out_dir (nothing for the plain autoencoder). The model
// should be in eval mode.
void write_pictures(models::TrainableModel& model, const std::string& out_dir,
                    const Dataset& test, Device device);

// samples.png (64 prior samples), interpolation.png (four strips between test images of two
// classes) and, for a 2-D latent, latent_scatter.png (the test set's means by class) and
// reparameterization.png (write_reparameterization_picture).
void write_vae_pictures(models::Vae& model, const std::string& out_dir, const Dataset& test,
                        Device device);
// The reparameterization of a 2-D latent (throws for another size): four test images (of
// four classes where the test set has them), each encoder's N(μ, σ²) as its μ ± σ and μ ± 2σ
// ellipses among the test set's means and the prior's 1σ, 2σ, 3σ circles; beside it, per
// image, a zoom on μ ± 3σ with K = 64 draws z = μ + σ·ε (latent::reparameterize), the image,
// decode(μ) and the decodings of the first five draws, and the numbers μ and σ.
void write_reparameterization_picture(models::Vae& model, const std::string& path,
                                      const Dataset& test, Device device);

// codebook_usage.png (per-code bars: test-set usage; with EMA, the counts around the last
// revival), tokens.png and tokens.npy (the token grids of the first 8 test images) and, for
// codes of two dimensions, snapping.png (write_snapping_picture).
void write_vqvae_pictures(models::VqVae& model, const std::string& out_dir, const Dataset& test,
                          Device device);
// Snapping to the nearest code, for a VQ-VAE whose codes have D = 2 (throws otherwise): the
// encoder outputs of the first 40 test images' 49 positions (normalized in cosine mode) as
// dots, the codebook as large discs (hollow: unused by these outputs), a line from each
// output to the code the quantizer chose for it, and each code's cell (the region nearest to
// it) tinted in its colour.
void write_snapping_picture(models::VqVae& model, const std::string& path, const Dataset& test,
                            Device device);
// The drawing behind it, exposed for the tests: points [n, 2] and codes [K, 2] as flat
// row-major vectors, assignment[i] the code of point i, a caption line on top. cosine: the
// cells are those of the direction (the pixel's vector normalized). Where `area` is not null
// it receives the plot's mapping from the plane to pixels.
Tensor snapping_plot(const std::vector<float>& points, const std::vector<float>& codes,
                     const std::vector<std::int32_t>& assignment, bool cosine,
                     const std::string& caption, PlotArea* area = nullptr);
// The colour of the line from a point to code k (lighter than the code's disc).
Rgb snapping_line_colour(std::int64_t code);

// codebook_usage.png: one pixel block per code of the implicit codebook, brightness
// log(1 + count), unused codes dark red; and rounding.png (write_rounding_picture).
void write_fsq_pictures(models::FsqAutoencoder& model, const std::string& out_dir,
                        const Dataset& test, Device device);
// FSQ rounding in the plane of the first two channels (throws for a single channel): the
// bounded encoder outputs b/h of the first 40 test images' positions as dots, the grid of
// the two channels' levels (the codes, hollow where unused), the rounding cells' edges, the
// range the bound can reach, and a line from each bounded output to the code that
// fsq_quantize gave it.
void write_rounding_picture(models::FsqAutoencoder& model, const std::string& path,
                            const Dataset& test, Device device);
// The bound of one channel in code units, b/h (docs/fsq.md, section 1; for the symmetric
// variant, the value whose nearest level is the digit, (L − 1)·tanh(z)/2 over (L − 1)/2):
// the point that rounding moves to the nearest of the channel's levels.
double fsq_bound(double z, std::int64_t levels, bool symmetric);
// The levels of one channel in code units, lowest first.
std::vector<double> fsq_levels(std::int64_t levels, bool symmetric);
// The drawing behind it: bounded [n, 2] and codes [n, 2] (flat, row-major) for channels
// with levels l0 (along x) and l1 (along y).
Tensor rounding_plot(const std::vector<float>& bounded, const std::vector<float>& codes,
                     std::int64_t l0, std::int64_t l1, bool symmetric, const std::string& caption,
                     PlotArea* area = nullptr);
// The colour of the line from a bounded output to its code, and of a used code's marker.
Rgb rounding_line_colour();
Rgb rounding_code_colour();

// ------------------------------------------------------------------ compression
// What one image's latent costs: bits = numbers × bits per number, against the image's
// 8-bit pixels.
struct LatentBudget {
  std::string label;        // "ae", "vae (mu, sigma)", …
  std::string latent;       // "7x7x4 float32", "49 tokens of K = 512", …
  std::int64_t numbers = 0; // floats or tokens per image
  double bits = 0.0;        // per image
  double image_bits = 0.0;  // per image: pixels × 8
  double ratio() const { return image_bits / bits; }
};
// The latent of `model` (ae, vae, vqvae, fsq), measured by encoding one blank image of
// image_channels × 28 × 28: an autoencoder's grid of float32; a VAE's distribution (μ and σ,
// two floats a unit) and one sample z of it (two rows); a VQ-VAE's or an FSQ model's 49
// tokens of log2 K or log2 ΠL bits. `label` prefixes the rows' labels. Throws for a model
// that has no latent of its own (the prior).
std::vector<LatentBudget> latent_budgets(models::TrainableModel& model, const std::string& label,
                                         std::int64_t image_channels, Device device);
// Horizontal bars of bits per image, the image itself first, each with its bits and its
// compression ratio; saved as a PNG.
void write_compression_picture(const std::vector<LatentBudget>& budgets, const std::string& path);

}  // namespace latent::train
