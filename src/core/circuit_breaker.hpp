// A circuit breaker: stops calling a peer that keeps failing, and lets a few
// trial calls through after a pause to find out whether it recovered.
//
//   closed    --failure_threshold consecutive failures-->  open
//   open      --open_duration passed, on allow()------->  half-open
//   half-open --success_threshold successes------------>  closed
//   half-open --any failure---------------------------->  open (a fresh open period)
//
// Usage: every call that allow() let through must report its outcome with
// exactly one record_success() or record_failure():
//
//   if (!breaker.allow()) return fail(ErrorCode::kUnavailable, "pg-main: circuit open");
//   Status st = ping(target);
//   if (st) {
//     breaker.record_success();
//   } else {
//     breaker.record_failure();
//   }
//
// Thread-safety: all members may be called concurrently from any thread; one
// mutex guards the state. Time comes only from the Clock's steady_now().
#pragma once

#include <chrono>
#include <mutex>
#include <string_view>

#include "core/clock.hpp"

namespace dbops {

// Counts below 1 are treated as 1.
struct CircuitBreakerOptions {
  // Consecutive failures that open a closed breaker.
  int failure_threshold = 5;
  // How long it stays open before a trial call is allowed.
  std::chrono::milliseconds open_duration{30'000};
  // Trial calls allowed at the same time while half-open.
  int half_open_max_trials = 1;
  // Successful trials (not necessarily at the same time) that close it again.
  int success_threshold = 1;
};

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  // The clock must outlive the breaker.
  CircuitBreaker(CircuitBreakerOptions options, Clock& clock);

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Whether a call may go ahead now. Closed: always. Open: no, until
  // open_duration has passed since it opened; then it turns half-open. Half-open:
  // yes while fewer than half_open_max_trials trials are outstanding (a trial
  // ends with its record_success() or record_failure()).
  bool allow();

  // Closed: resets the consecutive failures. Half-open: ends a trial and
  // closes the breaker at success_threshold successes. Open: a late result of
  // a call let through before it opened; only resets the failure count.
  void record_success();
  // Closed: counts a consecutive failure and opens the breaker at
  // failure_threshold. Half-open: reopens it, restarting the open period.
  // Open: a late result; only counted.
  void record_failure();

  // The current state; an open breaker whose open_duration has passed reports
  // kHalfOpen (the transition itself happens in the next allow()).
  State state() const;
  // When the breaker last opened; the epoch if it never did.
  std::chrono::steady_clock::time_point opened_at() const;
  // Failures recorded since the last success, in any state.
  int consecutive_failures() const;

  // "closed", "open", "half-open".
  static std::string_view state_name(State state);

 private:
  void open_locked();

  const CircuitBreakerOptions options_;
  Clock& clock_;
  mutable std::mutex mu_;
  State state_ = State::kClosed;
  std::chrono::steady_clock::time_point opened_at_{};
  int consecutive_failures_ = 0;
  int trials_in_flight_ = 0;     // half-open only
  int half_open_successes_ = 0;  // half-open only
};

}  // namespace dbops
