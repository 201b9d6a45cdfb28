// Trains one step of a tiny model through the installed latent package and checks that the
// loss falls. Exit status 0 on success.
#include <cstdio>

#include "latent/latent.h"

int main() {
  using namespace latent;
  try {
    Generator gen(7);
    const Tensor x = randn({64, 8}, gen);
    const Tensor target = mul(sum(x, {1}, true), 0.5);  // y = 0.5 · Σ x
    Tensor w = mul(randn({1, 8}, gen), 0.1).requires_grad_();
    Tensor b = zeros({1}).requires_grad_();

    auto loss_of = [&] { return mse_loss(linear(x, w, b), target); };
    const Tensor before = loss_of();
    before.backward();
    {
      NoGradGuard no_grad;
      w.copy_(sub(w, mul(w.grad(), 0.1)));
      b.copy_(sub(b, mul(b.grad(), 0.1)));
    }
    const double loss0 = before.item(), loss1 = loss_of().item();
    std::printf("downstream: loss %.6f -> %.6f\n", loss0, loss1);
    return loss1 < loss0 ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "downstream: %s\n", e.what());
    return 1;
  }
}
