#include <CLI/CLI.hpp>
#include <iostream>
#include "latent/latent.h"
int main(int argc, char** argv) {
  CLI::App app{"latent"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
