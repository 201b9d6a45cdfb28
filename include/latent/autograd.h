// Reverse-mode automatic differentiation, small enough to read in one sitting.
//
// Every differentiable op that runs while gradients are enabled and has an input that
// requires a gradient records a Node: its inputs and a closure that maps dL/d(output) to
// dL/d(input) for each input. Tensor::backward() sorts the nodes reachable from the output
// topologically, runs the closures from the output back to the leaves, accumulates into
// the leaves' .grad() with +=, and frees the graph (every visited node drops its closure and
// inputs) so a second backward through the same graph is an error, as in PyTorch.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "latent/tensor.h"

namespace latent {

// Given dL/d(output), returns dL/d(input) for every input, in order; an undefined Tensor
// means "no gradient flows to this input".
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& dL_dout)>;

struct Node {
  std::string op;                // the op's name, for error messages and printing
  std::vector<Tensor> inputs;    // strong references keep the graph alive until backward
  BackwardFn backward;
  bool released = false;         // set after backward has run through this node
};

bool grad_enabled();

// RAII scope in which no graph is recorded (PyTorch's torch.no_grad()).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when an op with these inputs must record a node.
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches a node to `output` when needs_grad(inputs); returns output.
Tensor record(Tensor output, const char* op, std::vector<Tensor> inputs, BackwardFn backward);

// Runs backward from `root`, seeding dL/droot with `dL_droot` (same shape as root).
void run_backward(const Tensor& root, const Tensor& dL_droot);

}  // namespace latent
