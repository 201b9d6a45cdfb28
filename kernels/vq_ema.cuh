// The codebook's statistics and its exponential moving average, with dead-code revival.
// Docs: docs/vq.md ("Learning the codebook with moving averages", "Codebook collapse").
//
// Code statistics of a batch (also the backward of the snap z_q = E[idx], whose gradient
// with respect to E is exactly the per-code sum of the incoming gradient rows):
//
//     n_k = #{i : idx_i = k}            m_k = Σ_{i : idx_i = k} z_i
//
// EMA update, decay γ (default 0.99), Laplace smoothing ε = 1e-5 (the smoothing and its ε are
// DeepMind Sonnet's VectorQuantizerEMA; the VQ-VAE paper gives the N and M updates only):
//
//     N_k ← γ·N_k + (1 − γ)·n_k         M_k ← γ·M_k + (1 − γ)·m_k
//     Ñ_k = (N_k + ε) / (ΣN + K·ε) · ΣN      e_k = M_k / Ñ_k
//
// Ñ keeps the total count but lifts every N_k a little, so a code that no row chose does not
// divide by zero. No gradients flow here: the codebook is a buffer the update writes.
//
// Dead-code revival: a code whose N_k fell below a threshold is moved onto an encoder output
// z_r of the current batch, r = ⌊u·N⌋ with u the Philox draw for element k of (seed, offset),
// and BOTH its statistics are reset consistently: N_k ← c and M_k ← c·z_r (c: the reset count),
// so that the next EMA step starts from e_k = z_r. Resetting e_k alone (or N_k alone) lets
// the next update pull the code straight back to the stale M_k / Ñ_k.
//
// The statistics are deterministic by default: every sum is formed in an order fixed by the
// sizes and the data, never by timing. Three ways to form them:
//   vq_stats_block_kernel + vq_stats_block_finish_kernel   ("shared", when K·D fits in shared
//       memory). Each block sums a contiguous range of rows into a shared-memory copy of
//       (n, m), reading them in coalesced batches of consecutive rows (every thread on every
//       row it reads); within a batch the first row of each code adds that code's rows, so
//       each word receives its rows in row order (below). The block's partial goes to global
//       memory; the finish kernel adds the partials in block order.
//   vq_stats_pieces_kernel + vq_stats_segments_finish_kernel  ("sorted", any K·D). The rows
//       are stably sorted by code (CUB radix sort on a GPU, a counting sort on the host under
//       SIMT); the sorted order is cut into pieces of kVqPiece rows; one thread per
//       (piece, d) sums each run of equal codes inside its piece, writing a run that lies
//       wholly inside the piece straight to m_k and a run that crosses a piece boundary to
//       the piece's first/last slot; the finish kernel adds the slots of crossing runs in
//       piece order. A collapsed codebook (every row on one code) is one long run cut into
//       N / kVqPiece pieces that are summed in parallel, so it costs about what a uniform
//       one does.
//   vq_stats_atomic_kernel  ("atomic", the benchmark's non-deterministic baseline): one
//       thread per element, float atomicAdd. Its result depends on the order the atomics
//       land, so it is never the default.
// Bytes: N·D elements of z and N indices read once (plus the partials: B·K·D for "shared",
// about (N/kVqPiece + K)·D for "sorted"); FLOPs: one add per element of z.
// EMA update: per codebook element it reads M and m and writes M and E, 4 words (N, n and Ñ
// are per code: K words each); no reuse, so it is purely memory-bound (16-byte vector loads
// when D % 4 == 0).
#pragma once

#include <cstdint>
#include <type_traits>

#include "kernels/check.cuh"
#include "kernels/device.cuh"
#include "kernels/divmod.cuh"
#include "kernels/grid.cuh"
#include "kernels/philox.cuh"
#include "kernels/reduce.cuh"

namespace latent::kernels {

constexpr int kVqStatsThreads = 256;
constexpr std::int64_t kVqPiece = 256;  // rows of sorted order per piece

// ---------------------------------------------------------------- counts only
// counts[k] += #{i : idx_i = k} (counts zeroed by the caller). Integer atomics: the result
// does not depend on their order. Indices outside [0, K) are skipped.
// (The integer kernels are templates on the index type I = std::int32_t only so that the
// header can be included by several translation units.)
template <class I>
__global__ void vq_histogram_kernel(const I* __restrict__ indices, std::int64_t N,
                                    std::int64_t K, I* __restrict__ counts) {
  for (std::int64_t i = grid_stride_begin(); i < N; i += grid_stride_step()) {
    const I k = indices[i];
    if (k >= 0 && k < K) atomicAdd(&counts[k], 1);
  }
}

// ---------------------------------------------------------------- "shared": per-block partials
// grid: B blocks, block: kVqStatsThreads, dynamic shared memory vq_stats_block_shared_bytes.
// Block b sums rows [b·rows_per_block, (b+1)·rows_per_block) into partial_sums[b, K, D] and
// partial_counts[b, K].
//
// Every thread works on every row it reads. The block walks its rows in batches of R rows:
// with W = 4 (Vec: float, D % 4 == 0, 16-byte aligned z) or 1 and C = D / W column groups,
// thread t is slot r = t / C (row r of the batch) and column group q = t % C (columns
// q·W .. q·W + W − 1; when C > 256 the thread also takes q + 256, …), R = max(1, ⌊256 / C⌋).
// So a batch is R consecutive rows read by consecutive threads: one coalesced (16-byte)
// read of R·D elements. Two slots of a batch may share a code; the batch counts its slots
// per code first (integer shared atomics: the count does not depend on their order), and
//   - a code with one slot in the batch: that slot adds its row into sums[k] directly;
//   - a code with several: the first of them (the leader) adds all of them, in slot order.
// Either way each word of sums[k] receives its rows in row order, one addition after
// another from the same start: exactly the sums (and bits) of a plain loop over the rows in
// order, with no float atomics. Barriers: two per batch (the per-code counts are double
// buffered, so a leader clears its count of the previous batch while the new one is read).
// Bytes: R·D·sizeof(T) + R·4 per batch; a collapsed batch (every slot on one code) is summed
// by its leader alone — the "sorted" path is the one for collapsed codebooks.
template <class T>
LATENT_HOST_DEVICE LATENT_FORCEINLINE std::size_t vq_stats_block_shared_bytes(std::int64_t K,
                                                                              std::int64_t D) {
  // sums [K·D] T, counts [K], batch counts [2][K], batch codes [kVqStatsThreads] (int32)
  return static_cast<std::size_t>(K * D) * sizeof(T) +
         static_cast<std::size_t>(3 * K + kVqStatsThreads) * 4;
}

template <class T, bool Vec>
__global__ void vq_stats_block_kernel(const T* __restrict__ z,
                                      const std::int32_t* __restrict__ indices, std::int64_t N,
                                      std::int64_t K, std::int64_t D,
                                      std::int64_t rows_per_block, T* __restrict__ partial_sums,
                                      std::int32_t* __restrict__ partial_counts) {
  LATENT_DYNAMIC_SHARED(T, shared);
  constexpr int W = Vec ? 4 : 1;
  static_assert(!Vec || sizeof(T) == 4, "the vector path is float only");
  // K·D fits in shared memory, so codes, columns and shared offsets count in 32 bits.
  const int codes = static_cast<int>(K), depth = static_cast<int>(D);
  const int KD = codes * depth;
  T* sums = shared;
  std::int32_t* counts = reinterpret_cast<std::int32_t*>(static_cast<T*>(shared + KD));
  std::int32_t* batch_count = counts + codes;       // [2][K]
  std::int32_t* batch_code = batch_count + 2 * codes;  // [R]
  const int t = static_cast<int>(threadIdx.x);
  for (int e = t; e < KD; e += kVqStatsThreads) sums[e] = T(0);
  for (int k = t; k < 3 * codes; k += kVqStatsThreads) counts[k] = 0;  // counts, batch counts
  __syncthreads();

  const int C = depth / W;  // column groups per row
  const int R = C >= kVqStatsThreads ? 1 : kVqStatsThreads / C;
  const int r = C >= kVqStatsThreads ? 0 : t / C;
  const int q0 = C >= kVqStatsThreads ? t : t % C;
  const bool active = r < R;
  const std::int64_t begin = static_cast<std::int64_t>(blockIdx.x) * rows_per_block;
  const std::int64_t end = begin + rows_per_block < N ? begin + rows_per_block : N;

  // W consecutive elements at p: one float4 on the vector path.
  using Chunk = typename std::conditional<Vec, float4, T>::type;
  auto load = [](const T* p) -> Chunk {
    if constexpr (Vec) return *reinterpret_cast<const float4*>(p);
    else return *p;
  };
  auto add = [](Chunk& acc, const Chunk& v) {
    if constexpr (Vec) acc.x += v.x, acc.y += v.y, acc.z += v.z, acc.w += v.w;
    else acc += v;
  };

  int parity = 0;
  std::int32_t led = -1;  // the code this slot led in the previous batch (its count to clear)
  for (std::int64_t b0 = begin; b0 < end; b0 += R) {
    const bool mine = active && b0 + r < end;
    std::int32_t* count_now = batch_count + parity * codes;
    std::int32_t* count_before = batch_count + (parity ^ 1) * codes;
    const T* zb = z + b0 * D + q0 * W;  // row b0 of the batch, this thread's first columns
    std::int32_t k = -1;
    Chunk own{};
    if (mine) {
      k = indices[b0 + r];  // the same word for the C threads of the slot: a broadcast
      if (k < 0 || k >= codes) k = -1;
      own = load(zb + r * D);  // in flight across the barrier
      if (q0 == 0) {
        batch_code[r] = k;
        if (k >= 0) atomicAdd(&count_now[k], 1);
      }
    }
    __syncthreads();
    if (q0 == 0 && led >= 0) count_before[led] = 0;  // read by nobody until the next batch
    led = -1;
    if (k >= 0) {
      const int n = count_now[k];
      bool leader = true;
      if (n > 1)
        for (int s = 0; s < r; ++s) leader = leader && batch_code[s] != k;
      if (leader) {
        // acc (the code's sum at columns c past the thread's first) += this slot's row and,
        // when the code has several slots in the batch, theirs, in slot order.
        auto sum_into = [&](int c, Chunk row) {
          Chunk* into = reinterpret_cast<Chunk*>(sums + k * depth + q0 * W + c);
          Chunk acc = *into;
          add(acc, row);
          for (int s = r + 1, left = n - 1; left > 0; ++s) {
            if (batch_code[s] != k) continue;
            add(acc, load(zb + s * D + c));
            --left;
          }
          *into = acc;
        };
        sum_into(0, own);
        for (int c = kVqStatsThreads * W; q0 * W + c < depth; c += kVqStatsThreads * W)
          sum_into(c, load(zb + r * D + c));  // rows wider than the block: D > 256·W
        if (q0 == 0) {
          counts[k] += n;
          led = k;
        }
      }
    }
    __syncthreads();
    parity ^= 1;
  }

  T* out_sums = partial_sums + static_cast<std::int64_t>(blockIdx.x) * KD;
  std::int32_t* out_counts = partial_counts + static_cast<std::int64_t>(blockIdx.x) * K;
  for (int e = t; e < KD; e += kVqStatsThreads) out_sums[e] = sums[e];
  for (int k = t; k < codes; k += kVqStatsThreads) out_counts[k] = counts[k];
}

// sums[e] = Σ_b partial_sums[b, e] and counts[k] = Σ_b partial_counts[b, k], b ascending.
template <class T>
__global__ void vq_stats_block_finish_kernel(const T* __restrict__ partial_sums,
                                             const std::int32_t* __restrict__ partial_counts,
                                             std::int64_t blocks, std::int64_t K, std::int64_t D,
                                             T* __restrict__ sums,
                                             std::int32_t* __restrict__ counts) {
  const std::int64_t KD = K * D;
  for (std::int64_t e = grid_stride_begin(); e < KD + K; e += grid_stride_step()) {
    if (e < KD) {
      T acc = T(0);
      for (std::int64_t b = 0; b < blocks; ++b) acc += partial_sums[b * KD + e];
      sums[e] = acc;
    } else {
      const std::int64_t k = e - KD;
      std::int32_t acc = 0;
      for (std::int64_t b = 0; b < blocks; ++b) acc += partial_counts[b * K + k];
      counts[k] = acc;
    }
  }
}

// ---------------------------------------------------------------- "sorted": runs of equal codes
// order[i] = i (the values the radix sort carries along with the codes).
template <class I>
__global__ void vq_iota_kernel(I* __restrict__ order, std::int64_t N) {
  for (std::int64_t i = grid_stride_begin(); i < N; i += grid_stride_step())
    order[i] = static_cast<I>(i);
}

// One thread per (piece, d). keys: the codes in ascending order (stable), order: the row of
// each sorted position. A run wholly inside the piece is final: sums[k, d]. A run that
// crosses the piece's start or end is partial: first_part[piece, d] when it covers the
// piece's first position, else last_part[piece, d]. A key outside [0, K) (an index the
// op's device-side check reports) writes nothing. `depth` divides by D.
template <class T>
__global__ void vq_stats_pieces_kernel(const T* __restrict__ z,
                                       const std::int32_t* __restrict__ keys,
                                       const std::int32_t* __restrict__ order, std::int64_t N,
                                       std::int64_t K, FastDivmod depth, T* __restrict__ sums,
                                       T* __restrict__ first_part, T* __restrict__ last_part) {
  const std::int64_t D = depth.divisor;
  const std::int64_t pieces = (N + kVqPiece - 1) / kVqPiece;
  for (std::int64_t item = grid_stride_begin(); item < pieces * D; item += grid_stride_step()) {
    std::int64_t p, d;
    depth.divmod(item, p, d);
    const std::int64_t begin = p * kVqPiece;
    const std::int64_t end = begin + kVqPiece < N ? begin + kVqPiece : N;
    auto flush = [&](std::int32_t code, std::int64_t run_begin, std::int64_t run_end, T acc) {
      const bool starts_before = run_begin == begin && begin > 0 && keys[begin - 1] == code;
      const bool continues = run_end == end && end < N && keys[end] == code;
      if (code < 0 || code >= K) return;
      if (!starts_before && !continues) {
        sums[static_cast<std::int64_t>(code) * D + d] = acc;
      } else if (run_begin == begin) {
        first_part[p * D + d] = acc;
      } else {
        last_part[p * D + d] = acc;
      }
    };
    std::int32_t code = keys[begin];
    std::int64_t run_begin = begin;
    T acc = T(0);
    for (std::int64_t pos = begin; pos < end; ++pos) {
      const std::int32_t k = keys[pos];
      if (k != code) {
        flush(code, run_begin, pos, acc);
        code = k;
        run_begin = pos;
        acc = T(0);
      }
      acc += z[static_cast<std::int64_t>(order[pos]) * D + d];
    }
    flush(code, run_begin, end, acc);
  }
}

// bounds[k] = the first sorted position whose code is ≥ k, for k in [0, K] (binary search).
template <class I>
__global__ void vq_segment_bounds_kernel(const I* __restrict__ keys, std::int64_t N,
                                         std::int64_t K, I* __restrict__ bounds) {
  for (std::int64_t k = grid_stride_begin(); k <= K; k += grid_stride_step()) {
    std::int64_t lo = 0, hi = N;
    while (lo < hi) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      if (keys[mid] < k) lo = mid + 1;
      else hi = mid;
    }
    bounds[k] = static_cast<I>(lo);
  }
}

// One thread per (k, d): counts[k] and, for codes whose run crosses pieces or is empty,
// sums[k, d] = the run's slots added in piece order.
template <class T>
__global__ void vq_stats_segments_finish_kernel(const std::int32_t* __restrict__ bounds,
                                                const T* __restrict__ first_part,
                                                const T* __restrict__ last_part, std::int64_t K,
                                                FastDivmod depth, T* __restrict__ sums,
                                                std::int32_t* __restrict__ counts) {
  const std::int64_t D = depth.divisor;
  for (std::int64_t item = grid_stride_begin(); item < K * D; item += grid_stride_step()) {
    std::int64_t k, d;
    depth.divmod(item, k, d);
    const std::int64_t lo = bounds[k], hi = bounds[k + 1];
    if (d == 0) counts[k] = static_cast<std::int32_t>(hi - lo);
    if (hi <= lo) {  // (hi < lo only when invalid keys spoilt the order: reported anyway)
      sums[item] = T(0);
      continue;
    }
    const std::int64_t p0 = lo / kVqPiece, p1 = (hi - 1) / kVqPiece;
    if (p0 == p1) continue;  // written by vq_stats_pieces_kernel
    T acc = lo == p0 * kVqPiece ? first_part[p0 * D + d] : last_part[p0 * D + d];
    for (std::int64_t p = p0 + 1; p <= p1; ++p) acc += first_part[p * D + d];
    sums[item] = acc;
  }
}

// ---------------------------------------------------------------- "atomic" (non-deterministic)
// sums, counts zeroed by the caller. One thread per element of z.
template <class T>
__global__ void vq_stats_atomic_kernel(const T* __restrict__ z,
                                       const std::int32_t* __restrict__ indices, std::int64_t N,
                                       std::int64_t K, FastDivmod depth, T* __restrict__ sums,
                                       std::int32_t* __restrict__ counts) {
  const std::int64_t D = depth.divisor;
  for (std::int64_t e = grid_stride_begin(); e < N * D; e += grid_stride_step()) {
    std::int64_t i, d;
    depth.divmod(e, i, d);
    const std::int32_t k = indices[i];
    if (k < 0 || k >= K) continue;
    atomicAdd(&sums[static_cast<std::int64_t>(k) * D + d], z[e]);
    if (d == 0) atomicAdd(&counts[k], 1);
  }
}

// ---------------------------------------------------------------- EMA update
// One block of kReduceThreads: N_k ← keep·N_k + take·n_k for every k, and total = Σ_k N_k
// (new values) in a fixed order. A non-finite N_k (from a non-finite old count) fails
// `count_check` at k: the check rides on the update, with no pass of its own.
template <class T>
__global__ void vq_ema_counts_kernel(T* __restrict__ ema_count,
                                     const std::int32_t* __restrict__ counts, std::int64_t K,
                                     T keep, T take, T* __restrict__ total,
                                     CheckSite count_check) {
  T acc = T(0);
  for (std::int64_t k = threadIdx.x; k < K; k += blockDim.x) {
    const T n = keep * ema_count[k] + take * static_cast<T>(counts[k]);
    if (!is_finite_value(n)) check_fail(count_check, k);
    ema_count[k] = n;
    acc += n;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) *total = acc;
}

template <class T>
__device__ __forceinline__ T vq_ema_element(T* codebook, T* ema_sum, const T* sums,
                                            std::int64_t e, T keep, T take, T smoothed) {
  const T m = keep * ema_sum[e] + take * sums[e];
  ema_sum[e] = m;
  codebook[e] = m / smoothed;
  return m;
}

// Grid-stride over the K·D codebook elements: M ← keep·M + take·m; e = M / Ñ_k.
// `vec4`: float, D % 4 == 0 and 16-byte aligned pointers, so 4 elements (one code) per float4.
// A non-finite M (a NaN or Inf in the old sum or the batch sum: keep·x + take·y is finite for
// finite x, y) fails `sum_check` at its element, in the same pass.
template <class T>
__global__ void vq_ema_codebook_kernel(T* __restrict__ codebook, T* __restrict__ ema_sum,
                                       const T* __restrict__ sums,
                                       const T* __restrict__ ema_count,
                                       const T* __restrict__ total, std::int64_t K,
                                       FastDivmod depth, T keep, T take, T epsilon, bool vec4,
                                       CheckSite sum_check) {
  const std::int64_t D = depth.divisor;
  const T n = *total;
  const T scale = n > T(0) ? n / (n + static_cast<T>(K) * epsilon) : T(1);
  const std::int64_t KD = K * D;
  if constexpr (sizeof(T) == 4) {
    if (vec4) {
      auto* cv = reinterpret_cast<float4*>(codebook);
      auto* mv = reinterpret_cast<float4*>(ema_sum);
      const auto* sv = reinterpret_cast<const float4*>(sums);
      for (std::int64_t p = grid_stride_begin(); p < KD / 4; p += grid_stride_step()) {
        const std::int64_t k = depth.div(p * 4);
        const T smoothed = (ema_count[k] + epsilon) * scale;
        const float4 old_m = mv[p], batch = sv[p];
        float4 m, e;
        m.x = keep * old_m.x + take * batch.x;
        m.y = keep * old_m.y + take * batch.y;
        m.z = keep * old_m.z + take * batch.z;
        m.w = keep * old_m.w + take * batch.w;
        e.x = m.x / smoothed;
        e.y = m.y / smoothed;
        e.z = m.z / smoothed;
        e.w = m.w / smoothed;
        if (!is_finite_value(m.x + m.y + m.z + m.w)) {
          const float lanes[4] = {m.x, m.y, m.z, m.w};
          for (int j = 0; j < 4; ++j)
            if (!is_finite_value(lanes[j])) check_fail(sum_check, p * 4 + j);
        }
        mv[p] = m;
        cv[p] = e;
      }
      return;
    }
  }
  for (std::int64_t e = grid_stride_begin(); e < KD; e += grid_stride_step()) {
    const T smoothed = (ema_count[depth.div(e)] + epsilon) * scale;
    const T m = vq_ema_element(codebook, ema_sum, sums, e, keep, take, smoothed);
    if (!is_finite_value(m)) check_fail(sum_check, e);
  }
}

// ---------------------------------------------------------------- dead-code revival
// Row of z [N, D] that code k moves onto: ⌊u·N⌋, u = Philox uniform element k of (seed,
// offset). The same formula runs on the cpu backend, so both pick the same rows.
LATENT_HOST_DEVICE inline std::int64_t vq_revival_row(std::uint64_t seed, std::uint64_t offset,
                                                      std::int64_t k, std::int64_t N) {
  if (N <= 0) return 0;  // callers check N > 0; never index before z
  const double u = philox_uniform_f64(seed, offset, static_cast<std::uint64_t>(k));
  const auto r = static_cast<std::int64_t>(u * static_cast<double>(N));
  return r < N ? r : N - 1;
}

// One thread per code (grid-stride): a code with N_k < threshold takes row r of z, N_k ← reset
// and M_k ← reset·z_r; revived[k] = 1 for those, 0 for the others.
template <class T>
__global__ void vq_revive_kernel(T* __restrict__ codebook, T* __restrict__ ema_count,
                                 T* __restrict__ ema_sum, const T* __restrict__ z,
                                 std::int64_t N, std::int64_t K, std::int64_t D, T threshold,
                                 T reset, std::uint64_t seed, std::uint64_t offset,
                                 std::int32_t* __restrict__ revived) {
  for (std::int64_t k = grid_stride_begin(); k < K; k += grid_stride_step()) {
    if (!(ema_count[k] < threshold)) {
      revived[k] = 0;
      continue;
    }
    const T* row = z + vq_revival_row(seed, offset, k, N) * D;
    for (std::int64_t d = 0; d < D; ++d) {
      codebook[k * D + d] = row[d];
      ema_sum[k * D + d] = reset * row[d];
    }
    ema_count[k] = reset;
    revived[k] = 1;
  }
}

}  // namespace latent::kernels
