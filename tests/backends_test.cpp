// Every op on the cuda backend against the cpu backend, on fresh random inputs.
//
// `cuda` is the GPU when the library was built with nvcc and one is present; in the default
// build it is the SIMT executor, which runs the same kernels on the CPU — so every kernel
// runs in CI. Outputs are poisoned (every new allocation is filled with NaN bytes) while
// these tests run, so an element a kernel forgets to write fails the comparison.
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "backends/device.h"
#include "backends/registry.h"
#include "backends/cuda/caching_allocator.h"
#include "latent/latent.h"
#include "test_util.h"

namespace latent {
namespace {

using test::all_close;
using test::identical;
using test::values_of;

class Backends : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!backend_available(DeviceType::cuda)) {
      GTEST_SKIP() << "this build uses nvcc and no GPU is present: the cuda tests need a GPU "
                      "here (the default SIMT build runs them on the CPU)";
    }
    backend::set_poison_allocations(cuda, true);
    backend::set_poison_allocations(Device::cpu(), true);
  }
  void TearDown() override {
    if (backend_available(DeviceType::cuda)) backend::set_poison_allocations(cuda, false);
    backend::set_poison_allocations(Device::cpu(), false);
  }

  // Runs f on cpu and on cuda with the same inputs; compares every output and the gradient
  // of sum(output · w) with respect to every floating input.
  using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
  void compare(const std::string& what, const Fn& f, const std::vector<Tensor>& inputs,
               double rtol, double atol, bool gradients = true) {
    SCOPED_TRACE(what);
    auto run_on = [&](Device device, std::vector<Tensor>& grads) {
      std::vector<Tensor> leaves;
      for (const Tensor& t : inputs) {
        Tensor leaf = t.to(device).clone().detach();
        if (gradients && is_floating(t.dtype())) leaf.requires_grad_();
        leaves.push_back(leaf);
      }
      std::vector<Tensor> outputs = f(leaves);
      if (gradients) {
        Tensor loss;
        Generator wgen(77);
        for (const Tensor& out : outputs) {
          if (!out.requires_grad()) continue;
          const Tensor w = randn(out.shape(), wgen, out.dtype()).to(device);
          const Tensor term = sum(mul(out, w));
          loss = loss.defined() ? add(loss, term) : term;
        }
        if (loss.defined()) loss.backward();
        for (const Tensor& leaf : leaves) grads.push_back(leaf.grad());
      }
      std::vector<Tensor> host;
      for (const Tensor& out : outputs) host.push_back(out.detach().to(Device::cpu()));
      return host;
    };
    std::vector<Tensor> cpu_grads, cuda_grads;
    const std::vector<Tensor> expected = run_on(Device::cpu(), cpu_grads);
    const std::vector<Tensor> actual = run_on(cuda, cuda_grads);
    ASSERT_EQ(expected.size(), actual.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(actual[i].shape(), expected[i].shape()) << "output " << i;
      ASSERT_EQ(actual[i].device(), Device::cpu());
      EXPECT_TRUE(all_close(actual[i], values_of(expected[i]), rtol, atol)) << "output " << i;
    }
    for (std::size_t i = 0; i < cpu_grads.size(); ++i) {
      ASSERT_EQ(cpu_grads[i].defined(), cuda_grads[i].defined()) << "gradient " << i;
      if (!cpu_grads[i].defined()) continue;
      EXPECT_EQ(cuda_grads[i].device(), cuda) << "gradient " << i;
      EXPECT_TRUE(all_close(cuda_grads[i], values_of(cpu_grads[i]), rtol, atol))
          << "gradient of input " << i;
    }
  }

  Tensor random(const Shape& shape, DType dtype = DType::f32, double low = -2, double high = 2) {
    return uniform(shape, low, high, gen_, dtype);
  }

  const Device cuda = Device::cuda(0);
  Generator gen_{2024};
};

const Shape kOddSizes[] = {{1}, {31}, {33}, {1000003}, {7, 9, 13}};

TEST_F(Backends, UnaryOpsAndTheirGradients) {
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    double low, high;
  };
  const std::vector<Case> cases = {
      {"neg", [](const Tensor& x) { return neg(x); }, -2, 2},
      {"exp", [](const Tensor& x) { return exp(x); }, -2, 2},
      {"log", [](const Tensor& x) { return log(x); }, 0.1, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, 0.1, 3},
      {"abs", [](const Tensor& x) { return abs(x); }, -2, 2},
      {"square", [](const Tensor& x) { return square(x); }, -2, 2},
      {"relu", [](const Tensor& x) { return relu(x); }, -2, 2},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }, -2, 2},
      {"silu", [](const Tensor& x) { return silu(x); }, -4, 4},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, -4, 4},
      {"tanh", [](const Tensor& x) { return tanh(x); }, -3, 3},
      {"pow", [](const Tensor& x) { return pow(x, 1.7); }, 0.1, 3},
      {"add_scalar", [](const Tensor& x) { return add(x, 0.5); }, -2, 2},
      {"mul_scalar", [](const Tensor& x) { return mul(x, -3.0); }, -2, 2},
      {"rsub", [](const Tensor& x) { return rsub(1.5, x); }, -2, 2},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }, -2, 2},
  };
  for (const Case& c : cases) {
    for (const Shape& shape : kOddSizes) {
      for (DType dtype : {DType::f32, DType::f64}) {
        // The million-element size checks the vectorized path and its tail; once is enough.
        if (dtype == DType::f64 && shape_numel(shape) > 100000) continue;
        const double tol = dtype == DType::f32 ? 2e-6 : 1e-13;
        compare(std::string(c.name) + " " + shape_str(shape) + " " + dtype_name(dtype),
                [&](const std::vector<Tensor>& in) { return std::vector<Tensor>{c.f(in[0])}; },
                {random(shape, dtype, c.low, c.high)}, tol, tol);
      }
    }
  }
}

TEST_F(Backends, BroadcastingBinaryOps) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{31, 33}, {31, 33}}, {{31, 33}, {33}},    {{2, 1, 5}, {3, 1}}, {{}, {7}},
      {{1000003}, {1000003}}, {{4, 1}, {1, 6}}, {{1}, {1}},
  };
  for (const auto& [sa, sb] : shapes) {
    for (int op = 0; op < 4; ++op) {
      const char* names[] = {"add", "sub", "mul", "div"};
      compare(std::string(names[op]) + " " + shape_str(sa) + " " + shape_str(sb),
              [op](const std::vector<Tensor>& in) {
                switch (op) {
                  case 0: return std::vector<Tensor>{add(in[0], in[1])};
                  case 1: return std::vector<Tensor>{sub(in[0], in[1])};
                  case 2: return std::vector<Tensor>{mul(in[0], in[1])};
                  default: return std::vector<Tensor>{div(in[0], in[1])};
                }
              },
              {random(sa), random(sb, DType::f32, 0.5, 2)}, 2e-6, 2e-6);
    }
  }
}

TEST_F(Backends, StridedAndMisalignedOperands) {
  // A transposed view, a narrowed view with an odd offset (not 16-byte aligned).
  compare("transposed + narrowed",
          [](const std::vector<Tensor>& in) {
            const Tensor a = in[0].transpose(0, 1);
            const Tensor b = in[1].narrow(1, 1, 33);
            return std::vector<Tensor>{mul(a, b), exp(in[1].narrow(0, 3, 10))};
          },
          {random({33, 31}), random({31, 35})}, 2e-6, 2e-6);
}

TEST_F(Backends, SumsOverEveryKindOfDimensionSet) {
  struct Case {
    Shape shape;
    std::vector<std::int64_t> dims;
    bool keepdim;
  };
  const std::vector<Case> cases = {
      {{1000003}, {}, false},        {{1}, {}, false},           {{31, 33}, {0}, false},
      {{31, 33}, {1}, true},         {{4096, 3}, {1}, false},    {{3, 100000}, {1}, false},
      {{5, 6, 7}, {0, 2}, true},     {{5, 6, 7}, {-1}, false},   {{2, 3, 4, 5}, {1, 3}, false},
      {{70000, 2}, {0}, false},
  };
  for (const Case& c : cases) {
    for (DType dtype : {DType::f32, DType::f64}) {
      const double tol = dtype == DType::f32 ? 2e-5 : 1e-12;
      compare("sum " + shape_str(c.shape) + " " + dtype_name(dtype),
              [&](const std::vector<Tensor>& in) {
                return std::vector<Tensor>{sum(in[0], c.dims, c.keepdim),
                                           mean(in[0], c.dims, c.keepdim)};
              },
              {random(c.shape, dtype)}, tol, tol);
    }
  }
}

TEST_F(Backends, SumIsBitwiseRepeatable) {
  const Tensor x = random({3, 1000003}).to(cuda);
  const Tensor first = sum(x, {1}).to(Device::cpu());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(identical(sum(x, {1}).to(Device::cpu()), first));
}

TEST_F(Backends, MatmulLinearAndTransposedViews) {
  compare("matmul 2-D", [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], in[1])}; },
          {random({33, 17}), random({17, 31})}, 1e-5, 1e-5);
  compare("matmul transposed views",
          [](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{matmul(in[0].t(), in[1].t())};
          },
          {random({17, 33}), random({31, 17})}, 1e-5, 1e-5);
  compare("matmul batched", [](const std::vector<Tensor>& in) { return std::vector<Tensor>{matmul(in[0], in[1])}; },
          {random({3, 5, 7}), random({3, 7, 4})}, 1e-5, 1e-5);
  compare("linear f64",
          [](const std::vector<Tensor>& in) { return std::vector<Tensor>{linear(in[0], in[1], in[2])}; },
          {random({9, 6}, DType::f64), random({4, 6}, DType::f64), random({4}, DType::f64)}, 1e-12,
          1e-12);
}

TEST_F(Backends, ConvolutionsAndTheirGradients) {
  struct Case {
    Shape x, w;
    Conv2dOptions options;
    bool transpose;
  };
  const std::vector<Case> cases = {
      {{2, 3, 9, 9}, {4, 3, 3, 3}, {1, 1, 0}, false},
      {{3, 1, 28, 28}, {8, 1, 4, 4}, {2, 1, 0}, false},
      {{2, 5, 7, 11}, {6, 5, 2, 3}, {3, 0, 0}, false},
      {{2, 8, 7, 7}, {8, 4, 4, 4}, {2, 1, 0}, true},
      {{1, 3, 5, 6}, {3, 2, 3, 3}, {2, 1, 1}, true},
  };
  for (const Case& c : cases) {
    const std::int64_t out_channels = c.transpose ? c.w[1] : c.w[0];
    compare(std::string(c.transpose ? "conv_transpose2d " : "conv2d ") + shape_str(c.x),
            [&](const std::vector<Tensor>& in) {
              return std::vector<Tensor>{c.transpose
                                             ? conv_transpose2d(in[0], in[1], in[2], c.options)
                                             : conv2d(in[0], in[1], in[2], c.options)};
            },
            {random(c.x), random(c.w), random({out_channels})}, 2e-5, 2e-5);
  }
}

TEST_F(Backends, ShapeOpsCopiesAndConversions) {
  compare("permute contiguous reshape concat narrow",
          [](const std::vector<Tensor>& in) {
            const Tensor p = in[0].permute({2, 0, 1}).contiguous();
            return std::vector<Tensor>{p, p.reshape({-1}), concat({in[0], in[0] * 2.0}, 1),
                                       in[0].narrow(2, 1, 3).clone()};
          },
          {random({4, 5, 6})}, 0, 0);
  compare("dtype conversions",
          [](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{in[0].to(DType::f64), in[0].to(DType::i32),
                                       in[0].to(DType::i32).to(DType::f32),
                                       in[0].t().to(DType::f64)};
          },
          {random({33, 31}, DType::f32, -50, 50)}, 0, 0, false);
  compare("losses",
          [](const std::vector<Tensor>& in) {
            return std::vector<Tensor>{mse_loss(in[0], in[1]),
                                       binary_cross_entropy_with_logits(in[0], in[1])};
          },
          {random({64, 1, 7, 7}), random({64, 1, 7, 7}, DType::f32, 0, 1)}, 1e-5, 1e-6);
}

TEST_F(Backends, CreationAndArgmax) {
  for (DType dtype : {DType::f32, DType::f64, DType::i32}) {
    EXPECT_TRUE(identical(full({1000003}, 3.0, dtype, cuda).to(Device::cpu()),
                          full({1000003}, 3.0, dtype)));
    EXPECT_TRUE(identical(arange(0, 1001, 2, dtype, cuda).to(Device::cpu()),
                          arange(0, 1001, 2, dtype)));
  }
  const Tensor x = random({257, 33});
  EXPECT_TRUE(identical(argmax(x.to(cuda), 1).to(Device::cpu()), argmax(x, 1)));
  EXPECT_TRUE(identical(argmax(x.to(cuda), 0).to(Device::cpu()), argmax(x, 0)));
  // Ties go to the lowest index.
  const Tensor ties = from_vector<float>({1, 5, 5, 2, 7, 7, 7, 0}, {2, 4});
  EXPECT_EQ(argmax(ties.to(cuda), 1).to(Device::cpu()).to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{1, 0}));
  // NaN is the maximum, as in torch.argmax; the first NaN wins.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const Tensor with_nan = from_vector<float>({1, 9, nan, nan, nan, 2, 3, 4}, {2, 4});
  for (Device device : {Device::cpu(), cuda}) {
    EXPECT_EQ(argmax(with_nan.to(device), 1).to(Device::cpu()).to_vector<std::int32_t>(),
              (std::vector<std::int32_t>{2, 0}))
        << device.str();
  }
}

TEST_F(Backends, RandomDrawsMatchTheCpuBackend) {
  for (DType dtype : {DType::f32, DType::f64}) {
    for (std::int64_t n : {1, 5, 1000003}) {
      Generator a(99), b(99);
      // Uniforms are exact arithmetic on the Philox words: bitwise equal everywhere.
      EXPECT_TRUE(identical(rand({n}, a, dtype, cuda).to(Device::cpu()), rand({n}, b, dtype)));
      const Tensor on_cuda = randn({n}, a, dtype, cuda).to(Device::cpu());
      const Tensor on_cpu = randn({n}, b, dtype);
      if (backend_is_simulated(DeviceType::cuda)) {
        EXPECT_TRUE(identical(on_cuda, on_cpu));  // same libm on both sides
      } else {
        EXPECT_TRUE(all_close(on_cuda, values_of(on_cpu), 1e-5, 1e-5));
      }
    }
  }
}

TEST_F(Backends, MixingDevicesIsAClearError) {
  const Tensor a = random({3}), b = random({3}).to(cuda);
  EXPECT_LATENT_ERROR(add(a, b), "add", "different devices", "cpu", "cuda:0");
  EXPECT_LATENT_ERROR(matmul(random({2, 3}), random({3, 2}).to(cuda)), "matmul", "devices");
  EXPECT_LATENT_ERROR(Tensor(random({2})).to(Device::cuda(3)), "cuda:3");
}

TEST_F(Backends, TrainingStepsOnCudaFollowTheCpuRun) {
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
  const std::vector<double> cuda_losses = losses_on(cuda);
  EXPECT_LT(cuda_losses.back(), cuda_losses.front());
  EXPECT_TRUE(all_close(cuda_losses, cpu_losses, 1e-4, 1e-6));
}

TEST(CachingAllocator, ReusesFreedBlocksBySize) {
  if (!backend_available(DeviceType::cuda)) GTEST_SKIP() << "no cuda device: needs a GPU in an nvcc build";
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
