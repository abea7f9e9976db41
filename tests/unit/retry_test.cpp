#include "core/retry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"

namespace dbops {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// Always returns the same draw; 0.999999 makes every delay its ceiling.
class ConstantRng final : public Rng {
 public:
  explicit ConstantRng(double u) : u_(u) {}
  double uniform01() override { return u_; }

 private:
  double u_;
};

constexpr double kTop = 0.999999;

Error unavailable(std::string message = "connection refused") {
  return fail(ErrorCode::kUnavailable, std::move(message)).error();
}

TEST(BackoffTest, CeilingGrowsExponentiallyUpToTheCap) {
  FakeClock clock;
  Backoff backoff(RetryPolicy{.initial_backoff = milliseconds{100}, .max_backoff = seconds{2}},
                  clock);
  EXPECT_EQ(backoff.ceiling(1), milliseconds{100});
  EXPECT_EQ(backoff.ceiling(2), milliseconds{200});
  EXPECT_EQ(backoff.ceiling(3), milliseconds{400});
  EXPECT_EQ(backoff.ceiling(4), milliseconds{800});
  EXPECT_EQ(backoff.ceiling(5), milliseconds{1600});
  EXPECT_EQ(backoff.ceiling(6), milliseconds{2000});
  EXPECT_EQ(backoff.ceiling(7), milliseconds{2000});
  // No overflow however far it goes.
  EXPECT_EQ(backoff.ceiling(5000), milliseconds{2000});
  EXPECT_EQ(backoff.ceiling(std::numeric_limits<int>::max()), milliseconds{2000});
  // Attempt numbers below 1 count as 1.
  EXPECT_EQ(backoff.ceiling(0), milliseconds{100});
}

TEST(BackoffTest, CeilingWithFractionalMultiplierAndOddPolicies) {
  FakeClock clock;
  Backoff slow(RetryPolicy{.initial_backoff = milliseconds{100}, .multiplier = 1.5}, clock);
  EXPECT_EQ(slow.ceiling(2), milliseconds{150});
  EXPECT_EQ(slow.ceiling(3), milliseconds{225});
  EXPECT_EQ(slow.ceiling(4), milliseconds{337});

  Backoff flat(RetryPolicy{.initial_backoff = milliseconds{100}, .multiplier = 0.5}, clock);
  EXPECT_EQ(flat.ceiling(10), milliseconds{100});
  Backoff nan(RetryPolicy{.initial_backoff = milliseconds{100}, .multiplier = std::nan("")}, clock);
  EXPECT_EQ(nan.ceiling(10), milliseconds{100});
  Backoff capped(RetryPolicy{.initial_backoff = seconds{5}, .max_backoff = seconds{1}}, clock);
  EXPECT_EQ(capped.ceiling(1), seconds{1});
  Backoff negative(RetryPolicy{.initial_backoff = milliseconds{-5}}, clock);
  EXPECT_EQ(negative.ceiling(3), milliseconds{0});
}

TEST(BackoffTest, JitterStaysWithinZeroAndTheCap) {
  FakeClock clock;
  SeededRng rng(42);
  Backoff backoff(RetryPolicy{.initial_backoff = milliseconds{100}, .max_backoff = seconds{1}},
                  clock, &rng);
  for (int attempt : {1, 3, 20}) {
    const milliseconds cap = backoff.ceiling(attempt);
    milliseconds lo = cap;
    milliseconds hi{0};
    double sum = 0;
    constexpr int kDraws = 20'000;
    for (int i = 0; i < kDraws; ++i) {
      const milliseconds d = backoff.next_delay(attempt);
      ASSERT_GE(d, milliseconds{0});
      ASSERT_LE(d, cap);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      sum += static_cast<double>(d.count());
    }
    // Full jitter covers the whole range, averaging half the cap.
    EXPECT_EQ(lo, milliseconds{0}) << attempt;
    EXPECT_EQ(hi, cap) << attempt;
    EXPECT_NEAR(sum / kDraws, static_cast<double>(cap.count()) / 2, cap.count() * 0.02) << attempt;
  }
}

TEST(BackoffTest, ExtremeDrawsAreClampedToTheRange) {
  FakeClock clock;
  ConstantRng zero(0.0);
  ConstantRng one(1.0);  // out of contract
  ConstantRng nan(std::nan(""));
  RetryPolicy policy{.initial_backoff = milliseconds{100}};
  EXPECT_EQ(Backoff(policy, clock, &zero).next_delay(2), milliseconds{0});
  EXPECT_EQ(Backoff(policy, clock, &one).next_delay(2), milliseconds{200});
  EXPECT_EQ(Backoff(policy, clock, &nan).next_delay(2), milliseconds{0});
}

TEST(SeededRngTest, SameSeedSameSequence) {
  SeededRng a(7);
  SeededRng b(7);
  SeededRng c(8);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const double x = a.uniform01();
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    EXPECT_EQ(x, b.uniform01());
    differs |= x != c.uniform01();
  }
  EXPECT_TRUE(differs);
}

TEST(SeededRngTest, MatchesTheStandardMt19937_64) {
  // [rand.predef]: the 10000th output of a default-seeded (5489) mt19937_64.
  SeededRng rng(5489);
  for (int i = 1; i < 10'000; ++i) rng.uniform01();
  EXPECT_EQ(rng.uniform01(), static_cast<double>(9981545732273789042ULL >> 11) * 0x1.0p-53);
}

TEST(SeededRngTest, DefaultRngDrawsInRange) {
  for (int i = 0; i < 100; ++i) {
    const double x = default_rng().uniform01();
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
  }
}

TEST(BackoffTest, SameSeedSameDelays) {
  FakeClock clock;
  SeededRng rng_a(1234);
  SeededRng rng_b(1234);
  Backoff a(RetryPolicy{}, clock, &rng_a);
  Backoff b(RetryPolicy{}, clock, &rng_b);
  for (int attempt = 1; attempt < 200; ++attempt) {
    EXPECT_EQ(a.next_delay(attempt), b.next_delay(attempt));
  }
}

TEST(BackoffTest, WaitBeforeRetryInAHandWrittenLoop) {
  FakeClock clock;
  ConstantRng rng(kTop);
  Backoff backoff(RetryPolicy{.max_attempts = 3, .initial_backoff = milliseconds{100}}, clock,
                  &rng);
  EXPECT_EQ(backoff.remaining(), std::nullopt);
  EXPECT_EQ(backoff.wait_before_retry(1), Backoff::Next::kRetry);
  EXPECT_EQ(clock.slept(), milliseconds{100});
  EXPECT_EQ(backoff.wait_before_retry(2), Backoff::Next::kRetry);
  EXPECT_EQ(clock.slept(), milliseconds{300});
  EXPECT_EQ(backoff.wait_before_retry(3), Backoff::Next::kOutOfAttempts);
  EXPECT_EQ(clock.slept(), milliseconds{300});
  EXPECT_EQ(backoff.elapsed(), milliseconds{300});
}

TEST(BackoffTest, WaitBeforeRetryStopsShortOfTheDeadline) {
  FakeClock clock;
  ConstantRng rng(kTop);
  Backoff backoff(RetryPolicy{.max_attempts = 0,
                              .initial_backoff = seconds{1},
                              .max_backoff = seconds{4},
                              .deadline = seconds{10}},
                  clock, &rng);
  EXPECT_EQ(backoff.remaining(), seconds{10});
  EXPECT_EQ(backoff.wait_before_retry(1), Backoff::Next::kRetry);  // at 1s
  EXPECT_EQ(backoff.wait_before_retry(2), Backoff::Next::kRetry);  // at 3s
  EXPECT_EQ(backoff.wait_before_retry(3), Backoff::Next::kRetry);  // at 7s
  EXPECT_EQ(backoff.remaining(), seconds{3});
  EXPECT_EQ(backoff.wait_before_retry(4), Backoff::Next::kPastDeadline);  // 7s + 4s > 10s
  EXPECT_EQ(clock.slept(), seconds{7});
  clock.advance(seconds{5});
  EXPECT_EQ(backoff.remaining(), nanoseconds{0});
}

TEST(BackoffTest, ASleepEndingExactlyAtTheDeadlineIsNotTaken) {
  FakeClock clock;
  ConstantRng rng(kTop);
  Backoff backoff(RetryPolicy{.max_attempts = 0,
                              .initial_backoff = seconds{2},
                              .multiplier = 1.0,
                              .deadline = seconds{4}},
                  clock, &rng);
  EXPECT_EQ(backoff.wait_before_retry(1), Backoff::Next::kRetry);
  EXPECT_EQ(backoff.wait_before_retry(2), Backoff::Next::kPastDeadline);
  EXPECT_EQ(clock.slept(), seconds{2});
}

TEST(RetryTest, SuccessOnTheFirstAttemptDoesNotSleep) {
  FakeClock clock;
  int calls = 0;
  Result<int> r = retry(RetryPolicy{}, clock, [&](int) -> Result<int> {
    ++calls;
    return 42;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 42);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(clock.slept(), nanoseconds{0});
}

TEST(RetryTest, SuccessAfterFailuresReturnsTheValue) {
  FakeClock clock;
  ConstantRng rng(kTop);
  std::vector<int> attempts;
  Result<std::string> r = retry(
      RetryPolicy{.max_attempts = 5, .initial_backoff = milliseconds{100}}, clock,
      [&](int attempt) -> Result<std::string> {
        attempts.push_back(attempt);
        if (attempt < 4) return fail(unavailable());
        return std::string("connected");
      },
      is_transient, &rng);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  EXPECT_EQ(*r, "connected");
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(clock.slept(), milliseconds{100 + 200 + 400});
}

TEST(RetryTest, ExplicitTypeWithStdFunction) {
  FakeClock clock;
  ConstantRng rng(0.0);
  std::function<Result<int>(int)> op = [](int attempt) -> Result<int> {
    if (attempt == 1) return fail(ErrorCode::kTimeout, "timed out");
    return attempt * 10;
  };
  Result<int> r = retry<int>(RetryPolicy{}, clock, op, nullptr, &rng);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 20);
  Result<int> r2 = retry(RetryPolicy{}, clock, op, nullptr, &rng);
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(*r2, 20);
}

TEST(RetryTest, WorksWithStatus) {
  FakeClock clock;
  ConstantRng rng(0.5);
  int calls = 0;
  Status st = retry(
      RetryPolicy{}, clock,
      [&](int) -> Status {
        if (++calls < 3) return fail(ErrorCode::kIo, "short write");
        return ok();
      },
      is_transient, &rng);
  EXPECT_TRUE(st.has_value());
  EXPECT_EQ(calls, 3);
}

TEST(RetryTest, MaxAttemptsBoundsTheCalls) {
  FakeClock clock;
  ConstantRng rng(kTop);
  int calls = 0;
  Status st = retry(
      RetryPolicy{.max_attempts = 3, .initial_backoff = milliseconds{100}}, clock,
      [&](int) -> Status {
        ++calls;
        return fail(unavailable());
      },
      is_transient, &rng);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(clock.slept(), milliseconds{300});  // two sleeps, none after the last attempt
  EXPECT_EQ(st.error().code, ErrorCode::kUnavailable);
}

TEST(RetryTest, SingleAttemptPolicyReturnsTheErrorUnchanged) {
  FakeClock clock;
  int calls = 0;
  Status st = retry(RetryPolicy{.max_attempts = 1}, clock, [&](int) -> Status {
    ++calls;
    return fail(unavailable());
  });
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(st.error().message, "connection refused");
  EXPECT_EQ(clock.slept(), nanoseconds{0});
}

TEST(RetryTest, NonRetryableErrorReturnsAtOnce) {
  FakeClock clock;
  int calls = 0;
  Result<int> r = retry(RetryPolicy{}, clock, [&](int) -> Result<int> {
    ++calls;
    return fail(Error{.code = ErrorCode::kNotFound,
                      .message = "database \"shop\" does not exist",
                      .context = {"pg-main"},
                      .hint = "Check the target's database name."});
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(clock.slept(), nanoseconds{0});
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "database \"shop\" does not exist");
  EXPECT_EQ(r.error().context, (std::vector<std::string>{"pg-main"}));
  EXPECT_EQ(r.error().hint, "Check the target's database name.");
}

TEST(RetryTest, NonRetryableErrorAfterRetriesSaysSo) {
  FakeClock clock;
  ConstantRng rng(kTop);
  Status st = retry(
      RetryPolicy{.initial_backoff = milliseconds{100}}, clock,
      [&](int attempt) -> Status {
        if (attempt < 3) return fail(unavailable());
        return fail(ErrorCode::kCorrupt, "checksum mismatch in segment 12");
      },
      is_transient, &rng);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(st.error().message,
            "checksum mismatch in segment 12 (gave up after 3 attempts in 300ms: the error is not "
            "retryable; other failures: 2x connection refused)");
}

TEST(RetryTest, CustomPredicate) {
  FakeClock clock;
  ConstantRng rng(0.0);
  int calls = 0;
  auto only_conflicts = [](const Error& e) { return e.code == ErrorCode::kConflict; };
  Status st = retry(
      RetryPolicy{}, clock,
      [&](int) -> Status {
        ++calls;
        return fail(unavailable());
      },
      only_conflicts, &rng);
  EXPECT_FALSE(st.has_value());
  EXPECT_EQ(calls, 1);

  calls = 0;
  st = retry(
      RetryPolicy{.max_attempts = 4}, clock,
      [&](int) -> Status {
        ++calls;
        return fail(ErrorCode::kConflict, "lock held by pid 4242");
      },
      only_conflicts, &rng);
  EXPECT_FALSE(st.has_value());
  EXPECT_EQ(calls, 4);
}

TEST(RetryTest, DefaultPredicate) {
  for (ErrorCode code :
       {ErrorCode::kUnavailable, ErrorCode::kTimeout, ErrorCode::kIo, ErrorCode::kConflict}) {
    EXPECT_TRUE(is_transient(fail(code, "x").error())) << error_code_name(code);
  }
  for (ErrorCode code : {ErrorCode::kInvalidArgument, ErrorCode::kConfig, ErrorCode::kNotFound,
                         ErrorCode::kCheckFailed, ErrorCode::kCancelled, ErrorCode::kCorrupt,
                         ErrorCode::kUnsupported, ErrorCode::kInternal}) {
    EXPECT_FALSE(is_transient(fail(code, "x").error())) << error_code_name(code);
  }
}

TEST(RetryTest, RepeatedFailuresAreMergedIntoOneMessage) {
  FakeClock clock;
  ConstantRng rng(kTop);
  Status st = retry(
      RetryPolicy{.max_attempts = 4, .initial_backoff = milliseconds{100}}, clock,
      [&](int) -> Status {
        return fail(Error{.code = ErrorCode::kUnavailable,
                          .message = "connection refused",
                          .context = {"pg-main", "backup"},
                          .hint = "Check that the server is running."});
      },
      is_transient, &rng);
  ASSERT_FALSE(st.has_value());
  const Error& e = st.error();
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  EXPECT_EQ(e.message, "connection refused (gave up after 4 attempts in 700ms)");
  EXPECT_EQ(e.context, (std::vector<std::string>{"pg-main", "backup"}));
  EXPECT_EQ(e.hint, "Check that the server is running.");
  EXPECT_EQ(e.to_string(),
            "pg-main: backup: connection refused (gave up after 4 attempts in 700ms)\n"
            "HINT: Check that the server is running.");
}

TEST(RetryTest, DifferentFailuresAreCountedSeparately) {
  FakeClock clock;
  ConstantRng rng(kTop);
  const std::vector<std::string> messages = {"connection refused", "timed out",
                                             "connection refused", "connection reset by peer",
                                             "timed out"};
  Status st = retry(
      RetryPolicy{.max_attempts = 5, .initial_backoff = milliseconds{100}}, clock,
      [&](int attempt) -> Status { return fail(unavailable(messages[attempt - 1])); }, is_transient,
      &rng);
  ASSERT_FALSE(st.has_value());
  // 100 + 200 + 400 + 800 ms of sleep.
  EXPECT_EQ(st.error().message,
            "timed out (gave up after 5 attempts in 1.5s; other failures: 2x connection refused, "
            "1x connection reset by peer)");
}

TEST(RetryTest, ManyDistinctFailuresAreListedBriefly) {
  FakeClock clock;
  ConstantRng rng(0.0);
  Status st = retry(
      RetryPolicy{.max_attempts = 7}, clock,
      [&](int attempt) -> Status { return fail(unavailable("error " + std::to_string(attempt))); },
      is_transient, &rng);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().message,
            "error 7 (gave up after 7 attempts in 0ms; other failures: 1x error 1, 1x error 2, "
            "1x error 3, 3 more)");
}

TEST(RetryTest, DeadlineStopsRetrying) {
  FakeClock clock;
  ConstantRng rng(kTop);
  int calls = 0;
  Status st = retry(
      RetryPolicy{.max_attempts = 0,
                  .initial_backoff = seconds{1},
                  .max_backoff = seconds{4},
                  .deadline = seconds{10}},
      clock,
      [&](int) -> Status {
        ++calls;
        return fail(ErrorCode::kTimeout, "no answer within 5s");
      },
      is_transient, &rng);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(calls, 4);  // sleeps of 1s, 2s and 4s; the next 4s would end at 11s
  EXPECT_EQ(clock.slept(), seconds{7});
  EXPECT_EQ(st.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(st.error().message,
            "no answer within 5s (gave up after 4 attempts in 7s: the next retry would pass the "
            "10s deadline)");
}

TEST(RetryTest, DeadlineCountsTimeSpentInAttempts) {
  FakeClock clock;
  ConstantRng rng(kTop);
  int calls = 0;
  Status st = retry(
      RetryPolicy{.max_attempts = 0,
                  .initial_backoff = milliseconds{500},
                  .multiplier = 1.0,
                  .deadline = seconds{10}},
      clock,
      [&](int) -> Status {
        ++calls;
        clock.advance(milliseconds{1500});  // each attempt takes 1.5s
        return fail(ErrorCode::kTimeout, "statement timeout");
      },
      is_transient, &rng);
  ASSERT_FALSE(st.has_value());
  // Attempts start at 0, 2, 4, 6 and 8s; after the fifth it is 9.5s and a 0.5s sleep would
  // reach the deadline.
  EXPECT_EQ(calls, 5);
  EXPECT_EQ(clock.slept(), milliseconds{2000});
  EXPECT_EQ(st.error().message,
            "statement timeout (gave up after 5 attempts in 9.5s: the next retry would pass the "
            "10s deadline)");
}

TEST(RetryTest, DeadlineOnTheFirstFailureIsReported) {
  FakeClock clock;
  ConstantRng rng(kTop);
  Status st = retry(
      RetryPolicy{.initial_backoff = seconds{1}, .deadline = seconds{10}}, clock,
      [&](int) -> Status {
        clock.advance(milliseconds{9500});
        return fail(unavailable());
      },
      is_transient, &rng);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(clock.slept(), nanoseconds{0});
  EXPECT_EQ(st.error().message,
            "connection refused (gave up after 1 attempt in 9.5s: the next retry would pass the "
            "10s deadline)");
}

TEST(RetryTest, RandomJitterNeverSleepsPastTheDeadline) {
  const RetryPolicy policy{.max_attempts = 0,
                           .initial_backoff = milliseconds{200},
                           .max_backoff = seconds{5},
                           .deadline = seconds{20}};
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    FakeClock clock;
    const auto start = clock.steady_now();
    SeededRng rng(seed);
    SeededRng op_rng(seed * 7919);
    int calls = 0;
    Status st = retry(
        policy, clock,
        [&](int) -> Status {
          ++calls;
          // Every attempt starts strictly before the deadline.
          EXPECT_LT(clock.steady_now() - start, policy.deadline) << "seed " << seed;
          clock.advance(milliseconds{static_cast<int>(op_rng.uniform01() * 300)});
          return fail(unavailable());
        },
        is_transient, &rng);
    ASSERT_FALSE(st.has_value());
    EXPECT_GT(calls, 1) << "seed " << seed;
    EXPECT_LE(clock.slept(), policy.deadline) << "seed " << seed;
    EXPECT_NE(st.error().message.find("deadline"), std::string::npos);
  }
}

TEST(RetryTest, SameSeedSameSchedule) {
  auto run = [](std::uint64_t seed) {
    FakeClock clock;
    SeededRng rng(seed);
    (void)retry(
        RetryPolicy{.max_attempts = 8}, clock, [](int) -> Status { return fail(unavailable()); },
        is_transient, &rng);
    return clock.slept();
  };
  EXPECT_EQ(run(99), run(99));
  EXPECT_NE(run(99), run(100));
}

TEST(RetryTest, FormatsDurations) {
  EXPECT_EQ(format_retry_duration(nanoseconds{0}), "0ms");
  EXPECT_EQ(format_retry_duration(nanoseconds{-5}), "0ms");
  EXPECT_EQ(format_retry_duration(milliseconds{700}), "700ms");
  EXPECT_EQ(format_retry_duration(milliseconds{999}), "999ms");
  EXPECT_EQ(format_retry_duration(milliseconds{1000}), "1s");
  EXPECT_EQ(format_retry_duration(milliseconds{12'340}), "12.3s");
  EXPECT_EQ(format_retry_duration(milliseconds{12'960}), "13s");
  EXPECT_EQ(format_retry_duration(milliseconds{59'949}), "59.9s");
  EXPECT_EQ(format_retry_duration(milliseconds{59'950}), "1m00s");
  EXPECT_EQ(format_retry_duration(seconds{125}), "2m05s");
  EXPECT_EQ(format_retry_duration(std::chrono::minutes{62}), "1h02m");
}

TEST(RetryPolicyTest, Validation) {
  EXPECT_TRUE(validate_retry_policy(RetryPolicy{}).has_value());
  EXPECT_TRUE(validate_retry_policy(RetryPolicy{.max_attempts = 0, .deadline = seconds{60}}));
  auto code = [](const RetryPolicy& p) { return validate_retry_policy(p).error().code; };
  EXPECT_EQ(code(RetryPolicy{.max_attempts = -1}), ErrorCode::kConfig);
  EXPECT_EQ(code(RetryPolicy{.initial_backoff = milliseconds{-1}}), ErrorCode::kConfig);
  EXPECT_EQ(code(RetryPolicy{.initial_backoff = seconds{60}, .max_backoff = seconds{1}}),
            ErrorCode::kConfig);
  EXPECT_EQ(code(RetryPolicy{.multiplier = 0.5}), ErrorCode::kConfig);
  EXPECT_EQ(code(RetryPolicy{.multiplier = std::nan("")}), ErrorCode::kConfig);
  EXPECT_EQ(code(RetryPolicy{.deadline = milliseconds{-1}}), ErrorCode::kConfig);
  Status forever = validate_retry_policy(RetryPolicy{.max_attempts = 0});
  ASSERT_FALSE(forever.has_value());
  EXPECT_EQ(forever.error().message, "retry has neither max_attempts nor a deadline");
  EXPECT_FALSE(forever.error().hint.empty());
}

}  // namespace
}  // namespace dbops
