// Streams, events and the device-side checks (include/latent/stream.h), on cuda: under the
// SIMT executor in CI, on the GPU where there is one. Streams there are ordered queues; the
// tests check that work goes to the current stream, that an event orders two streams, that
// the allocator keeps blocks per stream, and that a failed check surfaces with its message
// at the next check point (or at once with immediate checks).
#include <gtest/gtest.h>

#include <vector>

#include "latent/latent.h"
#include "test_util.h"
#include "tests/op_harness.h"

namespace latent {
namespace {

const Device kCuda = Device::cuda(0);

// Restores deferred checks whatever a test does.
struct DeferredChecks {
  bool previous = immediate_checks();
  DeferredChecks() { set_immediate_checks(false); }
  ~DeferredChecks() { set_immediate_checks(previous); }
};

TEST(Stream, GuardMakesAStreamCurrentAndRestoresThePrevious) {
  LATENT_SKIP_WITHOUT_CUDA();
  const Stream initial = current_stream(kCuda);
  EXPECT_TRUE(initial.is_default());
  const Stream side = Stream::create(kCuda);
  EXPECT_FALSE(side.is_default());
  {
    StreamGuard guard(side);
    EXPECT_EQ(current_stream(kCuda), side);
    {
      const Stream wrapped = Stream::wrap(kCuda, side.native());
      StreamGuard inner(wrapped);
      EXPECT_EQ(current_stream(kCuda).native(), side.native());
    }
    EXPECT_EQ(current_stream(kCuda), side);
  }
  EXPECT_EQ(current_stream(kCuda), initial);
  // cpu has one in-order queue: its current stream is always the default one.
  EXPECT_TRUE(current_stream(Device::cpu()).is_default());
}

TEST(Stream, WorkGoesToTheCurrentStream) {
  LATENT_SKIP_WITHOUT_CUDA();
  Generator gen(1);
  const Tensor x = randn({1000}, gen, DType::f32, kCuda);
  const Stream a = Stream::create(kCuda), b = Stream::create(kCuda);
  const std::uint64_t a0 = a.launches(), b0 = b.launches();
  Tensor y;
  {
    StreamGuard guard(a);
    y = relu(x);
  }
  EXPECT_GT(a.launches(), a0);
  EXPECT_EQ(b.launches(), b0);
  Tensor z;
  {
    StreamGuard guard(b);
    z = mul(y, 2.0);
  }
  EXPECT_GT(b.launches(), b0);
  const std::vector<float> xs = x.to_vector<float>(), zs = z.to_vector<float>();
  for (std::size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(zs[i], 2.0f * (xs[i] > 0 ? xs[i] : 0.0f));
}

TEST(Stream, AnEventOrdersTwoStreams) {
  LATENT_SKIP_WITHOUT_CUDA();
  const Stream producer = Stream::create(kCuda), consumer = Stream::create(kCuda);
  Event ready(kCuda);
  Tensor data;
  {
    StreamGuard guard(producer);
    data = full({4097}, 3.0, DType::f32, kCuda);
    data = mul(data, data);
    ready.record();
  }
  Tensor result;
  {
    StreamGuard guard(consumer);
    ready.wait();  // the consumer's work starts after the producer's
    result = sum(data);
  }
  ready.synchronize();
  EXPECT_TRUE(ready.query());
  {
    StreamGuard guard(consumer);
    EXPECT_EQ(result.item<float>(), 9.0f * 4097);
  }
  consumer.synchronize();
}

TEST(Stream, TheAllocatorKeepsBlocksPerStream) {
  LATENT_SKIP_WITHOUT_CUDA();
  const Stream a = Stream::create(kCuda), b = Stream::create(kCuda);
  void* first = nullptr;
  {
    StreamGuard guard(a);
    first = empty({12345}, DType::f32, kCuda).data_ptr();  // freed at once, cached for a
    EXPECT_EQ(empty({12345}, DType::f32, kCuda).data_ptr(), first);  // a reuses it
  }
  {
    StreamGuard guard(b);
    const Tensor other = empty({12345}, DType::f32, kCuda);
    EXPECT_NE(other.data_ptr(), first);  // b never gets a's block
  }
}

TEST(Stream, CountersSeeCopiesToTheHostAndSynchronizations) {
  LATENT_SKIP_WITHOUT_CUDA();
  const Tensor x = full({64}, 1.5, DType::f32, kCuda);
  const RuntimeCounters before = runtime_counters(kCuda);
  const Tensor y = add(x, x);
  const RuntimeCounters enqueued = runtime_counters(kCuda) - before;
  EXPECT_EQ(enqueued.host_synchronizations, 0u);
  EXPECT_EQ(enqueued.device_to_host_copies, 0u);
  EXPECT_GE(enqueued.kernel_launches, 1u);
  EXPECT_EQ(y.to_vector<float>()[63], 3.0f);
  const RuntimeCounters read = runtime_counters(kCuda) - before;
  EXPECT_EQ(read.host_synchronizations, 1u);
  EXPECT_EQ(read.device_to_host_copies, 1u);
  // Nothing pending: checking costs no synchronization.
  check_errors(kCuda);
  EXPECT_EQ((runtime_counters(kCuda) - before).host_synchronizations, 1u);
  EXPECT_EQ(runtime_counters(Device::cpu()).host_synchronizations, 0u);
}

TEST(DeviceChecks, AFailedCheckSurfacesAtTheNextCheckPointWithItsMessage) {
  LATENT_SKIP_WITHOUT_CUDA();
  DeferredChecks deferred;
  const Tensor codebook = zeros({16, 4}, DType::f32, kCuda);
  const Tensor bad = from_vector<std::int32_t>({0, 3, 16, 2, 99}, {5}).to(kCuda);
  const RuntimeCounters before = runtime_counters(kCuda);
  Tensor out;
  EXPECT_NO_THROW(out = vq_gather(codebook, bad));  // enqueued; the host did not wait
  EXPECT_EQ((runtime_counters(kCuda) - before).host_synchronizations, 0u);
  EXPECT_TRUE(test::throws_error([] { check_errors(kCuda); },
                                 {"vq_gather", "index 16 at position 2",
                                  "out of range for a codebook of 16 codes"}));
  // The word was reset: the next check point passes.
  EXPECT_NO_THROW(check_errors(kCuda));

  // On the passing path a check point is one synchronization, however many checks wait.
  const Tensor good = from_vector<std::int32_t>({0, 15, 3}, {3}).to(kCuda);
  (void)vq_gather(codebook, good);
  (void)vq_gather(codebook, good);
  const RuntimeCounters pending = runtime_counters(kCuda);
  EXPECT_NO_THROW(check_errors(kCuda));
  EXPECT_EQ((runtime_counters(kCuda) - pending).host_synchronizations, 1u);
}

TEST(DeviceChecks, TheFirstEnqueuedFailureWinsAndReadsSurfaceIt) {
  LATENT_SKIP_WITHOUT_CUDA();
  DeferredChecks deferred;
  Tensor logvar = zeros({2, 3}, DType::f32, kCuda);
  logvar = div(logvar, logvar);  // NaN
  const Tensor mu = zeros({2, 3}, DType::f32, kCuda);
  (void)gaussian_kl(mu, logvar);  // fails first
  (void)vq_gather(zeros({4, 2}, DType::f32, kCuda),
                  from_vector<std::int32_t>({7}, {1}).to(kCuda));  // fails second
  // Reading device data is a check point too.
  EXPECT_TRUE(test::throws_error([&] { (void)mu.to_vector<float>(); },
                                 {"gaussian_kl", "logvar [2, 3]", "NaN or Inf"}));
  EXPECT_NO_THROW(check_errors(kCuda));  // both were consumed with the word
}

TEST(DeviceChecks, ImmediateChecksThrowInsideTheOp) {
  LATENT_SKIP_WITHOUT_CUDA();
  DeferredChecks deferred;
  set_immediate_checks(true);
  Tensor z = from_vector<float>({0, 1, 2, 3, 4, 5}, {3, 2}).to(kCuda);
  z = div(z, zeros({3, 2}, DType::f32, kCuda));  // 0/0 = NaN in row 0, Inf elsewhere
  const Tensor codebook = from_vector<float>({0, 0, 1, 1}, {2, 2}).to(kCuda);
  try {
    (void)vq_argmin(codebook, z);
    ADD_FAILURE() << "vq_argmin did not throw inside the op";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vq_argmin: codebook [3, 2] holds a non-finite value"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace latent
