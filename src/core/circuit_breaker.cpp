#include "core/circuit_breaker.hpp"

#include <algorithm>
#include <limits>

namespace dbops {
namespace {
CircuitBreakerOptions normalized(CircuitBreakerOptions options) {
  options.failure_threshold = std::max(options.failure_threshold, 1);
  options.half_open_max_trials = std::max(options.half_open_max_trials, 1);
  options.success_threshold = std::max(options.success_threshold, 1);
  return options;
}
}  // namespace

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options, Clock& clock)
    : options_(normalized(options)), clock_(clock) {}

bool CircuitBreaker::allow() {
  std::lock_guard lock(mu_);
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (clock_.steady_now() - opened_at_ < options_.open_duration) return false;
      state_ = State::kHalfOpen;
      trials_in_flight_ = 0;
      half_open_successes_ = 0;
      [[fallthrough]];
    case State::kHalfOpen:
      if (trials_in_flight_ >= options_.half_open_max_trials) return false;
      ++trials_in_flight_;
      return true;
  }
  return false;
}

void CircuitBreaker::record_success() {
  std::lock_guard lock(mu_);
  consecutive_failures_ = 0;
  if (state_ != State::kHalfOpen) return;
  if (trials_in_flight_ > 0) --trials_in_flight_;
  if (++half_open_successes_ >= options_.success_threshold) {
    state_ = State::kClosed;
    trials_in_flight_ = 0;
    half_open_successes_ = 0;
  }
}

void CircuitBreaker::record_failure() {
  std::lock_guard lock(mu_);
  if (consecutive_failures_ < std::numeric_limits<int>::max()) ++consecutive_failures_;
  switch (state_) {
    case State::kClosed:
      if (consecutive_failures_ >= options_.failure_threshold) open_locked();
      break;
    case State::kHalfOpen:
      open_locked();
      break;
    case State::kOpen:
      break;
  }
}

void CircuitBreaker::open_locked() {
  state_ = State::kOpen;
  opened_at_ = clock_.steady_now();
  trials_in_flight_ = 0;
  half_open_successes_ = 0;
}

CircuitBreaker::State CircuitBreaker::state() const {
  std::lock_guard lock(mu_);
  if (state_ == State::kOpen && clock_.steady_now() - opened_at_ >= options_.open_duration) {
    return State::kHalfOpen;
  }
  return state_;
}

std::chrono::steady_clock::time_point CircuitBreaker::opened_at() const {
  std::lock_guard lock(mu_);
  return opened_at_;
}

int CircuitBreaker::consecutive_failures() const {
  std::lock_guard lock(mu_);
  return consecutive_failures_;
}

std::string_view CircuitBreaker::state_name(State state) {
  switch (state) {
    case State::kClosed:
      return "closed";
    case State::kOpen:
      return "open";
    case State::kHalfOpen:
      return "half-open";
  }
  return "unknown";
}

}  // namespace dbops
