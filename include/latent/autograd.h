// Reverse-mode automatic differentiation, small enough to read in one sitting.
//
// Every differentiable op that runs while gradients are enabled and has an input that
// requires a gradient records a Node: its inputs and a closure that maps dL/d(output) to
// dL/d(input) for each input. A node may have several outputs (reparameterize_kl makes z
// and kl in one kernel); each output tensor records its node and its index among the
// node's outputs, and the closure receives one dL/d(output) per output. Tensor::backward()
// sorts the nodes reachable from the output topologically, sums the gradients that reach
// each (node, output), runs every closure once from the output back to the leaves,
// accumulates into the leaves' .grad() with +=, and frees the graph (every visited node
// drops its closure and inputs) so a second backward through the same graph is an error,
// as in PyTorch.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "latent/tensor.h"

namespace latent {

// Given dL/d(output), returns dL/d(input) for every input, in order; an undefined Tensor
// means "no gradient flows to this input".
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& dL_dout)>;

// The same for a node with several outputs: dL_douts[k] is dL/d(output k), an undefined
// Tensor for an output that no gradient reached (at least one of them is defined).
using MultiBackwardFn =
    std::function<std::vector<Tensor>(const std::vector<Tensor>& dL_douts)>;

struct Node {
  std::string op;                // the op's name, for error messages and printing
  std::vector<Tensor> inputs;    // strong references keep the graph alive until backward
  std::size_t num_outputs = 1;   // the outputs refer to the node, not the node to them
  MultiBackwardFn backward;      // a one-output closure is wrapped to take dL_douts[0]
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

// Attaches one node to all `outputs` (output k gets index k) when needs_grad(inputs);
// returns outputs.
std::vector<Tensor> record(std::vector<Tensor> outputs, const char* op,
                           std::vector<Tensor> inputs, MultiBackwardFn backward);

// Runs backward from `root`, seeding dL/droot with `dL_droot` (same shape as root).
void run_backward(const Tensor& root, const Tensor& dL_droot);

}  // namespace latent
