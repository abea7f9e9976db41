// The job queue on PostgreSQL, shared by several agents.
//
// Every time the queue compares or computes (due, lease expiry, retry
// backoff, created/updated/finished) is the database's clock (now(), the
// start of the statement's transaction); the only client times are those a
// caller passes in (JobSpec::run_at, purge_finished's `before`). Times go over
// the wire as microseconds since the epoch.
//
// No session state, so that it works through PgBouncer in transaction pooling
// mode: unnamed statements only (the session layer's query()), no SET (SET
// LOCAL inside a transaction), only transaction-scoped advisory locks, no
// LISTEN (notifications have a direct connection of their own:
// listen_for_jobs()), no temporary tables. Enqueue (into a queue without a
// due job) and release NOTIFY, which a pooler carries like any statement.
//
// Claims, and why the claim function (dbops_claim_v1) has two steps: the
// first selects due jobs FOR UPDATE SKIP LOCKED and, for exclusive ones,
// takes pg_try_advisory_xact_lock on their target; the second re-checks, for
// each exclusive job, that no other exclusive job of its target runs under a
// live lease, and updates. The re-check must run in a snapshot taken after
// the advisory lock was granted: the lock is released when the previous
// holder commits, so a later statement sees that holder's claim, whereas the
// first statement's snapshot may predate it. In a volatile PL/pgSQL function
// each statement takes a new snapshot, so both steps fit in one call: one
// round trip, and an autocommit transaction.
#include "store/postgres/postgres_queue.hpp"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <utility>

#include "core/log.hpp"
#include "core/retry.hpp"
#include "engine/postgres/postgres_session.hpp"
#include "store/postgres/pg_schema.hpp"
#include "store/queue_rows.hpp"

namespace dbops::store::postgres {
namespace {

using engine::Param;
using engine::QueryResult;
using engine::postgres::PostgresSession;
using namespace std::chrono_literals;

// Versioned and expand-only (tables, columns, indexes and functions are
// added; nothing the previous release reads or writes is dropped or
// narrowed; an index goes only once a new one serves its queries, as
// dbops_jobs_ready replaced dbops_jobs_due), so that the previous release
// keeps working on a migrated database while agents are upgraded one at a
// time.
//
// The queue's versions are its own: the rest of the state store
// (postgres_store.cpp) records its migrations in dbops_store_migrations, so
// the two migrate independently.
constexpr Migration kMigrations[] = {
    {1, "job queue", R"sql(
CREATE SEQUENCE dbops_job_ids;
CREATE SEQUENCE dbops_job_lease_tokens;
CREATE TABLE dbops_jobs (
  id               bigint PRIMARY KEY DEFAULT nextval('dbops_job_ids'),
  kind             text NOT NULL,
  target           text NOT NULL DEFAULT '',
  params_json      text NOT NULL DEFAULT '{}',
  idempotency_key  text NOT NULL DEFAULT '',
  priority         integer NOT NULL DEFAULT 0,
  run_at           timestamptz NOT NULL,
  max_attempts     integer NOT NULL CONSTRAINT dbops_jobs_max_attempts_check
                     CHECK (max_attempts >= 1),
  timeout_ms       bigint NOT NULL DEFAULT 0,
  exclusive        boolean NOT NULL DEFAULT false,
  state            text NOT NULL CONSTRAINT dbops_jobs_state_check
                     CHECK (state IN ('scheduled', 'available', 'running', 'retrying',
                                      'succeeded', 'failed', 'dead', 'cancelled')),
  attempt          integer NOT NULL DEFAULT 0,
  lease_owner      text NOT NULL DEFAULT '',
  lease_expires_at timestamptz,
  lease_token      bigint NOT NULL DEFAULT 0,
  last_error       text NOT NULL DEFAULT '',
  result_json      text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
ALTER SEQUENCE dbops_job_ids OWNED BY dbops_jobs.id;
CREATE UNIQUE INDEX dbops_jobs_idempotency_key ON dbops_jobs (idempotency_key)
  WHERE idempotency_key <> '';
CREATE INDEX dbops_jobs_due ON dbops_jobs (priority DESC, run_at, id)
  WHERE state IN ('scheduled', 'available', 'retrying', 'running');
CREATE INDEX dbops_jobs_leases ON dbops_jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX dbops_jobs_exclusive_running ON dbops_jobs (target, lease_expires_at)
  WHERE state = 'running' AND exclusive;
CREATE INDEX dbops_jobs_finished ON dbops_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX dbops_jobs_target ON dbops_jobs (target, id);
)sql"},
    // newest_key(): prefix ranges in byte order, whatever the database's
    // collation.
    {2, "job queue: idempotency keys by prefix", R"sql(
CREATE INDEX dbops_jobs_key_prefix ON dbops_jobs (idempotency_key COLLATE "C")
  WHERE idempotency_key <> '';
)sql"},
    {3, "job queue: agent members and the leader lease", R"sql(
CREATE TABLE dbops_members (
  id             text PRIMARY KEY,
  info           text NOT NULL DEFAULT '{}',
  started_at     timestamptz NOT NULL,
  last_heartbeat timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL
);
CREATE TABLE dbops_leader (
  id         int PRIMARY KEY CHECK (id = 1),
  holder     text NOT NULL,
  term       int8 NOT NULL,
  expires_at timestamptz NOT NULL
);
INSERT INTO dbops_leader VALUES (1, '', 0, '-infinity');
CREATE TABLE dbops_leader_terms (
  term       int8 PRIMARY KEY,
  holder     text NOT NULL,
  started_at timestamptz NOT NULL,
  held_until timestamptz NOT NULL
);
)sql"},
    // Claims in one round trip and one statement (autocommit), see claim().
    // The function is versioned by name: a later release that claims
    // differently adds dbops_claim_v2 and leaves this one to the agents not
    // upgraded yet.
    {4, "job queue: claims in one round trip", R"sql(
-- Due jobs only: a claimed (running) job leaves it, so claims do not walk
-- over the running ones at the head of the queue. It replaces
-- dbops_jobs_due, whose predicate held running jobs too; the previous
-- release's claims find due jobs through this one as well (a bitmap scan, as
-- they did), so dropping it changes no result, only saves an index write
-- per claim.
CREATE INDEX dbops_jobs_ready ON dbops_jobs (priority DESC, run_at, id)
  WHERE state IN ('scheduled', 'available', 'retrying');
DROP INDEX dbops_jobs_due;
CREATE FUNCTION dbops_claim_v1(p_owner text, p_max int, p_lease_ms int8, p_kinds text[],
                               p_exclude text[], p_slack int)
RETURNS SETOF dbops_jobs LANGUAGE plpgsql VOLATILE
-- The claim's plans are made once per session, possibly while the table is
-- empty or before it was ever analyzed; without this, such a plan sorts
-- every due job (a bitmap scan, then a sort) for as long as the session
-- lives. Sorting disfavoured, the due jobs are read in order from
-- dbops_jobs_ready and the scan stops at the limit, whatever the estimates.
-- The sorts that remain (a handful of rows) then cost "disabled" in the
-- planner's eyes, past JIT's threshold: no JIT for a claim. And one generic
-- plan per statement for the session: the default would weigh each call's
-- custom plan against it, and with sorting disabled would plan every call
-- anew (planning was most of a claim's cost).
SET enable_sort = off
SET jit = off
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
  picked int8[] := '{}';
  taken text[] := '{}';
  exclusive_picked boolean := false;
  token_base int8;
  c record;
BEGIN
  -- Step 2 below needs a snapshot of its own, which only READ COMMITTED
  -- gives a statement of a function.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'dbops_claim_v1 needs READ COMMITTED, not %',
      current_setting('transaction_isolation')
      USING HINT = 'set default_transaction_isolation to read committed for the dbops role';
  END IF;
  -- A claim need not wait for the WAL flush (see claim() in dbops). So a
  -- server crash may lose it with the sequence's last values, and the
  -- sequence may hand them out again: each fencing token also carries 24
  -- random bits, so that a lost claim's token is not given anew to the next
  -- claim of the same job (and its worker is refused, as it should be).
  PERFORM set_config('synchronous_commit', 'off', true);
  token_base := nextval('dbops_job_lease_tokens') * 16777216;
  -- 1: candidates in order, locked, skipping those other claims hold: first
  -- running jobs whose lease expired with attempts left (rare: their agent
  -- died; they were claimed before anything due now), then due jobs (UNION
  -- ALL reads its parts in turn). Each part an ordered index scan
  -- (dbops_jobs_leases, dbops_jobs_ready) that stops at the limit. Exclusive
  -- jobs of a target with one running are left out here already; of the
  -- others, one per target, and only with the target's advisory lock, which
  -- a concurrent claim of the same target cannot also hold.
  FOR c IN
    WITH busy AS MATERIALIZED (
      SELECT r.target FROM dbops_jobs r
      WHERE r.exclusive AND r.state = 'running' AND r.lease_expires_at >= now()
    ), expired AS (
      SELECT j.id, j.target, j.exclusive FROM dbops_jobs j
      WHERE j.state = 'running' AND j.lease_expires_at < now() AND j.attempt < j.max_attempts
        AND (cardinality(p_kinds) = 0 OR j.kind = ANY (p_kinds))
        AND NOT (j.kind = ANY (p_exclude))
        AND (NOT j.exclusive OR j.target NOT IN (SELECT target FROM busy))
      ORDER BY j.lease_expires_at LIMIT p_max + p_slack
      FOR UPDATE OF j SKIP LOCKED
    ), due AS (
      SELECT j.id, j.target, j.exclusive FROM dbops_jobs j
      WHERE j.state IN ('scheduled', 'available', 'retrying') AND j.run_at <= now()
        AND (cardinality(p_kinds) = 0 OR j.kind = ANY (p_kinds))
        AND NOT (j.kind = ANY (p_exclude))
        AND (NOT j.exclusive OR j.target NOT IN (SELECT target FROM busy))
      ORDER BY j.priority DESC, j.run_at, j.id LIMIT p_max + p_slack
      FOR UPDATE OF j SKIP LOCKED
    )
    SELECT * FROM expired UNION ALL SELECT * FROM due
  LOOP
    EXIT WHEN cardinality(picked) >= p_max + p_slack;
    IF c.exclusive THEN
      CONTINUE WHEN c.target = ANY (taken);
      CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext('dbops_jobs:' || c.target));
      taken := taken || c.target;
      exclusive_picked := true;
    END IF;
    picked := picked || c.id;
  END LOOP;
  IF cardinality(picked) = 0 THEN
    RETURN;
  END IF;
  -- 2: without an exclusive job, the picked ones (up to p_max) become
  -- running; the join of the re-check below costs a claim a tenth more.
  IF NOT exclusive_picked THEN
    RETURN QUERY
    UPDATE dbops_jobs j SET state = 'running', attempt = j.attempt + 1, lease_owner = p_owner,
           lease_token = token_base + floor(random() * 16777216)::int8,
           lease_expires_at = now() + p_lease_ms * interval '1 millisecond', updated_at = now()
    WHERE j.id = ANY (picked[1:p_max])
    RETURNING j.*;
    RETURN;
  END IF;
  -- With one, a new statement, so a new snapshot, taken after the advisory
  -- locks were granted (a lock's previous holder committed its claim before
  -- releasing it): an exclusive job is claimed only if no other exclusive
  -- job of its target runs under a live lease now.
  RETURN QUERY
  UPDATE dbops_jobs j SET state = 'running', attempt = j.attempt + 1, lease_owner = p_owner,
         lease_token = token_base + floor(random() * 16777216)::int8,
         lease_expires_at = now() + p_lease_ms * interval '1 millisecond', updated_at = now()
  FROM (SELECT p.id FROM unnest(picked) WITH ORDINALITY AS p(id, ord)
        JOIN dbops_jobs x ON x.id = p.id
        WHERE NOT x.exclusive OR NOT EXISTS (
          SELECT 1 FROM dbops_jobs r WHERE r.target = x.target AND r.exclusive
            AND r.state = 'running' AND r.lease_expires_at >= now() AND r.id <> x.id)
        ORDER BY p.ord LIMIT p_max) pick
  WHERE j.id = pick.id
  RETURNING j.*;
END
$fn$;
)sql"},
};

// A session idle for longer is pinged before use: the server (or PgBouncer)
// may have closed it meanwhile.
constexpr auto kPingAfterIdle = 30s;
// Candidates a claim locks beyond max_jobs, for the exclusive ones it drops
// (a second job of the same target in the batch, a target another claim
// holds): a quarter of what it claims, up to this many. Exclusive jobs of a
// target that has one running are not candidates at all, so this is rarely
// used; and every locked row costs a WAL record, and concurrent claims skip
// each other's locks, so no more.
constexpr std::int64_t kMaxClaimSlack = 32;

// The columns queued_job_from_row() reads, each prefixed with `alias` ("j.").
std::string job_columns(std::string_view alias) {
  const std::string a(alias);
  return a + "id, " + a + "kind, " + a + "target, " + a + "params_json, " + a +
         "idempotency_key, " + a + "priority, " + us(a + "run_at") + ", " + a + "max_attempts, " +
         a + "timeout_ms, " + a + "exclusive::int, " + a + "state, " + a + "attempt, " + a +
         "lease_owner, " + us(a + "lease_expires_at") + ", " + a + "lease_token, " + a +
         "last_error, " + a + "result_json, " + us(a + "created_at") + ", " + us(a + "updated_at") +
         ", " + us(a + "finished_at");
}

std::vector<QueuedJob> jobs_from(const QueryResult& r) {
  std::vector<QueuedJob> out;
  out.reserve(r.rows.size());
  for (std::size_t i = 0; i < r.rows.size(); ++i) out.push_back(queued_job_from_row(r, i, from_us));
  return out;
}

// A PostgreSQL array literal of text: {"a","b"}, each element quoted.
std::string text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (const char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// JSON text for a parameter; text that is not UTF-8 is refused here, as the
// server would refuse it.
Result<std::string> json_text(const nlohmann::json& value) {
  try {
    return value.dump();
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::kInvalidArgument,
                std::string("job queue: a job's text is not valid UTF-8: ") + e.what());
  }
}

Status migrate(PostgresSession& s) {
  DBOPS_TRY(postgres::migrate(s, "dbops_schema_migrations", kMigrations, "job queue"));
  return ok();
}

// Sessions in use are handed out one per call; a call may take a session
// while other threads use others (up to max_sessions in all). A session that
// broke, or was left inside a transaction, is dropped, so that the next call
// connects anew.
class PostgresQueue final : public JobQueue {
 public:
  PostgresQueue(config::Target target, engine::ConnectOptions options, RetryPolicy retry,
                std::size_t max_sessions)
      : target_(std::move(target)),
        options_(std::move(options)),
        retry_(retry),
        max_sessions_(std::max<std::size_t>(1, max_sessions)) {}

  Status start() {
    return with_session([&](PostgresSession& s) { return migrate(s); });
  }

  std::string describe() const override { return "postgres " + redact::dsn(target_.dsn.reveal()); }

  Result<EnqueueResult> enqueue(const JobSpec& spec) override {
    DBOPS_ASSIGN(auto results, enqueue_batch(std::span<const JobSpec>(&spec, 1)));
    return results.front();
  }

  // One INSERT for the whole batch (so one transaction). Each row's result:
  // inserted; or its key was taken by an earlier row of the batch, or by a
  // job this statement's snapshot sees; or, when the job with the key
  // committed while the statement waited for it, a second SELECT finds it.
  Result<std::vector<EnqueueResult>> enqueue_batch(std::span<const JobSpec> specs) override {
    std::vector<EnqueueResult> out;
    if (specs.empty()) return out;
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const JobSpec& spec = specs[i];
      DBOPS_TRY(check_job_spec(spec));
      rows.push_back({
          {"ord", i},
          {"kind", spec.kind},
          {"target", spec.target},
          {"params_json", spec.params_json.empty() ? std::string("{}") : spec.params_json},
          {"idempotency_key", spec.idempotency_key},
          {"priority", spec.priority},
          {"run_at_us", spec.run_at ? nlohmann::json(to_us(*spec.run_at)) : nlohmann::json()},
          {"max_attempts", spec.max_attempts},
          {"timeout_ms", spec.timeout.count()},
          {"exclusive", spec.exclusive},
      });
    }
    DBOPS_ASSIGN(std::string json, json_text(rows));
    return with_session([&](PostgresSession& s) -> Result<std::vector<EnqueueResult>> {
      const Param params[] = {json};
      DBOPS_ASSIGN(auto r, s.query(R"sql(
WITH input AS MATERIALIZED (
  SELECT t.*, nextval('dbops_job_ids') AS new_id,
         coalesce(timestamptz 'epoch' + t.run_at_us * interval '1 microsecond', now()) AS due_at
  FROM jsonb_to_recordset($1::jsonb) AS t(ord int, kind text, target text, params_json text,
       idempotency_key text, priority int, run_at_us int8, max_attempts int, timeout_ms int8,
       exclusive boolean)
), ins AS (
  INSERT INTO dbops_jobs (id, kind, target, params_json, idempotency_key, priority, run_at,
                          max_attempts, timeout_ms, exclusive, state, created_at, updated_at)
  SELECT new_id, kind, target, params_json, idempotency_key, priority, due_at, max_attempts,
         timeout_ms, exclusive, CASE WHEN due_at > now() THEN 'scheduled' ELSE 'available' END,
         now(), now()
  FROM input ORDER BY ord
  ON CONFLICT (idempotency_key) WHERE idempotency_key <> '' DO NOTHING
  RETURNING id, idempotency_key
), wake AS MATERIALIZED (
  -- Listeners are woken only when the queue had no due job waiting: then
  -- every worker may be idle. With a backlog they are busy and claim again
  -- as each job ends, and a NOTIFY would only cost: PostgreSQL serializes
  -- the commits of notifying transactions, WAL flush included.
  SELECT pg_notify('dbops_jobs', '') WHERE NOT EXISTS (
    SELECT 1 FROM dbops_jobs d WHERE d.state = 'available' AND d.run_at <= now())
)
SELECT i.ord, i.idempotency_key, ins.id,
       (SELECT min(x.id) FROM ins x
        WHERE i.idempotency_key <> '' AND x.idempotency_key = i.idempotency_key),
       -- j.idempotency_key <> '' too, so that the partial unique index
       -- serves it: without it, a scan of the table per input row, whose
       -- cost alone sets off JIT on a large queue.
       (SELECT j.id FROM dbops_jobs j
        WHERE i.idempotency_key <> '' AND j.idempotency_key <> ''
          AND j.idempotency_key = i.idempotency_key)
FROM input i LEFT JOIN ins ON ins.id = i.new_id LEFT JOIN wake ON true
ORDER BY i.ord)sql",
                                   params));
      if (r.rows.size() != specs.size()) {
        return fail(ErrorCode::kInternal, "job queue: an insert of " +
                                              std::to_string(specs.size()) + " jobs returned " +
                                              std::to_string(r.rows.size()) + " rows");
      }
      out.resize(specs.size());
      nlohmann::json missing = nlohmann::json::array();
      for (std::size_t i = 0; i < r.rows.size(); ++i) {
        if (!r.is_null(i, 2)) {
          out[i] = {r.integer(i, 2), true};
        } else if (!r.is_null(i, 3)) {
          out[i] = {r.integer(i, 3), false};
        } else if (!r.is_null(i, 4)) {
          out[i] = {r.integer(i, 4), false};
        } else {
          missing.push_back(r.text(i, 1));
        }
      }
      if (missing.empty()) return out;
      DBOPS_ASSIGN(std::string keys, json_text(missing));
      const Param key_params[] = {keys};
      DBOPS_ASSIGN(auto found, s.query("SELECT idempotency_key, id FROM dbops_jobs WHERE "
                                       "idempotency_key IN (SELECT jsonb_array_elements_text("
                                       "$1::jsonb)) AND idempotency_key <> ''",
                                       key_params));
      std::map<std::string, std::int64_t> by_key;
      for (std::size_t i = 0; i < found.rows.size(); ++i) {
        by_key.emplace(found.text(i, 0), found.integer(i, 1));
      }
      for (std::size_t i = 0; i < r.rows.size(); ++i) {
        if (out[i].id != 0) continue;
        const auto it = by_key.find(r.text(i, 1));
        if (it == by_key.end()) {
          return fail(ErrorCode::kConflict,
                      "job queue: the job with idempotency key " + r.text(i, 1) +
                          " was removed while this enqueue waited for it",
                      "enqueue again.");
        }
        out[i] = {it->second, false};
      }
      return out;
    });
  }

  Result<std::vector<QueuedJob>> claim(const ClaimRequest& request) override {
    if (request.owner.empty()) {
      return fail(ErrorCode::kInvalidArgument, "job queue: a claim needs an owner");
    }
    if (request.lease.count() <= 0) {
      return fail(ErrorCode::kInvalidArgument, "job queue: a claim needs a positive lease");
    }
    if (request.max_jobs == 0) return std::vector<QueuedJob>{};
    const auto max_jobs =
        static_cast<std::int64_t>(std::min<std::size_t>(request.max_jobs, 10'000));

    // One statement: dbops_claim_v1 (migration 4) picks, locks and updates
    // in its own two steps. It commits without waiting for the WAL flush;
    // completions, which must not be lost, wait. A server that crashes within
    // the WAL writer's delay of a claim may lose it: the job is then due
    // again, and the worker holding the lost claim is refused at its next
    // heartbeat (its token, part random, is not handed out again) and stops
    // the job, as when a lease expires (at-least-once, as always). What is
    // gained: a claim costs one round trip and no flush of its own.
    const Param params[] = {request.owner,
                            max_jobs,
                            static_cast<std::int64_t>(request.lease.count()),
                            text_array(request.kinds),
                            text_array(request.exclude_kinds),
                            std::min<std::int64_t>(max_jobs / 4, kMaxClaimSlack)};
    return with_session([&](PostgresSession& s) -> Result<std::vector<QueuedJob>> {
      DBOPS_ASSIGN(auto r, s.query("SELECT " + job_columns("j.") +
                                       " FROM dbops_claim_v1($1::text, $2::int, $3::int8, "
                                       "$4::text[], $5::text[], $6::int) j",
                                   params));
      auto jobs = jobs_from(r);
      std::sort(jobs.begin(), jobs.end(), [](const QueuedJob& a, const QueuedJob& b) {
        if (a.spec.priority != b.spec.priority) return a.spec.priority > b.spec.priority;
        if (a.run_at != b.run_at) return a.run_at < b.run_at;
        return a.id < b.id;
      });
      return jobs;
    });
  }

  Status heartbeat(std::int64_t id, std::int64_t token, std::chrono::milliseconds lease) override {
    if (lease.count() <= 0) {
      return fail(ErrorCode::kInvalidArgument, "job queue: a heartbeat needs a positive lease");
    }
    const Param params[] = {id, token, static_cast<std::int64_t>(lease.count())};
    return fenced(id, token,
                  "UPDATE dbops_jobs SET lease_expires_at = now() + $3::int8 * interval "
                  "'1 millisecond', updated_at = now() "
                  "WHERE id = $1 AND lease_token = $2 AND state = 'running'",
                  params);
  }

  Status succeed(std::int64_t id, std::int64_t token, std::string_view result_json) override {
    const Param params[] = {id, token, std::string(result_json)};
    return fenced(id, token,
                  "UPDATE dbops_jobs SET state = 'succeeded', result_json = $3, "
                  "lease_expires_at = NULL, updated_at = now(), finished_at = now() "
                  "WHERE id = $1 AND lease_token = $2 AND state = 'running'",
                  params);
  }

  // One UPDATE for the batch; the ids it returns are the completions whose
  // lease still held.
  Result<std::vector<Status>> succeed_batch(std::span<const Completion> completions) override {
    std::vector<Status> out;
    if (completions.empty()) return out;
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& c : completions) {
      rows.push_back({{"id", c.id}, {"token", c.token}, {"result", c.result_json}});
    }
    DBOPS_ASSIGN(std::string json, json_text(rows));
    const Param params[] = {json};
    return with_session([&](PostgresSession& s) -> Result<std::vector<Status>> {
      DBOPS_ASSIGN(auto r, s.query("UPDATE dbops_jobs j SET state = 'succeeded', "
                                   "result_json = c.result, lease_expires_at = NULL, "
                                   "updated_at = now(), finished_at = now() "
                                   "FROM jsonb_to_recordset($1::jsonb) AS c(id int8, token int8, "
                                   "result text) "
                                   "WHERE j.id = c.id AND j.lease_token = c.token AND "
                                   "j.state = 'running' RETURNING j.id",
                                   params));
      std::set<std::int64_t> done;
      for (std::size_t i = 0; i < r.rows.size(); ++i) done.insert(r.integer(i, 0));
      for (const auto& c : completions) {
        out.push_back(done.contains(c.id) ? ok() : Status(fail(lease_lost_error(c.id, c.token))));
      }
      return out;
    });
  }

  // The attempt number decides the backoff, so it is read first; the update
  // is fenced by the token (a new claim changes it), which also pins the
  // attempt.
  Result<JobState> fail_attempt(std::int64_t id, std::int64_t token, std::string_view error,
                                bool retryable) override {
    return with_session([&](PostgresSession& s) -> Result<JobState> {
      const Param key[] = {id, token};
      DBOPS_ASSIGN(auto r, s.query("SELECT attempt, max_attempts FROM dbops_jobs "
                                   "WHERE id = $1 AND lease_token = $2 AND state = 'running'",
                                   key));
      if (r.empty()) return fail(lease_lost_error(id, token));
      const auto attempt = static_cast<int>(r.integer(0, 0));
      const auto max_attempts = static_cast<int>(r.integer(0, 1));
      JobState next = JobState::kFailed;
      std::int64_t delay_ms = 0;
      if (!retryable) {
        next = JobState::kFailed;
      } else if (attempt >= max_attempts) {
        next = JobState::kDead;
      } else {
        next = JobState::kRetrying;
        delay_ms = retry_delay(retry_, attempt, default_rng().uniform01()).count();
      }
      const Param params[] = {id,
                              token,
                              std::string(job_state_name(next)),
                              std::string(error),
                              delay_ms,
                              static_cast<std::int64_t>(job_state_final(next) ? 1 : 0),
                              static_cast<std::int64_t>(attempt)};
      DBOPS_ASSIGN(auto u, s.query("UPDATE dbops_jobs SET state = $3, last_error = $4, "
                                   "run_at = CASE WHEN $6::int = 1 THEN run_at "
                                   "ELSE now() + $5::int8 * interval '1 millisecond' END, "
                                   "lease_expires_at = NULL, updated_at = now(), "
                                   "finished_at = CASE WHEN $6::int = 1 THEN now() END "
                                   "WHERE id = $1 AND lease_token = $2 AND state = 'running' "
                                   "AND attempt = $7::int",
                                   params));
      if (u.affected_rows != 1) return fail(lease_lost_error(id, token));
      return next;
    });
  }

  // Not counting the attempt: attempt goes back down; the job is due at once.
  Status release(std::int64_t id, std::int64_t token) override {
    const Param params[] = {id, token};
    return fenced(id, token,
                  "UPDATE dbops_jobs SET state = 'available', attempt = greatest(attempt - 1, 0), "
                  "run_at = now(), lease_expires_at = NULL, updated_at = now() "
                  "FROM (SELECT pg_notify('dbops_jobs', '')) wake "
                  "WHERE id = $1 AND lease_token = $2 AND state = 'running'",
                  params);
  }

  Result<JobState> cancel(std::int64_t id) override {
    return with_session([&](PostgresSession& s) -> Result<JobState> {
      return in_transaction(s, [&]() -> Result<JobState> {
        const Param key[] = {id};
        DBOPS_ASSIGN(auto r, s.query("SELECT state FROM dbops_jobs WHERE id = $1 FOR UPDATE", key));
        if (r.empty()) {
          return fail(ErrorCode::kNotFound, "job " + std::to_string(id) + " is not in the queue");
        }
        const JobState previous = parse_job_state(r.text(0, 0)).value_or(JobState::kFailed);
        if (job_state_final(previous)) return previous;
        DBOPS_TRY(
            s.query("UPDATE dbops_jobs SET state = 'cancelled', lease_expires_at = NULL, "
                    "updated_at = now(), finished_at = now() WHERE id = $1",
                    key));
        return previous;
      });
    });
  }

  Result<std::vector<QueuedJob>> reap_expired() override {
    return with_session([&](PostgresSession& s) -> Result<std::vector<QueuedJob>> {
      DBOPS_ASSIGN(auto r, s.query("UPDATE dbops_jobs SET state = 'dead', last_error = 'the lease "
                                   "of ' || lease_owner || ' expired on attempt ' || attempt || "
                                   "' of ' || max_attempts, lease_expires_at = NULL, "
                                   "updated_at = now(), finished_at = now() "
                                   "WHERE state = 'running' AND lease_expires_at < now() AND "
                                   "attempt >= max_attempts RETURNING " +
                                   job_columns("")));
      auto jobs = jobs_from(r);
      std::sort(jobs.begin(), jobs.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
      return jobs;
    });
  }

  Result<std::optional<QueuedJob>> get(std::int64_t id) override {
    return with_session([&](PostgresSession& s) -> Result<std::optional<QueuedJob>> {
      const Param key[] = {id};
      DBOPS_ASSIGN(auto r,
                   s.query("SELECT " + job_columns("") + " FROM dbops_jobs WHERE id = $1", key));
      if (r.empty()) return std::optional<QueuedJob>{};
      return queued_job_from_row(r, 0, from_us);
    });
  }

  Result<std::vector<QueuedJob>> list(const JobQuery& q) override {
    std::string sql = "SELECT " + job_columns("") + " FROM dbops_jobs WHERE true";
    std::vector<Param> params;
    const auto next = [&] { return "$" + std::to_string(params.size()); };
    if (q.state) {
      params.emplace_back(std::string(job_state_name(*q.state)));
      sql += " AND state = " + next();
    }
    if (!q.target.empty()) {
      params.emplace_back(q.target);
      sql += " AND target = " + next();
    }
    if (!q.kind.empty()) {
      params.emplace_back(q.kind);
      sql += " AND kind = " + next();
    }
    params.emplace_back(static_cast<std::int64_t>(std::min<std::size_t>(q.limit, 1'000'000)));
    sql += " ORDER BY id DESC LIMIT " + next() + "::int8";
    return with_session([&](PostgresSession& s) -> Result<std::vector<QueuedJob>> {
      DBOPS_ASSIGN(auto r, s.query(sql, params));
      return jobs_from(r);
    });
  }

  // A scan of the whole table (the agent calls it every round): without JIT,
  // which a queue of millions of jobs would otherwise set off every time.
  Result<std::vector<std::pair<JobState, std::int64_t>>> counts() override {
    return with_session(
        [&](PostgresSession& s) -> Result<std::vector<std::pair<JobState, std::int64_t>>> {
          DBOPS_ASSIGN(auto results,
                       s.exec_results("BEGIN; SET LOCAL jit = off; SELECT state, count(*) FROM "
                                      "dbops_jobs GROUP BY state ORDER BY state; COMMIT",
                                      engine::Deadline::after(30s)));
          if (results.size() != 4) {
            return fail(ErrorCode::kInternal, "job queue: counting jobs returned " +
                                                  std::to_string(results.size()) + " results");
          }
          const QueryResult& r = results[2];
          std::vector<std::pair<JobState, std::int64_t>> out;
          for (std::size_t i = 0; i < r.rows.size(); ++i) {
            if (auto state = parse_job_state(r.text(i, 0)))
              out.emplace_back(*state, r.integer(i, 1));
          }
          return out;
        });
  }

  // Rows another session holds (a cancel in flight) are skipped, not waited for.
  Result<std::size_t> purge_finished(TimePoint before, std::size_t batch) override {
    if (batch == 0) return std::size_t{0};
    const Param params[] = {to_us(before),
                            static_cast<std::int64_t>(std::min<std::size_t>(batch, 1'000'000))};
    return with_session([&](PostgresSession& s) -> Result<std::size_t> {
      DBOPS_ASSIGN(
          auto r,
          s.query("DELETE FROM dbops_jobs WHERE id IN (SELECT id FROM dbops_jobs "
                  "WHERE finished_at IS NOT NULL AND finished_at < " +
                      at("$1") + " ORDER BY finished_at, id LIMIT $2::int8 FOR UPDATE SKIP LOCKED)",
                  params));
      return static_cast<std::size_t>(r.affected_rows);
    });
  }

  Status heartbeat_member(std::string_view id, std::string_view info_json,
                          std::chrono::milliseconds lease) override {
    if (lease.count() <= 0)
      return fail(ErrorCode::kInvalidArgument, "a member lease must be positive");
    const Param params[] = {std::string(id), std::string(info_json),
                            static_cast<std::int64_t>(lease.count())};
    return with_session([&](PostgresSession& s) -> Status {
      DBOPS_TRY(
          s.query("INSERT INTO dbops_members (id, info, started_at, last_heartbeat, "
                  "expires_at) VALUES ($1, $2, now(), now(), now() + $3::int8 * interval "
                  "'1 millisecond') ON CONFLICT (id) DO UPDATE SET info = excluded.info, "
                  "last_heartbeat = excluded.last_heartbeat, expires_at = "
                  "excluded.expires_at",
                  params));
      return ok();
    });
  }

  Status leave_member(std::string_view id) override {
    const Param key[] = {std::string(id)};
    return with_session([&](PostgresSession& s) -> Status {
      return in_transaction(s, [&]() -> Status {
        DBOPS_TRY(s.query("DELETE FROM dbops_members WHERE id = $1", key));
        // Resigning ends the term now: the history shows when it stopped.
        DBOPS_TRY(
            s.query("UPDATE dbops_leader_terms t SET held_until = least(t.held_until, "
                    "now()) FROM dbops_leader l WHERE l.id = 1 AND l.holder = $1 AND "
                    "l.expires_at >= now() AND t.term = l.term",
                    key));
        DBOPS_TRY(
            s.query("UPDATE dbops_leader SET expires_at = '-infinity' WHERE id = 1 AND "
                    "holder = $1",
                    key));
        return ok();
      });
    });
  }

  Result<std::vector<Member>> members() override {
    return with_session([&](PostgresSession& s) -> Result<std::vector<Member>> {
      DBOPS_ASSIGN(auto r, s.query("SELECT m.id, m.info, " + us("m.started_at") + ", " +
                                   us("m.last_heartbeat") +
                                   ", (m.expires_at >= now())::int, (SELECT count(*) FROM "
                                   "dbops_jobs j WHERE j.state = 'running' AND j.lease_owner = "
                                   "m.id), (l.holder = m.id AND l.expires_at >= now())::int "
                                   "FROM dbops_members m CROSS JOIN dbops_leader l WHERE l.id = 1 "
                                   "ORDER BY m.id"));
      std::vector<Member> out;
      for (std::size_t i = 0; i < r.rows.size(); ++i) {
        out.push_back(Member{.id = r.text(i, 0),
                             .info_json = r.text(i, 1),
                             .started_at = from_us(r.integer(i, 2)),
                             .last_heartbeat = from_us(r.integer(i, 3)),
                             .alive = r.integer(i, 4) != 0,
                             .running_jobs = r.integer(i, 5),
                             .leader = r.integer(i, 6) != 0});
      }
      return out;
    });
  }

  // One transaction: the row is locked, then kept (the holder renews a live
  // lease), taken with the next term (the lease ran out or is free), or left
  // to its live holder. Times are the database's. A new term's start is
  // clock_timestamp(), read after the row lock was granted, so it follows the
  // end of the term before it even when this transaction began earlier and
  // waited for the lock.
  Result<Leadership> lead(std::string_view id, std::chrono::milliseconds lease) override {
    if (lease.count() <= 0)
      return fail(ErrorCode::kInvalidArgument, "a leader lease must be positive");
    const Param params[] = {std::string(id), static_cast<std::int64_t>(lease.count())};
    return with_session([&](PostgresSession& s) -> Result<Leadership> {
      return in_transaction(s, [&]() -> Result<Leadership> {
        DBOPS_ASSIGN(auto r,
                     s.query("UPDATE dbops_leader l SET holder = $1, term = CASE WHEN l.holder = "
                             "$1 AND l.expires_at >= now() THEN l.term ELSE l.term + 1 END, "
                             "expires_at = now() + $2::int8 * interval '1 millisecond' WHERE "
                             "l.id = 1 AND (l.expires_at < now() OR l.holder = $1) RETURNING "
                             "l.term",
                             params));
        if (r.empty()) {
          DBOPS_ASSIGN(auto cur, s.query("SELECT holder, term FROM dbops_leader WHERE id = 1"));
          return Leadership{.leader = false, .term = cur.integer(0, 1), .holder = cur.text(0, 0)};
        }
        const std::int64_t term = r.integer(0, 0);
        const Param history[] = {term, std::string(id), static_cast<std::int64_t>(lease.count())};
        DBOPS_TRY(s.query(
            "INSERT INTO dbops_leader_terms (term, holder, started_at, held_until) "
            "VALUES ($1, $2, clock_timestamp(), now() + $3::int8 * interval '1 millisecond') "
            "ON CONFLICT (term) DO UPDATE SET held_until = excluded.held_until",
            history));
        return Leadership{.leader = true, .term = term, .holder = std::string(id)};
      });
    });
  }

  Result<std::vector<LeaderTerm>> leader_terms(std::size_t limit) override {
    const Param params[] = {static_cast<std::int64_t>(limit)};
    return with_session([&](PostgresSession& s) -> Result<std::vector<LeaderTerm>> {
      DBOPS_ASSIGN(auto r,
                   s.query("SELECT term, holder, " + us("started_at") + ", " + us("held_until") +
                               " FROM dbops_leader_terms ORDER BY term DESC LIMIT $1",
                           params));
      std::vector<LeaderTerm> out;
      for (std::size_t i = 0; i < r.rows.size(); ++i) {
        out.push_back(LeaderTerm{.term = r.integer(i, 0),
                                 .holder = r.text(i, 1),
                                 .started_at = from_us(r.integer(i, 2)),
                                 .held_until = from_us(r.integer(i, 3))});
      }
      return out;
    });
  }

  // A backward range scan of dbops_jobs_key_prefix: comparisons in the "C"
  // collation are byte order, so the range holds the prefix's keys (the
  // default collation's order may interleave other keys); starts_with() drops
  // keys of the range that lack the prefix.
  Result<std::optional<std::string>> newest_key(std::string_view prefix) override {
    std::vector<Param> params = {std::string(prefix)};
    std::string sql =
        "SELECT idempotency_key FROM dbops_jobs WHERE idempotency_key <> '' AND "
        "(idempotency_key COLLATE \"C\") >= $1";
    if (auto end = key_range_end(prefix)) {
      params.emplace_back(std::move(*end));
      sql += " AND (idempotency_key COLLATE \"C\") < $2";
    }
    sql +=
        " AND starts_with(idempotency_key, $1) ORDER BY idempotency_key COLLATE \"C\" DESC "
        "LIMIT 1";
    return with_session([&](PostgresSession& s) -> Result<std::optional<std::string>> {
      DBOPS_ASSIGN(auto r, s.query(sql, params));
      if (r.empty()) return std::optional<std::string>{};
      return std::optional<std::string>{r.text(0, 0)};
    });
  }

 private:
  // An update fenced by the lease token: zero rows means the lease is lost.
  Status fenced(std::int64_t id, std::int64_t token, const std::string& sql,
                std::span<const Param> params) {
    return with_session([&](PostgresSession& s) -> Status {
      DBOPS_ASSIGN(auto r, s.query(sql, params));
      if (r.affected_rows != 1) return fail(lease_lost_error(id, token));
      return ok();
    });
  }

  struct Idle {
    std::unique_ptr<PostgresSession> session;
    std::chrono::steady_clock::time_point since;
  };

  // Runs `body` on a session of the pool.
  template <typename Body>
  auto with_session(Body body) -> decltype(body(std::declval<PostgresSession&>())) {
    DBOPS_ASSIGN(auto session, take());
    auto result = body(*session);
    give_back(std::move(session));
    return result;
  }

  Result<std::unique_ptr<PostgresSession>> take() {
    std::unique_lock lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_sessions_; });
      if (idle_.empty()) break;
      Idle idle = std::move(idle_.back());
      idle_.pop_back();
      if (idle.session->is_open() &&
          std::chrono::steady_clock::now() - idle.since < kPingAfterIdle) {
        return std::move(idle.session);
      }
      lock.unlock();
      const bool alive =
          idle.session->is_open() && idle.session->ping(engine::Deadline::after(5s)).has_value();
      lock.lock();
      if (alive) return std::move(idle.session);
      --open_;  // dropped; connect anew below (or reuse another idle one)
      log::debug("job queue: dropping a broken session");
    }
    ++open_;
    lock.unlock();
    auto session = engine::postgres::connect(target_, options_);
    if (!session) {
      lock.lock();
      --open_;
      cv_.notify_one();
      return std::unexpected(std::move(session).error().with_context("job queue"));
    }
    return std::move(*session);
  }

  void give_back(std::unique_ptr<PostgresSession> session) {
    if (session && session->is_open() && !session->transaction_idle()) {
      // A failure left a transaction open (an aborted one, or a timeout
      // mid-way): end it, or drop the session.
      if (!session->exec("ROLLBACK") || !session->transaction_idle()) session.reset();
    }
    if (session && !session->is_open()) session.reset();
    std::lock_guard lock(mu_);
    if (session) {
      idle_.push_back({std::move(session), std::chrono::steady_clock::now()});
    } else {
      --open_;
    }
    cv_.notify_one();
  }

  const config::Target target_;
  const engine::ConnectOptions options_;
  const RetryPolicy retry_;
  const std::size_t max_sessions_;  // kept open; more callers wait for one

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Idle> idle_;
  std::size_t open_ = 0;  // sessions in use or idle
};

// LISTEN on a session of its own; the session's socket is watched between
// waits too, so notifications that came meanwhile are not lost.
class PostgresNotifications final : public JobNotifications {
 public:
  explicit PostgresNotifications(std::unique_ptr<PostgresSession> session)
      : session_(std::move(session)) {}

  Result<bool> wait(std::chrono::milliseconds timeout) override {
    DBOPS_ASSIGN(auto channels, session_->wait_notifications(engine::Deadline::after(timeout)));
    return !channels.empty();
  }

 private:
  std::unique_ptr<PostgresSession> session_;
};

}  // namespace

Result<SchemaPart> queue_schema_part(PostgresSession& s) {
  return read_schema_part(s, "job queue", "dbops_schema_migrations", kMigrations);
}

Result<std::unique_ptr<JobNotifications>> listen_for_jobs(const Secret& dsn) {
  if (dsn.empty()) {
    return fail(ErrorCode::kConfig, "job notifications: no PostgreSQL connection string");
  }
  engine::ConnectOptions options;
  options.application_name = "dbops listen";
  DBOPS_ASSIGN(auto session,
               engine::postgres::connect(store_target(dsn, "job notifications"), options));
  DBOPS_TRY(session->exec(std::string("LISTEN ") + kJobsChannel));
  return std::unique_ptr<JobNotifications>(
      std::make_unique<PostgresNotifications>(std::move(session)));
}

Result<std::unique_ptr<JobQueue>> open_postgres_queue(const Secret& dsn, const RetryPolicy& retry,
                                                      std::size_t max_sessions) {
  if (dsn.empty()) {
    return fail(ErrorCode::kConfig, "job queue: no PostgreSQL connection string");
  }
  engine::ConnectOptions options;
  options.application_name = "dbops queue";
  auto queue =
      std::make_unique<PostgresQueue>(store_target(dsn, "job queue"), options, retry, max_sessions);
  DBOPS_TRY(queue->start());
  return std::unique_ptr<JobQueue>(std::move(queue));
}

}  // namespace dbops::store::postgres
