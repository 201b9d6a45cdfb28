#include "latent/random.h"

#include "kernels/philox.cuh"
#include "latent/error.h"

namespace latent {

std::uint64_t Generator::next_u64() {
  const PhiloxKey key = next();
  const kernels::Philox4 r = kernels::philox_block(key.seed, key.offset, 0);
  return (static_cast<std::uint64_t>(r.x[0]) << 32) | r.x[1];
}

double Generator::next_uniform() {
  return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0);
}

std::int64_t Generator::next_int(std::int64_t bound) {
  LATENT_CHECK(bound > 0, "Generator::next_int: bound must be positive, got ", bound);
  // Rejection sampling keeps the draw exactly uniform.
  const std::uint64_t ubound = static_cast<std::uint64_t>(bound);
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % ubound;
  while (true) {
    const std::uint64_t v = next_u64();
    if (v < limit) return static_cast<std::int64_t>(v % ubound);
  }
}

}  // namespace latent
