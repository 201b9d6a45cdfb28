// The embedding on the cpu backend. The lookup is the vq concept's gather and its backward
// the vq concept's per-code sums of rows (plain loops, accumulated in double in row order),
// so both entries call the vq table of the same device (kernels/embedding.cuh explains the
// fit). docs/embedding.md.
#include <cstdint>

#include "backends/cpu/cpu.h"
#include "backends/embedding.h"
#include "backends/registry.h"
#include "backends/vq.h"

namespace latent::cpu {
namespace {

void embedding_forward(const Tensor& table, const Tensor& ids, const Tensor& out) {
  backend::lookup<backend::VqTable>(table.device()).gather(table, ids, out);
}

void embedding_backward(const Tensor& dout, const Tensor& ids, const Tensor& dtable) {
  // The per-code counts come with the sums; the embedding has no use for them.
  const Tensor counts = empty({dtable.size(0)}, DType::i32, dtable.device());
  backend::lookup<backend::VqTable>(dout.device())
      .code_stats(dout, ids, counts, dtable, VqStatsAlgorithm::automatic);
}

}  // namespace

void register_embedding() {
  backend::Registry<backend::EmbeddingTable>::add(DeviceType::cpu,
                                                  {&embedding_forward, &embedding_backward});
}

}  // namespace latent::cpu
