// The agent's queue worker on the SQLite store: every job runs once, with
// the concurrency bound; transient failures retry, checks and bad input do
// not; exhausted retries are dead with an event; timeouts, cancellation and
// shutdown stop the job; an attempt whose run already succeeded is not run
// again.
#include "agent/worker.hpp"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <thread>

#include "core/clock.hpp"
#include "notify/notifier.hpp"
#include "runtime/job.hpp"
#include "runtime/runner.hpp"
#include "store/sqlite/sqlite_queue.hpp"
#include "support/support.hpp"

namespace dbops::agent {
namespace {

using namespace std::chrono_literals;
using dbops::testing::TempDir;

// What the test job did, by the "id" parameter of each job.
struct Ledger {
  std::mutex mu;
  std::map<std::string, int> runs;
  int concurrent = 0;
  int max_concurrent = 0;
};

// mode: ok | fail (server unreachable) | check (a failed check) | bad (usage
// error) | sleep (ms, cancellable) | flaky (fails until attempt `ok_after`).
class TestJob final : public runtime::JobKind {
 public:
  explicit TestJob(Ledger* ledger) : ledger_(ledger) {}
  std::string_view name() const override { return "test.job"; }
  std::string_view description() const override { return "a job the test scripts"; }
  std::span<const runtime::ParamDecl> params() const override { return kParams; }
  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    const std::string id = ctx.params().string("id", "");
    int run_number = 0;
    {
      std::lock_guard lock(ledger_->mu);
      run_number = ++ledger_->runs[id];
      ledger_->max_concurrent = std::max(ledger_->max_concurrent, ++ledger_->concurrent);
    }
    struct Leave {
      Ledger* l;
      ~Leave() {
        std::lock_guard lock(l->mu);
        --l->concurrent;
      }
    } leave{ledger_};
    const std::string mode = ctx.params().string("mode", "ok");
    const auto ms = ctx.params().integer("ms", 50);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ctx.cancelled()) return fail(ErrorCode::kCancelled, "cancelled");
      std::this_thread::sleep_for(5ms);
    }
    if (mode == "fail") return fail(ErrorCode::kUnavailable, "server went away");
    if (mode == "bad") return fail(ErrorCode::kInvalidArgument, "no such table");
    if (mode == "check") return runtime::JobOutcome{.passed = false, .summary = "1 check failed"};
    if (mode == "flaky" && run_number < ctx.params().integer("ok_after", 2)) {
      return fail(ErrorCode::kTimeout, "slow server");
    }
    return runtime::JobOutcome{.summary = "done " + id, .result_json = R"({"done":true})"};
  }

 private:
  static constexpr runtime::ParamDecl kParams[] = {
      {.name = "id", .type = runtime::ParamType::kString, .description = "ledger key"},
      {.name = "mode", .type = runtime::ParamType::kString, .description = "what to do"},
      {.name = "ms", .type = runtime::ParamType::kInt, .description = "how long"},
      {.name = "ok_after", .type = runtime::ParamType::kInt, .description = "flaky until"},
  };
  Ledger* ledger_;
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.file = dir_.path() / "dbops.yaml";
    for (const char* t : {"t1", "t2", "t3"}) {
      config_.targets.push_back(config::Target{.name = t, .engine = "sqlite", .path = "/x"});
    }
    config_.state.sqlite_path = (dir_.path() / "state.db").string();
    auto s = store::open_store(config_.state);
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
    auto q = store::sqlite::open_sqlite_queue(config_.state.sqlite_path,
                                              {.base = 20ms, .max = 50ms, .jitter = 0.0});
    ASSERT_TRUE(q) << q.error().to_string();
    queue_ = std::move(*q);
    kinds_.add(std::make_unique<TestJob>(&ledger_));
  }

  std::unique_ptr<Worker> worker(std::size_t concurrency = 4,
                                 std::chrono::milliseconds lease = 3s) {
    return std::make_unique<Worker>(*queue_, kinds_, config_, *store_, real_clock(), nullptr,
                                    WorkerOptions{.owner = "agent-test",
                                                  .concurrency = concurrency,
                                                  .lease = lease,
                                                  .poll = 50ms,
                                                  .shutdown_grace = 300ms});
  }

  std::int64_t enqueue(const std::string& params, int max_attempts = 3,
                       std::chrono::milliseconds timeout = 0ms, std::string key = "") {
    store::JobSpec s;
    s.kind = "test.job";
    s.target = "t1";
    s.params_json = params;
    s.max_attempts = max_attempts;
    s.timeout = timeout;
    s.idempotency_key = std::move(key);
    auto r = queue_->enqueue(s);
    EXPECT_TRUE(r) << r.error().to_string();
    return r ? r->id : 0;
  }

  store::QueuedJob job(std::int64_t id) {
    auto j = queue_->get(id);
    EXPECT_TRUE(j && *j);
    return j && *j ? **j : store::QueuedJob{};
  }

  // Waits until the job is in `state` (or 20 s pass).
  bool wait_for(std::int64_t id, store::JobState state) {
    for (int i = 0; i < 400; ++i) {
      if (job(id).state == state) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  TempDir dir_;
  config::Config config_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::JobQueue> queue_;
  runtime::JobKindRegistry kinds_;
  Ledger ledger_;
};

TEST_F(WorkerTest, RunsEveryJobOnceWithinItsConcurrency) {
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 24; ++i) {
    ids.push_back(enqueue(R"({"id":"j)" + std::to_string(i) + R"(","ms":40})"));
  }
  auto w = worker(3);
  w->start();
  for (const auto id : ids) EXPECT_TRUE(wait_for(id, store::JobState::kSucceeded)) << id;
  w->stop();
  EXPECT_EQ(ledger_.runs.size(), 24U);
  for (const auto& [id, n] : ledger_.runs) EXPECT_EQ(n, 1) << id;
  EXPECT_LE(ledger_.max_concurrent, 3);
  EXPECT_GE(ledger_.max_concurrent, 2);
  EXPECT_EQ(w->stats().succeeded, 24U);
  EXPECT_EQ(job(ids[0]).result_json, R"({"done":true})");
  // Each attempt is a run in the store.
  auto runs = store_->count_runs({.kind = "test.job"});
  ASSERT_TRUE(runs);
  EXPECT_EQ(*runs, 24);
}

TEST_F(WorkerTest, ATransientFailureIsRetried) {
  const auto id = enqueue(R"({"id":"flaky","mode":"flaky","ok_after":2})");
  auto w = worker();
  w->start();
  ASSERT_TRUE(wait_for(id, store::JobState::kSucceeded));
  w->stop();
  EXPECT_EQ(job(id).attempt, 2);
  EXPECT_EQ(ledger_.runs["flaky"], 2);
}

TEST_F(WorkerTest, FailedChecksAndBadInputAreNotRetried) {
  const auto check = enqueue(R"({"id":"c","mode":"check"})");
  const auto bad = enqueue(R"({"id":"b","mode":"bad"})");
  const auto unknown_param = enqueue(R"({"id":"u","nope":1})");
  auto w = worker();
  w->start();
  for (const auto id : {check, bad, unknown_param}) {
    EXPECT_TRUE(wait_for(id, store::JobState::kFailed)) << id;
    EXPECT_EQ(job(id).attempt, 1) << id;
  }
  w->stop();
  EXPECT_NE(job(bad).last_error.find("no such table"), std::string::npos) << job(bad).last_error;
}

TEST_F(WorkerTest, ExhaustedRetriesMakeTheJobDeadWithAnEvent) {
  const auto id = enqueue(R"({"id":"d","mode":"fail"})", 2);
  auto w = worker();
  w->start();
  ASSERT_TRUE(wait_for(id, store::JobState::kDead));
  w->stop();
  EXPECT_EQ(ledger_.runs["d"], 2);
  auto events = store_->list_events({});
  ASSERT_TRUE(events);
  bool dead = false;
  for (const auto& e : *events) {
    if (e.type == "job.dead") {
      dead = true;
      EXPECT_NE(e.message.find("server went away"), std::string::npos) << e.message;
    }
  }
  EXPECT_TRUE(dead);
}

TEST_F(WorkerTest, ATimeoutStopsTheJob) {
  const auto id = enqueue(R"({"id":"slow","ms":20000})", 1, 300ms);
  auto w = worker();
  w->start();
  ASSERT_TRUE(wait_for(id, store::JobState::kDead));
  w->stop();
  EXPECT_NE(job(id).last_error.find("timed out"), std::string::npos) << job(id).last_error;
}

TEST_F(WorkerTest, CancellingARunningJobStopsItsWorker) {
  const auto id = enqueue(R"({"id":"long","ms":20000})");
  auto w = worker(2, 600ms);
  w->start();
  ASSERT_TRUE(wait_for(id, store::JobState::kRunning));
  ASSERT_TRUE(queue_->cancel(id));
  EXPECT_TRUE(w->wait_idle(5s));
  w->stop();
  EXPECT_EQ(job(id).state, store::JobState::kCancelled);
  EXPECT_EQ(w->stats().lost, 1U);
}

TEST_F(WorkerTest, ShutdownReleasesWhatDidNotFinish) {
  const auto id = enqueue(R"({"id":"long","ms":20000})");
  const auto quick = enqueue(R"({"id":"quick","ms":10})");
  auto w = worker();
  w->start();
  ASSERT_TRUE(wait_for(quick, store::JobState::kSucceeded));
  ASSERT_TRUE(wait_for(id, store::JobState::kRunning));
  w->stop();
  const auto j = job(id);
  EXPECT_EQ(j.state, store::JobState::kAvailable);
  EXPECT_EQ(j.attempt, 0);
  EXPECT_EQ(w->stats().released, 1U);
}

TEST_F(WorkerTest, AnAttemptWhoseRunAlreadySucceededIsNotRunAgain) {
  // A worker ran the job and died before it could report: the run with the
  // job's key succeeded, the queue still has the job.
  runtime::Runner runner(kinds_, config_, *store_, real_clock());
  auto done = runner.run({.kind = "test.job",
                          .target = "t1",
                          .params_json = R"({"id":"once"})",
                          .idempotency_key = "nightly:2026-11-26"});
  ASSERT_TRUE(done && done->run.state == store::RunState::kSucceeded);
  const auto id = enqueue(R"({"id":"once"})", 3, 0ms, "nightly:2026-11-26");
  auto w = worker();
  w->start();
  ASSERT_TRUE(wait_for(id, store::JobState::kSucceeded));
  w->stop();
  EXPECT_EQ(ledger_.runs["once"], 1);
}

}  // namespace
}  // namespace dbops::agent
