// `latent op fsq` (z → codes and indices) and `latent op fsq-decode` (indices → codes), on
// .npy files. docs/fsq.md.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "latent/latent.h"
#include "tools/latent/commands.h"

namespace latent::cli {
namespace {

struct FsqArgs {
  std::vector<std::int64_t> levels = {8, 5, 5, 5};
  bool symmetric = false;
  std::string device = "cpu";
  std::string out;
};

void add_fsq_common(CLI::App* cmd, FsqArgs& args) {
  add_levels_option(cmd, &args.levels, "Levels per channel, e.g. 8,5,5,5");
  cmd->add_flag("--symmetric", args.symmetric,
                "The symmetric variant: L levels spread evenly over [-1, 1] for every L");
  cmd->add_option("--device", args.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("-o,--out", args.out, "Output codes (.npy)")->required();
}

void save(const std::string& path, const Tensor& t) { save_op_output(path, t); }

// "codes.npy" -> "codes_indices.npy"
std::string indices_path_for(const std::string& codes_path) {
  const std::string stem = codes_path.size() > 4 && codes_path.substr(codes_path.size() - 4) == ".npy"
                               ? codes_path.substr(0, codes_path.size() - 4)
                               : codes_path;
  return stem + "_indices.npy";
}

void add_fsq_ops(CLI::App* op) {
  {
    auto args = std::make_shared<FsqArgs>();
    auto z = std::make_shared<std::string>();
    auto indices = std::make_shared<std::string>();
    CLI::App* cmd = op->add_subcommand(
        "fsq",
        "Finite scalar quantization of z [..., d] (d = number of levels): codes [..., d] in\n"
        "[-1, 1] and their int32 indices [...] in the implicit codebook of prod(levels) codes.\n"
        "A NaN in z is an error naming its position; +-Inf saturates to the outermost level.\n\n"
        "Example:\n  latent op fsq z.npy --levels 8,5,5,5 -o codes.npy --indices indices.npy");
    cmd->add_option("z", *z, "Input z (.npy, float32 or float64)")->required();
    add_fsq_common(cmd, *args);
    cmd->add_option("--indices", *indices,
                    "Output indices (.npy; default: the codes path with _indices)");
    cmd->callback([=] {
      const Tensor input = load_npy(*z).to(parse_device(args->device));
      FsqOptions options;
      options.symmetric = args->symmetric;
      const FsqOutput q = fsq_quantize(input, args->levels, options);
      save(args->out, q.codes);
      save(indices->empty() ? indices_path_for(args->out) : *indices, q.indices);
    });
  }
  {
    auto args = std::make_shared<FsqArgs>();
    auto indices = std::make_shared<std::string>();
    auto dtype = std::make_shared<std::string>("float32");
    CLI::App* cmd = op->add_subcommand(
        "fsq-decode",
        "The FSQ codes [..., d] of int32 indices [...] (the inverse of `latent op fsq`).\n\n"
        "Example:\n  latent op fsq-decode indices.npy --levels 8,5,5,5 -o codes.npy");
    cmd->add_option("indices", *indices, "Input indices (.npy, int32)")->required();
    add_fsq_common(cmd, *args);
    cmd->add_option("--dtype", *dtype, "float32 or float64")->capture_default_str();
    cmd->callback([=] {
      LATENT_CHECK(*dtype == "float32" || *dtype == "float64",
                   "fsq-decode: --dtype must be float32 or float64, got ", *dtype);
      const Tensor input = load_npy(*indices).to(parse_device(args->device));
      FsqOptions options;
      options.symmetric = args->symmetric;
      save(args->out, fsq_indices_to_codes(input, args->levels, options,
                                           *dtype == "float32" ? DType::f32 : DType::f64));
    });
  }
}

const OpRegistration registration(add_fsq_ops);

}  // namespace
}  // namespace latent::cli
