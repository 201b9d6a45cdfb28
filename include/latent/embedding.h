// The embedding lookup: a learned table of V rows of C channels, one row per id — a
// transformer's token and position embeddings. Docs: docs/embedding.md; kernels:
// kernels/embedding.cuh.
//
//   latent::Generator gen(0);
//   latent::Tensor table = latent::mul(latent::randn({1024, 128}, gen), 0.02);  // V × C
//   table.requires_grad_();
//   latent::Tensor ids = ...;                                     // int32 [128, 49]
//   latent::Tensor x = latent::embedding(table, ids);             // [128, 49, 128]
#pragma once

#include "latent/tensor.h"

namespace latent {

// The rows of table [V, C] (float32 or float64) picked by ids (int32, any shape, each in
// [0, V)): out[..., :] = table[ids[...], :], shape ids.shape() + [C]. Differentiable in the
// table: dL/dtable[v] = Σ over the positions holding id v of dL/dout there, summed
// deterministically (bitwise the same run after run; no float atomics). An id outside
// [0, V) is an error naming its position and value (on cuda raised at the next check point,
// as every device-side check).
Tensor embedding(const Tensor& table, const Tensor& ids);

}  // namespace latent
