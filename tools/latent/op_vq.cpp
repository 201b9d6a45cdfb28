// `latent op vq` (nearest codes and distances) and `latent op ema` (one EMA codebook update,
// with optional dead-code revival), on .npy files. docs/vq.md.
#include <cstdio>
#include <memory>
#include <string>

#include "latent/latent.h"
#include "tools/latent/commands.h"

namespace latent::cli {
namespace {

void save(const std::string& path, const Tensor& t) { save_op_output(path, t); }

// z [..., D] as rows [M, D], remembering the leading shape for the indices.
Tensor as_rows(const Tensor& z, Shape& leading) {
  LATENT_CHECK(z.dim() >= 1, "op vq: z must have at least one dimension, got a scalar");
  leading.assign(z.shape().begin(), z.shape().end() - 1);
  return z.contiguous().reshape({-1, z.size(-1)});
}

VqArgminAlgorithm parse_algorithm(const std::string& name) {
  if (name == "tiled") return VqArgminAlgorithm::tiled;
  if (name == "naive") return VqArgminAlgorithm::naive;
  if (name == "gemm") return VqArgminAlgorithm::gemm;
  LATENT_FAIL("op vq: unknown --algorithm '", name, "' (tiled, naive or gemm)");
}

VqStatsAlgorithm parse_stats(const std::string& name) {
  if (name == "auto") return VqStatsAlgorithm::automatic;
  if (name == "shared") return VqStatsAlgorithm::shared;
  if (name == "sorted") return VqStatsAlgorithm::sorted;
  if (name == "atomic") return VqStatsAlgorithm::atomic;
  LATENT_FAIL("op ema: unknown --stats '", name, "' (auto, shared, sorted or atomic)");
}

void add_vq_ops(CLI::App* op) {
  {
    auto z = std::make_shared<std::string>(), codebook = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>(), distances = std::make_shared<std::string>();
    auto device = std::make_shared<std::string>("cpu");
    auto algorithm = std::make_shared<std::string>("tiled");
    auto cosine = std::make_shared<bool>(false);
    CLI::App* cmd = op->add_subcommand(
        "vq",
        "Nearest codebook entry of every vector: for z [..., D] and a codebook [K, D], the int32\n"
        "indices [...] of argmin_k |z - e_k|^2 (ties to the lowest k) and, with --distances,\n"
        "the squared distances to the chosen codes.\n\n"
        "Example:\n  latent op vq z.npy codebook.npy -o indices.npy --distances d.npy --device cuda");
    cmd->add_option("z", *z, "Vectors z [..., D] (.npy, float32 or float64)")->required();
    cmd->add_option("codebook", *codebook, "Codebook [K, D] (.npy)")->required();
    cmd->add_option("-o,--out", *out, "Output indices (.npy, int32)")->required();
    cmd->add_option("--distances", *distances, "Also write the squared distances (.npy)");
    cmd->add_flag("--cosine", *cosine, "Cosine similarity: l2-normalize z and the codes first");
    cmd->add_option("--algorithm", *algorithm, "cuda: tiled (fused), naive or gemm (baselines)")
        ->capture_default_str();
    cmd->add_option("--device", *device, "cpu, cuda or cuda:N")->capture_default_str();
    cmd->callback([=] {
      const Device dev = parse_device(*device);
      const Tensor input = load_npy(*z);
      LATENT_CHECK(is_floating(input.dtype()), "op vq: ", *z, " holds ",
                   dtype_name(input.dtype()), "; expected float32 or float64 vectors");
      Shape leading;
      Tensor rows = as_rows(input, leading).to(dev);
      Tensor codes = load_npy(*codebook).to(input.dtype()).to(dev);
      if (*cosine) {
        rows = l2_normalize_rows(rows);
        codes = l2_normalize_rows(codes);
      }
      VqArgminOptions options;
      options.algorithm = parse_algorithm(*algorithm);
      options.distances = !distances->empty();
      const VqArgminResult r = vq_argmin(rows, codes, options);
      save(*out, r.indices.reshape(leading));
      if (options.distances) save(*distances, r.distances.reshape(leading));
    });
  }
  {
    auto z = std::make_shared<std::string>(), codebook = std::make_shared<std::string>();
    auto count = std::make_shared<std::string>(), sums = std::make_shared<std::string>();
    auto indices = std::make_shared<std::string>(), out = std::make_shared<std::string>();
    auto count_out = std::make_shared<std::string>(), sum_out = std::make_shared<std::string>();
    auto device = std::make_shared<std::string>("cpu");
    auto stats = std::make_shared<std::string>("auto");
    auto options = std::make_shared<VqEmaOptions>();
    auto threshold = std::make_shared<double>(0.0);
    auto reset = std::make_shared<double>(0.0);
    auto seed = std::make_shared<std::uint64_t>(0);
    CLI::App* cmd = op->add_subcommand(
        "ema",
        "One EMA codebook update from a batch z [..., D]: assign each vector to its nearest code\n"
        "(or take --indices), count n_k and sum m_k per code, then\n"
        "  N <- g N + (1-g) n,  M <- g M + (1-g) m,  e_k = M_k / ((N_k + eps) / (sum N + K eps) sum N)\n"
        "and, with --dead-code-threshold, move codes with N_k below it onto random batch vectors\n"
        "(resetting N_k and M_k). Writes the new codebook, counts and sums.\n\n"
        "Example:\n  latent op ema z.npy codebook.npy count.npy sum.npy -o codebook2.npy \\\n"
        "      --count-out count2.npy --sum-out sum2.npy --decay 0.99 --dead-code-threshold 1");
    cmd->add_option("z", *z, "Batch of vectors z [..., D] (.npy)")->required();
    cmd->add_option("codebook", *codebook, "Codebook [K, D] (.npy)")->required();
    cmd->add_option("count", *count, "EMA counts N [K] (.npy)")->required();
    cmd->add_option("sum", *sums, "EMA sums M [K, D] (.npy)")->required();
    cmd->add_option("-o,--out", *out, "Output codebook (.npy)")->required();
    cmd->add_option("--count-out", *count_out, "Output EMA counts (.npy)");
    cmd->add_option("--sum-out", *sum_out, "Output EMA sums (.npy)");
    cmd->add_option("--indices", *indices, "Assignments [...] (.npy, int32) instead of argmin");
    cmd->add_option("--decay", options->decay, "EMA decay g")->capture_default_str();
    cmd->add_option("--epsilon", options->epsilon, "Laplace smoothing eps")->capture_default_str();
    cmd->add_option("--dead-code-threshold", *threshold,
                    "Revive codes whose EMA count falls below this (0: off)")
        ->capture_default_str();
    cmd->add_option("--reset-count", *reset, "EMA count of a revived code (0: the threshold)")
        ->capture_default_str();
    cmd->add_option("--seed", *seed, "Seed of the revival draws")->capture_default_str();
    cmd->add_option("--stats", *stats, "cuda statistics: auto, shared, sorted or atomic")
        ->capture_default_str();
    cmd->add_option("--device", *device, "cpu, cuda or cuda:N")->capture_default_str();
    cmd->callback([=] {
      const Device dev = parse_device(*device);
      const Tensor input = load_npy(*z);
      LATENT_CHECK(is_floating(input.dtype()), "op ema: ", *z, " holds ",
                   dtype_name(input.dtype()), "; expected float32 or float64 vectors");
      Shape leading;
      const Tensor rows = as_rows(input, leading).to(dev);
      const DType dtype = input.dtype();
      const Tensor codes = load_npy(*codebook).to(dtype).to(dev).contiguous();
      const Tensor ema_count = load_npy(*count).to(dtype).to(dev).contiguous();
      const Tensor ema_sum = load_npy(*sums).to(dtype).to(dev).contiguous();
      Tensor idx;
      if (indices->empty()) {
        idx = vq_argmin(rows, codes).indices;
      } else {
        idx = load_npy(*indices);
        LATENT_CHECK(idx.dtype() == DType::i32, "op ema: ", *indices, " holds ",
                     dtype_name(idx.dtype()), "; expected int32 indices");
        idx = idx.contiguous().reshape({-1}).to(dev);
      }
      LATENT_CHECK(codes.dim() == 2, "op ema: the codebook must be [K, D], got ",
                   shape_str(codes.shape()));
      const VqCodeStats batch = vq_code_stats(rows, idx, codes.size(0), parse_stats(*stats));
      vq_ema_update(codes, ema_count, ema_sum, batch, *options);
      std::int64_t revived = 0;
      if (*threshold > 0) {
        const Tensor mask = vq_revive_dead_codes(codes, ema_count, ema_sum, rows, *threshold,
                                                 *reset > 0 ? *reset : *threshold,
                                                 PhiloxKey{*seed, 0});
        for (std::int32_t r : mask.to_vector<std::int32_t>()) revived += r;
      }
      save(*out, codes);
      if (!count_out->empty()) save(*count_out, ema_count);
      if (!sum_out->empty()) save(*sum_out, ema_sum);
      std::printf("codes used by the batch: %.0f of %lld, perplexity %.3f, revived %lld\n",
                  codebook_utilization(batch.counts) * static_cast<double>(codes.size(0)),
                  static_cast<long long>(codes.size(0)), codebook_perplexity(batch.counts),
                  static_cast<long long>(revived));
    });
  }
}

const OpRegistration registration(add_vq_ops);

}  // namespace
}  // namespace latent::cli
