// Host synchronizations per training step: a step that does not log must not wait for the
// device more than once (its check point, tools/train train_step). Runs each of the four
// models on cuda (the SIMT executor in CI, the GPU where there is one) through the trainer's
// own step, and counts with latent::runtime_counters, which sees every copy to the host,
// synchronize and check the runtime makes.
#include <gtest/gtest.h>

#include <string>

#include "latent/latent.h"
#include "test_util.h"
#include "tests/op_harness.h"
#include "tools/train/train.h"

namespace latent {
namespace {

struct SyncCase {
  std::string name;
  train::Config config;
};

std::vector<SyncCase> models() {
  std::vector<SyncCase> cases;
  train::Config ae;
  ae.model = "ae";
  cases.push_back({"ae", ae});
  train::Config vae;
  vae.model = "vae";
  cases.push_back({"vae", vae});
  train::Config vq;
  vq.model = "vqvae";
  vq.ema = true;
  vq.dead_code_threshold = 1.0;
  cases.push_back({"vqvae_ema_revival", vq});
  train::Config vq_gradient;
  vq_gradient.model = "vqvae";
  cases.push_back({"vqvae_gradient", vq_gradient});
  train::Config fsq;
  fsq.model = "fsq";
  cases.push_back({"fsq", fsq});
  return cases;
}

TEST(HostSync, ANonLoggingTrainingStepWaitsForTheDeviceAtMostOnce) {
  LATENT_SKIP_WITHOUT_CUDA();
  const Device cuda = Device::cuda(0);
  for (SyncCase& c : models()) {
    SCOPED_TRACE(c.name);
    c.config.device = "cuda";
    Generator gen(c.config.seed);
    const auto model = train::make_model(c.config, gen);
    model->to(cuda);
    optim::AdamW optimizer(model->parameters(), c.config.lr);
    Generator data(5);
    const Tensor images = rand({32, 1, 28, 28}, data).to(cuda);
    // Step 0 initializes lazily (k-means, caches); steps 1 and 2 are what every step costs.
    train::train_step(*model, optimizer, images, 0);
    for (std::int64_t step = 1; step <= 2; ++step) {
      const RuntimeCounters before = runtime_counters(cuda);
      const models::TrainableModel::StepOutput out =
          train::train_step(*model, optimizer, images, step);
      const RuntimeCounters cost = runtime_counters(cuda) - before;
      EXPECT_LE(cost.host_synchronizations, 1u) << "step " << step;
      EXPECT_LE(cost.device_to_host_copies, 1u) << "step " << step;
      EXPECT_GT(cost.kernel_launches, 10u) << "step " << step;
      // A logging step reads the metrics: that is where the host numbers come from.
      for (const auto& [name, metric] : out.metrics) {
        const double value = metric();
        EXPECT_TRUE(std::isfinite(value)) << name;
      }
      EXPECT_TRUE(std::isfinite(out.loss.item()));
    }
  }
}

}  // namespace
}  // namespace latent
