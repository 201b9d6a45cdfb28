// The fuzz build leaves out the cuda backend and the SIMT executor (src/backends/cuda,
// src/simt): the readers make cpu tensors only, and the executor's fibers would need
// sanitizer annotations. These two definitions are all the rest of the library asks of them
// (src/backends/registry.cpp): no cuda device is registered.
namespace latent::cuda {
bool can_run() { return false; }
void register_device() {}
}  // namespace latent::cuda
