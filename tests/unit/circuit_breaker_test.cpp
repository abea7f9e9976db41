#include "core/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>
#include <vector>

#include "core/clock.hpp"

namespace dbops {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using State = CircuitBreaker::State;

void fail_times(CircuitBreaker& breaker, int n) {
  for (int i = 0; i < n; ++i) breaker.record_failure();
}

TEST(CircuitBreakerTest, StartsClosedAndAllowsCalls) {
  FakeClock clock;
  CircuitBreaker breaker(CircuitBreakerOptions{}, clock);
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  EXPECT_EQ(breaker.opened_at(), std::chrono::steady_clock::time_point{});
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(breaker.allow());
}

TEST(CircuitBreakerTest, OpensAfterConsecutiveFailures) {
  FakeClock clock;
  CircuitBreaker breaker(CircuitBreakerOptions{.failure_threshold = 3}, clock);
  fail_times(breaker, 2);
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_EQ(breaker.consecutive_failures(), 2);
  EXPECT_TRUE(breaker.allow());
  clock.advance(seconds{1});
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kOpen);
  EXPECT_EQ(breaker.consecutive_failures(), 3);
  EXPECT_EQ(breaker.opened_at(), clock.steady_now());
}

TEST(CircuitBreakerTest, SuccessResetsTheFailureCount) {
  FakeClock clock;
  CircuitBreaker breaker(CircuitBreakerOptions{.failure_threshold = 3}, clock);
  fail_times(breaker, 2);
  breaker.record_success();
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  fail_times(breaker, 2);
  EXPECT_EQ(breaker.state(), State::kClosed);
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kOpen);
}

TEST(CircuitBreakerTest, RejectsWhileOpen) {
  FakeClock clock;
  CircuitBreaker breaker(
      CircuitBreakerOptions{.failure_threshold = 1, .open_duration = seconds{30}}, clock);
  breaker.record_failure();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(breaker.allow());
  clock.advance(seconds{30} - milliseconds{1});
  EXPECT_FALSE(breaker.allow());
  EXPECT_EQ(breaker.state(), State::kOpen);
}

TEST(CircuitBreakerTest, TurnsHalfOpenAfterTheOpenDuration) {
  FakeClock clock;
  CircuitBreaker breaker(
      CircuitBreakerOptions{.failure_threshold = 1, .open_duration = seconds{30}}, clock);
  breaker.record_failure();
  const auto opened = breaker.opened_at();
  clock.advance(seconds{30});
  // state() already reports it; allow() makes the transition.
  EXPECT_EQ(breaker.state(), State::kHalfOpen);
  EXPECT_TRUE(breaker.allow());
  EXPECT_EQ(breaker.state(), State::kHalfOpen);
  EXPECT_EQ(breaker.opened_at(), opened);
}

TEST(CircuitBreakerTest, LimitsTrialsWhileHalfOpen) {
  FakeClock clock;
  CircuitBreaker breaker(CircuitBreakerOptions{.failure_threshold = 1,
                                               .open_duration = seconds{10},
                                               .half_open_max_trials = 2,
                                               .success_threshold = 3},
                         clock);
  breaker.record_failure();
  clock.advance(seconds{10});
  EXPECT_TRUE(breaker.allow());
  EXPECT_TRUE(breaker.allow());
  EXPECT_FALSE(breaker.allow());
  EXPECT_FALSE(breaker.allow());
  // A finished trial frees its slot.
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kHalfOpen);
  EXPECT_TRUE(breaker.allow());
  EXPECT_FALSE(breaker.allow());
}

TEST(CircuitBreakerTest, DefaultAllowsOneTrial) {
  FakeClock clock;
  CircuitBreaker breaker(CircuitBreakerOptions{}, clock);
  fail_times(breaker, 5);
  EXPECT_EQ(breaker.state(), State::kOpen);
  clock.advance(seconds{30});
  EXPECT_TRUE(breaker.allow());
  EXPECT_FALSE(breaker.allow());
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kClosed);
  EXPECT_TRUE(breaker.allow());
  EXPECT_TRUE(breaker.allow());
}

TEST(CircuitBreakerTest, SuccessesInHalfOpenCloseIt) {
  FakeClock clock;
  CircuitBreaker breaker(
      CircuitBreakerOptions{
          .failure_threshold = 2, .open_duration = seconds{5}, .success_threshold = 2},
      clock);
  fail_times(breaker, 2);
  clock.advance(seconds{5});
  ASSERT_TRUE(breaker.allow());
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kHalfOpen);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  ASSERT_TRUE(breaker.allow());
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kClosed);
  // Closed again: the full threshold applies anew.
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kClosed);
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kOpen);
}

TEST(CircuitBreakerTest, FailureInHalfOpenReopensWithAFreshPeriod) {
  FakeClock clock;
  CircuitBreaker breaker(
      CircuitBreakerOptions{
          .failure_threshold = 3, .open_duration = seconds{30}, .success_threshold = 2},
      clock);
  fail_times(breaker, 3);
  clock.advance(seconds{30});
  ASSERT_TRUE(breaker.allow());
  breaker.record_success();  // one of two needed
  ASSERT_TRUE(breaker.allow());
  clock.advance(seconds{2});
  breaker.record_failure();  // a single failure is enough in half-open
  EXPECT_EQ(breaker.state(), State::kOpen);
  EXPECT_EQ(breaker.opened_at(), clock.steady_now());
  EXPECT_EQ(breaker.consecutive_failures(), 1);
  clock.advance(seconds{29});
  EXPECT_FALSE(breaker.allow());
  clock.advance(seconds{1});
  EXPECT_TRUE(breaker.allow());
  // The earlier half-open success does not count towards closing it now.
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kHalfOpen);
  ASSERT_TRUE(breaker.allow());
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kClosed);
}

TEST(CircuitBreakerTest, LateResultsWhileOpenDoNotChangeTheState) {
  FakeClock clock;
  CircuitBreaker breaker(
      CircuitBreakerOptions{.failure_threshold = 2, .open_duration = seconds{30}}, clock);
  ASSERT_TRUE(breaker.allow());
  ASSERT_TRUE(breaker.allow());
  ASSERT_TRUE(breaker.allow());
  fail_times(breaker, 2);
  const auto opened = breaker.opened_at();
  clock.advance(seconds{20});
  breaker.record_failure();  // the third call, let through while closed
  EXPECT_EQ(breaker.opened_at(), opened);
  EXPECT_EQ(breaker.consecutive_failures(), 3);
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kOpen);
  EXPECT_EQ(breaker.consecutive_failures(), 0);
  clock.advance(seconds{10});
  EXPECT_TRUE(breaker.allow());
}

TEST(CircuitBreakerTest, CountsBelowOneActAsOne) {
  FakeClock clock;
  CircuitBreaker breaker(CircuitBreakerOptions{.failure_threshold = 0,
                                               .open_duration = seconds{1},
                                               .half_open_max_trials = -3,
                                               .success_threshold = 0},
                         clock);
  breaker.record_failure();
  EXPECT_EQ(breaker.state(), State::kOpen);
  clock.advance(seconds{1});
  EXPECT_TRUE(breaker.allow());
  EXPECT_FALSE(breaker.allow());
  breaker.record_success();
  EXPECT_EQ(breaker.state(), State::kClosed);
}

TEST(CircuitBreakerTest, StateNames) {
  EXPECT_EQ(CircuitBreaker::state_name(State::kClosed), "closed");
  EXPECT_EQ(CircuitBreaker::state_name(State::kOpen), "open");
  EXPECT_EQ(CircuitBreaker::state_name(State::kHalfOpen), "half-open");
}

TEST(CircuitBreakerTest, ConcurrentAllowInHalfOpenLetsExactlyTheTrialLimitThrough) {
  constexpr int kThreads = 12;
  for (int max_trials : {1, 3}) {
    for (int round = 0; round < 25; ++round) {
      FakeClock clock;
      CircuitBreaker breaker(CircuitBreakerOptions{.failure_threshold = 1,
                                                   .open_duration = seconds{10},
                                                   .half_open_max_trials = max_trials},
                             clock);
      breaker.record_failure();
      clock.advance(seconds{10});
      std::atomic<int> allowed{0};
      std::latch start(kThreads);
      std::vector<std::thread> threads;
      threads.reserve(kThreads);
      for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
          start.arrive_and_wait();
          if (breaker.allow()) allowed.fetch_add(1);
          if (breaker.allow()) allowed.fetch_add(1);  // a second try never gets more
        });
      }
      for (auto& th : threads) th.join();
      EXPECT_EQ(allowed.load(), max_trials) << "round " << round;
      EXPECT_EQ(breaker.state(), State::kHalfOpen);
    }
  }
}

TEST(CircuitBreakerTest, ConcurrentUseKeepsItConsistent) {
  FakeClock clock;
  CircuitBreaker breaker(
      CircuitBreakerOptions{
          .failure_threshold = 3, .open_duration = milliseconds{5}, .half_open_max_trials = 2},
      clock);
  constexpr int kThreads = 6;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < 2000; ++i) {
        if (breaker.allow()) {
          if ((i + t) % 3 == 0) {
            breaker.record_failure();
          } else {
            breaker.record_success();
          }
        } else {
          clock.advance(milliseconds{1});
        }
        (void)breaker.state();
        (void)breaker.consecutive_failures();
      }
    });
  }
  for (auto& th : threads) th.join();
  // Whatever happened, it ends in a valid state and recovers.
  clock.advance(seconds{1});
  while (breaker.state() != State::kClosed) {
    if (breaker.allow()) {
      breaker.record_success();
    } else {
      clock.advance(milliseconds{5});
    }
  }
  EXPECT_TRUE(breaker.allow());
}

}  // namespace
}  // namespace dbops
