// The job queue contract on PostgreSQL (the shared suite), and what only the
// shared store has to prove: several agents claiming at once, schema creation
// racing, leases in database time, reconnection.
//
// Each queue the factory makes gets a database of its own on the binary's
// shared instance, so every test starts from an empty, unmigrated schema.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/secret.hpp"
#include "engine/engine.hpp"
#include "engine/postgres/postgres_session.hpp"
#include "store/postgres/postgres_queue.hpp"
#include "support/instances.hpp"
#include "support/queue_suite.hpp"

namespace dbops::testing {
namespace {

using namespace std::chrono_literals;
using engine::Deadline;
using engine::Param;
using engine::QueryResult;
using engine::postgres::PostgresSession;
using store::JobQueue;
using store::JobSpec;
using store::JobState;
using store::QueuedJob;
using store::postgres::open_postgres_queue;

// A value in a libpq key=value connection string.
std::string quoted(const std::string& value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// A connection string for `database` on the shared instance.
Secret dsn_for(const std::string& database) {
  const auto& pg = shared_postgres();
  return Secret("host=" + pg.host() + " port=" + std::to_string(pg.port()) + " user=" +
                quoted(pg.superuser()) + " password=" + quoted(pg.superuser_password().reveal()) +
                " dbname=" + quoted(database) + " connect_timeout=10");
}

std::unique_ptr<PostgresSession> admin_session(const std::string& database = "") {
  engine::ConnectOptions options;
  options.database = database;
  auto s = engine::postgres::connect(shared_postgres().target("queue-admin"), options);
  EXPECT_TRUE(s) << s.error().to_string();
  return s ? std::move(*s) : nullptr;
}

// A new, empty database on the shared instance.
std::string new_database() {
  static std::mutex mu;
  static std::unique_ptr<PostgresSession> admin;
  static int n = 0;
  std::lock_guard lock(mu);
  if (!admin || !admin->is_open()) admin = admin_session();
  if (!admin) return "postgres";
  const std::string name = "dbops_queue_" + std::to_string(++n);
  auto created = admin->exec("CREATE DATABASE " + name, Deadline::after(60s));
  EXPECT_TRUE(created) << created.error().to_string();
  return name;
}

Result<std::unique_ptr<JobQueue>> new_postgres_queue(const store::RetryPolicy& retry) {
  return open_postgres_queue(dsn_for(new_database()), retry);
}

[[maybe_unused]] const int kSuite = link_queue_suite();
INSTANTIATE_TEST_SUITE_P(Postgres, QueueSuite,
                         ::testing::Values(QueueImpl{"postgres", new_postgres_queue}),
                         [](const auto& info) { return info.param.name; });

// ---- helpers ------------------------------------------------------------

template <typename T>
T value(Result<T> r) {
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? std::move(*r) : T{};
}

std::unique_ptr<JobQueue> must_open(const std::string& database,
                                    const store::RetryPolicy& retry = {}) {
  auto q = open_postgres_queue(dsn_for(database), retry);
  EXPECT_TRUE(q) << q.error().to_string();
  return q ? std::move(*q) : nullptr;
}

// A statement on `database` as the superuser, which must succeed.
QueryResult sql(const std::string& database, const std::string& text,
                std::vector<Param> params = {}) {
  auto s = admin_session(database);
  if (!s) return {};
  auto r = s->query(text, params, Deadline::after(30s));
  EXPECT_TRUE(r) << text << ": " << r.error().to_string();
  return r ? std::move(*r) : QueryResult{};
}

JobSpec spec(std::string kind, std::string target, bool exclusive = false) {
  JobSpec s;
  s.kind = std::move(kind);
  s.target = std::move(target);
  s.exclusive = exclusive;
  return s;
}

class PostgresQueue : public ::testing::Test {
 protected:
  void SetUp() override { db_ = new_database(); }
  std::string db_;
};

// ---- several agents -----------------------------------------------------

// Four agents (each its own queue, so its own connections) work through a
// mix of probes and exclusive jobs on a few targets: every job runs exactly
// once, and no target ever has two exclusive jobs running.
TEST_F(PostgresQueue, FourAgentsNeverDoubleClaimNorOverlapExclusiveJobs) {
  constexpr int kJobs = 400;
  constexpr int kTargets = 5;
  {
    auto q = must_open(db_);
    ASSERT_NE(q, nullptr);
    std::vector<JobSpec> specs;
    for (int i = 0; i < kJobs; ++i) {
      const bool exclusive = i % 3 == 0;
      auto s = spec(exclusive ? "backup" : "probe", "t" + std::to_string(i % kTargets), exclusive);
      s.priority = i % 4;
      specs.push_back(std::move(s));
    }
    ASSERT_EQ(value(q->enqueue_batch(specs)).size(), static_cast<std::size_t>(kJobs));
  }

  std::mutex mu;
  std::map<std::int64_t, int> claimed;  // job id -> times claimed
  std::map<std::string, int> running;   // target -> exclusive jobs running now
  std::atomic<int> overlaps{0}, errors{0}, done{0};
  std::vector<std::thread> agents;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  for (int a = 0; a < 4; ++a) {
    agents.emplace_back([&, a] {
      auto q = must_open(db_);
      if (!q) {
        ++errors;
        return;
      }
      const std::string owner = "agent-" + std::to_string(a);
      while (done.load() < kJobs && std::chrono::steady_clock::now() < deadline) {
        auto got = q->claim({.owner = owner, .max_jobs = 4, .lease = 60s});
        if (!got) {
          ADD_FAILURE() << got.error().to_string();
          ++errors;
          return;
        }
        if (got->empty()) std::this_thread::sleep_for(2ms);
        for (const auto& j : *got) {
          EXPECT_EQ(j.attempt, 1) << "job " << j.id;
          {
            std::lock_guard lock(mu);
            ++claimed[j.id];
            if (j.spec.exclusive && ++running[j.spec.target] > 1) ++overlaps;
          }
          if (j.spec.exclusive) {
            std::this_thread::sleep_for(1ms);
            // Off the books before the queue hears it finished: a claim of
            // the next job of the target can only follow the succeed().
            std::lock_guard lock(mu);
            --running[j.spec.target];
          }
          if (auto s = q->succeed(j.id, j.lease_token, "{}"); !s) {
            ADD_FAILURE() << s.error().to_string();
            ++errors;
          }
          ++done;
        }
      }
    });
  }
  for (auto& t : agents) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kJobs));
  for (const auto& [id, n] : claimed) EXPECT_EQ(n, 1) << "job " << id;
  EXPECT_EQ(sql(db_, "SELECT count(*) FROM dbops_jobs WHERE state = 'succeeded' AND attempt = 1")
                .text(0, 0),
            std::to_string(kJobs));
}

// Two agents claim one job each at the same instant, round after round, with
// more exclusive jobs of one target due than a claim locks as candidates (so
// that the second agent finds unlocked ones): exactly one job runs.
TEST_F(PostgresQueue, TwoAgentsRacingForOneTargetGetOneExclusiveJob) {
  auto setup = must_open(db_);
  auto a = must_open(db_);
  auto b = must_open(db_);
  ASSERT_TRUE(setup && a && b);
  constexpr int kRounds = 30;
  constexpr int kJobsPerRound = 60;
  for (int round = 0; round < kRounds; ++round) {
    // A kind of its own per round, so that earlier rounds' jobs stay out.
    const std::string kind = "backup-" + std::to_string(round);
    const std::vector<JobSpec> specs(kJobsPerRound, spec(kind, "pg-main", true));
    ASSERT_EQ(value(setup->enqueue_batch(specs)).size(), specs.size());
    const store::ClaimRequest request{.max_jobs = 1, .kinds = {kind}};
    std::barrier start(2);
    std::vector<QueuedJob> got_a, got_b;
    std::thread ta([&] {
      auto r = request;
      r.owner = "a";
      start.arrive_and_wait();
      got_a = value(a->claim(r));
    });
    std::thread tb([&] {
      auto r = request;
      r.owner = "b";
      start.arrive_and_wait();
      got_b = value(b->claim(r));
    });
    ta.join();
    tb.join();
    ASSERT_EQ(got_a.size() + got_b.size(), 1U) << "round " << round;
    const auto& j = got_a.empty() ? got_b[0] : got_a[0];
    ASSERT_TRUE((got_a.empty() ? b : a)->succeed(j.id, j.lease_token, "{}"));
    // The next job of the target follows once the first finished.
    auto r = request;
    r.owner = "setup";
    auto next = value(setup->claim(r));
    ASSERT_EQ(next.size(), 1U) << "round " << round;
    ASSERT_TRUE(setup->succeed(next[0].id, next[0].lease_token, "{}"));
  }
}

// Threads sharing one queue object use its session pool concurrently.
TEST_F(PostgresQueue, OneQueueIsSafeFromManyThreads) {
  auto q = must_open(db_);
  ASSERT_NE(q, nullptr);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto s = spec("probe", "t" + std::to_string(t));
        s.idempotency_key = "k" + std::to_string(i);  // shared across threads
        if (!q->enqueue(s)) ++errors;
        auto got = q->claim({.owner = "t" + std::to_string(t), .max_jobs = 2});
        if (!got) {
          ++errors;
          continue;
        }
        for (const auto& j : *got) {
          if (!q->succeed(j.id, j.lease_token, "{}")) ++errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(sql(db_, "SELECT count(*) FROM dbops_jobs").text(0, 0), "25");
  // No session was left inside a transaction.
  EXPECT_EQ(sql(db_,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'dbops queue' AND state <> 'idle'")
                .text(0, 0),
            "0");
}

// ---- schema -------------------------------------------------------------

TEST_F(PostgresQueue, TheSchemaIsCreatedOnceWhenManyOpenAtOnce) {
  constexpr int kOpeners = 6;
  std::barrier start(kOpeners);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      auto q = open_postgres_queue(dsn_for(db_));
      if (!q) {
        ADD_FAILURE() << q.error().to_string();
        ++failures;
        return;
      }
      JobSpec s = spec("probe", "db");
      if (!(*q)->enqueue(s)) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(sql(db_, "SELECT version, description FROM dbops_schema_migrations ORDER BY version")
                .to_text(),
            "1|job queue\n2|job queue: idempotency keys by prefix\n3|job queue: agent members "
            "and the leader lease\n4|job queue: claims in one round trip");
  EXPECT_EQ(sql(db_, "SELECT count(*) FROM dbops_jobs").text(0, 0), std::to_string(kOpeners));
  // Opening a current schema again changes nothing.
  ASSERT_NE(must_open(db_), nullptr);
  EXPECT_EQ(sql(db_, "SELECT count(*) FROM dbops_schema_migrations").text(0, 0), "4");
}

// A schema a later release expanded still serves this one.
TEST_F(PostgresQueue, ANewerSchemaIsAccepted) {
  ASSERT_NE(must_open(db_), nullptr);
  sql(db_, "ALTER TABLE dbops_jobs ADD COLUMN shard integer NOT NULL DEFAULT 0");
  sql(db_, "INSERT INTO dbops_schema_migrations (version, description) VALUES (99, 'later')");
  auto q = must_open(db_);
  ASSERT_NE(q, nullptr);
  const auto id = value(q->enqueue(spec("probe", "db"))).id;
  EXPECT_EQ(value(q->claim({.owner = "a"})).size(), 1U);
  EXPECT_EQ(value(q->get(id))->state, JobState::kRunning);
}

// newest_key() compares in byte order whatever the database's collation: in
// an ICU en-US database, "Schedule:A:..." and "schedule-a:..." sort among the
// "schedule:a:" keys. And it reads the prefix index, not the table.
TEST_F(PostgresQueue, TheNewestKeyIsInByteOrderUnderALinguisticCollation) {
  const std::string db = db_ + "_icu";
  {
    auto admin = admin_session();
    ASSERT_NE(admin, nullptr);
    ASSERT_TRUE(admin->exec("CREATE DATABASE " + db +
                                " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                                "LOCALE 'C.UTF-8'",
                            Deadline::after(60s)));
  }
  auto q = must_open(db);
  ASSERT_NE(q, nullptr);
  for (const char* key : {"schedule:a:2026-01-01T00:00:00Z", "schedule:a:2026-01-02T00:00:00Z",
                          "Schedule:A:2027-01-01T00:00:00Z", "schedule:A:2027-01-01T00:00:00Z",
                          "schedule-a:2027-01-01T00:00:00Z", "schedule:a;2027-01-01T00:00:00Z",
                          "schedule:a2027-01-01T00:00:00Z"}) {
    JobSpec s = spec("backup", "db");
    s.idempotency_key = key;
    value(q->enqueue(s));
  }
  EXPECT_EQ(value(q->newest_key("schedule:a:")), "schedule:a:2026-01-02T00:00:00Z");
  EXPECT_EQ(value(q->newest_key("schedule:b:")), std::nullopt);

  auto s = admin_session(db);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->exec("SET enable_seqscan = off", Deadline::after(30s)));
  const Param params[] = {std::string("schedule:a:"), std::string("schedule:a;")};
  auto plan = s->query(
      "EXPLAIN SELECT idempotency_key FROM dbops_jobs WHERE idempotency_key <> '' AND "
      "(idempotency_key COLLATE \"C\") >= $1 AND (idempotency_key COLLATE \"C\") < $2 AND "
      "starts_with(idempotency_key, $1) ORDER BY idempotency_key COLLATE \"C\" DESC LIMIT 1",
      params, Deadline::after(30s));
  ASSERT_TRUE(plan) << plan.error().to_string();
  EXPECT_NE(plan->to_text().find("dbops_jobs_key_prefix"), std::string::npos) << plan->to_text();
}

// ---- database time ------------------------------------------------------

// Leases, due times and backoff are computed and compared in the database's
// clock: the client's clock cannot be skewed here, so the database's view
// is moved instead (the stored times, relative to its now()), and the queue
// must follow it, not what the client computed.
TEST_F(PostgresQueue, LeasesAndDueTimesFollowTheDatabaseClock) {
  auto q = must_open(db_, {.base = 5s, .max = 5s, .jitter = 0.0});
  ASSERT_NE(q, nullptr);
  const auto id = value(q->enqueue(spec("backup", "db", true))).id;
  const auto first = value(q->claim({.owner = "a", .lease = 1h}));
  ASSERT_EQ(first.size(), 1U);
  // Both ends of the lease come from one reading of the database clock.
  EXPECT_EQ(sql(db_, "SELECT lease_expires_at - updated_at FROM dbops_jobs WHERE id = $1", {id})
                .text(0, 0),
            "01:00:00");

  // The client thinks the lease has an hour left; the database says it
  // ended: another agent gets the job, and the first is fenced.
  sql(db_, "UPDATE dbops_jobs SET lease_expires_at = now() - interval '1 ms' WHERE id = $1", {id});
  const auto second = value(q->claim({.owner = "b", .lease = 1h}));
  ASSERT_EQ(second.size(), 1U);
  EXPECT_EQ(second[0].attempt, 2);
  auto hb = q->heartbeat(id, first[0].lease_token, 1h);
  ASSERT_FALSE(hb);
  EXPECT_EQ(hb.error().code, ErrorCode::kConflict);
  EXPECT_EQ(hb.error().message.rfind("job " + std::to_string(id) + ": lease lost (token " +
                                         std::to_string(first[0].lease_token),
                                     0),
            0U)
      << hb.error().message;

  // Backoff: due exactly the policy's delay after the failure, in database time.
  EXPECT_EQ(value(q->fail_attempt(id, second[0].lease_token, "boom", true)), JobState::kRetrying);
  EXPECT_EQ(sql(db_, "SELECT run_at - updated_at FROM dbops_jobs WHERE id = $1", {id}).text(0, 0),
            "00:00:05");
  EXPECT_TRUE(value(q->claim({.owner = "c"})).empty());
  sql(db_, "UPDATE dbops_jobs SET run_at = now() WHERE id = $1", {id});
  ASSERT_EQ(value(q->claim({.owner = "c"})).size(), 1U);

  // A job the client scheduled for the past is not due while the database
  // says its time has not come, and one it scheduled far ahead is due once
  // the database says so.
  auto past = spec("probe", "db");
  past.run_at = std::chrono::system_clock::now() - 1h;
  const auto past_id = value(q->enqueue(past)).id;
  sql(db_, "UPDATE dbops_jobs SET run_at = now() + interval '1 hour' WHERE id = $1", {past_id});
  EXPECT_TRUE(value(q->claim({.owner = "d"})).empty());
  auto future = spec("probe", "db");
  future.run_at = std::chrono::system_clock::now() + 1h;
  const auto future_id = value(q->enqueue(future)).id;
  EXPECT_EQ(value(q->get(future_id))->state, JobState::kScheduled);
  sql(db_, "UPDATE dbops_jobs SET run_at = now() - interval '1 ms' WHERE id = $1", {future_id});
  const auto due = value(q->claim({.owner = "d"}));
  ASSERT_EQ(due.size(), 1U);
  EXPECT_EQ(due[0].id, future_id);
}

// Times round-trip at microsecond precision.
TEST_F(PostgresQueue, TimesRoundTripInMicroseconds) {
  auto q = must_open(db_);
  ASSERT_NE(q, nullptr);
  auto s = spec("probe", "db");
  const auto when = std::chrono::time_point_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now() + 10min + 123us);
  s.run_at = when;
  s.timeout = 90s;
  s.params_json = R"({"a":"ü \"quoted\""})";
  const auto id = value(q->enqueue(s)).id;
  const auto job = value(q->get(id));
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->run_at, when);
  EXPECT_EQ(job->spec.timeout, 90s);
  EXPECT_EQ(job->spec.params_json, s.params_json);
  EXPECT_LE(job->created_at, std::chrono::system_clock::now() + 5s);
}

// ---- connections --------------------------------------------------------

// A connection the server ended is replaced on the next call.
TEST_F(PostgresQueue, ABrokenConnectionIsReplaced) {
  auto q = must_open(db_);
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(q->enqueue(spec("probe", "db")));
  sql(db_,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND application_name = 'dbops queue'");
  // The first call may fail on the dead connection; the next one reconnects.
  if (auto r = q->counts(); !r) {
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  }
  auto got = q->claim({.owner = "a"});
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_EQ(got->size(), 1U);
}

// ---- claims that a crash may lose ----------------------------------------

// A claim commits without waiting for the WAL flush, so a server crash may
// lose it together with the token sequence's last values. Simulated: the job
// goes back to how it was before the claim and the sequence back to where it
// stood. The next claim of the job must not hand out the lost claim's token
// again: the worker holding it is refused.
TEST_F(PostgresQueue, AClaimLostInACrashDoesNotReissueItsToken) {
  auto q = must_open(db_);
  ASSERT_NE(q, nullptr);
  const auto id = value(q->enqueue(spec("backup", "db", true))).id;
  const std::string before = sql(db_, "SELECT last_value FROM dbops_job_lease_tokens").text(0, 0);
  auto lost = value(q->claim({.owner = "a"}));
  ASSERT_EQ(lost.size(), 1U);
  // What recovery would leave: the row and the sequence as before the claim.
  sql(db_,
      "UPDATE dbops_jobs SET state = 'available', attempt = 0, lease_owner = '', "
      "lease_token = 0, lease_expires_at = NULL WHERE id = $1",
      {id});
  sql(db_, "SELECT setval('dbops_job_lease_tokens', " + before + ")");
  auto again = value(q->claim({.owner = "b"}));
  ASSERT_EQ(again.size(), 1U);
  EXPECT_NE(again[0].lease_token, lost[0].lease_token);
  auto st = q->heartbeat(id, lost[0].lease_token, 30s);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kConflict);
  EXPECT_TRUE(q->succeed(id, again[0].lease_token, "{}"));
}

// The claim's second step needs a snapshot of its own; under REPEATABLE READ
// it would reuse the first one, so the claim refuses to run.
TEST_F(PostgresQueue, ClaimsRefuseAnIsolationOtherThanReadCommitted) {
  ASSERT_NE(must_open(db_), nullptr);
  auto admin = admin_session();
  ASSERT_NE(admin, nullptr);
  ASSERT_TRUE(admin->exec("ALTER DATABASE " + db_ +
                          " SET default_transaction_isolation = 'repeatable read'"));
  auto q = must_open(db_);
  ASSERT_NE(q, nullptr);
  auto claimed = q->claim({.owner = "a"});
  ASSERT_FALSE(claimed);
  EXPECT_NE(claimed.error().message.find("needs READ COMMITTED"), std::string::npos)
      << claimed.error().to_string();
}

// ---- notifications ------------------------------------------------------

// Enqueue into a queue without a due job, and release, wake a listener;
// silence is a timeout, not an error; a listener whose connection the server
// ended says so, and a new one works.
TEST_F(PostgresQueue, EnqueueAndReleaseWakeAListener) {
  auto q = must_open(db_);
  ASSERT_NE(q, nullptr);
  auto listener = store::postgres::listen_for_jobs(dsn_for(db_));
  ASSERT_TRUE(listener) << listener.error().to_string();
  auto quiet = (*listener)->wait(200ms);
  ASSERT_TRUE(quiet) << quiet.error().to_string();
  EXPECT_FALSE(*quiet);

  ASSERT_TRUE(q->enqueue(spec("probe", "db")));
  auto woke = (*listener)->wait(10s);
  ASSERT_TRUE(woke) << woke.error().to_string();
  EXPECT_TRUE(*woke);

  // While a due job waits, workers are busy (or will poll): no notification.
  ASSERT_TRUE(q->enqueue(spec("probe", "db")));
  EXPECT_FALSE(value((*listener)->wait(300ms)));
  auto claimed = q->claim({.owner = "a", .max_jobs = 10});
  ASSERT_TRUE(claimed && claimed->size() == 2U);
  EXPECT_FALSE(value((*listener)->wait(100ms)));  // a claim does not notify

  // Into an empty queue, a batch notifies once.
  std::vector<JobSpec> batch(50, spec("probe", "db"));
  ASSERT_TRUE(q->enqueue_batch(batch));
  EXPECT_TRUE(value((*listener)->wait(10s)));
  EXPECT_FALSE(value((*listener)->wait(200ms)));

  // A job given back notifies.
  ASSERT_TRUE(q->release((*claimed)[0].id, (*claimed)[0].lease_token));
  EXPECT_TRUE(value((*listener)->wait(10s)));

  // The server ends the listening connection.
  sql(db_,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND application_name = 'dbops listen'");
  auto broken = (*listener)->wait(10s);
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::kUnavailable);
  auto again = store::postgres::listen_for_jobs(dsn_for(db_));
  ASSERT_TRUE(again) << again.error().to_string();
  auto rest = q->claim({.owner = "a", .max_jobs = 100});
  ASSERT_TRUE(rest && rest->size() == 51U);
  ASSERT_TRUE(q->enqueue(spec("probe", "db")));
  EXPECT_TRUE(value((*again)->wait(10s)));
}

TEST(PostgresQueueOpen, AnUnreachableServerIsUnavailableAndTheDsnIsRedacted) {
  auto q = open_postgres_queue(
      Secret("host=127.0.0.1 port=1 user=x password=hunter2secret dbname=x connect_timeout=2"));
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(q.error().to_string().find("hunter2secret"), std::string::npos);
  EXPECT_FALSE(open_postgres_queue(Secret()));
}

}  // namespace
}  // namespace dbops::testing
