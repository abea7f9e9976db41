// The Store contract on SQLite (the shared suite, tests/support/store_suite.cpp),
// and what only the SQLite store has: its file, its upgrade path from
// version 1, its refusal of a newer schema.
#include "store/store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/secret.hpp"
#include "engine/sqlite/sqlite_session.hpp"
#include "support/store_suite.hpp"
#include "support/support.hpp"

namespace dbops::store {
namespace {

using dbops::testing::make_backup;
using dbops::testing::make_drill;
using dbops::testing::make_run;
using dbops::testing::StoreImpl;
using dbops::testing::StoreLocation;
using dbops::testing::TempDir;

config::StateConfig sqlite_state(const TempDir& dir) {
  config::StateConfig s;
  s.sqlite_path = (dir / "sub/dir/state.db").string();
  return s;
}

// A new file in a directory of its own, removed with the last copy of the
// location.
StoreLocation sqlite_location() {
  auto dir = std::make_shared<TempDir>();
  const config::StateConfig state = sqlite_state(*dir);
  return {.open = [dir, state] { return open_store(state); },
          .reject_bad_backups = [dir, state]() -> Status {
            DBOPS_ASSIGN(auto session, engine::sqlite::open(state.sqlite_path, {}));
            return session->exec(
                "CREATE TRIGGER reject_bad BEFORE INSERT ON backups WHEN NEW.id = 'BAD' "
                "BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END");
          }};
}

}  // namespace
}  // namespace dbops::store

namespace dbops::testing {
namespace {

[[maybe_unused]] const int kSuite = link_store_suite();
INSTANTIATE_TEST_SUITE_P(Sqlite, StoreSuite,
                         ::testing::Values(StoreImpl{"sqlite", store::sqlite_location,
                                                     store::current_schema_version()}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace dbops::testing

namespace dbops::store {
namespace {

TEST(SqliteStore, RefusesNewerSchema) {
  TempDir dir;
  const auto state = sqlite_state(dir);
  ASSERT_TRUE(open_store(state));
  {
    auto session = engine::sqlite::open(state.sqlite_path, {});
    ASSERT_TRUE(session);
    ASSERT_TRUE((*session)->exec("INSERT INTO schema_migrations VALUES (999, 'future', 0)"));
  }
  auto s = open_store(state);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(s.error().message.find("schema version 999, newer than this dbops knows"),
            std::string::npos)
      << s.error().to_string();
}

TEST(SqliteStore, NotADatabase) {
  TempDir dir;
  dir.write("junk.db", std::string(4096, 'x'));
  config::StateConfig state;
  state.sqlite_path = (dir / "junk.db").string();
  auto s = open_store(state);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().to_string().find("state store"), std::string::npos);
}

// The schema as the release with store version 1 created it; frozen here so
// that the upgrade path is tested against what is really on disk.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL,
  applied_at_ms INTEGER NOT NULL);
CREATE TABLE job_runs (
  run_id          TEXT PRIMARY KEY,
  kind            TEXT NOT NULL,
  target          TEXT NOT NULL DEFAULT '',
  idempotency_key TEXT NOT NULL DEFAULT '',
  params_json     TEXT NOT NULL DEFAULT '{}',
  state           TEXT NOT NULL,
  started_at_ms   INTEGER NOT NULL,
  finished_at_ms  INTEGER,
  summary         TEXT NOT NULL DEFAULT '',
  result_json     TEXT NOT NULL DEFAULT '{}',
  error           TEXT NOT NULL DEFAULT '',
  host            TEXT NOT NULL DEFAULT '',
  pid             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX job_runs_started ON job_runs (started_at_ms);
CREATE INDEX job_runs_target ON job_runs (target, started_at_ms);
CREATE INDEX job_runs_key ON job_runs (idempotency_key) WHERE idempotency_key <> '';
CREATE TABLE events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms      INTEGER NOT NULL,
  run_id     TEXT NOT NULL DEFAULT '',
  target     TEXT NOT NULL DEFAULT '',
  type       TEXT NOT NULL,
  severity   TEXT NOT NULL,
  message    TEXT NOT NULL,
  data_json  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_run ON events (run_id);
CREATE INDEX events_at ON events (at_ms);
INSERT INTO schema_migrations VALUES (1, 'job runs and events', 1700000000000);
INSERT INTO job_runs (run_id, kind, target, idempotency_key, state, started_at_ms,
  finished_at_ms, summary) VALUES ('01OLDRUNAAAAAAAAAAAAAAAAAA', 'backup', 'pg-main', 'k-old',
  'succeeded', 1700000000000, 1700000005000, 'from v1');
INSERT INTO events (at_ms, run_id, target, type, severity, message)
  VALUES (1700000005000, '01OLDRUNAAAAAAAAAAAAAAAAAA', 'pg-main', 'job.succeeded', 'info', 'done');
)sql";

TEST(SqliteStore, MigratesVersion1FileAndKeepsRuns) {
  TempDir dir;
  const auto state = sqlite_state(dir);
  std::filesystem::create_directories(std::filesystem::path(state.sqlite_path).parent_path());
  {
    auto session = engine::sqlite::open(state.sqlite_path, {.create = true, .wal = true});
    ASSERT_TRUE(session) << session.error().to_string();
    ASSERT_TRUE((*session)->exec(kSchemaV1));
  }
  ASSERT_GE(current_schema_version(), 2);
  auto s = open_store(state);
  ASSERT_TRUE(s) << s.error().to_string();
  Store& store = **s;
  EXPECT_EQ(store.schema_version(), current_schema_version());

  auto run = store.get_run("01OLDRUNAAAAAAAAAAAAAAAAAA");
  ASSERT_TRUE(run && *run);
  EXPECT_EQ((*run)->state, RunState::kSucceeded);
  EXPECT_EQ((*run)->summary, "from v1");
  auto events = store.list_events({.run_id = "01OLDRUNAAAAAAAAAAAAAAAAAA"});
  ASSERT_TRUE(events);
  EXPECT_EQ(events->size(), 1u);

  // The new tables work, and runs keep working.
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "pg-main", "B1", 10)));
  ASSERT_TRUE(store.insert_drill(make_drill("D1", "pg-main", "B1", true, 20)));
  ASSERT_TRUE(store.insert_run(make_run("01NEWRUNAAAAAAAAAAAAAAAAAA")));
  auto runs = store.list_runs({});
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->size(), 2u);

  // Each migration is recorded once.
  {
    auto session = engine::sqlite::open(state.sqlite_path, {});
    ASSERT_TRUE(session);
    auto versions = (*session)->query("SELECT group_concat(version, ',') FROM schema_migrations");
    ASSERT_TRUE(versions);
    std::string expected;
    for (int v = 1; v <= current_schema_version(); ++v) {
      expected += (v > 1 ? "," : "") + std::to_string(v);
    }
    EXPECT_EQ(versions->text(0, 0), expected);
  }
  // Reopening the migrated file is a no-op that keeps everything.
  s->reset();
  auto again = open_store(state);
  ASSERT_TRUE(again) << again.error().to_string();
  auto backups = (*again)->list_backups({});
  ASSERT_TRUE(backups);
  EXPECT_EQ(backups->size(), 1u);
  auto old_run = (*again)->get_run("01OLDRUNAAAAAAAAAAAAAAAAAA");
  ASSERT_TRUE(old_run && *old_run);
}

// The shared store is dispatched to; a server that is not there is
// unavailable, and the error does not carry the password.
TEST(Store, AnUnreachablePostgresStateIsUnavailableAndRedacted) {
  config::StateConfig state;
  state.postgres_dsn = Secret(
      "host=127.0.0.1 port=9 user=dbops password=s3cret-unreachable dbname=dbops "
      "connect_timeout=2");
  auto s = open_store(state);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().to_string();
  EXPECT_EQ(s.error().to_string().find("s3cret-unreachable"), std::string::npos)
      << s.error().to_string();
  EXPECT_NE(s.error().to_string().find("state store"), std::string::npos) << s.error().to_string();
}

}  // namespace
}  // namespace dbops::store
