// The subcommands of the latent tool; each add_* registers one with its options and the
// callback that runs it.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace latent::cli {

void add_train(CLI::App& app);  // train.cpp
void add_eval(CLI::App& app);   // train.cpp
void add_op(CLI::App& app);     // op.cpp
void add_sample(CLI::App& app);  // tokens.cpp
void add_encode(CLI::App& app);  // tokens.cpp
void add_decode(CLI::App& app);  // tokens.cpp
void add_info(CLI::App& app);    // info.cpp

// Writes one output of a `latent op` command and prints its path, dtype and shape. The rule
// for every op: inputs with NaN or Inf are rejected by the op, and a finite input whose
// result overflows the dtype (say a KL of μ = 1e30 in float32) is an error naming the output
// and the first non-finite element, so no op writes a NaN or Inf without saying so.
void save_op_output(const std::string& path, const Tensor& t);

// --levels L1,L2,...: whole numbers separated by commas, each written out ("8,,5", "8,5,"
// and "8,5x" are errors naming the option, not [8, 5]). The ops check the values.
CLI::Option* add_levels_option(CLI::App* cmd, std::vector<std::int64_t>* levels,
                               const std::string& help);

// `latent op` subcommands register themselves from their own files (op_*.cpp):
//   static const latent::cli::OpRegistration registration(add_my_ops);
// where add_my_ops(CLI::App* op) adds subcommands to `latent op`.
using OpAdder = void (*)(CLI::App* op);
struct OpRegistration {
  explicit OpRegistration(OpAdder adder);
};

}  // namespace latent::cli
