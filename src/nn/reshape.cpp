// Shape modules: Flatten, Unflatten and Reshape, all views through Tensor::reshape.
#include "core/tensor_impl.h"
#include "latent/nn.h"

namespace latent::nn {

Tensor Flatten::forward(const Tensor& x) { return x.flatten(start_dim, end_dim); }

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
}

Tensor Unflatten::forward(const Tensor& x) {
  const std::int64_t d = normalize_dim(dim, x.dim(), "Unflatten");
  Shape target(x.shape().begin(), x.shape().begin() + d);
  target.insert(target.end(), sizes.begin(), sizes.end());
  target.insert(target.end(), x.shape().begin() + d + 1, x.shape().end());
  std::int64_t known = 1, unknown = 0;
  for (auto s : sizes) {
    if (s == -1) ++unknown;
    else known *= s;
  }
  LATENT_CHECK(unknown <= 1, "Unflatten: more than one -1 in ", shape_str(sizes));
  LATENT_CHECK(unknown ? (known > 0 && x.shape()[d] % known == 0) : known == x.shape()[d],
               "Unflatten: dimension ", d, " of size ", x.shape()[d], " (input ",
               shape_str(x.shape()), ") cannot be split into ", shape_str(sizes));
  return x.reshape(target);
}

std::string Unflatten::extra_repr() const {
  return "dim=" + std::to_string(dim) + ", sizes=" + shape_str(sizes);
}

Tensor Reshape::forward(const Tensor& x) {
  LATENT_CHECK(x.dim() >= 1, "Reshape: expected a batch dimension, got a scalar");
  Shape target{x.shape()[0]};
  target.insert(target.end(), shape.begin(), shape.end());
  const Shape per_sample(x.shape().begin() + 1, x.shape().end());
  std::int64_t known = 1, unknown = 0;
  for (auto s : shape) {
    if (s == -1) ++unknown;
    else known *= s;
  }
  const std::int64_t have = shape_numel(per_sample);
  LATENT_CHECK(unknown <= 1 && (unknown ? (known > 0 && have % known == 0) : known == have),
               "Reshape: samples of shape ", shape_str(per_sample), " (", have,
               " elements) cannot be reshaped to ", shape_str(shape));
  return x.reshape(target);
}

std::string Reshape::extra_repr() const { return "shape=" + shape_str(shape); }

}  // namespace latent::nn
