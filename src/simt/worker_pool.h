// The OS threads that run a grid's blocks.
//
// A launch becomes a GridJob: blocks are numbered 0..count-1 and claimed one at a time from
// an atomic counter by the launching thread and by the pool's workers, so blocks spread
// over all cores whatever their cost. The launching thread always takes part (a pool of
// N - 1 workers gives N runners), and a grid of one block never wakes a worker. After a
// block fails, no new block starts; the failure of the lowest-numbered failed block is
// reported.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace latent::simt::detail {

struct BlockCounts {
  std::uint64_t blocks = 0;
  std::uint64_t threads = 0;
  std::uint64_t fibers = 0;
};

struct GridJob {
  std::uint64_t count = 0;
  // Runs block `b`; throws on failure.
  BlockCounts (*run_block)(const void* context, std::uint64_t b) = nullptr;
  const void* context = nullptr;

  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> failed{false};

  // Guarded by the pool's mutex.
  unsigned participants = 0;
  std::condition_variable idle;

  // Guarded by result_mutex.
  std::mutex result_mutex;
  std::exception_ptr error;
  std::uint64_t error_block = UINT64_MAX;
  BlockCounts counts;
  unsigned os_threads = 0;
};

class WorkerPool {
 public:
  // The process-wide pool, started on first use with os_thread_count() - 1 workers.
  static WorkerPool& instance();

  explicit WorkerPool(unsigned runners);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  unsigned runners() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // Runs every block of `job` on the caller and the workers; returns when all have ended.
  // Rethrows nothing: the job's `error` holds the reported failure.
  void run(GridJob& job);

 private:
  static void participate(GridJob& job);
  void worker_loop();

  std::mutex mutex_;
  std::condition_variable work_;
  std::vector<GridJob*> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace latent::simt::detail
