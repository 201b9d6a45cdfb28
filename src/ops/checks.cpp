#include "ops/checks.h"

#include "backends/check.h"
#include "backends/registry.h"
#include "latent/autograd.h"

namespace latent::backend {

double element_at(const Tensor& t, std::int64_t position) {
  NoGradGuard no_grad;
  return t.detach().reshape({-1}).narrow(0, position, 1).to(DType::f64).item<double>();
}

}  // namespace latent::backend

namespace latent::ops {

void check_finite(const Tensor& x, const std::string& what) {
  if (x.numel() == 0) return;
  const Tensor data = x.detach().contiguous();
  const std::string prefix = what + " " + shape_str(x.shape());
  backend::lookup<backend::CheckTable>(data.device())
      .finite(data, [data, prefix](std::int64_t i) {
        return detail::concat(prefix, " holds a non-finite value (",
                              backend::element_at(data, i), ") at element ", i);
      });
}

void check_index_range(const Tensor& indices, std::int64_t low, std::int64_t high,
                       const std::string& prefix, const std::string& suffix) {
  if (indices.numel() == 0) return;
  const Tensor data = indices.contiguous();
  backend::lookup<backend::CheckTable>(data.device())
      .index_range(data, low, high, [data, prefix, suffix](std::int64_t i) {
        return detail::concat(prefix, "index ",
                              static_cast<std::int64_t>(backend::element_at(data, i)),
                              " at position ", i, suffix);
      });
}

}  // namespace latent::ops
