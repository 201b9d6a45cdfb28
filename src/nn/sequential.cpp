// Sequential: a chain of modules named "0", "1", … applied in order.
#include "latent/nn.h"

namespace latent::nn {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(std::move(m));
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  LATENT_CHECK(module != nullptr, "Sequential::push_back: null module at position ",
               layers_.size());
  register_module(std::to_string(layers_.size()), module);
  layers_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t i) const {
  LATENT_CHECK(i < layers_.size(), "Sequential: index ", i, " out of range for ",
               layers_.size(), " modules");
  return layers_[i];
}

}  // namespace latent::nn
