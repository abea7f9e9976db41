// The Store contract on PostgreSQL (the shared suite, as SQLite runs it), and
// what only the shared store has to prove: schema creation racing, migrating
// apart from the queue, a newer schema, reconnection, many threads, and
// dbops itself (jobs, runs, the queue, the agent) on a PostgreSQL `state`.
//
// Each store gets a database of its own on the binary's shared instance, so
// every test starts from an empty, unmigrated schema.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/background_process.hpp"
#include "core/secret.hpp"
#include "engine/engine.hpp"
#include "engine/postgres/postgres_session.hpp"
#include "store/postgres/postgres_queue.hpp"
#include "store/postgres/postgres_store.hpp"
#include "store/store.hpp"
#include "support/instances.hpp"
#include "support/store_suite.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

using namespace std::chrono_literals;
using engine::Deadline;
using engine::Param;
using engine::QueryResult;
using engine::postgres::PostgresSession;
using store::EventRecord;
using store::RunRecord;
using store::RunState;
using store::Store;
using store::postgres::open_postgres_store;
using store::postgres::postgres_store_schema_version;

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
  auto s = engine::postgres::connect(shared_postgres().target("store-admin"), options);
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
  const std::string name = "dbops_store_" + std::to_string(++n);
  auto created = admin->exec("CREATE DATABASE " + name, Deadline::after(60s));
  EXPECT_TRUE(created) << created.error().to_string();
  return name;
}

// Statements on `database` as the superuser.
Result<QueryResult> try_sql(const std::string& database, const std::string& text,
                            std::vector<Param> params = {}) {
  auto s = admin_session(database);
  if (!s) return fail(ErrorCode::kUnavailable, "no admin session");
  return s->query(text, params, Deadline::after(30s));
}

// A statement that must succeed.
QueryResult sql(const std::string& database, const std::string& text,
                std::vector<Param> params = {}) {
  auto r = try_sql(database, text, std::move(params));
  EXPECT_TRUE(r) << text << ": " << r.error().to_string();
  return r ? std::move(*r) : QueryResult{};
}

StoreLocation postgres_location() {
  const std::string db = new_database();
  return {.open = [db] { return open_postgres_store(dsn_for(db)); },
          .reject_bad_backups = [db]() -> Status {
            auto s = admin_session(db);
            if (!s) return fail(ErrorCode::kUnavailable, "no admin session");
            return s->exec(
                "CREATE FUNCTION reject_bad() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.id = 'BAD' THEN RAISE EXCEPTION 'rejected by test trigger'; END IF; "
                "RETURN NEW; END $$; "
                "CREATE TRIGGER reject_bad BEFORE INSERT ON dbops_backups FOR EACH ROW "
                "EXECUTE FUNCTION reject_bad()",
                Deadline::after(30s));
          }};
}

[[maybe_unused]] const int kSuite = link_store_suite();
INSTANTIATE_TEST_SUITE_P(Postgres, StoreSuite,
                         ::testing::Values(StoreImpl{"postgres", postgres_location,
                                                     postgres_store_schema_version()}),
                         [](const auto& info) { return info.param.name; });

// ---- helpers ------------------------------------------------------------

template <typename T>
T value(Result<T> r) {
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? std::move(*r) : T{};
}

std::unique_ptr<Store> must_open(const std::string& database) {
  auto s = open_postgres_store(dsn_for(database));
  EXPECT_TRUE(s) << s.error().to_string();
  return s ? std::move(*s) : nullptr;
}

// Ends every connection the store holds on `database`.
void terminate_store_sessions(const std::string& database) {
  sql(database,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
      "AND application_name = 'dbops store'");
  // pg_terminate_backend() only signals: wait until they are gone.
  for (int i = 0; i < 100; ++i) {
    if (sql(database,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
            "application_name = 'dbops store'")
            .text(0, 0) == "0") {
      return;
    }
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "the store's sessions outlived pg_terminate_backend()";
}

class PostgresStore : public ::testing::Test {
 protected:
  void SetUp() override { db_ = new_database(); }
  std::string db_;
};

// ---- schema -------------------------------------------------------------

TEST_F(PostgresStore, TheSchemaIsCreatedOnceWhenManyOpenAtOnce) {
  constexpr int kOpeners = 6;
  std::barrier start(kOpeners);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kOpeners; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      auto s = open_postgres_store(dsn_for(db_));
      if (!s) {
        ADD_FAILURE() << s.error().to_string();
        ++failures;
        return;
      }
      if ((*s)->schema_version() != postgres_store_schema_version()) ++failures;
      if (!(*s)->insert_run(make_run("OPENER-" + std::to_string(i)))) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(sql(db_, "SELECT version, description FROM dbops_store_migrations ORDER BY version")
                .to_text(),
            "1|job runs, events, backup catalog and drill results");
  EXPECT_EQ(sql(db_, "SELECT count(*) FROM dbops_job_runs").text(0, 0), std::to_string(kOpeners));
  // Opening a current schema again changes nothing.
  ASSERT_NE(must_open(db_), nullptr);
  EXPECT_EQ(sql(db_, "SELECT count(*) FROM dbops_store_migrations").text(0, 0), "1");
}

// The store and the queue share a database but not a version sequence: each
// migrates its own tables, whichever opens first, even at the same time.
TEST_F(PostgresStore, TheStoreAndTheQueueMigrateIndependently) {
  std::barrier start(2);
  Result<std::unique_ptr<Store>> s = fail(ErrorCode::kInternal, "not opened");
  Result<std::unique_ptr<store::JobQueue>> q = fail(ErrorCode::kInternal, "not opened");
  std::thread ts([&] {
    start.arrive_and_wait();
    s = open_postgres_store(dsn_for(db_));
  });
  std::thread tq([&] {
    start.arrive_and_wait();
    q = store::postgres::open_postgres_queue(dsn_for(db_));
  });
  ts.join();
  tq.join();
  ASSERT_TRUE(s) << s.error().to_string();
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(sql(db_,
                "SELECT string_agg(version::text, ',' ORDER BY version) FROM "
                "dbops_store_migrations")
                .text(0, 0),
            "1");
  // The queue's sequence holds only the queue's migrations.
  EXPECT_EQ(sql(db_,
                "SELECT count(*) > 0, count(*) FILTER (WHERE description NOT LIKE "
                "'job queue%') FROM dbops_schema_migrations")
                .to_text(),
            "t|0");
  ASSERT_TRUE((*s)->insert_run(make_run("R1")));
  store::JobSpec job;
  job.kind = "check";
  ASSERT_TRUE((*q)->enqueue(job));
  // A queue opened on a database the store already migrated, and the other
  // way round, find their own tables.
  const std::string other = new_database();
  ASSERT_NE(must_open(other), nullptr);
  auto q2 = store::postgres::open_postgres_queue(dsn_for(other));
  ASSERT_TRUE(q2) << q2.error().to_string();
  ASSERT_TRUE((*q2)->enqueue(job));
}

// A schema a later release expanded still serves this one.
TEST_F(PostgresStore, ANewerSchemaIsAccepted) {
  ASSERT_NE(must_open(db_), nullptr);
  sql(db_, "ALTER TABLE dbops_job_runs ADD COLUMN shard integer NOT NULL DEFAULT 0");
  sql(db_, "INSERT INTO dbops_store_migrations (version, description) VALUES (99, 'later')");
  auto s = must_open(db_);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->schema_version(), 99);
  ASSERT_TRUE(s->insert_run(make_run("01NEWERAAAAAAAAAAAAAAAAAAA")));
  auto got = s->get_run("01NEWERA");
  ASSERT_TRUE(got && *got) << (got ? "not found" : got.error().to_string());
  EXPECT_EQ(value(s->count_runs({})), 1);
}

// Once migrated, a role with only DML privileges opens and uses the store
// (no DDL, no CREATE privilege needed).
TEST_F(PostgresStore, AMigratedStoreNeedsNoDdlPrivileges) {
  ASSERT_NE(must_open(db_), nullptr);
  const std::string role = db_ + "_dml";
  const std::string password = "dml-" + db_ + "-Pw0rd";
  sql(db_, "CREATE ROLE " + role + " LOGIN PASSWORD '" + password + "'");
  sql(db_, "REVOKE CREATE ON SCHEMA public FROM PUBLIC");
  sql(db_, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + role);
  sql(db_, "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + role);
  const auto& pg = shared_postgres();
  {
    auto s = open_postgres_store(Secret("host=" + pg.host() + " port=" + std::to_string(pg.port()) +
                                        " user=" + role + " password=" + quoted(password) +
                                        " dbname=" + db_ + " connect_timeout=10"));
    ASSERT_TRUE(s) << s.error().to_string();
    ASSERT_TRUE((*s)->insert_run(make_run("DML-1")));
    EXPECT_TRUE((*s)->append_event(EventRecord{.run_id = "DML-1", .type = "t", .message = "m"}));
    ASSERT_TRUE((*s)->replace_backups("posix /r", {make_backup("", "a", "B1", 10)}));
    ASSERT_TRUE((*s)->insert_drill(make_drill("DML-1", "a", "B1", true, 20)));
  }
  sql(db_, "DROP OWNED BY " + role);
  sql(db_, "DROP ROLE " + role);
}

// A prefix lookup reads the prefix index, not the whole table.
TEST_F(PostgresStore, APrefixLookupUsesItsIndex) {
  ASSERT_NE(must_open(db_), nullptr);
  auto s = admin_session(db_);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->exec("SET enable_seqscan = off", Deadline::after(30s)));
  const Param params[] = {std::string("01abcd%")};
  auto plan = s->query(
      "EXPLAIN SELECT run_id FROM dbops_job_runs WHERE lower(run_id COLLATE \"C\") LIKE $1 "
      "ESCAPE '\\' LIMIT 2",
      params, Deadline::after(30s));
  ASSERT_TRUE(plan) << plan.error().to_string();
  EXPECT_NE(plan->to_text().find("dbops_job_runs_id_prefix"), std::string::npos) << plan->to_text();
}

// ---- connections --------------------------------------------------------

// A connection the server ended is replaced: reads (and writes that can run
// twice) go through at once on a new one; an insert may fail once, with
// kUnavailable, and the next call reconnects.
TEST_F(PostgresStore, AKilledConnectionIsReplaced) {
  auto s = must_open(db_);
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(s->insert_run(make_run("BEFORE-KILL")));

  terminate_store_sessions(db_);
  auto got = s->get_run("BEFORE-KILL");
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_TRUE(got->has_value());

  terminate_store_sessions(db_);
  RunRecord finished = make_run("BEFORE-KILL");
  finished.state = RunState::kSucceeded;
  finished.finished_at = finished.started_at + 1s;
  auto finish = s->finish_run(finished);
  ASSERT_TRUE(finish) << finish.error().to_string();

  terminate_store_sessions(db_);
  if (auto r = s->insert_run(make_run("AFTER-KILL")); !r) {
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().to_string();
    ASSERT_TRUE(s->insert_run(make_run("AFTER-KILL")));
  }
  EXPECT_EQ(value(s->count_runs({})), 2);
  EXPECT_EQ(value(s->count_runs({.state = RunState::kSucceeded})), 1);
}

// Eight threads share one store object (so its session pool): every insert
// lands once, ids are unique, and no session is left inside a transaction.
TEST_F(PostgresStore, EightThreadsInsertConcurrently) {
  auto s = must_open(db_);
  ASSERT_NE(s, nullptr);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::atomic<int> errors{0};
  std::mutex mu;
  std::set<std::int64_t> event_ids;
  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = "T" + std::to_string(t) + "-" + std::to_string(i);
        RunRecord r = make_run(id, "key-" + std::to_string(i));  // keys shared across threads
        r.target = "t" + std::to_string(t);
        if (auto st = s->insert_run(r); !st) {
          ADD_FAILURE() << st.error().to_string();
          ++errors;
        }
        // Every thread also tries one id that another thread may hold.
        if (i == 0) {
          auto shared = s->insert_run(make_run("SHARED"));
          if (!shared && shared.error().code != ErrorCode::kConflict) ++errors;
        }
        auto e = s->append_event(EventRecord{.run_id = id, .type = "job.started", .message = id});
        if (!e) {
          ADD_FAILURE() << e.error().to_string();
          ++errors;
        } else {
          std::lock_guard lock(mu);
          event_ids.insert(*e);
        }
        // The same catalog entry from every thread: an upsert, never a conflict.
        if (!s->upsert_backup(make_backup("posix /r", "db", "B" + std::to_string(i % 5), i))) {
          ++errors;
        }
        if (!s->insert_drill(make_drill(id, r.target, "B", i % 2 == 0, i))) ++errors;
        r.state = RunState::kSucceeded;
        r.finished_at = r.started_at + 1s;
        if (!s->finish_run(r)) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  constexpr int kRuns = kThreads * kPerThread;
  EXPECT_EQ(value(s->count_runs({.state = RunState::kSucceeded})), kRuns);
  EXPECT_EQ(value(s->count_runs({})), kRuns + 1);  // and SHARED, once
  EXPECT_EQ(event_ids.size(), static_cast<std::size_t>(kRuns));
  EXPECT_EQ(value(s->list_events({.limit = 10'000})).size(), static_cast<std::size_t>(kRuns));
  EXPECT_EQ(value(s->list_backups({})).size(), 5u);
  EXPECT_EQ(value(s->list_drills({.limit = 10'000})).size(), static_cast<std::size_t>(kRuns));
  // A small pool, and nobody left inside a transaction.
  EXPECT_EQ(sql(db_,
                "SELECT count(*) <= 4, count(*) FILTER (WHERE state <> 'idle') FROM "
                "pg_stat_activity WHERE datname = current_database() AND application_name = "
                "'dbops store'")
                .to_text(),
            "t|0");
}

// ---- opening ------------------------------------------------------------

TEST_F(PostgresStore, DescribeNamesTheServerButNotThePassword) {
  auto s = must_open(db_);
  ASSERT_NE(s, nullptr);
  const std::string described = s->describe();
  EXPECT_EQ(described.rfind("postgres ", 0), 0U) << described;
  EXPECT_NE(described.find("dbname='" + db_ + "'"), std::string::npos) << described;
  EXPECT_EQ(described.find(shared_postgres().superuser_password().reveal()), std::string::npos)
      << described;
}

TEST(PostgresStoreOpen, AnUnreachableServerIsUnavailableAndTheDsnIsRedacted) {
  auto s = open_postgres_store(
      Secret("host=127.0.0.1 port=9 user=x password=hunter2secret dbname=x connect_timeout=2"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().to_string().find("hunter2secret"), std::string::npos);
  auto empty = open_postgres_store(Secret());
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kConfig);
}

// ---- dbops on a PostgreSQL state ----------------------------------------

// Polls `fn` until it returns true or `limit` passes.
template <typename Fn>
bool eventually(std::chrono::milliseconds limit, Fn&& fn) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (fn()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return fn();
}

// `dbops jobs run`, `runs list`, `jobs enqueue`, `jobs list` and the agent on
// a `state: postgresql://...` whose password comes from the environment; the
// password shows nowhere.
TEST_F(PostgresStore, DbopsRunsJobsAndTheAgentOnAPostgresState) {
  const auto& pg = shared_postgres();
  const std::string password = pg.superuser_password().reveal();
  TempDir dir;
  const std::string port = std::to_string(pg.port());
  const auto config = dir.write(
      "dbops.yaml", "state: postgresql://" + pg.superuser() + ":${env:DBOPS_IT_STATE_PASSWORD}@" +
                        pg.host() + ":" + port + "/" + db_ +
                        "?connect_timeout=10\n"
                        "agent:\n"
                        "  probe_interval: 1h\n"
                        "  poll_interval: 100ms\n"
                        "  shutdown_grace: 2s\n"
                        "targets:\n"
                        "  - name: pg\n"
                        "    engine: postgres\n"
                        "    host: " +
                        pg.host() + "\n    port: " + port + "\n    user: " + pg.superuser() +
                        "\n    password: ${env:DBOPS_IT_STATE_PASSWORD}\n"
                        "    database: postgres\n");
  const std::vector<std::pair<std::string, std::string>> env = {
      {"DBOPS_IT_STATE_PASSWORD", password}};
  std::string all_output;
  const auto dbops = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config.string()});
    ProcessResult r = run_dbops(args, dir.path(), env);
    all_output += r.stdout_text + r.stderr_text;
    return r;
  };

  const auto ran = dbops({"jobs", "run", "check", "--target", "pg"});
  ASSERT_EQ(ran.exit_code, 0) << ran.stdout_text << ran.stderr_text;
  const auto runs = dbops({"runs", "list"});
  ASSERT_EQ(runs.exit_code, 0) << runs.stdout_text << runs.stderr_text;
  EXPECT_NE(runs.stdout_text.find("check"), std::string::npos) << runs.stdout_text;
  EXPECT_NE(runs.stdout_text.find("succeeded"), std::string::npos) << runs.stdout_text;
  EXPECT_EQ(sql(db_, "SELECT kind, target, state FROM dbops_job_runs").to_text(),
            "check|pg|succeeded");

  const auto enqueued = dbops({"jobs", "enqueue", "check", "--target", "pg"});
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.stdout_text << enqueued.stderr_text;
  const auto listed = dbops({"jobs", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.stdout_text << listed.stderr_text;
  EXPECT_NE(listed.stdout_text.find("check"), std::string::npos) << listed.stdout_text;

  // The agent claims the queued job and records its run in the store.
  BackgroundOptions options;
  options.argv = {dbops_binary(), "--config", config.string(), "agent", "--listen", "127.0.0.1:0"};
  options.env = env;
  options.output_file = dir / "agent.log";
  options.parent_death_signal = SIGKILL;
  auto agent = BackgroundProcess::spawn(options);
  ASSERT_TRUE(agent) << agent.error().to_string();
  const bool done = eventually(60s, [&] {
    auto r = try_sql(db_, "SELECT state FROM dbops_jobs");
    return r && r->to_text() == "succeeded";
  });
  agent->stop(SIGTERM, 10s);
  const std::string log = read_file(dir / "agent.log");
  ASSERT_TRUE(done) << log;
  EXPECT_EQ(sql(db_,
                "SELECT count(*) FROM dbops_job_runs WHERE kind = 'check' AND state = "
                "'succeeded'")
                .text(0, 0),
            "2");
  const auto after = dbops({"runs", "list", "--kind", "check"});
  ASSERT_EQ(after.exit_code, 0) << after.stdout_text << after.stderr_text;

  EXPECT_EQ(all_output.find(password), std::string::npos) << all_output;
  EXPECT_EQ(log.find(password), std::string::npos) << log;
  expect_not_in_any_argv(password);
}

}  // namespace
}  // namespace dbops::testing
