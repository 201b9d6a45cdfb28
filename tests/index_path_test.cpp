// The strided kernels' two index instances (kernels/indexing.cuh): the host's choice between
// 32-bit and 64-bit integers, tested on the decision function itself (a tensor past 2^31
// elements does not fit CI's memory), and the 64-bit instances on small shapes, forced,
// against the 32-bit ones and the cpu backend: the same bits.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "backends/cuda/strided.h"
#include "kernels/conv.cuh"
#include "kernels/indexing.cuh"
#include "latent/latent.h"

namespace latent {
namespace {

kernels::StridedIndex index_of(std::vector<std::int64_t> shape, std::vector<std::int64_t> strides) {
  kernels::StridedIndex s;
  s.rank = static_cast<int>(shape.size());
  for (int d = 0; d < s.rank; ++d) {
    s.shape[d] = shape[d];
    s.strides[d] = strides[d];
  }
  return s;
}

TEST(IndexPath, ThirtyTwoBitsWhenEveryExtentFits) {
  const std::int64_t two31 = std::int64_t{1} << 31;
  EXPECT_TRUE(kernels::index32_fits(0));
  EXPECT_TRUE(kernels::index32_fits(1000003));
  EXPECT_TRUE(kernels::index32_fits(kernels::kIndex32Limit));
  EXPECT_FALSE(kernels::index32_fits(kernels::kIndex32Limit + 1));
  EXPECT_FALSE(kernels::index32_fits(two31));
  EXPECT_FALSE(kernels::index32_fits(two31 + 1));
  // A small view of a huge tensor: few elements, offsets past 2^31.
  EXPECT_FALSE(kernels::index32_fits(4, {index_of({2, 2}, {two31, 1})}));
  // Largest offset exactly at the limit, and one past it.
  EXPECT_TRUE(kernels::index32_fits(2, {index_of({2}, {kernels::kIndex32Limit})}));
  EXPECT_FALSE(kernels::index32_fits(2, {index_of({2}, {kernels::kIndex32Limit + 1})}));
  // Broadcast (stride 0) adds nothing to the offset, but its extent still counts.
  EXPECT_TRUE(kernels::index32_fits(1 << 20, {index_of({1 << 20, 1}, {0, 1})}));
  EXPECT_FALSE(kernels::index32_fits(1, {index_of({two31, 1}, {0, 1})}));
  // The convolution: input and column matrix both below the limit.
  kernels::ConvGeometry g{2, 3, 8, 8, 3, 3, 1, 1, 8, 8};
  EXPECT_TRUE(kernels::conv_index32_fits(g));
  g.batch = std::int64_t{1} << 22;  // 2^22 · 27 · 64 columns: past 2^31
  EXPECT_FALSE(kernels::conv_index32_fits(g));
}

TEST(IndexPath, TheThirtyTwoBitIndexMatchesTheSixtyFourBitOne) {
  const kernels::StridedIndex s = index_of({3, 5, 7, 2}, {1, 3 * 7 * 2, 3, 0});
  const kernels::StridedIndex32 t = kernels::to_index32(s);
  for (std::int64_t i = 0; i < 3 * 5 * 7 * 2; ++i)
    EXPECT_EQ(s.offset(i), static_cast<std::int64_t>(t.offset(static_cast<std::int32_t>(i))));
}

struct Force64 {
  Force64() { cuda::force_index64() = true; }
  ~Force64() { cuda::force_index64() = false; }
};

// Broadcast add, strided copy, a reduction over a middle dimension, conv2d forward and
// backward: once on the 32-bit instances, once forced onto the 64-bit ones, and on cpu.
std::vector<std::vector<double>> run_all(Device device) {
  Generator gen(77);
  const Tensor a = randn({3, 4, 5, 6}, gen, DType::f64).to(device);
  const Tensor b = randn({4, 1, 6}, gen, DType::f64).to(device);
  const Tensor x = randn({2, 3, 9, 7}, gen, DType::f64).to(device);
  const Tensor w = randn({4, 3, 3, 3}, gen, DType::f64).to(device);
  std::vector<std::vector<double>> out;
  out.push_back((a + b).to(Device::cpu()).to_vector<double>());
  out.push_back(a.permute({3, 1, 0, 2}).contiguous().to(Device::cpu()).to_vector<double>());
  out.push_back(sum(a.transpose(1, 3), {1, 3}).to(Device::cpu()).to_vector<double>());
  out.push_back(sum(a, {0, 2}).to(Device::cpu()).to_vector<double>());
  const Tensor y = conv2d(x, w, Tensor(), {2, 1, 0});
  out.push_back(y.to(Device::cpu()).to_vector<double>());
  const Tensor xt = conv_transpose2d(y, w, Tensor(), {2, 1, 0});
  out.push_back(xt.to(Device::cpu()).to_vector<double>());
  return out;
}

TEST(IndexPath, SixtyFourBitInstancesForcedOnSmallShapesGiveTheSameBits) {
  const auto on_cpu = run_all(Device::cpu());
  const auto on_cuda32 = run_all(Device::cuda());
  std::vector<std::vector<double>> on_cuda64;
  {
    Force64 force;
    on_cuda64 = run_all(Device::cuda());
  }
  ASSERT_EQ(on_cuda32.size(), on_cuda64.size());
  for (std::size_t k = 0; k < on_cuda32.size(); ++k) {
    EXPECT_EQ(on_cuda32[k], on_cuda64[k]) << "case " << k;
    // cpu sums and GEMMs in its own order: close, not bitwise, for the reduction and conv.
    ASSERT_EQ(on_cpu[k].size(), on_cuda32[k].size()) << "case " << k;
    for (std::size_t i = 0; i < on_cpu[k].size(); ++i)
      EXPECT_NEAR(on_cpu[k][i], on_cuda32[k][i], 1e-12) << "case " << k << " element " << i;
  }
}

}  // namespace
}  // namespace latent
