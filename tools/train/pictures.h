// The pictures `latent train` writes beside a checkpoint: the reconstruction grid of every
// model, and each model's own (VAE samples, interpolations and 2-D latent scatter plot; VQ-VAE
// codebook-usage bars and token grids; the FSQ codebook picture). They read the model through
// its public API only; one file per model (vae_pictures.cpp, vq_pictures.cpp,
// fsq_pictures.cpp).
#pragma once

#include <string>

#include "latent/data.h"
#include "latent/fsq.h"
#include "latent/models.h"
#include "latent/vae.h"
#include "latent/vq.h"

namespace latent::train {

// Eight test images above their reconstructions, twice: a 4×8 grid, saved as a PNG.
void write_reconstruction_grid(models::TrainableModel& model, const Dataset& test, Device device,
                               const std::string& path);

// The model's own pictures into out_dir (nothing for the plain autoencoder). The model
// should be in eval mode.
void write_pictures(models::TrainableModel& model, const std::string& out_dir,
                    const Dataset& test, Device device);

// samples.png (64 prior samples), interpolation.png (four strips between test images of two
// classes) and, for a 2-D latent, latent_scatter.png (the test set's means by class).
void write_vae_pictures(models::Vae& model, const std::string& out_dir, const Dataset& test,
                        Device device);
// codebook_usage.png (per-code bars: test-set usage; with EMA, the counts around the last
// revival), tokens.png and tokens.npy (the token grids of the first 8 test images).
void write_vqvae_pictures(models::VqVae& model, const std::string& out_dir, const Dataset& test,
                          Device device);
// codebook_usage.png: one pixel block per code of the implicit codebook, brightness
// log(1 + count), unused codes dark red.
void write_fsq_pictures(models::FsqAutoencoder& model, const std::string& out_dir,
                        const Dataset& test, Device device);

}  // namespace latent::train
