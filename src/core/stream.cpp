// latent::Stream, StreamGuard, Event, and the device-side check and counter entry points:
// thin handles over the device table (src/backends/device.h) of each device type.
#include "latent/stream.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "backends/device.h"
#include "backends/registry.h"

namespace latent {
namespace {

// The current stream of each device type, per thread (nullptr: the default stream). The
// handle keeps an owned stream alive while it is current.
thread_local std::array<Stream, backend::kMaxDeviceTypes> current_streams = [] {
  std::array<Stream, backend::kMaxDeviceTypes> streams;
  for (std::size_t i = 0; i < streams.size(); ++i)
    streams[i] = Stream(Device{static_cast<DeviceType>(i), 0});
  return streams;
}();

bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "0") != 0 && v[0] != '\0';
}

std::atomic<bool>& immediate_flag() {
  static std::atomic<bool> flag{env_on("LATENT_CHECK_EVERY_OP") || env_on("LATENT_CUDA_SYNC")};
  return flag;
}

}  // namespace

struct Stream::Owner {
  Owner(Device d, void* n) : device(d), native(n) {}
  ~Owner() { backend::device_table(device).stream_destroy(native); }
  Owner(const Owner&) = delete;
  Owner& operator=(const Owner&) = delete;
  Device device;
  void* native;
};

Stream::Stream(Device device) : device_(device) {}

Stream Stream::create(Device device) {
  Stream s(device);
  s.native_ = backend::device_table(device).stream_create();
  if (s.native_ != nullptr) s.owner_ = std::make_shared<Owner>(device, s.native_);
  return s;
}

Stream Stream::wrap(Device device, void* native_stream) {
  backend::device_table(device);  // a clear error when the device is not available
  Stream s(device);
  s.native_ = native_stream;
  return s;
}

void Stream::synchronize() const { backend::device_table(device_).stream_synchronize(native_); }

std::uint64_t Stream::launches() const {
  return backend::device_table(device_).stream_launches(native_);
}

Stream current_stream(Device device) {
  Stream s = current_streams[static_cast<std::size_t>(device.type)];
  return s.device() == device ? s : Stream(device);
}

void set_current_stream(const Stream& stream) {
  const auto slot = static_cast<std::size_t>(stream.device().type);
  LATENT_CHECK(slot < current_streams.size(), "set_current_stream: device type out of range");
  current_streams[slot] = stream;
}

StreamGuard::StreamGuard(const Stream& stream) : previous_(current_stream(stream.device())) {
  set_current_stream(stream);
}
StreamGuard::~StreamGuard() { set_current_stream(previous_); }

Event::Event(Device device) : device_(device) {
  native_ = backend::device_table(device).event_create();
}
Event::~Event() {
  try {
    backend::device_table(device_).event_destroy(native_);
  } catch (...) {
  }
}
void Event::record(const Stream& stream) {
  LATENT_CHECK(stream.device() == device_, "Event::record: an event of ", device_.str(),
               " cannot mark a stream of ", stream.device().str());
  backend::device_table(device_).event_record(native_, stream.native());
}
void Event::wait(const Stream& stream) const {
  LATENT_CHECK(stream.device() == device_, "Event::wait: an event of ", device_.str(),
               " cannot hold back a stream of ", stream.device().str());
  backend::device_table(device_).stream_wait_event(stream.native(), native_);
}
void Event::synchronize() const { backend::device_table(device_).event_synchronize(native_); }
bool Event::query() const { return backend::device_table(device_).event_query(native_); }

void synchronize(Device device) { current_stream(device).synchronize(); }

void check_errors(Device device) {
  if (!backend::Registry<backend::DeviceTable>::has(device.type)) return;
  backend::device_table(device).check_errors();
}

void set_immediate_checks(bool on) { immediate_flag().store(on); }
bool immediate_checks() { return immediate_flag().load(std::memory_order_relaxed); }

RuntimeCounters runtime_counters(Device device) {
  if (!backend::Registry<backend::DeviceTable>::has(device.type)) return {};
  return backend::device_table(device).counters();
}

RuntimeCounters operator-(const RuntimeCounters& a, const RuntimeCounters& b) {
  return {a.host_synchronizations - b.host_synchronizations,
          a.device_to_host_copies - b.device_to_host_copies,
          a.host_to_device_copies - b.host_to_device_copies,
          a.kernel_launches - b.kernel_launches};
}

namespace backend {
void* current_native_stream(DeviceType type) {
  return current_streams[static_cast<std::size_t>(type)].native();
}
}  // namespace backend

}  // namespace latent
