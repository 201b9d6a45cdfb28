// Devices as a whole (the kernels one by one are in tests/<kernel>_test.cpp): mixing devices
// in one op is a clear error, a few training steps on cuda follow the cpu run, and the cuda
// backend's caching allocator (src/backends/cuda/caching_allocator.h) reuses blocks by size.
//
// `cuda` is the GPU when the library was built with nvcc and one is present; in the default
// build it is the SIMT executor, which runs the same kernels on the CPU.
#include <gtest/gtest.h>

#include <vector>

#include "backends/cuda/caching_allocator.h"
#include "latent/latent.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using test::all_close;

class Devices : public test::OpTest {};

TEST_F(Devices, MixingDevicesIsAClearError) {
  LATENT_SKIP_WITHOUT_CUDA();
  const Device cuda = test::cuda_device();
  Generator gen(2024);
  const Tensor a = uniform({3}, -2, 2, gen), b = uniform({3}, -2, 2, gen).to(cuda);
  EXPECT_LATENT_ERROR(add(a, b), "add", "different devices", "cpu", "cuda:0");
  EXPECT_LATENT_ERROR(matmul(uniform({2, 3}, -2, 2, gen), uniform({3, 2}, -2, 2, gen).to(cuda)),
                      "matmul", "devices");
  EXPECT_LATENT_ERROR(Tensor(uniform({2}, -2, 2, gen)).to(Device::cuda(3)), "cuda:3");
}

TEST_F(Devices, TrainingStepsOnCudaFollowTheCpuRun) {
  LATENT_SKIP_WITHOUT_CUDA();
  models::ConvNetConfig config;
  config.hidden_channels = 4;
  config.latent_channels = 2;
  auto losses_on = [&](Device device) {
    Generator init(5);
    models::Autoencoder model(config, init);
    model.to(device);
    optim::AdamW optimizer(model.parameters(), 5e-3);
    Generator data(6);
    const Tensor images = rand({8, 1, 28, 28}, data).to(device);
    std::vector<double> losses;
    for (int step = 0; step < 5; ++step) {
      const Tensor loss = mse_loss(sigmoid(model.forward(images)), images);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      losses.push_back(loss.item());
    }
    return losses;
  };
  const std::vector<double> cpu_losses = losses_on(Device::cpu());
  const std::vector<double> cuda_losses = losses_on(test::cuda_device());
  EXPECT_LT(cuda_losses.back(), cuda_losses.front());
  EXPECT_TRUE(all_close(cuda_losses, cpu_losses, 1e-4, 1e-6));
}

TEST(CachingAllocator, ReusesFreedBlocksBySize) {
  LATENT_SKIP_WITHOUT_CUDA();
  cuda::CachingAllocator allocator;
  void* a = allocator.allocate(1000);
  allocator.deallocate(a);
  void* b = allocator.allocate(900);  // same 1024-byte class
  EXPECT_EQ(a, b);
  void* c = allocator.allocate(5000);
  EXPECT_NE(c, b);
  const auto stats = allocator.stats();
  EXPECT_EQ(stats.device_allocations, 2u);
  EXPECT_EQ(stats.reuses, 1u);
  EXPECT_EQ(stats.in_use_bytes, 1024u + 5120u);
  allocator.deallocate(b);
  allocator.deallocate(c);
  allocator.release_cache();
  EXPECT_EQ(allocator.stats().cached_bytes, 0u);
  EXPECT_EQ(cuda::CachingAllocator::round_size(1), 512u);
  EXPECT_EQ(cuda::CachingAllocator::round_size(3u << 20), 4u << 20);
}

}  // namespace
}  // namespace latent
