// latent: the command-line tool. Subcommands train, eval and op; each has --help with an
// example. Errors from the library print as "latent: error: …" with exit status 1.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "latent/latent.h"
#include "tools/latent/commands.h"

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
