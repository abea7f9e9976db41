// One test suite for every JobQueue implementation: a binary instantiates
// it with a factory that returns a new, empty queue for each test.
//
//   [[maybe_unused]] const int kSuite = link_queue_suite();
//   INSTANTIATE_TEST_SUITE_P(Sqlite, QueueSuite, ::testing::Values(QueueImpl{"sqlite", factory}),
//                            [](const auto& info) { return info.param.name; });
//
// The suite's tests live in the static test-support library; the reference
// to link_queue_suite() makes the linker keep them.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"
#include "store/queue.hpp"

namespace dbops::testing {

struct QueueImpl {
  std::string name;
  // A new, empty queue with this retry policy.
  std::function<Result<std::unique_ptr<store::JobQueue>>(const store::RetryPolicy&)> make;
};

int link_queue_suite();

class QueueSuite : public ::testing::TestWithParam<QueueImpl> {
 protected:
  void SetUp() override;
  // A queue with a fast retry policy (10 ms base) unless given another.
  std::unique_ptr<store::JobQueue> open(const store::RetryPolicy& retry = fast_retry());
  static store::RetryPolicy fast_retry();

  std::unique_ptr<store::JobQueue> queue_;
};

}  // namespace dbops::testing
