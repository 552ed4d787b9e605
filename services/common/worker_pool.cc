#include "services/common/worker_pool.h"

#include <algorithm>
#include <utility>

#include "absl/synchronization/blocking_counter.h"

namespace entroserve {

WorkerPool::WorkerPool(int threads) {
  const int n = std::max(threads, 1);
  threads_.reserve(n);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

void WorkerPool::Schedule(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

void WorkerPool::ParallelFor(int n, const std::function<void(int)>& body) {
  if (n < 1) return;
  absl::BlockingCounter done(n - 1);
  for (int i = 1; i < n; ++i) {
    Schedule([&body, &done, i] {
      body(i);
      done.DecrementCount();
    });
  }
  body(0);
  done.Wait();
}

void WorkerPool::Work() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* pool) { return pool->stopping_ || !pool->tasks_.empty(); }, this));
      // Stop only once the queue is drained.
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace entroserve
