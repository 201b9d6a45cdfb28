// The device concept: memory, copies, streams, events and the device-side check word of one
// device type. Every other concept table computes; this one is what Storage, Tensor::to,
// latent::Stream and latent::Event are built on.
//
// Streams and events are opaque `void*` (a cudaStream_t / cudaEvent_t on cuda, nullptr on
// cpu, where everything runs in order on the calling thread); nullptr is the device's
// default stream. Memory and copies run on the calling thread's current stream of the device
// (latent::current_stream), so a program that made its own stream current gets every
// allocation, copy and launch on it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "latent/stream.h"

namespace latent::backend {

struct DeviceTable {
  static constexpr const char* kConcept = "device";

  const char* (*name)();   // "cpu", "cuda", "cuda (SIMT)"
  bool (*simulated)();     // true when device code runs on the host (the SIMT executor)

  // ---- memory, on the current stream
  void* (*allocate)(std::size_t nbytes);
  void (*deallocate)(void* ptr) noexcept;
  // Waits for the current stream, then copies to the host (a host synchronization).
  void (*copy_to_host)(void* host_dst, const void* src, std::size_t nbytes);
  // Enqueues a copy from host memory; the host buffer may be reused when it returns.
  void (*copy_from_host)(void* dst, const void* host_src, std::size_t nbytes);
  // Tests: fill every new allocation with 0xFF bytes (NaN as float, -1 as int32), so an
  // output a primitive forgot to write cannot pass for a correct one.
  void (*set_poison_allocations)(bool poison);

  // ---- streams and events
  void* (*stream_create)();
  void (*stream_destroy)(void* stream) noexcept;
  void (*stream_synchronize)(void* stream);
  void* (*event_create)();
  void (*event_destroy)(void* event) noexcept;
  void (*event_record)(void* event, void* stream);
  void (*stream_wait_event)(void* stream, void* event);
  void (*event_synchronize)(void* event);
  bool (*event_query)(void* event);  // true when the work before the record has finished

  // ---- device-side checks and counters
  // Reads the current stream's check word (one host synchronization when checks are
  // pending, none otherwise) and throws the first failed check's message.
  void (*check_errors)();
  RuntimeCounters (*counters)();
  std::uint64_t (*stream_launches)(void* stream);
};

// The device table of `device` (a clear error when the device is not available).
const DeviceTable& device_table(Device device);

// Tests: poison (NaN-fill) every new allocation on the device (see DeviceTable).
void set_poison_allocations(Device device, bool poison);

}  // namespace latent::backend

namespace latent::backend {
// The calling thread's current stream of a device type, as the device's native handle
// (src/core/stream.cpp); what every cuda launch, copy and allocation goes to.
void* current_native_stream(DeviceType type);
}  // namespace latent::backend
