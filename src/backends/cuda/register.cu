// Registers every concept table of the cuda device.
#include "backends/cuda/cuda.h"

namespace latent::cuda {

void register_device() {
  register_device_table();
  register_check();
  register_elementwise();
  register_reduce();
  register_conv();
  register_random();
  register_adam();
  register_gemm();
  register_vae();
  register_vq();
  register_fsq();
  register_layer_norm();
  register_cross_entropy();
  register_attention();
}

}  // namespace latent::cuda
