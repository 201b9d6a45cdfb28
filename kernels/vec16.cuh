// Vec16<T>: 16 bytes of T as one vector type (float4 for float, double2 for double), so a
// memory-bound kernel moves each 16 bytes with one load or store instruction; Pack<T> sees the
// same 16 bytes as lanes. Shared by the elementwise and FSQ kernels.
#pragma once

#include "kernels/device.cuh"

namespace latent::kernels {

// 16 bytes of T: float4 for float, double2 for double.
template <class T>
struct Vec16;
template <>
struct Vec16<float> {
  using type = float4;
  static constexpr int width = 4;
};
template <>
struct Vec16<double> {
  using type = double2;
  static constexpr int width = 2;
};

template <class T>
union Pack {
  typename Vec16<T>::type vector;
  T lane[Vec16<T>::width];
};

}  // namespace latent::kernels
