// Retention planning, the backup config keys, and feeding a child's stdin
// from a push-based producer.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/config/config.hpp"
#include "core/subprocess.hpp"
#include "core/temp_dir.hpp"
#include "engine/engine.hpp"
#include "ops/backup/backup.hpp"

namespace dbops {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::system_clock::time_point;

// 2026-11-26T12:00:00Z
const TimePoint kNow = TimePoint{std::chrono::seconds{1795694400}};

repo::BackupListing backup_at(TimePoint finished, std::string id) {
  repo::BackupListing b;
  b.target = "t";
  b.id = std::move(id);
  repo::Manifest m;
  m.id = b.id;
  m.started_at = finished - 1min;
  m.finished_at = finished;
  b.manifest = m;
  return b;
}

// One backup a day for `days` days, oldest first; ids "d<days ago>".
std::vector<repo::BackupListing> daily(int days) {
  std::vector<repo::BackupListing> out;
  for (int d = days - 1; d >= 0; --d) {
    out.push_back(backup_at(kNow - std::chrono::hours(24 * d), "d" + std::to_string(d)));
  }
  return out;
}

std::vector<std::string> kept(const std::vector<ops::backup::PruneDecision>& plan) {
  std::vector<std::string> out;
  for (const auto& d : plan) {
    if (d.keep) out.push_back(d.id);
  }
  return out;
}

TEST(PrunePlan, KeepLastKeepsTheNewest) {
  const auto plan = ops::backup::plan_prune(daily(5), {.keep_last = 2}, kNow, "");
  EXPECT_EQ(kept(plan), (std::vector<std::string>{"d1", "d0"}));
  EXPECT_EQ(plan[0].reason, "not kept by any rule");
}

TEST(PrunePlan, DailyWeeklyMonthlyTakeTheNewestOfEachPeriod) {
  // Two backups on the same day: only the later one counts for that day.
  auto backups = daily(3);
  backups.insert(backups.begin() + 2, backup_at(kNow - 1h, "d0-early"));
  const auto plan = ops::backup::plan_prune(backups, {.keep_daily = 2}, kNow, "");
  EXPECT_EQ(kept(plan), (std::vector<std::string>{"d1", "d0"}));

  // 60 days: 3 weekly and 2 monthly overlap with the newest ones.
  const auto long_plan =
      ops::backup::plan_prune(daily(60), {.keep_weekly = 3, .keep_monthly = 2}, kNow, "");
  const auto k = kept(long_plan);
  EXPECT_EQ(k.size(), 4U) << ::testing::PrintToString(k);
  EXPECT_EQ(k.back(), "d0");
  // The newest of October (2026-10-31 is 26 days ago).
  EXPECT_NE(std::find(k.begin(), k.end(), "d26"), k.end()) << ::testing::PrintToString(k);
}

TEST(PrunePlan, MaxAgeOverridesKeepRulesButNotTheDrilledBackup) {
  const auto plan =
      ops::backup::plan_prune(daily(10), {.keep_last = 10, .max_age = 72h + 1s}, kNow, "d8");
  EXPECT_EQ(kept(plan), (std::vector<std::string>{"d8", "d3", "d2", "d1", "d0"}));
  for (const auto& d : plan) {
    if (d.id == "d8") {
      EXPECT_EQ(d.reason, "newest backup that passed a drill");
    }
    if (d.id == "d9") {
      EXPECT_EQ(d.reason, "older than max_age");
    }
  }
}

TEST(PrunePlan, PinnedAndNewestSurvive) {
  auto backups = daily(3);
  backups[0].pins = {"01RUN"};
  const auto plan = ops::backup::plan_prune(backups, {.max_age = 1h}, kNow, "");
  // max_age alone: d0 is younger and stays, d2 is older but pinned, d1 goes.
  EXPECT_EQ(kept(plan), (std::vector<std::string>{"d2", "d0"}));
  const auto all_old = ops::backup::plan_prune(daily(3), {.max_age = 1min}, kNow + 1h, "");
  EXPECT_EQ(kept(all_old), (std::vector<std::string>{"d0"}));
  EXPECT_EQ(all_old.back().reason, "the newest backup is never deleted");
}

TEST(PrunePlan, NoRuleKeepsEverything) {
  EXPECT_EQ(kept(ops::backup::plan_prune(daily(4), {}, kNow, "")).size(), 4U);
}

config::LoadOptions load_options() {
  config::LoadOptions o;
  o.engines = engine::Registry::global().shapes();
  o.load_dotenv = false;
  return o;
}

TEST(BackupConfig, ReadsRepositoryBackupDrillAndTargetSettings) {
  const std::string yaml = R"(repository:
  path: ./repo
  compression: {level: 9, threads: 4}
  lock_lease: 2m
backup:
  fingerprint: full
  checkpoint: spread
  retention: {keep_last: 3, keep_daily: 7, max_age: 30d}
drill:
  run_as: postgres
  jobs: 4
targets:
  - name: pg
    engine: postgres
    host: db1
    database: app
    backup: {method: physical, databases: [app, billing], retention: {keep_weekly: 2}}
    canaries:
      - {name: orders, sql: SELECT 1, expect: "1"}
)";
  auto c = config::parse_config(yaml, "/etc/dbops/dbops.yaml", load_options());
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->repository.path, "/etc/dbops/repo");
  EXPECT_EQ(c->repository.compression_level, 9);
  EXPECT_EQ(c->repository.compression_threads, 4);
  EXPECT_EQ(c->repository.lock_lease, 120s);
  EXPECT_EQ(c->backup.fingerprint, "full");
  EXPECT_EQ(c->backup.checkpoint, "spread");
  EXPECT_EQ(c->backup.retention.keep_last, 3);
  EXPECT_EQ(c->backup.retention.max_age, std::chrono::hours(24 * 30));
  EXPECT_EQ(c->drill.run_as, "postgres");
  EXPECT_EQ(c->drill.jobs, 4);
  const auto& t = c->targets.at(0);
  EXPECT_EQ(t.backup.method, "physical");
  EXPECT_EQ(t.backup.databases, (std::vector<std::string>{"app", "billing"}));
  ASSERT_TRUE(t.backup.retention);
  EXPECT_EQ(t.backup.retention->keep_weekly, 2);
  ASSERT_EQ(t.canaries.size(), 1U);
  EXPECT_EQ(t.canaries[0].expect, "1");
  // The key is a secret: config show never prints it.
  const std::string shown = config::to_yaml(*c);
  EXPECT_NE(shown.find("lock_lease: 2m"), std::string::npos) << shown;
}

TEST(BackupConfig, ReportsEveryProblem) {
  const std::string yaml = R"(repository:
  compresion: {level: 3}
  lock_lease: 1s
backup:
  fingerprint: partial
  retention: {keep_last: -1}
targets:
  - name: s
    engine: sqlite
    path: ./s.db
    canaries:
      - {name: a, sql: SELECT 1}
      - {name: a, sql: SELECT 1, expect: "1"}
)";
  std::vector<config::Problem> problems;
  auto c = config::parse_config(yaml, "/tmp/dbops.yaml", load_options(), &problems);
  ASSERT_FALSE(c);
  const std::string all = c.error().message;
  for (const char* expected :
       {"repository.path: missing required key", "did you mean \"compression\"",
        "repository.lock_lease: expected at least 5s", "backup.fingerprint",
        "backup.retention.keep_last", "canaries[0].expect: missing required key",
        "duplicate canary name \"a\""}) {
    EXPECT_NE(all.find(expected), std::string::npos) << expected << "\n" << all;
  }
}

TEST(RunProcessFed, PushesEverythingIntoTheChild) {
  std::string big(3 << 20, 'x');
  auto r = run_process_fed({.argv = {"wc", "-c"}, .stdout_sink = OutputSink::capture()},
                           [&](const PushWrite& write) -> Status {
                             for (std::size_t i = 0; i < big.size(); i += 65536) {
                               DBOPS_TRY(write(std::string_view(big).substr(i, 65536)));
                             }
                             return ok();
                           });
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->succeeded());
  EXPECT_EQ(std::stoul(r->stdout_text), big.size());
}

TEST(RunProcessFed, AChildThatStopsReadingDoesNotHangTheProducer) {
  auto r = run_process_fed({.argv = {"head", "-c", "10"}, .stdout_sink = OutputSink::capture()},
                           [&](const PushWrite& write) -> Status {
                             const std::string block(1 << 20, 'y');
                             for (int i = 0; i < 64; ++i) DBOPS_TRY(write(block));
                             return ok();
                           });
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->stdout_text, std::string(10, 'y'));
}

TEST(RunProcessFed, AFailingProducerStopsTheChildAndIsTheError) {
  auto r = run_process_fed({.argv = {"cat"}}, [&](const PushWrite& write) -> Status {
    DBOPS_TRY(write("partial"));
    return fail(ErrorCode::kCorrupt, "chunk 3 is damaged");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(r.error().message, "chunk 3 is damaged");
}

TEST(TempDirectory, IsPrivateAndRemovedWithItsContents) {
  std::filesystem::path where;
  {
    auto dir = TempDirectory::create({}, "dbops-test-");
    ASSERT_TRUE(dir) << dir.error().to_string();
    where = dir->path();
    EXPECT_EQ(std::filesystem::status(where).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_all);
    std::filesystem::create_directories(where / "a" / "b");
  }
  EXPECT_FALSE(std::filesystem::exists(where));
  auto bad = TempDirectory::create("/nonexistent/dir", "x-");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("/nonexistent/dir"), std::string::npos);
}

}  // namespace
}  // namespace dbops
