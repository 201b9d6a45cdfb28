// The cross-entropy ops: validate, allocate, dispatch on the device
// (src/backends/cross_entropy.h), record the backward. The math is in
// kernels/cross_entropy.cuh; docs/cross_entropy.md explains it.
#include "latent/cross_entropy.h"

#include <limits>

#include "backends/check.h"
#include "backends/cross_entropy.h"
#include "backends/registry.h"
#include "latent/autograd.h"
#include "latent/ops.h"

namespace latent {

Tensor cross_entropy_rows(const Tensor& logits, const Tensor& targets) {
  LATENT_CHECK(logits.defined(), "cross_entropy: the logits are undefined");
  LATENT_CHECK(targets.defined(), "cross_entropy: the targets are undefined");
  LATENT_CHECK(is_floating(logits.dtype()), "cross_entropy: expected float32 or float64 "
               "logits, got ", dtype_name(logits.dtype()), " of shape ",
               shape_str(logits.shape()));
  LATENT_CHECK(logits.dim() >= 1, "cross_entropy: logits must have a class dimension "
               "[..., K], got a scalar");
  const std::int64_t K = logits.size(-1);
  LATENT_CHECK(K > 0, "cross_entropy: logits ", shape_str(logits.shape()),
               " have no classes (K = 0)");
  LATENT_CHECK(K <= std::numeric_limits<std::int32_t>::max(), "cross_entropy: K = ", K,
               " classes do not fit int32 targets");
  LATENT_CHECK(targets.dtype() == DType::i32, "cross_entropy: targets must be int32 class "
               "indices, got ", dtype_name(targets.dtype()), " of shape ",
               shape_str(targets.shape()));
  const Shape leading(logits.shape().begin(), logits.shape().end() - 1);
  LATENT_CHECK(targets.shape() == leading, "cross_entropy: targets ",
               shape_str(targets.shape()), " must have the logits' shape without the class "
               "dimension: logits ", shape_str(logits.shape()), " want targets ",
               shape_str(leading));
  LATENT_CHECK(targets.device() == logits.device(), "cross_entropy: logits are on ",
               logits.device().str(), " but targets are on ", targets.device().str());

  const std::int64_t rows = logits.numel() / K;
  const Tensor input = logits.reshape({rows, K});  // contiguous; the gradient flows back
  const Tensor x = input.detach();
  const Tensor t = targets.contiguous().reshape({rows});
  Tensor loss = empty({rows}, x.dtype(), x.device());
  const Tensor lse = empty({rows, 2}, x.dtype(), x.device());  // (max, log Σ exp(x − max))
  if (rows > 0) {
    const backend::CheckMessage target_message = [t, K, shape = targets.shape()](
                                                     std::int64_t row) {
      return detail::concat("cross_entropy: targets ", shape_str(shape), " hold ",
                            static_cast<std::int64_t>(backend::element_at(t, row)),
                            " at position ", row, ", outside the ", K, " classes [0, ", K,
                            ")");
    };
    backend::lookup<backend::CrossEntropyTable>(x.device())
        .forward(x, t, loss, lse, target_message);
  }
  loss = record(loss, "cross_entropy", {input}, [x, t, lse](const Tensor& g) {
    const Tensor dloss = g.contiguous();
    Tensor dlogits = empty_like(x);
    if (dlogits.numel() > 0) {
      backend::lookup<backend::CrossEntropyTable>(x.device())
          .backward(x, t, lse, dloss, dlogits);
    }
    return std::vector<Tensor>{dlogits};
  });
  return loss.reshape(leading);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets) {
  const Tensor rows = cross_entropy_rows(logits, targets);
  LATENT_CHECK(rows.numel() > 0, "cross_entropy: no rows to average (logits ",
               shape_str(logits.shape()), ")");
  return mean(rows);
}

}  // namespace latent
