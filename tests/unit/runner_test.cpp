#include "runtime/runner.hpp"

#include <gtest/gtest.h>

#include "ops/register.hpp"
#include "support/support.hpp"

namespace dbops::runtime {
namespace {

using dbops::testing::TempDir;

// A job kind whose behaviour the test chooses through its parameters.
class ScriptedJob final : public JobKind {
 public:
  std::string_view name() const override { return "scripted"; }
  std::string_view description() const override { return "test job"; }
  std::span<const ParamDecl> params() const override { return kParams; }
  Result<JobOutcome> run(JobContext& ctx) override {
    ++runs;
    last_run_id = ctx.run_id();
    const std::string mode = ctx.params().string("mode", "ok");
    ctx.event(store::Severity::kInfo, "scripted.step", "step one of " + ctx.target()->name);
    if (mode == "fail") return fail(ErrorCode::kUnavailable, "server went away");
    if (mode == "check") return JobOutcome{.passed = false, .summary = "2 checks failed"};
    if (mode == "gate") return fail(ErrorCode::kCheckFailed, "row count differs");
    if (mode == "throw") throw std::runtime_error("boom");
    return JobOutcome{.passed = true,
                      .summary = "did " + std::to_string(ctx.params().integer("n", 1)),
                      .result_json = R"({"ok":true})"};
  }
  int runs = 0;
  std::string last_run_id;

 private:
  static constexpr ParamDecl kParams[] = {
      {.name = "mode", .type = ParamType::kString, .description = "what to do"},
      {.name = "n", .type = ParamType::kInt, .description = "a number"},
  };
};

class CapturingNotifier final : public notify::Notifier {
 public:
  explicit CapturingNotifier(std::vector<notify::Event>* sink) : sink_(sink) {}
  const std::string& name() const override { return name_; }
  const std::string& min_severity() const override { return min_; }
  Status deliver(const notify::Event& e) override {
    sink_->push_back(e);
    return ok();
  }

 private:
  std::string name_ = "capture", min_ = "error";
  std::vector<notify::Event>* sink_;
};

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.targets.push_back(config::Target{.name = "t1", .engine = "sqlite", .path = "/x"});
    config_.state.sqlite_path = (dir_ / "state.db").string();
    auto s = store::open_store(config_.state);
    ASSERT_TRUE(s) << s.error().to_string();
    store_ = std::move(*s);
    auto job = std::make_unique<ScriptedJob>();
    job_ = job.get();
    kinds_.add(std::move(job));
    std::vector<std::unique_ptr<notify::Notifier>> channels;
    channels.push_back(std::make_unique<CapturingNotifier>(&delivered_));
    dispatcher_ = notify::Dispatcher(std::move(channels));
  }

  Result<RunReport> run(std::string params, std::string key = "", std::string target = "t1") {
    Runner runner(kinds_, config_, *store_, clock_, {.dispatcher = &dispatcher_});
    return runner.run(JobSpec{.kind = "scripted",
                              .target = std::move(target),
                              .params_json = std::move(params),
                              .idempotency_key = std::move(key)});
  }

  TempDir dir_;
  config::Config config_;
  std::unique_ptr<store::Store> store_;
  JobKindRegistry kinds_;
  ScriptedJob* job_ = nullptr;
  FakeClock clock_;
  std::vector<notify::Event> delivered_;
  notify::Dispatcher dispatcher_;
};

TEST_F(RunnerTest, SuccessIsRecordedWithEvents) {
  auto r = run(R"({"n": 3})");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->run.state, store::RunState::kSucceeded);
  EXPECT_EQ(r->run.summary, "did 3");
  EXPECT_EQ(r->run.run_id.size(), 26u);
  EXPECT_EQ(job_->last_run_id, r->run.run_id);
  auto stored = store_->get_run(r->run.run_id);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->state, store::RunState::kSucceeded);
  EXPECT_EQ((*stored)->result_json, R"({"ok":true})");
  auto events = store_->list_events({.run_id = r->run.run_id});
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ(events->front().type, "scripted.step");
  EXPECT_TRUE(delivered_.empty());  // info events stay below the channel's threshold
}

TEST_F(RunnerTest, FailureBecomesAnEventAndIsDelivered) {
  auto r = run(R"({"mode": "fail"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->run.state, store::RunState::kFailed);
  EXPECT_NE(r->run.error.find("server went away"), std::string::npos);
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].type, "job.failed");
  EXPECT_EQ(delivered_[0].run_id, r->run.run_id);
  EXPECT_EQ(delivered_[0].target, "t1");
}

TEST_F(RunnerTest, FailedChecksAreCheckFailed) {
  auto a = run(R"({"mode": "check"})");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->run.state, store::RunState::kCheckFailed);
  auto b = run(R"({"mode": "gate"})");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->run.state, store::RunState::kCheckFailed);
  EXPECT_EQ(delivered_.size(), 2u);
  EXPECT_EQ(delivered_[0].type, "job.check_failed");
}

TEST_F(RunnerTest, ExceptionIsCaughtAndRecorded) {
  auto r = run(R"({"mode": "throw"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->run.state, store::RunState::kFailed);
  EXPECT_NE(r->run.error.find("boom"), std::string::npos);
}

TEST_F(RunnerTest, IdempotencyKeySkipsASucceededRun) {
  auto first = run("{}", "nightly-1");
  ASSERT_TRUE(first);
  auto second = run("{}", "nightly-1");
  ASSERT_TRUE(second);
  EXPECT_TRUE(second->reused);
  EXPECT_EQ(second->run.run_id, first->run.run_id);
  EXPECT_EQ(job_->runs, 1);
  // A failed key runs again.
  auto f1 = run(R"({"mode": "fail"})", "k2");
  auto f2 = run("{}", "k2");
  ASSERT_TRUE(f1 && f2);
  EXPECT_FALSE(f2->reused);
  EXPECT_EQ(job_->runs, 3);
}

TEST_F(RunnerTest, RejectsBadSpecsBeforeRecordingAnything) {
  auto unknown_target = run("{}", "", "t2");
  ASSERT_FALSE(unknown_target);
  EXPECT_EQ(unknown_target.error().code, ErrorCode::kNotFound);
  EXPECT_NE(unknown_target.error().message.find("did you mean \"t1\""), std::string::npos);
  auto bad_param = run(R"({"nn": 1})");
  ASSERT_FALSE(bad_param);
  EXPECT_NE(bad_param.error().message.find("did you mean \"n\""), std::string::npos);
  auto bad_type = run(R"({"n": "x"})");
  ASSERT_FALSE(bad_type);
  EXPECT_NE(bad_type.error().message.find("expected integer"), std::string::npos);
  Runner runner(kinds_, config_, *store_, clock_);
  auto bad_kind = runner.run(JobSpec{.kind = "scriptd", .target = "t1"});
  ASSERT_FALSE(bad_kind);
  EXPECT_NE(bad_kind.error().message.find("did you mean \"scripted\""), std::string::npos);
  auto runs = store_->list_runs({});
  ASSERT_TRUE(runs);
  EXPECT_TRUE(runs->empty());
  EXPECT_EQ(job_->runs, 0);
}

TEST(JobSpec, JsonRoundTrip) {
  JobSpec spec{.kind = "command",
               .target = "pg",
               .params_json = R"({"argv":["a","b"]})",
               .idempotency_key = "k"};
  auto back = job_spec_from_json(to_json(spec));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->kind, "command");
  EXPECT_EQ(back->target, "pg");
  EXPECT_EQ(back->params_json, R"({"argv":["a","b"]})");
  EXPECT_EQ(back->idempotency_key, "k");
  EXPECT_FALSE(job_spec_from_json("[]"));
  EXPECT_FALSE(job_spec_from_json(R"({"kind":"x","targt":"y"})"));
  EXPECT_FALSE(job_spec_from_json(R"({"target":"y"})"));
  EXPECT_FALSE(job_spec_from_json("{not json"));
}

TEST(RunId, SortableAndUnique) {
  const auto t =
      std::chrono::system_clock::time_point{std::chrono::milliseconds{1'780'000'000'000}};
  const std::string a = new_run_id(t);
  const std::string b = new_run_id(t + std::chrono::milliseconds(1));
  EXPECT_EQ(a.size(), 26u);
  EXPECT_LT(a, b);
  EXPECT_NE(new_run_id(t), new_run_id(t));
  EXPECT_EQ(a.find_first_not_of("0123456789ABCDEFGHJKMNPQRSTVWXYZ"), std::string::npos);
}

TEST(Ops, RegistersTheBuiltinKinds) {
  JobKindRegistry registry;
  ops::register_job_kinds(registry);
  EXPECT_NE(registry.find("check"), nullptr);
  EXPECT_NE(registry.find("command"), nullptr);
}

}  // namespace
}  // namespace dbops::runtime
