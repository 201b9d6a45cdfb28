#include "simt/worker_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "simt/launch.h"

namespace latent::simt {

unsigned os_thread_count() {
  static const unsigned count = [] {
    if (const char* env = std::getenv("LATENT_SIMT_THREADS")) {
      const int n = std::atoi(env);
      if (n >= 1) return static_cast<unsigned>(std::min(n, 1024));
    }
    return std::max(1u, std::thread::hardware_concurrency());
  }();
  return count;
}

namespace detail {

WorkerPool& WorkerPool::instance() {
  static WorkerPool pool(os_thread_count());
  return pool;
}

WorkerPool::WorkerPool(unsigned runners) {
  for (unsigned i = 1; i < runners; ++i) workers_.emplace_back([this] { worker_loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void WorkerPool::participate(GridJob& job) {
  BlockCounts local;
  bool ran_any = false;
  for (;;) {
    if (job.failed.load(std::memory_order_relaxed)) break;
    const std::uint64_t b = job.next.fetch_add(1, std::memory_order_relaxed);
    if (b >= job.count) break;
    ran_any = true;
    try {
      const BlockCounts c = job.run_block(job.context, b);
      local.blocks += c.blocks;
      local.threads += c.threads;
      local.fibers += c.fibers;
    } catch (...) {
      std::lock_guard lock(job.result_mutex);
      if (b < job.error_block) {
        job.error_block = b;
        job.error = std::current_exception();
      }
      job.failed.store(true, std::memory_order_relaxed);
    }
  }
  std::lock_guard lock(job.result_mutex);
  job.counts.blocks += local.blocks;
  job.counts.threads += local.threads;
  job.counts.fibers += local.fibers;
  if (ran_any) ++job.os_threads;
}

void WorkerPool::run(GridJob& job) {
  const bool share = !workers_.empty() && job.count > 1;
  if (share) {
    {
      std::lock_guard lock(mutex_);
      jobs_.push_back(&job);
    }
    work_.notify_all();
  }
  participate(job);
  if (share) {
    std::unique_lock lock(mutex_);
    jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &job));
    job.idle.wait(lock, [&] { return job.participants == 0; });
  }
}

void WorkerPool::worker_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    GridJob* job = nullptr;
    work_.wait(lock, [&] {
      if (stopping_) return true;
      for (GridJob* j : jobs_) {
        if (j->next.load(std::memory_order_relaxed) < j->count &&
            !j->failed.load(std::memory_order_relaxed)) {
          job = j;
          return true;
        }
      }
      return false;
    });
    if (stopping_) return;
    ++job->participants;
    lock.unlock();
    participate(*job);
    lock.lock();
    if (--job->participants == 0) job->idle.notify_all();
  }
}

}  // namespace detail
}  // namespace latent::simt
