// The check concept: value checks (non-finite input, indices out of range) that a kernel
// raises on the device, so the host never waits for the answer on the hot path.
//
// On cpu a failed check throws at once. On cuda a check kernel records the first failing
// element (the lowest check, then the lowest position) in the current stream's check word,
// and the host reads that word once per training step (latent::check_errors), at every read
// of device data (Tensor::item, to_vector), and after every op when immediate checks are on
// (latent::set_immediate_checks or LATENT_CHECK_EVERY_OP=1). The message is formatted only
// when the check failed, from the position the kernel recorded: it names the op, the
// argument, its shape, the position and the value, exactly as an immediate check would.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "latent/tensor.h"

namespace latent::backend {

// The message of a failed check, given the position of the first failing element.
using CheckMessage = std::function<std::string(std::int64_t position)>;

struct CheckTable {
  static constexpr const char* kConcept = "check";
  // Fails at the first non-finite element of x (contiguous, floating).
  void (*finite)(const Tensor& x, CheckMessage message);
  // Fails at the first element of `indices` (contiguous int32) outside [low, high).
  void (*index_range)(const Tensor& indices, std::int64_t low, std::int64_t high,
                      CheckMessage message);
};

// The element at flat position `position` of a contiguous tensor, read to the host (used by
// messages, on the failure path only).
double element_at(const Tensor& t, std::int64_t position);

}  // namespace latent::backend
