#include "store/queue.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "store/queue_rows.hpp"

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

QueuedJob queued_job_from_row(const engine::QueryResult& r, std::size_t i,
                              TimePoint (*time)(std::int64_t)) {
  QueuedJob j;
  j.id = r.integer(i, 0);
  j.spec.kind = r.text(i, 1);
  j.spec.target = r.text(i, 2);
  j.spec.params_json = r.text(i, 3);
  j.spec.idempotency_key = r.text(i, 4);
  j.spec.priority = static_cast<int>(r.integer(i, 5));
  j.run_at = time(r.integer(i, 6));
  j.spec.run_at = j.run_at;
  j.spec.max_attempts = static_cast<int>(r.integer(i, 7));
  j.spec.timeout = std::chrono::milliseconds(r.integer(i, 8));
  j.spec.exclusive = r.integer(i, 9) != 0;
  j.state = parse_job_state(r.text(i, 10)).value_or(JobState::kFailed);
  j.attempt = static_cast<int>(r.integer(i, 11));
  j.lease_owner = r.text(i, 12);
  if (!r.is_null(i, 13)) j.lease_expires_at = time(r.integer(i, 13));
  j.lease_token = r.integer(i, 14);
  j.last_error = r.text(i, 15);
  j.result_json = r.text(i, 16);
  j.created_at = time(r.integer(i, 17));
  j.updated_at = time(r.integer(i, 18));
  if (!r.is_null(i, 19)) j.finished_at = time(r.integer(i, 19));
  return j;
}

Status check_job_spec(const JobSpec& spec) {
  if (spec.kind.empty()) return fail(ErrorCode::kInvalidArgument, "a job needs a kind");
  if (spec.max_attempts < 1) {
    return fail(ErrorCode::kInvalidArgument, "job " + spec.kind +
                                                 ": max_attempts must be at least 1, not " +
                                                 std::to_string(spec.max_attempts));
  }
  if (spec.timeout.count() < 0) {
    return fail(ErrorCode::kInvalidArgument, "job " + spec.kind + ": negative timeout");
  }
  return ok();
}

Error lease_lost_error(std::int64_t id, std::int64_t token) {
  return make_error(ErrorCode::kConflict, "job " + std::to_string(id) + ": lease lost (token " +
                                              std::to_string(token) +
                                              " is no longer the job's: it expired and was claimed "
                                              "again, or the job was cancelled or finished)");
}

}  // namespace dbops::store
