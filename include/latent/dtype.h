// Element types and devices: the two tags every tensor carries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace latent {

enum class DType : std::uint8_t { f32, f64, i32 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "float32", "float64", "int32"
bool is_floating(DType dtype);

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() { return DType::f32; }
template <>
constexpr DType dtype_of<double>() { return DType::f64; }
template <>
constexpr DType dtype_of<std::int32_t>() { return DType::i32; }

// cpu and cuda are built in; register_device_type adds more at run time (up to 8 in all).
enum class DeviceType : std::uint8_t { cpu, cuda };

// A new device type named `name` (or the existing one of that name). Its tables are
// registered by the caller (src/backends/registry.h); tests use it for a fake device.
DeviceType register_device_type(const std::string& name);
std::string device_type_name(DeviceType type);  // "cpu", "cuda", or the registered name

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;  // "cpu", "cuda:0", "<name>:<index>" for a registered type
  friend bool operator==(const Device& a, const Device& b) {
    return a.type == b.type && a.index == b.index;
  }
};

// Parses "cpu", "cuda", "cuda:N" (and "<name>", "<name>:N" for a registered device type).
// "auto" is resolved by the caller (see backend_available).
Device parse_device(std::string_view text);

// True when this device type's tables are registered (for cuda: compiled in and able to run
// here: a GPU is present, or the kernels run on the SIMT executor).
bool backend_available(DeviceType type);

// True when the backend runs its device code on the CPU (the cuda backend under the SIMT
// executor): correct but slow, so "auto" device selection skips it.
bool backend_is_simulated(DeviceType type);

}  // namespace latent
