// `latent op attention`, `layer-norm`, `cross-entropy`, `embedding` and `gelu`: the kernels of
// the transformer prior on .npy files. docs/attention.md, docs/layer_norm.md,
// docs/cross_entropy.md, docs/embedding.md.
#include <cstdio>
#include <memory>
#include <string>

#include "latent/latent.h"
#include "tools/latent/commands.h"

namespace latent::cli {
namespace {

struct Common {
  std::string device = "cpu";
  std::string out;
};

void add_common(CLI::App* cmd, Common& c) {
  cmd->add_option("--device", c.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("-o,--out", c.out, "Output (.npy)")->required();
}

Tensor input(const std::string& path, const Common& c) {
  return load_npy(path).to(parse_device(c.device));
}

void add_prior_ops(CLI::App* op) {
  {
    auto c = std::make_shared<Common>();
    auto qkv = std::make_shared<std::string>();
    auto heads = std::make_shared<std::int64_t>(1);
    auto unfused = std::make_shared<bool>(false);
    CLI::App* cmd = op->add_subcommand(
        "attention",
        "Causal multi-head self-attention of packed projections qkv [B, T, 3C] (per token: the\n"
        "queries of every head, then the keys, then the values; T <= 64, C/heads <= 64):\n"
        "out [B, T, C], token i attending to tokens 0..i with scores scaled by 1/sqrt(C/heads).\n\n"
        "Example:\n  latent op attention qkv.npy --heads 4 -o out.npy");
    cmd->add_option("qkv", *qkv, "Input qkv (.npy, float32 or float64)")->required();
    cmd->add_option("--heads", *heads, "Attention heads")->capture_default_str();
    cmd->add_flag("--unfused", *unfused,
                  "The naive composition (GEMM, causal softmax, GEMM) instead of the fused kernel");
    add_common(cmd, *c);
    cmd->callback([=] {
      const Tensor x = input(*qkv, *c);
      save_op_output(c->out, *unfused ? causal_self_attention_unfused(x, *heads)
                                      : causal_self_attention(x, *heads));
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto x = std::make_shared<std::string>();
    auto weight = std::make_shared<std::string>();
    auto bias = std::make_shared<std::string>();
    auto eps = std::make_shared<double>(1e-5);
    CLI::App* cmd = op->add_subcommand(
        "layer-norm",
        "Layer normalization of x [..., C] over its last dimension: (x - mean)/sqrt(var + eps),\n"
        "times --weight [C] plus --bias [C] when given (both or neither).\n\n"
        "Example:\n  latent op layer-norm x.npy --weight w.npy --bias b.npy -o y.npy");
    cmd->add_option("x", *x, "Input x (.npy, float32 or float64)")->required();
    cmd->add_option("--weight", *weight, "Scale gamma [C] (.npy)");
    cmd->add_option("--bias", *bias, "Shift beta [C] (.npy)");
    cmd->add_option("--eps", *eps, "Added to the variance")->capture_default_str();
    add_common(cmd, *c);
    cmd->callback([=] {
      LATENT_CHECK(weight->empty() == bias->empty(),
                   "layer-norm: give both --weight and --bias, or neither");
      const Tensor w = weight->empty() ? Tensor() : input(*weight, *c);
      const Tensor b = bias->empty() ? Tensor() : input(*bias, *c);
      save_op_output(c->out, layer_norm(input(*x, *c), w, b, *eps));
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto logits = std::make_shared<std::string>();
    auto targets = std::make_shared<std::string>();
    CLI::App* cmd = op->add_subcommand(
        "cross-entropy",
        "Softmax cross-entropy per row, in nats: logits [..., K] and int32 targets [...] in\n"
        "[0, K) give -log softmax(logits)[target], shape [...].\n\n"
        "Example:\n  latent op cross-entropy logits.npy targets.npy -o nll.npy");
    cmd->add_option("logits", *logits, "Input logits (.npy, float32 or float64)")->required();
    cmd->add_option("targets", *targets, "Targets (.npy, int32)")->required();
    add_common(cmd, *c);
    cmd->callback([=] {
      save_op_output(c->out, cross_entropy_rows(input(*logits, *c), input(*targets, *c)));
    });
  }
  {
    auto c = std::make_shared<Common>();
    auto table = std::make_shared<std::string>();
    auto ids = std::make_shared<std::string>();
    CLI::App* cmd = op->add_subcommand(
        "embedding",
        "Rows of a table [V, C] at int32 ids [...] in [0, V): out [..., C].\n\n"
        "Example:\n  latent op embedding table.npy ids.npy -o rows.npy");
    cmd->add_option("table", *table, "Input table (.npy, float32 or float64)")->required();
    cmd->add_option("ids", *ids, "Ids (.npy, int32)")->required();
    add_common(cmd, *c);
    cmd->callback([=] { save_op_output(c->out, embedding(input(*table, *c), input(*ids, *c))); });
  }
  {
    auto c = std::make_shared<Common>();
    auto x = std::make_shared<std::string>();
    CLI::App* cmd = op->add_subcommand(
        "gelu", "GELU, x * Phi(x) (the exact erf form), elementwise.\n\n"
                "Example:\n  latent op gelu x.npy -o y.npy");
    cmd->add_option("x", *x, "Input (.npy, float32 or float64)")->required();
    add_common(cmd, *c);
    cmd->callback([=] { save_op_output(c->out, gelu(input(*x, *c))); });
  }
}

const OpRegistration registration(add_prior_ops);

}  // namespace
}  // namespace latent::cli
