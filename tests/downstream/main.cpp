// Builds a model and trains it with AdamW through the installed latent package, as README's
// snippet does, and checks that the loss falls. Exit status 0 on success.
#include <cstdio>

#include "latent/latent.h"

int main() {
  using namespace latent;
  try {
    Generator gen(0);
    models::ConvNetConfig net;
    net.hidden_channels = 4;
    models::Autoencoder model(net, gen);
    optim::AdamW optimizer(model.parameters(), 2e-3);
    const Tensor images = rand({8, 1, 28, 28}, gen);
    auto loss_of = [&] { return mse_loss(sigmoid(model.forward(images)), images); };
    double first = 0.0;
    for (int step = 0; step < 5; ++step) {
      const Tensor loss = loss_of();
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
      if (step == 0) first = loss.item();
    }
    const double last = loss_of().item();
    std::printf("downstream: autoencoder loss %.6f -> %.6f after 5 AdamW steps\n", first, last);
    return last < first ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "downstream: %s\n", e.what());
    return 1;
  }
}
