#include "store/sqlite/sqlite_queue.hpp"

#include <functional>
#include <mutex>
#include <random>
#include <set>

#include "engine/sqlite/sqlite_session.hpp"
#include "store/queue_rows.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace dbops::store::sqlite {
namespace {

using engine::Param;
using engine::QueryResult;

std::int64_t to_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint from_ms(std::int64_t ms) {
  return TimePoint{std::chrono::milliseconds{ms}};
}
std::int64_t now_ms() {
  return to_ms(std::chrono::system_clock::now());
}
std::string state_text(JobState s) {
  return std::string(job_state_name(s));
}

constexpr const char* kJobColumns =
    "id, kind, target, params_json, idempotency_key, priority, run_at_ms, max_attempts, "
    "timeout_ms, exclusive, state, attempt, lease_owner, lease_expires_at_ms, lease_token, "
    "last_error, result_json, created_at_ms, updated_at_ms, finished_at_ms";

// One connection, used under a mutex: SQLite serialises writers anyway, and
// a single agent's workers claim in batches.
class SqliteQueue final : public JobQueue {
 public:
  SqliteQueue(std::unique_ptr<engine::SqlSession> session, std::string path, RetryPolicy retry)
      : session_(std::move(session)), path_(std::move(path)), retry_(retry) {}

  std::string describe() const override { return "sqlite " + path_; }

  Result<EnqueueResult> enqueue(const JobSpec& spec) override {
    DBOPS_ASSIGN(auto results, enqueue_batch(std::span<const JobSpec>(&spec, 1)));
    return results.front();
  }

  Result<std::vector<EnqueueResult>> enqueue_batch(std::span<const JobSpec> specs) override {
    for (const auto& spec : specs) DBOPS_TRY(check_job_spec(spec));
    std::lock_guard lock(mu_);
    std::vector<EnqueueResult> out;
    DBOPS_TRY(write_transaction(*session_, [&]() -> Status {
      const std::int64_t now = now_ms();
      for (const auto& spec : specs) {
        const std::int64_t run_at = spec.run_at ? to_ms(*spec.run_at) : now;
        const JobState state = run_at > now ? JobState::kScheduled : JobState::kAvailable;
        const Param params[] = {
            spec.kind,
            spec.target,
            spec.params_json.empty() ? std::string("{}") : spec.params_json,
            spec.idempotency_key.empty() ? Param{nullptr} : Param{spec.idempotency_key},
            static_cast<std::int64_t>(spec.priority),
            run_at,
            static_cast<std::int64_t>(spec.max_attempts),
            static_cast<std::int64_t>(spec.timeout.count()),
            static_cast<std::int64_t>(spec.exclusive ? 1 : 0),
            state_text(state),
            now,
            now};
        DBOPS_ASSIGN(auto r, session_->query(
                                 "INSERT INTO jobs (kind, target, params_json, idempotency_key, "
                                 "priority, run_at_ms, max_attempts, timeout_ms, exclusive, "
                                 "state, created_at_ms, updated_at_ms) "
                                 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) "
                                 "ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL "
                                 "DO NOTHING RETURNING id",
                                 params));
        if (!r.empty()) {
          out.push_back({r.integer(0, 0), true});
          continue;
        }
        const Param key[] = {spec.idempotency_key};
        DBOPS_ASSIGN(auto existing,
                     session_->query("SELECT id FROM jobs WHERE idempotency_key = ?", key));
        if (existing.empty()) {
          return fail(ErrorCode::kInternal, "job queue: an insert of " + spec.kind +
                                                " returned no id and no job has its key");
        }
        out.push_back({existing.integer(0, 0), false});
      }
      return ok();
    }));
    return out;
  }

  Result<std::vector<QueuedJob>> claim(const ClaimRequest& request) override {
    if (request.owner.empty()) {
      return fail(ErrorCode::kInvalidArgument, "job queue: a claim needs an owner");
    }
    std::vector<QueuedJob> out;
    if (request.max_jobs == 0) return out;
    std::lock_guard lock(mu_);
    DBOPS_TRY(write_transaction(*session_, [&]() -> Status {
      const std::int64_t now = now_ms();
      std::vector<Param> params = {now, now};
      std::string kinds;
      for (const auto& k : request.kinds) {
        kinds += kinds.empty() ? "?" : ",?";
        params.emplace_back(k);
      }
      std::string excluded;
      for (const auto& k : request.exclude_kinds) {
        excluded += excluded.empty() ? "?" : ",?";
        params.emplace_back(k);
      }
      params.emplace_back(static_cast<std::int64_t>(request.max_jobs + 256));
      DBOPS_ASSIGN(
          auto candidates,
          session_->query(
              "SELECT id, target, exclusive FROM jobs WHERE "
              "((state IN ('scheduled', 'available', 'retrying') AND run_at_ms <= ?) OR "
              "(state = 'running' AND lease_expires_at_ms < ? AND attempt < max_attempts))" +
                  (kinds.empty() ? std::string() : " AND kind IN (" + kinds + ")") +
                  (excluded.empty() ? std::string() : " AND kind NOT IN (" + excluded + ")") +
                  " ORDER BY priority DESC, run_at_ms, id LIMIT ?",
              params));
      if (candidates.empty()) return ok();
      const Param live[] = {now};
      DBOPS_ASSIGN(auto running,
                   session_->query("SELECT DISTINCT target FROM jobs WHERE state = 'running' AND "
                                   "exclusive = 1 AND lease_expires_at_ms >= ?",
                                   live));
      std::set<std::string> busy;
      for (std::size_t i = 0; i < running.rows.size(); ++i) busy.insert(running.text(i, 0));
      std::vector<std::int64_t> picked;
      for (std::size_t i = 0; i < candidates.rows.size() && picked.size() < request.max_jobs; ++i) {
        if (candidates.integer(i, 2) != 0) {
          if (!busy.insert(candidates.text(i, 1)).second) continue;
        }
        picked.push_back(candidates.integer(i, 0));
      }
      if (picked.empty()) return ok();
      DBOPS_ASSIGN(auto tokens,
                   session_->query("UPDATE job_tokens SET value = value + ? WHERE id = 1 "
                                   "RETURNING value",
                                   std::vector<Param>{static_cast<std::int64_t>(picked.size())}));
      std::int64_t token = tokens.integer(0, 0) - static_cast<std::int64_t>(picked.size());
      const std::int64_t expires = now + request.lease.count();
      for (const std::int64_t id : picked) {
        const Param update[] = {request.owner, expires, ++token, now, id};
        DBOPS_ASSIGN(auto r, session_->query(std::string("UPDATE jobs SET state = 'running', "
                                                         "attempt = attempt + 1, lease_owner = ?, "
                                                         "lease_expires_at_ms = ?, lease_token = "
                                                         "?, updated_at_ms = ? WHERE id = ? "
                                                         "RETURNING ") +
                                                 kJobColumns,
                                             update));
        out.push_back(queued_job_from_row(r, 0, from_ms));
      }
      return ok();
    }));
    return out;
  }

  Status heartbeat(std::int64_t id, std::int64_t token, std::chrono::milliseconds lease) override {
    std::lock_guard lock(mu_);
    const std::int64_t now = now_ms();
    return fenced(id, token, "lease_expires_at_ms = ?, updated_at_ms = ?",
                  {now + lease.count(), now});
  }

  Status succeed(std::int64_t id, std::int64_t token, std::string_view result_json) override {
    std::lock_guard lock(mu_);
    return succeed_locked(id, token, result_json);
  }

  Result<std::vector<Status>> succeed_batch(std::span<const Completion> completions) override {
    std::lock_guard lock(mu_);
    std::vector<Status> out;
    DBOPS_TRY(write_transaction(*session_, [&]() -> Status {
      out.clear();
      for (const auto& c : completions) {
        auto st = succeed_locked(c.id, c.token, c.result_json);
        if (!st && st.error().code != ErrorCode::kConflict) return st;
        out.push_back(std::move(st));
      }
      return ok();
    }));
    return out;
  }

  Result<JobState> fail_attempt(std::int64_t id, std::int64_t token, std::string_view error,
                                bool retryable) override {
    std::lock_guard lock(mu_);
    JobState next = JobState::kFailed;
    DBOPS_TRY(write_transaction(*session_, [&]() -> Status {
      const Param key[] = {id, token};
      DBOPS_ASSIGN(auto r, session_->query("SELECT attempt, max_attempts FROM jobs WHERE id = ? "
                                           "AND lease_token = ? AND state = 'running'",
                                           key));
      if (r.empty()) return fail(lease_lost_error(id, token));
      const auto attempt = static_cast<int>(r.integer(0, 0));
      const auto max_attempts = static_cast<int>(r.integer(0, 1));
      const std::int64_t now = now_ms();
      std::int64_t run_at = now;
      if (!retryable) {
        next = JobState::kFailed;
      } else if (attempt >= max_attempts) {
        next = JobState::kDead;
      } else {
        next = JobState::kRetrying;
        run_at = now + retry_delay(retry_, attempt, random01()).count();
      }
      const bool final = job_state_final(next);
      const Param update[] = {state_text(next),
                              std::string(error),
                              run_at,
                              now,
                              final ? Param{now} : Param{nullptr},
                              id};
      DBOPS_TRY(
          session_->query("UPDATE jobs SET state = ?, last_error = ?, run_at_ms = ?, "
                          "lease_expires_at_ms = NULL, updated_at_ms = ?, "
                          "finished_at_ms = ? WHERE id = ?",
                          update));
      return ok();
    }));
    return next;
  }

  Status release(std::int64_t id, std::int64_t token) override {
    std::lock_guard lock(mu_);
    const std::int64_t now = now_ms();
    return fenced(id, token,
                  "state = 'available', attempt = attempt - 1, run_at_ms = ?, "
                  "lease_expires_at_ms = NULL, updated_at_ms = ?",
                  {now, now});
  }

  Result<JobState> cancel(std::int64_t id) override {
    std::lock_guard lock(mu_);
    JobState previous = JobState::kCancelled;
    DBOPS_TRY(write_transaction(*session_, [&]() -> Status {
      const Param key[] = {id};
      DBOPS_ASSIGN(auto r, session_->query("SELECT state FROM jobs WHERE id = ?", key));
      if (r.empty()) {
        return fail(ErrorCode::kNotFound, "job " + std::to_string(id) + " is not in the queue");
      }
      previous = parse_job_state(r.text(0, 0)).value_or(JobState::kFailed);
      if (job_state_final(previous)) return ok();
      const std::int64_t now = now_ms();
      const Param update[] = {now, now, id};
      DBOPS_TRY(
          session_->query("UPDATE jobs SET state = 'cancelled', lease_expires_at_ms = NULL, "
                          "updated_at_ms = ?, finished_at_ms = ? WHERE id = ?",
                          update));
      return ok();
    }));
    return previous;
  }

  Result<std::vector<QueuedJob>> reap_expired() override {
    std::lock_guard lock(mu_);
    const std::int64_t now = now_ms();
    const Param params[] = {now, now, now};
    DBOPS_ASSIGN(auto r, session_->query(
                             std::string("UPDATE jobs SET state = 'dead', last_error = 'the lease "
                                         "of ' || lease_owner || ' expired on attempt ' || "
                                         "attempt || ' of ' || max_attempts, "
                                         "lease_expires_at_ms = NULL, updated_at_ms = ?, "
                                         "finished_at_ms = ? WHERE state = 'running' AND "
                                         "lease_expires_at_ms < ? AND attempt >= max_attempts "
                                         "RETURNING ") +
                                 kJobColumns,
                             params));
    std::vector<QueuedJob> out;
    for (std::size_t i = 0; i < r.rows.size(); ++i)
      out.push_back(queued_job_from_row(r, i, from_ms));
    return out;
  }

  Result<std::optional<QueuedJob>> get(std::int64_t id) override {
    std::lock_guard lock(mu_);
    const Param key[] = {id};
    DBOPS_ASSIGN(
        auto r,
        session_->query(std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?", key));
    if (r.empty()) return std::optional<QueuedJob>{};
    return queued_job_from_row(r, 0, from_ms);
  }

  Result<std::vector<QueuedJob>> list(const JobQuery& q) override {
    std::lock_guard lock(mu_);
    std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE 1=1";
    std::vector<Param> params;
    if (q.state) {
      sql += " AND state = ?";
      params.emplace_back(state_text(*q.state));
    }
    if (!q.target.empty()) {
      sql += " AND target = ?";
      params.emplace_back(q.target);
    }
    if (!q.kind.empty()) {
      sql += " AND kind = ?";
      params.emplace_back(q.kind);
    }
    sql += " ORDER BY id DESC LIMIT ?";
    params.emplace_back(static_cast<std::int64_t>(q.limit));
    DBOPS_ASSIGN(auto r, session_->query(sql, params));
    std::vector<QueuedJob> out;
    for (std::size_t i = 0; i < r.rows.size(); ++i)
      out.push_back(queued_job_from_row(r, i, from_ms));
    return out;
  }

  Result<std::vector<std::pair<JobState, std::int64_t>>> counts() override {
    std::lock_guard lock(mu_);
    DBOPS_ASSIGN(auto r,
                 session_->query("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state"));
    std::vector<std::pair<JobState, std::int64_t>> out;
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
      if (auto s = parse_job_state(r.text(i, 0))) out.emplace_back(*s, r.integer(i, 1));
    }
    return out;
  }

  Status heartbeat_member(std::string_view id, std::string_view info_json,
                          std::chrono::milliseconds lease) override {
    std::lock_guard lock(mu_);
    const std::int64_t now = now_ms();
    const Param params[] = {std::string(id), std::string(info_json), now, now + lease.count()};
    DBOPS_TRY(
        session_->query("INSERT INTO members (id, info_json, started_at_ms, "
                        "last_heartbeat_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?3, ?4) "
                        "ON CONFLICT (id) DO UPDATE SET info_json = excluded.info_json, "
                        "last_heartbeat_ms = excluded.last_heartbeat_ms, "
                        "expires_at_ms = excluded.expires_at_ms",
                        params));
    return ok();
  }

  Status leave_member(std::string_view id) override {
    std::lock_guard lock(mu_);
    return write_transaction(*session_, [&]() -> Status {
      const std::int64_t now = now_ms();
      const Param key[] = {std::string(id)};
      DBOPS_TRY(session_->query("DELETE FROM members WHERE id = ?", key));
      const Param resign[] = {now, std::string(id)};
      DBOPS_TRY(
          session_->query("UPDATE leader_terms SET held_until_ms = min(held_until_ms, ?1) "
                          "WHERE term = (SELECT term FROM leader WHERE id = 1 AND holder = "
                          "?2 AND expires_at_ms >= ?1)",
                          resign));
      DBOPS_TRY(
          session_->query("UPDATE leader SET expires_at_ms = 0 WHERE id = 1 AND holder = ?", key));
      return ok();
    });
  }

  Result<std::vector<Member>> members() override {
    std::lock_guard lock(mu_);
    const Param now[] = {now_ms()};
    DBOPS_ASSIGN(auto r, session_->query(
                             "SELECT m.id, m.info_json, m.started_at_ms, m.last_heartbeat_ms, "
                             "m.expires_at_ms >= ?1, (SELECT count(*) FROM jobs j WHERE j.state = "
                             "'running' AND j.lease_owner = m.id), (l.holder = m.id AND "
                             "l.expires_at_ms >= ?1) FROM members m CROSS JOIN leader l "
                             "WHERE l.id = 1 ORDER BY m.id",
                             now));
    std::vector<Member> out;
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
      out.push_back(Member{.id = r.text(i, 0),
                           .info_json = r.text(i, 1),
                           .started_at = from_ms(r.integer(i, 2)),
                           .last_heartbeat = from_ms(r.integer(i, 3)),
                           .alive = r.integer(i, 4) != 0,
                           .running_jobs = r.integer(i, 5),
                           .leader = r.integer(i, 6) != 0});
    }
    return out;
  }

  Result<Leadership> lead(std::string_view id, std::chrono::milliseconds lease) override {
    std::lock_guard lock(mu_);
    Leadership out;
    DBOPS_TRY(write_transaction(*session_, [&]() -> Status {
      const std::int64_t now = now_ms();
      DBOPS_ASSIGN(auto cur,
                   session_->query("SELECT holder, term, expires_at_ms FROM leader WHERE id = 1"));
      const std::string holder = cur.text(0, 0);
      const std::int64_t term = cur.integer(0, 1);
      const bool live = cur.integer(0, 2) >= now;
      if (live && holder != id) {
        out = Leadership{.leader = false, .term = term, .holder = holder};
        return ok();
      }
      const bool renew = live && holder == id;
      const std::int64_t next = renew ? term : term + 1;
      const std::int64_t expires = now + lease.count();
      const Param update[] = {std::string(id), next, expires};
      DBOPS_TRY(session_->query(
          "UPDATE leader SET holder = ?1, term = ?2, expires_at_ms = ?3 WHERE id = 1", update));
      const Param history[] = {next, std::string(id), now, expires};
      DBOPS_TRY(
          session_->query("INSERT INTO leader_terms (term, holder, started_at_ms, "
                          "held_until_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (term) DO "
                          "UPDATE SET held_until_ms = excluded.held_until_ms",
                          history));
      out = Leadership{.leader = true, .term = next, .holder = std::string(id)};
      return ok();
    }));
    return out;
  }

  Result<std::vector<LeaderTerm>> leader_terms(std::size_t limit) override {
    std::lock_guard lock(mu_);
    const Param params[] = {static_cast<std::int64_t>(limit)};
    DBOPS_ASSIGN(auto r, session_->query("SELECT term, holder, started_at_ms, held_until_ms FROM "
                                         "leader_terms ORDER BY term DESC LIMIT ?",
                                         params));
    std::vector<LeaderTerm> out;
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
      out.push_back(LeaderTerm{.term = r.integer(i, 0),
                               .holder = r.text(i, 1),
                               .started_at = from_ms(r.integer(i, 2)),
                               .held_until = from_ms(r.integer(i, 3))});
    }
    return out;
  }

  Result<std::size_t> purge_finished(TimePoint before, std::size_t batch) override {
    std::lock_guard lock(mu_);
    const Param params[] = {to_ms(before), static_cast<std::int64_t>(batch)};
    DBOPS_ASSIGN(auto r, session_->query("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE "
                                         "finished_at_ms IS NOT NULL AND finished_at_ms < ? "
                                         "ORDER BY finished_at_ms LIMIT ?)",
                                         params));
    return static_cast<std::size_t>(r.affected_rows);
  }

  // A backward range scan of the unique index jobs_key (BINARY collation,
  // so byte order); instr() drops keys of the range that lack the prefix.
  Result<std::optional<std::string>> newest_key(std::string_view prefix) override {
    std::vector<Param> params = {std::string(prefix)};
    std::string sql = "SELECT idempotency_key FROM jobs WHERE idempotency_key >= ?";
    if (auto end = key_range_end(prefix)) {
      sql += " AND idempotency_key < ?";
      params.emplace_back(std::move(*end));
    }
    sql += " AND instr(idempotency_key, ?) = 1 ORDER BY idempotency_key DESC LIMIT 1";
    params.emplace_back(std::string(prefix));
    std::lock_guard lock(mu_);
    DBOPS_ASSIGN(auto r, session_->query(sql, params));
    if (r.empty()) return std::optional<std::string>{};
    return std::optional<std::string>{r.text(0, 0)};
  }

 private:
  // UPDATE jobs SET `set` (its parameters `params`) of a job the caller
  // holds; kConflict when it does not hold it any more. With mu_ held.
  Status fenced(std::int64_t id, std::int64_t token, std::string_view set,
                std::vector<Param> params) {
    params.emplace_back(id);
    params.emplace_back(token);
    DBOPS_ASSIGN(auto r,
                 session_->query("UPDATE jobs SET " + std::string(set) +
                                     " WHERE id = ? AND lease_token = ? AND state = 'running'",
                                 params));
    if (r.affected_rows != 1) return fail(lease_lost_error(id, token));
    return ok();
  }

  // succeed() with mu_ held.
  Status succeed_locked(std::int64_t id, std::int64_t token, std::string_view result_json) {
    const std::int64_t now = now_ms();
    return fenced(id, token,
                  "state = 'succeeded', result_json = ?, lease_expires_at_ms = NULL, "
                  "updated_at_ms = ?, finished_at_ms = ?",
                  {std::string(result_json), now, now});
  }

  double random01() {
    std::uniform_real_distribution<double> d(0.0, 1.0);
    return d(rng_);
  }

  std::mutex mu_;
  std::unique_ptr<engine::SqlSession> session_;
  std::string path_;
  RetryPolicy retry_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

Result<std::unique_ptr<JobQueue>> open_sqlite_queue(const std::string& path,
                                                    const RetryPolicy& retry) {
  auto opened = open_state_file(path);
  if (!opened) return std::unexpected(std::move(opened).error().with_context("job queue"));
  return std::unique_ptr<JobQueue>(
      std::make_unique<SqliteQueue>(std::move(opened->session), path, retry));
}

}  // namespace dbops::store::sqlite
