// The FSQ ops: validate, allocate, dispatch on the device (src/backends/fsq.h), record the
// straight-through backward. The math is in kernels/fsq.cuh; docs/fsq.md explains it.
#include "latent/fsq.h"

#include <limits>
#include <sstream>

#include "backends/fsq.h"
#include "backends/registry.h"
#include "ops/checks.h"
#include "latent/autograd.h"

namespace latent {
namespace {

std::string levels_str(const std::vector<std::int64_t>& levels) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < levels.size(); ++i) out << (i ? ", " : "") << levels[i];
  out << "]";
  return out.str();
}

std::int64_t check_levels(const char* op, const std::vector<std::int64_t>& levels) {
  LATENT_CHECK(!levels.empty(), op, ": levels must not be empty");
  std::int64_t size = 1;
  for (const std::int64_t L : levels) {
    LATENT_CHECK(L >= 2, op, ": every level must be at least 2, got levels ",
                 levels_str(levels));
    LATENT_CHECK(size <= std::numeric_limits<std::int32_t>::max() / L, op,
                 ": the implicit codebook of levels ", levels_str(levels),
                 " has more than 2^31 - 1 codes; indices are int32");
    size *= L;
  }
  return size;
}

}  // namespace

std::int64_t fsq_codebook_size(const std::vector<std::int64_t>& levels) {
  return check_levels("fsq_codebook_size", levels);
}

FsqOutput fsq_quantize(const Tensor& z, const std::vector<std::int64_t>& levels,
                       const FsqOptions& options) {
  check_levels("fsq_quantize", levels);
  LATENT_CHECK(z.defined(), "fsq_quantize: undefined tensor");
  LATENT_CHECK(is_floating(z.dtype()), "fsq_quantize: expected float32 or float64 z, got ",
               dtype_name(z.dtype()), " of shape ", shape_str(z.shape()));
  const std::int64_t d = static_cast<std::int64_t>(levels.size());
  LATENT_CHECK(z.dim() >= 1 && z.size(-1) == d, "fsq_quantize: z ", shape_str(z.shape()),
               " must end in a dimension of ", d, " channels, one per level of ",
               levels_str(levels));
  const Tensor input = z.contiguous();
  FsqOutput out;
  out.codes = empty(input.shape(), input.dtype(), input.device());
  out.indices = empty(Shape(input.shape().begin(), input.shape().end() - 1), DType::i32,
                      input.device());
  if (input.numel() > 0) {
    // NaN has no level: an error naming the element (in the same pass, on the device).
    // ±Inf is a value: it saturates to the outermost level.
    const backend::CheckMessage nan_message = [shape = input.shape()](std::int64_t i) {
      return detail::concat("fsq_quantize: z ", shape_str(shape), " holds NaN at element ", i,
                            " (NaN has no level; ±Inf goes to the outermost one)");
    };
    backend::lookup<backend::FsqTable>(input.device())
        .quantize(input, out.codes, out.indices, levels, options, nan_message);
  }
  const Tensor saved_z = input.detach();
  out.codes = record(out.codes, "fsq_quantize", {input},
                     [saved_z, levels, options](const Tensor& g) {
                       const Tensor dL_dcodes = g.contiguous();
                       Tensor dL_dz = empty_like(saved_z);
                       if (dL_dz.numel() > 0) {
                         backend::lookup<backend::FsqTable>(saved_z.device())
                             .quantize_backward(saved_z, dL_dcodes, dL_dz, levels, options);
                       }
                       return std::vector<Tensor>{dL_dz};
                     });
  return out;
}

Tensor fsq_indices_to_codes(const Tensor& indices, const std::vector<std::int64_t>& levels,
                            const FsqOptions& options, DType dtype) {
  check_levels("fsq_indices_to_codes", levels);
  LATENT_CHECK(indices.defined(), "fsq_indices_to_codes: undefined tensor");
  LATENT_CHECK(indices.dtype() == DType::i32, "fsq_indices_to_codes: expected int32 indices, got ",
               dtype_name(indices.dtype()), " of shape ", shape_str(indices.shape()));
  LATENT_CHECK(is_floating(dtype), "fsq_indices_to_codes: codes must be float32 or float64, not ",
               dtype_name(dtype));
  const Tensor input = indices.contiguous();
  Shape shape = input.shape();
  shape.push_back(static_cast<std::int64_t>(levels.size()));
  const std::int64_t size = fsq_codebook_size(levels);
  ops::check_index_range(input, 0, size, "fsq_indices_to_codes: ",
                         detail::concat(" is outside the implicit codebook [0, ", size, ")"));
  Tensor codes = empty(shape, dtype, input.device());
  if (input.numel() > 0) backend::lookup<backend::FsqTable>(input.device()).indices_to_codes(input, codes, levels, options);
  return codes;
}

Tensor fsq_codes_to_indices(const Tensor& codes, const std::vector<std::int64_t>& levels,
                            const FsqOptions& options) {
  check_levels("fsq_codes_to_indices", levels);
  LATENT_CHECK(codes.defined(), "fsq_codes_to_indices: undefined tensor");
  LATENT_CHECK(is_floating(codes.dtype()), "fsq_codes_to_indices: expected float32 or float64 codes, got ",
               dtype_name(codes.dtype()), " of shape ", shape_str(codes.shape()));
  const std::int64_t d = static_cast<std::int64_t>(levels.size());
  LATENT_CHECK(codes.dim() >= 1 && codes.size(-1) == d, "fsq_codes_to_indices: codes ",
               shape_str(codes.shape()), " must end in a dimension of ", d,
               " channels, one per level of ", levels_str(levels));
  const Tensor input = codes.detach().contiguous();
  Tensor indices = empty(Shape(input.shape().begin(), input.shape().end() - 1), DType::i32,
                         input.device());
  if (input.numel() > 0) {
    backend::lookup<backend::FsqTable>(input.device()).codes_to_indices(input, indices, levels, options);
  }
  return indices;
}

}  // namespace latent
