// Optimizer base: the parameter list, the per-parameter state, step(), and checkpoints.
#include <cmath>
#include <map>
#include <unordered_set>

#include "latent/autograd.h"
#include "latent/optim.h"

namespace latent::optim {

Optimizer::Optimizer(std::vector<Tensor> params, double lr)
    : params_(std::move(params)), state_(params_.size()), lr_(lr) {
  LATENT_CHECK(!params_.empty(), "optimizer: got an empty parameter list");
  set_lr(lr);
  std::unordered_set<const void*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    LATENT_CHECK(p.defined(), "optimizer: parameter ", i, " is undefined");
    LATENT_CHECK(is_floating(p.dtype()), "optimizer: parameter ", i, " of shape ",
                 shape_str(p.shape()), " is ", dtype_name(p.dtype()), ", not floating");
    LATENT_CHECK(p.is_leaf(), "optimizer: parameter ", i, " of shape ", shape_str(p.shape()),
                 " is not a leaf tensor (it has a grad_fn)");
    LATENT_CHECK(seen.insert(p.impl()).second, "optimizer: parameter ", i, " of shape ",
                 shape_str(p.shape()), " appears more than once in the list");
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::set_lr(double lr) {
  LATENT_CHECK(lr >= 0.0 && std::isfinite(lr), "optimizer: invalid learning rate ", lr);
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (const Tensor& p : params_) p.zero_grad();
}

void Optimizer::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    LATENT_CHECK(g.device() == p.device() && g.dtype() == p.dtype(), name(),
                 ".step: the gradient of parameter ", i, " is ", dtype_name(g.dtype()), " on ",
                 g.device().str(), ", the parameter ", dtype_name(p.dtype()), " on ",
                 p.device().str());
    ParamState& state = state_[i];
    // The parameter may have been moved (Module::to) since its state was created.
    for (auto& [key, buffer] : state.buffers) {
      if (buffer.device() == p.device() && buffer.dtype() == p.dtype()) continue;
      Tensor moved = empty_like(p);
      moved.copy_(buffer);
      buffer = moved;
    }
    ++state.step;
    update(p, g, state);
  }
  ++step_count_;
}

// ------------------------------------------------------------------ checkpoints
NamedTensors Optimizer::state_dict() const {
  NoGradGuard no_grad;
  NamedTensors out;
  out.emplace_back("step", scalar_tensor(static_cast<double>(step_count_), DType::f64));
  out.emplace_back("lr", scalar_tensor(lr_, DType::f64));
  for (std::size_t i = 0; i < state_.size(); ++i) {
    const ParamState& s = state_[i];
    if (s.step == 0) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    out.emplace_back(prefix + "step", scalar_tensor(static_cast<double>(s.step), DType::f64));
    for (const auto& [key, buffer] : s.buffers) out.emplace_back(prefix + key, buffer.clone());
  }
  return out;
}

namespace {

// A count stored as a float64 scalar: a non-negative integer below 2^53.
std::int64_t read_count(const char* op, const std::string& name, const Tensor& t) {
  LATENT_CHECK(t.numel() == 1, op, ": '", name, "' must hold one value, got shape ",
               shape_str(t.shape()));
  const double v = t.item<double>();
  LATENT_CHECK(v >= 0.0 && v < 9007199254740992.0 && std::floor(v) == v, op, ": '", name,
               "' must be a non-negative integer, got ", v);
  return static_cast<std::int64_t>(v);
}

}  // namespace

void Optimizer::load_state_dict(const NamedTensors& state) {
  const std::string op_name = std::string(name()) + ".load_state_dict";
  const char* op = op_name.c_str();
  const std::vector<std::string> expected = buffer_names();
  std::map<std::string, Tensor> given;
  for (const auto& [key, t] : state) {
    LATENT_CHECK(t.defined(), op, ": the tensor for '", key, "' is undefined");
    LATENT_CHECK(given.emplace(key, t).second, op, ": '", key, "' appears twice");
  }
  LATENT_CHECK(given.count("step") && given.count("lr"), op,
               ": the state lacks 'step' or 'lr' (is it an optimizer state?)");
  const std::int64_t step_count = read_count(op, "step", given["step"]);
  LATENT_CHECK(given["lr"].numel() == 1, op, ": 'lr' must hold one value");
  const double lr = given["lr"].item<double>();
  LATENT_CHECK(lr >= 0.0 && std::isfinite(lr), op, ": invalid learning rate ", lr);

  // Parse "state.<i>.<key>" into per-parameter entries, then check each is complete.
  std::vector<std::map<std::string, Tensor>> per_param(params_.size());
  for (const auto& [key, t] : given) {
    if (key == "step" || key == "lr") continue;
    const std::string prefix = "state.";
    const auto dot = key.find('.', prefix.size());
    LATENT_CHECK(key.rfind(prefix, 0) == 0 && dot != std::string::npos, op,
                 ": unexpected name '", key, "'");
    const std::string index_text = key.substr(prefix.size(), dot - prefix.size());
    LATENT_CHECK(!index_text.empty() &&
                     index_text.find_first_not_of("0123456789") == std::string::npos &&
                     index_text.size() < 10,
                 op, ": unexpected name '", key, "'");
    const std::size_t index = std::stoul(index_text);
    LATENT_CHECK(index < params_.size(), op, ": '", key, "' refers to parameter ", index,
                 ", but the optimizer has ", params_.size(), " parameters");
    const std::string field = key.substr(dot + 1);
    bool known = field == "step";
    for (const auto& b : expected) known = known || field == b;
    LATENT_CHECK(known, op, ": unexpected name '", key, "' (", name(),
                 " has no state called '", field, "')");
    if (field != "step") {
      LATENT_CHECK(t.shape() == params_[index].shape(), op, ": shape mismatch for '", key,
                   "': the state has ", shape_str(t.shape()), ", the parameter has ",
                   shape_str(params_[index].shape()));
    }
    per_param[index][field] = t;
  }
  std::vector<ParamState> loaded(params_.size());
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& entries = per_param[i];
    if (entries.empty()) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    LATENT_CHECK(entries.count("step"), op, ": '", prefix, "step' is missing");
    for (const auto& b : expected)
      LATENT_CHECK(entries.count(b), op, ": '", prefix, b, "' is missing");
    loaded[i].step = read_count(op, prefix + "step", entries.at("step"));
    LATENT_CHECK(loaded[i].step > 0, op, ": '", prefix, "step' must be positive");
  }

  // Everything checked: commit, copying into owned tensors on the parameters' devices.
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    for (const auto& [field, t] : per_param[i]) {
      if (field == "step") continue;
      Tensor buffer = empty_like(params_[i]);
      buffer.copy_(t);
      loaded[i].buffers[field] = buffer;
    }
  }
  state_ = std::move(loaded);
  step_count_ = step_count;
  lr_ = lr;
}

}  // namespace latent::optim
