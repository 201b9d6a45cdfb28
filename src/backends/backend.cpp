#include "backends/backend.h"


namespace latent::backend {

Backend& get(Device device) {
  if (device.is_cpu()) return cpu();
  LATENT_CHECK(device.index == 0, "device ", device.str(),
               ": latent drives one GPU, cuda:0, in this version");
  Backend* b = cuda_if_available();
  LATENT_CHECK(b != nullptr, "device ", device.str(),
               " is not available: this build of latent uses CUDA but no GPU was found");
  return *b;
}

const char* unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::abs: return "abs";
    case UnaryOp::square: return "square";
    case UnaryOp::relu: return "relu";
    case UnaryOp::leaky_relu: return "leaky_relu";
    case UnaryOp::silu: return "silu";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::pow: return "pow";
    case UnaryOp::add_scalar: return "add_scalar";
    case UnaryOp::mul_scalar: return "mul_scalar";
    case UnaryOp::rsub_scalar: return "rsub_scalar";
    case UnaryOp::clamp: return "clamp";
  }
  return "?";
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
  }
  return "?";
}

}  // namespace latent::backend

namespace latent {
bool backend_available(DeviceType type) {
  if (type == DeviceType::cpu) return true;
  try {
    backend::get(Device{type, 0});
    return true;
  } catch (const Error&) {
    return false;
  }
}
bool backend_is_simulated(DeviceType type) {
  if (type == DeviceType::cpu || !backend_available(type)) return false;
  return backend::get(Device{type, 0}).simulated();
}
}  // namespace latent
