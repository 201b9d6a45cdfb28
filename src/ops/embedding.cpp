// The embedding op: validate, allocate, run the vq concept's entries on the device
// (src/backends/vq.h: its gather is the lookup, its per-code sums the backward), record the
// backward (the deterministic per-id sum of the gradient rows).
// kernels/embedding.cuh has the math; docs/embedding.md explains it.
#include "latent/embedding.h"

#include <limits>

#include "backends/registry.h"
#include "backends/vq.h"
#include "latent/autograd.h"
#include "ops/checks.h"

namespace latent {

Tensor embedding(const Tensor& table, const Tensor& ids) {
  LATENT_CHECK(table.defined(), "embedding: the table is undefined");
  LATENT_CHECK(ids.defined(), "embedding: the ids are undefined");
  LATENT_CHECK(is_floating(table.dtype()), "embedding: the table must be float32 or float64, "
               "got ", dtype_name(table.dtype()), " of shape ", shape_str(table.shape()));
  LATENT_CHECK(table.dim() == 2, "embedding: the table must be a matrix [V, C], got ",
               shape_str(table.shape()));
  const std::int64_t V = table.size(0), C = table.size(1);
  LATENT_CHECK(V > 0, "embedding: the table ", shape_str(table.shape()), " has no rows");
  LATENT_CHECK(V <= std::numeric_limits<std::int32_t>::max(), "embedding: V = ", V,
               " rows do not fit int32 ids");
  LATENT_CHECK(ids.dtype() == DType::i32, "embedding: ids must be int32, got ",
               dtype_name(ids.dtype()), " of shape ", shape_str(ids.shape()));
  LATENT_CHECK(ids.device() == table.device(), "embedding: the table is on ",
               table.device().str(), " but the ids are on ", ids.device().str());

  const std::int64_t N = ids.numel();
  const Tensor flat = ids.contiguous().reshape({N});
  ops::check_index_range(flat, 0, V,
                         detail::concat("embedding: ids ", shape_str(ids.shape()), " hold "),
                         detail::concat(", outside the table's ", V, " rows [0, ", V, ")"));
  Shape shape = ids.shape();
  shape.push_back(C);
  Tensor out = empty({N, C}, table.dtype(), table.device());
  const Tensor rows = table.detach().contiguous();
  if (N > 0 && C > 0) backend::lookup<backend::VqTable>(rows.device()).gather(rows, flat, out);
  out = record(out, "embedding", {table}, [flat, V, C](const Tensor& g) {
    const Tensor dout = g.contiguous();
    if (flat.numel() == 0 || C == 0)
      return std::vector<Tensor>{zeros({V, C}, dout.dtype(), dout.device())};
    Tensor dtable = empty({V, C}, dout.dtype(), dout.device());  // every row written
    // The per-code counts come with the sums; the embedding has no use for them.
    const Tensor counts = empty({V}, DType::i32, dout.device());
    backend::lookup<backend::VqTable>(dout.device())
        .code_stats(dout, flat, counts, dtable, VqStatsAlgorithm::automatic);
    return std::vector<Tensor>{dtable};
  });
  return out.reshape(shape);
}

}  // namespace latent
