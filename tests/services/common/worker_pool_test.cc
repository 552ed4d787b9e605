#include "services/common/worker_pool.h"

#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

TEST(WorkerPoolTest, HasAtLeastOneThread) {
  EXPECT_EQ(WorkerPool(0).size(), 1);
  EXPECT_EQ(WorkerPool(-3).size(), 1);
  EXPECT_EQ(WorkerPool(3).size(), 3);
}

TEST(WorkerPoolTest, DestructorRunsEveryScheduledTask) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2);
    for (int i = 0; i < 1000; ++i) pool.Schedule([&ran] { ran.fetch_add(1); });
  }
  EXPECT_EQ(ran.load(), 1000);
}

TEST(WorkerPoolTest, TasksRunOnThePoolsThreadsInParallel) {
  WorkerPool pool(3);
  absl::Mutex mu;
  std::set<std::thread::id> ids;
  int waiting = 0;
  for (int i = 0; i < 3; ++i) {
    pool.Schedule([&] {
      absl::MutexLock lock(&mu);
      ids.insert(std::this_thread::get_id());
      ++waiting;
      // Each task waits until all three run at once: only possible with
      // three threads working in parallel.
      mu.Await(absl::Condition(
          +[](int* n) { return *n == 3; }, &waiting));
    });
  }
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](int* n) { return *n == 3; }, &waiting));
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 0u);
}

TEST(WorkerPoolTest, OneThreadRunsTasksInScheduleOrder) {
  std::vector<int> order;
  {
    WorkerPool pool(1);
    for (int i = 0; i < 100; ++i) pool.Schedule([&order, i] { order.push_back(i); });
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(WorkerPoolTest, TasksMayScheduleMoreTasks) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2);
    pool.Schedule([&] {
      ran.fetch_add(1);
      pool.Schedule([&] { ran.fetch_add(1); });
    });
    // The thread running the outer task checks the queue again after it,
    // so the drain in the destructor runs the nested task too.
  }
  EXPECT_EQ(ran.load(), 2);
}

TEST(WorkerPoolTest, ParallelForRunsEachIndexOnceAndIndexZeroOnTheCaller) {
  WorkerPool pool(3);
  constexpr int kCount = 50;
  std::vector<std::atomic<int>> runs(kCount);
  std::thread::id zero_ran_on;
  pool.ParallelFor(kCount, [&](int i) {
    ++runs[i];
    if (i == 0) zero_ran_on = std::this_thread::get_id();
  });
  // Returned only after every index ran, each exactly once.
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(runs[i].load(), 1) << i;
  EXPECT_EQ(zero_ran_on, std::this_thread::get_id());
  pool.ParallelFor(0, [&](int) { ADD_FAILURE() << "no index to run"; });
}

}  // namespace
}  // namespace entroserve
