// Neural-network modules: the PyTorch-shaped layer on top of the tensor ops.
//
// A Module owns named parameters (tensors that require a gradient), named buffers (state
// that is saved but not trained, e.g. running statistics or an EMA codebook) and named
// child modules. Names compose with dots: a Sequential whose child "0" is a Linear has the
// parameters "0.weight" and "0.bias". Modules are held by std::shared_ptr and are not
// copyable (a copy would silently share or split their tensors).
//
//   latent::Generator gen(42);
//   auto model = std::make_shared<nn::Sequential>(
//       std::make_shared<nn::Linear>(784, 128, gen), std::make_shared<nn::ReLU>(),
//       std::make_shared<nn::Linear>(128, 10, gen, nn::LinearOptions{.bias = false}));
//   Tensor y = model->forward(x);
//
// Initialization draws from the latent::Generator given to the constructor (or to
// reset_parameters), so a model is reproducible from a seed; there is no global RNG.
// C++ leaves the evaluation order of one call's arguments to the compiler, so layers built
// inside a single call (as above) draw in a compiler-dependent order. For weights that are
// the same under every compiler, build layers in separate statements or call
// model->reset_parameters(gen), which visits the parameters in registration order.
// The defaults follow PyTorch: a weight w with fan_in inputs per output is drawn from
// kaiming_uniform(a = √5), i.e. U(−b, b) with
//     gain = √(2 / (1 + a²)) = √(1/3),   b = gain · √(3 / fan_in) = 1 / √fan_in,
// and the bias from U(−1/√fan_in, 1/√fan_in). fan_in is weight.size(1) · (kernel area):
// in_features for Linear, in_channels·kh·kw for Conv2d and — because ConvTranspose2d stores
// its weight as [in, out, kh, kw] — out_channels·kh·kw for ConvTranspose2d, as in PyTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "latent/dtype.h"
#include "latent/random.h"
#include "latent/tensor.h"

namespace latent::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// ------------------------------------------------------------------ Module
class Module {
 public:
  explicit Module(std::string type_name = "Module");
  virtual ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The computation. The base class throws: modules with another signature (several
  // inputs or outputs) define their own member functions instead.
  virtual Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }

  // Re-draws every parameter from `gen`: the base visits the children in registration
  // order; layers with parameters override it with their own initialization.
  virtual void reset_parameters(Generator& gen);

  // ---- registration. Names are non-empty, contain no '.', and are unique within the
  // module across parameters, buffers and children. Each returns what it registered.
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- traversal, in registration order: a module's own entries, then its children's.
  // A tensor or module reached under two names (weight tying) is listed once.
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const;
  std::vector<std::shared_ptr<Module>> children() const;
  std::int64_t parameter_count() const;  // elements over all (distinct) parameters

  // ---- modes and gradients
  void train(bool on = true);  // sets the mode of this module and all its descendants
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();  // drops every parameter's gradient (PyTorch's set_to_none=True)

  // Moves or converts every parameter and buffer in place: the tensors keep their identity
  // (an optimizer holding them keeps working) and their requires_grad; gradients move too.
  // All-or-nothing: on an error nothing has changed.
  Module& to(Device device);
  Module& to(DType dtype);

  // ---- checkpoints. state_dict() is a snapshot: detached copies of every parameter and
  // buffer under its full name. load_state_dict() copies values into the existing tensors
  // (converting dtype and device); with strict, a name missing from `state` or a name the
  // model lacks is an error. A shape mismatch is always an error. Everything is checked
  // before anything is written.
  // After the copies, every module of the tree gets on_state_loaded().
  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& state, bool strict = true);

  // ---- printing, in PyTorch's style: "Linear(in_features=4, out_features=2, bias=true)".
  const std::string& type_name() const { return type_name_; }
  virtual std::string extra_repr() const { return ""; }
  std::string str() const;

 protected:
  // Called by load_state_dict once its values are in place: a module that keeps something
  // about its tensors on the host (a cached flag, say) refreshes it here.
  virtual void on_state_loaded() {}

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  template <class Visit>
  void visit_tensors(bool params, bool recurse, const std::string& prefix, Visit&& visit) const;
  std::string str_indented(int indent) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors parameters_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// ------------------------------------------------------------------ initialization
namespace init {
// fan_in of a weight of rank >= 2: size(1) times the product of the dimensions after it.
std::int64_t fan_in(const Tensor& weight);
// Each fills `t` in place (shape, dtype, device and identity kept) with one draw from gen.
void uniform_(const Tensor& t, double low, double high, Generator& gen);
void normal_(const Tensor& t, double mean, double std, Generator& gen);
void zeros_(const Tensor& t);
// U(−b, b) with b = √(2 / (1 + a²)) · √(3 / fan_in(t))  (He et al., leaky-ReLU gain, fan-in mode).
void kaiming_uniform_(const Tensor& t, double a, Generator& gen);
}  // namespace init

// ------------------------------------------------------------------ layers
struct LinearOptions {
  bool bias = true;
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

// y = x · Wᵀ + b, with x [..., in_features], W [out_features, in_features], b [out_features].
class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen,
         LinearOptions options = {});
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator& gen) override;
  std::string extra_repr() const override;

  std::int64_t in_features, out_features;
  Tensor weight;  // [out_features, in_features]
  Tensor bias;    // [out_features], undefined when options.bias is false
};

// Options of Conv2d and ConvTranspose2d. Square kernels, strides and paddings.
struct ConvOptions {
  std::int64_t stride = 1;
  std::int64_t padding = 0;
  std::int64_t output_padding = 0;  // ConvTranspose2d only; must be < stride
  bool bias = true;
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

// y = conv2d(x, W) + b over NCHW input; W [out, in, k, k]. Output side
// (H + 2·padding − k) / stride + 1 (rounded down).
class Conv2d : public Module {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size,
         Generator& gen, ConvOptions options = {});
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator& gen) override;
  std::string extra_repr() const override;

  std::int64_t in_channels, out_channels, kernel_size, stride, padding;
  Tensor weight;  // [out_channels, in_channels, k, k]
  Tensor bias;    // [out_channels] or undefined
};

// The adjoint of Conv2d (the "deconvolution" of decoders); W [in, out, k, k] as PyTorch.
// Output side (H − 1)·stride − 2·padding + k + output_padding.
class ConvTranspose2d : public Module {
 public:
  ConvTranspose2d(std::int64_t in_channels, std::int64_t out_channels,
                  std::int64_t kernel_size, Generator& gen, ConvOptions options = {});
  Tensor forward(const Tensor& x) override;
  void reset_parameters(Generator& gen) override;
  std::string extra_repr() const override;

  std::int64_t in_channels, out_channels, kernel_size, stride, padding, output_padding;
  Tensor weight;  // [in_channels, out_channels, k, k]
  Tensor bias;    // [out_channels] or undefined
};

// ------------------------------------------------------------------ activations
class ReLU : public Module {  // max(x, 0)
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class LeakyReLU : public Module {  // x if x > 0 else slope·x
 public:
  explicit LeakyReLU(double negative_slope = 0.01)
      : Module("LeakyReLU"), negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  double negative_slope;
};

class SiLU : public Module {  // x · σ(x)
 public:
  SiLU() : Module("SiLU") {}
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public Module {  // 1 / (1 + e^−x)
 public:
  Sigmoid() : Module("Sigmoid") {}
  Tensor forward(const Tensor& x) override;
};

class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

class Identity : public Module {
 public:
  Identity() : Module("Identity") {}
  Tensor forward(const Tensor& x) override { return x; }
};

// ------------------------------------------------------------------ shape
// Merges dimensions start_dim..end_dim into one; the default keeps the batch dimension.
class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1)
      : Module("Flatten"), start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::int64_t start_dim, end_dim;
};

// Splits dimension `dim` into `sizes` (one -1 allowed): Unflatten(1, {64, 7, 7}) maps
// [N, 3136] to [N, 64, 7, 7].
class Unflatten : public Module {
 public:
  Unflatten(std::int64_t dim, Shape sizes)
      : Module("Unflatten"), dim(dim), sizes(std::move(sizes)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  std::int64_t dim;
  Shape sizes;
};

// Reshapes every sample, keeping the batch dimension (Keras' Reshape): [N, ...] becomes
// [N, shape...]; one -1 allowed in `shape`.
class Reshape : public Module {
 public:
  explicit Reshape(Shape shape) : Module("Reshape"), shape(std::move(shape)) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Shape shape;
};

// ------------------------------------------------------------------ containers
// Runs its children in order; they are named "0", "1", ….
class Sequential : public Module {
 public:
  Sequential() : Module("Sequential") {}
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  template <class... Ms>
    requires(sizeof...(Ms) > 0)
  explicit Sequential(std::shared_ptr<Ms>... modules)
      : Sequential(std::vector<std::shared_ptr<Module>>{std::move(modules)...}) {}

  void push_back(std::shared_ptr<Module> module);
  Tensor forward(const Tensor& x) override;
  std::size_t size() const { return layers_.size(); }
  const std::shared_ptr<Module>& operator[](std::size_t i) const;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// ------------------------------------------------------------------ utilities
// Rescales the gradients of `params` so that their global L2 norm
//     ‖g‖ = √(Σ_params Σ_elements g²)
// is at most max_norm: when ‖g‖ > max_norm every gradient is multiplied in place by
// max_norm / (‖g‖ + 1e-6), as torch.nn.utils.clip_grad_norm_. Parameters without a gradient
// are skipped. Returns ‖g‖ before clipping (accumulated in double); a NaN or infinite norm
// is returned and leaves the gradients untouched.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace latent::nn
