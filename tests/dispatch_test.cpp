// The dispatch mechanism (src/backends/registry.h): a third device type, registered at run
// time with tables for a few concepts, serves the public ops unchanged; a concept it did not
// register is a clear error naming the device and the concept.
#include <gtest/gtest.h>

#include <vector>

#include "backends/adam.h"
#include "backends/check.h"
#include "backends/conv.h"
#include "backends/device.h"
#include "backends/elementwise.h"
#include "backends/fsq.h"
#include "backends/gemm.h"
#include "backends/random.h"
#include "backends/reduce.h"
#include "backends/registry.h"
#include "backends/vae.h"
#include "backends/vq.h"
#include "latent/latent.h"
#include "test_util.h"

namespace latent {
namespace {

// A "fake" device: host memory and the cpu's loops, plus a call counter on FSQ, so the test
// can tell that fsq_quantize reached it through the registry.
struct FakeDevice {
  static inline int quantize_calls = 0;
  static inline int indices_to_codes_calls = 0;
  DeviceType type;

  FakeDevice() : type(register_device_type("fake")) {
    using namespace backend;
    const Device cpu = Device::cpu();
    DeviceTable device = lookup<DeviceTable>(cpu);
    device.name = [] { return "fake"; };
    Registry<DeviceTable>::add(type, device);
    Registry<ElementwiseTable>::add(type, lookup<ElementwiseTable>(cpu));
    Registry<CheckTable>::add(type, lookup<CheckTable>(cpu));
    FsqTable fsq = lookup<FsqTable>(cpu);
    fsq.quantize = [](const Tensor& z, const Tensor& codes, const Tensor& indices,
                      const std::vector<std::int64_t>& levels, const FsqOptions& options,
                      const CheckMessage& nan_message) {
      ++quantize_calls;
      lookup<FsqTable>(Device::cpu()).quantize(z, codes, indices, levels, options, nan_message);
    };
    fsq.indices_to_codes = [](const Tensor& indices, const Tensor& codes,
                              const std::vector<std::int64_t>& levels,
                              const FsqOptions& options) {
      ++indices_to_codes_calls;
      lookup<FsqTable>(Device::cpu()).indices_to_codes(indices, codes, levels, options);
    };
    Registry<FsqTable>::add(type, fsq);
  }
  ~FakeDevice() {
    using namespace backend;
    Registry<FsqTable>::remove(type);
    Registry<CheckTable>::remove(type);
    Registry<ElementwiseTable>::remove(type);
    Registry<DeviceTable>::remove(type);
  }
  Device device() const { return Device{type, 0}; }
};

TEST(Dispatch, AFakeDeviceServesFsqThroughTheUnchangedOp) {
  FakeDevice fake;
  const Device device = fake.device();
  EXPECT_EQ(device.str(), "fake:0");
  EXPECT_EQ(parse_device("fake:0"), device);
  EXPECT_TRUE(backend_available(fake.type));

  Generator gen(11);
  const std::vector<std::int64_t> levels = {8, 5, 5, 5};
  const Tensor z = randn({33, 4}, gen, DType::f32);
  const FsqOutput on_cpu = fsq_quantize(z, levels);

  const int before = FakeDevice::quantize_calls;
  const FsqOutput on_fake = fsq_quantize(z.to(device), levels);
  EXPECT_EQ(FakeDevice::quantize_calls, before + 1);
  EXPECT_EQ(on_fake.codes.device(), device);
  EXPECT_EQ(on_fake.indices.device(), device);
  EXPECT_EQ(on_fake.codes.to(Device::cpu()).to_vector<float>(), on_cpu.codes.to_vector<float>());
  EXPECT_EQ(on_fake.indices.to(Device::cpu()).to_vector<std::int32_t>(),
            on_cpu.indices.to_vector<std::int32_t>());

  // The op's own checks run through the fake device's check table.
  const int decodes = FakeDevice::indices_to_codes_calls;
  const Tensor codes = fsq_indices_to_codes(on_fake.indices, levels);
  EXPECT_EQ(FakeDevice::indices_to_codes_calls, decodes + 1);
  EXPECT_EQ(codes.to(Device::cpu()).to_vector<float>(), on_cpu.codes.to_vector<float>());
  EXPECT_LATENT_ERROR(
      fsq_indices_to_codes(from_vector<std::int32_t>({0, 1000}, {2}).to(device), levels),
      "fsq_indices_to_codes", "index 1000 at position 1", "[0, 1000)");
}

TEST(Dispatch, AConceptTheDeviceLacksIsAClearError) {
  FakeDevice fake;
  const Device device = fake.device();
  Generator gen(12);
  const Tensor z = rand({4, 3}, gen).to(device);
  // No gemm, reduce, vq or random table was registered for the fake device.
  EXPECT_LATENT_ERROR(matmul(z, z.t()), "fake:0", "gemm");
  EXPECT_LATENT_ERROR(sum(z), "fake:0", "reduce");
  EXPECT_LATENT_ERROR(vq_argmin(z, z), "fake:0", "vq");
  EXPECT_LATENT_ERROR(randn({2}, gen, DType::f32, device), "fake:0", "random");
}

TEST(Dispatch, RemovedDeviceTablesAreGone) {
  DeviceType type;
  {
    FakeDevice fake;
    type = fake.type;
    EXPECT_TRUE(backend_available(type));
  }
  EXPECT_FALSE(backend_available(type));
  EXPECT_LATENT_ERROR(empty({2}, DType::f32, Device{type, 0}), "fake:0", "device");
}

TEST(Dispatch, EveryBuiltInDeviceRegistersEveryConcept) {
  std::vector<Device> devices = {Device::cpu()};
  if (backend_available(DeviceType::cuda)) devices.push_back(Device::cuda(0));
  for (const Device d : devices) {
    SCOPED_TRACE(d.str());
    using namespace backend;
    EXPECT_TRUE(Registry<DeviceTable>::has(d.type));
    EXPECT_TRUE(Registry<CheckTable>::has(d.type));
    EXPECT_TRUE(Registry<ElementwiseTable>::has(d.type));
    EXPECT_TRUE(Registry<ReduceTable>::has(d.type));
    EXPECT_TRUE(Registry<ConvTable>::has(d.type));
    EXPECT_TRUE(Registry<RandomTable>::has(d.type));
    EXPECT_TRUE(Registry<AdamTable>::has(d.type));
    EXPECT_TRUE(Registry<GemmTable>::has(d.type));
    EXPECT_TRUE(Registry<VaeTable>::has(d.type));
    EXPECT_TRUE(Registry<VqTable>::has(d.type));
    EXPECT_TRUE(Registry<FsqTable>::has(d.type));
  }
}

}  // namespace
}  // namespace latent
