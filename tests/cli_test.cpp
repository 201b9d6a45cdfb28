// The latent command-line tool, run as a user runs it: train a few steps on a tiny
// generated dataset, resume, evaluate, run ops on .npy files, and fail cleanly on bad input.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli_util.h"
#include "tools/train/checkpoint.h"
#include "tools/train/train.h"
#include "latent/latent.h"
#include "tests/op_harness.h"
#include "tests/synthetic_data.h"

#ifdef LATENT_CLI_PATH

namespace {

namespace fs = std::filesystem;
using namespace latent;

using CommandResult = test::CliRun;
const auto run_cli = test::run_latent;

// Smooth random blobs in [0, 1] (tests/synthetic_data.h): enough structure for an
// autoencoder to learn.
using test::smooth_images;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("latent-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    write_fashion_mnist_like((dir_ / "data").string(), smooth_images(96, 1), smooth_images(40, 2));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string train_args(const std::string& out) const {
    return "train --model ae --steps 6 --batch-size 16 --hidden-channels 4 --latent-channels 2 "
           "--log-every 2 --quiet --data-dir " + (dir_ / "data").string() + " --out " +
           (dir_ / out).string();
  }

  fs::path dir_;
};

TEST_F(CliTest, HelpDescribesEverySubcommandWithAnExample) {
  const CommandResult top = run_cli("--help");
  EXPECT_EQ(top.status, 0);
  for (const char* word : {"train", "eval", "op", "Example"})
    EXPECT_NE(top.output.find(word), std::string::npos) << word;
  for (const char* sub : {"train", "eval", "op", "sample", "encode", "decode"}) {
    const CommandResult r = run_cli(std::string(sub) + " --help");
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_NE(r.output.find("Example"), std::string::npos) << sub;
  }
}

TEST_F(CliTest, TrainWritesCheckpointMetricsGridAndReportsTestMetrics) {
  const CommandResult r = run_cli(train_args("run") + " --checkpoint-every 3");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* file : {"checkpoint.safetensors", "checkpoint-3.safetensors", "metrics.jsonl",
                           "reconstructions.png"})
    EXPECT_TRUE(fs::exists(dir_ / "run" / file)) << file;
  std::ifstream metrics(dir_ / "run" / "metrics.jsonl");
  std::string line, last;
  int lines = 0;
  while (std::getline(metrics, line)) {
    ++lines;
    last = line;
  }
  EXPECT_EQ(lines, 4);  // steps 2, 4, 6 and the final summary
  EXPECT_NE(last.find("\"test_mse\""), std::string::npos);
  EXPECT_NE(last.find("\"test_psnr\""), std::string::npos);
  const Tensor grid = load_png((dir_ / "run" / "reconstructions.png").string());
  EXPECT_EQ(grid.size(0), 1);
  EXPECT_GT(grid.size(1), 28 * 2);
}

TEST_F(CliTest, ResumeGivesTheSameModelAsAnUninterruptedRun) {
  ASSERT_EQ(run_cli(train_args("straight") + " --checkpoint-every 3").status, 0);
  const std::string resume = (dir_ / "straight" / "checkpoint-3.safetensors").string();
  const CommandResult r = run_cli(train_args("resumed") + " --resume " + resume);
  ASSERT_EQ(r.status, 0) << r.output;
  const SafetensorsFile a = load_safetensors((dir_ / "straight" / "checkpoint.safetensors").string());
  const SafetensorsFile b = load_safetensors((dir_ / "resumed" / "checkpoint.safetensors").string());
  ASSERT_EQ(a.names(), b.names());
  for (const auto& [name, tensor] : a.tensors) {
    EXPECT_EQ(max_abs_diff(tensor, b.at(name)), 0.0) << name;  // bit-identical
  }
  EXPECT_EQ(a.metadata.at("step"), "6");
  EXPECT_EQ(b.metadata.at("step"), "6");
}

TEST_F(CliTest, EvalRecomputesTheFinalMetrics) {
  ASSERT_EQ(run_cli(train_args("run")).status, 0);
  const std::string grid = (dir_ / "eval.png").string();
  const CommandResult r = run_cli("eval --json --checkpoint " +
                                  (dir_ / "run" / "checkpoint.safetensors").string() + " --grid " + grid);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"test_mse\""), std::string::npos);
  EXPECT_NE(r.output.find("\"test_images\":40"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(grid));
}

TEST_F(CliTest, OpMatmulAndConv2dOnNpyFiles) {
  Generator gen(9);
  const Tensor a = randn({3, 5}, gen), b = randn({5, 2}, gen);
  save_npy((dir_ / "a.npy").string(), a);
  save_npy((dir_ / "b.npy").string(), b);
  CommandResult r = run_cli("op matmul " + (dir_ / "a.npy").string() + " " +
                            (dir_ / "b.npy").string() + " -o " + (dir_ / "c.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_LT(max_abs_diff(load_npy((dir_ / "c.npy").string()), matmul(a, b)), 1e-6);

  const Tensor x = randn({2, 3, 9, 9}, gen), w = randn({4, 3, 3, 3}, gen), bias = randn({4}, gen);
  save_npy((dir_ / "x.npy").string(), x);
  save_npy((dir_ / "w.npy").string(), w);
  save_npy((dir_ / "bias.npy").string(), bias);
  r = run_cli("op conv2d " + (dir_ / "x.npy").string() + " " + (dir_ / "w.npy").string() +
              " --bias " + (dir_ / "bias.npy").string() + " --stride 2 --padding 1 -o " +
              (dir_ / "y.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const Tensor expected = conv2d(x, w, bias, {2, 1});
  EXPECT_LT(max_abs_diff(load_npy((dir_ / "y.npy").string()), expected), 1e-5);
}

TEST_F(CliTest, TrainsOnTheCudaDevice) {
  // The GPU when there is one; in the default build the SIMT executor runs the same kernels.
  LATENT_SKIP_WITHOUT_CUDA();
  const CommandResult r = run_cli(
      "train --device cuda --steps 3 --batch-size 8 --hidden-channels 4 --latent-channels 2 "
      "--data-dir " + (dir_ / "data").string() + " --out " + (dir_ / "gpu").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("on cuda:0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("test MSE"), std::string::npos) << r.output;
  const CommandResult e = run_cli("eval --device cpu --checkpoint " +
                                  (dir_ / "gpu" / "checkpoint.safetensors").string());
  EXPECT_EQ(e.status, 0) << e.output;
}

TEST_F(CliTest, SampleAndTokensNeedTheRightKindOfModel) {
  ASSERT_EQ(run_cli(train_args("run")).status, 0);
  const std::string ckpt = (dir_ / "run" / "checkpoint.safetensors").string();
  CommandResult r = run_cli("sample --checkpoint " + ckpt + " -o " + (dir_ / "s.png").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("not a generative model"), std::string::npos) << r.output;
  save_npy((dir_ / "imgs.npy").string(), zeros({2, 1, 28, 28}));
  r = run_cli("encode --checkpoint " + ckpt + " " + (dir_ / "imgs.npy").string() + " -o " +
              (dir_ / "t.npy").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no discrete tokens"), std::string::npos) << r.output;
}

// The loss is read on logging steps only: a loss that turns NaN at step 2 stops the run at
// the logging step 3, naming step 2, before anything is logged or checkpointed.
TEST_F(CliTest, ANonFiniteLossStopsTheRunAtTheNextLoggingStep) {
  std::string args = train_args("nan") + " --lr 1e30";
  args.replace(args.find("--log-every 2"), 13, "--log-every 3");
  const CommandResult r = run_cli(args);
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("the loss became nan at step 2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "nan" / "checkpoint.safetensors"));
}

TEST_F(CliTest, BadInputFailsWithAClearMessage) {
  CommandResult r = run_cli("train --model nosuchmodel --data-dir " + (dir_ / "data").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("unknown model 'nosuchmodel'"), std::string::npos) << r.output;

  r = run_cli("train --steps 2 --data-dir " + (dir_ / "missing").string() + " --out " +
              (dir_ / "o").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("dataset-fashion-mnist"), std::string::npos) << r.output;

  r = run_cli("eval --checkpoint " + (dir_ / "nope.safetensors").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("nope.safetensors"), std::string::npos) << r.output;

  save_npy((dir_ / "a.npy").string(), ones({3, 5}));
  r = run_cli("op matmul " + (dir_ / "a.npy").string() + " " + (dir_ / "a.npy").string() +
              " -o " + (dir_ / "c.npy").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("matmul"), std::string::npos) << r.output;
}

}  // namespace

#endif  // LATENT_CLI_PATH

// --quiet silences the progress only: the results (test metrics, where the files are) still
// print; --silent prints nothing.
TEST_F(CliTest, QuietKeepsTheResultsAndSilentPrintsNothing) {
  CommandResult r = run_cli(train_args("quiet"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("test MSE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checkpoint: "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("latent train: model"), std::string::npos) << r.output;  // progress
  std::string silent = train_args("silent");
  silent.replace(silent.find("--quiet"), 7, "--silent");
  r = run_cli(silent);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
  EXPECT_TRUE(fs::exists(dir_ / "silent" / "checkpoint.safetensors"));
}

// The default folder names the model; a second fresh run into a folder that holds a run is
// an error naming the way out, unless --overwrite (a fresh metrics.jsonl) or --resume.
TEST_F(CliTest, TheOutputFolderNamesTheModelAndIsNeverMixed) {
  const std::string common = "--steps 2 --batch-size 16 --hidden-channels 4 --latent-channels 2 "
                             "--log-every 1 --quiet --data-dir " + (dir_ / "data").string();
  CommandResult r = test::run_latent_in(dir_.string(), "train --model ae " + common);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "ae" / "checkpoint.safetensors"));
  r = test::run_latent_in(dir_.string(), "train --model vae " + common);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "vae" / "checkpoint.safetensors"));

  r = test::run_latent_in(dir_.string(), "train --model ae " + common);
  EXPECT_EQ(r.status, 1) << r.output;
  for (const char* part : {"runs/ae already holds a run", "--resume", "--overwrite"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;

  r = test::run_latent_in(dir_.string(), "train --model ae --overwrite " + common);
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream metrics(dir_ / "runs" / "ae" / "metrics.jsonl");
  int finals = 0, lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines)
    finals += line.find("\"event\":\"final\"") != std::string::npos;
  EXPECT_EQ(finals, 1);  // the old run's lines are gone
  EXPECT_EQ(lines, 3);   // steps 1, 2 and the final line

  // Resuming into the run's own folder appends to it.
  std::string longer = common;
  longer.replace(longer.find("--steps 2"), 9, "--steps 3");
  r = test::run_latent_in(dir_.string(),
                          "train --resume runs/ae/checkpoint.safetensors --out runs/ae " + longer);
  ASSERT_EQ(r.status, 0) << r.output;
}

// eval prints what metrics.jsonl holds, at the same precision; --json prints the same keys
// as one JSON line.
TEST_F(CliTest, EvalPrintsTheMetricsAtFullPrecision) {
  ASSERT_EQ(run_cli(train_args("run")).status, 0);
  std::ifstream metrics(dir_ / "run" / "metrics.jsonl");
  std::string line, final_line;
  while (std::getline(metrics, line)) final_line = line;
  const nlohmann::json logged = nlohmann::json::parse(final_line);
  const std::string ckpt = (dir_ / "run" / "checkpoint.safetensors").string();

  CommandResult r = run_cli("eval --checkpoint " + ckpt);
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* key : {"test_mse", "test_psnr"}) {
    const std::string expected = logged.at(key).dump();  // the shortest exact decimal form
    EXPECT_NE(r.output.find(std::string(key)), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(expected), std::string::npos) << key << " " << expected << "\n"
                                                          << r.output;
  }
  r = run_cli("eval --json --checkpoint " + ckpt);
  ASSERT_EQ(r.status, 0) << r.output;
  const nlohmann::json printed = nlohmann::json::parse(r.output);
  EXPECT_EQ(printed.at("test_mse"), logged.at("test_mse"));
  EXPECT_EQ(printed.at("test_psnr"), logged.at("test_psnr"));
  EXPECT_EQ(printed.at("test_images"), logged.at("test_images"));
  EXPECT_EQ(printed.at("step"), 6);
}

// A 2-level channel of the asymmetric FSQ level sets collapses: an error with the reason and
// the fix. NaN handling is one rule for every op: an error naming the op and the position.
TEST_F(CliTest, CollapsingFsqLevelsAndNaNInputsAreClearErrors) {
  CommandResult r = run_cli("train --model fsq --levels 8,2,5 --steps 1 --quiet --data-dir " +
                            (dir_ / "data").string() + " --out " + (dir_ / "fsq").string());
  EXPECT_EQ(r.status, 1) << r.output;
  for (const char* part : {"level 2 of channel 1", "collapses", "--symmetric", "L >= 3"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  r = run_cli("train --model fsq --symmetric --levels 8,2,5 --steps 1 --batch-size 16 "
              "--hidden-channels 4 --quiet --data-dir " + (dir_ / "data").string() + " --out " +
              (dir_ / "fsq-symmetric").string());
  EXPECT_EQ(r.status, 0) << r.output;

  save_npy((dir_ / "z.npy").string(),
           from_vector<float>({0.1f, 0.2f, 0.3f, NAN, 0.5f, 0.6f}, {2, 3}));
  const std::vector<std::string> ops = {
      "op fsq " + (dir_ / "z.npy").string() + " --levels 8,5,5 -o " + (dir_ / "o.npy").string(),
      "op kl " + (dir_ / "z.npy").string() + " " + (dir_ / "z.npy").string() + " -o " +
          (dir_ / "o.npy").string(),
      "op vq " + (dir_ / "z.npy").string() + " " + (dir_ / "z.npy").string() + " -o " +
          (dir_ / "o.npy").string()};
  for (const std::string& op : ops) {
    r = run_cli(op);
    EXPECT_EQ(r.status, 1) << op << "\n" << r.output;
    EXPECT_TRUE(r.output.find("NaN") != std::string::npos ||
                r.output.find("nan") != std::string::npos)
        << op << "\n" << r.output;
  }
  r = run_cli(ops[0]);
  EXPECT_NE(r.output.find("fsq_quantize"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("element 3"), std::string::npos) << r.output;
}

// Every numeric option is checked on its text: a negative seed does not wrap, a huge batch
// size does not saturate, a negative β or limit is not a sentinel; each names the option and
// the value.
TEST_F(CliTest, OutOfRangeNumbersAreErrorsNamingTheOptionAndValue) {
  const std::string data = " --data-dir " + (dir_ / "data").string() + " --out " +
                           (dir_ / "never").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train --seed -1",
       "--seed: must be a whole number from 0 to 18446744073709551615, got '-1'"},
      {"train --model vae --beta -1", "--beta: must be a non-negative number, got '-1'"},
      {"train --batch-size 99999999999999999999", "--batch-size: Value 99999999999999999999"},
      {"train --steps 4x", "--steps: Value 4x"},
      {"train --lr nan", "--lr: must be a positive number, got 'nan'"},
      {"train --test-limit -1", "--test-limit: Value -1"},
  };
  for (const auto& [args, message] : cases) {
    const CommandResult r = run_cli(args + data);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(dir_ / "never"));
  const CommandResult e = run_cli("eval --test-limit -1 --checkpoint x.safetensors");
  EXPECT_NE(e.output.find("--test-limit: Value -1"), std::string::npos) << e.output;
  const CommandResult o = run_cli("op ema a.npy b.npy --dead-code-threshold -1 --count-out c.npy"
                                  " --sum-out d.npy");
  EXPECT_NE(o.output.find("--dead-code-threshold: must be a non-negative number"),
            std::string::npos)
      << o.output;
}

// A checkpoint's config reads back exactly or not at all: a missing or unknown key, or a
// value of another type, is an error naming the key (one flipped bit in "batch_size" must not
// revert a resumed run to the default).
TEST(TrainConfig, StrictJsonNamesTheKey) {
  const std::string good = train::config_to_json(train::Config{});
  EXPECT_EQ(train::config_to_json(train::config_from_json(good)), good);
  auto edited = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  EXPECT_LATENT_ERROR(train::config_from_json(edited("\"batch_size\"", "\"batch_sizf\"")),
                      "unknown key 'batch_sizf'");
  EXPECT_LATENT_ERROR(train::config_from_json(edited("\"batch_size\":128,", "")),
                      "missing key 'batch_size'");
  EXPECT_LATENT_ERROR(train::config_from_json(edited("\"batch_size\":128", "\"batch_size\":4.5")),
                      "'batch_size' must be an integer", "4.5");
  EXPECT_LATENT_ERROR(train::config_from_json(edited("\"seed\":0", "\"seed\":-1")),
                      "'seed' must be a non-negative integer");
  EXPECT_LATENT_ERROR(train::config_from_json(edited("\"ema\":false", "\"ema\":0")),
                      "'ema' must be true or false");
  EXPECT_LATENT_ERROR(train::config_from_json("[1, 2]"), "expected a JSON object");
}

// The loader's state in a checkpoint's metadata reads back exactly or not at all: a negative
// seed does not wrap into an unsigned one, a fraction is not truncated, a key is not optional.
TEST_F(CliTest, CheckpointLoaderStateIsStrict) {
  const std::string path = (dir_ / "edited.safetensors").string();
  auto read_with_loader = [&](const std::string& loader) {
    save_safetensors(path, {{"model.w", zeros({2})}},
                     {{"format", "latent-checkpoint/1"}, {"model", "ae"},
                      {"config", train::config_to_json(train::Config{})}, {"step", "3"},
                      {"loader", loader}});
    return train::read_checkpoint(path);
  };
  const train::Checkpoint c = read_with_loader(
      R"({"seed":18446744073709551615,"epoch_offset":2,"epoch":1,"position":16,"dataset_size":64})");
  EXPECT_EQ(c.loader.seed, 18446744073709551615ull);
  EXPECT_EQ(c.loader.position, 16);
  EXPECT_LATENT_ERROR(read_with_loader(
      R"({"seed":-1,"epoch_offset":0,"epoch":0,"position":0,"dataset_size":64})"),
                      "loader 'seed' must be a non-negative whole number, got -1");
  EXPECT_LATENT_ERROR(read_with_loader(
      R"({"seed":0,"epoch_offset":-1,"epoch":0,"position":0,"dataset_size":64})"),
                      "loader 'epoch_offset'");
  EXPECT_LATENT_ERROR(read_with_loader(
      R"({"seed":0,"epoch_offset":0,"epoch":0.5,"position":0,"dataset_size":64})"),
                      "loader 'epoch'", "0.5");
  EXPECT_LATENT_ERROR(read_with_loader(
      R"({"seed":0,"epoch_offset":0,"epoch":9223372036854775808,"position":0,"dataset_size":64})"),
                      "loader 'epoch' is out of range");
  EXPECT_LATENT_ERROR(read_with_loader(
      R"({"seed":0,"epoch_offset":0,"epoch":0,"position":65,"dataset_size":64})"),
                      "position 65 is past the dataset's 64 images");
  EXPECT_LATENT_ERROR(read_with_loader(R"({"seed":0,"epoch_offset":0,"epoch":0,"position":0})"),
                      "exactly the keys");
}

// Seeds are unsigned 64-bit whole numbers written out; --levels is whole numbers separated by
// commas, none of them empty.
TEST_F(CliTest, SeedsAndLevelsAreReadExactly) {
  const std::string data = " --data-dir " + (dir_ / "data").string() + " --out " +
                           (dir_ / "never").string();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"train --seed 99999999999999999999", "--seed: must be a whole number from 0 to "
                                            "18446744073709551615, got '99999999999999999999'"},
      {"train --seed 1e20", "got '1e20'"},
      {"train --seed 7.5", "got '7.5'"},
      {"train --model fsq --levels 8,,5", "--levels: expected whole numbers separated by "
                                          "commas (e.g. 8,5,5,5), got '8,,5'"},
      {"train --model fsq --levels 8,5,", "got '8,5,'"},
      {"train --model fsq --levels 8,5x", "got '8,5x'"},
  };
  for (const auto& [args, message] : cases) {
    const CommandResult r = run_cli(args + data);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(dir_ / "never"));
  const CommandResult o = run_cli("op reparam mu.npy lv.npy --offset 18446744073709551616 -o z.npy");
  EXPECT_NE(o.output.find("--offset: must be a whole number"), std::string::npos) << o.output;
}

// A resumed run continues the run that was saved: its step target and intervals come from the
// checkpoint unless named; the lines the interrupted run logged after the checkpoint's step
// are dropped; stale temporary files of latent's own atomic writes are cleaned.
TEST_F(CliTest, ResumeContinuesTheSavedRunAndLogsEachStepOnce) {
  std::string args = train_args("whole") + " --checkpoint-every 3";
  args.replace(args.find("--log-every 2"), 13, "--log-every 1");
  ASSERT_EQ(run_cli(args).status, 0);
  // An interruption after step 5: a copy of the folder with the lines of steps 1–5 and a stale
  // temporary file from a writer that no longer exists.
  fs::create_directories(dir_ / "cut");
  fs::copy_file(dir_ / "whole" / "checkpoint-3.safetensors", dir_ / "cut" / "checkpoint-3.safetensors");
  {
    std::ifstream in(dir_ / "whole" / "metrics.jsonl");
    std::ofstream out(dir_ / "cut" / "metrics.jsonl");
    std::string line;
    for (int i = 0; i < 5 && std::getline(in, line); ++i) out << line << "\n";
    out << "{\"step\": 6, \"lo";  // cut mid-line
  }
  std::ofstream(dir_ / "cut" / ".checkpoint.safetensors.tmp.2147483646.0") << "partial";
  const CommandResult r = run_cli("train --quiet --resume " +
                                  (dir_ / "cut" / "checkpoint-3.safetensors").string() +
                                  " --data-dir " + (dir_ / "data").string() + " --out " +
                                  (dir_ / "cut").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(fs::exists(dir_ / "cut" / ".checkpoint.safetensors.tmp.2147483646.0"));
  const SafetensorsFile a = load_safetensors((dir_ / "whole" / "checkpoint.safetensors").string());
  const SafetensorsFile b = load_safetensors((dir_ / "cut" / "checkpoint.safetensors").string());
  EXPECT_EQ(b.metadata.at("step"), "6");  // the saved target, not the command-line default
  for (const auto& [name, tensor] : a.tensors) EXPECT_EQ(max_abs_diff(tensor, b.at(name)), 0.0) << name;
  std::ifstream metrics(dir_ / "cut" / "metrics.jsonl");
  std::map<std::int64_t, int> logged;
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);  // every line whole
    if (!j.contains("event")) ++logged[j.at("step").get<std::int64_t>()];
  }
  for (std::int64_t step = 1; step <= 6; ++step) EXPECT_EQ(logged[step], 1) << "step " << step;
}

TEST_F(CliTest, AnUnwritableOutputFolderFailsFirst) {
  const CommandResult r = run_cli("train --steps 1 --data-dir " + (dir_ / "missing").string() +
                                  " --out /proc/latent-cannot-write-here");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("cannot create the output folder /proc/latent-cannot-write-here"),
            std::string::npos)
      << r.output;  // reported before the (missing) dataset is even looked for
}

// One rule for overflow: an op's finite inputs whose result does not fit the dtype are an
// error naming the output and the element, and nothing is written.
TEST_F(CliTest, AnOpWhoseResultOverflowsWritesNothing) {
  save_npy((dir_ / "mu.npy").string(), from_vector<float>({0.5f, 1e30f, 0.0f, 1.0f}, {2, 2}));
  save_npy((dir_ / "lv.npy").string(), zeros({2, 2}));
  const std::string out = (dir_ / "kl.npy").string();
  const CommandResult r = run_cli("op kl " + (dir_ / "mu.npy").string() + " " +
                                  (dir_ / "lv.npy").string() + " -o " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  for (const char* part : {"kl.npy", "would hold inf at element 0", "overflows float32",
                           "nothing was written"})
    EXPECT_NE(r.output.find(part), std::string::npos) << part << "\n" << r.output;
  EXPECT_FALSE(fs::exists(out));
}
