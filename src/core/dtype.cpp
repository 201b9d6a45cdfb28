#include "latent/dtype.h"

#include <charconv>

#include "latent/error.h"

namespace latent {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
  }
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
  }
  return "?";
}

bool is_floating(DType dtype) { return dtype == DType::f32 || dtype == DType::f64; }

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : device_type_name(type) + ":" + std::to_string(index);
}

Device parse_device(std::string_view text) {
  if (text == "cpu") return Device::cpu();
  const auto colon = text.find(':');
  const std::string name(text.substr(0, colon));
  int index = 0;
  if (colon != std::string_view::npos) {
    index = -1;
    const auto digits = text.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec != std::errc() || end != digits.data() + digits.size()) index = -1;
  }
  for (int t = 1; t < 8 && index >= 0; ++t) {
    const auto type = static_cast<DeviceType>(t);
    if (device_type_name(type) == name) return Device{type, index};
  }
  LATENT_FAIL("unknown device '", text, "': expected cpu, cuda or cuda:N");
}

}  // namespace latent
