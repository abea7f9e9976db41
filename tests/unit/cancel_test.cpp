#include "runtime/cancel.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace dbops::runtime {
namespace {

using namespace std::chrono_literals;

TEST(Cancel, SleepEndsEarlyWhenTheFlagIsRaised) {
  std::atomic<bool> cancel{false};
  EXPECT_TRUE(sleep_unless_cancelled(1ms, cancel));
  cancel = true;
  EXPECT_FALSE(sleep_unless_cancelled(1h, cancel));
}

TEST(Cancel, TheTimerRaisesTheFlagWhenItsTimeoutPasses) {
  std::atomic<bool> flag{false};
  {
    CancelTimer timer(20ms, flag);
    while (!flag.load()) std::this_thread::sleep_for(1ms);
    EXPECT_TRUE(timer.timed_out());
  }
  EXPECT_TRUE(flag.load());
}

TEST(Cancel, TheTimerPassesOnItsParentAndRaisesNothingOnceDestroyed) {
  std::atomic<bool> parent{false};
  std::atomic<bool> flag{false};
  {
    CancelTimer timer(0ms, flag, &parent);
    parent = true;
    while (!flag.load()) std::this_thread::sleep_for(1ms);
    EXPECT_FALSE(timer.timed_out());
  }
  std::atomic<bool> untouched{false};
  { CancelTimer timer(1h, untouched); }
  { CancelTimer timer(0ms, untouched); }
  EXPECT_FALSE(untouched.load());
}

}  // namespace
}  // namespace dbops::runtime
