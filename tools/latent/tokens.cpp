// `latent sample`, `latent encode` and `latent decode`: a trained model as a generator and as
// an image tokenizer.
#include <cstdio>
#include <algorithm>
#include <memory>

#include "latent/latent.h"
#include "latent/prior.h"
#include "tools/latent/commands.h"
#include "tools/train/train.h"

namespace latent::cli {

namespace {

// `latent sample` of a prior checkpoint: token grids drawn by the transformer (one row per
// class without --class), decoded by the tokenizer the checkpoint carries.
void sample_prior(models::TokenPrior& prior, std::int64_t count, const std::string& class_name,
                  std::uint64_t seed, const models::SampleOptions& options,
                  const std::string& out, const std::string& tokens_out) {
  const std::int64_t classes = prior.transformer().config().classes;
  std::vector<std::int32_t> labels;
  std::int64_t columns = 8;
  if (class_name.empty()) {
    columns = std::max<std::int64_t>(1, (count + classes - 1) / classes);
    for (std::int64_t c = 0; c < classes; ++c)
      for (std::int64_t i = 0; i < columns; ++i) labels.push_back(static_cast<std::int32_t>(c));
  } else {
    std::int64_t label = classes;  // "none"
    if (class_name != "none") {
      try {
        std::size_t used = 0;
        label = std::stoll(class_name, &used);
        LATENT_CHECK(used == class_name.size(), "");
      } catch (const std::exception&) {
        LATENT_FAIL("sample: --class must be a class number 0 to ", classes - 1,
                    " or none, got '", class_name, "'");
      }
      LATENT_CHECK(label >= 0 && label < classes, "sample: --class ", label, " is outside 0 to ",
                   classes - 1, " (or none)");
    }
    labels.assign(static_cast<std::size_t>(count), static_cast<std::int32_t>(label));
  }
  const Device device = prior.transformer().parameters().front().device();
  const std::int64_t n = static_cast<std::int64_t>(labels.size());
  constexpr std::int64_t kBatch = 256;
  Tensor images, grids;
  for (std::int64_t done = 0; done < n; done += kBatch) {
    const std::int64_t k = std::min(kBatch, n - done);
    const std::vector<std::int32_t> part_labels(labels.begin() + done, labels.begin() + done + k);
    const PhiloxKey key{seed, static_cast<std::uint64_t>(done / kBatch)};
    const Tensor tokens = prior.sample_tokens(from_vector(part_labels, {k}, device), key, options);
    Tensor part;
    {
      NoGradGuard no_grad;
      part = prior.tokenizer().decode_tokens(tokens).to(Device::cpu());
    }
    if (!images.defined()) {
      Shape shape = part.shape();
      shape[0] = n;
      images = empty(shape, part.dtype());
      Shape token_shape = tokens.shape();
      token_shape[0] = n;
      grids = empty(token_shape, DType::i32);
    }
    images.narrow(0, done, k).copy_(part);
    grids.narrow(0, done, k).copy_(tokens.to(Device::cpu()));
  }
  save_png(out, image_grid(images, columns, 2, 1.0));
  if (!tokens_out.empty()) save_npy(tokens_out, grids);
  std::printf("%s: %lld samples%s\n", out.c_str(), static_cast<long long>(n),
              class_name.empty() ? " (one row per class)" : "");
}

}  // namespace

void add_sample(CLI::App& app) {
  auto checkpoint = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>("samples.png");
  auto count = std::make_shared<std::int64_t>(64);
  auto seed = std::make_shared<std::uint64_t>(0);
  auto device = std::make_shared<std::string>();
  auto class_name = std::make_shared<std::string>();
  auto options = std::make_shared<models::SampleOptions>();
  auto tokens_out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "sample",
      "Decode images from the prior of a generative checkpoint (vae, or a transformer prior\n"
      "over a tokenizer's token grids) into a PNG grid.\n\n"
      "Examples:\n  latent sample --checkpoint runs/vae/checkpoint.safetensors -n 64 -o samples.png\n"
      "  latent sample --checkpoint runs/prior/checkpoint.safetensors -n 64 --class 3 "
      "--temperature 1 --top-k 0 -o samples.png");
  cmd->add_option("--checkpoint", *checkpoint, "Checkpoint written by latent train")->required();
  cmd->add_option("-n,--count", *count,
                  "Number of samples (decoded 256 at a time; the grid PNG holds them all, about "
                  "1 KB per sample). prior without --class: n spread over one row per class")
      ->capture_default_str();
  cmd->add_option("-o,--out", *out, "Output PNG")->capture_default_str();
  cmd->add_option("--seed", *seed, "Seed of the prior draws")->capture_default_str();
  cmd->add_option("--device", *device, "cpu, cuda or auto (default: the checkpoint's)");
  cmd->add_option("--class", *class_name,
                  "prior: the class to draw (0-9 for Fashion-MNIST, or none); default: one row "
                  "per class");
  cmd->add_option("--temperature", options->temperature,
                  "prior: divide the logits by this before each draw (> 0)")
      ->capture_default_str();
  cmd->add_option("--top-k", options->top_k, "prior: draw among the k most likely tokens (0: all)")
      ->capture_default_str();
  cmd->add_option("--tokens-out", *tokens_out, "prior: also save the token grids (.npy, int32)");
  cmd->callback([=] {
    LATENT_CHECK(*count > 0, "sample: --count must be positive, got ", *count);
    train::LoadedModel loaded = train::load_model(*checkpoint, *device);
    if (auto* prior = dynamic_cast<models::TokenPrior*>(loaded.model.get())) {
      sample_prior(*prior, *count, *class_name, *seed, *options, *out, *tokens_out);
      return;
    }
    LATENT_CHECK(class_name->empty() && tokens_out->empty() && options->top_k == 0 &&
                     options->temperature == 1.0,
                 "sample: --class, --temperature, --top-k and --tokens-out belong to prior "
                 "checkpoints; ", *checkpoint, " holds a '", loaded.config.model, "' model");
    Generator gen(*seed);
    NoGradGuard no_grad;
    // In batches, so the model's activations stay small whatever -n is; the draws of the
    // first 256 samples are the same as one call would make.
    constexpr std::int64_t kBatch = 256;
    Tensor images;
    for (std::int64_t done = 0; done < *count; done += kBatch) {
      const Tensor part =
          loaded.model->sample(std::min(kBatch, *count - done), gen).to(Device::cpu());
      if (!images.defined()) {
        Shape shape = part.shape();
        shape[0] = *count;
        images = empty(shape, part.dtype());
      }
      images.narrow(0, done, part.size(0)).copy_(part);
    }
    save_png(*out, image_grid(images, 8, 2, 1.0));
    std::printf("%s: %lld samples\n", out->c_str(), static_cast<long long>(*count));
  });
}

void add_encode(CLI::App& app) {
  auto checkpoint = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "encode",
      "Turn images into token grids with a vqvae or fsq checkpoint: an image tokenizer.\n"
      "Input: a 28x28 gray PNG, or a .npy of images [N, 1, 28, 28] in [0, 1]. Output: int32\n"
      "tokens [N, 7, 7] as .npy.\n\n"
      "Example:\n  latent encode --checkpoint runs/vq/checkpoint.safetensors shirt.png -o tokens.npy");
  cmd->add_option("--checkpoint", *checkpoint, "Checkpoint written by latent train")->required();
  cmd->add_option("input", *input, "Image (.png) or images (.npy)")->required();
  cmd->add_option("-o,--out", *out, "Output tokens (.npy)")->required();
  cmd->add_option("--device", *device, "cpu, cuda or auto (default: the checkpoint's)");
  cmd->callback([=] {
    train::LoadedModel loaded = train::load_model(*checkpoint, *device);
    Tensor images;
    if (input->size() >= 4 && input->substr(input->size() - 4) == ".png") {
      images = load_png(*input);
      LATENT_CHECK(images.size(0) == 1 && images.size(1) == 28 && images.size(2) == 28,
                   "encode: ", *input, " is ", shape_str(images.shape()),
                   "; expected a 28x28 grayscale PNG");
      images = images.unsqueeze(0);
    } else {
      images = load_npy(*input).to(DType::f32);
      if (images.dim() == 3) images = images.unsqueeze(1);
      LATENT_CHECK(images.dim() == 4 && images.size(1) == 1 && images.size(2) == 28 &&
                       images.size(3) == 28,
                   "encode: ", *input, " holds ", shape_str(images.shape()),
                   "; expected images [N, 1, 28, 28]");
    }
    NoGradGuard no_grad;
    const Tensor tokens = loaded.model->encode_tokens(images.to(loaded.device)).to(Device::cpu());
    save_npy(*out, tokens);
    std::printf("%s: tokens %s\n", out->c_str(), shape_str(tokens.shape()).c_str());
  });
}

void add_decode(CLI::App& app) {
  auto checkpoint = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto device = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "decode",
      "Turn token grids (.npy, int32 [N, 7, 7] or [7, 7]) back into images with a vqvae or fsq\n"
      "checkpoint; writes a PNG (a grid when N > 1) or, for a .npy output, the images.\n\n"
      "Example:\n  latent decode --checkpoint runs/vq/checkpoint.safetensors tokens.npy -o shirt.png");
  cmd->add_option("--checkpoint", *checkpoint, "Checkpoint written by latent train")->required();
  cmd->add_option("input", *input, "Tokens (.npy)")->required();
  cmd->add_option("-o,--out", *out, "Output (.png or .npy)")->required();
  cmd->add_option("--device", *device, "cpu, cuda or auto (default: the checkpoint's)");
  cmd->callback([=] {
    train::LoadedModel loaded = train::load_model(*checkpoint, *device);
    Tensor tokens = load_npy(*input);
    LATENT_CHECK(tokens.dtype() == DType::i32, "decode: ", *input, " holds ",
                 dtype_name(tokens.dtype()), " values; expected integer tokens");
    if (tokens.dim() == 2) tokens = tokens.unsqueeze(0);
    NoGradGuard no_grad;
    const Tensor images = loaded.model->decode_tokens(tokens.to(loaded.device)).to(Device::cpu());
    if (out->size() >= 4 && out->substr(out->size() - 4) == ".npy") {
      save_npy(*out, images);
    } else if (images.size(0) == 1) {
      save_png(*out, images.squeeze(0));
    } else {
      save_png(*out, image_grid(images, 8, 2, 1.0));
    }
    std::printf("%s: %lld images\n", out->c_str(), static_cast<long long>(images.size(0)));
  });
}

}  // namespace latent::cli
