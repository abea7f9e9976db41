// What both JobQueue implementations share: the row form of a job (the
// column order of their job column lists), the spec check and the lease-lost
// error.
#pragma once

#include <cstdint>

#include "engine/session.hpp"
#include "store/queue.hpp"

namespace dbops::store {

// A job from row `i` of a result whose columns are: id, kind, target,
// params_json, idempotency_key, priority, run_at, max_attempts, timeout_ms,
// exclusive, state, attempt, lease_owner, lease_expires_at, lease_token,
// last_error, result_json, created_at, updated_at, finished_at; times as
// integers that `time` converts (milliseconds in SQLite, microseconds in
// PostgreSQL).
QueuedJob queued_job_from_row(const engine::QueryResult& r, std::size_t i,
                              TimePoint (*time)(std::int64_t));

// A spec the queue accepts: a kind, at least one attempt, no negative timeout.
Status check_job_spec(const JobSpec& spec);

// kConflict: the caller's lease token is no longer the job's.
Error lease_lost_error(std::int64_t id, std::int64_t token);

}  // namespace dbops::store
