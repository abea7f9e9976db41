// The job queue contract on the embedded SQLite store, and the retry delay.
#include <gtest/gtest.h>

#include <atomic>

#include "store/sqlite/sqlite_queue.hpp"
#include "support/queue_suite.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

using namespace std::chrono_literals;

// Each test gets a new state file in one directory kept for the binary.
Result<std::unique_ptr<store::JobQueue>> new_sqlite_queue(const store::RetryPolicy& retry) {
  static TempDir dir;
  static std::atomic<int> n{0};
  return store::sqlite::open_sqlite_queue(
      (dir.path() / ("queue-" + std::to_string(++n) + ".db")).string(), retry);
}

[[maybe_unused]] const int kSuite = link_queue_suite();
INSTANTIATE_TEST_SUITE_P(Sqlite, QueueSuite,
                         ::testing::Values(QueueImpl{"sqlite", new_sqlite_queue}),
                         [](const auto& info) { return info.param.name; });

TEST(RetryDelay, DoublesUpToTheCapWithJitterBelow) {
  const store::RetryPolicy p{.base = 1s, .max = 60s, .jitter = 0.5};
  EXPECT_EQ(store::retry_delay(p, 1, 0.0), 1s);
  EXPECT_EQ(store::retry_delay(p, 2, 0.0), 2s);
  EXPECT_EQ(store::retry_delay(p, 4, 0.0), 8s);
  EXPECT_EQ(store::retry_delay(p, 30, 0.0), 60s);
  EXPECT_EQ(store::retry_delay(p, 200, 0.0), 60s);
  EXPECT_EQ(store::retry_delay(p, 2, 1.0), 1s);
  EXPECT_EQ(store::retry_delay(p, 0, 0.0), 1s);
}

TEST(SqliteQueue, TwoQueuesOnOneFileShareTheJobs) {
  TempDir dir;
  const std::string path = (dir.path() / "state.db").string();
  auto a = store::sqlite::open_sqlite_queue(path);
  auto b = store::sqlite::open_sqlite_queue(path);
  ASSERT_TRUE(a && b);
  store::JobSpec s;
  s.kind = "probe";
  ASSERT_TRUE((*a)->enqueue(s));
  auto got = (*b)->claim({.owner = "b"});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->size(), 1U);
  auto again = (*a)->claim({.owner = "a"});
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
}

}  // namespace
}  // namespace dbops::testing
