#include "core/retry.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>

namespace dbops {

Status validate_retry_policy(const RetryPolicy& policy) {
  if (policy.max_attempts < 0) {
    return fail(ErrorCode::kConfig, "retry max_attempts must not be negative");
  }
  if (policy.initial_backoff.count() < 0) {
    return fail(ErrorCode::kConfig, "retry initial_backoff must not be negative");
  }
  if (policy.max_backoff < policy.initial_backoff) {
    return fail(ErrorCode::kConfig, "retry max_backoff must not be below initial_backoff");
  }
  if (!std::isfinite(policy.multiplier) || policy.multiplier < 1.0) {
    return fail(ErrorCode::kConfig, "retry multiplier must be a number of at least 1");
  }
  if (policy.deadline.count() < 0) {
    return fail(ErrorCode::kConfig, "retry deadline must not be negative");
  }
  if (policy.max_attempts == 0 && policy.deadline.count() == 0) {
    Error error;
    error.code = ErrorCode::kConfig;
    error.message = "retry has neither max_attempts nor a deadline";
    error.hint = "Set max_attempts or a deadline so that retrying ends.";
    return fail(std::move(error));
  }
  return ok();
}

bool is_transient(const Error& error) {
  switch (error.code) {
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
    case ErrorCode::kIo:
    case ErrorCode::kConflict:
      return true;
    default:
      return false;
  }
}

double SeededRng::uniform01() {
  // 53 random bits scaled by 2^-53: exactly representable, in [0, 1).
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

Rng& default_rng() {
  thread_local SeededRng rng([] {
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
  }());
  return rng;
}

Backoff::Backoff(const RetryPolicy& policy, Clock& clock, Rng* rng)
    : policy_(policy),
      clock_(clock),
      rng_(rng != nullptr ? *rng : default_rng()),
      start_(clock.steady_now()) {}

std::chrono::milliseconds Backoff::ceiling(int attempt) const {
  const double cap = static_cast<double>(std::max<std::int64_t>(policy_.max_backoff.count(), 0));
  const double initial =
      static_cast<double>(std::max<std::int64_t>(policy_.initial_backoff.count(), 0));
  // NaN and values below 1 count as 1 (NaN fails the comparison).
  const double multiplier = policy_.multiplier >= 1.0 ? policy_.multiplier : 1.0;
  const int exponent = std::max(attempt, 1) - 1;
  double bound = initial * std::pow(multiplier, exponent);  // may be inf
  if (!(bound < cap)) bound = cap;
  return std::chrono::milliseconds{static_cast<std::int64_t>(bound)};
}

std::chrono::milliseconds Backoff::next_delay(int attempt) {
  const std::int64_t cap = ceiling(attempt).count();
  double u = rng_.uniform01();
  if (!(u >= 0.0)) u = 0.0;  // also NaN
  // Uniform over the cap + 1 whole milliseconds 0 .. cap.
  auto delay = static_cast<std::int64_t>(std::floor(u * (static_cast<double>(cap) + 1.0)));
  return std::chrono::milliseconds{std::clamp<std::int64_t>(delay, 0, cap)};
}

Backoff::Next Backoff::wait_before_retry(int attempt) {
  if ((policy_.max_attempts > 0 && attempt >= policy_.max_attempts) || attempt == INT_MAX) {
    return Next::kOutOfAttempts;
  }
  const std::chrono::milliseconds delay = next_delay(attempt);
  if (policy_.deadline.count() > 0 && elapsed() + delay >= policy_.deadline) {
    return Next::kPastDeadline;
  }
  clock_.sleep_for(delay);
  return Next::kRetry;
}

std::chrono::nanoseconds Backoff::elapsed() const {
  return clock_.steady_now() - start_;
}

std::optional<std::chrono::nanoseconds> Backoff::remaining() const {
  if (policy_.deadline.count() <= 0) return std::nullopt;
  const std::chrono::nanoseconds left = policy_.deadline - elapsed();
  return std::max(left, std::chrono::nanoseconds{0});
}

std::string format_retry_duration(std::chrono::nanoseconds duration) {
  using std::chrono::duration_cast;
  const std::int64_t ms =
      std::max<std::int64_t>(duration_cast<std::chrono::milliseconds>(duration).count(), 0);
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 59'950) {
    const long long tenths = (ms + 50) / 100;
    if (tenths % 10 == 0) {
      std::snprintf(buf, sizeof buf, "%llds", tenths / 10);
    } else {
      std::snprintf(buf, sizeof buf, "%lld.%llds", tenths / 10, tenths % 10);
    }
  } else if (ms < 3'599'500) {
    const long long s = (ms + 500) / 1000;
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else {
    const long long m = (ms + 30'000) / 60'000;
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", m / 60, m % 60);
  }
  return buf;
}

namespace retry_internal {
namespace {
constexpr std::size_t kMaxListedFailures = 3;
}  // namespace

RetryLoop::RetryLoop(const RetryPolicy& policy, Clock& clock, RetryPredicate retryable, Rng* rng)
    : backoff_(policy, clock, rng),
      retryable_(retryable ? std::move(retryable) : RetryPredicate(is_transient)) {}

bool RetryLoop::on_failure(int attempt, Error& error) {
  if (!retryable_(error)) {
    if (attempt > 1) finish(attempt, error, "the error is not retryable");
    return false;
  }
  switch (backoff_.wait_before_retry(attempt)) {
    case Backoff::Next::kRetry:
      break;
    case Backoff::Next::kOutOfAttempts:
      if (attempt > 1) finish(attempt, error, "");
      return false;
    case Backoff::Next::kPastDeadline:
      finish(attempt, error,
             "the next retry would pass the " + format_retry_duration(backoff_.policy().deadline) +
                 " deadline");
      return false;
  }
  auto same = [&](const Failure& f) { return f.code == error.code && f.message == error.message; };
  if (auto it = std::ranges::find_if(failures_, same); it != failures_.end()) {
    ++it->count;
  } else {
    failures_.push_back(Failure{.code = error.code, .message = error.message, .count = 1});
  }
  return true;
}

void RetryLoop::finish(int attempt, Error& error, std::string_view reason) {
  std::string summary = " (gave up after " + std::to_string(attempt) +
                        (attempt == 1 ? " attempt in " : " attempts in ") +
                        format_retry_duration(backoff_.elapsed());
  if (!reason.empty()) {
    summary += ": ";
    summary += reason;
  }
  std::size_t listed = 0;
  int unlisted = 0;
  for (const Failure& f : failures_) {
    if (f.code == error.code && f.message == error.message) continue;
    if (listed == kMaxListedFailures) {
      unlisted += f.count;
      continue;
    }
    summary += listed == 0 ? "; other failures: " : ", ";
    summary += std::to_string(f.count) + "x " + f.message;
    ++listed;
  }
  if (unlisted > 0) summary += ", " + std::to_string(unlisted) + " more";
  summary += ")";
  error.message += summary;
}

}  // namespace retry_internal
}  // namespace dbops
