// From a runtime dtype to a C++ element type, and typed raw pointers: the two things every
// backend file does before it can loop or launch. One definition for cpu and cuda alike.
//
//   backend::dispatch_floating(x.dtype(), "sum", [&](auto zero) {
//     using T = decltype(zero);
//     T* data = backend::ptr<T>(x);
//     ...
//   });
#pragma once

#include <cstdint>

#include "latent/error.h"
#include "latent/tensor.h"

namespace latent::backend {

// Calls f(T{}) with T = float or double; any other dtype is an error naming `what`.
template <class F>
void dispatch_floating(DType dtype, const char* what, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    default: LATENT_FAIL(what, ": expected float32 or float64, got ", dtype_name(dtype));
  }
}

// Calls f(T{}) with T = float, double or std::int32_t.
template <class F>
void dispatch_all(DType dtype, F&& f) {
  switch (dtype) {
    case DType::f32: f(float{}); return;
    case DType::f64: f(double{}); return;
    case DType::i32: f(std::int32_t{}); return;
  }
}

// The tensor's first element as T* (no dtype check: call inside a dispatch), or nullptr for
// an undefined tensor (optional outputs).
template <class T>
T* ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.data_ptr()) : nullptr;
}

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace latent::backend
