#include "store/queue.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace dbops::store {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 8> kJobStates = {{
    {JobState::kScheduled, "scheduled"},
    {JobState::kAvailable, "available"},
    {JobState::kRunning, "running"},
    {JobState::kRetrying, "retrying"},
    {JobState::kSucceeded, "succeeded"},
    {JobState::kFailed, "failed"},
    {JobState::kDead, "dead"},
    {JobState::kCancelled, "cancelled"},
}};

}  // namespace

std::string_view job_state_name(JobState state) {
  for (const auto& [s, name] : kJobStates) {
    if (s == state) return name;
  }
  return "unknown";
}

std::optional<JobState> parse_job_state(std::string_view text) {
  for (const auto& [s, name] : kJobStates) {
    if (name == text) return s;
  }
  return std::nullopt;
}

bool job_state_final(JobState state) {
  return state == JobState::kSucceeded || state == JobState::kFailed || state == JobState::kDead ||
         state == JobState::kCancelled;
}

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int attempt, double random01) {
  const double base = static_cast<double>(std::max<std::int64_t>(policy.base.count(), 0));
  const double cap = static_cast<double>(std::max<std::int64_t>(policy.max.count(), 0));
  const int exponent = std::clamp(attempt - 1, 0, 62);
  const double raw = std::min(cap, base * std::ldexp(1.0, exponent));
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  const double factor = 1.0 - jitter * std::clamp(random01, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(raw * factor)));
}

std::optional<std::string> key_range_end(std::string_view prefix) {
  for (std::size_t n = prefix.size(); n > 0; --n) {
    const auto byte = static_cast<unsigned char>(prefix[n - 1]);
    if (byte < 0x7f) {
      std::string end(prefix.substr(0, n));
      end.back() = static_cast<char>(byte + 1);
      return end;
    }
  }
  return std::nullopt;
}

}  // namespace dbops::store
