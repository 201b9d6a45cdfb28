// Generated image datasets for the tests that must not depend on Fashion-MNIST (DESIGN.md:
// data): one place for all of them, each reproducible from its seed.
//
//   smooth_images     a 7×7 uniform random field upsampled 4× to 28×28: smooth blobs with
//                     enough structure for an autoencoder to learn; labels i % 10
//   blob_images       one soft Gaussian blob at a random position: two factors of variation,
//                     so a good VAE needs only a few nats of KL; labels from the quadrant
//   noise_images      uniform noise, labels 0 (a smoke-test input)
//   quantized_images  h × w pixels that are exact multiples of 1/255 (what an IDX file holds,
//                     so they round-trip bit for bit); labels i % 10
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "latent/data.h"
#include "latent/random.h"
#include "latent/tensor.h"

namespace latent::test {

inline Dataset smooth_images(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  const std::vector<float> coarse = rand({n, 1, 7, 7}, gen).to_vector<float>();
  std::vector<float> pixels(static_cast<std::size_t>(n) * 784);
  for (std::int64_t i = 0; i < n; ++i)
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x)
        pixels[i * 784 + y * 28 + x] = coarse[i * 49 + (y / 4) * 7 + x / 4];
  std::vector<std::int32_t> labels(n);
  for (std::int64_t i = 0; i < n; ++i) labels[i] = static_cast<std::int32_t>(i % 10);
  return {from_vector(pixels, {n, 1, 28, 28}), from_vector(labels, {n})};
}

inline Dataset blob_images(std::int64_t n, std::uint64_t seed) {
  Generator gen(seed);
  const std::vector<double> centres =
      uniform({n, 2}, 7.0, 21.0, gen, DType::f64).to_vector<double>();
  std::vector<float> pixels(static_cast<std::size_t>(n) * 784);
  for (std::int64_t i = 0; i < n; ++i) {
    for (int y = 0; y < 28; ++y) {
      for (int x = 0; x < 28; ++x) {
        const double dx = x - centres[2 * i], dy = y - centres[2 * i + 1];
        pixels[i * 784 + y * 28 + x] = static_cast<float>(std::exp(-(dx * dx + dy * dy) / 18.0));
      }
    }
  }
  std::vector<std::int32_t> labels(n);
  for (std::int64_t i = 0; i < n; ++i)
    labels[i] = static_cast<std::int32_t>(centres[2 * i] < 14 ? 0 : 1) +
                2 * static_cast<std::int32_t>(centres[2 * i + 1] < 14 ? 0 : 1);
  return {from_vector(pixels, {n, 1, 28, 28}), from_vector(labels, {n})};
}

inline Dataset noise_images(std::int64_t n, Generator& gen) {
  return {rand({n, 1, 28, 28}, gen), from_vector(std::vector<std::int32_t>(n, 0), {n})};
}

inline Dataset quantized_images(std::int64_t n, std::int64_t h, std::int64_t w,
                                std::uint64_t seed) {
  Generator gen(seed);
  Dataset d{empty({n, 1, h, w}), empty({n}, DType::i32)};
  float* pixels = d.images.data<float>();
  for (std::int64_t i = 0; i < d.images.numel(); ++i)
    pixels[i] = static_cast<float>(gen.next_int(256)) / 255.0f;
  std::int32_t* labels = d.labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i) labels[i] = static_cast<std::int32_t>(i % 10);
  return d;
}

}  // namespace latent::test
