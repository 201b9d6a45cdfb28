// Module: registration, hierarchical names, modes, device/dtype moves and checkpoints.
#include <algorithm>
#include <functional>
#include <map>
#include <sstream>
#include <unordered_set>

#include "core/tensor_impl.h"
#include "latent/autograd.h"
#include "latent/nn.h"

namespace latent::nn {

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}
Module::~Module() = default;

Tensor Module::forward(const Tensor& x) {
  LATENT_FAIL(type_name_, " has no forward(const Tensor&): call its own methods instead");
}

void Module::reset_parameters(Generator& gen) {
  for (auto& [name, child] : children_) child->reset_parameters(gen);
}

// ------------------------------------------------------------------ registration
void Module::check_new_name(const std::string& name, const char* what) const {
  LATENT_CHECK(!name.empty(), type_name_, ": cannot register a ", what, " with an empty name");
  LATENT_CHECK(name.find('.') == std::string::npos, type_name_, ": ", what, " name '", name,
               "' must not contain '.'");
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  LATENT_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), type_name_,
               ": the name '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name, "parameter");
  LATENT_CHECK(value.defined(), type_name_, ": parameter '", name, "' is undefined");
  LATENT_CHECK(is_floating(value.dtype()), type_name_, ": parameter '", name,
               "' must be float32 or float64, got ", dtype_name(value.dtype()));
  LATENT_CHECK(value.is_leaf(), type_name_, ": parameter '", name,
               "' must be a leaf tensor (detach() it first)");
  value.requires_grad_(requires_grad);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name, "buffer");
  LATENT_CHECK(value.defined(), type_name_, ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  LATENT_CHECK(module != nullptr, type_name_, ": module '", name, "' is null");
  LATENT_CHECK(module.get() != this, type_name_, ": a module cannot contain itself");
  children_.emplace_back(name, std::move(module));
}

// ------------------------------------------------------------------ traversal
template <class Visit>
void Module::visit_tensors(bool params, bool recurse, const std::string& prefix,
                           Visit&& visit) const {
  for (const auto& [name, t] : params ? parameters_ : buffers_) visit(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_)
    child->visit_tensors(params, true, prefix + name + ".", visit);
}

namespace {

NamedTensors distinct(NamedTensors all) {
  std::unordered_set<const TensorImpl*> seen;
  NamedTensors out;
  for (auto& entry : all)
    if (seen.insert(entry.second.impl()).second) out.push_back(std::move(entry));
  return out;
}

std::vector<Tensor> values_of(const NamedTensors& named) {
  std::vector<Tensor> out;
  out.reserve(named.size());
  for (const auto& entry : named) out.push_back(entry.second);
  return out;
}

}  // namespace

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors all;
  visit_tensors(true, recurse, "", [&](std::string n, const Tensor& t) { all.emplace_back(n, t); });
  return distinct(std::move(all));
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  return values_of(named_parameters(recurse));
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors all;
  visit_tensors(false, recurse, "", [&](std::string n, const Tensor& t) { all.emplace_back(n, t); });
  return distinct(std::move(all));
}

std::vector<Tensor> Module::buffers(bool recurse) const { return values_of(named_buffers(recurse)); }

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_children() const {
  return children_;
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& entry : children_) out.push_back(entry.second);
  return out;
}

std::int64_t Module::parameter_count() const {
  std::int64_t count = 0;
  for (const Tensor& p : parameters()) count += p.numel();
  return count;
}

// ------------------------------------------------------------------ modes and gradients
void Module::train(bool on) {
  training_ = on;
  for (auto& entry : children_) entry.second->train(on);
}

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.zero_grad();
}

// ------------------------------------------------------------------ moves
namespace {

// Points `t`'s handle (and so every other handle of the same tensor) at `src`'s data.
// Autograd state (requires_grad, grad) stays with the tensor.
void rebind(const Tensor& t, const Tensor& src) {
  TensorImpl* impl = t.impl();
  impl->storage = src.storage();
  impl->shape = src.shape();
  impl->strides = src.strides();
  impl->offset = src.offset();
  impl->dtype = src.dtype();
  impl->device = src.device();
}

// Computes every converted tensor first (the step that can fail), then rebinds them all.
void convert_all(const std::vector<Tensor>& tensors,
                 const std::function<Tensor(const Tensor&)>& convert) {
  NoGradGuard no_grad;
  std::vector<std::pair<Tensor, Tensor>> plan;  // (tensor, new data)
  std::vector<std::pair<Tensor, Tensor>> grads;  // (tensor, new gradient)
  for (const Tensor& t : tensors) {
    plan.emplace_back(t, convert(t.detach()));
    if (t.grad().defined()) grads.emplace_back(t, convert(t.grad().detach()));
  }
  for (auto& [t, data] : plan) rebind(t, data);
  for (auto& [t, g] : grads) t.set_grad(g);
}

}  // namespace

Module& Module::to(Device device) {
  std::vector<Tensor> all = parameters();
  for (const Tensor& b : buffers()) all.push_back(b);
  convert_all(all, [&](const Tensor& t) { return t.to(device); });
  return *this;
}

Module& Module::to(DType dtype) {
  LATENT_CHECK(is_floating(dtype), type_name_, ".to: parameters must be floating, asked for ",
               dtype_name(dtype));
  std::vector<Tensor> all = parameters();
  // Integer buffers (counters, codes) keep their dtype, as in PyTorch.
  for (const Tensor& b : buffers())
    if (is_floating(b.dtype())) all.push_back(b);
  convert_all(all, [&](const Tensor& t) { return t.to(dtype); });
  return *this;
}

// ------------------------------------------------------------------ checkpoints
NamedTensors Module::state_dict() const {
  NoGradGuard no_grad;
  NamedTensors out;
  auto snapshot = [&](std::string name, const Tensor& t) {
    out.emplace_back(std::move(name), t.detach().clone());
  };
  // Parameters, then buffers, per module, then the children: PyTorch's order.
  std::function<void(const Module&, const std::string&)> walk = [&](const Module& m,
                                                                     const std::string& prefix) {
    for (const auto& [name, t] : m.parameters_) snapshot(prefix + name, t);
    for (const auto& [name, t] : m.buffers_) snapshot(prefix + name, t);
    for (const auto& [name, child] : m.children_) walk(*child, prefix + name + ".");
  };
  walk(*this, "");
  return out;
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  // The model's tensors under every name (a tied tensor appears under each of its names).
  std::vector<std::pair<std::string, Tensor>> targets;
  std::function<void(const Module&, const std::string&)> walk = [&](const Module& m,
                                                                     const std::string& prefix) {
    for (const auto& [name, t] : m.parameters_) targets.emplace_back(prefix + name, t);
    for (const auto& [name, t] : m.buffers_) targets.emplace_back(prefix + name, t);
    for (const auto& [name, child] : m.children_) walk(*child, prefix + name + ".");
  };
  walk(*this, "");

  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state) {
    LATENT_CHECK(given.emplace(name, &t).second, "load_state_dict: the name '", name,
                 "' appears twice in the state");
    LATENT_CHECK(t.defined(), "load_state_dict: the tensor for '", name, "' is undefined");
  }
  std::vector<std::string> missing, unexpected;
  std::vector<std::pair<Tensor, const Tensor*>> copies;
  std::unordered_set<std::string> known;
  for (const auto& [name, target] : targets) {
    known.insert(name);
    auto found = given.find(name);
    if (found == given.end()) {
      missing.push_back(name);
      continue;
    }
    const Tensor& source = *found->second;
    LATENT_CHECK(source.shape() == target.shape(), "load_state_dict: shape mismatch for '", name,
                 "': the state has ", shape_str(source.shape()), ", the model has ",
                 shape_str(target.shape()));
    copies.emplace_back(target, found->second);
  }
  for (const auto& [name, t] : state)
    if (!known.count(name)) unexpected.push_back(name);
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::ostringstream msg;
    auto list = [&](const char* what, const std::vector<std::string>& names) {
      if (names.empty()) return;
      msg << " " << what << " (" << names.size() << "):";
      for (const auto& n : names) msg << " '" << n << "'";
      msg << ";";
    };
    list("missing from the state", missing);
    list("not in the model", unexpected);
    LATENT_FAIL("load_state_dict into ", type_name_, ":", msg.str());
  }
  {
    NoGradGuard no_grad;
    for (auto& [target, source] : copies) {
      Tensor dst = target;
      dst.copy_(*source);
    }
  }
  std::unordered_set<Module*> seen;
  std::function<void(Module&)> loaded = [&](Module& m) {
    if (!seen.insert(&m).second) return;
    m.on_state_loaded();
    for (const auto& [name, child] : m.children_) loaded(*child);
  };
  loaded(*this);
}

// ------------------------------------------------------------------ printing
std::string Module::str_indented(int indent) const {
  std::string out = type_name_ + "(" + extra_repr();
  if (children_.empty()) return out + ")";
  const std::string pad(static_cast<std::size_t>(indent + 2), ' ');
  out += "\n";
  for (const auto& [name, child] : children_)
    out += pad + "(" + name + "): " + child->str_indented(indent + 2) + "\n";
  return out + std::string(static_cast<std::size_t>(indent), ' ') + ")";
}

std::string Module::str() const { return str_indented(0); }

}  // namespace latent::nn
