// Shape ops as free functions, and concat.
#include "core/tensor_impl.h"
#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent {

Tensor reshape(const Tensor& x, const Shape& shape) { return x.reshape(shape); }

Tensor flatten(const Tensor& x, std::int64_t start_dim, std::int64_t end_dim) {
  return x.flatten(start_dim, end_dim);
}

Tensor concat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  LATENT_CHECK(!tensors.empty(), "concat: no tensors given");
  check_same_device_dtype("concat", tensors);
  const Tensor& first = tensors.front();
  const std::int64_t axis = normalize_dim(dim, first.dim(), "concat");
  Shape out_shape = first.shape();
  out_shape[axis] = 0;
  for (const Tensor& t : tensors) {
    LATENT_CHECK(t.dim() == first.dim(), "concat: ranks differ: ", shape_str(first.shape()),
                 " and ", shape_str(t.shape()));
    for (std::int64_t d = 0; d < t.dim(); ++d) {
      LATENT_CHECK(d == axis || t.shape()[d] == first.shape()[d], "concat: shapes ",
                   shape_str(first.shape()), " and ", shape_str(t.shape()),
                   " differ outside dimension ", axis);
    }
    out_shape[axis] += t.shape()[axis];
  }
  Tensor out = empty(out_shape, first.dtype(), first.device());
  std::vector<std::int64_t> sizes;
  {
    NoGradGuard no_grad;
    std::int64_t start = 0;
    for (const Tensor& t : tensors) {
      out.narrow(axis, start, t.shape()[axis]).copy_(t);
      start += t.shape()[axis];
      sizes.push_back(t.shape()[axis]);
    }
  }
  return record(out, "concat", tensors, [axis, sizes](const Tensor& g) {
    std::vector<Tensor> grads;
    std::int64_t start = 0;
    for (auto size : sizes) {
      grads.push_back(g.narrow(axis, start, size));
      start += size;
    }
    return grads;
  });
}

}  // namespace latent
