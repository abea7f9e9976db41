// The durable job queue in the state store: what the agent's workers run.
//
// A job is enqueued with its spec (kind, target, params), an optional
// idempotency key (a second enqueue with the same key returns the first job),
// a priority, a time it becomes due and how many attempts it gets. A worker
// claims due jobs with a lease; the claim increments the job's attempt and
// gives it a new fencing token. Heartbeats extend the lease. A lease that
// expires returns the job to the queue (the attempt counts) or, when the job
// has had all its attempts, makes it dead. Every change a worker makes to a
// job it claimed carries the token: once the lease was lost (expired and
// claimed again, or the job was cancelled), the change is refused with
// kConflict, so a late completion from a worker that was presumed dead never
// overwrites the newer attempt.
//
// Exclusive jobs (those that change a target: backups, drills, migrations)
// run one at a time per target; non-exclusive ones (probes) are unbounded.
//
// Job states:
//   scheduled  due later (run_at in the future), never attempted
//   available  due, waiting for a worker
//   running    claimed; lease_owner holds it until lease_expires_at
//   retrying   an attempt failed; due again at run_at (exponential backoff
//              with jitter)
//   succeeded  done
//   failed     an attempt failed in a way retrying does not fix
//   dead       every attempt failed (or its lease expired), max_attempts
//              reached
//   cancelled  cancelled before it finished
//
// Two implementations share one test suite: SQLite (one agent; the local
// clock) and PostgreSQL (several agents; leases in database time, claims with
// FOR UPDATE SKIP LOCKED, no session state so that it works through PgBouncer
// in transaction pooling mode).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace dbops::store {

enum class JobState {
  kScheduled,
  kAvailable,
  kRunning,
  kRetrying,
  kSucceeded,
  kFailed,
  kDead,
  kCancelled,
};
std::string_view job_state_name(JobState state);
std::optional<JobState> parse_job_state(std::string_view text);
// succeeded, failed, dead, cancelled.
bool job_state_final(JobState state);

struct JobSpec {
  std::string kind;
  std::string target;  // empty: not tied to a target
  std::string params_json = "{}";
  // Empty: none. A second enqueue with the same key returns the first job,
  // whatever its state, for as long as it is kept.
  std::string idempotency_key;
  int priority = 0;  // higher runs first
  // When the job becomes due; empty: now.
  std::optional<TimePoint> run_at;
  int max_attempts = 3;  // at least 1
  // How long one attempt may run; zero: no limit. Enforced by the worker.
  std::chrono::milliseconds timeout{0};
  // One exclusive job at a time per target.
  bool exclusive = false;
};

struct QueuedJob {
  std::int64_t id = 0;
  JobSpec spec;
  JobState state = JobState::kAvailable;
  int attempt = 0;  // attempts started so far
  std::string lease_owner;
  std::optional<TimePoint> lease_expires_at;
  // The fencing token of the current (or last) claim; changes with every
  // claim.
  std::int64_t lease_token = 0;
  std::string last_error;
  std::string result_json;  // set when it succeeded
  TimePoint run_at{};
  TimePoint created_at{};
  TimePoint updated_at{};
  std::optional<TimePoint> finished_at;
};

struct EnqueueResult {
  std::int64_t id = 0;
  bool created = false;  // false: the idempotency key named an existing job
};

struct ClaimRequest {
  std::string owner;  // the agent (member) claiming
  std::size_t max_jobs = 1;
  std::chrono::milliseconds lease{30'000};
  // Only these kinds; empty: any.
  std::vector<std::string> kinds;
  // None of these kinds (the agent claims jobs that wait on other jobs,
  // workflow runs, from a pool of their own).
  std::vector<std::string> exclude_kinds;
};

// A claimed job's successful end, for succeed_batch().
struct Completion {
  std::int64_t id = 0;
  std::int64_t token = 0;
  std::string result_json = "{}";
};

struct JobQuery {
  std::optional<JobState> state;
  std::string target;
  std::string kind;
  std::size_t limit = 100;
};

// Retry timing: attempt n waits base * 2^(n-1), capped at max, then a random
// factor in [1 - jitter, 1] is applied.
struct RetryPolicy {
  std::chrono::milliseconds base{1'000};
  std::chrono::milliseconds max{600'000};
  double jitter = 0.25;
};
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int attempt, double random01);

// An agent serving the queue, as its heartbeats tell.
struct Member {
  std::string id;                // host:pid
  std::string info_json = "{}";  // what the agent says of itself (version, listen ...)
  TimePoint started_at{};        // its first heartbeat
  TimePoint last_heartbeat{};
  bool alive = false;             // its last heartbeat's lease has not run out (store time)
  std::int64_t running_jobs = 0;  // jobs it holds a lease on
  bool leader = false;            // holds the leader lease now
};

// The scheduler leader: one holder at a time, each new holder a new term.
struct Leadership {
  bool leader = false;  // the caller holds the lease now
  std::int64_t term = 0;
  std::string holder;  // who holds it (empty: nobody)
};

// One leader term, from the history the store keeps.
struct LeaderTerm {
  std::int64_t term = 0;
  std::string holder;
  TimePoint started_at{};
  TimePoint held_until{};  // the end of its last renewed lease (or its resignation)
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  virtual std::string describe() const = 0;

  virtual Result<EnqueueResult> enqueue(const JobSpec& spec) = 0;
  // All or nothing, in one transaction; results in the order of `specs`.
  virtual Result<std::vector<EnqueueResult>> enqueue_batch(std::span<const JobSpec> specs) = 0;

  // Claims up to max_jobs due jobs (highest priority, then earliest run_at,
  // then id), skipping exclusive jobs whose target already has one running
  // under a live lease. A running job whose lease expired is claimable again
  // while it has attempts left. The returned jobs are in state running with
  // their new attempt and lease_token.
  virtual Result<std::vector<QueuedJob>> claim(const ClaimRequest& request) = 0;

  // Extends the lease of a job the caller holds. kConflict when it does not
  // hold it any more (expired and claimed again, cancelled, finished).
  virtual Status heartbeat(std::int64_t id, std::int64_t token,
                           std::chrono::milliseconds lease) = 0;
  // The attempt succeeded. kConflict as for heartbeat().
  virtual Status succeed(std::int64_t id, std::int64_t token, std::string_view result_json) = 0;
  // Several attempts succeeded: one transaction for all. Each completion's
  // outcome, in order: ok, or kConflict as for heartbeat() (the others are
  // recorded all the same).
  virtual Result<std::vector<Status>> succeed_batch(std::span<const Completion> completions) = 0;
  // The attempt failed: retryable and attempts left -> retrying (due after
  // the policy's delay); retryable and none left -> dead; not retryable ->
  // failed. Returns the new state. kConflict as for heartbeat().
  virtual Result<JobState> fail_attempt(std::int64_t id, std::int64_t token, std::string_view error,
                                        bool retryable) = 0;
  // Gives a claimed job back without counting the attempt (shutdown): it is
  // due again at once. kConflict as for heartbeat().
  virtual Status release(std::int64_t id, std::int64_t token) = 0;

  // Cancels a job that has not finished; a running one loses its lease, so
  // its worker's next heartbeat fails and it stops the job. Returns the state
  // the job had. kNotFound for an unknown id; a finished job is left as it is
  // (its state is returned).
  virtual Result<JobState> cancel(std::int64_t id) = 0;

  // Running jobs whose lease expired and that have no attempt left become
  // dead (their last_error says the lease expired); returns them, for events.
  virtual Result<std::vector<QueuedJob>> reap_expired() = 0;

  virtual Result<std::optional<QueuedJob>> get(std::int64_t id) = 0;
  // Newest first.
  virtual Result<std::vector<QueuedJob>> list(const JobQuery& query) = 0;
  // How many jobs are in each state.
  virtual Result<std::vector<std::pair<JobState, std::int64_t>>> counts() = 0;

  // Members and the leader. Every agent heartbeats (heartbeat_member, every
  // third of `lease`) and tries to lead; the one that holds the leader lease
  // runs the scheduler. Leases are kept in the store's time (the database's
  // clock for PostgreSQL), so agents' clocks do not matter. A holder that
  // renews before its lease runs out keeps its term; anyone taking an expired
  // or free lease starts the next term, so terms never overlap.
  virtual Status heartbeat_member(std::string_view id, std::string_view info_json,
                                  std::chrono::milliseconds lease) = 0;
  // At shutdown: the member is gone, and resigns the leader lease if it holds
  // it (the next agent to try leads at once).
  virtual Status leave_member(std::string_view id) = 0;
  // Members by id, with whether they are alive and their running jobs.
  virtual Result<std::vector<Member>> members() = 0;
  // Takes or renews the leader lease for `lease` from now.
  virtual Result<Leadership> lead(std::string_view id, std::chrono::milliseconds lease) = 0;
  // The latest `limit` terms, newest first.
  virtual Result<std::vector<LeaderTerm>> leader_terms(std::size_t limit) = 0;

  // Deletes up to `batch` jobs that finished before `before`; returns how
  // many. Call until it returns less than `batch`.
  virtual Result<std::size_t> purge_finished(TimePoint before, std::size_t batch) = 0;

  // The greatest idempotency key (in byte order) that starts with `prefix`,
  // among the jobs still kept, whatever their state; nullopt when there is
  // none. For keys that end in a fixed-width UTC time, as the scheduler's
  // "schedule:<name>:<fire time>" do, that is the newest. An index range
  // scan: cheap however many jobs the queue holds.
  virtual Result<std::optional<std::string>> newest_key(std::string_view prefix) = 0;
};

// The half-open range of keys [prefix, end) that newest_key() scans: `end` is
// the prefix cut after its last ASCII byte below 0x7f, that byte incremented
// ("schedule:a:" -> "schedule:a;"), so it is valid UTF-8 and every key that
// starts with `prefix` sorts below it in byte order; nullopt when no such byte
// exists (no upper bound). The range may hold keys without the prefix (when
// bytes were cut): implementations filter on the prefix as well.
std::optional<std::string> key_range_end(std::string_view prefix);

// Tells idle workers at once that jobs were enqueued or given back, instead
// of at their next poll: LISTEN on the PostgreSQL store, whose enqueue and
// release send a NOTIFY with their commit. Polling still finds everything
// (jobs that come due later, notifications lost while the listener
// reconnected); this only makes new work start sooner.
class JobNotifications {
 public:
  virtual ~JobNotifications() = default;
  // Waits up to `timeout`; true when a notification came. kUnavailable when
  // the connection broke (listen anew).
  virtual Result<bool> wait(std::chrono::milliseconds timeout) = 0;
};

// LISTENs on the connection `state.listen_dsn` names: a direct connection to
// the PostgreSQL state store, never one through a pooler in transaction
// mode (it would not keep the LISTEN). kConfig when none is configured.
Result<std::unique_ptr<JobNotifications>> listen_for_jobs(const config::StateConfig& state);

// The queue in the store the config names (SQLite file or PostgreSQL),
// creating or migrating its tables.
Result<std::unique_ptr<JobQueue>> open_queue(const config::StateConfig& state,
                                             const RetryPolicy& retry = {});

}  // namespace dbops::store
