// Division by a divisor fixed for a whole launch, without a division instruction.
//
// A GPU has no integer divider: `a / b` on 64-bit integers is a call to a ~70-instruction
// routine, on 32-bit integers a ~20-instruction sequence. When b is the same for every
// thread of a launch (a row length, a tile count), the host can compute once a "magic"
// multiplier m and a shift l such that, for every 0 ≤ n < 2^63,
//
//   ⌊n / b⌋ = (umulhi(m, n) + n) >> l,    l = ⌈log2 b⌉,   m = ⌊2^64·(2^l − b) / b⌋ + 1
//
// where umulhi is the high 64 bits of the 128-bit product (Granlund and Montgomery,
// "Division by invariant integers using multiplication", 1994: the round-up method with
// an (N+1)-bit multiplier 2^64 + m). Why it is exact: 2^64 + m = ⌊2^(64+l)/b⌋ + 1, so
// (2^64 + m)·b = 2^(64+l) + e with 0 < e ≤ b ≤ 2^l, and
//   n·(2^64 + m) / 2^(64+l) = n/b + n·e / (b·2^(64+l)),
// whose second term is below 1/b because n < 2^64: adding it never reaches the next
// multiple of 1/b, so the floor is ⌊n/b⌋. umulhi(m, n) ≤ n, so the sum fits in 64 bits
// for n < 2^63. Cost on sm_90: a 64×64 high product (about 6 integer multiply-adds), an
// add and a shift; the remainder is one more multiply-add.
#pragma once

#include <cstdint>

#include "kernels/host_device.cuh"

namespace latent::kernels {

struct FastDivmod {
  std::int64_t divisor = 1;
  std::uint64_t multiplier = 1;  // m above
  int shift = 0;                 // l above

  FastDivmod() = default;
  // Host side; divisor ≥ 1.
  explicit FastDivmod(std::int64_t b) : divisor(b) {
    const auto d = static_cast<std::uint64_t>(b);
    while ((std::uint64_t{1} << shift) < d) ++shift;
    const unsigned __int128 scaled = static_cast<unsigned __int128>((std::uint64_t{1} << shift) - d)
                                     << 64;
    multiplier = static_cast<std::uint64_t>(scaled / d) + 1;
  }

  // ⌊n / divisor⌋ for 0 ≤ n < 2^63.
  LATENT_HOST_DEVICE LATENT_FORCEINLINE std::int64_t div(std::int64_t n) const {
    const auto u = static_cast<std::uint64_t>(n);
#if defined(__CUDA_ARCH__)
    const std::uint64_t high = __umul64hi(multiplier, u);
#else
    const auto high =
        static_cast<std::uint64_t>((static_cast<unsigned __int128>(multiplier) * u) >> 64);
#endif
    return static_cast<std::int64_t>((high + u) >> shift);
  }

  // n = quotient·divisor + remainder.
  LATENT_HOST_DEVICE LATENT_FORCEINLINE void divmod(std::int64_t n, std::int64_t& quotient,
                                                    std::int64_t& remainder) const {
    quotient = div(n);
    remainder = n - quotient * divisor;
  }
};

}  // namespace latent::kernels
