// The Store contract, run against every implementation (see store_suite.hpp).
#include "support/store_suite.hpp"

#include <atomic>
#include <chrono>
#include <thread>

namespace dbops::testing {

using store::BackupRecord;
using store::DrillRecord;
using store::EventRecord;
using store::RunRecord;
using store::RunState;
using store::Severity;
using store::Store;
using store::TimePoint;

int link_store_suite() {
  return 1;
}

void StoreSuite::SetUp() {
  location_ = GetParam().make();
  store_ = reopen();
  ASSERT_NE(store_, nullptr);
}

std::unique_ptr<Store> StoreSuite::reopen() {
  auto s = location_.open();
  EXPECT_TRUE(s) << s.error().to_string();
  return s ? std::move(*s) : nullptr;
}

TimePoint at_second(int s) {
  return TimePoint{std::chrono::seconds{1'700'000'000 + s}};
}

RunRecord make_run(std::string id, std::string key) {
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

namespace {

using Ids = std::vector<std::string>;

Ids ids(const std::vector<BackupRecord>& backups) {
  Ids out;
  for (const auto& b : backups) out.push_back(b.id);
  return out;
}

Ids run_ids(const std::vector<DrillRecord>& drills) {
  Ids out;
  for (const auto& d : drills) out.push_back(d.run_id);
  return out;
}

Ids run_ids(const std::vector<RunRecord>& runs) {
  Ids out;
  for (const auto& r : runs) out.push_back(r.run_id);
  return out;
}

Ids messages(const std::vector<EventRecord>& events) {
  Ids out;
  for (const auto& e : events) out.push_back(e.message);
  return out;
}

}  // namespace

TEST_P(StoreSuite, CreatesAndMigrates) {
  EXPECT_EQ(store_->schema_version(), GetParam().schema_version);
  // Reopening is a no-op.
  auto again = reopen();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->schema_version(), GetParam().schema_version);
}

TEST_P(StoreSuite, RunLifecycle) {
  Store& store = *store_;
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

// Every field comes back as it went in: times to the millisecond, text
// byte for byte (JSON as written, not normalized).
TEST_P(StoreSuite, RunFieldsRoundTrip) {
  RunRecord r = make_run("01RTRTRTRTRTRTRTRTRTRTRTRT", "nightly:2026-01-01");
  r.kind = "backup";
  r.target = "pg-main";
  r.params_json = R"({ "b": [1, 2],  "a": "ü \"q\"" })";
  r.started_at += std::chrono::milliseconds(123);
  r.host = "agent-1.example";
  r.pid = 4242;
  ASSERT_TRUE(store_->insert_run(r));
  auto running = store_->get_run(r.run_id);
  ASSERT_TRUE(running && *running);
  EXPECT_EQ((*running)->state, RunState::kRunning);
  EXPECT_FALSE((*running)->finished_at.has_value());

  r.state = RunState::kCheckFailed;
  r.finished_at = r.started_at + std::chrono::milliseconds(1'001);
  r.summary = "2 checks failed — see result";
  r.result_json = R"({"checks": [{"name":"x", "ok":false}]})";
  r.error = "line 1\nline 2";
  ASSERT_TRUE(store_->finish_run(r));
  auto got = store_->get_run(r.run_id);
  ASSERT_TRUE(got && *got);
  const RunRecord& g = **got;
  EXPECT_EQ(g.kind, r.kind);
  EXPECT_EQ(g.target, r.target);
  EXPECT_EQ(g.idempotency_key, r.idempotency_key);
  EXPECT_EQ(g.params_json, r.params_json);
  EXPECT_EQ(g.state, RunState::kCheckFailed);
  EXPECT_EQ(g.started_at, r.started_at);
  EXPECT_EQ(g.finished_at, r.finished_at);
  EXPECT_EQ(g.summary, r.summary);
  EXPECT_EQ(g.result_json, r.result_json);
  EXPECT_EQ(g.error, r.error);
  EXPECT_EQ(g.host, r.host);
  EXPECT_EQ(g.pid, 4242);
}

TEST_P(StoreSuite, ListFiltersAndOrders) {
  for (int i = 0; i < 5; ++i) {
    RunRecord r = make_run("RUN" + std::to_string(i));
    r.started_at += std::chrono::seconds(i);
    r.target = i % 2 ? "odd" : "even";
    ASSERT_TRUE(store_->insert_run(r));
  }
  auto all = store_->list_runs({.limit = 10});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ(all->front().run_id, "RUN4");
  auto odd = store_->list_runs({.target = "odd"});
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->size(), 2u);
  auto limited = store_->list_runs({.limit = 2});
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->size(), 2u);
  auto running = store_->list_runs({.state = RunState::kRunning});
  ASSERT_TRUE(running);
  EXPECT_EQ(running->size(), 5u);
  // Counting takes the same filters and ignores the limit.
  EXPECT_EQ(store_->count_runs({.limit = 1}).value_or(-1), 5);
  EXPECT_EQ(store_->count_runs({.target = "odd"}).value_or(-1), 2);
  EXPECT_EQ(store_->count_runs({.target = "odd", .state = RunState::kFailed}).value_or(-1), 0);
}

// Runs that started at the same time list the later recorded first; the
// kind filter and the latest run of a key follow the same order.
TEST_P(StoreSuite, RunsStartedTogetherListLastRecordedFirst) {
  for (const char* id : {"TIE-B", "TIE-A", "TIE-C"}) {
    ASSERT_TRUE(store_->insert_run(make_run(id, "same-key")));
  }
  RunRecord backup = make_run("OTHER", "other-key");
  backup.kind = "backup";
  ASSERT_TRUE(store_->insert_run(backup));
  auto checks = store_->list_runs({.kind = "check"});
  ASSERT_TRUE(checks);
  EXPECT_EQ(run_ids(*checks), (Ids{"TIE-C", "TIE-A", "TIE-B"}));
  auto backups = store_->list_runs({.kind = "backup"});
  ASSERT_TRUE(backups);
  EXPECT_EQ(run_ids(*backups), (Ids{"OTHER"}));
  EXPECT_EQ(store_->count_runs({.kind = "check"}).value_or(-1), 3);
  auto latest = store_->find_run_by_key("same-key");
  ASSERT_TRUE(latest && *latest);
  EXPECT_EQ((*latest)->run_id, "TIE-C");
  auto unknown = store_->find_run_by_key("no-such-key");
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(*unknown);
  // A limit of 0 lists nothing; the largest lists everything.
  auto zero = store_->list_runs({.limit = 0});
  ASSERT_TRUE(zero);
  EXPECT_TRUE(zero->empty());
  auto unlimited = store_->list_runs({.limit = static_cast<std::size_t>(-1)});
  ASSERT_TRUE(unlimited) << unlimited.error().to_string();
  EXPECT_EQ(unlimited->size(), 4u);
}

TEST_P(StoreSuite, AmbiguousPrefix) {
  ASSERT_TRUE(store_->insert_run(make_run("ABCDEF1")));
  ASSERT_TRUE(store_->insert_run(make_run("ABCDEF2")));
  auto r = store_->get_run("ABCDEF");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("ambiguous"), std::string::npos);
  // LIKE wildcards in the input are literal.
  auto w = store_->get_run("ABCDE%");
  ASSERT_TRUE(w);
  EXPECT_FALSE(*w);
  auto u = store_->get_run("ABCDE_");
  ASSERT_TRUE(u);  // "_" is literal too: no run id has it
  EXPECT_FALSE(*u);
  // A prefix matches ASCII letters in either case; fewer than 6 characters
  // only match a whole id.
  auto lower = store_->get_run("abcdef1");
  ASSERT_TRUE(lower && *lower) << (lower ? "not found" : lower.error().to_string());
  EXPECT_EQ((*lower)->run_id, "ABCDEF1");
  auto short_prefix = store_->get_run("ABCDE");
  ASSERT_TRUE(short_prefix);
  EXPECT_FALSE(*short_prefix);
}

TEST_P(StoreSuite, Events) {
  for (int i = 0; i < 3; ++i) {
    EventRecord e;
    e.run_id = "R1";
    e.type = "job.failed";
    e.severity = i == 0 ? Severity::kInfo : Severity::kError;
    e.message = "m" + std::to_string(i);
    auto id = store_->append_event(e);
    ASSERT_TRUE(id);
    EXPECT_GT(*id, 0);
  }
  auto events = store_->list_events({.run_id = "R1"});
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ(events->front().message, "m0");
  auto errors = store_->list_events({.min_severity = Severity::kError});
  ASSERT_TRUE(errors);
  EXPECT_EQ(errors->size(), 2u);
}

// A limit keeps the newest events, listed oldest first; fields round-trip.
TEST_P(StoreSuite, EventsLimitFiltersAndFields) {
  std::int64_t last_id = 0;
  for (int i = 0; i < 6; ++i) {
    EventRecord e;
    e.at = at_second(i) + std::chrono::milliseconds(7);
    e.run_id = i < 4 ? "R1" : "R2";
    e.target = i % 2 ? "odd" : "even";
    e.type = "probe.result";
    e.severity = i % 3 == 0 ? Severity::kInfo : (i % 3 == 1 ? Severity::kWarn : Severity::kError);
    e.message = "m" + std::to_string(i);
    e.data_json = R"({"i": )" + std::to_string(i) + "}";
    auto id = store_->append_event(e);
    ASSERT_TRUE(id) << id.error().to_string();
    EXPECT_GT(*id, last_id);
    last_id = *id;
  }
  auto newest = store_->list_events({.limit = 2});
  ASSERT_TRUE(newest);
  EXPECT_EQ(messages(*newest), (Ids{"m4", "m5"}));
  const EventRecord& m5 = newest->back();
  EXPECT_EQ(m5.id, last_id);
  EXPECT_EQ(m5.at, at_second(5) + std::chrono::milliseconds(7));
  EXPECT_EQ(m5.run_id, "R2");
  EXPECT_EQ(m5.target, "odd");
  EXPECT_EQ(m5.type, "probe.result");
  EXPECT_EQ(m5.severity, Severity::kError);
  EXPECT_EQ(m5.data_json, R"({"i": 5})");

  auto odd = store_->list_events({.target = "odd"});
  ASSERT_TRUE(odd);
  EXPECT_EQ(messages(*odd), (Ids{"m1", "m3", "m5"}));
  auto warn_up = store_->list_events({.min_severity = Severity::kWarn});
  ASSERT_TRUE(warn_up);
  EXPECT_EQ(messages(*warn_up), (Ids{"m1", "m2", "m4", "m5"}));
  auto r1_warn = store_->list_events(
      {.run_id = "R1", .target = "odd", .min_severity = Severity::kWarn, .limit = 1});
  ASSERT_TRUE(r1_warn);
  EXPECT_EQ(messages(*r1_warn), (Ids{"m1"}));
  auto all_info = store_->list_events({.min_severity = Severity::kInfo});
  ASSERT_TRUE(all_info);
  EXPECT_EQ(all_info->size(), 6u);
}

TEST_P(StoreSuite, BackupUpsertReplacesByKey) {
  Store& store = *store_;
  BackupRecord b = make_backup("posix /r1", "pg-main", "B1", 100);
  // Sizes above 2^63 survive the signed 64-bit column.
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

TEST_P(StoreSuite, BackupListOrderLimitAndFilters) {
  Store& store = *store_;
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

  // Equal times: by id, in byte order (upper case sorts before lower).
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r3", "t", "b", 50)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r3", "t", "B", 50)));
  ASSERT_TRUE(store.upsert_backup(make_backup("posix /r3", "t", "a", 50)));
  auto ties = store.list_backups({.repository = "posix /r3"});
  ASSERT_TRUE(ties);
  EXPECT_EQ(ids(*ties), (Ids{"b", "a", "B"}));
}

TEST_P(StoreSuite, BackupRemove) {
  Store& store = *store_;
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

TEST_P(StoreSuite, ReplaceBackupsTouchesOnlyThatRepository) {
  Store& store = *store_;
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

  // A key given twice: the later entry wins, as with two upserts.
  BackupRecord twice = make_backup("posix /r1", "a", "TWICE", 60);
  twice.stored_size = 2;
  ASSERT_TRUE(store.replace_backups("posix /r1", {make_backup("posix /r1", "a", "TWICE", 70),
                                                  make_backup("", "a", "ONCE", 65), twice}));
  auto replaced = store.list_backups({.repository = "posix /r1"});
  ASSERT_TRUE(replaced);
  EXPECT_EQ(ids(*replaced), (Ids{"ONCE", "TWICE"}));
  EXPECT_EQ(replaced->back().stored_size, 2u);
  EXPECT_EQ(replaced->back().finished_at, at_second(60));

  // An empty list empties that repository's catalog only.
  ASSERT_TRUE(store.replace_backups("posix /r1", {}));
  auto after_empty = store.list_backups({});
  ASSERT_TRUE(after_empty);
  EXPECT_EQ(ids(*after_empty), (Ids{"KEEP"}));

  auto no_repository = store.replace_backups("", {});
  ASSERT_FALSE(no_repository);
  EXPECT_EQ(no_repository.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(StoreSuite, ReplaceBackupsIsAllOrNothing) {
  Store& store = *store_;
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
  EXPECT_EQ(incomplete.error().code, ErrorCode::kInvalidArgument);

  // A failure inside the transaction (another connection installed a trigger
  // that rejects one of the rows) rolls the delete back as well.
  auto installed = location_.reject_bad_backups();
  ASSERT_TRUE(installed) << installed.error().to_string();
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

TEST_P(StoreSuite, DrillsInsertAndFilter) {
  Store& store = *store_;
  ASSERT_TRUE(store.insert_drill(make_drill("D1", "a", "B1", true, 10)));
  ASSERT_TRUE(store.insert_drill(make_drill("D3", "a", "B2", false, 30)));
  ASSERT_TRUE(store.insert_drill(make_drill("D2", "b", "B9", true, 20)));
  ASSERT_TRUE(store.insert_drill(make_drill("D4", "a", "B1", false, 40)));

  auto dup = store.insert_drill(make_drill("D1", "a", "B1", true, 10));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  auto no_run = store.insert_drill(make_drill("", "a", "B1", true, 10));
  ASSERT_FALSE(no_run);
  EXPECT_EQ(no_run.error().code, ErrorCode::kInvalidArgument);

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

  // Equal finish times: the later recorded first.
  ASSERT_TRUE(store.insert_drill(make_drill("D5", "c", "B5", true, 40)));
  auto tie = store.list_drills({.limit = 2});
  ASSERT_TRUE(tie);
  EXPECT_EQ(run_ids(*tie), (Ids{"D5", "D4"}));
  // Values survive to a few ulps.
  DrillRecord precise = make_drill("D6", "c", "B6", true, 50);
  precise.rto_seconds = 0.1 + 0.2;
  precise.rpo_seconds = 1e-9;
  ASSERT_TRUE(store.insert_drill(precise));
  auto got = store.list_drills({.backup_id = "B6"});
  ASSERT_TRUE(got);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_DOUBLE_EQ(got->front().rto_seconds, 0.1 + 0.2);
  EXPECT_DOUBLE_EQ(got->front().rpo_seconds, 1e-9);
}

// One store object serves several threads at once (the agent's job threads
// share it).
TEST_P(StoreSuite, ThreadsShareOneStore) {
  constexpr int kThreads = 4;
  constexpr int kRuns = 10;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRuns; ++i) {
        RunRecord r = make_run("T" + std::to_string(t) + "-" + std::to_string(i));
        r.target = "t" + std::to_string(t);
        if (!store_->insert_run(r)) ++errors;
        EventRecord e;
        e.run_id = r.run_id;
        e.type = "job.started";
        e.message = r.run_id;
        if (!store_->append_event(e)) ++errors;
        r.state = RunState::kSucceeded;
        r.finished_at = r.started_at;
        if (!store_->finish_run(r)) ++errors;
        if (!store_->list_runs({.target = r.target, .limit = 3})) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(store_->count_runs({.state = RunState::kSucceeded}).value_or(-1), kThreads * kRuns);
  auto events = store_->list_events({.limit = 1000});
  ASSERT_TRUE(events);
  EXPECT_EQ(events->size(), static_cast<std::size_t>(kThreads * kRuns));
}

}  // namespace dbops::testing
