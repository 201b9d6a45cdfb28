#include <gtest/gtest.h>
#include "latent/latent.h"
TEST(Smoke, Add) {
  auto a = latent::ones({2, 3});
  auto b = latent::full({3}, 2.0);
  auto c = latent::add(a, b);
  EXPECT_EQ(c.to_vector<float>()[4], 3.0f);
}
