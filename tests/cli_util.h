// Running the real `latent` binary from a test: its exit status and everything it printed
// (stdout and stderr together). LATENT_CLI_PATH is set by tests/CMakeLists.txt when the tool
// is built.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace latent::test {

struct CliRun {
  int status = -1;
  std::string output;
};

// Runs a shell command line, stdout and stderr together.
inline CliRun run_command(const std::string& command_line) {
  const std::string command = command_line + " 2>&1";
  CliRun run;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) run.output += buffer;
  const int status = pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

#ifdef LATENT_CLI_PATH
inline CliRun run_latent(const std::string& args) {
  return run_command(std::string(LATENT_CLI_PATH) + " " + args);
}
// The same, run from the directory `dir` (for relative default paths such as runs/<model>).
inline CliRun run_latent_in(const std::string& dir, const std::string& args) {
  return run_command("cd '" + dir + "' && " + std::string(LATENT_CLI_PATH) + " " + args);
}
#endif

}  // namespace latent::test
