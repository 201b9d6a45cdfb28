// Where the static __shared__ variables of the running program lie, so that the executor
// can poison them at the start of every block (docs/simt.md, "Shared memory").
//
// Under SIMT `__shared__` is `thread_local __attribute__((abi_tag("latent_shared")))`: the
// tag changes nothing but the mangled name, which then ends in `B13latent_shared`. The
// executable's symbol table (read once, from /proc/self/exe) lists every such variable with
// its offset in the thread-local segment; an anchor variable of known name gives the
// segment's address in the calling OS thread.
#pragma once

#include <cstddef>
#include <vector>

namespace latent::simt::detail {

struct StaticSharedRange {
  std::byte* begin;
  std::size_t bytes;
};

// The static shared variables of the program in the calling OS thread, merged into
// disjoint ranges; empty when the executable has no symbol table (stripped) or the kernels
// live in a shared library.
std::vector<StaticSharedRange> static_shared_ranges_for_this_thread();

}  // namespace latent::simt::detail
