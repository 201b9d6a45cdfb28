// `latent op NAME`: one op on .npy inputs, .npy outputs, on any device.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "latent/latent.h"
#include "tools/latent/commands.h"

namespace latent::cli {
namespace {

struct OpArgs {
  std::string device = "cpu";
  std::string out;
};

void add_common(CLI::App* cmd, OpArgs& args) {
  cmd->add_option("--device", args.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("-o,--out", args.out, "Output .npy")->required();
}

}  // namespace

CLI::Option* add_levels_option(CLI::App* cmd, std::vector<std::int64_t>* levels,
                               const std::string& help) {
  std::string shown;
  for (std::int64_t l : *levels) shown += (shown.empty() ? "" : ",") + std::to_string(l);
  return cmd->add_option_function<std::string>(
      "--levels",
      [levels](const std::string& text) {
        std::vector<std::int64_t> parsed;
        std::size_t begin = 0;
        while (true) {
          const std::size_t end = std::min(text.find(',', begin), text.size());
          std::int64_t value = 0;
          const char* first = text.data() + begin;
          const char* last = text.data() + end;
          const auto [stop, error] = std::from_chars(first, last, value);
          if (first == last || error != std::errc() || stop != last)
            throw CLI::ValidationError("--levels", "expected whole numbers separated by commas "
                                                   "(e.g. 8,5,5,5), got '" + text + "'");
          parsed.push_back(value);
          if (end == text.size()) break;
          begin = end + 1;
        }
        *levels = parsed;
      },
      help + " [default: " + shown + "]");
}

void save_op_output(const std::string& path, const Tensor& t) {
  const Tensor host = t.to(Device::cpu()).contiguous();
  if (is_floating(host.dtype())) {
    const std::vector<double> values = host.to(DType::f64).to_vector<double>();
    for (std::size_t i = 0; i < values.size(); ++i) {
      LATENT_CHECK(std::isfinite(values[i]), "the output ", path, " ", shape_str(host.shape()),
                   " would hold ", values[i], " at element ", i,
                   ": the result overflows ", dtype_name(host.dtype()),
                   " (use float64 inputs, or smaller values); nothing was written");
    }
  }
  save_npy(path, host);
  std::printf("%s: %s %s\n", path.c_str(), dtype_name(t.dtype()), shape_str(t.shape()).c_str());
}

namespace {

Tensor load_on(const std::string& path, const Device& device) {
  return load_npy(path).to(device);
}

void save_result(const OpArgs& args, const Tensor& result) { save_op_output(args.out, result); }

std::vector<OpAdder>& registered_ops() {
  static std::vector<OpAdder> adders;
  return adders;
}

}  // namespace

OpRegistration::OpRegistration(OpAdder adder) { registered_ops().push_back(adder); }

void add_op(CLI::App& app) {
  CLI::App* op = app.add_subcommand(
      "op",
      "Run one op on .npy arrays and write the result as .npy.\n\n"
      "Example:\n  latent op matmul a.npy b.npy -o c.npy\n"
      "  latent op conv2d x.npy w.npy --bias b.npy --stride 2 --padding 1 -o y.npy");
  op->require_subcommand(1);

  {
    auto args = std::make_shared<OpArgs>();
    auto a = std::make_shared<std::string>(), b = std::make_shared<std::string>();
    CLI::App* cmd = op->add_subcommand("matmul", "C = A · B for [M, K] · [K, N] (or batched [B, M, K] · [B, K, N])");
    cmd->add_option("a", *a, "A (.npy)")->required();
    cmd->add_option("b", *b, "B (.npy)")->required();
    add_common(cmd, *args);
    cmd->callback([=] {
      const Device device = parse_device(args->device);
      save_result(*args, matmul(load_on(*a, device), load_on(*b, device)));
    });
  }
  {
    auto args = std::make_shared<OpArgs>();
    auto x = std::make_shared<std::string>(), w = std::make_shared<std::string>();
    auto bias = std::make_shared<std::string>();
    auto options = std::make_shared<Conv2dOptions>();
    auto transpose = std::make_shared<bool>(false);
    CLI::App* cmd = op->add_subcommand(
        "conv2d", "y = conv2d(x [N, C, H, W], w [OC, C, KH, KW]) (+ bias); --transpose for conv_transpose2d with w [C, OC, KH, KW]");
    cmd->add_option("x", *x, "Input (.npy)")->required();
    cmd->add_option("w", *w, "Weight (.npy)")->required();
    cmd->add_option("--bias", *bias, "Bias [OC] (.npy)");
    cmd->add_option("--stride", options->stride)->capture_default_str();
    cmd->add_option("--padding", options->padding)->capture_default_str();
    cmd->add_option("--output-padding", options->output_padding, "conv_transpose2d only")
        ->capture_default_str();
    cmd->add_flag("--transpose", *transpose, "Run conv_transpose2d instead");
    add_common(cmd, *args);
    cmd->callback([=] {
      const Device device = parse_device(args->device);
      const Tensor input = load_on(*x, device), weight = load_on(*w, device);
      const Tensor b = bias->empty() ? Tensor() : load_on(*bias, device);
      save_result(*args, *transpose ? conv_transpose2d(input, weight, b, *options)
                                    : conv2d(input, weight, b, *options));
    });
  }
  for (OpAdder adder : registered_ops()) adder(op);
}

}  // namespace latent::cli
