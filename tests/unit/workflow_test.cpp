// Workflow runs in-process: the DAG's order, failures that skip dependents,
// retries, timeouts, resuming under the same key and running branches at
// once, through the real workflow job kind, the runner and a SQLite store.
#include "ops/workflow/workflow.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/local_launcher.hpp"
#include "runtime/runner.hpp"
#include "store/queue.hpp"
#include "support/support.hpp"

namespace dbops::ops::workflow {
namespace {

using dbops::testing::TempDir;
using namespace std::chrono_literals;

// What the test's tasks did, shared by every run of the step kind.
struct Journal {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> started;          // task names, in start order
  std::map<std::string, int> runs;           // per task
  std::map<std::string, int> failures_left;  // transient failures still to give
  std::map<std::string, bool> check_fails;   // tasks whose check fails
  std::map<std::string, std::string> waits;  // task -> a task that must start first
  std::map<std::string, bool> hangs;         // tasks that run until cancelled
  bool saw_cancel = false;

  bool has_started(const std::string& name) {
    return std::find(started.begin(), started.end(), name) != started.end();
  }
};

// A task of the test: its parameter `name` says which entry of the journal
// steers it.
class StepJob final : public runtime::JobKind {
 public:
  explicit StepJob(Journal& journal) : journal_(journal) {}
  std::string_view name() const override { return "step"; }
  std::string_view description() const override { return "test step"; }
  bool needs_target() const override { return false; }
  std::span<const runtime::ParamDecl> params() const override { return kParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    const std::string name = ctx.params().string("name");
    std::unique_lock lock(journal_.mu);
    journal_.started.push_back(name);
    ++journal_.runs[name];
    journal_.cv.notify_all();
    if (auto it = journal_.waits.find(name); it != journal_.waits.end()) {
      const std::string other = it->second;
      if (!journal_.cv.wait_for(lock, 20s, [&] { return journal_.has_started(other); })) {
        return fail(ErrorCode::kCheckFailed, name + ": " + other + " did not start meanwhile");
      }
    }
    if (journal_.hangs[name]) {
      while (!ctx.cancelled()) journal_.cv.wait_for(lock, 10ms);
      journal_.saw_cancel = true;
      return fail(ErrorCode::kCancelled, name + ": stopped");
    }
    if (journal_.failures_left[name] > 0) {
      --journal_.failures_left[name];
      return fail(ErrorCode::kUnavailable, name + ": server went away");
    }
    if (journal_.check_fails[name]) {
      return runtime::JobOutcome{.passed = false, .summary = name + ": 1 check failed"};
    }
    return runtime::JobOutcome{.passed = true, .summary = name + " done"};
  }

 private:
  static constexpr runtime::ParamDecl kParams[] = {
      {.name = "name", .type = runtime::ParamType::kString, .description = "the task"},
  };
  Journal& journal_;
};

class WorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.state.sqlite_path = (dir_ / "state.db").string();
    auto s = store::open_store(config_.state);
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
    kinds_.add(std::make_unique<StepJob>(journal_));
    register_kinds(kinds_);
  }

  // A task of kind step named `name`.
  static config::WorkflowTask task(std::string name, std::vector<std::string> depends_on = {},
                                   int retries = 0, std::chrono::milliseconds timeout = {}) {
    return config::WorkflowTask{.name = name,
                                .kind = "step",
                                .params_json = R"({"name":")" + name + R"("})",
                                .depends_on = std::move(depends_on),
                                .retries = retries,
                                .timeout = timeout};
  }

  void define(std::vector<config::WorkflowTask> tasks) {
    config_.workflows.push_back(config::Workflow{.name = "w", .tasks = std::move(tasks)});
  }

  runtime::RunReport run(std::string key = "") {
    runtime::LocalLauncher launcher(kinds_, config_, *store_, real_clock(), nullptr);
    runtime::Runner runner(kinds_, config_, *store_, real_clock(),
                           runtime::RunnerOptions{.launcher = &launcher});
    auto report = runner.run(runtime::JobSpec{
        .kind = "workflow", .params_json = R"({"workflow":"w"})", .idempotency_key = key});
    EXPECT_TRUE(report) << report.error().to_string();
    return report ? *report : runtime::RunReport{};
  }

  std::map<std::string, std::string> states(const runtime::RunReport& report) {
    auto status = run_status(*store_, config_, report.run);
    EXPECT_TRUE(status) << status.error().to_string();
    std::map<std::string, std::string> out;
    if (status) {
      for (const auto& t : status->tasks) out[t.name] = task_state_name(t.state);
    }
    return out;
  }

  TempDir dir_;
  config::Config config_;
  std::unique_ptr<store::Store> store_;
  runtime::JobKindRegistry kinds_;
  Journal journal_;
};

TEST_F(WorkflowTest, TasksRunAfterWhatTheyDependOn) {
  define({task("d", {"b", "c"}), task("b", {"a"}), task("c", {"a"}), task("a")});
  const auto report = run();
  EXPECT_EQ(report.run.state, store::RunState::kSucceeded) << report.run.summary;
  EXPECT_EQ(report.run.summary, "w: 4 of 4 tasks succeeded");
  ASSERT_EQ(journal_.started.size(), 4U);
  EXPECT_EQ(journal_.started.front(), "a");
  EXPECT_EQ(journal_.started.back(), "d");
  for (const auto& [name, state] : states(report)) EXPECT_EQ(state, "succeeded") << name;
  // Each task is a run of its own, keyed under the workflow run.
  auto b = store_->find_run_by_key(task_key(run_key(report.run), "b"));
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((*b)->kind, "step");
  EXPECT_EQ((*b)->state, store::RunState::kSucceeded);
}

TEST_F(WorkflowTest, IndependentBranchesRunAtOnce) {
  // b waits for c to start and c for b: only a run that starts both before
  // either ends can pass.
  journal_.waits = {{"b", "c"}, {"c", "b"}};
  define({task("a"), task("b", {"a"}), task("c", {"a"})});
  const auto report = run();
  EXPECT_EQ(report.run.state, store::RunState::kSucceeded) << report.run.summary;
}

TEST_F(WorkflowTest, AFailedTaskSkipsItsDependentsAndOthersGoOn) {
  journal_.check_fails["b"] = true;
  journal_.failures_left["e"] = 1;  // transient, and no retries
  define({task("a"), task("b", {"a"}), task("c", {"b"}), task("d", {"a"}), task("e"),
          task("f", {"e", "d"})});
  const auto report = run();
  EXPECT_EQ(report.run.state, store::RunState::kCheckFailed);
  auto s = states(report);
  EXPECT_EQ(s["a"], "succeeded");
  EXPECT_EQ(s["b"], "check_failed");
  EXPECT_EQ(s["c"], "skipped");
  EXPECT_EQ(s["d"], "succeeded");
  EXPECT_EQ(s["e"], "failed");
  EXPECT_EQ(s["f"], "skipped");
  EXPECT_EQ(journal_.runs["c"], 0);
  EXPECT_EQ(journal_.runs["f"], 0);
  EXPECT_NE(report.run.summary.find("b check_failed (b: 1 check failed)"), std::string::npos)
      << report.run.summary;
  EXPECT_NE(report.run.summary.find("c, f skipped; 2 of 6 tasks succeeded"), std::string::npos)
      << report.run.summary;
  // The skipped task says why.
  auto status = run_status(*store_, config_, report.run);
  ASSERT_TRUE(status);
  for (const auto& t : status->tasks) {
    if (t.name == "c") {
      EXPECT_EQ(t.error, "task b check_failed");
    }
  }
}

TEST_F(WorkflowTest, TransientFailuresAreRetriedUpToTheTasksRetries) {
  journal_.failures_left["a"] = 1;
  journal_.failures_left["b"] = 5;
  define({task("a", {}, 1), task("b", {}, 1)});
  const auto report = run();
  auto status = run_status(*store_, config_, report.run);
  ASSERT_TRUE(status);
  for (const auto& t : status->tasks) {
    if (t.name == "a") {
      EXPECT_EQ(t.state, TaskState::kSucceeded);
      EXPECT_EQ(t.attempts, 2);
    } else {
      EXPECT_EQ(t.state, TaskState::kFailed);
      EXPECT_EQ(t.attempts, 2);
      EXPECT_NE(t.error.find("server went away"), std::string::npos) << t.error;
    }
  }
  EXPECT_EQ(journal_.runs["a"], 2);
  EXPECT_EQ(journal_.runs["b"], 2);
}

TEST_F(WorkflowTest, ATaskOverItsTimeoutIsStopped) {
  journal_.hangs["a"] = true;
  define({task("a", {}, 0, 200ms), task("b", {"a"})});
  const auto report = run();
  EXPECT_TRUE(journal_.saw_cancel);
  auto s = states(report);
  EXPECT_EQ(s["a"], "failed");
  EXPECT_EQ(s["b"], "skipped");
  auto status = run_status(*store_, config_, report.run);
  ASSERT_TRUE(status);
  EXPECT_NE(status->tasks[0].error.find("timed out after 200 ms"), std::string::npos)
      << status->tasks[0].error;
}

TEST_F(WorkflowTest, RunningAgainUnderTheSameKeyGoesOnWhereItStopped) {
  journal_.failures_left["b"] = 1;
  define({task("a"), task("b", {"a"}), task("c", {"b"})});
  auto first = run("nightly-1");
  EXPECT_EQ(first.run.state, store::RunState::kCheckFailed);
  EXPECT_EQ(states(first)["c"], "skipped");
  auto second = run("nightly-1");
  EXPECT_EQ(second.run.state, store::RunState::kSucceeded) << second.run.summary;
  EXPECT_EQ(journal_.runs["a"], 1);  // it had succeeded: not run again
  EXPECT_EQ(journal_.runs["b"], 2);
  EXPECT_EQ(journal_.runs["c"], 1);
  // A third time, the whole run had succeeded: nothing runs.
  auto third = run("nightly-1");
  EXPECT_TRUE(third.reused);
  EXPECT_EQ(journal_.runs["b"], 2);
}

TEST_F(WorkflowTest, UnknownWorkflowAndNoLauncherAreClearErrors) {
  define({task("a")});
  runtime::Runner runner(kinds_, config_, *store_, real_clock());
  auto report =
      runner.run(runtime::JobSpec{.kind = "workflow", .params_json = R"({"workflow":"w"})"});
  ASSERT_TRUE(report);
  EXPECT_EQ(report->run.state, store::RunState::kFailed);
  EXPECT_NE(report->run.error.find("cannot start tasks"), std::string::npos) << report->run.error;
  runtime::LocalLauncher launcher(kinds_, config_, *store_, real_clock(), nullptr);
  runtime::Runner with(kinds_, config_, *store_, real_clock(), {.launcher = &launcher});
  report = with.run(runtime::JobSpec{.kind = "workflow", .params_json = R"({"workflow":"ww"})"});
  ASSERT_TRUE(report);
  EXPECT_NE(report->run.error.find("unknown workflow \"ww\" (did you mean \"w\"?)"),
            std::string::npos)
      << report->run.error;
}

TEST_F(WorkflowTest, TasksAreCheckedAgainstTheRegistry) {
  config_.targets.push_back(config::Target{.name = "t1", .engine = "sqlite", .path = "/x"});
  config::WorkflowTask bad = task("x");
  bad.kind = "stepp";
  config::WorkflowTask bad_target = task("y");
  bad_target.target = "t2";
  config::WorkflowTask bad_params = task("z");
  bad_params.params_json = R"({"nme":"z"})";
  define({bad, bad_target, bad_params});
  auto st = check_workflows(config_, kinds_);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kConfig);
  EXPECT_NE(st.error().message.find("task \"x\""), std::string::npos);
  EXPECT_NE(st.error().message.find("unknown job kind \"stepp\" (did you mean \"step\"?)"),
            std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("task \"y\""), std::string::npos);
  EXPECT_NE(st.error().message.find("unknown target \"t2\""), std::string::npos);
  EXPECT_NE(st.error().message.find("task \"z\""), std::string::npos);
  // Another workflow's problems are not this one's.
  config_.workflows.push_back(config::Workflow{.name = "fine", .tasks = {task("a")}});
  EXPECT_TRUE(check_workflows(config_, kinds_, "fine"));
  EXPECT_FALSE(check_workflows(config_, kinds_, "w"));
}

// The scheduler finds where a schedule stands from the greatest key that
// starts with "schedule:<name>:". A triggered run's tasks must not be among
// them, or a restarted scheduler would take a task's key for the newest fire
// time (and find none).
TEST_F(WorkflowTest, TaskKeysStayOutOfTheirScheduleKeys) {
  auto queue = store::open_queue(config_.state);
  ASSERT_TRUE(queue) << queue.error().to_string();
  const std::string run = "schedule:workflow.nightly:2026-12-07T03:00:00Z";
  std::vector<store::JobSpec> jobs = {{.kind = "workflow", .idempotency_key = run}};
  for (const char* task : {"backup", "verify", "drill"}) {
    jobs.push_back({.kind = "step", .idempotency_key = task_key(run, task)});
  }
  ASSERT_TRUE((*queue)->enqueue_batch(jobs));
  auto newest = (*queue)->newest_key("schedule:workflow.nightly:");
  ASSERT_TRUE(newest) << newest.error().to_string();
  ASSERT_TRUE(*newest);
  EXPECT_EQ(**newest, run);
}

TEST_F(WorkflowTest, TriggeredWorkflowsBecomeSchedules) {
  define({task("a")});
  config_.workflows.push_back(config::Workflow{.name = "nightly",
                                               .trigger = "0 3 * * *",
                                               .time_zone = "Europe/Paris",
                                               .catch_up = config::CatchUp::kOnce,
                                               .timeout = 2h,
                                               .max_attempts = 4,
                                               .tasks = {task("a")}});
  config_.workflows.push_back(
      config::Workflow{.name = "off", .trigger = "@daily", .enabled = false, .tasks = {task("a")}});
  const auto schedules = trigger_schedules(config_);
  ASSERT_EQ(schedules.size(), 1U);
  EXPECT_EQ(schedules[0].name, "workflow.nightly");
  EXPECT_EQ(schedules[0].cron, "0 3 * * *");
  EXPECT_EQ(schedules[0].time_zone, "Europe/Paris");
  EXPECT_EQ(schedules[0].kind, "workflow");
  EXPECT_EQ(schedules[0].params_json, R"({"workflow":"nightly"})");
  EXPECT_EQ(schedules[0].catch_up, config::CatchUp::kOnce);
  EXPECT_EQ(schedules[0].max_attempts, 4);
  EXPECT_EQ(schedules[0].timeout, 2h);
}

}  // namespace
}  // namespace dbops::ops::workflow
