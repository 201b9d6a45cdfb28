// The subcommands of the latent tool; each add_* registers one with its options and the
// callback that runs it.
#pragma once

#include <CLI/CLI.hpp>

namespace latent::cli {

void add_train(CLI::App& app);  // train.cpp
void add_eval(CLI::App& app);   // train.cpp
void add_op(CLI::App& app);     // op.cpp

}  // namespace latent::cli
