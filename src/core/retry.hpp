// Retrying transient failures: exponential backoff with full jitter, a cap on
// attempts and an overall deadline.
//
// The sleep before attempt n+1 is drawn uniformly from
// [0, min(max_backoff, initial_backoff * multiplier^(n-1))] ("full jitter", as
// in the AWS Architecture Blog's "Exponential Backoff And Jitter"). Sleeping
// goes through a Clock, so tests use a FakeClock and never really sleep.
//
//   RetryPolicy policy{.max_attempts = 0, .deadline = std::chrono::minutes{2}};
//   Result<Connection> conn = retry(policy, clock, [&](int attempt) {
//     return connect(target);  // kUnavailable, kTimeout, kIo, kConflict are retried
//   });
//
// The error of a retry that gave up is the last attempt's error (code, context
// and hint unchanged) with a summary appended to its message:
//   "connection refused (gave up after 4 attempts in 12.3s)"
//   "timeout (gave up after 3 attempts in 9.1s: the next retry would pass the 10s deadline;
//    other failures: 2x connection refused)"
// Repeated identical failures are merged into the attempt count; only messages
// that differ from the last one are listed, each with how often it occurred.
// When only one attempt was made and no deadline intervened the error is
// returned unchanged.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"

namespace dbops {

struct RetryPolicy {
  // Total attempts including the first; 0 = unlimited (then the deadline
  // should bound it).
  int max_attempts = 5;
  // Upper bound of the first sleep (after attempt 1 failed).
  std::chrono::milliseconds initial_backoff{100};
  // The upper bound of a sleep never grows beyond this.
  std::chrono::milliseconds max_backoff{30'000};
  // Growth of the upper bound per attempt; values below 1 count as 1.
  double multiplier = 2.0;
  // Overall budget measured from the start of the first attempt; 0 = none. A
  // retry whose sleep would reach the deadline is not made.
  std::chrono::milliseconds deadline{0};
};

// Rejects negative values, a multiplier below 1 (or not finite), max_backoff
// below initial_backoff and a policy with neither max_attempts nor deadline
// (it would retry forever). Backoff itself tolerates all of these.
Status validate_retry_policy(const RetryPolicy& policy);

// Which errors are worth retrying.
using RetryPredicate = std::function<bool(const Error&)>;

// The default RetryPredicate: kUnavailable, kTimeout, kIo and kConflict.
bool is_transient(const Error& error);

// The jitter source.
class Rng {
 public:
  virtual ~Rng() = default;
  // A uniform draw from [0, 1).
  virtual double uniform01() = 0;
};

// A deterministic Rng: std::mt19937_64 with the given seed, mapped to [0, 1)
// by taking its top 53 bits, so a seed gives the same sequence with every
// standard library. Not thread-safe.
class SeededRng final : public Rng {
 public:
  explicit SeededRng(std::uint64_t seed) : engine_(seed) {}
  double uniform01() override;

 private:
  std::mt19937_64 engine_;
};

// The calling thread's Rng, seeded from std::random_device; used when no Rng
// is given. Each thread has its own, so it needs no locking.
Rng& default_rng();

// The non-template core of retry(), also usable on its own by callers that
// loop themselves:
//
//   Backoff backoff(policy, clock);
//   for (int attempt = 1;; ++attempt) {
//     if (poll()) break;
//     if (backoff.wait_before_retry(attempt) != Backoff::Next::kRetry) return timed_out();
//   }
//
// The deadline budget starts when the Backoff is constructed. Not
// thread-safe; use one per loop.
class Backoff {
 public:
  enum class Next {
    kRetry,          // slept; make the next attempt
    kOutOfAttempts,  // max_attempts attempts were made
    kPastDeadline,   // the next sleep would reach the deadline
  };

  // rng: the jitter source, default_rng() when null; must outlive the Backoff.
  Backoff(const RetryPolicy& policy, Clock& clock, Rng* rng = nullptr);

  // The upper bound of the sleep after failed attempt `attempt` (1-based):
  // min(max_backoff, initial_backoff * multiplier^(attempt-1)).
  std::chrono::milliseconds ceiling(int attempt) const;
  // Full jitter: a uniform draw from [0, ceiling(attempt)], whole milliseconds.
  std::chrono::milliseconds next_delay(int attempt);
  // After attempt `attempt` failed: when max_attempts allows another attempt
  // and the drawn sleep ends before the deadline, sleeps it through the clock
  // and returns kRetry; otherwise returns why not without sleeping.
  Next wait_before_retry(int attempt);

  // Time since construction, by the clock's steady_now().
  std::chrono::nanoseconds elapsed() const;
  // What is left of the deadline (never negative); nullopt without one.
  std::optional<std::chrono::nanoseconds> remaining() const;
  const RetryPolicy& policy() const { return policy_; }

 private:
  RetryPolicy policy_;
  Clock& clock_;
  Rng& rng_;
  std::chrono::steady_clock::time_point start_;
};

// Formats an elapsed time the way retry messages show it: "700ms", "12.3s",
// "15s", "2m05s", "1h02m".
std::string format_retry_duration(std::chrono::nanoseconds duration);

namespace retry_internal {

// The bookkeeping of retry(): decides, sleeps and builds the final error.
class RetryLoop {
 public:
  RetryLoop(const RetryPolicy& policy, Clock& clock, RetryPredicate retryable, Rng* rng);
  // Attempt `attempt` failed with `error`. Returns true after sleeping when
  // another attempt should be made; otherwise rewrites `error` into the final
  // error and returns false.
  bool on_failure(int attempt, Error& error);

 private:
  struct Failure {
    ErrorCode code;
    std::string message;
    int count;
  };
  void finish(int attempt, Error& error, std::string_view reason);

  Backoff backoff_;
  RetryPredicate retryable_;
  std::vector<Failure> failures_;  // distinct (code, message), first seen first
};

template <typename R>
struct ResultTraits : std::false_type {};
template <typename T>
struct ResultTraits<std::expected<T, Error>> : std::true_type {
  using value_type = T;
};

template <typename F>
using OpResult = std::remove_cvref_t<std::invoke_result_t<F&, int>>;

// A callable taking the attempt number and returning a Result<T> or Status.
template <typename F>
concept RetryOp = std::invocable<F&, int> && ResultTraits<OpResult<F>>::value;

}  // namespace retry_internal

// Calls op(attempt) with attempt = 1, 2, ... until it succeeds, fails with an
// error `retryable` rejects, max_attempts is used up or the next sleep would
// reach the deadline. Returns the first success or the final error described
// at the top of this file. A null `retryable` means is_transient; rng as for
// Backoff.
template <typename T>
Result<T> retry(const RetryPolicy& policy, Clock& clock, std::function<Result<T>(int attempt)> op,
                RetryPredicate retryable = is_transient, Rng* rng = nullptr) {
  retry_internal::RetryLoop loop(policy, clock, std::move(retryable), rng);
  for (int attempt = 1;; ++attempt) {
    Result<T> result = op(attempt);
    if (result.has_value() || !loop.on_failure(attempt, result.error())) return result;
  }
}

// The same for any callable taking the attempt number and returning a
// Result<T> or Status, so that T need not be spelled out:
//   Status st = retry(policy, clock, [&](int) { return upload(part); });
template <retry_internal::RetryOp F>
retry_internal::OpResult<F> retry(const RetryPolicy& policy, Clock& clock, F&& op,
                                  RetryPredicate retryable = is_transient, Rng* rng = nullptr) {
  using T = typename retry_internal::ResultTraits<retry_internal::OpResult<F>>::value_type;
  return retry<T>(policy, clock, std::function<Result<T>(int)>(std::forward<F>(op)),
                  std::move(retryable), rng);
}

}  // namespace dbops
