// Optimizers: SGD (with momentum and Nesterov), Adam and AdamW, with PyTorch's update rules.
//
//   optim::Adam opt(model->parameters(), 1e-3);
//   for (...) {
//     opt.zero_grad();
//     Tensor loss = mse_loss(model->forward(x), y);
//     loss.backward();
//     opt.step();
//   }
//
// An optimizer holds the parameter tensors (handles sharing the module's tensors) and, per
// parameter, a state created lazily on the parameter's first update: a step count t and
// the buffers of its rule. step() updates every parameter that has a gradient, in place,
// under NoGradGuard and with tensor ops, so it runs on whatever device the parameters live
// on; parameters without a gradient are skipped (their state and t do not advance).
//
// Notation for one parameter p with gradient g at its t-th update (t = 1, 2, …):
//   SGD   d = g + λ·p;  b = d (t = 1), b = μ·b + d (t > 1);  d = d + μ·b (Nesterov) or b;
//         p = p − lr·d
//   Adam  g = g + λ·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
//         p = p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + ε)
//   AdamW p = p·(1 − lr·λ), then Adam's update with λ = 0 (decoupled weight decay)
//
// state_dict() is a snapshot (copies) of everything needed to resume bit-exactly:
//   "step"               float64 scalar, the number of step() calls
//   "lr"                 float64 scalar, the current learning rate
//   "state.<i>.step"     float64 scalar, t of parameter i (present once i was updated)
//   "state.<i>.<buffer>" the buffers of parameter i: "momentum_buffer" (SGD with μ ≠ 0),
//                        "exp_avg" and "exp_avg_sq" (Adam, AdamW)
// where i is the parameter's position in the list given to the constructor.
// load_state_dict() checks every name and shape before changing anything.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "latent/tensor.h"

namespace latent::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  // params: distinct, defined, floating leaf tensors. lr >= 0.
  Optimizer(std::vector<Tensor> params, double lr);
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  void zero_grad();  // drops every parameter's gradient
  void step();       // one update of every parameter that has a gradient

  double lr() const { return lr_; }
  void set_lr(double lr);
  std::int64_t step_count() const { return step_count_; }
  const std::vector<Tensor>& params() const { return params_; }

  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& state);

 protected:
  struct ParamState {
    std::int64_t step = 0;  // t: updates applied to this parameter; 0 = no state yet
    std::map<std::string, Tensor> buffers;  // created by update() at t = 1
  };
  // Updates one parameter; state.step has already been incremented to t.
  virtual void update(const Tensor& param, const Tensor& grad, ParamState& state) = 0;
  // The buffer names every initialized state of this optimizer holds.
  virtual std::vector<std::string> buffer_names() const = 0;
  virtual const char* name() const = 0;

 private:
  std::vector<Tensor> params_;
  std::vector<ParamState> state_;
  double lr_;
  std::int64_t step_count_ = 0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, double lr, double momentum = 0.0, double weight_decay = 0.0,
      bool nesterov = false);

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;
  const char* name() const override { return "SGD"; }

 private:
  double momentum_, weight_decay_;
  bool nesterov_;
};

struct Betas {
  double beta1 = 0.9;
  double beta2 = 0.999;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, double lr = 1e-3, Betas betas = {}, double eps = 1e-8,
       double weight_decay = 0.0);

 protected:
  Adam(const char* which, std::vector<Tensor> params, double lr, Betas betas, double eps,
       double weight_decay);
  // The Adam step with `l2` added to the gradient; AdamW calls it with l2 = 0.
  void adam_update(const Tensor& param, const Tensor& grad, ParamState& state, double l2);
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  std::vector<std::string> buffer_names() const override;
  const char* name() const override { return "Adam"; }

  Betas betas_;
  double eps_, weight_decay_;
  bool decoupled_ = false;  // AdamW
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, double lr = 1e-3, Betas betas = {}, double eps = 1e-8,
        double weight_decay = 1e-2);

 protected:
  void update(const Tensor& param, const Tensor& grad, ParamState& state) override;
  const char* name() const override { return "AdamW"; }
};

}  // namespace latent::optim
