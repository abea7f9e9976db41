// The agent's scheduler on the SQLite queue with a fake clock: fire times in a
// time zone across both daylight-saving changes of 2026, one job per fire
// time whatever the number of schedulers, and the catch-up policies after an
// outage. Expected instants are UTC; Europe/Paris changes on 2026-03-29 at
// 01:00Z (02:00 CET -> 03:00 CEST) and on 2026-10-25 at 01:00Z (03:00 CEST ->
// 02:00 CET), see tests/unit/cron_test.cpp.
#include "agent/scheduler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "core/clock.hpp"
#include "runtime/job.hpp"
#include "store/sqlite/sqlite_queue.hpp"
#include "support/support.hpp"

namespace dbops::agent {
namespace {

using namespace std::chrono_literals;
using dbops::testing::TempDir;
using Keys = std::vector<std::string>;

// "2026-03-29T01:00:00Z" to a time point.
TimePoint At(const std::string& iso) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &s) != 6) {
    ADD_FAILURE() << "bad ISO time " << iso;
  }
  const std::chrono::sys_days day{std::chrono::year{y} / mo / d};
  return TimePoint{day} + std::chrono::hours{h} + std::chrono::minutes{mi} +
         std::chrono::seconds{s};
}

config::Schedule Daily(std::string name, std::string cron, std::string zone = "Europe/Paris",
                       config::CatchUp catch_up = config::CatchUp::kSkip) {
  config::Schedule s;
  s.name = std::move(name);
  s.cron = std::move(cron);
  s.time_zone = std::move(zone);
  s.kind = "test.backup";
  s.target = "pg-main";
  s.catch_up = catch_up;
  return s;
}

// A kind that changes its target (so exclusive), and one that only reads.
class TestKind final : public runtime::JobKind {
 public:
  TestKind(std::string name, bool changes, bool needs_target = true)
      : name_(std::move(name)), changes_(changes), needs_target_(needs_target) {}
  std::string_view name() const override { return name_; }
  std::string_view description() const override { return "a test kind"; }
  bool needs_target() const override { return needs_target_; }
  bool changes_target() const override { return changes_; }
  std::span<const runtime::ParamDecl> params() const override { return kParams; }
  Result<runtime::JobOutcome> run(runtime::JobContext&) override { return runtime::JobOutcome{}; }

 private:
  static constexpr runtime::ParamDecl kParams[] = {
      {.name = "method", .type = runtime::ParamType::kString, .description = "how"},
      {.name = "keep", .type = runtime::ParamType::kInt, .description = "how many"},
  };
  std::string name_;
  bool changes_;
  bool needs_target_;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (dir_.path() / "state.db").string();
    queue_ = open_queue();
    kinds_.add(std::make_unique<TestKind>("test.backup", true));
    kinds_.add(std::make_unique<TestKind>("test.probe", false, false));
  }

  std::unique_ptr<store::JobQueue> open_queue() {
    auto q = store::sqlite::open_sqlite_queue(path_);
    EXPECT_TRUE(q) << q.error().to_string();
    return q ? std::move(*q) : nullptr;
  }

  std::unique_ptr<Scheduler> scheduler(std::vector<config::Schedule> schedules,
                                       store::JobQueue* queue = nullptr,
                                       SchedulerOptions options = {}) {
    return std::make_unique<Scheduler>(std::move(schedules), queue ? *queue : *queue_, clock_,
                                       kinds_, options);
  }

  void set_clock(TimePoint t) { clock_.advance(t - clock_.now()); }

  // Ticks the way the agent's loop does, on every fire time, until `end`;
  // returns the jobs the ticks created.
  std::size_t run_until(Scheduler& s, TimePoint end) {
    std::size_t created = 0;
    while (true) {
      auto r = s.tick();
      EXPECT_TRUE(r) << r.error().to_string();
      if (!r) return created;
      created += *r;
      const auto wait = s.until_next();
      if (clock_.now() >= end) return created;
      clock_.advance(std::min<std::chrono::nanoseconds>(wait, end - clock_.now()));
    }
  }

  // The idempotency keys in the queue, in order.
  Keys keys() {
    auto jobs = queue_->list({.limit = 10'000});
    EXPECT_TRUE(jobs) << jobs.error().to_string();
    Keys out;
    if (jobs) {
      for (const auto& j : *jobs) out.push_back(j.spec.idempotency_key);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<store::JobQueue> queue_;
  runtime::JobKindRegistry kinds_;
  FakeClock clock_;
};

TEST(ScheduleKey, IsTheNameAndTheFireTimeInUtcToTheSecond) {
  EXPECT_EQ(schedule_key("pg-main-nightly", At("2026-03-29T01:00:00Z")),
            "schedule:pg-main-nightly:2026-03-29T01:00:00Z");
  EXPECT_EQ(schedule_key("a", At("2026-03-29T01:00:00Z") + 999ms),
            "schedule:a:2026-03-29T01:00:00Z");
}

TEST_F(SchedulerTest, DailyInParisAcrossBothDaylightSavingChanges) {
  auto s = scheduler({Daily("nightly", "0 3 * * *")});
  set_clock(At("2026-03-27T12:00:00Z"));
  EXPECT_EQ(run_until(*s, At("2026-03-31T00:00:00Z")), 3U);
  set_clock(At("2026-10-23T12:00:00Z"));
  EXPECT_EQ(run_until(*s, At("2026-10-27T00:00:00Z")), 3U);
  EXPECT_EQ(keys(), (Keys{
                        "schedule:nightly:2026-03-28T02:00:00Z",  // 03:00 CET
                        "schedule:nightly:2026-03-29T01:00:00Z",  // 03:00 CEST, right after the gap
                        "schedule:nightly:2026-03-30T01:00:00Z",
                        "schedule:nightly:2026-10-24T01:00:00Z",  // 03:00 CEST
                        "schedule:nightly:2026-10-25T02:00:00Z",  // 03:00 CET
                        "schedule:nightly:2026-10-26T02:00:00Z",
                    }));
  // Each job is due at its fire time and carries the schedule's spec.
  auto jobs = queue_->list({});
  ASSERT_TRUE(jobs);
  for (const auto& j : *jobs) {
    EXPECT_EQ(schedule_key("nightly", j.run_at), j.spec.idempotency_key);
    EXPECT_EQ(j.spec.kind, "test.backup");
    EXPECT_EQ(j.spec.target, "pg-main");
    EXPECT_EQ(j.spec.max_attempts, 3);
  }
}

TEST_F(SchedulerTest, AFixedTimeInTheGapFiresOnceAtTheChangeAndOnceInTheRepeatedHour) {
  auto s = scheduler({Daily("half-two", "30 2 * * *")});
  set_clock(At("2026-03-28T00:00:00Z"));
  run_until(*s, At("2026-03-30T12:00:00Z"));
  set_clock(At("2026-10-24T00:00:00Z"));
  run_until(*s, At("2026-10-26T12:00:00Z"));
  EXPECT_EQ(keys(), (Keys{
                        "schedule:half-two:2026-03-28T01:30:00Z",
                        "schedule:half-two:2026-03-29T01:00:00Z",  // 02:30 does not exist: 03:00
                        "schedule:half-two:2026-03-30T00:30:00Z",
                        "schedule:half-two:2026-10-24T00:30:00Z",
                        "schedule:half-two:2026-10-25T00:30:00Z",  // the first 02:30 only
                        "schedule:half-two:2026-10-26T01:30:00Z",
                    }));
}

TEST_F(SchedulerTest, AWildcardFiresTwiceInTheRepeatedHourAndNeverInTheGap) {
  auto s = scheduler({Daily("half-hourly", "*/30 * * * *")});
  set_clock(At("2026-03-29T00:10:00Z"));  // 01:10 CET
  EXPECT_EQ(run_until(*s, At("2026-03-29T01:40:00Z")), 3U);
  set_clock(At("2026-10-24T23:50:00Z"));  // 01:50 CEST
  EXPECT_EQ(run_until(*s, At("2026-10-25T02:10:00Z")), 5U);
  EXPECT_EQ(keys(), (Keys{
                        "schedule:half-hourly:2026-03-29T00:30:00Z",  // 01:30 CET
                        "schedule:half-hourly:2026-03-29T01:00:00Z",  // 03:00 CEST
                        "schedule:half-hourly:2026-03-29T01:30:00Z",  // 03:30 CEST
                        "schedule:half-hourly:2026-10-25T00:00:00Z",  // 02:00 CEST
                        "schedule:half-hourly:2026-10-25T00:30:00Z",  // 02:30 CEST
                        "schedule:half-hourly:2026-10-25T01:00:00Z",  // 02:00 CET
                        "schedule:half-hourly:2026-10-25T01:30:00Z",  // 02:30 CET
                        "schedule:half-hourly:2026-10-25T02:00:00Z",  // 03:00 CET
                    }));
}

// Two days of an agent, three days without one, then a new agent.
class CatchUp : public SchedulerTest {
 protected:
  std::size_t outage(config::CatchUp policy) {
    {
      auto before = scheduler({Daily("nightly", "0 3 * * *", "Europe/Paris", policy)});
      set_clock(At("2026-06-01T00:00:00Z"));
      EXPECT_EQ(run_until(*before, At("2026-06-02T12:00:00Z")), 2U);
    }
    set_clock(At("2026-06-05T12:00:00Z"));
    after_ = scheduler({Daily("nightly", "0 3 * * *", "Europe/Paris", policy)});
    auto first = after_->tick();
    EXPECT_TRUE(first) << first.error().to_string();
    return first ? *first : 0;
  }
  std::unique_ptr<Scheduler> after_;
};

TEST_F(CatchUp, SkipEnqueuesNothingForTheMissedTicksAndGoesOn) {
  EXPECT_EQ(outage(config::CatchUp::kSkip), 0U);
  EXPECT_EQ(keys(), (Keys{"schedule:nightly:2026-06-01T01:00:00Z",
                          "schedule:nightly:2026-06-02T01:00:00Z"}));
  EXPECT_EQ(run_until(*after_, At("2026-06-06T12:00:00Z")), 1U);
  EXPECT_EQ(keys().back(), "schedule:nightly:2026-06-06T01:00:00Z");
}

TEST_F(CatchUp, OnceEnqueuesTheMostRecentMissedTickOnly) {
  EXPECT_EQ(outage(config::CatchUp::kOnce), 1U);
  EXPECT_EQ(keys(),
            (Keys{"schedule:nightly:2026-06-01T01:00:00Z", "schedule:nightly:2026-06-02T01:00:00Z",
                  "schedule:nightly:2026-06-05T01:00:00Z"}));
  auto jobs = queue_->list({.limit = 1});
  ASSERT_TRUE(jobs && jobs->size() == 1U);
  EXPECT_EQ((*jobs)[0].run_at, At("2026-06-05T01:00:00Z"));  // due at once
  // A restart later that day has nothing more to catch up.
  set_clock(At("2026-06-05T18:00:00Z"));
  auto again = scheduler({Daily("nightly", "0 3 * * *", "Europe/Paris", config::CatchUp::kOnce)});
  EXPECT_EQ(again->tick().value_or(99), 0U);
  EXPECT_EQ(run_until(*after_, At("2026-06-06T12:00:00Z")), 1U);
  EXPECT_EQ(keys().size(), 4U);
}

TEST_F(CatchUp, OnceWithNothingMissedEnqueuesNothing) {
  {
    auto before =
        scheduler({Daily("nightly", "0 3 * * *", "Europe/Paris", config::CatchUp::kOnce)});
    set_clock(At("2026-06-01T00:00:00Z"));
    run_until(*before, At("2026-06-01T12:00:00Z"));
  }
  set_clock(At("2026-06-01T23:00:00Z"));
  auto after = scheduler({Daily("nightly", "0 3 * * *", "Europe/Paris", config::CatchUp::kOnce)});
  EXPECT_EQ(after->tick().value_or(99), 0U);
  EXPECT_EQ(keys(), (Keys{"schedule:nightly:2026-06-01T01:00:00Z"}));
}

TEST_F(CatchUp, WithoutHistoryNothingIsCaughtUp) {
  for (const auto policy : {config::CatchUp::kSkip, config::CatchUp::kOnce}) {
    set_clock(At("2026-06-05T12:30:00Z") + (policy == config::CatchUp::kOnce ? 24h : 0h));
    auto s = scheduler({Daily(std::string("new-") + std::string(config::catch_up_name(policy)),
                              "0 * * * *", "UTC", policy)});
    EXPECT_EQ(s->tick().value_or(99), 0U);
  }
  EXPECT_TRUE(keys().empty());
  // A fire time at the very first tick is due, not missed.
  set_clock(At("2026-06-07T10:00:00Z"));
  auto s = scheduler({Daily("on-the-hour", "0 * * * *", "UTC")});
  EXPECT_EQ(s->tick().value_or(99), 1U);
  EXPECT_EQ(keys(), (Keys{"schedule:on-the-hour:2026-06-07T10:00:00Z"}));
}

TEST_F(CatchUp, AFireTimeALittleLateStillRunsWhateverThePolicy) {
  {
    auto before = scheduler({Daily("nightly", "0 3 * * *")});
    set_clock(At("2026-06-01T00:00:00Z"));
    run_until(*before, At("2026-06-01T12:00:00Z"));
  }
  // A restart across 03:00: back 30 s after the fire time.
  set_clock(At("2026-06-02T01:00:30Z"));
  auto after = scheduler({Daily("nightly", "0 3 * * *")});
  EXPECT_EQ(after->tick().value_or(99), 1U);
  EXPECT_EQ(keys().back(), "schedule:nightly:2026-06-02T01:00:00Z");
}

TEST_F(CatchUp, AClockJumpWhileRunningIsAnOutageToo) {
  auto s = scheduler({Daily("skip", "0 * * * *", "UTC", config::CatchUp::kSkip),
                      Daily("once", "0 * * * *", "UTC", config::CatchUp::kOnce)});
  set_clock(At("2026-06-01T00:30:00Z"));
  EXPECT_EQ(run_until(*s, At("2026-06-01T02:30:00Z")), 4U);
  clock_.advance(48h);
  EXPECT_EQ(s->tick().value_or(99), 1U);  // once: 2026-06-03T02:00
  EXPECT_EQ(keys().back(), "schedule:skip:2026-06-01T02:00:00Z");
  EXPECT_EQ(keys()[2], "schedule:once:2026-06-03T02:00:00Z");
}

TEST_F(SchedulerTest, AClockThatGoesBackEnqueuesNothingTwice) {
  auto s = scheduler({Daily("hourly", "0 * * * *", "UTC")});
  set_clock(At("2026-06-01T00:30:00Z"));
  EXPECT_EQ(run_until(*s, At("2026-06-01T03:30:00Z")), 3U);
  clock_.advance(-2h);
  EXPECT_EQ(run_until(*s, At("2026-06-01T04:30:00Z")), 1U);
  EXPECT_EQ(keys().size(), 4U);
}

TEST_F(SchedulerTest, ADisabledScheduleEnqueuesNothing) {
  auto off = Daily("off", "* * * * *");
  off.enabled = false;
  auto s = scheduler({off});
  EXPECT_TRUE(s->names().empty());
  set_clock(At("2026-06-01T00:00:00Z"));
  EXPECT_EQ(s->tick().value_or(99), 0U);
  EXPECT_EQ(s->until_next(), 24h);
  clock_.advance(1h);
  EXPECT_EQ(s->tick().value_or(99), 0U);
  EXPECT_TRUE(keys().empty());
}

TEST_F(SchedulerTest, UntilNextIsTheTimeToTheNextFire) {
  auto s =
      scheduler({Daily("hourly", "0 * * * *", "UTC"), Daily("quarter", "*/15 * * * *", "UTC")});
  set_clock(At("2026-06-01T00:07:30Z"));
  EXPECT_EQ(s->until_next(), 0ms);  // the first tick is due
  ASSERT_TRUE(s->tick());
  EXPECT_EQ(s->until_next(), 7min + 30s);
  clock_.advance(7min + 30s);
  EXPECT_EQ(s->until_next(), 0ms);
  EXPECT_EQ(s->tick().value_or(99), 1U);
  EXPECT_EQ(s->until_next(), 15min);
}

TEST_F(SchedulerTest, TwoSchedulersOnOneQueueEnqueueEachTickOnce) {
  auto other_queue = open_queue();
  ASSERT_NE(other_queue, nullptr);
  auto a = scheduler({Daily("quarter", "*/15 * * * *", "UTC")});
  auto b = scheduler({Daily("quarter", "*/15 * * * *", "UTC")}, other_queue.get());
  set_clock(At("2026-06-01T00:05:00Z"));
  std::size_t created = 0;
  for (int minute = 0; minute < 180; ++minute) {
    // Either one ticks first.
    auto& first = minute % 2 ? *a : *b;
    auto& second = minute % 2 ? *b : *a;
    created += first.tick().value_or(99);
    created += second.tick().value_or(99);
    clock_.advance(1min);
  }
  EXPECT_EQ(created, 12U);
  const Keys got = keys();
  EXPECT_EQ(got.size(), 12U);
  EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
}

TEST_F(SchedulerTest, TwoRunningSchedulersEnqueueEachTickOnce) {
  auto other_queue = open_queue();
  ASSERT_NE(other_queue, nullptr);
  // A loaded machine may let the fake clock run many minutes between two
  // ticks: a long threshold keeps those fire times due rather than missed.
  const SchedulerOptions options{.misfire_threshold = 24h, .max_sleep = 2ms};
  const auto schedules = std::vector<config::Schedule>{Daily("quarter", "*/15 * * * *", "UTC"),
                                                       Daily("minute", "* * * * *", "UTC")};
  set_clock(At("2026-06-01T00:00:30Z"));
  auto a = scheduler(schedules, nullptr, options);
  auto b = scheduler(schedules, other_queue.get(), options);
  // The first ticks, before the clock moves, set where the schedules start.
  ASSERT_TRUE(a->tick());
  ASSERT_TRUE(b->tick());
  a->start();
  b->start();
  for (int minute = 0; minute < 120; ++minute) {
    std::this_thread::sleep_for(3ms);
    clock_.advance(1min);
  }
  std::this_thread::sleep_for(100ms);
  a->stop();
  b->stop();
  // Whatever the threads did not get to before they stopped.
  ASSERT_TRUE(a->tick());
  ASSERT_TRUE(b->tick());
  const Keys got = keys();
  EXPECT_EQ(got.size(), 8U + 120U);  // 00:15 .. 02:00 and 00:01 .. 02:00
  EXPECT_EQ(std::adjacent_find(got.begin(), got.end()), got.end());
}

TEST_F(SchedulerTest, ExclusiveComesFromTheKindAndTheSpecFromTheSchedule) {
  auto backup = Daily("nightly", "0 3 * * *");
  backup.params_json = R"({"method":"pg_dump"})";
  backup.priority = 7;
  backup.max_attempts = 5;
  backup.timeout = 2h;
  auto probe = Daily("probe", "0 3 * * *");
  probe.kind = "test.probe";
  probe.target.clear();
  int woken = 0;
  auto s = scheduler({backup, probe}, nullptr, SchedulerOptions{.on_enqueued = [&] { ++woken; }});
  set_clock(At("2026-06-01T01:00:00Z"));
  EXPECT_EQ(s->tick().value_or(99), 2U);
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(s->tick().value_or(99), 0U);
  EXPECT_EQ(woken, 1);  // only after ticks that created jobs
  auto jobs = queue_->list({});
  ASSERT_TRUE(jobs && jobs->size() == 2U);
  for (const auto& j : *jobs) {
    if (j.spec.kind == "test.backup") {
      EXPECT_TRUE(j.spec.exclusive);
      EXPECT_EQ(j.spec.params_json, R"({"method":"pg_dump"})");
      EXPECT_EQ(j.spec.priority, 7);
      EXPECT_EQ(j.spec.max_attempts, 5);
      EXPECT_EQ(j.spec.timeout, 2h);
    } else {
      EXPECT_FALSE(j.spec.exclusive);
      EXPECT_EQ(j.spec.target, "");
    }
  }
}

TEST_F(SchedulerTest, StopIsPrompt) {
  auto s =
      scheduler({Daily("hourly", "0 * * * *", "UTC")}, nullptr, SchedulerOptions{.max_sleep = 60s});
  set_clock(At("2026-06-01T10:00:00Z"));
  s->start();
  // The first tick enqueues the fire time at start.
  for (int i = 0; i < 500 && keys().empty(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(keys().size(), 1U);
  const auto begin = std::chrono::steady_clock::now();
  s->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 30s);  // not the 60 s sleep
  s->stop();                                                 // twice is fine
}

TEST_F(SchedulerTest, CheckSchedulesNamesEachBadSchedule) {
  config::Config config;
  config.file = "/etc/dbops/dbops.yaml";
  config.targets.push_back(config::Target{.name = "pg-main", .engine = "postgres"});
  auto good = Daily("good", "0 3 * * *");
  good.params_json = R"({"method":"pg_dump","keep":"7"})";
  auto unknown = Daily("typo", "0 3 * * *");
  unknown.kind = "test.bakup";
  unknown.location.line = 12;
  auto no_target = Daily("no-target", "0 3 * * *");
  no_target.target.clear();
  auto bad_params = Daily("bad-params", "0 3 * * *");
  bad_params.params_json = R"({"methd":"x"})";
  auto probe = Daily("probe", "*/5 * * * *");
  probe.kind = "test.probe";
  probe.target.clear();
  config.schedules = {good, probe};
  EXPECT_TRUE(check_schedules(config, kinds_));
  config.schedules = {good, unknown, no_target, bad_params};
  auto st = check_schedules(config, kinds_);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kConfig);
  const std::string& m = st.error().message;
  EXPECT_NE(m.find("schedule \"typo\" (/etc/dbops/dbops.yaml:12): unknown job kind \"test.bakup\" "
                   "(did you mean \"test.backup\"?)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("schedule \"no-target\" (/etc/dbops/dbops.yaml): job kind test.backup needs a "
                   "target"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("schedule \"bad-params\""), std::string::npos) << m;
  EXPECT_NE(m.find("unknown parameter \"methd\""), std::string::npos) << m;
  EXPECT_EQ(m.find("\"good\""), std::string::npos) << m;
}

}  // namespace
}  // namespace dbops::agent
