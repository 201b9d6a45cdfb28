// Tensor handles, storage, views, creation and printing.
#include "latent/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <ostream>
#include <sstream>

#include "backends/device.h"
#include "backends/elementwise.h"
#include "backends/random.h"
#include "backends/registry.h"
#include "core/tensor_impl.h"
#include "latent/autograd.h"
#include "latent/ops.h"
#include "latent/random.h"

namespace latent {

// ------------------------------------------------------------------ shapes
std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::int64_t shape_numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::int64_t checked_numel(const Shape& shape, const std::string& what) {
  // The contiguous strides are the products of the trailing sizes (a 0 counted as 1): each
  // must fit, and so must the element count itself (0 as soon as one size is 0).
  std::int64_t numel = 1, stride = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    const std::int64_t d = shape[i];
    LATENT_CHECK(d >= 0, what, ": negative size in shape ", shape_str(shape));
    LATENT_CHECK(!__builtin_mul_overflow(numel, d, &numel), what, ": shape ", shape_str(shape),
                 " is too large (more than 2^63 - 1 elements)");
    if (i > 0) {
      LATENT_CHECK(!__builtin_mul_overflow(stride, std::max<std::int64_t>(d, 1), &stride), what,
                   ": shape ", shape_str(shape), " is too large (its strides overflow int64)");
    }
  }
  return numel;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  std::int64_t s = 1;
  for (std::int64_t d = static_cast<std::int64_t>(shape.size()) - 1; d >= 0; --d) {
    strides[d] = s;
    // The outermost size multiplies into no stride (and may not fit with the others).
    if (d > 0) s *= std::max<std::int64_t>(shape[d], 1);
  }
  return strides;
}

std::int64_t normalize_dim(std::int64_t dim, std::int64_t rank, const char* op) {
  const std::int64_t d = dim < 0 ? dim + rank : dim;
  LATENT_CHECK(d >= 0 && d < rank, op, ": dimension ", dim,
               " out of range for a tensor of rank ", rank);
  return d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    LATENT_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ",
                 shape_str(b), " do not broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

void check_same_device_dtype(const char* op, const std::vector<Tensor>& tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (!first) {
      first = &t;
      continue;
    }
    LATENT_CHECK(t.device() == first->device(), op, ": tensors on different devices (",
                 first->device().str(), " ", shape_str(first->shape()), " and ",
                 t.device().str(), " ", shape_str(t.shape()), ")");
    LATENT_CHECK(t.dtype() == first->dtype(), op, ": dtype mismatch (",
                 dtype_name(first->dtype()), " ", shape_str(first->shape()), " and ",
                 dtype_name(t.dtype()), " ", shape_str(t.shape()), ")");
  }
}

// ------------------------------------------------------------------ storage
Storage::Storage(std::size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  data_ = backend::device_table(device).allocate(nbytes);
}

Storage::~Storage() {
  if (data_) backend::device_table(device_).deallocate(data_);
}

// ------------------------------------------------------------------ construction helpers
namespace {

std::shared_ptr<TensorImpl> new_impl(const Shape& shape, DType dtype, Device device) {
  const std::int64_t numel = checked_numel(shape, "tensor creation");
  std::int64_t nbytes = 0;
  LATENT_CHECK(!__builtin_mul_overflow(numel, static_cast<std::int64_t>(dtype_size(dtype)), &nbytes),
               "tensor creation: shape ", shape_str(shape), " of ", dtype_name(dtype),
               " is too large to address");
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  impl->device = device;
  impl->storage =
      std::make_shared<Storage>(static_cast<std::size_t>(nbytes),
                                device);
  return impl;
}

}  // namespace

Tensor make_view(const Tensor& base, Shape shape, Shape strides, std::int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  impl->device = base.device();
  return Tensor(std::move(impl));
}

Tensor broadcast_view(const Tensor& x, const Shape& shape) {
  const std::size_t rank = shape.size();
  LATENT_CHECK(x.shape().size() <= rank, "broadcast: cannot broadcast ", shape_str(x.shape()),
               " to ", shape_str(shape));
  Shape strides(rank, 0);
  const std::size_t lead = rank - x.shape().size();
  for (std::size_t i = 0; i < x.shape().size(); ++i) {
    const std::int64_t d = x.shape()[i];
    LATENT_CHECK(d == shape[lead + i] || d == 1, "broadcast: cannot broadcast ",
                 shape_str(x.shape()), " to ", shape_str(shape));
    strides[lead + i] = d == 1 ? 0 : x.strides()[i];
  }
  return make_view(x, shape, strides, x.offset());
}

// ------------------------------------------------------------------ metadata
const TensorImpl& Tensor::checked() const {
  LATENT_CHECK(impl_ != nullptr, "use of an undefined tensor");
  return *impl_;
}
const Shape& Tensor::shape() const { return checked().shape; }
const Shape& Tensor::strides() const { return checked().strides; }
std::int64_t Tensor::offset() const { return checked().offset; }
std::int64_t Tensor::dim() const { return static_cast<std::int64_t>(checked().shape.size()); }
std::int64_t Tensor::size(std::int64_t d) const {
  return shape()[normalize_dim(d, dim(), "size")];
}
std::int64_t Tensor::numel() const { return shape_numel(checked().shape); }
DType Tensor::dtype() const { return checked().dtype; }
Device Tensor::device() const { return checked().device; }
const std::shared_ptr<Storage>& Tensor::storage() const { return checked().storage; }

bool Tensor::is_contiguous() const {
  const auto& impl = checked();
  if (shape_numel(impl.shape) == 0) return true;  // no element: any layout is every layout
  std::int64_t expected = 1;
  for (std::int64_t d = dim() - 1; d >= 0; --d) {
    if (impl.shape[d] == 1) continue;
    if (impl.strides[d] != expected) return false;
    expected *= impl.shape[d];
  }
  return true;
}

void* Tensor::data_ptr() const {
  const auto& impl = checked();
  return static_cast<char*>(impl.storage->data()) +
         impl.offset * static_cast<std::int64_t>(dtype_size(impl.dtype));
}

template <class T>
T* Tensor::data() const {
  LATENT_CHECK(dtype() == dtype_of<T>(), "Tensor::data: tensor is ", dtype_name(dtype()),
               ", asked for ", dtype_name(dtype_of<T>()));
  return static_cast<T*>(data_ptr());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  LATENT_CHECK(dtype() == dtype_of<T>(), "Tensor::to_vector: tensor is ", dtype_name(dtype()),
               ", asked for ", dtype_name(dtype_of<T>()));
  NoGradGuard no_grad;
  const Tensor c = contiguous();
  std::vector<T> out(static_cast<std::size_t>(numel()));
  backend::device_table(device()).copy_to_host(out.data(), c.data_ptr(), out.size() * sizeof(T));
  return out;
}

template <class T>
T Tensor::item() const {
  LATENT_CHECK(numel() == 1, "Tensor::item: tensor of shape ", shape_str(shape()),
               " has ", numel(), " elements, expected 1");
  NoGradGuard no_grad;
  const Tensor c = to(dtype_of<T>());
  T value{};
  backend::device_table(device()).copy_to_host(&value, c.data_ptr(), sizeof(T));
  return value;
}

double Tensor::item() const { return item<double>(); }

template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template std::int32_t* Tensor::data<std::int32_t>() const;
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int32_t> Tensor::to_vector<std::int32_t>() const;
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template std::int32_t Tensor::item<std::int32_t>() const;

// ------------------------------------------------------------------ copies
Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  backend::lookup<backend::ElementwiseTable>(device()).copy(*this, out);
  return record(out, "clone", {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = empty(shape(), target, device());
  backend::lookup<backend::ElementwiseTable>(device()).copy(*this, out);
  if (!is_floating(target) || !is_floating(dtype())) return out;
  const DType source = dtype();
  return record(out, "to_dtype", {*this},
                [source](const Tensor& g) { return std::vector<Tensor>{g.to(source)}; });
}

Tensor Tensor::to(Device target) const {
  if (target == device()) return *this;
  const Tensor source = contiguous();
  Tensor out = empty(shape(), dtype(), target);
  const std::size_t nbytes = static_cast<std::size_t>(numel()) * dtype_size(dtype());
  if (device().is_cpu()) {
    backend::device_table(target).copy_from_host(out.data_ptr(), source.data_ptr(), nbytes);
  } else if (target.is_cpu()) {
    backend::device_table(device()).copy_to_host(out.data_ptr(), source.data_ptr(), nbytes);
  } else {
    std::vector<char> staging(nbytes);
    backend::device_table(device()).copy_to_host(staging.data(), source.data_ptr(), nbytes);
    backend::device_table(target).copy_from_host(out.data_ptr(), staging.data(), nbytes);
  }
  const Device from = device();
  return record(out, "to_device", {*this},
                [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
}

Tensor& Tensor::copy_(const Tensor& src) {
  LATENT_CHECK(src.shape() == shape(), "copy_: source shape ", shape_str(src.shape()),
               " differs from destination shape ", shape_str(shape()));
  NoGradGuard no_grad;
  Tensor source = src.device() == device() ? src : src.to(device());
  backend::lookup<backend::ElementwiseTable>(device()).copy(source, *this);
  return *this;
}

Tensor& Tensor::fill_(double value) {
  if (is_contiguous()) {
    backend::lookup<backend::ElementwiseTable>(device()).fill(*this, value);
  } else {
    copy_(full(shape(), value, dtype(), device()));
  }
  return *this;
}

// ------------------------------------------------------------------ views
Tensor Tensor::reshape(const Shape& requested) const {
  {
    Shape sizes = requested;  // every given size validated before any product is formed
    for (std::int64_t& d : sizes) d = d < 0 ? 1 : d;  // -1 and bad sizes: checked below
    checked_numel(sizes, "reshape");
  }
  Shape target = requested;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] == -1) {
      LATENT_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(requested));
      infer = static_cast<std::int64_t>(i);
    } else {
      LATENT_CHECK(target[i] >= 0, "reshape: invalid size in ", shape_str(requested));
      known *= target[i];
    }
  }
  if (infer >= 0) {
    LATENT_CHECK(known > 0 && numel() % known == 0, "reshape: cannot reshape ",
                 shape_str(shape()), " to ", shape_str(requested));
    target[infer] = numel() / known;
  }
  LATENT_CHECK(shape_numel(target) == numel(), "reshape: cannot reshape ", shape_str(shape()),
               " (", numel(), " elements) to ", shape_str(requested));
  const Tensor source = contiguous();
  Tensor out = make_view(source, target, contiguous_strides(target), source.offset());
  const Shape original = shape();
  return record(out, "reshape", {source},
                [original](const Tensor& g) { return std::vector<Tensor>{g.reshape(original)}; });
}

Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const std::int64_t s = normalize_dim(start_dim, dim(), "flatten");
  const std::int64_t e = normalize_dim(end_dim, dim(), "flatten");
  LATENT_CHECK(s <= e, "flatten: start_dim ", start_dim, " after end_dim ", end_dim);
  Shape target(shape().begin(), shape().begin() + s);
  std::int64_t merged = 1;
  for (std::int64_t d = s; d <= e; ++d) merged *= shape()[d];
  target.push_back(merged);
  target.insert(target.end(), shape().begin() + e + 1, shape().end());
  return reshape(target);
}

Tensor Tensor::permute(const std::vector<std::int64_t>& order) const {
  LATENT_CHECK(static_cast<std::int64_t>(order.size()) == dim(), "permute: order ",
               shape_str(order), " has ", order.size(), " entries for a tensor of shape ",
               shape_str(shape()));
  Shape new_shape(order.size()), new_strides(order.size());
  std::vector<std::int64_t> inverse(order.size(), -1);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::int64_t d = order[i] < 0 ? order[i] + dim() : order[i];
    LATENT_CHECK(d >= 0 && d < dim(), "permute: dimension ", order[i], " in order ",
                 shape_str(order), " out of range for a tensor of shape ", shape_str(shape()));
    LATENT_CHECK(inverse[d] < 0, "permute: dimension ", d, " repeated in order ",
                 shape_str(order), " for a tensor of shape ", shape_str(shape()));
    inverse[d] = static_cast<std::int64_t>(i);
    new_shape[i] = shape()[d];
    new_strides[i] = strides()[d];
  }
  Tensor out = make_view(*this, new_shape, new_strides, offset());
  return record(out, "permute", {*this},
                [inverse](const Tensor& g) { return std::vector<Tensor>{g.permute(inverse)}; });
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const {
  std::vector<std::int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_dim(dim0, dim(), "transpose")],
            order[normalize_dim(dim1, dim(), "transpose")]);
  return permute(order);
}

Tensor Tensor::t() const {
  LATENT_CHECK(dim() == 2, "t: expected a 2-D tensor, got shape ", shape_str(shape()));
  return transpose(0, 1);
}

Tensor Tensor::narrow(std::int64_t d, std::int64_t start, std::int64_t length) const {
  const std::int64_t axis = normalize_dim(d, dim(), "narrow");
  const std::int64_t extent = shape()[axis];
  if (start < 0) start += extent;
  LATENT_CHECK(start >= 0 && length >= 0 && start + length <= extent, "narrow: range [",
               start, ", ", start + length, ") outside dimension ", axis, " of size ", extent,
               " (shape ", shape_str(shape()), ")");
  Shape new_shape = shape();
  new_shape[axis] = length;
  Tensor out = make_view(*this, new_shape, strides(), offset() + start * strides()[axis]);
  const Shape original = shape();
  return record(out, "narrow", {*this}, [original, axis, start, length](const Tensor& g) {
    Tensor full_grad = zeros(original, g.dtype(), g.device());
    full_grad.narrow(axis, start, length).copy_(g);
    return std::vector<Tensor>{full_grad};
  });
}

Tensor Tensor::slice(std::int64_t d, std::int64_t start, std::int64_t end) const {
  const std::int64_t axis = normalize_dim(d, dim(), "slice");
  const std::int64_t extent = shape()[axis];
  if (start < 0) start += extent;
  if (end < 0) end += extent;
  end = std::min(end, extent);
  LATENT_CHECK(start >= 0 && start <= end, "slice: range [", start, ", ", end,
               ") invalid for dimension ", axis, " of size ", extent);
  return narrow(axis, start, end - start);
}

Tensor Tensor::unsqueeze(std::int64_t d) const {
  const std::int64_t axis = normalize_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + axis, 1);
  return reshape(s);
}

Tensor Tensor::squeeze(std::int64_t d) const {
  const std::int64_t axis = normalize_dim(d, dim(), "squeeze");
  LATENT_CHECK(shape()[axis] == 1, "squeeze: dimension ", axis, " of shape ",
               shape_str(shape()), " is not 1");
  Shape s = shape();
  s.erase(s.begin() + axis);
  return reshape(s);
}

// ------------------------------------------------------------------ autograd state
bool Tensor::requires_grad() const { return checked().requires_grad || checked().grad_fn; }
Tensor& Tensor::requires_grad_(bool enabled) {
  checked();
  LATENT_CHECK(!enabled || is_floating(dtype()),
               "requires_grad_: only floating tensors can require gradients, got ",
               dtype_name(dtype()));
  impl_->requires_grad = enabled;
  return *this;
}
bool Tensor::is_leaf() const { return checked().grad_fn == nullptr; }
Tensor Tensor::grad() const { return checked().grad; }
void Tensor::set_grad(const Tensor& g) const {
  checked();
  LATENT_CHECK(!g.defined() || g.shape() == shape(), "set_grad: gradient shape ",
               shape_str(g.shape()), " differs from tensor shape ", shape_str(shape()));
  impl_->grad = g;
}
void Tensor::zero_grad() const {
  checked();
  impl_->grad = Tensor();
}
const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked().grad_fn; }
std::size_t Tensor::output_index() const { return checked().output_index; }
void Tensor::set_grad_fn(std::shared_ptr<Node> node, std::size_t output_index) const {
  checked();
  impl_->grad_fn = std::move(node);
  impl_->output_index = output_index;
}
Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

void Tensor::backward() const {
  LATENT_CHECK(numel() == 1, "backward: called on a tensor of shape ", shape_str(shape()),
               "; only a scalar (one element) can seed backward without a gradient");
  run_backward(*this, ones(shape(), dtype(), device()));
}

void Tensor::backward(const Tensor& dL_dthis) const { run_backward(*this, dL_dthis); }

// ------------------------------------------------------------------ creation
Tensor empty(const Shape& shape, DType dtype, Device device) {
  return Tensor(new_impl(shape, dtype, device));
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (t.numel() > 0) backend::lookup<backend::ElementwiseTable>(device).fill(t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  return full(shape, 0.0, dtype, device);
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor scalar_tensor(double value, DType dtype, Device device) {
  return full({}, value, dtype, device);
}

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  LATENT_CHECK(step != 0.0, "arange: step must be nonzero");
  const double count = std::ceil((end - start) / step);
  const std::int64_t n = count > 0 ? static_cast<std::int64_t>(count) : 0;
  Tensor t = empty({n}, dtype, device);
  if (n > 0) backend::lookup<backend::ElementwiseTable>(device).arange(t, start, step);
  return t;
}
Tensor arange(std::int64_t end, DType dtype, Device device) {
  return arange(0.0, static_cast<double>(end), 1.0, dtype, device);
}

Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }

Tensor from_blob_copy(const void* data, const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  const std::size_t nbytes = static_cast<std::size_t>(t.numel()) * dtype_size(dtype);
  if (nbytes) backend::device_table(device).copy_from_host(t.data_ptr(), data, nbytes);
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  LATENT_CHECK(static_cast<std::int64_t>(values.size()) == shape_numel(shape),
               "from_vector: ", values.size(), " values for shape ", shape_str(shape), " (",
               shape_numel(shape), " elements)");
  return from_blob_copy(values.data(), shape, dtype_of<T>(), device);
}
template Tensor from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_vector<std::int32_t>(const std::vector<std::int32_t>&, const Shape&,
                                          Device);

Tensor uniform(const Shape& shape, double low, double high, Generator& gen, DType dtype,
               Device device) {
  LATENT_CHECK(is_floating(dtype), "uniform: dtype must be floating, got ", dtype_name(dtype));
  Tensor t = empty(shape, dtype, device);
  const PhiloxKey key = gen.next();
  if (t.numel() > 0) backend::lookup<backend::RandomTable>(device).uniform(t, key, low, high);
  return t;
}
Tensor rand(const Shape& shape, Generator& gen, DType dtype, Device device) {
  return uniform(shape, 0.0, 1.0, gen, dtype, device);
}
Tensor randn(const Shape& shape, Generator& gen, DType dtype, Device device) {
  LATENT_CHECK(is_floating(dtype), "randn: dtype must be floating, got ", dtype_name(dtype));
  Tensor t = empty(shape, dtype, device);
  const PhiloxKey key = gen.next();
  if (t.numel() > 0) backend::lookup<backend::RandomTable>(device).normal(t, key);
  return t;
}

// ------------------------------------------------------------------ printing
namespace {

void print_recursive(std::ostream& out, const std::vector<double>& values, const Shape& shape,
                     std::size_t dim, std::int64_t base, std::int64_t stride_elems,
                     bool integer, int indent) {
  const std::int64_t n = shape[dim];
  const std::int64_t inner = stride_elems / std::max<std::int64_t>(n, 1);
  const bool summarize = n > 8;
  out << '[';
  for (std::int64_t i = 0; i < n; ++i) {
    if (summarize && i == 3) {
      out << (dim + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
      i = n - 3;
    }
    if (dim + 1 == shape.size()) {
      char buf[32];
      if (integer)
        std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(values[base + i]));
      else
        std::snprintf(buf, sizeof buf, "%.5g", values[base + i]);
      out << buf;
    } else {
      print_recursive(out, values, shape, dim + 1, base + i * inner, inner, integer,
                      indent + 1);
    }
    if (i + 1 < n) out << (dim + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
  }
  out << ']';
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream out;
  const std::vector<double> values = to(DType::f64).detach().to_vector<double>();
  out << "tensor(";
  if (dim() == 0) {
    out << values[0];
  } else if (numel() == 0) {
    out << "[]";
  } else {
    print_recursive(out, values, shape(), 0, 0, numel(), dtype() == DType::i32, 7);
  }
  out << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype())
      << ", device=" << device().str();
  if (requires_grad()) out << ", requires_grad";
  out << ')';
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& tensor) { return out << tensor.str(); }

}  // namespace latent
