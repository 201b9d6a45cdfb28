// One set of float/double math overloads for code that runs on the host and on the device
// (the cpu loops, the SIMT executor and nvcc all call these). Each is the C library's
// function of the argument's precision (expf for float, exp for double), so the cpu
// backend and the kernels round alike wherever the library does.
#pragma once

#include <cmath>

#include "kernels/host_device.cuh"

namespace latent::kernels {

// c + a·b rounded twice (the product, then the sum), as the cpu backend computes it: where cpu
// and cuda promise the same bits (random_uniform's low + scale·u, arange's start + step·i),
// nvcc must not contract the two into one FMA, so the device side spells out the roundings.
LATENT_HOST_DEVICE LATENT_FORCEINLINE double add_product_rn(double c, double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(c, __dmul_rn(a, b));
#else
  return c + a * b;
#endif
}

LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_exp(float x) { return ::expf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_exp(double x) { return ::exp(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_log(float x) { return ::logf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_log(double x) { return ::log(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_sqrt(float x) { return ::sqrtf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_sqrt(double x) { return ::sqrt(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_tanh(float x) { return ::tanhf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_tanh(double x) { return ::tanh(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_pow(float x, float p) { return ::powf(x, p); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_pow(double x, double p) { return ::pow(x, p); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_erfc(float x) { return ::erfcf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_erfc(double x) { return ::erfc(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_expm1(float x) { return ::expm1f(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_expm1(double x) { return ::expm1(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_rint(float x) { return ::rintf(x); }  // half to even
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_rint(double x) { return ::rint(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_floor(float x) { return ::floorf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_floor(double x) { return ::floor(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_fma(float a, float b, float c) { return ::fmaf(a, b, c); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_fma(double a, double b, double c) { return ::fma(a, b, c); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE float math_abs(float x) { return ::fabsf(x); }
LATENT_HOST_DEVICE LATENT_FORCEINLINE double math_abs(double x) { return ::fabs(x); }

}  // namespace latent::kernels
