// Tests for include/latent/data.h: IDX files, Fashion-MNIST and the batch loader.
//
// Everything runs on small generated datasets; one test also checks the real Fashion-MNIST
// files when the Debian package dataset-fashion-mnist is installed (and says so when not).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>

#include "latent/data.h"
#include "latent/io.h"
#include "latent/ops.h"
#include "test_util.h"
#include "tests/synthetic_data.h"

namespace latent {
namespace {

namespace fs = std::filesystem;

class DataTempDir : public test::TempDirTest {
 protected:
  DataTempDir() : TempDirTest("latent_data_test_") {}
};

// n images of size h x w whose pixel values are exact multiples of 1/255, labels i % 10.
using test::quantized_images;

void expect_same_dataset(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.images.shape(), b.images.shape());
  EXPECT_EQ(a.images.to_vector<float>(), b.images.to_vector<float>());
  EXPECT_EQ(a.labels.to_vector<std::int32_t>(), b.labels.to_vector<std::int32_t>());
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xFF),
          static_cast<char>((v >> 8) & 0xFF), static_cast<char>(v & 0xFF)};
}

// Restores an environment variable when the test ends.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) ::setenv(name_, old_.c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// =================================================================== IDX files
using DataIdx = DataTempDir;

TEST_F(DataIdx, RoundTripGzipAndPlain) {
  const Dataset d = quantized_images(7, 5, 4, 1);
  for (const char* suffix : {".gz", ""}) {
    SCOPED_TRACE(suffix);
    const std::string images = path(std::string("img") + suffix);
    const std::string labels = path(std::string("lab") + suffix);
    save_idx_images(images, d.images);
    save_idx_labels(labels, d.labels);
    expect_same_dataset(d, load_idx_dataset(images, labels));
  }
  // The plain file is exactly the IDX layout: magic, sizes, bytes.
  const std::string bytes = read_file(path("lab"));
  EXPECT_EQ(bytes.substr(0, 8), be32(2049) + be32(7));
  EXPECT_EQ(bytes.size(), 8u + 7u);
  // The .gz file really is gzip.
  EXPECT_EQ(read_file(path("img.gz")).substr(0, 2), "\x1f\x8b");
  // [N, H, W] images are accepted on write, too.
  save_idx_images(path("flat"), d.images.reshape({7, 5, 4}));
  EXPECT_EQ(load_idx_images(path("flat")).to_vector<float>(), d.images.to_vector<float>());
}

TEST_F(DataIdx, MalformedFilesAreErrorsNamingTheFile) {
  const std::string header = be32(2051) + be32(2) + be32(2) + be32(2);
  struct Case {
    const char* name;
    std::string bytes;
    const char* mentions;
  };
  const std::vector<Case> cases = {
      {"tiny", "ab", "not an IDX"},
      {"labels_as_images", be32(2049) + be32(1) + "x", "label file"},
      {"badmagic", be32(1234) + be32(1) + "x", "magic number 1234"},
      {"short_header", be32(2051) + be32(2), "truncated"},
      {"truncated", header + std::string(7, '\1'), "truncated"},
      {"trailing", header + std::string(9, '\1'), "unexpected bytes"},
      {"rank", be32(0x00000802) + be32(2) + be32(2) + "abcd", "magic number 2050"},
      // [2^16, 2^24, 2^24] multiplies to 2^64: wrapped to 0 it would pass a size check.
      {"wraps", be32(2051) + be32(1u << 16) + be32(1u << 24) + be32(1u << 24), "absurdly large"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = write_raw(c.name, c.bytes);
    EXPECT_LATENT_ERROR(load_idx_images(file), file, c.mentions);
  }
  const std::string images_as_labels = write_raw("images", header + std::string(8, '\0'));
  EXPECT_LATENT_ERROR(load_idx_labels(images_as_labels), images_as_labels, "image file");
  EXPECT_LATENT_ERROR(load_idx_images(path("absent.gz")), path("absent.gz"), "no such file");
}

TEST_F(DataIdx, BrokenGzipStreamsAreErrors) {
  const Dataset d = quantized_images(50, 28, 28, 2);
  save_idx_images(path("good.gz"), d.images);
  const std::string gz = read_file(path("good.gz"));

  const std::string cut = write_raw("cut.gz", gz.substr(0, gz.size() / 2));
  EXPECT_LATENT_ERROR(load_idx_images(cut), cut);

  std::string flipped = gz;
  flipped[flipped.size() - 6] ^= 0x5A;  // inside the CRC-32 trailer
  const std::string bad_crc = write_raw("crc.gz", flipped);
  EXPECT_LATENT_ERROR(load_idx_images(bad_crc), bad_crc, "corrupt");
}

TEST_F(DataIdx, MismatchedCountsAndBadValues) {
  const Dataset a = quantized_images(4, 3, 3, 3);
  save_idx_images(path("img"), a.images);
  save_idx_labels(path("lab"), a.labels.narrow(0, 0, 3));
  EXPECT_LATENT_ERROR(load_idx_dataset(path("img"), path("lab")), path("img"), path("lab"),
                        "4 images", "3 labels");
  EXPECT_LATENT_ERROR(save_idx_labels(path("x"), from_vector(std::vector<std::int32_t>{300}, {1})),
                        path("x"), "300");
  EXPECT_LATENT_ERROR(save_idx_labels(path("x"), zeros({2})), path("x"), "int32");
  EXPECT_LATENT_ERROR(save_idx_images(path("x"), zeros({2, 3, 4, 4})), path("x"), "[N, 1, H, W]");
  EXPECT_LATENT_ERROR(save_idx_images(path("x"), zeros({2, 4, 4}, DType::i32)), path("x"));
}

// =================================================================== Fashion-MNIST
using FashionMnist = DataTempDir;

TEST_F(FashionMnist, ReadsAGeneratedDirectoryAndTheEnvironmentOverride) {
  const Dataset train = quantized_images(12, 28, 28, 4);
  const Dataset test = quantized_images(5, 28, 28, 5);
  const std::string dir = path("fmnist");  // created by the writer
  write_fashion_mnist_like(dir, train, test);
  for (const char* name : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                           "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"})
    EXPECT_TRUE(fs::exists(fs::path(dir) / name)) << name;
  expect_same_dataset(train, load_fashion_mnist("train", dir));
  expect_same_dataset(test, load_fashion_mnist("test", dir));

  const ScopedEnv env("LATENT_FASHION_MNIST_DIR", dir);
  EXPECT_EQ(fashion_mnist_directory(), dir);
  expect_same_dataset(test, load_fashion_mnist("test"));
}

TEST_F(FashionMnist, UncompressedFilesAreFoundToo) {
  const Dataset d = quantized_images(3, 28, 28, 6);
  save_idx_images(path("t10k-images-idx3-ubyte"), d.images);
  save_idx_labels(path("t10k-labels-idx1-ubyte"), d.labels);
  expect_same_dataset(d, load_fashion_mnist("test", dir_.string()));
}

TEST_F(FashionMnist, MissingFilesAndBadSplitsAreClearErrors) {
  const std::string empty_dir = path("nothing-here");
  fs::create_directories(empty_dir);
  EXPECT_LATENT_ERROR(load_fashion_mnist("train", empty_dir),
                        empty_dir + "/train-images-idx3-ubyte.gz", "dataset-fashion-mnist",
                        "tools/setup");
  EXPECT_LATENT_ERROR(load_fashion_mnist("validation", empty_dir), "validation");
  const ScopedEnv env("LATENT_FASHION_MNIST_DIR", empty_dir);
  EXPECT_LATENT_ERROR(load_fashion_mnist("test"), empty_dir, "dataset-fashion-mnist");
}

TEST_F(FashionMnist, LabelsOutsideTheTenClassesAreRejected) {
  Dataset d = quantized_images(3, 28, 28, 7);
  d.labels.data<std::int32_t>()[1] = 12;
  write_fashion_mnist_like(path("d"), d, d);
  EXPECT_LATENT_ERROR(load_fashion_mnist("test", path("d")), "label 12", "t10k-labels");
}

TEST(FashionMnistReal, TestAndTrainSplitsFromTheDebianPackage) {
  const std::string dir = fashion_mnist_directory();
  if (!fs::exists(fs::path(dir) / "t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "Fashion-MNIST is not installed in " << dir
                 << " (Debian package dataset-fashion-mnist; tools/setup installs it)";
  const Dataset test = load_fashion_mnist("test");
  ASSERT_EQ(test.images.shape(), (Shape{10000, 1, 28, 28}));
  ASSERT_EQ(test.labels.shape(), (Shape{10000}));
  EXPECT_EQ(test.images.dtype(), DType::f32);
  EXPECT_EQ(test.labels.dtype(), DType::i32);
  const std::vector<float> pixels = test.images.to_vector<float>();
  const auto [lo, hi] = std::minmax_element(pixels.begin(), pixels.end());
  EXPECT_EQ(*lo, 0.0f);
  EXPECT_EQ(*hi, 1.0f);
  const double mean_pixel = mean(test.images).item();
  EXPECT_GT(mean_pixel, 0.2);  // Fashion-MNIST's mean is about 0.286
  EXPECT_LT(mean_pixel, 0.4);
  std::vector<int> per_class(10, 0);
  for (const std::int32_t label : test.labels.to_vector<std::int32_t>()) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++per_class[static_cast<std::size_t>(label)];
  }
  EXPECT_EQ(per_class, std::vector<int>(10, 1000));  // the test split is balanced

  const Dataset train = load_fashion_mnist("train");
  EXPECT_EQ(train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(train.labels.shape(), (Shape{60000}));
  EXPECT_EQ(fashion_mnist_classes()[9], "Ankle boot");
}

// =================================================================== batches
// A dataset whose image i is filled with i and whose label is i, so batches can be checked.
Dataset indexed_dataset(std::int64_t n) {
  Dataset d{empty({n, 1, 2, 2}), empty({n}, DType::i32)};
  for (std::int64_t i = 0; i < n; ++i) {
    d.images.narrow(0, i, 1).fill_(static_cast<double>(i));
    d.labels.data<std::int32_t>()[i] = static_cast<std::int32_t>(i);
  }
  return d;
}

std::vector<std::vector<std::int64_t>> take(BatchLoader& loader, int count) {
  std::vector<std::vector<std::int64_t>> out;
  for (int i = 0; i < count; ++i) out.push_back(loader.next().indices);
  return out;
}

TEST(DataGather, RowsInOrderAndBoundsChecked) {
  const Tensor source = arange(12, DType::i32).reshape({4, 3});
  const Tensor rows = gather_rows(source, {3, 0, 3});
  EXPECT_EQ(rows.shape(), (Shape{3, 3}));
  EXPECT_EQ(rows.to_vector<std::int32_t>(), (std::vector<std::int32_t>{9, 10, 11, 0, 1, 2, 9, 10, 11}));
  EXPECT_EQ(gather_rows(source.t(), {2}).to_vector<std::int32_t>(),
            (std::vector<std::int32_t>{2, 5, 8, 11}));  // views are gathered by value
  EXPECT_EQ(gather_rows(source, {}).shape(), (Shape{0, 3}));
  EXPECT_LATENT_ERROR(gather_rows(source, {4}), "row index 4");
  EXPECT_LATENT_ERROR(gather_rows(source, {-1}), "row index -1");

  const Dataset d = indexed_dataset(10);
  const Dataset part = d.slice(2, 5);
  EXPECT_EQ(part.size(), 3);
  EXPECT_EQ(part.labels.to_vector<std::int32_t>(), (std::vector<std::int32_t>{2, 3, 4}));
  EXPECT_LATENT_ERROR(d.slice(5, 11), "outside");
}

TEST(BatchLoader, EveryExampleOncePerEpochWithMatchingContents) {
  const Dataset d = indexed_dataset(103);
  BatchLoader loader(d, {.batch_size = 10, .shuffle = true, .seed = 42});
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  std::vector<std::int64_t> previous_epoch;
  for (std::int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<std::int64_t> seen;
    for (std::int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
      const Batch batch = loader.next();
      EXPECT_EQ(batch.epoch, epoch);
      EXPECT_EQ(static_cast<std::int64_t>(batch.indices.size()), b < 10 ? 10 : 3);
      ASSERT_EQ(batch.images.shape(), (Shape{static_cast<std::int64_t>(batch.indices.size()), 1, 2, 2}));
      const std::vector<float> pixels = batch.images.to_vector<float>();
      const std::vector<std::int32_t> labels = batch.labels.to_vector<std::int32_t>();
      for (std::size_t i = 0; i < batch.indices.size(); ++i) {
        EXPECT_EQ(labels[i], batch.indices[i]);
        EXPECT_EQ(pixels[4 * i + 3], static_cast<float>(batch.indices[i]));
      }
      seen.insert(seen.end(), batch.indices.begin(), batch.indices.end());
    }
    EXPECT_EQ(loader.epoch(), epoch);
    std::vector<std::int64_t> sorted = seen;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> all(103);
    std::iota(all.begin(), all.end(), 0);
    EXPECT_EQ(sorted, all) << "epoch " << epoch;
    EXPECT_NE(seen, all) << "epoch " << epoch << " was not shuffled";
    EXPECT_NE(seen, previous_epoch) << "epoch " << epoch << " repeated the previous order";
    previous_epoch = seen;
  }
}

TEST(BatchLoader, SameSeedSameBatchesOtherSeedOtherBatches) {
  const Dataset d = indexed_dataset(64);
  BatchLoader a(d, {.batch_size = 8, .seed = 7});
  BatchLoader b(d, {.batch_size = 8, .seed = 7});
  BatchLoader c(d, {.batch_size = 8, .seed = 8});
  const auto sa = take(a, 30), sb = take(b, 30), sc = take(c, 30);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(BatchLoader, DropLastAndNoShuffle) {
  const Dataset d = indexed_dataset(23);
  BatchLoader ordered(d, {.batch_size = 5, .shuffle = false, .drop_last = true});
  EXPECT_EQ(ordered.batches_per_epoch(), 4);
  const auto batches = take(ordered, 5);
  EXPECT_EQ(batches[0], (std::vector<std::int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(batches[3], (std::vector<std::int64_t>{15, 16, 17, 18, 19}));
  EXPECT_EQ(batches[4], batches[0]);  // the second epoch starts over; 20..22 are dropped
  EXPECT_EQ(ordered.epoch(), 1);

  BatchLoader shuffled(d, {.batch_size = 5, .shuffle = true, .drop_last = true, .seed = 1});
  std::set<std::int64_t> seen;
  for (const auto& batch : take(shuffled, 4)) {
    EXPECT_EQ(batch.size(), 5u);
    seen.insert(batch.begin(), batch.end());
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(BatchLoader, RestoredStateReproducesTheSequence) {
  const Dataset d = indexed_dataset(37);
  // Stop mid-epoch, at an epoch boundary, and at the very start.
  for (const int stop_after : {0, 3, 4, 9, 13}) {
    SCOPED_TRACE(stop_after);
    BatchLoader original(d, {.batch_size = 10, .seed = 2024});
    take(original, stop_after);
    const BatchLoaderState saved = original.state();
    const auto expected = take(original, 17);

    BatchLoader resumed(d, {.batch_size = 10, .seed = 999});  // seed comes from the state
    resumed.restore(saved);
    EXPECT_EQ(resumed.epoch(), saved.epoch);
    EXPECT_EQ(resumed.position(), saved.position);
    EXPECT_EQ(take(resumed, 17), expected);
    EXPECT_EQ(resumed.state().epoch, original.state().epoch);
    EXPECT_EQ(resumed.state().epoch_offset, original.state().epoch_offset);
  }
}

TEST(BatchLoader, InvalidOptionsAndStatesAreErrors) {
  const Dataset d = indexed_dataset(5);
  EXPECT_LATENT_ERROR(BatchLoader(d, {.batch_size = 0}), "batch size");
  EXPECT_LATENT_ERROR(BatchLoader(d, {.batch_size = 6, .drop_last = true}), "never yield");
  EXPECT_LATENT_ERROR(BatchLoader(indexed_dataset(5).slice(0, 0), {}), "empty");
  EXPECT_LATENT_ERROR(BatchLoader(Dataset{d.images, d.labels.narrow(0, 0, 4)}, {}),
                        "same examples");
  BatchLoader loader(d, {.batch_size = 2});
  BatchLoaderState other = loader.state();
  other.dataset_size = 6;
  EXPECT_LATENT_ERROR(loader.restore(other), "6 examples");
  BatchLoaderState beyond = loader.state();
  beyond.position = 99;
  EXPECT_LATENT_ERROR(loader.restore(beyond), "invalid state");
}

}  // namespace
}  // namespace latent
