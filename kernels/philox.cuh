// Philox4x32-10: the counter-based random number generator of Salmon et al., "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011), bit-compatible with the Random123
// reference implementation (tests/random_test.cpp checks its published known-answer vectors).
//
// A counter-based generator is a keyed bijection: philox(counter, key) -> 4 random 32-bit
// words. There is no state to carry between threads, so element i of a tensor can draw its
// numbers from counter i wherever and in whatever order it runs. latent keys it as
//
//   key     = (seed_lo, seed_hi)
//   counter = (group_lo, group_hi, offset_lo, offset_hi),  group = i / 4 (or i / 2, f64)
//
// so that (seed, offset, i) alone fixes the numbers: the cpu backend, the SIMT executor and
// a GPU draw the same bits for the same element, whatever the launch shape.
//
// One round, on the counter words (x0, x1, x2, x3) and the round key (k0, k1), with the
// 32×32 → 64-bit products M0·x0 = (hi0, lo0) and M1·x2 = (hi1, lo1):
//
//   (x0, x1, x2, x3) ← (hi1 ^ x1 ^ k0,  lo1,  hi0 ^ x3 ^ k1,  lo0)
//
// M0 = 0xD2511F53, M1 = 0xCD9E8D57. Ten rounds; before each round after the first the key is
// bumped by the Weyl constants, k0 += 0x9E3779B9, k1 += 0xBB67AE85. Cost per call: 10 rounds
// × 2 32×32→64 multiplies, ~40 integer ops; 16 bytes of output, no memory traffic.
#pragma once

#include <cstdint>

#include "host_device.cuh"

namespace latent::kernels {

struct Philox4 {
  std::uint32_t x[4];
};

namespace philox_detail {
constexpr std::uint32_t kMul0 = 0xD2511F53u;
constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;

LATENT_HOST_DEVICE LATENT_FORCEINLINE void mulhilo(std::uint32_t a, std::uint32_t b,
                                                   std::uint32_t& hi, std::uint32_t& lo) {
  const std::uint64_t product = static_cast<std::uint64_t>(a) * b;
  hi = static_cast<std::uint32_t>(product >> 32);
  lo = static_cast<std::uint32_t>(product);
}
}  // namespace philox_detail

// The raw bijection: 10 rounds of Philox4x32 on `counter` under `key`.
LATENT_HOST_DEVICE inline Philox4 philox4x32_10(Philox4 counter, std::uint32_t key0,
                                                std::uint32_t key1) {
  using namespace philox_detail;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key0 += kWeyl0;
      key1 += kWeyl1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, counter.x[0], hi0, lo0);
    mulhilo(kMul1, counter.x[2], hi1, lo1);
    counter = Philox4{{hi1 ^ counter.x[1] ^ key0, lo1, hi0 ^ counter.x[3] ^ key1, lo0}};
  }
  return counter;
}

// The four words for call number `group` of the stream (seed, offset).
LATENT_HOST_DEVICE inline Philox4 philox_block(std::uint64_t seed, std::uint64_t offset,
                                               std::uint64_t group) {
  const Philox4 counter{{static_cast<std::uint32_t>(group),
                         static_cast<std::uint32_t>(group >> 32),
                         static_cast<std::uint32_t>(offset),
                         static_cast<std::uint32_t>(offset >> 32)}};
  return philox4x32_10(counter, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

// A 32-bit word to a float in [0, 1): the top 24 bits, exactly representable.
LATENT_HOST_DEVICE LATENT_FORCEINLINE float uniform_float(std::uint32_t word) {
  return static_cast<float>(word >> 8) * (1.0f / 16777216.0f);
}

// Two words to a double in [0, 1): the top 53 bits of (hi, lo).
LATENT_HOST_DEVICE LATENT_FORCEINLINE double uniform_double(std::uint32_t hi,
                                                            std::uint32_t lo) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(hi) << 32) | lo;
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);
}

// Uniform element i of the stream (seed, offset), for float32 (4 elements per call).
LATENT_HOST_DEVICE inline float philox_uniform_f32(std::uint64_t seed, std::uint64_t offset,
                                                   std::uint64_t i) {
  const Philox4 r = philox_block(seed, offset, i / 4);
  return uniform_float(r.x[i % 4]);
}

// Uniform element i of the stream (seed, offset), for float64 (2 elements per call).
LATENT_HOST_DEVICE inline double philox_uniform_f64(std::uint64_t seed, std::uint64_t offset,
                                                    std::uint64_t i) {
  const Philox4 r = philox_block(seed, offset, i / 2);
  const unsigned pair = static_cast<unsigned>(i % 2) * 2;
  return uniform_double(r.x[pair], r.x[pair + 1]);
}

}  // namespace latent::kernels
