// Streams, events, synchronization and device-side checks: how latent's work is ordered on a
// device, and how a program that runs its own CUDA work shares a device with latent.
//
// Every kernel launch, cuBLAS call, copy and allocation goes to the calling thread's current
// stream of the device (the device's default stream unless a StreamGuard says otherwise):
//
//   latent::Stream side = latent::Stream::create(latent::Device::cuda());
//   {
//     latent::StreamGuard guard(side);          // this thread's cuda work now goes to `side`
//     latent::Tensor y = latent::relu(x);       // launched on side
//   }                                           // back to the previous stream
//
//   cudaStream_t mine = ...;                    // a program's own stream
//   latent::StreamGuard guard(latent::Stream::wrap(latent::Device::cuda(), mine));
//
// A plain C++ header: streams are opaque (`void*` is a cudaStream_t on cuda). On cpu every
// stream is the same in-order queue. Under the SIMT executor streams are real, ordered queues
// that run each piece of work as it is enqueued.
//
// Value checks (NaN/Inf inputs, indices out of range) are raised on the device into one
// check word per stream, and read when the host next waits for the stream: at
// check_errors() (once per training step), at any read of device data (Tensor::item,
// to_vector, to(cpu)), or after every op when immediate checks are on. The message names
// the op, the argument, the position and the value, as an immediate check would.
#pragma once

#include <cstdint>
#include <memory>

#include "latent/dtype.h"

namespace latent {

class Stream {
 public:
  // The default stream of `device`.
  explicit Stream(Device device = Device::cuda());
  // A new stream owned by latent, destroyed with its last handle (after its work is done).
  static Stream create(Device device = Device::cuda());
  // A stream the caller owns (a cudaStream_t as void*); latent never destroys it.
  static Stream wrap(Device device, void* native_stream);

  Device device() const { return device_; }
  void* native() const { return native_; }  // nullptr: the default stream
  bool is_default() const { return native_ == nullptr; }
  void synchronize() const;                 // waits until the stream's work is done
  std::uint64_t launches() const;           // kernels launched on it so far (cuda)

  friend bool operator==(const Stream& a, const Stream& b) {
    return a.device_ == b.device_ && a.native_ == b.native_;
  }

 private:
  struct Owner;
  Device device_;
  void* native_ = nullptr;
  std::shared_ptr<Owner> owner_;  // set for streams made by create()
};

// The calling thread's current stream of `device`, and setting it.
Stream current_stream(Device device = Device::cuda());
void set_current_stream(const Stream& stream);

// Makes `stream` current on this thread for its device until the guard ends (as libtorch's
// CUDAStreamGuard), then restores the previous one.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
};

// A marker in a stream: later work on another stream can wait for it without the host
// waiting (cudaEvent_t on cuda).
class Event {
 public:
  explicit Event(Device device = Device::cuda());
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(const Stream& stream);     // marks the work enqueued on `stream` so far
  void record() { record(current_stream(device_)); }
  void wait(const Stream& stream) const;  // work enqueued on `stream` after this waits
  void wait() const { wait(current_stream(device_)); }
  void synchronize() const;               // the host waits
  bool query() const;                     // true when the marked work has finished

 private:
  Device device_;
  void* native_ = nullptr;
};

// Waits for the current stream of `device`.
void synchronize(Device device = Device::cuda());

// Reads the current stream's check word (one host synchronization, and only when checks are
// pending) and throws the first failed check as latent::Error. A no-op on cpu, where checks
// throw at once.
void check_errors(Device device = Device::cuda());

// Immediate checks: every op waits for its own checks (a debugging mode; slow on a GPU).
// Also on when LATENT_CHECK_EVERY_OP=1 or LATENT_CUDA_SYNC=1 is in the environment.
void set_immediate_checks(bool on);
bool immediate_checks();

// What the host asked of a device since the program started: how often it waited for the
// device (a copy to the host, a synchronize, a check), how many copies each way, how many
// kernel launches. Counted on a GPU and under the SIMT executor alike; all zero on cpu.
struct RuntimeCounters {
  std::uint64_t host_synchronizations = 0;
  std::uint64_t device_to_host_copies = 0;
  std::uint64_t host_to_device_copies = 0;
  std::uint64_t kernel_launches = 0;
};
RuntimeCounters runtime_counters(Device device = Device::cuda());
RuntimeCounters operator-(const RuntimeCounters& a, const RuntimeCounters& b);

}  // namespace latent
