// Batches: row gathering, dataset slices and the deterministic, resumable BatchLoader.
//
// Shuffling is Fisher-Yates driven by Generator::next_int (Philox, exactly uniform by
// rejection), so the permutation of every epoch is a pure function of the seed and the
// generator offset at the start of that epoch. The loader's state is therefore just
// (seed, offset at epoch start, epoch, position): restoring it redraws the same permutation
// and skips the examples already delivered.
#include <cstring>
#include <numeric>

#include "io/io_detail.h"
#include "latent/autograd.h"
#include "latent/data.h"

namespace latent {

// ------------------------------------------------------------------ helpers
Tensor gather_rows(const Tensor& source, const std::vector<std::int64_t>& rows) {
  LATENT_CHECK(source.defined() && source.dim() >= 1,
               "gather_rows: expected a tensor with at least one dimension, got ",
               source.defined() ? shape_str(source.shape()) : "undefined");
  const Tensor src = io_detail::host_contiguous(source);
  const std::int64_t n = src.size(0);
  Shape shape = src.shape();
  shape[0] = static_cast<std::int64_t>(rows.size());
  Tensor out = empty(shape, src.dtype());
  const std::size_t row_bytes =
      static_cast<std::size_t>(n == 0 ? 0 : src.numel() / n) * dtype_size(src.dtype());
  const char* from = static_cast<const char*>(src.data_ptr());
  char* to = static_cast<char*>(out.data_ptr());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    LATENT_CHECK(rows[i] >= 0 && rows[i] < n, "gather_rows: row index ", rows[i],
                 " out of range for a tensor of shape ", shape_str(src.shape()));
    if (row_bytes > 0) std::memcpy(to + i * row_bytes, from + rows[i] * row_bytes, row_bytes);
  }
  return out;
}

Dataset Dataset::slice(std::int64_t begin, std::int64_t end) const {
  LATENT_CHECK(0 <= begin && begin <= end && end <= size(), "Dataset::slice: range [", begin,
               ", ", end, ") outside a dataset of ", size(), " examples");
  NoGradGuard no_grad;
  return Dataset{images.narrow(0, begin, end - begin), labels.narrow(0, begin, end - begin)};
}

// ------------------------------------------------------------------ BatchLoader
BatchLoader::BatchLoader(Dataset dataset, BatchLoaderOptions options)
    : options_(options), generator_(options.seed) {
  LATENT_CHECK(dataset.images.defined() && dataset.labels.defined(),
               "BatchLoader: the dataset has no images or no labels");
  LATENT_CHECK(dataset.images.dim() >= 1 && dataset.labels.dim() == 1 &&
                   dataset.images.size(0) == dataset.labels.size(0),
               "BatchLoader: images ", shape_str(dataset.images.shape()), " and labels ",
               shape_str(dataset.labels.shape()), " do not describe the same examples");
  LATENT_CHECK(dataset.size() > 0, "BatchLoader: the dataset is empty");
  LATENT_CHECK(options.batch_size > 0, "BatchLoader: batch size must be positive, got ",
               options.batch_size);
  LATENT_CHECK(!options.drop_last || options.batch_size <= dataset.size(),
               "BatchLoader: with drop_last, a batch size of ", options.batch_size,
               " over ", dataset.size(), " examples would never yield a batch");
  dataset_ = Dataset{io_detail::host_contiguous(dataset.images),
                     io_detail::host_contiguous(dataset.labels)};
  begin_epoch();
}

std::int64_t BatchLoader::examples_per_epoch() const {
  const std::int64_t n = dataset_.size();
  return options_.drop_last ? n - n % options_.batch_size : n;
}

std::int64_t BatchLoader::batches_per_epoch() const {
  return (examples_per_epoch() + options_.batch_size - 1) / options_.batch_size;
}

void BatchLoader::begin_epoch() {
  epoch_offset_ = generator_.offset();
  const std::int64_t n = dataset_.size();
  order_.resize(static_cast<std::size_t>(n));
  std::iota(order_.begin(), order_.end(), std::int64_t{0});
  if (!options_.shuffle) return;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const std::int64_t j = generator_.next_int(i + 1);  // uniform in [0, i]
    std::swap(order_[static_cast<std::size_t>(i)], order_[static_cast<std::size_t>(j)]);
  }
}

Batch BatchLoader::next() {
  if (position_ >= examples_per_epoch()) {
    ++epoch_;
    position_ = 0;
    begin_epoch();
  }
  const std::int64_t count = std::min(options_.batch_size, examples_per_epoch() - position_);
  Batch batch;
  batch.epoch = epoch_;
  batch.indices.assign(order_.begin() + position_, order_.begin() + position_ + count);
  position_ += count;
  NoGradGuard no_grad;
  batch.images = gather_rows(dataset_.images, batch.indices).to(options_.device);
  batch.labels = gather_rows(dataset_.labels, batch.indices).to(options_.device);
  return batch;
}

BatchLoaderState BatchLoader::state() const {
  return BatchLoaderState{generator_.seed(), epoch_offset_, epoch_, position_, dataset_.size()};
}

void BatchLoader::restore(const BatchLoaderState& state) {
  LATENT_CHECK(state.dataset_size == dataset_.size(), "BatchLoader::restore: the state is for a "
               "dataset of ", state.dataset_size, " examples, this loader has ", dataset_.size());
  LATENT_CHECK(state.epoch >= 0 && state.position >= 0 && state.position <= examples_per_epoch(),
               "BatchLoader::restore: invalid state (epoch ", state.epoch, ", position ",
               state.position, " of ", examples_per_epoch(), ")");
  options_.seed = state.seed;
  generator_.set_state(state.seed, state.epoch_offset);
  epoch_ = state.epoch;
  begin_epoch();
  position_ = state.position;
}

}  // namespace latent
