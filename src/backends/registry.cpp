// The built-in devices, registered on the first table lookup, and the device-type names.
#include "backends/registry.h"

#include <array>
#include <string>

#include "backends/cpu/cpu.h"
#include "backends/cuda/cuda.h"
#include "backends/device.h"

namespace latent::backend {
namespace {

struct DeviceTypeNames {
  std::mutex mutex;
  std::array<std::string, kMaxDeviceTypes> names{"cpu", "cuda"};
  std::size_t count = 2;
};
DeviceTypeNames& type_names() {
  static DeviceTypeNames* names = new DeviceTypeNames;  // never destroyed: used at exit
  return *names;
}

}  // namespace

void register_builtin_devices() {
  static std::once_flag once;
  std::call_once(once, [] {
    cpu::register_device();
    // The cuda device registers only where it can run: a GPU, or the SIMT build.
    if (cuda::can_run()) cuda::register_device();
  });
}

void fail_unregistered(Device device, const char* concept_name) {
  if (device.is_cuda()) {
    LATENT_FAIL("device ", device.str(),
                " is not available: this build of latent uses CUDA but no GPU was found");
  }
  LATENT_FAIL("device ", device.str(), " has no '", concept_name, "' table registered");
}

const DeviceTable& device_table(Device device) {
  if (device.is_cuda()) {
    LATENT_CHECK(device.index == 0, "device ", device.str(),
                 ": latent drives one GPU, cuda:0, in this version");
  }
  return lookup<DeviceTable>(device);
}

void set_poison_allocations(Device device, bool poison) {
  device_table(device).set_poison_allocations(poison);
}


}  // namespace latent::backend

namespace latent {

DeviceType register_device_type(const std::string& name) {
  auto& names = backend::type_names();
  std::lock_guard<std::mutex> lock(names.mutex);
  for (std::size_t i = 0; i < names.count; ++i)
    if (names.names[i] == name) return static_cast<DeviceType>(i);
  LATENT_CHECK(names.count < backend::kMaxDeviceTypes, "register_device_type: at most ",
               backend::kMaxDeviceTypes, " device types");
  names.names[names.count] = name;
  return static_cast<DeviceType>(names.count++);
}

std::string device_type_name(DeviceType type) {
  auto& names = backend::type_names();
  std::lock_guard<std::mutex> lock(names.mutex);
  const auto index = static_cast<std::size_t>(type);
  return index < names.count ? names.names[index] : "device" + std::to_string(index);
}

bool backend_available(DeviceType type) {
  return backend::Registry<backend::DeviceTable>::has(type);
}

bool backend_is_simulated(DeviceType type) {
  if (!backend_available(type)) return false;
  return backend::lookup<backend::DeviceTable>(Device{type, 0}).simulated();
}

}  // namespace latent
