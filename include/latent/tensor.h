// Tensor: an n-dimensional view (shape, strides, offset) over shared storage on a device.
//
// A Tensor is a cheap handle: copying it shares the data, as in PyTorch. Views (reshape of a
// contiguous tensor, permute, transpose, narrow) share storage with their base; contiguous()
// and clone() copy. Every tensor records the autograd node that produced it (see autograd.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "latent/dtype.h"
#include "latent/error.h"

namespace latent {

using Shape = std::vector<std::int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 3, 4]"
std::int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// The element count of `shape`, validated: every size ≥ 0, the count itself and every
// contiguous stride (the product of the trailing sizes, a 0 counted as 1) inside int64,
// checked for every dimension whatever the order and whether or not one is 0. Otherwise a
// latent::Error naming `what` and the shape. Every tensor's shape passes through it; so do
// the file readers'.
std::int64_t checked_numel(const Shape& shape, const std::string& what = "tensor");

// Raw device memory, freed through the device's backend when the last tensor lets go.
class Storage {
 public:
  Storage(std::size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  std::size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_;
};

struct Node;
struct TensorImpl;

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }

  // ---- metadata
  const Shape& shape() const;
  const Shape& strides() const;
  std::int64_t offset() const;  // in elements
  std::int64_t dim() const;
  std::int64_t size(std::int64_t d) const;  // negative d counts from the end
  std::int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const;

  // ---- data access. data_ptr() points at element [0, 0, ...] of this view.
  void* data_ptr() const;
  template <class T>
  T* data() const;  // checks dtype; host pointer only on cpu
  template <class T>
  std::vector<T> to_vector() const;  // contiguous host copy, checks dtype
  template <class T>
  T item() const;  // numel must be 1; converts from the tensor's dtype
  double item() const;

  // ---- copies and conversion (differentiable where it makes sense)
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;

  // ---- views (differentiable)
  Tensor reshape(const Shape& shape) const;  // one -1 allowed; copies if not viewable
  Tensor flatten(std::int64_t start_dim = 0, std::int64_t end_dim = -1) const;
  Tensor permute(const std::vector<std::int64_t>& order) const;
  Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t end) const;
  Tensor unsqueeze(std::int64_t dim) const;
  Tensor squeeze(std::int64_t dim) const;

  // ---- in-place updates (not recorded by autograd; for optimizers and initializers)
  Tensor& copy_(const Tensor& src);  // shapes must match; dtype/device converted
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- autograd
  bool requires_grad() const;
  Tensor& requires_grad_(bool enabled = true);
  bool is_leaf() const;
  Tensor grad() const;  // undefined until a backward pass reaches this tensor
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;  // drops the gradient
  const std::shared_ptr<Node>& grad_fn() const;
  std::size_t output_index() const;  // which of grad_fn()'s outputs this tensor is
  void set_grad_fn(std::shared_ptr<Node> node, std::size_t output_index = 0) const;
  Tensor detach() const;  // same data, no history
  void backward() const;  // this tensor must hold one element
  void backward(const Tensor& dL_dthis) const;

  // ---- printing
  std::string str() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& tensor);

// ---- creation
Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
Tensor full(const Shape& shape, double value, DType dtype = DType::f32,
            Device device = Device::cpu());
Tensor arange(std::int64_t end, DType dtype = DType::f32, Device device = Device::cpu());
Tensor arange(double start, double end, double step, DType dtype = DType::f32,
              Device device = Device::cpu());
Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor scalar_tensor(double value, DType dtype = DType::f32, Device device = Device::cpu());

// Copies host values into a new tensor; numel(shape) must equal values.size().
template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape,
                   Device device = Device::cpu());
// Same, for a contiguous host buffer of the given dtype.
Tensor from_blob_copy(const void* data, const Shape& shape, DType dtype,
                      Device device = Device::cpu());

class Generator;
// Uniform in [0, 1) and standard normal, drawn from the generator's Philox stream.
Tensor rand(const Shape& shape, Generator& gen, DType dtype = DType::f32,
            Device device = Device::cpu());
Tensor randn(const Shape& shape, Generator& gen, DType dtype = DType::f32,
             Device device = Device::cpu());
Tensor uniform(const Shape& shape, double low, double high, Generator& gen,
               DType dtype = DType::f32, Device device = Device::cpu());

}  // namespace latent
