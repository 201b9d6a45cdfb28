// Reverse-mode autograd: record nodes as ops run, then walk them backwards.
#include "latent/autograd.h"

#include <unordered_map>
#include <unordered_set>

#include "core/tensor_impl.h"
#include "latent/ops.h"

namespace latent {
namespace {
thread_local bool grad_mode_enabled = true;
}  // namespace

bool grad_enabled() { return grad_mode_enabled; }

NoGradGuard::NoGradGuard() : previous_(grad_mode_enabled) { grad_mode_enabled = false; }
NoGradGuard::~NoGradGuard() { grad_mode_enabled = previous_; }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode_enabled) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::vector<Tensor> record(std::vector<Tensor> outputs, const char* op,
                           std::vector<Tensor> inputs, MultiBackwardFn backward) {
  if (!needs_grad(inputs)) return outputs;
  LATENT_CHECK(!outputs.empty(), "record: '", op, "' has no outputs");
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->num_outputs = outputs.size();
  node->backward = std::move(backward);
  for (std::size_t k = 0; k < outputs.size(); ++k) outputs[k].set_grad_fn(node, k);
  return outputs;
}

Tensor record(Tensor output, const char* op, std::vector<Tensor> inputs, BackwardFn backward) {
  auto take_first = [backward = std::move(backward)](const std::vector<Tensor>& dL_douts) {
    return backward(dL_douts[0]);
  };
  return record(std::vector<Tensor>{std::move(output)}, op, std::move(inputs),
                std::move(take_first))[0];
}

namespace {

// Nodes reachable from `root`, ordered so that every node comes before the nodes of its
// inputs (reverse post-order of an iterative depth-first search). The order holds strong
// references: releasing a node during backward drops its inputs, which may be the last
// owners of nodes that are still to be visited.
std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> post_order;
  std::unordered_set<Node*> visited{root.get()};
  std::vector<std::pair<std::shared_ptr<Node>, std::size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [node, next_input] = stack.back();
    if (next_input < node->inputs.size()) {
      const Tensor& input = node->inputs[next_input++];
      if (!input.defined()) continue;
      const std::shared_ptr<Node>& child = input.grad_fn();
      if (child && visited.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      post_order.push_back(node);
      stack.pop_back();
    }
  }
  return {post_order.rbegin(), post_order.rend()};
}

void accumulate_leaf(const Tensor& leaf, const Tensor& g) {
  LATENT_CHECK(g.shape() == leaf.shape(), "backward: gradient of shape ", shape_str(g.shape()),
               " for a leaf of shape ", shape_str(leaf.shape()));
  const Tensor existing = leaf.grad();
  // Leaf gradients are owned copies: optimizers and clipping may update them in place.
  leaf.set_grad(existing.defined() ? add(existing, g) : g.clone());
}

}  // namespace

void run_backward(const Tensor& root, const Tensor& dL_droot) {
  LATENT_CHECK(dL_droot.defined() && dL_droot.shape() == root.shape(),
               "backward: seed gradient shape must equal the output shape ",
               shape_str(root.shape()));
  LATENT_CHECK(dL_droot.dtype() == root.dtype() && dL_droot.device() == root.device(),
               "backward: seed gradient is ", dtype_name(dL_droot.dtype()), " on ",
               dL_droot.device().str(), ", the output ", shape_str(root.shape()), " is ",
               dtype_name(root.dtype()), " on ", root.device().str());
  LATENT_CHECK(root.requires_grad(),
               "backward: the tensor does not require a gradient and has no grad_fn");
  NoGradGuard no_grad;
  if (!root.grad_fn()) {
    accumulate_leaf(root, dL_droot);
    return;
  }
  // dL/d(output k of node) in pending[node][k]: undefined until a gradient arrives, then
  // the sum of the gradients that reached it, in arrival order.
  std::unordered_map<Node*, std::vector<Tensor>> pending;
  auto send = [&pending](const Tensor& output, const Tensor& g) {
    Node* producer = output.grad_fn().get();
    Tensor& slot = pending.try_emplace(producer, producer->num_outputs)
                       .first->second[output.output_index()];
    slot = slot.defined() ? add(slot, g) : g;
  };
  send(root, dL_droot);
  for (const std::shared_ptr<Node>& node : topological_order(root.grad_fn())) {
    LATENT_CHECK(!node->released, "backward: the graph through '", node->op,
                 "' was already freed by an earlier backward()");
    auto found = pending.find(node.get());
    if (found == pending.end()) continue;  // no gradient reached this node
    const std::vector<Tensor> dL_douts = std::move(found->second);
    pending.erase(found);
    std::vector<Tensor> grads = node->backward(dL_douts);
    LATENT_CHECK(grads.size() == node->inputs.size(), "backward of '", node->op, "' returned ",
                 grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (std::size_t i = 0; i < grads.size(); ++i) {
      const Tensor& input = node->inputs[i];
      const Tensor& g = grads[i];
      if (!input.defined() || !g.defined() || !input.requires_grad()) continue;
      LATENT_CHECK(g.shape() == input.shape(), "backward of '", node->op, "': gradient ", i,
                   " has shape ", shape_str(g.shape()), ", input has ",
                   shape_str(input.shape()));
      if (input.grad_fn()) {
        send(input, g);
      } else {
        accumulate_leaf(input, g);
      }
    }
    node->backward = nullptr;
    node->inputs.clear();
    node->released = true;
  }
}

}  // namespace latent
