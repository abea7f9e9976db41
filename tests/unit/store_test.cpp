#include "store/store.hpp"

#include <gtest/gtest.h>

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

TEST(Store, PostgresStateIsNotYetAvailable) {
  config::StateConfig state;
  state.postgres_dsn = Secret("postgresql://x@y/z");
  auto s = open_store(state);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace dbops::store
