// Tests of latent::nn: module naming and hierarchy, parameter counts, initialization,
// checkpoints, device/dtype moves, layers against independent references, gradient checks
// against central finite differences (float64), and a small model that trains.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "latent/autograd.h"
#include "latent/nn.h"
#include "latent/ops.h"
#include "latent/optim.h"
#include "latent/random.h"
#include "latent/tensor.h"
#include "test_util.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

using nn::ConvOptions;
using nn::LinearOptions;

// Runs `f`, expecting a latent::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  EXPECT_TRUE(test::throws_error(f, std::vector<std::string>(parts)));
}

std::vector<std::string> names_of(const nn::NamedTensors& named) {
  std::vector<std::string> names;
  for (const auto& [name, t] : named) names.push_back(name);
  return names;
}

// A user-defined module: an encoder, a decoder and a buffer.
class AutoEncoder : public nn::Module {
 public:
  explicit AutoEncoder(Generator& gen) : Module("AutoEncoder") {
    encoder = register_module(
        "encoder", std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(6, 4, gen),
                                                    std::make_shared<nn::ReLU>(),
                                                    std::make_shared<nn::Linear>(4, 2, gen)));
    decoder = register_module("decoder", std::make_shared<nn::Linear>(2, 6, gen));
    counter = register_buffer("counter", zeros({3}));
  }
  Tensor forward(const Tensor& x) override { return decoder->forward(encoder->forward(x)); }

  std::shared_ptr<nn::Sequential> encoder;
  std::shared_ptr<nn::Linear> decoder;
  Tensor counter;
};

// ================================================================== naming and hierarchy
TEST(NnModule, HierarchicalNames) {
  Generator gen(1);
  AutoEncoder model(gen);
  const std::vector<std::string> expected = {"encoder.0.weight", "encoder.0.bias",
                                             "encoder.2.weight", "encoder.2.bias",
                                             "decoder.weight",   "decoder.bias"};
  EXPECT_EQ(names_of(model.named_parameters()), expected);
  EXPECT_EQ(model.parameters().size(), 6u);
  EXPECT_EQ(model.named_parameters(false).size(), 0u);
  EXPECT_EQ(names_of(model.named_buffers()), std::vector<std::string>{"counter"});
  const auto children = model.named_children();
  ASSERT_EQ(children.size(), 2u);
  EXPECT_EQ(children[0].first, "encoder");
  EXPECT_EQ(children[1].first, "decoder");
  // The parameter handles are the layers' own tensors.
  EXPECT_EQ(model.parameters()[4].impl(), model.decoder->weight.impl());
  for (const Tensor& p : model.parameters()) EXPECT_TRUE(p.requires_grad());
  // state_dict lists parameters, then buffers, then children.
  const std::vector<std::string> state_names = {
      "counter",        "encoder.0.weight", "encoder.0.bias", "encoder.2.weight",
      "encoder.2.bias", "decoder.weight",   "decoder.bias"};
  EXPECT_EQ(names_of(model.state_dict()), state_names);
}

TEST(NnModule, SequentialConstructionAndIndexing) {
  Generator gen(2);
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Linear>(3, 5, gen));
  seq.push_back(std::make_shared<nn::Tanh>());
  seq.push_back(std::make_shared<nn::Linear>(5, 1, gen));
  EXPECT_EQ(seq.size(), 3u);
  EXPECT_EQ(names_of(seq.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(seq[1]->type_name(), "Tanh");
  expect_error([&] { seq[3]; }, {"index 3", "3 modules"});
  expect_error([&] { seq.push_back(nullptr); }, {"null"});
  const Tensor x = randn({4, 3}, gen);
  const Tensor y = seq.forward(x);
  const Tensor manual = seq[2]->forward(seq[1]->forward(seq[0]->forward(x)));
  EXPECT_EQ(max_abs_diff(y, manual), 0.0);
  EXPECT_EQ(seq(x).shape(), (Shape{4, 1}));
}

TEST(NnModule, RegistrationErrors) {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  expect_error([&] { m.register_parameter("w", zeros({2})); }, {"'w'", "already registered"});
  expect_error([&] { m.register_buffer("w", zeros({2})); }, {"already registered"});
  expect_error([&] { m.register_parameter("a.b", zeros({2})); }, {"'a.b'", "'.'"});
  expect_error([&] { m.register_parameter("", zeros({2})); }, {"empty name"});
  expect_error([&] { m.register_parameter("i", zeros({2}, DType::i32)); }, {"float"});
  expect_error([&] { m.register_module("c", std::shared_ptr<nn::Module>()); }, {"null"});
  expect_error([&] { m.forward(zeros({1})); }, {"Module", "forward"});
}

TEST(NnModule, TrainEvalPropagates) {
  Generator gen(3);
  AutoEncoder model(gen);
  EXPECT_TRUE(model.is_training());
  model.eval();
  EXPECT_FALSE(model.is_training());
  EXPECT_FALSE(model.encoder->is_training());
  EXPECT_FALSE(model.encoder->children()[1]->is_training());
  model.train();
  EXPECT_TRUE(model.encoder->children()[2]->is_training());
}

TEST(NnModule, ZeroGradDropsGradients) {
  Generator gen(4);
  AutoEncoder model(gen);
  mean(square(model.forward(randn({5, 6}, gen)))).backward();
  for (const Tensor& p : model.parameters()) EXPECT_TRUE(p.grad().defined());
  model.zero_grad();
  for (const Tensor& p : model.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(NnModule, WeightTyingCountsOnce) {
  Generator gen(5);
  auto shared = std::make_shared<nn::Linear>(4, 4, gen);
  nn::Sequential seq(shared, std::make_shared<nn::ReLU>(), shared);
  EXPECT_EQ(names_of(seq.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias"}));
  EXPECT_EQ(seq.parameter_count(), 20);
  // The checkpoint still names every path, as PyTorch's does.
  EXPECT_EQ(seq.state_dict().size(), 4u);
}

TEST(NnModule, Printing) {
  Generator gen(6);
  nn::Sequential seq(std::make_shared<nn::Linear>(4, 2, gen), std::make_shared<nn::LeakyReLU>(0.2),
                     std::make_shared<nn::Conv2d>(1, 2, 3, gen, ConvOptions{.padding = 1}));
  const std::string s = seq.str();
  EXPECT_NE(s.find("(0): Linear(in_features=4, out_features=2, bias=true)"), std::string::npos)
      << s;
  EXPECT_NE(s.find("(1): LeakyReLU(negative_slope=0.2)"), std::string::npos) << s;
  EXPECT_NE(s.find("(2): Conv2d(1, 2, kernel_size=3, stride=1, padding=1)"), std::string::npos)
      << s;
}

// ================================================================== parameter counts
// The numbers PyTorch reports for the same layers (sum(p.numel() for p in m.parameters())).
TEST(NnModule, ParameterCounts) {
  Generator gen(7);
  EXPECT_EQ(nn::Linear(784, 128, gen).parameter_count(), 784 * 128 + 128);  // 100480
  EXPECT_EQ(nn::Linear(10, 5, gen, LinearOptions{.bias = false}).parameter_count(), 50);
  EXPECT_EQ(nn::Conv2d(3, 16, 3, gen).parameter_count(), 16 * 3 * 9 + 16);  // 448
  EXPECT_EQ(nn::ConvTranspose2d(16, 8, 4, gen).parameter_count(), 16 * 8 * 16 + 8);  // 2056
  EXPECT_EQ(nn::Conv2d(1, 32, 4, gen, ConvOptions{.stride = 2, .bias = false}).parameter_count(),
            512);
  // A small VAE-style encoder: 1→32→64 channels, 28→14→7, then a linear head.
  nn::Sequential encoder(
      std::make_shared<nn::Conv2d>(1, 32, 4, gen, ConvOptions{.stride = 2, .padding = 1}),
      std::make_shared<nn::SiLU>(),
      std::make_shared<nn::Conv2d>(32, 64, 4, gen, ConvOptions{.stride = 2, .padding = 1}),
      std::make_shared<nn::SiLU>(), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Linear>(64 * 7 * 7, 16, gen));
  EXPECT_EQ(encoder.parameter_count(), (32 * 16 + 32) + (64 * 32 * 16 + 64) + (3136 * 16 + 16));
  EXPECT_EQ(encoder.forward(zeros({2, 1, 28, 28})).shape(), (Shape{2, 16}));
}

// ================================================================== initialization
struct Stats {
  double max_abs, std;
};
Stats stats_of(const Tensor& t) {
  const auto v = t.to(DType::f64).detach().to_vector<double>();
  double sum = 0, sum2 = 0, max_abs = 0;
  for (double x : v) {
    sum += x;
    sum2 += x * x;
    max_abs = std::max(max_abs, std::abs(x));
  }
  const double n = static_cast<double>(v.size());
  return {max_abs, std::sqrt(sum2 / n - (sum / n) * (sum / n))};
}

TEST(NnInit, LinearBoundsAndSpread) {
  Generator gen(8);
  nn::Linear layer(400, 300, gen);
  const double bound = 1.0 / std::sqrt(400.0);  // 0.05
  const Stats w = stats_of(layer.weight);
  EXPECT_LE(w.max_abs, bound);
  EXPECT_GT(w.max_abs, 0.999 * bound);
  EXPECT_NEAR(w.std, bound / std::sqrt(3.0), 0.01 * bound / std::sqrt(3.0));
  const Stats b = stats_of(layer.bias);
  EXPECT_LE(b.max_abs, bound);
  EXPECT_GT(b.max_abs, 0.9 * bound);
  EXPECT_EQ(layer.weight.dtype(), DType::f32);
  EXPECT_TRUE(layer.weight.device().is_cpu());
}

TEST(NnInit, ConvBoundsUseFanIn) {
  Generator gen(9);
  nn::Conv2d conv(16, 32, 3, gen);
  const double bound = 1.0 / std::sqrt(16.0 * 9.0);
  EXPECT_LE(stats_of(conv.weight).max_abs, bound);
  EXPECT_GT(stats_of(conv.weight).max_abs, 0.99 * bound);
  EXPECT_NEAR(stats_of(conv.weight).std, bound / std::sqrt(3.0), 0.03 * bound / std::sqrt(3.0));
  EXPECT_LE(stats_of(conv.bias).max_abs, bound);

  // ConvTranspose2d: weight [in, out, k, k], fan_in = out·k² = 288 (not in·k² = 72).
  nn::ConvTranspose2d deconv(8, 32, 3, gen);
  EXPECT_EQ(deconv.weight.shape(), (Shape{8, 32, 3, 3}));
  EXPECT_EQ(nn::init::fan_in(deconv.weight), 288);
  const double tbound = 1.0 / std::sqrt(288.0);
  EXPECT_LE(stats_of(deconv.weight).max_abs, tbound);
  EXPECT_GT(stats_of(deconv.weight).max_abs, 0.99 * tbound);
  EXPECT_LE(stats_of(deconv.bias).max_abs, tbound);
  EXPECT_GT(stats_of(deconv.bias).max_abs, 0.5 * tbound);
}

TEST(NnInit, KaimingGainFormula) {
  Generator gen(10);
  Tensor w = empty({50, 200}, DType::f64);
  nn::init::kaiming_uniform_(w, 0.0, gen);  // ReLU gain √2: b = √(6 / fan_in)
  const double bound = std::sqrt(6.0 / 200.0);
  EXPECT_LE(stats_of(w).max_abs, bound);
  EXPECT_GT(stats_of(w).max_abs, 0.99 * bound);
  expect_error([&] { nn::init::fan_in(zeros({3})); }, {"rank >= 2", "[3]"});
  Tensor n = empty({20000}, DType::f64);
  nn::init::normal_(n, 1.5, 0.25, gen);
  const auto v = n.to_vector<double>();
  double mean_v = 0;
  for (double x : v) mean_v += x / v.size();
  EXPECT_NEAR(mean_v, 1.5, 0.01);
  EXPECT_NEAR(stats_of(n).std, 0.25, 0.01);
}

TEST(NnInit, ReproducibleFromSeed) {
  Generator a(42), b(42), c(43);
  AutoEncoder ma(a), mb(b), mc(c);
  const auto pa = ma.parameters(), pb = mb.parameters(), pc = mc.parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(max_abs_diff(pa[i], pb[i]), 0.0);
    EXPECT_GT(max_abs_diff(pa[i], pc[i]), 0.0);
  }
  // reset_parameters draws in registration order: encoder.0, encoder.2, decoder. (The
  // constructor's order is the compiler's: arguments of one call are unordered in C++.)
  Generator again(42), single(42);
  ma.reset_parameters(again);
  nn::Linear first(6, 4, single), second(4, 2, single), third(2, 6, single);
  const std::vector<Tensor> in_order = {first.weight,  first.bias,  second.weight,
                                        second.bias,   third.weight, third.bias};
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(max_abs_diff(pa[i], in_order[i]), 0.0);
  Generator again2(42);
  mb.reset_parameters(again2);
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_EQ(max_abs_diff(pa[i], pb[i]), 0.0);
  // Layers drawn one after the other get different numbers.
  Generator g(1);
  nn::Linear l1(5, 5, g), l2(5, 5, g);
  EXPECT_GT(max_abs_diff(l1.weight, l2.weight), 0.0);
}

TEST(NnInit, Float64Layers) {
  Generator gen(11);
  nn::Linear layer(3, 2, gen, LinearOptions{.dtype = DType::f64});
  EXPECT_EQ(layer.weight.dtype(), DType::f64);
  EXPECT_EQ(layer.bias.dtype(), DType::f64);
  nn::ConvTranspose2d deconv(2, 3, 2, gen, ConvOptions{.bias = false, .dtype = DType::f64});
  EXPECT_EQ(deconv.weight.dtype(), DType::f64);
  EXPECT_FALSE(deconv.bias.defined());
  EXPECT_EQ(deconv.parameters().size(), 1u);
}

// ================================================================== checkpoints
TEST(NnStateDict, RoundTrip) {
  Generator g1(1), g2(2);
  AutoEncoder a(g1), b(g2);
  a.counter.fill_(7.0);
  const Tensor x = randn({3, 6}, g1);
  EXPECT_GT(max_abs_diff(a.forward(x), b.forward(x)), 0.0);
  const Tensor b_weight_handle = b.decoder->weight;
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(max_abs_diff(a.forward(x), b.forward(x)), 0.0);
  EXPECT_EQ(b.counter.to_vector<float>(), (std::vector<float>{7, 7, 7}));
  // Loading writes into the existing tensors.
  EXPECT_EQ(b.decoder->weight.impl(), b_weight_handle.impl());
  EXPECT_TRUE(b.decoder->weight.requires_grad());
}

TEST(NnStateDict, IsASnapshot) {
  Generator gen(3);
  nn::Linear layer(2, 2, gen);
  const auto state = layer.state_dict();
  const auto before = state[0].second.to_vector<float>();
  layer.weight.detach().fill_(5.0);
  EXPECT_EQ(state[0].second.to_vector<float>(), before);
  EXPECT_FALSE(state[0].second.requires_grad());
}

TEST(NnStateDict, LoadErrors) {
  Generator gen(4);
  AutoEncoder model(gen);
  const auto good = model.state_dict();
  const auto original = model.decoder->weight.to_vector<float>();

  auto missing = good;
  missing.erase(missing.begin() + 5);  // decoder.weight
  expect_error([&] { model.load_state_dict(missing); },
               {"missing", "'decoder.weight'", "AutoEncoder"});

  auto unexpected = good;
  unexpected.emplace_back("decoder.scale", zeros({1}));
  expect_error([&] { model.load_state_dict(unexpected); }, {"not in the model", "'decoder.scale'"});

  auto wrong_shape = good;
  wrong_shape[5].second = zeros({2, 6});  // the model's decoder.weight is [6, 2]
  expect_error([&] { model.load_state_dict(wrong_shape); },
               {"'decoder.weight'", "[2, 6]", "[6, 2]"});
  // Nothing was written by the failed loads.
  EXPECT_EQ(model.decoder->weight.to_vector<float>(), original);

  // Non-strict loads what matches and ignores the rest; shapes are still checked.
  auto partial = unexpected;
  partial.erase(partial.begin() + 5);
  partial[5].second = full({6}, 3.0);  // decoder.bias
  model.load_state_dict(partial, /*strict=*/false);
  EXPECT_EQ(model.decoder->bias.to_vector<float>(), std::vector<float>(6, 3.0f));
  EXPECT_EQ(model.decoder->weight.to_vector<float>(), original);
  expect_error([&] { model.load_state_dict(wrong_shape, false); }, {"shape mismatch"});

  auto duplicated = good;
  duplicated.push_back(good[0]);
  expect_error([&] { model.load_state_dict(duplicated); }, {"twice", "'counter'"});
}

TEST(NnStateDict, ConvertsDtype) {
  Generator gen(5);
  nn::Linear f32(3, 2, gen);
  nn::Linear f64(3, 2, gen, LinearOptions{.dtype = DType::f64});
  f64.load_state_dict(f32.state_dict());
  EXPECT_EQ(f64.weight.dtype(), DType::f64);
  EXPECT_LT(max_abs_diff(f64.weight, f32.weight), 1e-12);
}

// ================================================================== moves
TEST(NnModule, ToDtypeKeepsIdentity) {
  Generator gen(6);
  nn::Linear layer(3, 2, gen);
  const auto values = layer.weight.to(DType::f64).detach().to_vector<double>();
  const std::vector<Tensor> handles = layer.parameters();
  mean(layer.forward(ones({1, 3}))).backward();
  layer.to(DType::f64);
  EXPECT_EQ(layer.weight.dtype(), DType::f64);
  EXPECT_EQ(handles[0].dtype(), DType::f64);  // the very same tensor
  EXPECT_EQ(handles[0].impl(), layer.weight.impl());
  EXPECT_TRUE(layer.weight.requires_grad());
  EXPECT_EQ(layer.weight.grad().dtype(), DType::f64);
  EXPECT_EQ(layer.weight.to_vector<double>(), values);
  EXPECT_EQ(layer.forward(ones({1, 3}, DType::f64)).dtype(), DType::f64);
  expect_error([&] { layer.to(DType::i32); }, {"floating"});
}

TEST(NnModule, ToDevice) {
  Generator gen(7);
  AutoEncoder model(gen);
  const Tensor weight = model.decoder->weight;
  const auto values = weight.to_vector<float>();
  model.to(Device::cpu());  // a no-op
  EXPECT_EQ(weight.impl(), model.decoder->weight.impl());
  if (!test::has_cuda()) {
    std::cout << "[ NOTE ] no CUDA backend: checking that to(cuda) fails cleanly\n";
    expect_error([&] { model.to(Device::cuda()); }, {"cuda"});
    EXPECT_TRUE(weight.device().is_cpu());
    EXPECT_EQ(weight.to_vector<float>(), values);
    return;
  }
  model.to(Device::cuda());
  EXPECT_TRUE(weight.device().is_cuda());
  EXPECT_TRUE(model.counter.device().is_cuda());
  EXPECT_TRUE(weight.requires_grad());
  const Tensor x = randn({2, 6}, gen);
  Tensor y = model.forward(x.to(Device::cuda()));
  EXPECT_TRUE(y.device().is_cuda());
  mean(square(y)).backward();
  EXPECT_TRUE(weight.grad().device().is_cuda());
  model.to(Device::cpu());
  EXPECT_TRUE(weight.grad().device().is_cpu());
  EXPECT_EQ(weight.to_vector<float>(), values);
}

// ================================================================== layers against references
TEST(NnLayers, LinearMatchesFunctionalAndHostLoop) {
  Generator gen(8);
  nn::Linear layer(5, 3, gen, LinearOptions{.dtype = DType::f64});
  const Tensor x = randn({4, 5}, gen, DType::f64);
  const Tensor y = layer.forward(x);
  EXPECT_EQ(max_abs_diff(y, linear(x, layer.weight, layer.bias)), 0.0);
  const auto xv = x.to_vector<double>(), w = layer.weight.to_vector<double>(),
             b = layer.bias.to_vector<double>(), yv = y.to_vector<double>();
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 3; ++o) {
      double acc = b[o];
      for (int i = 0; i < 5; ++i) acc += xv[n * 5 + i] * w[o * 5 + i];
      EXPECT_NEAR(yv[n * 3 + o], acc, 1e-12);
    }
  // Leading batch dimensions are kept.
  EXPECT_EQ(layer.forward(randn({2, 3, 5}, gen, DType::f64)).shape(), (Shape{2, 3, 3}));
  expect_error([&] { layer.forward(randn({4, 4}, gen, DType::f64)); }, {"linear", "[4, 4]"});
}

// Host reference of conv2d (W [OC, C, K, K]) and conv_transpose2d (W [C, OC, K, K]).
std::vector<double> host_conv(const std::vector<double>& x, const std::vector<double>& w,
                              const std::vector<double>& b, int n, int c, int h, int wd,
                              int oc, int k, int s, int p, int oh, int ow, bool transpose) {
  std::vector<double> y(static_cast<std::size_t>(n) * oc * oh * ow, 0.0);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < oc; ++o)
      for (int r = 0; r < oh * ow; ++r) y[((i * oc + o) * oh * ow) + r] = b[o];
  for (int i = 0; i < n; ++i)
    for (int ci = 0; ci < c; ++ci)
      for (int o = 0; o < oc; ++o)
        for (int ky = 0; ky < k; ++ky)
          for (int kx = 0; kx < k; ++kx) {
            if (!transpose) {
              const double wv = w[((o * c + ci) * k + ky) * k + kx];
              for (int oy = 0; oy < oh; ++oy)
                for (int ox = 0; ox < ow; ++ox) {
                  const int iy = oy * s - p + ky, ix = ox * s - p + kx;
                  if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                  y[((i * oc + o) * oh + oy) * ow + ox] += wv * x[((i * c + ci) * h + iy) * wd + ix];
                }
            } else {
              const double wv = w[((ci * oc + o) * k + ky) * k + kx];
              for (int iy = 0; iy < h; ++iy)
                for (int ix = 0; ix < wd; ++ix) {
                  const int oy = iy * s - p + ky, ox = ix * s - p + kx;
                  if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                  y[((i * oc + o) * oh + oy) * ow + ox] += wv * x[((i * c + ci) * h + iy) * wd + ix];
                }
            }
          }
  return y;
}

TEST(NnLayers, Conv2dMatchesHostLoop) {
  Generator gen(9);
  nn::Conv2d conv(3, 4, 3, gen, ConvOptions{.stride = 2, .padding = 1, .dtype = DType::f64});
  const Tensor x = randn({2, 3, 7, 6}, gen, DType::f64);
  const Tensor y = conv.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 4, 4, 3}));
  EXPECT_EQ(max_abs_diff(y, conv2d(x, conv.weight, conv.bias, {2, 1, 0})), 0.0);
  const auto ref = host_conv(x.to_vector<double>(), conv.weight.to_vector<double>(),
                             conv.bias.to_vector<double>(), 2, 3, 7, 6, 4, 3, 2, 1, 4, 3, false);
  const auto got = y.to_vector<double>();
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-12) << i;
}

TEST(NnLayers, ConvTranspose2dMatchesHostLoop) {
  Generator gen(10);
  nn::ConvTranspose2d deconv(3, 2, 4, gen,
                             ConvOptions{.stride = 2, .padding = 1, .output_padding = 1,
                                         .dtype = DType::f64});
  const Tensor x = randn({2, 3, 4, 5}, gen, DType::f64);
  const Tensor y = deconv.forward(x);
  // (H − 1)·2 − 2 + 4 + 1 = 2H + 1
  ASSERT_EQ(y.shape(), (Shape{2, 2, 9, 11}));
  const auto ref =
      host_conv(x.to_vector<double>(), deconv.weight.to_vector<double>(),
                deconv.bias.to_vector<double>(), 2, 3, 4, 5, 2, 4, 2, 1, 9, 11, true);
  const auto got = y.to_vector<double>();
  for (std::size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(got[i], ref[i], 1e-12) << i;
}

TEST(NnLayers, ConvConstructorErrors) {
  Generator gen(11);
  expect_error([&] { nn::Conv2d(0, 2, 3, gen); }, {"Conv2d", "positive"});
  expect_error([&] { nn::Conv2d(1, 2, 3, gen, ConvOptions{.stride = 0}); }, {"stride"});
  expect_error([&] { nn::Conv2d(1, 2, 3, gen, ConvOptions{.stride = 2, .output_padding = 1}); },
               {"output_padding"});
  expect_error([&] { nn::ConvTranspose2d(1, 2, 3, gen, ConvOptions{.output_padding = 1}); },
               {"output_padding", "[0, stride)"});
  expect_error([&] { nn::Linear(3, 0, gen); }, {"Linear", "positive"});
  nn::Conv2d conv(3, 2, 3, gen);
  expect_error([&] { conv.forward(zeros({1, 2, 5, 5})); }, {"conv2d", "channels"});
}

TEST(NnLayers, ActivationsMatchOps) {
  Generator gen(12);
  const Tensor x = randn({3, 7}, gen);
  EXPECT_EQ(max_abs_diff(nn::ReLU().forward(x), relu(x)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::LeakyReLU(0.3).forward(x), leaky_relu(x, 0.3)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::SiLU().forward(x), silu(x)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::Sigmoid().forward(x), sigmoid(x)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::Tanh().forward(x), tanh(x)), 0.0);
  EXPECT_EQ(max_abs_diff(nn::Identity().forward(x), x), 0.0);
  EXPECT_EQ(nn::LeakyReLU().negative_slope, 0.01);
  const auto v = x.to_vector<float>();
  const auto lr = nn::LeakyReLU(0.3).forward(x).to_vector<float>();
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_FLOAT_EQ(lr[i], v[i] > 0 ? v[i] : 0.3f * v[i]);
}

TEST(NnLayers, ShapeModules) {
  Generator gen(13);
  const Tensor x = randn({2, 3, 4, 5}, gen);
  EXPECT_EQ(nn::Flatten().forward(x).shape(), (Shape{2, 60}));
  EXPECT_EQ(nn::Flatten(0).forward(x).shape(), (Shape{120}));
  EXPECT_EQ(nn::Flatten(1, 2).forward(x).shape(), (Shape{2, 12, 5}));
  const Tensor flat = randn({2, 60}, gen);
  EXPECT_EQ(nn::Unflatten(1, {3, 4, 5}).forward(flat).shape(), (Shape{2, 3, 4, 5}));
  EXPECT_EQ(nn::Unflatten(-1, {-1, 5}).forward(flat).shape(), (Shape{2, 12, 5}));
  EXPECT_EQ(nn::Reshape({15, 4}).forward(flat).shape(), (Shape{2, 15, 4}));
  EXPECT_EQ(nn::Reshape({-1, 2, 2}).forward(flat).shape(), (Shape{2, 15, 2, 2}));
  // Values are preserved in row-major order.
  EXPECT_EQ(max_abs_diff(nn::Reshape({3, 4, 5}).forward(flat).reshape({2, 60}), flat), 0.0);
  expect_error([&] { nn::Unflatten(1, {7, 8}).forward(flat); }, {"Unflatten", "[7, 8]", "60"});
  expect_error([&] { nn::Reshape({7, -1}).forward(flat); }, {"Reshape", "[7, -1]"});
  // Round trip Flatten → Unflatten, with gradients flowing through.
  Tensor leaf = randn({2, 3, 4, 5}, gen).requires_grad_();
  Tensor back = nn::Unflatten(1, {3, 4, 5}).forward(nn::Flatten().forward(leaf));
  sum(back).backward();
  EXPECT_EQ(max_abs_diff(leaf.grad(), ones({2, 3, 4, 5})), 0.0);
}

// ================================================================== gradient checks (float64)
// Checks d(loss)/d(input) and d(loss)/d(every parameter) of loss = Σ module(x) ⊙ R against
// central differences. All tensors are contiguous float64 on cpu, so they are perturbed in place.
void grad_check(nn::Module& module, const Shape& input_shape, std::uint64_t seed) {
  Generator gen(seed);
  Tensor x = randn(input_shape, gen, DType::f64).requires_grad_();
  const Tensor r = randn(module.forward(x).shape(), gen, DType::f64);
  auto loss_value = [&] {
    NoGradGuard no_grad;
    return sum(mul(module.forward(x), r)).item<double>();
  };
  module.zero_grad();
  sum(mul(module.forward(x), r)).backward();

  std::vector<std::pair<std::string, Tensor>> checked = module.named_parameters();
  checked.emplace_back("input", x);
  const double h = 1e-6;
  for (auto& [name, t] : checked) {
    ASSERT_TRUE(t.grad().defined()) << name;
    const auto analytic = t.grad().to_vector<double>();
    double* data = t.data<double>();
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      const double saved = data[i];
      data[i] = saved + h;
      const double plus = loss_value();
      data[i] = saved - h;
      const double minus = loss_value();
      data[i] = saved;
      const double numeric = (plus - minus) / (2 * h);
      EXPECT_NEAR(analytic[i], numeric, 1e-6 + 1e-5 * std::abs(numeric))
          << module.type_name() << " " << name << "[" << i << "]";
    }
  }
}

TEST(NnGradCheck, Linear) {
  Generator gen(20);
  nn::Linear layer(4, 3, gen, LinearOptions{.dtype = DType::f64});
  grad_check(layer, {5, 4}, 1);
}

TEST(NnGradCheck, Conv2d) {
  Generator gen(21);
  nn::Conv2d conv(2, 3, 3, gen, ConvOptions{.stride = 2, .padding = 1, .dtype = DType::f64});
  grad_check(conv, {2, 2, 5, 4}, 2);
}

TEST(NnGradCheck, ConvTranspose2d) {
  Generator gen(22);
  nn::ConvTranspose2d deconv(
      3, 2, 3, gen,
      ConvOptions{.stride = 2, .padding = 1, .output_padding = 1, .dtype = DType::f64});
  grad_check(deconv, {2, 3, 3, 2}, 3);
}

TEST(NnGradCheck, SequentialWithActivations) {
  Generator gen(23);
  const LinearOptions f64{.dtype = DType::f64};
  nn::Sequential seq(std::make_shared<nn::Linear>(3, 6, gen, f64), std::make_shared<nn::SiLU>(),
                     std::make_shared<nn::Linear>(6, 6, gen, f64), std::make_shared<nn::Tanh>(),
                     std::make_shared<nn::Linear>(6, 4, gen, f64),
                     std::make_shared<nn::Sigmoid>(), std::make_shared<nn::Unflatten>(1, Shape{2, 2}),
                     std::make_shared<nn::Flatten>());
  grad_check(seq, {4, 3}, 4);
}

TEST(NnGradCheck, ConvDecoder) {
  Generator gen(24);
  const ConvOptions f64{.stride = 2, .padding = 1, .output_padding = 1, .dtype = DType::f64};
  nn::Sequential seq(std::make_shared<nn::Linear>(3, 8, gen, LinearOptions{.dtype = DType::f64}),
                     std::make_shared<nn::Reshape>(Shape{2, 2, 2}),
                     std::make_shared<nn::LeakyReLU>(0.1),
                     std::make_shared<nn::ConvTranspose2d>(2, 2, 3, gen, f64),
                     std::make_shared<nn::Conv2d>(2, 1, 3, gen,
                                                  ConvOptions{.padding = 1, .dtype = DType::f64}));
  grad_check(seq, {2, 3}, 5);
}

// ================================================================== training
TEST(NnTraining, SmallRegressionLearns) {
  Generator gen(30);
  // y = sin(2·x0) + x1² − 0.5·x0·x1 on 128 points of [−1, 1]².
  const Tensor x = uniform({128, 2}, -1.0, 1.0, gen);
  const auto xv = x.to_vector<float>();
  std::vector<float> yv(128);
  for (int i = 0; i < 128; ++i) {
    const float a = xv[2 * i], b = xv[2 * i + 1];
    yv[i] = std::sin(2 * a) + b * b - 0.5f * a * b;
  }
  const Tensor y = from_vector(yv, {128, 1});
  auto model = std::make_shared<nn::Sequential>(
      std::make_shared<nn::Linear>(2, 32, gen), std::make_shared<nn::Tanh>(),
      std::make_shared<nn::Linear>(32, 32, gen), std::make_shared<nn::SiLU>(),
      std::make_shared<nn::Linear>(32, 1, gen));
  optim::Adam opt(model->parameters(), 1e-2);
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    Tensor loss = mse_loss(model->forward(x), y);
    loss.backward();
    nn::clip_grad_norm(model->parameters(), 10.0);
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  EXPECT_LT(last, first / 20) << "loss " << first << " -> " << last;
  EXPECT_LT(last, 0.02);
}

TEST(NnTraining, ConvAutoencoderLossFalls) {
  Generator gen(31);
  // Smooth 8×8 images: a blob at a random position.
  std::vector<float> pixels(16 * 64);
  for (int n = 0; n < 16; ++n) {
    const double cy = 2 + 4 * gen.next_uniform(), cx = 2 + 4 * gen.next_uniform();
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j)
        pixels[n * 64 + i * 8 + j] =
            static_cast<float>(std::exp(-((i - cy) * (i - cy) + (j - cx) * (j - cx)) / 4.0));
  }
  const Tensor images = from_vector(pixels, {16, 1, 8, 8});
  nn::Sequential model(
      std::make_shared<nn::Conv2d>(1, 8, 3, gen, ConvOptions{.stride = 2, .padding = 1}),
      std::make_shared<nn::SiLU>(),
      std::make_shared<nn::ConvTranspose2d>(
          8, 1, 3, gen, ConvOptions{.stride = 2, .padding = 1, .output_padding = 1}));
  optim::AdamW opt(model.parameters(), 1e-2);
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    opt.zero_grad();
    Tensor loss = mse_loss(model.forward(images), images);
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item();
    last = loss.item();
  }
  EXPECT_LT(last, first / 10) << "loss " << first << " -> " << last;
}

// ================================================================== gradient clipping
TEST(Clip, ScalesToMaxNorm) {
  Tensor a = zeros({2}, DType::f64).requires_grad_(), b = zeros({1}, DType::f64).requires_grad_();
  Tensor c = zeros({3}, DType::f64).requires_grad_();  // no gradient: skipped
  a.set_grad(from_vector<double>({3, 4}, {2}));
  b.set_grad(from_vector<double>({12}, {1}));
  const double norm = nn::clip_grad_norm({a, b, c}, 6.5);
  EXPECT_DOUBLE_EQ(norm, 13.0);
  const double scale = 6.5 / (13.0 + 1e-6);
  EXPECT_DOUBLE_EQ(a.grad().to_vector<double>()[0], 3 * scale);
  EXPECT_DOUBLE_EQ(a.grad().to_vector<double>()[1], 4 * scale);
  EXPECT_DOUBLE_EQ(b.grad().to_vector<double>()[0], 12 * scale);
  EXPECT_FALSE(c.grad().defined());
  // The norm after clipping is max_norm (up to the 1e-6 guard).
  EXPECT_NEAR(nn::clip_grad_norm({a, b, c}, 100.0), 6.5, 1e-6);
}

TEST(Clip, BelowMaxNormUnchanged) {
  Tensor a = zeros({3}).requires_grad_();
  a.set_grad(from_vector<float>({1, -2, 2}, {3}));
  EXPECT_NEAR(nn::clip_grad_norm({a}, 3.0), 3.0, 1e-6);  // equal: not above, unchanged
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{1, -2, 2}));
  EXPECT_EQ(nn::clip_grad_norm({zeros({2}).requires_grad_()}, 1.0), 0.0);  // no gradients
}

TEST(Clip, MatchesHandComputationOnRandomGradients) {
  Generator gen(40);
  std::vector<Tensor> params;
  double sum_squares = 0;
  for (const Shape& s : {Shape{7, 3}, Shape{5}, Shape{2, 2, 3, 3}}) {
    Tensor p = zeros(s).requires_grad_();
    Tensor g = mul(randn(s, gen), 3.0);
    for (float v : g.to_vector<float>()) sum_squares += double(v) * v;
    p.set_grad(g);
    params.push_back(p);
  }
  const auto before = params[2].grad().to_vector<float>();
  const double norm = nn::clip_grad_norm(params, 1.0);
  EXPECT_NEAR(norm, std::sqrt(sum_squares), 1e-9 * norm);
  const auto after = params[2].grad().to_vector<float>();
  for (std::size_t i = 0; i < after.size(); ++i)
    EXPECT_NEAR(after[i], before[i] / (norm + 1e-6), 1e-6);
}

TEST(Clip, NonFiniteAndBadArguments) {
  Tensor a = zeros({2}).requires_grad_();
  a.set_grad(from_vector<float>({INFINITY, 1}, {2}));
  EXPECT_TRUE(std::isinf(nn::clip_grad_norm({a}, 1.0)));
  EXPECT_EQ(a.grad().to_vector<float>()[1], 1.0f);  // untouched
  expect_error([&] { nn::clip_grad_norm({a}, -1.0); }, {"max_norm"});
}

}  // namespace
}  // namespace latent
