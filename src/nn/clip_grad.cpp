// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_).
//
//   ‖g‖ = √(Σ_p Σ_i g_{p,i}²);  if ‖g‖ > max_norm:  g_p ← g_p · max_norm / (‖g‖ + 1e-6)
//
// The squares are summed in float64 on the gradients' device (a tensor on another device
// has its sum moved to the first one), and one transfer of the total to the host is the
// only synchronization.
#include <cmath>

#include "latent/autograd.h"
#include "latent/nn.h"
#include "latent/ops.h"

namespace latent::nn {

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  LATENT_CHECK(max_norm >= 0.0 && !std::isnan(max_norm),
               "clip_grad_norm: max_norm must be >= 0, got ", max_norm);
  NoGradGuard no_grad;
  Tensor sum_squares;  // float64 scalar on the first gradient's device
  for (const Tensor& p : params) {
    LATENT_CHECK(p.defined(), "clip_grad_norm: undefined parameter");
    const Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    Tensor s = sum(square(g.to(DType::f64)));
    sum_squares = sum_squares.defined() ? add(sum_squares, s.to(sum_squares.device())) : s;
  }
  if (!sum_squares.defined()) return 0.0;
  const double total = std::sqrt(sum_squares.item<double>());
  if (std::isfinite(total) && total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined() && g.numel() > 0) g.copy_(mul(g, scale));
    }
  }
  return total;
}

}  // namespace latent::nn
