// The one dispatch mechanism of latent: every concept is a table of entry points, and every
// device registers its table for the concepts it implements.
//
//   struct FsqTable { void (*quantize)(...); ... };           // src/backends/fsq.h
//   backend::lookup<FsqTable>(z.device()).quantize(...);       // src/ops/fsq.cpp
//   backend::Registry<FsqTable>::add(DeviceType::cpu, {...});  // src/backends/cpu/fsq.cpp
//
// A table is a plain struct of function pointers with a `static constexpr const char*
// kConcept` naming it. Callers above the backends (src/ops, src/nn, src/models) never ask
// which device they are on: they look up the table of their tensors' device. The built-in
// devices (cpu, and cuda when it can run here) register all their tables on the first
// lookup (src/backends/registry.cpp); a test or an extension can register another device
// type at run time (register_device_type in latent/dtype.h) and its tables, and no caller
// changes. docs/architecture.md draws the whole path.
#pragma once

#include <array>
#include <cstddef>
#include <mutex>
#include <optional>

#include "latent/dtype.h"
#include "latent/error.h"

namespace latent::backend {

// Device types are small integers: cpu, cuda, then the ones registered at run time.
constexpr std::size_t kMaxDeviceTypes = 8;

// Registers cpu and (when it can run here) cuda, once; every lookup calls it first.
void register_builtin_devices();

// Throws the "device not available" error for a device that has no table of `concept`.
[[noreturn]] void fail_unregistered(Device device, const char* concept_name);

template <class Table>
class Registry {
 public:
  // Registers (or replaces) the table of one device type.
  static void add(DeviceType type, const Table& table) {
    std::lock_guard<std::mutex> lock(mutex());
    slots()[slot(type)] = table;
  }
  // Forgets a device type's table (tests that register a fake device clean up with it).
  static void remove(DeviceType type) {
    std::lock_guard<std::mutex> lock(mutex());
    slots()[slot(type)].reset();
  }
  static bool has(DeviceType type) {
    register_builtin_devices();
    return slots()[slot(type)].has_value();
  }
  // The table of `device`'s type, or a latent::Error naming the device and the concept.
  static const Table& get(Device device) {
    register_builtin_devices();
    const std::optional<Table>& entry = slots()[slot(device.type)];
    if (!entry) fail_unregistered(device, Table::kConcept);
    return *entry;
  }

 private:
  static std::size_t slot(DeviceType type) {
    const auto index = static_cast<std::size_t>(type);
    LATENT_CHECK(index < kMaxDeviceTypes, "device type ", index, " is out of range (at most ",
                 kMaxDeviceTypes, " device types)");
    return index;
  }
  static std::array<std::optional<Table>, kMaxDeviceTypes>& slots() {
    static std::array<std::optional<Table>, kMaxDeviceTypes> tables;
    return tables;
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
};

// The table of a concept for a device: the one lookup every op makes.
template <class Table>
const Table& lookup(Device device) {
  return Registry<Table>::get(device);
}

}  // namespace latent::backend
