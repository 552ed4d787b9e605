// A small fixed pool of threads running tasks first-in first-out: where the
// sampler service samples rows, so that gRPC reactions only hand work over.
//
// Thread-safe. The destructor runs every task scheduled before it to
// completion, then joins the threads (the drain of a graceful shutdown).
#ifndef ENTROSERVE_SERVICES_COMMON_WORKER_POOL_H_
#define ENTROSERVE_SERVICES_COMMON_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace entroserve {

class WorkerPool {
 public:
  // Starts `threads` threads (at least 1).
  explicit WorkerPool(int threads);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` to run on one of the threads. Tasks must not throw.
  void Schedule(std::function<void()> task);

  // Runs body(0) .. body(n - 1) and returns when all have: body(0) on the
  // calling thread, the others on the pool. `body` must not throw.
  void ParallelFor(int n, const std::function<void(int)>& body);

  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void Work();

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace entroserve

#endif  // ENTROSERVE_SERVICES_COMMON_WORKER_POOL_H_
