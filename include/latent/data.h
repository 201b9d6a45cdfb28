// Datasets: Fashion-MNIST and other IDX files, and a deterministic, resumable batch loader.
//
// Fashion-MNIST (Zalando, 70 000 grayscale 28x28 images of clothing in 10 classes) comes from
// the Debian package dataset-fashion-mnist, which installs the four original IDX files under
// /usr/share/datasets/fashion-mnist. The IDX format is big-endian: a magic number (2051 for
// images, 2049 for labels), the dimension sizes as 32-bit integers, then unsigned bytes.
// Files may be gzip-compressed (as shipped) or plain; both are read.
//
// BatchLoader shuffles with latent's Philox generator, so a seed fixes every batch of every
// epoch on every machine, and its state can be saved in a checkpoint and restored so that a
// resumed run sees exactly the batches the interrupted run would have seen.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "latent/random.h"
#include "latent/tensor.h"

namespace latent {

// A labelled image set held in cpu memory.
struct Dataset {
  Tensor images;  // [N, C, H, W] float32 in [0, 1] (Fashion-MNIST: [N, 1, 28, 28])
  Tensor labels;  // [N] int32

  std::int64_t size() const { return images.defined() ? images.size(0) : 0; }
  // Examples [begin, end) as views of this dataset's storage.
  Dataset slice(std::int64_t begin, std::int64_t end) const;
};

// ------------------------------------------------------------------ Fashion-MNIST

// The directory load_fashion_mnist reads by default: $LATENT_FASHION_MNIST_DIR when set and
// non-empty, else /usr/share/datasets/fashion-mnist.
std::string fashion_mnist_directory();

// Loads split "train" (60 000 examples) or "test" (10 000) from `directory` (empty: the
// default above), reading <prefix>-images-idx3-ubyte.gz and <prefix>-labels-idx1-ubyte.gz
// (prefix "train" or "t10k"), or the same names without ".gz". A missing file is a
// latent::Error naming it and saying to install the Debian package dataset-fashion-mnist.
Dataset load_fashion_mnist(const std::string& split, const std::string& directory = "");

// The class names, indexed by label: "T-shirt/top", "Trouser", ..., "Ankle boot".
const std::array<std::string_view, 10>& fashion_mnist_classes();

// ------------------------------------------------------------------ IDX files

// Reads an IDX image file (magic 2051, [N, H, W] unsigned bytes) as a float32 [N, 1, H, W]
// tensor with values byte / 255. Gzip or plain. Errors name the file: missing, bad magic,
// truncated, trailing bytes, a broken gzip stream.
Tensor load_idx_images(const std::string& path);

// Reads an IDX label file (magic 2049, [N] unsigned bytes) as an int32 [N] tensor.
Tensor load_idx_labels(const std::string& path);

// Reads an image file and a label file and checks that they hold the same number of examples.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path);

// Writes a float image tensor [N, 1, H, W] or [N, H, W] with values in [0, 1] as an IDX
// image file (each value becomes round(clamp(v, 0, 1) * 255)). A path ending in ".gz" is
// gzip-compressed. Atomic.
void save_idx_images(const std::string& path, const Tensor& images);

// Writes an int32 label tensor [N] (values 0..255) as an IDX label file. ".gz" compresses.
void save_idx_labels(const std::string& path, const Tensor& labels);

// Writes `train` and `test` into `directory` (created if missing) under the four standard
// Fashion-MNIST file names, gzip-compressed, so that load_fashion_mnist(split, directory)
// reads them back. For tests and smoke runs that must not depend on the real dataset.
void write_fashion_mnist_like(const std::string& directory, const Dataset& train,
                              const Dataset& test);

// ------------------------------------------------------------------ batches

// Rows `rows` of `source` along dimension 0, in that order, as a new contiguous cpu tensor
// shaped [rows.size(), ...]. Every index must lie in [0, source.size(0)).
Tensor gather_rows(const Tensor& source, const std::vector<std::int64_t>& rows);

struct BatchLoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = true;     // a fresh Philox permutation every epoch
  bool drop_last = false;  // skip the final batch of an epoch when it is short
  std::uint64_t seed = 0;  // seeds the shuffling generator
  Device device = Device::cpu();  // where batches are delivered
};

struct Batch {
  Tensor images;  // [B, C, H, W]
  Tensor labels;  // [B]
  std::vector<std::int64_t> indices;  // the dataset rows in this batch
  std::int64_t epoch = 0;             // the epoch the batch belongs to
};

// Everything needed to continue a BatchLoader exactly where it stopped. Store it in a
// checkpoint (five integers) and hand it to BatchLoader::restore.
struct BatchLoaderState {
  std::uint64_t seed = 0;          // generator seed
  std::uint64_t epoch_offset = 0;  // generator offset before the current epoch's shuffle
  std::int64_t epoch = 0;          // current epoch, counting from 0
  std::int64_t position = 0;       // examples of the current epoch already delivered
  std::int64_t dataset_size = 0;   // checked on restore
};

// Hands out batches over a dataset, epoch after epoch. Each epoch visits every example once
// (with drop_last, all but the N mod B left over after the last full batch), in a Fisher-Yates
// permutation drawn from Generator(seed) when shuffling, in order otherwise. next() never
// runs dry: after the last batch of an epoch it starts the next one.
class BatchLoader {
 public:
  BatchLoader(Dataset dataset, BatchLoaderOptions options);

  // The next batch; starts a new epoch first when the current one is used up.
  Batch next();

  std::int64_t batches_per_epoch() const;
  std::int64_t epoch() const { return epoch_; }
  // Examples of the current epoch already delivered.
  std::int64_t position() const { return position_; }
  const Dataset& dataset() const { return dataset_; }
  const BatchLoaderOptions& options() const { return options_; }

  BatchLoaderState state() const;
  // Continues from a saved state: the following next() calls return exactly the batches the
  // saved loader would have returned. The dataset size must match (options.seed is replaced
  // by the state's seed).
  void restore(const BatchLoaderState& state);

 private:
  void begin_epoch();                  // draws the permutation for epoch_
  std::int64_t examples_per_epoch() const;

  Dataset dataset_;
  BatchLoaderOptions options_;
  Generator generator_;
  std::uint64_t epoch_offset_ = 0;
  std::int64_t epoch_ = 0;
  std::int64_t position_ = 0;
  std::vector<std::int64_t> order_;
};

}  // namespace latent
