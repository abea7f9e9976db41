#include "ops/workflow/workflow.hpp"

#include <condition_variable>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/json_text.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"

namespace dbops::ops::workflow {
namespace {

using json = nlohmann::ordered_json;
using namespace std::chrono_literals;

// Ended without success: its dependents are skipped.
bool ended_badly(TaskState state) {
  return state != TaskState::kPending && state != TaskState::kRunning &&
         state != TaskState::kSucceeded;
}

TaskState task_state_of(runtime::ChildState state) {
  switch (state) {
    case runtime::ChildState::kSucceeded:
      return TaskState::kSucceeded;
    case runtime::ChildState::kCheckFailed:
      return TaskState::kCheckFailed;
    case runtime::ChildState::kCancelled:
      return TaskState::kCancelled;
    case runtime::ChildState::kFailed:
      break;
  }
  return TaskState::kFailed;
}

TaskState task_state_of(store::RunState state) {
  switch (state) {
    case store::RunState::kRunning:
      return TaskState::kRunning;
    case store::RunState::kSucceeded:
      return TaskState::kSucceeded;
    case store::RunState::kCheckFailed:
      return TaskState::kCheckFailed;
    case store::RunState::kFailed:
      break;
  }
  return TaskState::kFailed;
}

TaskStatus task_from_json(const nlohmann::json& j) {
  TaskStatus t;
  t.name = j.value("name", "");
  t.kind = j.value("kind", "");
  t.target = j.value("target", "");
  if (auto it = j.find("depends_on"); it != j.end() && it->is_array()) {
    for (const auto& d : *it) {
      if (d.is_string()) t.depends_on.push_back(d.get<std::string>());
    }
  }
  t.state = parse_task_state(j.value("state", "")).value_or(TaskState::kPending);
  t.run_id = j.value("run_id", "");
  t.job_id = j.value("job_id", std::int64_t{0});
  t.attempts = j.value("attempts", 0);
  t.summary = j.value("summary", "");
  t.error = j.value("error", "");
  return t;
}

TaskStatus task_of(const config::WorkflowTask& t) {
  return TaskStatus{.name = t.name, .kind = t.kind, .target = t.target, .depends_on = t.depends_on};
}

// "verify failed (...); drill, report skipped; 1 of 4 tasks succeeded"
std::string summary_of(const std::string& name, const std::vector<TaskStatus>& tasks) {
  std::size_t succeeded = 0;
  std::vector<std::string> parts;
  std::vector<std::string> skipped;
  for (const auto& t : tasks) {
    if (t.state == TaskState::kSucceeded) {
      ++succeeded;
    } else if (t.state == TaskState::kSkipped) {
      skipped.push_back(t.name);
    } else {
      std::string why = t.error.empty() ? t.summary : t.error;
      if (why.size() > 160) why = why.substr(0, 157) + "...";
      parts.push_back(t.name + " " + std::string(task_state_name(t.state)) +
                      (why.empty() ? "" : " (" + why + ")"));
    }
  }
  if (succeeded == tasks.size()) {
    return name + ": " + std::to_string(tasks.size()) + " of " + std::to_string(tasks.size()) +
           " tasks succeeded";
  }
  if (!skipped.empty()) parts.push_back(join(skipped, ", ") + " skipped");
  parts.push_back(std::to_string(succeeded) + " of " + std::to_string(tasks.size()) +
                  " tasks succeeded");
  return name + ": " + join(parts, "; ");
}

// Runs one workflow's tasks through the launcher, as their dependencies
// allow. Each started task runs on a thread of its own (the launcher blocks
// until it ends); the calling thread decides what starts next.
class Execution {
 public:
  Execution(runtime::JobContext& ctx, const config::Workflow& workflow, std::string run_key)
      : ctx_(ctx), workflow_(workflow), run_key_(std::move(run_key)) {
    for (const auto& t : workflow.tasks) tasks_.push_back(Task{.config = &t, .status = task_of(t)});
  }

  std::vector<TaskStatus> run() {
    std::unique_lock lock(mu_);
    while (true) {
      if (ctx_.cancelled()) stop_ = true;
      collect(lock);
      skip_after_failures();
      if (!stop_) start_ready();
      const bool any_running =
          std::any_of(tasks_.begin(), tasks_.end(), [](const Task& t) { return t.started; });
      if (!any_running) break;
      // Woken when a task ends; the timeout notices a cancelled run.
      cv_.wait_for(lock, 100ms, [&] { return ended_ > 0; });
    }
    std::vector<TaskStatus> out;
    for (auto& t : tasks_) {
      if (t.status.state == TaskState::kPending) {
        t.status.state = TaskState::kSkipped;
        t.status.error = stop_ ? "the run was stopped" : t.status.error;
      }
      out.push_back(t.status);
    }
    return out;
  }

 private:
  struct Task {
    const config::WorkflowTask* config;
    TaskStatus status;
    bool started = false;  // its thread runs (or ended and was not collected)
    bool ended = false;
    Result<runtime::ChildResult> result = fail(ErrorCode::kInternal, "not run");
    std::thread thread;
  };

  Task* find(std::string_view name) {
    for (auto& t : tasks_) {
      if (t.status.name == name) return &t;
    }
    return nullptr;
  }

  // Pending tasks behind a task that ended without success are skipped, and
  // so on down the graph.
  void skip_after_failures() {
    bool changed = true;
    while (changed) {
      changed = false;
      for (auto& t : tasks_) {
        if (t.status.state != TaskState::kPending) continue;
        for (const auto& dep : t.config->depends_on) {
          const Task* d = find(dep);
          if (!d || !ended_badly(d->status.state)) continue;
          t.status.state = TaskState::kSkipped;
          t.status.error = "task " + dep + " " + std::string(task_state_name(d->status.state));
          changed = true;
          break;
        }
      }
    }
  }

  void start_ready() {
    for (auto& t : tasks_) {
      if (t.status.state != TaskState::kPending) continue;
      const bool ready = std::all_of(
          t.config->depends_on.begin(), t.config->depends_on.end(),
          [&](const std::string& dep) { return find(dep)->status.state == TaskState::kSucceeded; });
      if (!ready) continue;
      runtime::ChildJob child{
          .spec = runtime::JobSpec{.kind = t.config->kind,
                                   .target = t.config->target,
                                   .params_json = t.config->params_json,
                                   .idempotency_key = task_key(run_key_, t.config->name)},
          .max_attempts = 1 + t.config->retries,
          .timeout = t.config->timeout};
      log::info("workflow task started", {{"workflow", workflow_.name}, {"task", t.status.name}});
      t.thread = std::thread([this, &t, child = std::move(child)] {
        Result<runtime::ChildResult> result = fail(ErrorCode::kInternal, "not run");
        try {
          result = ctx_.launcher()->run(child, stop_);
        } catch (const std::exception& e) {
          result = fail(ErrorCode::kInternal, std::string("unexpected exception: ") + e.what());
        }
        std::lock_guard lock(mu_);
        t.result = std::move(result);
        t.ended = true;
        ++ended_;
        cv_.notify_all();
      });
      t.status.state = TaskState::kRunning;
      t.started = true;
    }
  }

  // Records the tasks whose threads ended.
  void collect(std::unique_lock<std::mutex>& lock) {
    for (auto& t : tasks_) {
      if (!t.started || !t.ended) continue;
      lock.unlock();
      t.thread.join();
      lock.lock();
      t.started = false;
      --ended_;
      if (t.result) {
        const runtime::ChildResult& r = *t.result;
        t.status.state = task_state_of(r.state);
        t.status.run_id = r.run_id;
        t.status.job_id = r.job_id;
        t.status.attempts = r.attempts;
        t.status.summary = r.summary;
        t.status.error = r.error;
      } else {
        t.status.state = TaskState::kFailed;
        t.status.error = t.result.error().to_string();
      }
      log::info("workflow task ended", {{"workflow", workflow_.name},
                                        {"task", t.status.name},
                                        {"state", task_state_name(t.status.state)}});
      ++done_;
      ctx_.progress(runtime::Progress{
          .phase = "workflow",
          .done = done_,
          .total = tasks_.size(),
          .note = t.status.name + " " + std::string(task_state_name(t.status.state))});
    }
  }

  runtime::JobContext& ctx_;
  const config::Workflow& workflow_;
  const std::string run_key_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Task> tasks_;  // stable addresses for the threads
  std::atomic<bool> stop_{false};
  std::size_t ended_ = 0;  // threads that ended and were not collected yet
  std::uint64_t done_ = 0;
};

constexpr runtime::ParamDecl kParams[] = {
    {.name = "workflow",
     .type = runtime::ParamType::kString,
     .required = true,
     .description = "the workflow to run (its name under `workflows:`)"},
};

class WorkflowJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return kKind; }
  std::string_view description() const override {
    return "runs a workflow from the config: its tasks as their dependencies allow, each a job "
           "of its own";
  }
  bool needs_target() const override { return false; }
  bool waits_on_children() const override { return true; }
  std::span<const runtime::ParamDecl> params() const override { return kParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    // Find the workflow and a way to start its tasks.
    const std::string name = ctx.params().string("workflow");
    const config::Workflow* workflow = ctx.config().find_workflow(name);
    if (!workflow) {
      std::vector<std::string> names;
      for (const auto& w : ctx.config().workflows) names.push_back(w.name);
      std::string msg = "unknown workflow \"" + name + "\"";
      if (auto guess = did_you_mean(name, names)) msg += " (did you mean \"" + *guess + "\"?)";
      return fail(ErrorCode::kNotFound, msg, "`dbops workflow list` lists the workflows");
    }
    if (!ctx.launcher()) {
      return fail(ErrorCode::kUnsupported, "workflow " + name + ": this runner cannot start tasks",
                  "run it with `dbops workflow run` or through the agent's queue");
    }
    const std::string key =
        ctx.idempotency_key().empty() ? "workflow:" + ctx.run_id() : ctx.idempotency_key();

    // Run the tasks.
    log::info("workflow started", {{"workflow", name}, {"run_key", key}});
    auto tasks = Execution(ctx, *workflow, key).run();

    // Say how each ended.
    const bool passed = std::all_of(tasks.begin(), tasks.end(), [](const TaskStatus& t) {
      return t.state == TaskState::kSucceeded;
    });
    json result = {{"workflow", name}, {"run_key", key}, {"tasks", json::array()}};
    for (const auto& t : tasks) result["tasks"].push_back(task_json(t));
    if (ctx.cancelled() && !passed) {
      return fail(ErrorCode::kCancelled,
                  "workflow " + name + " stopped: " + summary_of(name, tasks));
    }
    return runtime::JobOutcome{
        .passed = passed, .summary = summary_of(name, tasks), .result_json = json_text(result)};
  }
};

}  // namespace

std::string_view task_state_name(TaskState state) {
  switch (state) {
    case TaskState::kPending:
      return "pending";
    case TaskState::kRunning:
      return "running";
    case TaskState::kSucceeded:
      return "succeeded";
    case TaskState::kFailed:
      return "failed";
    case TaskState::kCheckFailed:
      return "check_failed";
    case TaskState::kCancelled:
      return "cancelled";
    case TaskState::kSkipped:
      return "skipped";
  }
  return "failed";
}

std::optional<TaskState> parse_task_state(std::string_view name) {
  for (const auto state :
       {TaskState::kPending, TaskState::kRunning, TaskState::kSucceeded, TaskState::kFailed,
        TaskState::kCheckFailed, TaskState::kCancelled, TaskState::kSkipped}) {
    if (task_state_name(state) == name) return state;
  }
  return std::nullopt;
}

Status check_workflows(const config::Config& config, const runtime::JobKindRegistry& kinds,
                       std::string_view only) {
  std::vector<std::string> problems;
  for (const auto& w : config.workflows) {
    if (!only.empty() && w.name != only) continue;
    for (const auto& t : w.tasks) {
      if (auto problem = runtime::check_job(kinds, config, t.kind, t.target, t.params_json)) {
        problems.push_back(
            "workflow \"" + w.name + "\", task \"" + t.name + "\" (" + config.file.string() +
            (t.location.line > 0 ? ":" + std::to_string(t.location.line) : "") + "): " + *problem);
      }
    }
  }
  if (problems.empty()) return ok();
  return fail(ErrorCode::kConfig, join(problems, "\n"),
              "Fix the workflows in the config file; `dbops jobs kinds` lists the job kinds and "
              "their parameters.");
}

store::JobSpec run_job(const config::Workflow& workflow) {
  return store::JobSpec{.kind = std::string(kKind),
                        .params_json = json_text(json{{"workflow", workflow.name}}),
                        .max_attempts = workflow.max_attempts,
                        .timeout = workflow.timeout};
}

std::vector<config::Schedule> trigger_schedules(const config::Config& config) {
  std::vector<config::Schedule> out;
  for (const auto& w : config.workflows) {
    if (w.manual() || !w.enabled) continue;
    const store::JobSpec spec = run_job(w);
    out.push_back(config::Schedule{.name = "workflow." + w.name,
                                   .cron = w.trigger,
                                   .time_zone = w.time_zone,
                                   .kind = spec.kind,
                                   .params_json = spec.params_json,
                                   .catch_up = w.catch_up,
                                   .max_attempts = spec.max_attempts,
                                   .timeout = spec.timeout,
                                   .location = w.location});
  }
  return out;
}

std::string run_key(const store::RunRecord& run) {
  return run.idempotency_key.empty() ? "workflow:" + run.run_id : run.idempotency_key;
}

std::string task_key(std::string_view run_key, std::string_view task) {
  return "task:" + std::string(run_key) + "/" + std::string(task);
}

json task_json(const TaskStatus& t) {
  return json{{"name", t.name},
              {"kind", t.kind},
              {"target", t.target},
              {"depends_on", t.depends_on},
              {"state", task_state_name(t.state)},
              {"attempts", t.attempts},
              {"run_id", t.run_id},
              {"job_id", t.job_id},
              {"summary", t.summary},
              {"error", t.error}};
}

std::string workflow_of(const store::RunRecord& run) {
  if (run.kind != kKind) return {};
  const auto params = nlohmann::json::parse(run.params_json, nullptr, false);
  if (!params.is_object()) return {};
  return params.value("workflow", "");
}

Result<RunStatus> run_status(store::Store& store, const config::Config& config,
                             const store::RunRecord& run) {
  RunStatus out{.run = run, .workflow = workflow_of(run), .tasks = {}};
  if (run.kind != kKind) {
    return fail(ErrorCode::kInvalidArgument,
                "run " + run.run_id + " is a " + run.kind + " run, not a workflow run",
                "`dbops runs show " + run.run_id + "` shows it");
  }
  // A finished run's result holds every task.
  if (run.state != store::RunState::kRunning) {
    const auto result = nlohmann::json::parse(run.result_json, nullptr, false);
    if (result.is_object() && result.contains("tasks") && result["tasks"].is_array()) {
      for (const auto& t : result["tasks"]) out.tasks.push_back(task_from_json(t));
      return out;
    }
  }
  // Otherwise the config says which tasks there are, their runs how far
  // each got.
  const config::Workflow* workflow = config.find_workflow(out.workflow);
  if (!workflow) return out;
  const std::string key = run_key(run);
  for (const auto& t : workflow->tasks) {
    TaskStatus status = task_of(t);
    DBOPS_ASSIGN(auto task_run, store.find_run_by_key(task_key(key, t.name)));
    if (task_run) {
      status.run_id = task_run->run_id;
      status.summary = task_run->summary;
      status.error = task_run->error;
      status.state = task_state_of(task_run->state);
    }
    out.tasks.push_back(std::move(status));
  }
  return out;
}

void register_kinds(runtime::JobKindRegistry& registry) {
  registry.add(std::make_unique<WorkflowJob>());
}

}  // namespace dbops::ops::workflow
