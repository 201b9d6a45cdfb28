// The embedding concept (kernels/embedding.cuh; docs/embedding.md). src/ops/embedding.cpp
// validates arguments, allocates the outputs and looks up this table on the tensors' device.
//
// Every tensor is contiguous and lives on the table's device. table, out, dout and dtable
// share one floating dtype: table and dtable [V, C], out and dout [N, C] (the ids' leading
// shape flattened), ids int32 [N], checked (the check concept) to lie in [0, V). The caller
// allocates every output; N, V and C are all positive.
#pragma once

#include "latent/tensor.h"

namespace latent::backend {

struct EmbeddingTable {
  static constexpr const char* kConcept = "embedding";
  // out[r, :] = table[ids[r], :].
  void (*forward)(const Tensor& table, const Tensor& ids, const Tensor& out);
  // dtable[v, :] = Σ_{r : ids[r] = v} dout[r, :], every row written (zeros for unused ids);
  // deterministic: the same inputs give the same bits run after run.
  void (*backward)(const Tensor& dout, const Tensor& ids, const Tensor& dtable);
};

}  // namespace latent::backend
