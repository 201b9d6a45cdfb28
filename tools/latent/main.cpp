// latent: the command-line tool. Subcommands train, eval, op, sample, encode, decode and
// info; each has --help with an example. Errors from the library print as
// "latent: error: …" with exit status 1.
#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <utility>
#include <map>
#include <set>
#include <string>
#include <iostream>

#include "latent/latent.h"
#include "tools/latent/commands.h"

namespace {

// Every numeric option, checked on its text before it is converted (CLI11 would wrap "-1"
// into an unsigned seed and saturate "99999999999999999999" into an int64): a value out of
// range is an error naming the option and the value, never a silent default or wrap-around.
void check_numbers(CLI::App* app) {
  // Whole numbers that multiply into tensor shapes and step counts: bounded, so that no
  // product overflows and a huge value is an error rather than a saturated one.
  static const std::map<std::string, std::pair<std::int64_t, std::int64_t>> integers = {
      {"--batch-size", {1, 1 << 20}},        {"--epochs", {0, 1'000'000'000}},
      {"--steps", {0, 1'000'000'000'000}},   {"--train-limit", {0, 1'000'000'000'000}},
      {"--test-limit", {0, 1'000'000'000'000}}, {"--checkpoint-every", {0, 1'000'000'000'000}},
      {"--log-every", {0, 1'000'000'000'000}}, {"--kl-warmup", {0, 1'000'000'000'000}},
      {"--kl-cycle", {0, 1'000'000'000'000}}, {"--hidden-channels", {1, 1 << 16}},
      {"--latent-channels", {1, 1 << 16}},   {"--latent-dim", {1, 1 << 20}},
      {"--codebook-size", {1, 1 << 30}},     {"--code-dim", {1, 1 << 20}},
      {"--stride", {1, 1 << 20}},            {"--padding", {0, 1 << 20}},
      {"--output-padding", {0, 1 << 20}},    {"-n", {1, 1 << 24}}};
  // Seeds and offsets are unsigned 64-bit whole numbers written out: "-1" must not wrap
  // around to 2^64 − 1, nor 1e20 or 99999999999999999999 saturate to it.
  static const std::set<std::string> unsigned_words = {"--seed", "--offset"};
  static const std::set<std::string> non_negative = {
      "--beta", "--free-bits", "--dead-code-threshold", "--reset-count",
      "--weight-decay", "--grad-clip", "--decay", "--temperature"};
  static const std::set<std::string> positive = {"--lr", "--epsilon"};
  auto number_at_least = [](bool strictly_positive) {
    return CLI::Validator(
        [strictly_positive](std::string& text) -> std::string {
          double v = 0.0;
          const bool parsed = CLI::detail::lexical_cast(text, v) && std::isfinite(v);
          if (parsed && (strictly_positive ? v > 0 : v >= 0)) return "";
          return std::string(strictly_positive ? "must be a positive number"
                                               : "must be a non-negative number") +
                 ", got '" + text + "'";
        },
        strictly_positive ? "POSITIVE" : "NONNEGATIVE");
  };
  const CLI::Validator unsigned_word(
      [](std::string& text) -> std::string {
        std::uint64_t v = 0;
        const char* last = text.data() + text.size();
        const auto [stop, error] = std::from_chars(text.data(), last, v);
        if (!text.empty() && error == std::errc() && stop == last) return "";
        return "must be a whole number from 0 to 18446744073709551615, got '" + text + "'";
      },
      "UINT64");
  auto check = [&](CLI::Option* option, const std::string& flag) {
    if (unsigned_words.count(flag)) option->check(unsigned_word);
    if (auto it = integers.find(flag); it != integers.end())
      option->check(CLI::Range(it->second.first, it->second.second));
    if (non_negative.count(flag)) option->check(number_at_least(false));
    if (positive.count(flag)) option->check(number_at_least(true));
  };
  for (CLI::Option* option : app->get_options()) {
    for (const std::string& name : option->get_lnames()) check(option, "--" + name);
    for (const std::string& name : option->get_snames()) check(option, "-" + name);
  }
  for (CLI::App* sub : app->get_subcommands({})) check_numbers(sub);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "latent: CUDA kernels and small convolutional models for image compression\n"
      "(autoencoders, VAEs, VQ-VAEs, FSQ) trained on Fashion-MNIST.\n\n"
      "Example:\n  latent train --model ae --epochs 1 --out runs/ae\n"
      "  latent eval --checkpoint runs/ae/checkpoint.safetensors"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "latent 0.1.0");
  latent::cli::add_train(app);
  latent::cli::add_eval(app);
  latent::cli::add_op(app);
  latent::cli::add_sample(app);
  latent::cli::add_encode(app);
  latent::cli::add_decode(app);
  latent::cli::add_info(app);
  check_numbers(&app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const latent::Error& e) {
    std::fprintf(stderr, "latent: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latent: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
