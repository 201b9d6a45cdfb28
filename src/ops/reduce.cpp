// Reductions (sum, mean), their adjoint (expand), sum_to and argmax.
#include <algorithm>
#include <cmath>

#include "backends/elementwise.h"
#include "backends/reduce.h"
#include "backends/registry.h"
#include "core/tensor_impl.h"
#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent {

Tensor expand(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  Tensor out = empty(shape, x.dtype(), x.device());
  if (out.numel() > 0) backend::lookup<backend::ElementwiseTable>(x.device()).copy(broadcast_view(x, shape), out);
  const Shape original = x.shape();
  return record(out, "expand", {x},
                [original](const Tensor& g) { return std::vector<Tensor>{sum_to(g, original)}; });
}

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  LATENT_CHECK(is_floating(x.dtype()), "sum: expected a floating tensor, got ",
               dtype_name(x.dtype()));
  std::vector<bool> reduced(x.dim(), dims.empty());
  for (auto d : dims) reduced[normalize_dim(d, x.dim(), "sum")] = true;
  Shape kept_shape = x.shape(), out_shape;
  for (std::int64_t d = 0; d < x.dim(); ++d) {
    if (reduced[d]) {
      kept_shape[d] = 1;
      if (keepdim) out_shape.push_back(1);
    } else {
      out_shape.push_back(x.shape()[d]);
    }
  }
  Tensor out = empty(kept_shape, x.dtype(), x.device());
  if (x.numel() == 0) {
    out.fill_(0.0);
  } else if (out.numel() > 0) {
    backend::lookup<backend::ReduceTable>(x.device()).sum(x, out);
  }
  out = make_view(out, out_shape, contiguous_strides(out_shape), 0);
  const Shape input_shape = x.shape();
  return record(out, "sum", {x}, [input_shape, kept_shape](const Tensor& g) {
    return std::vector<Tensor>{expand(g.reshape(kept_shape), input_shape)};
  });
}

Tensor sum(const Tensor& x) { return sum(x, {}, false); }

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  std::int64_t count = 1;
  if (dims.empty()) {
    count = x.numel();
  } else {
    std::vector<bool> seen(x.dim(), false);
    for (auto d : dims) {
      const auto axis = normalize_dim(d, x.dim(), "mean");
      if (!seen[axis]) count *= x.shape()[axis];
      seen[axis] = true;
    }
  }
  LATENT_CHECK(count > 0, "mean: reduction over zero elements of a tensor of shape ",
               shape_str(x.shape()));
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(count));
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  LATENT_CHECK(shape.size() <= x.shape().size(), "sum_to: cannot reduce ",
               shape_str(x.shape()), " to ", shape_str(shape));
  const std::size_t lead = x.shape().size() - shape.size();
  std::vector<std::int64_t> dims;
  for (std::size_t d = 0; d < x.shape().size(); ++d) {
    if (d < lead) {
      dims.push_back(static_cast<std::int64_t>(d));
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      dims.push_back(static_cast<std::int64_t>(d));
    } else {
      LATENT_CHECK(shape[d - lead] == x.shape()[d], "sum_to: cannot reduce ",
                   shape_str(x.shape()), " to ", shape_str(shape));
    }
  }
  return sum(x, dims, true).reshape(shape);
}

Tensor argmax(const Tensor& x, std::int64_t dim) {
  const std::int64_t axis = normalize_dim(dim, x.dim(), "argmax");
  LATENT_CHECK(x.numel() > 0, "argmax: empty tensor of shape ", shape_str(x.shape()));
  NoGradGuard no_grad;
  // Move the reduced axis last, then argmax over contiguous rows.
  std::vector<std::int64_t> order;
  for (std::int64_t d = 0; d < x.dim(); ++d)
    if (d != axis) order.push_back(d);
  order.push_back(axis);
  const Tensor rows = x.permute(order).contiguous().reshape({-1, x.shape()[axis]});
  Tensor out = empty({rows.shape()[0]}, DType::i32, x.device());
  backend::lookup<backend::ReduceTable>(x.device()).argmax_rows(rows, out);
  Shape out_shape = x.shape();
  out_shape.erase(out_shape.begin() + axis);
  return out.reshape(out_shape);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  LATENT_CHECK(a.shape() == b.shape(), "max_abs_diff: shapes ", shape_str(a.shape()), " and ",
               shape_str(b.shape()), " differ");
  NoGradGuard no_grad;
  const auto va = a.to(Device::cpu()).to(DType::f64).to_vector<double>();
  const auto vb = b.to(Device::cpu()).to(DType::f64).to_vector<double>();
  double worst = 0.0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double d = std::abs(va[i] - vb[i]);
    if (std::isnan(d)) return d;
    worst = std::max(worst, d);
  }
  return worst;
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape()) return false;
  NoGradGuard no_grad;
  const auto va = a.to(Device::cpu()).to(DType::f64).to_vector<double>();
  const auto vb = b.to(Device::cpu()).to(DType::f64).to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i) {
    if (!(std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i]))) return false;
  }
  return true;
}

}  // namespace latent
