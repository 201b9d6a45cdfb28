// The backend interface: the primitive operations every device implements.
//
// The ops layer (src/ops) validates shapes, allocates outputs, records autograd and calls
// these primitives; a backend only moves and computes numbers. Adding a device means
// implementing this interface and registering it: no caller changes.
//
// Unless a primitive says otherwise, every tensor argument lives on the backend's device,
// outputs are contiguous and freshly allocated by the caller, and floating primitives
// accept float32 and float64.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/adam_constants.h"
#include "latent/random.h"
#include "latent/tensor.h"

namespace latent::backend {

enum class UnaryOp {
  neg, exp, log, sqrt, abs, square, relu, leaky_relu, silu, sigmoid, tanh,
  pow,         // x^alpha
  add_scalar,  // x + alpha
  mul_scalar,  // x * alpha
  rsub_scalar, // alpha - x
  clamp,       // min(max(x, alpha), beta)
};
const char* unary_op_name(UnaryOp op);

struct UnaryParams {
  double alpha = 0.0;
  double beta = 0.0;
};

enum class BinaryOp { add, sub, mul, div };
const char* binary_op_name(BinaryOp op);

// Geometry of a 2-D convolution of a [N, C, H, W] input by a [OC, C, KH, KW] kernel.
struct ConvGeometry {
  std::int64_t batch, channels, height, width;
  std::int64_t kernel_h, kernel_w;
  std::int64_t stride, padding;
  std::int64_t out_h, out_w;
  std::int64_t col_rows() const { return channels * kernel_h * kernel_w; }
  std::int64_t col_cols() const { return batch * out_h * out_w; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // True when device code runs on the host (the SIMT executor).
  virtual bool simulated() const { return false; }

  // ---- memory
  virtual void* allocate(std::size_t nbytes) = 0;
  virtual void deallocate(void* ptr, std::size_t nbytes) noexcept = 0;
  virtual void copy_to_host(void* host_dst, const void* src, std::size_t nbytes) = 0;
  virtual void copy_from_host(void* dst, const void* host_src, std::size_t nbytes) = 0;
  virtual void synchronize() {}
  // Tests: fill every new allocation with 0xFF bytes (NaN as float, -1 as int32), so an
  // output element a primitive forgot to write cannot pass for a correct one.
  void set_poison_allocations(bool poison) { poison_allocations_ = poison; }
  bool poison_allocations() const { return poison_allocations_; }

  // ---- data movement and creation
  // dst[i] = src[i] for same-shape tensors of any strides and dtypes (converting).
  virtual void copy(const Tensor& src, const Tensor& dst) = 0;
  virtual void fill(const Tensor& dst, double value) = 0;
  virtual void arange(const Tensor& dst, double start, double step) = 0;
  // Element i draws from Philox(key.seed, key.offset, i): see kernels/philox.cuh.
  virtual void random_uniform(const Tensor& dst, PhiloxKey key, double low, double high) = 0;
  virtual void random_normal(const Tensor& dst, PhiloxKey key) = 0;

  // ---- elementwise
  // out = op(x); x and out contiguous, same shape and dtype.
  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryParams p) = 0;
  // dL_dx = dL_dy · op'(x); y = op(x) is passed for ops whose derivative reads it.
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y,
                              const Tensor& dL_dy, const Tensor& dL_dx, UnaryParams p) = 0;
  // out = a op b; a and b are views already broadcast to out's shape (stride 0 where
  // broadcast), out contiguous.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) = 0;

  // ---- reductions
  // out (contiguous, x's rank, size 1 on reduced dims) = sum of x over those dims, in a
  // fixed order (deterministic).
  virtual void sum(const Tensor& x, const Tensor& out) = 0;
  // out[r] = the index of the largest x[r, :] for contiguous x of shape [rows, cols], int32;
  // ties to the lowest index.
  virtual void argmax_rows(const Tensor& x, const Tensor& out) = 0;

  // ---- linear algebra (row-major)
  // C[m, n] = alpha · op(A) · op(B) + beta · C, where A, B, C are raw element pointers on
  // this device with leading dimensions lda, ldb, ldc.
  virtual void gemm(DType dtype, bool transpose_a, bool transpose_b, std::int64_t m,
                    std::int64_t n, std::int64_t k, double alpha, const void* a,
                    std::int64_t lda, const void* b, std::int64_t ldb, double beta, void* c,
                    std::int64_t ldc) = 0;
  // cols [C·KH·KW, N·OH·OW] from x [N, C, H, W]; zero where the window leaves the image.
  virtual void im2col(const ConvGeometry& g, const Tensor& x, const Tensor& cols) = 0;
  // x [N, C, H, W] = the sum of every column entry that im2col would have read from it.
  virtual void col2im(const ConvGeometry& g, const Tensor& cols, const Tensor& x) = 0;

  // ---- optimizers
  // One fused Adam/AdamW update (kernels/adam.cuh) of a contiguous parameter, its gradient
  // and its two moment buffers, all of one dtype.
  virtual void adam_step(const kernels::AdamConstants& c, const Tensor& param,
                         const Tensor& grad, const Tensor& exp_avg,
                         const Tensor& exp_avg_sq) = 0;

 private:
  bool poison_allocations_ = false;
};

// The backend for a device; throws when none is available for it.
Backend& get(Device device);
Backend& cpu();
// The cuda backend when it can run here (a GPU is present, or it is the SIMT build), else
// nullptr. Defined in src/backends/cuda.
Backend* cuda_if_available();

}  // namespace latent::backend
