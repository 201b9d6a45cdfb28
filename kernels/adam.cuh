// The fused Adam / AdamW step: one pass over a parameter and its three state tensors.
// Docs: the formulas of torch.optim.Adam / AdamW, restated in src/optim/adam.cpp.
//
// Per element, at update t of the parameter:
//   AdamW: p ← p·(1 − lr·λ)            Adam: g ← g + λ·p
//   m ← β1·m + (1 − β1)·g
//   v ← β2·v + (1 − β2)·g²
//   p ← p − step_size · m / (√v / bias2 + ε),  step_size = lr / (1 − β1^t), bias2 = √(1 − β2^t)
// The unfused composition runs ~10 elementwise kernels with temporaries; fused, each element
// is read once (p, g, m, v: 16 bytes in float32) and written once (p, m, v: 12 bytes), ~15
// FLOPs: memory-bound at 28 bytes per element.
#pragma once

#include <cstdint>

#include "kernels/adam_constants.h"
#include "kernels/device.cuh"
#include "kernels/grid.cuh"

namespace latent::kernels {

template <class T>
LATENT_HOST_DEVICE inline void adam_element(const AdamConstants& c, T& p, T g, T& m, T& v) {
  if (c.decoupled) {
    p = p * static_cast<T>(1.0 - c.lr * c.weight_decay);
  } else if (c.weight_decay != 0.0) {
    g = g + static_cast<T>(c.weight_decay) * p;
  }
  m = static_cast<T>(c.beta1) * m + static_cast<T>(1.0 - c.beta1) * g;
  v = static_cast<T>(c.beta2) * v + static_cast<T>(1.0 - c.beta2) * g * g;
  const T denom = sqrt(v) / static_cast<T>(c.bias2_sqrt) + static_cast<T>(c.eps);
  p = p - static_cast<T>(c.step_size) * m / denom;
}

template <class T>
__global__ void adam_step_kernel(AdamConstants c, T* param, const T* grad, T* exp_avg,
                                 T* exp_avg_sq, std::int64_t n) {
  for (std::int64_t i = grid_stride_begin(); i < n;
       i += grid_stride_step()) {
    T p = param[i], m = exp_avg[i], v = exp_avg_sq[i];
    adam_element(c, p, grad[i], m, v);
    param[i] = p;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
  }
}

}  // namespace latent::kernels
