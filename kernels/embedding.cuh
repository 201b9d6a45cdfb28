// The embedding: a learned table of V rows of C channels, and a lookup of one row per id —
// a transformer's token and position embeddings. Docs: docs/embedding.md.
//
// Forward, table E [V, C], ids [N] (int32, any leading shape flattened), each in [0, V):
//   out[r, :] = E[ids[r], :]
// Backward, g = dL/dout [N, C]:
//   dL/dE[v, :] = Σ_{r : ids[r] = v} g[r, :]        (0 for an id no row uses)
// a scatter-add of the gradient rows by id. Many rows may share an id (a frequent token, a
// position in every sample of the batch), so a thread per row adding into E's gradient with
// float atomics would make the sum depend on the order the atomics land: not deterministic.
//
// No new kernel and no table of its own: both directions are exactly the vq concept's
// primitives, and the op (src/ops/embedding.cpp) calls those entries (src/backends/vq.h):
//   forward   VqTable::gather       → vq_gather_kernel (kernels/vq_argmin.cuh): a
//             grid-stride loop over the N·C output elements, element e reading
//             E[ids[e / C], e mod C] (consecutive threads, consecutive channels: coalesced
//             in the output and within each table row); an id outside [0, V) gives a row of
//             NaN (the op's device-side check has reported it already).
//   backward  VqTable::code_stats   → the per-code sums of rows of kernels/vq_ema.cuh, which
//             with z = g and the codes = ids is this scatter, deterministic: the "sorted"
//             path (a stable sort of the ids, then every run of equal ids summed in row
//             order, long runs cut into fixed pieces summed in parallel and joined in piece
//             order) whenever V·C does not fit in shared memory, and always under SIMT; the
//             "shared" path (per-block shared-memory partials, each word receiving its rows
//             in row order, the partials added in block order) on a GPU when it does. The
//             counts it computes on the way are scratch here. With an id outside [0, V)
//             the step has already failed the forward's check; the gradient of such a step
//             is not defined (on a GPU the radix sort orders only the low bits of the ids,
//             so a bad id lands inside a valid id's run), though every write stays inside
//             the table.
// On the cpu backend they are the vq cpu loops: the gather, and the sums accumulated in
// double in row order.
//
// Cost, float32: forward reads 4 bytes of id and 4·C bytes of table row per row and writes
// 4·C: 8 bytes an element, no FLOPs. Backward reads g (4·N·C bytes) and the ids and writes
// 4·V·C, one add per element of g (plus the sort of N ids and the pieces' partials on the
// sorted path). cases::embedding_forward and embedding_backward in tests/op_cases.h.
#pragma once

#include "kernels/vq_argmin.cuh"
#include "kernels/vq_ema.cuh"
