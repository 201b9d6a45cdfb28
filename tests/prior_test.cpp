// The transformer prior (include/latent/prior.h, src/models/prior.cpp): causality, gradients
// of the whole model against central differences, the key/value-cache sampler against full
// forward passes, the categorical draw, learning a token distribution, and the command line
// (train a tokenizer, train a prior on it, resume, sample).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli_util.h"
#include "latent/latent.h"
#include "latent/prior.h"
#include "tests/op_harness.h"
#include "tests/synthetic_data.h"
#include "tools/train/train.h"

namespace latent {
namespace {

using models::PriorConfig;
using models::SampleOptions;
using models::TokenTransformer;
using test::devices;

PriorConfig small_config() {
  PriorConfig c;
  c.vocabulary = 13;
  c.tokens = 9;
  c.classes = 3;
  c.width = 16;
  c.layers = 2;
  c.heads = 2;
  c.mlp_ratio = 2;
  return c;
}

Tensor random_tokens(std::int64_t batch, const PriorConfig& c, Generator& gen) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(batch * c.tokens));
  for (auto& t : v) t = static_cast<std::int32_t>(gen.next_int(c.vocabulary));
  return from_vector(v, {batch, c.tokens});
}
Tensor random_labels(std::int64_t batch, const PriorConfig& c, Generator& gen) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(batch));
  for (auto& t : v) t = static_cast<std::int32_t>(gen.next_int(c.classes + 1));
  return from_vector(v, {batch});
}

// Position t's logits depend on the label and tokens 0 … t − 1 only.
TEST(Prior, LogitsAreCausal) {
  const PriorConfig c = small_config();
  Generator gen(3);
  TokenTransformer model(c, gen);
  const Tensor tokens = random_tokens(2, c, gen);
  const Tensor labels = random_labels(2, c, gen);
  const std::vector<double> base = test::values_of(model.logits(tokens, labels));
  for (std::int64_t changed = 0; changed < c.tokens; ++changed) {
    std::vector<std::int32_t> v = tokens.to_vector<std::int32_t>();
    v[changed] = (v[changed] + 1) % static_cast<std::int32_t>(c.vocabulary);  // row 0
    const std::vector<double> got = test::values_of(model.logits(from_vector(v, {2, c.tokens}), labels));
    for (std::int64_t t = 0; t < c.tokens; ++t) {
      double diff = 0.0;
      for (std::int64_t k = 0; k < c.vocabulary; ++k)
        diff = std::max(diff, std::abs(got[t * c.vocabulary + k] - base[t * c.vocabulary + k]));
      if (t <= changed) {
        EXPECT_EQ(diff, 0.0) << "position " << t << " saw token " << changed;
      } else {
        EXPECT_GT(diff, 0.0) << "position " << t << " ignores token " << changed;
      }
    }
  }
}

// dL/dθ of L = Σ nll·w for every parameter tensor of a float64 model, at random elements,
// against central differences of the loss.
TEST(Prior, GradientsOfTheWholeModelMatchFiniteDifferences) {
  const PriorConfig c = small_config();
  Generator gen(5);
  TokenTransformer model(c, gen);
  model.to(DType::f64);
  const Tensor tokens = random_tokens(3, c, gen);
  const Tensor labels = random_labels(3, c, gen);
  const Tensor w = uniform({3, c.tokens}, 0.5, 1.5, gen, DType::f64);
  const auto loss = [&] { return sum(mul(model.token_nll(tokens, labels), w)); };
  model.zero_grad();
  loss().backward();
  for (const auto& [name, p] : model.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    const std::vector<double> grad = test::values_of(p.grad());
    for (int probe = 0; probe < 3; ++probe) {
      const std::int64_t i = gen.next_int(p.numel());
      Tensor flat = p.detach().reshape({-1});
      const double x = test::values_of(flat.narrow(0, i, 1))[0];
      const double h = 1e-5;
      NoGradGuard no_grad;
      flat.narrow(0, i, 1).copy_(full({1}, x + h, DType::f64));
      const double up = loss().item();
      flat.narrow(0, i, 1).copy_(full({1}, x - h, DType::f64));
      const double down = loss().item();
      flat.narrow(0, i, 1).copy_(full({1}, x, DType::f64));
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(grad[i], numeric, 1e-6 + 1e-5 * std::abs(numeric)) << name << "[" << i << "]";
    }
  }
}

TEST(Prior, CudaMatchesCpuForwardAndBackward) {
  if (!test::has_cuda()) GTEST_SKIP() << "no cuda backend here";
  const PriorConfig c = small_config();
  Generator gen(8);
  TokenTransformer cpu_model(c, gen);
  Generator gen2(8);
  TokenTransformer cuda_model(c, gen2);
  cuda_model.to(test::cuda_device());
  const Tensor tokens = random_tokens(4, c, gen);
  const Tensor labels = random_labels(4, c, gen);
  const Tensor a = mean(cpu_model.token_nll(tokens, labels));
  const Tensor b = mean(cuda_model.token_nll(tokens.to(test::cuda_device()), labels.to(test::cuda_device())));
  EXPECT_NEAR(a.item(), b.item(), 1e-5 * std::abs(a.item()));
  a.backward();
  b.backward();
  const auto pa = cpu_model.named_parameters();
  const auto pb = cuda_model.named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_LT(max_abs_diff(pa[i].second.grad(), pb[i].second.grad().to(Device::cpu())), 2e-5)
        << pa[i].first;
  }
}

// Greedy decoding (top-k 1) through the cache picks, at every position, the argmax of a full
// forward pass over the tokens drawn so far.
TEST(Prior, CachedSamplingMatchesFullForwardPasses) {
  const PriorConfig c = small_config();
  for (const Device device : devices()) {
    Generator gen(12);
    TokenTransformer model(c, gen);
    model.to(device);
    const Tensor labels = from_vector(std::vector<std::int32_t>{0, 1, 2, 3, 1}, {5}, device);
    SampleOptions greedy;
    greedy.top_k = 1;
    const std::vector<std::int32_t> drawn =
        model.sample(labels, {7, 0}, greedy).to_vector<std::int32_t>();
    // Full passes: position t's argmax given the drawn tokens before it (later ones do not
    // matter: causality).
    const std::vector<double> logits = test::values_of(
        model.logits(from_vector(drawn, {5, c.tokens}, device), labels));
    for (std::int64_t b = 0; b < 5; ++b) {
      for (std::int64_t t = 0; t < c.tokens; ++t) {
        const double* row = logits.data() + (b * c.tokens + t) * c.vocabulary;
        const std::int64_t best = std::max_element(row, row + c.vocabulary) - row;
        EXPECT_EQ(drawn[b * c.tokens + t], best) << device.str() << " row " << b << " position " << t;
      }
    }
  }
}

TEST(Prior, SamplesAreReproducibleBySeed) {
  const PriorConfig c = small_config();
  Generator gen(2);
  TokenTransformer model(c, gen);
  const Tensor labels = from_vector(std::vector<std::int32_t>(16, 3), {16});
  const Tensor a = model.sample(labels, {42, 0});
  const Tensor b = model.sample(labels, {42, 0});
  const Tensor d = model.sample(labels, {43, 0});
  EXPECT_TRUE(test::identical(a, b));
  EXPECT_FALSE(test::identical(a, d));
  for (const std::int32_t t : a.to_vector<std::int32_t>()) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, c.vocabulary);
  }
}

// The draw follows softmax(logits / temperature) restricted to the top k: frequencies of
// 40,000 draws within 5 standard deviations of each probability.
TEST(Prior, CategoricalDrawFollowsTheDistribution) {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 2.0f, -1.0f, 3.0f};
  const std::int64_t K = 6, draws = 40000;
  for (const auto& [temperature, top_k] : std::vector<std::pair<double, std::int64_t>>{
           {1.0, 0}, {0.5, 0}, {2.0, 3}, {1.0, 2}}) {
    std::vector<float> rows;
    for (std::int64_t r = 0; r < draws; ++r) rows.insert(rows.end(), logits.begin(), logits.end());
    Generator gen(9);
    const std::vector<double> u = uniform({draws}, 0.0, 1.0, gen, DType::f64).to_vector<double>();
    SampleOptions options;
    options.temperature = temperature;
    options.top_k = top_k;
    const std::vector<std::int32_t> got =
        models::sample_categorical(from_vector(rows, {draws, K}), u, options);
    std::vector<double> sorted(logits.begin(), logits.end());
    std::sort(sorted.begin(), sorted.end(), std::greater<double>());
    const double threshold = top_k > 0 ? sorted[top_k - 1] : -INFINITY;
    std::vector<double> p(K);
    double total = 0.0;
    for (std::int64_t k = 0; k < K; ++k)
      total += (p[k] = logits[k] >= threshold ? std::exp(logits[k] / temperature) : 0.0);
    std::vector<double> count(K, 0.0);
    for (const std::int32_t k : got) count[k] += 1;
    for (std::int64_t k = 0; k < K; ++k) {
      const double expected = p[k] / total;
      const double sd = std::sqrt(expected * (1 - expected) / draws);
      EXPECT_NEAR(count[k] / draws, expected, 5 * sd + 1e-12)
          << "temperature " << temperature << " top_k " << top_k << " token " << k;
    }
  }
}

// A token distribution with structure the unigram cannot see: token t of a sequence is
// (class + t·first token) mod K, with a uniform random first token. A prior learns it to far
// below the unigram entropy (log2 K bits per token here, as every token is equally likely).
TEST(Prior, LearnsAStructuredTokenDistribution) {
  PriorConfig c = small_config();
  c.width = 32;
  const std::int64_t batch = 64;
  Generator gen(21);
  TokenTransformer model(c, gen);
  optim::AdamW optimizer(model.parameters(), 3e-3);
  const auto make_batch = [&](Generator& g, Tensor& tokens, Tensor& labels) {
    std::vector<std::int32_t> t(static_cast<std::size_t>(batch * c.tokens)), l(batch);
    for (std::int64_t b = 0; b < batch; ++b) {
      l[b] = static_cast<std::int32_t>(g.next_int(c.classes));
      const std::int64_t first = g.next_int(c.vocabulary);
      for (std::int64_t i = 0; i < c.tokens; ++i)
        t[b * c.tokens + i] = static_cast<std::int32_t>((l[b] + i * first + (i == 0 ? first : 0)) % c.vocabulary);
    }
    tokens = from_vector(t, {batch, c.tokens});
    labels = from_vector(l, {batch});
  };
  double first_loss = 0.0, last_loss = 0.0;
  for (int step = 0; step < 300; ++step) {
    Tensor tokens, labels;
    make_batch(gen, tokens, labels);
    const Tensor loss = mean(model.token_nll(tokens, labels));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
    if (step == 0) first_loss = loss.item();
    last_loss = loss.item();
  }
  const double uniform_nats = std::log(static_cast<double>(c.vocabulary));
  EXPECT_NEAR(first_loss, uniform_nats, 0.3);
  // Only the first token is random: the rest follow. Per token that is ln K / T nats.
  EXPECT_LT(last_loss, 0.35 * uniform_nats) << "first " << first_loss;
}

// The test metrics against a recomputation from the model's own token NLLs and the tokens'
// histogram.
TEST(Prior, EvaluationReportsBitsBesideTheBaselines) {
  Generator gen(13);
  models::ConvNetConfig net;
  net.hidden_channels = 4;
  auto tokenizer = std::make_shared<models::FsqAutoencoder>(net, std::vector<std::int64_t>{5, 3}, gen);
  PriorConfig c;
  c.vocabulary = 15;
  c.width = 16;
  c.layers = 1;
  c.heads = 2;
  models::TokenPrior prior(tokenizer, c, gen);
  const Dataset test = test::smooth_images(23, 4);
  const auto metrics = prior.evaluate_extra(test, Device::cpu());
  NoGradGuard no_grad;
  const Tensor tokens = tokenizer->encode_tokens(test.images).reshape({23, 49});
  const double nats = sum(prior.transformer().token_nll(tokens, test.labels).to(DType::f64)).item();
  EXPECT_NEAR(metrics.at("nll_bits_per_image"), nats / std::log(2.0) / 23, 1e-9);
  EXPECT_NEAR(metrics.at("nll_bits_per_token"), nats / std::log(2.0) / (23 * 49), 1e-9);
  EXPECT_DOUBLE_EQ(metrics.at("uniform_bits_per_image"), 49 * std::log2(15.0));
  std::map<std::int32_t, double> counts;
  for (const std::int32_t t : tokens.to_vector<std::int32_t>()) counts[t] += 1;
  double entropy = 0.0;
  for (const auto& [t, n] : counts) entropy -= n / (23 * 49) * std::log2(n / (23 * 49));
  EXPECT_NEAR(metrics.at("unigram_bits_per_image"), 49 * entropy, 1e-9);
  EXPECT_LE(metrics.at("unigram_bits_per_image"), metrics.at("uniform_bits_per_image"));
  const Tensor none = full({23}, 10, DType::i32);
  const double unconditional = sum(prior.transformer().token_nll(tokens, none).to(DType::f64)).item();
  EXPECT_NEAR(metrics.at("unconditional_bits_per_image"), unconditional / std::log(2.0) / 23, 1e-9);
  // The tokenizer is frozen: its parameters take no gradient, and only the prior's train.
  EXPECT_EQ(prior.trainable_parameters().size(), prior.transformer().parameters().size());
  for (const Tensor& p : tokenizer->parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(Prior, BadInputIsAClearError) {
  const PriorConfig c = small_config();
  Generator gen(1);
  TokenTransformer model(c, gen);
  const Tensor labels = random_labels(2, c, gen);
  EXPECT_LATENT_ERROR(model.logits(zeros({2, c.tokens + 1}, DType::i32), labels),
                      "tokens must be int32 [batch, 9]");
  EXPECT_LATENT_ERROR(model.logits(zeros({2, c.tokens}), labels), "tokens must be int32");
  EXPECT_LATENT_ERROR(model.logits(zeros({2, c.tokens}, DType::i32), zeros({3}, DType::i32)),
                      "labels must be int32 [2]");
  EXPECT_LATENT_ERROR(model.logits(full({2, c.tokens}, 13, DType::i32), labels),
                      "token index 13 at position 0", "vocabulary [0, 13)");
  EXPECT_LATENT_ERROR(model.logits(zeros({2, c.tokens}, DType::i32), full({2}, -1, DType::i32)),
                      "label index -1", "(3: no class)");
  EXPECT_LATENT_ERROR(model.sample(full({2}, 4, DType::i32), {0, 0}), "label 4", "no class");
  SampleOptions hot;
  hot.temperature = 0;
  EXPECT_LATENT_ERROR(model.sample(full({2}, 1, DType::i32), {0, 0}, hot), "temperature");
  PriorConfig bad = c;
  bad.heads = 3;
  EXPECT_LATENT_ERROR(TokenTransformer(bad, gen), "multiple of heads");
  bad = c;
  bad.tokens = 65;
  EXPECT_LATENT_ERROR(TokenTransformer(bad, gen), "65 tokens");
}

TEST(Prior, ScheduleWarmsUpThenFollowsTheCosine) {
  train::Config config;
  config.lr = 1e-3;
  config.warmup_steps = 10;
  config.lr_schedule = "cosine";
  EXPECT_DOUBLE_EQ(train::scheduled_lr(config, 0, 110), 1e-4);
  EXPECT_DOUBLE_EQ(train::scheduled_lr(config, 9, 110), 1e-3);
  EXPECT_DOUBLE_EQ(train::scheduled_lr(config, 10, 110), 1e-3);
  EXPECT_NEAR(train::scheduled_lr(config, 60, 110), 5e-4, 1e-15);
  EXPECT_NEAR(train::scheduled_lr(config, 110, 110), 0.0, 1e-18);
  config.lr_schedule = "constant";
  EXPECT_DOUBLE_EQ(train::scheduled_lr(config, 50, 110), 1e-3);
  // Configs written before the schedule and the prior existed still read (their defaults).
  std::string json = train::config_to_json(train::Config{});
  for (const char* key : {"lr_schedule", "warmup_steps", "tokenizer", "tokenizer_config",
                          "prior_width", "prior_layers", "prior_heads", "class_dropout"}) {
    const std::string quoted = std::string("\"") + key + "\":";
    const auto at = json.find(quoted);
    ASSERT_NE(at, std::string::npos) << key;
    const auto end = json.find_first_of(",}", json.find_first_of("\"0123456789tf", at + quoted.size()) + 1);
    json.erase(at - 1, end - at + 1);  // the leading comma and the pair
  }
  const train::Config old = train::config_from_json(json);
  EXPECT_EQ(old.lr_schedule, "constant");
  EXPECT_EQ(old.prior_width, 128);
}

#ifdef LATENT_CLI_PATH
TEST(PriorCli, TrainsOnATokenizerResumesAndSamples) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("latent-prior-cli-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  write_fashion_mnist_like((dir / "data").string(), test::smooth_images(64, 1),
                                 test::smooth_images(20, 2));
  const std::string data = " --quiet --data-dir " + (dir / "data").string();
  test::CliRun r = test::run_latent("train --model fsq --levels 5,4,3 --steps 3 --batch-size 16 "
                                    "--hidden-channels 4 --out " + (dir / "fsq").string() + data);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string tokenizer = (dir / "fsq" / "checkpoint.safetensors").string();
  const std::string prior_args = "train --model prior --tokenizer " + tokenizer +
                                 " --width 16 --layers 1 --heads 2 --batch-size 16 "
                                 "--lr-schedule cosine --warmup-steps 2 --grad-clip 1";
  // Straight through 6 steps, and 3 + 3 with a resume: the same final checkpoint.
  r = test::run_latent(prior_args + " --steps 6 --out " + (dir / "straight").string() + data);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("nll_bits_per_image"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unigram_bits_per_image"), std::string::npos) << r.output;
  r = test::run_latent(prior_args + " --steps 6 --checkpoint-every 3 --out " +
                       (dir / "first").string() + data);
  ASSERT_EQ(r.status, 0) << r.output;
  r = test::run_latent("train --resume " + (dir / "first" / "checkpoint-3.safetensors").string() +
                       " --out " + (dir / "resumed").string() + " --quiet");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto straight = load_safetensors((dir / "straight" / "checkpoint.safetensors").string());
  const auto resumed = load_safetensors((dir / "resumed" / "checkpoint.safetensors").string());
  ASSERT_EQ(straight.tensors.size(), resumed.tensors.size());
  for (std::size_t i = 0; i < straight.tensors.size(); ++i) {
    EXPECT_EQ(straight.tensors[i].first, resumed.tensors[i].first);
    EXPECT_TRUE(test::identical(straight.tensors[i].second, resumed.tensors[i].second))
        << straight.tensors[i].first;
  }
  // The prior's checkpoint carries its tokenizer: sampling needs nothing else.
  const std::string prior = (dir / "straight" / "checkpoint.safetensors").string();
  fs::remove_all(dir / "fsq");
  r = test::run_latent("sample --checkpoint " + prior + " -n 6 --class 2 --top-k 5 -o " +
                       (dir / "class2.png").string() + " --tokens-out " + (dir / "t.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir / "class2.png"));
  EXPECT_EQ(load_npy((dir / "t.npy").string()).shape(), (Shape{6, 7, 7}));
  r = test::run_latent("sample --checkpoint " + prior + " -n 20 -o " + (dir / "rows.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("20 samples (one row per class)"), std::string::npos) << r.output;
  r = test::run_latent("sample --checkpoint " + prior + " --class 10 -o " + (dir / "x.png").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("--class 10 is outside 0 to 9"), std::string::npos) << r.output;
  r = test::run_latent("train --model prior --steps 1" + data + " --out " + (dir / "none").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("needs --tokenizer"), std::string::npos) << r.output;
  r = test::run_latent("train --model prior --tokenizer " + prior + " --steps 1" + data +
                       " --out " + (dir / "wrong").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("must be a vqvae or fsq checkpoint"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

// `latent op attention|layer-norm|cross-entropy|embedding|gelu` give what the ops give.
TEST(PriorCli, OpsOnNpyFiles) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("latent-prior-ops-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto path = [&](const char* name) { return (dir / name).string(); };
  Generator gen(4);
  const Tensor qkv = uniform({2, 7, 24}, -1, 1, gen);
  const Tensor x = uniform({5, 8}, -2, 2, gen);
  const Tensor w = uniform({8}, 0.5, 1.5, gen), b = uniform({8}, -1, 1, gen);
  const Tensor targets = from_vector(std::vector<std::int32_t>{0, 7, 3, 3, 1}, {5});
  save_npy(path("qkv.npy"), qkv);
  save_npy(path("x.npy"), x);
  save_npy(path("w.npy"), w);
  save_npy(path("b.npy"), b);
  save_npy(path("t.npy"), targets);
  test::CliRun r = test::run_latent("op attention " + path("qkv.npy") + " --heads 2 -o " + path("a.npy"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::identical(load_npy(path("a.npy")), causal_self_attention(qkv, 2)));
  r = test::run_latent("op attention " + path("qkv.npy") + " --heads 2 --unfused -o " + path("u.npy"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_LT(max_abs_diff(load_npy(path("u.npy")), causal_self_attention(qkv, 2)), 1e-6);
  r = test::run_latent("op layer-norm " + path("x.npy") + " --weight " + path("w.npy") + " --bias " +
                       path("b.npy") + " -o " + path("ln.npy"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::identical(load_npy(path("ln.npy")), layer_norm(x, w, b)));
  r = test::run_latent("op cross-entropy " + path("x.npy") + " " + path("t.npy") + " -o " + path("ce.npy"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::identical(load_npy(path("ce.npy")), cross_entropy_rows(x, targets)));
  r = test::run_latent("op embedding " + path("x.npy") + " " + path("t.npy") + " -o " + path("e.npy"));
  EXPECT_EQ(r.status, 1);  // id 7 is outside the 5 rows
  EXPECT_NE(r.output.find("7"), std::string::npos) << r.output;
  r = test::run_latent("op gelu " + path("x.npy") + " -o " + path("g.npy"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(test::identical(load_npy(path("g.npy")), gelu(x)));
  r = test::run_latent("op attention " + path("qkv.npy") + " --heads 5 -o " + path("bad.npy"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("heads = 5"), std::string::npos) << r.output;
  fs::remove_all(dir);
}
#endif

}  // namespace
}  // namespace latent
