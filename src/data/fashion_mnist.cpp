// Fashion-MNIST: where its files live, how they are named, and the class names.
// The file format itself is read and written in idx.cpp.
#include <cstdlib>
#include <filesystem>

#include "latent/data.h"

namespace latent {

namespace {

constexpr const char* kDefaultDirectory = "/usr/share/datasets/fashion-mnist";

// "train" -> "train", "test" -> "t10k": the prefix of the original file names.
std::string file_prefix(const std::string& split) {
  if (split == "train") return "train";
  if (split == "test") return "t10k";
  LATENT_FAIL("load_fashion_mnist: unknown split '", split, "' (expected \"train\" or \"test\")");
}

// `directory`/`name`.gz, or `directory`/`name` when only the uncompressed file is there.
std::string locate(const std::string& directory, const std::string& name) {
  const std::filesystem::path base = std::filesystem::path(directory) / name;
  const std::string gz = base.string() + ".gz";
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  if (std::filesystem::exists(base, ec)) return base.string();
  LATENT_FAIL("Fashion-MNIST file '", gz, "' not found (nor '", base.string(),
              "'): install the Debian package dataset-fashion-mnist (tools/setup does), or set "
              "LATENT_FASHION_MNIST_DIR to a directory holding the IDX files");
}

}  // namespace

std::string fashion_mnist_directory() {
  const char* env = std::getenv("LATENT_FASHION_MNIST_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(kDefaultDirectory);
}

Dataset load_fashion_mnist(const std::string& split, const std::string& directory) {
  const std::string prefix = file_prefix(split);
  const std::string dir = directory.empty() ? fashion_mnist_directory() : directory;
  const std::string images = locate(dir, prefix + "-images-idx3-ubyte");
  const std::string labels = locate(dir, prefix + "-labels-idx1-ubyte");
  Dataset dataset = load_idx_dataset(images, labels);
  const std::int32_t* label = dataset.labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < dataset.size(); ++i)
    LATENT_CHECK(label[i] >= 0 && label[i] < 10, "'", labels, "': label ", label[i],
                 " at index ", i, " is not a Fashion-MNIST class (0..9)");
  return dataset;
}

const std::array<std::string_view, 10>& fashion_mnist_classes() {
  static constexpr std::array<std::string_view, 10> names = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

void write_fashion_mnist_like(const std::string& directory, const Dataset& train,
                              const Dataset& test) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  LATENT_CHECK(!ec, "write_fashion_mnist_like: cannot create directory '", directory, "': ",
               ec.message());
  const std::filesystem::path dir(directory);
  save_idx_images((dir / "train-images-idx3-ubyte.gz").string(), train.images);
  save_idx_labels((dir / "train-labels-idx1-ubyte.gz").string(), train.labels);
  save_idx_images((dir / "t10k-images-idx3-ubyte.gz").string(), test.images);
  save_idx_labels((dir / "t10k-labels-idx1-ubyte.gz").string(), test.labels);
}

}  // namespace latent
