#include "store/store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/sqlite/sqlite_session.hpp"
#include "support/support.hpp"

namespace dbops::store {
namespace {

using dbops::testing::TempDir;

config::StateConfig sqlite_state(const TempDir& dir) {
  config::StateConfig s;
  s.sqlite_path = (dir / "sub/dir/state.db").string();
  return s;
}

RunRecord make_run(std::string id, std::string key = "") {
  RunRecord r;
  r.run_id = std::move(id);
  r.kind = "check";
  r.target = "t1";
  r.idempotency_key = std::move(key);
  r.started_at =
      std::chrono::system_clock::time_point{std::chrono::milliseconds{1'700'000'000'000}};
  r.host = "h";
  r.pid = 1;
  return r;
}

TEST(SqliteStore, CreatesAndMigrates) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ((*s)->schema_version(), current_schema_version());
  // Reopening is a no-op.
  auto again = open_store(sqlite_state(dir));
  ASSERT_TRUE(again) << again.error().to_string();
}

TEST(SqliteStore, RunLifecycle) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  Store& store = **s;
  RunRecord r = make_run("01AAAAAAAAAAAAAAAAAAAAAAAA", "key-1");
  ASSERT_TRUE(store.insert_run(r));
  auto dup = store.insert_run(r);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  // The same (prepared once, reused) statement works after it failed.
  ASSERT_TRUE(store.insert_run(make_run("01BBBBBBBBBBBBBBBBBBBBBBBB")));

  r.state = RunState::kSucceeded;
  r.finished_at = r.started_at + std::chrono::seconds(2);
  r.summary = "ok";
  r.result_json = R"({"n":1})";
  ASSERT_TRUE(store.finish_run(r));

  auto got = store.get_run("01AAAAAAAAAAAAAAAAAAAAAAAA");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->state, RunState::kSucceeded);
  EXPECT_EQ((*got)->result_json, R"({"n":1})");
  EXPECT_EQ((*got)->finished_at, r.finished_at);

  auto by_prefix = store.get_run("01AAAAAA");
  ASSERT_TRUE(by_prefix && *by_prefix);
  auto by_key = store.find_run_by_key("key-1");
  ASSERT_TRUE(by_key && *by_key);
  EXPECT_EQ((*by_key)->run_id, r.run_id);
  auto none = store.get_run("zz");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  RunRecord missing = make_run("NOPE");
  EXPECT_EQ(store.finish_run(missing).error().code, ErrorCode::kNotFound);
}

TEST(SqliteStore, ListFiltersAndOrders) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  for (int i = 0; i < 5; ++i) {
    RunRecord r = make_run("RUN" + std::to_string(i));
    r.started_at += std::chrono::seconds(i);
    r.target = i % 2 ? "odd" : "even";
    ASSERT_TRUE((*s)->insert_run(r));
  }
  auto all = (*s)->list_runs({.limit = 10});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->front().run_id, "RUN4");
  auto odd = (*s)->list_runs({.target = "odd"});
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->size(), 2u);
  auto limited = (*s)->list_runs({.limit = 2});
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->size(), 2u);
  auto running = (*s)->list_runs({.state = RunState::kRunning});
  ASSERT_TRUE(running);
  EXPECT_EQ(running->size(), 5u);
  // Counting takes the same filters and ignores the limit.
  EXPECT_EQ((*s)->count_runs({.limit = 1}).value_or(-1), 5);
  EXPECT_EQ((*s)->count_runs({.target = "odd"}).value_or(-1), 2);
  EXPECT_EQ((*s)->count_runs({.target = "odd", .state = RunState::kFailed}).value_or(-1), 0);
}

TEST(SqliteStore, AmbiguousPrefix) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->insert_run(make_run("ABCDEF1")));
  ASSERT_TRUE((*s)->insert_run(make_run("ABCDEF2")));
  auto r = (*s)->get_run("ABCDEF");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ambiguous"), std::string::npos);
  // LIKE wildcards in the input are literal.
  auto w = (*s)->get_run("ABCDE%");
  ASSERT_TRUE(w);
  EXPECT_FALSE(*w);
}

TEST(SqliteStore, Events) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  for (int i = 0; i < 3; ++i) {
    EventRecord e;
    e.run_id = "R1";
    e.type = "job.failed";
    e.severity = i == 0 ? Severity::kInfo : Severity::kError;
    e.message = "m" + std::to_string(i);
    auto id = (*s)->append_event(e);
    ASSERT_TRUE(id);
    EXPECT_GT(*id, 0);
  }
  auto events = (*s)->list_events({.run_id = "R1"});
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ(events->front().message, "m0");
  auto errors = (*s)->list_events({.min_severity = Severity::kError});
  ASSERT_TRUE(errors);
  EXPECT_EQ(errors->size(), 2u);
}

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

TimePoint at_second(int s) {
  return TimePoint{std::chrono::seconds{1'700'000'000 + s}};
}

BackupRecord make_backup(std::string repository, std::string target, std::string id,
                         int finished_second) {
  BackupRecord b;
  b.repository = std::move(repository);
  b.target = std::move(target);
  b.id = std::move(id);
  b.engine = "postgres";
  b.method = "pg_basebackup";
  b.started_at = at_second(finished_second - 10);
  b.finished_at = at_second(finished_second);
  b.plain_size = 1000;
  b.stored_size = 400;
  b.run_id = "RUN-" + b.id;
  b.manifest_json = R"({"id":")" + b.id + R"("})";
  return b;
}

std::vector<std::string> ids(const std::vector<BackupRecord>& backups) {
  std::vector<std::string> out;
  for (const auto& b : backups) out.push_back(b.id);
  return out;
}

using Ids = std::vector<std::string>;

TEST(SqliteStore, BackupUpsertReplacesByKey) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s) << s.error().to_string();
  Store& store = **s;
  BackupRecord b = make_backup("posix /r1", "pg-main", "B1", 100);
  // Sizes above 2^63 survive the signed SQLite integer.
  b.plain_size = 0xFFFF'FFFF'FFFF'FFF0ull;
  ASSERT_TRUE(store.upsert_backup(b));
  b.stored_size = 123;
  b.manifest_json = R"({"v":2})";
  b.finished_at = at_second(200);
  ASSERT_TRUE(store.upsert_backup(b));
  // Same id, another target or repository: separate entries.
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "pg-other", "B1", 50)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r2", "pg-main", "B1", 60)));

  auto got = store.list_backups({.repository = "posix /r1", .target = "pg-main"});
  ASSERT_TRUE(got) << got.error().to_string();
  ASSERT_EQ(got->size(), 1u);
  const BackupRecord& g = got->front();
  EXPECT_EQ(g.repository, "posix /r1");
  EXPECT_EQ(g.target, "pg-main");
  EXPECT_EQ(g.id, "B1");
  EXPECT_EQ(g.engine, "postgres");
  EXPECT_EQ(g.method, "pg_basebackup");
  EXPECT_EQ(g.started_at, b.started_at);
  EXPECT_EQ(g.finished_at, at_second(200));
  EXPECT_EQ(g.plain_size, 0xFFFF'FFFF'FFFF'FFF0ull);
  EXPECT_EQ(g.stored_size, 123u);
  EXPECT_EQ(g.run_id, "RUN-B1");
  EXPECT_EQ(g.manifest_json, R"({"v":2})");

  auto all = store.list_backups({});
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 3u);

  // The key must be complete.
  BackupRecord no_id = make_backup("posix /r1", "pg-main", "", 1);
  auto bad = store.upsert_backup(no_id);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
}

TEST(SqliteStore, BackupListOrderLimitAndFilters) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  Store& store = **s;
  // Inserted out of order; listed newest (by finished_at) first.
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "a", "A2", 20)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "a", "A1", 10)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "a", "A3", 30)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "b", "B1", 25)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r2", "a", "R2A", 15)));

  auto all = store.list_backups({});
  ASSERT_TRUE(all);
  EXPECT_EQ(ids(*all), (Ids{"A3", "B1", "A2", "R2A", "A1"}));

  auto limited = store.list_backups({.limit = 2});
  ASSERT_TRUE(limited);
  EXPECT_EQ(ids(*limited), (Ids{"A3", "B1"}));

  auto target_a = store.list_backups({.target = "a"});
  ASSERT_TRUE(target_a);
  EXPECT_EQ(ids(*target_a), (Ids{"A3", "A2", "R2A", "A1"}));

  auto repo2 = store.list_backups({.repository = "posix /r2"});
  ASSERT_TRUE(repo2);
  EXPECT_EQ(ids(*repo2), (Ids{"R2A"}));

  auto both = store.list_backups({.repository = "posix /r1", .target = "a", .limit = 2});
  ASSERT_TRUE(both);
  EXPECT_EQ(ids(*both), (Ids{"A3", "A2"}));

  auto none = store.list_backups({.target = "nope"});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(SqliteStore, BackupRemove) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  Store& store = **s;
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "a", "A1", 10)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "b", "A1", 10)));
  ASSERT_TRUE(store.remove_backup("posix /r1", "a", "A1"));
  // Not listed (any more): not an error.
  ASSERT_TRUE(store.remove_backup("posix /r1", "a", "A1"));
  auto left = store.list_backups({});
  ASSERT_TRUE(left);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().target, "b");
}

TEST(SqliteStore, ReplaceBackupsTouchesOnlyThatRepository) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  Store& store = **s;
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "a", "OLD1", 10)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "b", "OLD2", 20)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r2", "a", "KEEP", 30)));

  // An entry without a repository is taken as the one being replaced.
  BackupRecord unnamed = make_backup("", "a", "NEW2", 50);
  ASSERT_TRUE(
      store.replace_backups("posix /r1", {make_backup("posix /r1", "a", "NEW1", 40), unnamed,
                                          make_backup("posix /r1", "a", "OLD1", 5)}));
  auto r1 = store.list_backups({.repository = "posix /r1"});
  ASSERT_TRUE(r1);
  EXPECT_EQ(ids(*r1), (Ids{"NEW2", "NEW1", "OLD1"}));
  for (const auto& b : *r1) EXPECT_EQ(b.repository, "posix /r1");
  EXPECT_EQ(r1->back().finished_at, at_second(5));  // the replacement's values
  auto r2 = store.list_backups({.repository = "posix /r2"});
  ASSERT_TRUE(r2);
  EXPECT_EQ(ids(*r2), (Ids{"KEEP"}));

  // An empty list empties that repository's catalog only.
  ASSERT_TRUE(store.replace_backups("posix /r1", {}));
  auto after_empty = store.list_backups({});
  ASSERT_TRUE(after_empty);
  EXPECT_EQ(ids(*after_empty), (Ids{"KEEP"}));
}

TEST(SqliteStore, ReplaceBackupsIsAllOrNothing) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  Store& store = **s;
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r1", "a", "OLD1", 10)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r2", "a", "KEEP", 30)));

  // An entry of another repository is refused before anything changes.
  auto foreign = store.replace_backups("posix /r1", {make_backup("posix /r1", "a", "NEW1", 40),
                                                     make_backup("posix /r2", "a", "X", 1)});
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code, ErrorCode::kInvalidArgument);
  // So is an incomplete key.
  auto incomplete = store.replace_backups("posix /r1", {make_backup("posix /r1", "a", "NEW1", 40),
                                                        make_backup("posix /r1", "", "Y", 1)});
  ASSERT_FALSE(incomplete);

  // A failure inside the transaction (another connection holds a trigger that
  // rejects one of the rows) rolls the delete back as well.
  {
    auto session = engine::sqlite::open(sqlite_state(dir).sqlite_path, {});
    ASSERT_TRUE(session);
    ASSERT_TRUE(
        (*session)->exec("CREATE TRIGGER reject_bad BEFORE INSERT ON backups WHEN NEW.id = 'BAD' "
                         "BEGIN SELECT RAISE(ABORT, 'rejected by test trigger'); END"));
  }
  auto failed = store.replace_backups("posix /r1", {make_backup("posix /r1", "a", "NEW1", 40),
                                                    make_backup("posix /r1", "a", "BAD", 50)});
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().to_string().find("rejected by test trigger"), std::string::npos)
      << failed.error().to_string();
  auto all = store.list_backups({});
  ASSERT_TRUE(all);
  EXPECT_EQ(ids(*all), (Ids{"KEEP", "OLD1"}));

  // The store is usable after the rollback.
  ASSERT_TRUE(store.replace_backups("posix /r1", {make_backup("posix /r1", "a", "NEW1", 40)}));
  auto r1 = store.list_backups({.repository = "posix /r1"});
  ASSERT_TRUE(r1);
  EXPECT_EQ(ids(*r1), (Ids{"NEW1"}));
}

DrillRecord make_drill(std::string run_id, std::string target, std::string backup_id, bool passed,
                       int finished_second) {
  DrillRecord d;
  d.run_id = std::move(run_id);
  d.target = std::move(target);
  d.backup_id = std::move(backup_id);
  d.started_at = at_second(finished_second - 60);
  d.finished_at = at_second(finished_second);
  d.passed = passed;
  d.rto_seconds = 61.5;
  d.rpo_seconds = 3600.25;
  d.failed_check = passed ? "" : "row_counts";
  d.evidence_json = R"({"checks":[]})";
  return d;
}

std::vector<std::string> run_ids(const std::vector<DrillRecord>& drills) {
  std::vector<std::string> out;
  for (const auto& d : drills) out.push_back(d.run_id);
  return out;
}

TEST(SqliteStore, DrillsInsertAndFilter) {
  TempDir dir;
  auto s = open_store(sqlite_state(dir));
  ASSERT_TRUE(s);
  Store& store = **s;
  ASSERT_TRUE(store.insert_drill(make_drill("D1", "a", "B1", true, 10)));
  ASSERT_TRUE(store.insert_drill(make_drill("D3", "a", "B2", false, 30)));
  ASSERT_TRUE(store.insert_drill(make_drill("D2", "b", "B9", true, 20)));
  ASSERT_TRUE(store.insert_drill(make_drill("D4", "a", "B1", false, 40)));

  auto dup = store.insert_drill(make_drill("D1", "a", "B1", true, 10));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);

  auto all = store.list_drills({});
  ASSERT_TRUE(all) << all.error().to_string();
  EXPECT_EQ(run_ids(*all), (Ids{"D4", "D3", "D2", "D1"}));
  const DrillRecord& d4 = all->front();
  EXPECT_EQ(d4.target, "a");
  EXPECT_EQ(d4.backup_id, "B1");
  EXPECT_FALSE(d4.passed);
  EXPECT_EQ(d4.started_at, at_second(-20));
  EXPECT_EQ(d4.finished_at, at_second(40));
  EXPECT_DOUBLE_EQ(d4.rto_seconds, 61.5);
  EXPECT_DOUBLE_EQ(d4.rpo_seconds, 3600.25);
  EXPECT_EQ(d4.failed_check, "row_counts");
  EXPECT_EQ(d4.evidence_json, R"({"checks":[]})");

  auto target_a = store.list_drills({.target = "a"});
  ASSERT_TRUE(target_a);
  EXPECT_EQ(run_ids(*target_a), (Ids{"D4", "D3", "D1"}));
  auto backup_b1 = store.list_drills({.backup_id = "B1"});
  ASSERT_TRUE(backup_b1);
  EXPECT_EQ(run_ids(*backup_b1), (Ids{"D4", "D1"}));
  auto passed = store.list_drills({.passed = true});
  ASSERT_TRUE(passed);
  EXPECT_EQ(run_ids(*passed), (Ids{"D2", "D1"}));
  auto failed_a = store.list_drills({.target = "a", .passed = false});
  ASSERT_TRUE(failed_a);
  EXPECT_EQ(run_ids(*failed_a), (Ids{"D4", "D3"}));
  auto limited = store.list_drills({.limit = 1});
  ASSERT_TRUE(limited);
  EXPECT_EQ(run_ids(*limited), (Ids{"D4"}));
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

TEST(Store, PostgresStateIsNotYetAvailable) {
  config::StateConfig state;
  state.postgres_dsn = Secret("postgresql://x@y/z");
  auto s = open_store(state);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace dbops::store
