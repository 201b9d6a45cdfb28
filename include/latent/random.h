// Generator: hands out (seed, offset) pairs for the counter-based Philox4x32-10 stream.
//
// The numbers drawn for element i of a call depend only on (seed, offset, i), never on the
// device, the launch shape or the thread count: cpu, the SIMT executor and a GPU draw the
// same bits. Every draw takes a fresh offset, so consecutive calls never reuse numbers.
#pragma once

#include <cstdint>

namespace latent {

struct PhiloxKey {
  std::uint64_t seed = 0;
  std::uint64_t offset = 0;
};

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}

  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  void set_state(std::uint64_t seed, std::uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }
  // Reserves one offset for a draw of any number of elements.
  PhiloxKey next() { return {seed_, offset_++}; }

  // Host-side scalar draws (each consumes one offset).
  std::uint64_t next_u64();
  double next_uniform();                              // [0, 1)
  std::int64_t next_int(std::int64_t bound);          // [0, bound)

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

}  // namespace latent
