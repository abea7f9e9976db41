// `dbops workflow list|run|show`.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <nlohmann/json.hpp>

#include "agent/api.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "core/time_format.hpp"
#include "ops/workflow/workflow.hpp"
#include "runtime/cancel.hpp"
#include "runtime/local_launcher.hpp"
#include "runtime/runner.hpp"

namespace dbops::cli {
namespace {

using json = nlohmann::ordered_json;

std::string or_dash(const std::string& text) {
  return text.empty() ? "-" : text;
}

// The run of a workflow that `dbops workflow show` names: a run id (or a
// unique prefix), or the id of the queued job that ran it. A run id has
// letters in it; all digits is a job id, unless no job has it (a run id
// prefix such as 01 is then looked up as such).
Result<store::RunRecord> find_workflow_run(Session& s, const std::string& name) {
  DBOPS_ASSIGN(store::Store * store, s.store());
  std::int64_t job_id = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), job_id);
  if (!name.empty() && ec == std::errc() && end == name.data() + name.size() && job_id > 0) {
    DBOPS_ASSIGN(store::JobQueue * queue, s.queue());
    DBOPS_ASSIGN(auto job, queue->get(job_id));
    if (!job) {
      DBOPS_ASSIGN(auto run, store->get_run(name));
      if (run) return *run;
      return fail(ErrorCode::kNotFound, "no queued job " + name + " and no run with that id",
                  "`dbops jobs list --kind workflow` lists the queued runs");
    }
    const std::string key =
        job->spec.idempotency_key.empty() ? "queue:" + name : job->spec.idempotency_key;
    DBOPS_ASSIGN(auto run, store->find_run_by_key(key));
    if (!run) {
      return fail(ErrorCode::kNotFound,
                  "job " + name + " (" + std::string(store::job_state_name(job->state)) +
                      ") has not started a run yet",
                  "an agent runs it once it claims it; `dbops jobs show " + name + "` tells more");
    }
    return *run;
  }
  DBOPS_ASSIGN(auto run, store->get_run(name));
  if (!run) {
    return fail(ErrorCode::kNotFound, "no run with id " + name,
                "`dbops workflow list` shows each workflow's latest run");
  }
  return *run;
}

std::string tasks_table(const ops::workflow::RunStatus& status, bool color) {
  Table t{
      .headers = {"TASK", "KIND", "TARGET", "DEPENDS ON", "STATE", "ATTEMPTS", "RUN", "SUMMARY"}};
  for (const auto& task : status.tasks) {
    std::string depends;
    for (const auto& d : task.depends_on) depends += (depends.empty() ? "" : ",") + d;
    std::string summary = task.error.empty() ? task.summary : task.error;
    if (summary.size() > 100) summary = summary.substr(0, 97) + "...";
    t.rows.push_back({task.name, task.kind, or_dash(task.target), or_dash(depends),
                      std::string(ops::workflow::task_state_name(task.state)),
                      task.attempts > 0 ? std::to_string(task.attempts) : "-", or_dash(task.run_id),
                      summary});
  }
  return t.render(color);
}

std::string run_text(const ops::workflow::RunStatus& status, bool color) {
  const auto& r = status.run;
  std::string out;
  out += "run:       " + r.run_id + "\n";
  out += "workflow:  " + status.workflow + "\n";
  out += "state:     " + std::string(store::run_state_name(r.state)) + "\n";
  out += "started:   " + format_utc(r.started_at) + "\n";
  out += "duration:  " + duration_text(r) + "\n";
  out += "key:       " + ops::workflow::run_key(r) + "\n";
  if (!r.summary.empty()) out += "summary:   " + r.summary + "\n";
  if (!r.error.empty() && r.error != r.summary) out += "error:     " + r.error + "\n";
  out += "\n" + tasks_table(status, color);
  return redact::scrub(out);
}

}  // namespace

int cmd_workflow_list(Session& s) {
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  auto store = s.store();
  if (!store) return report(store.error());
  auto all = agent::workflows_json(**store, **cfg);
  if (!all) return report(all.error());
  Table t{.headers = {"WORKFLOW", "TRIGGER", "TASKS", "LAST RUN", "STATE", "STARTED", "SUMMARY"}};
  for (const auto& w : *all) {
    std::string trigger = w.value("trigger", "");
    if (trigger != "manual") {
      trigger += " " + w.value("time_zone", "");
      if (!w.value("enabled", true)) trigger += " (disabled)";
    }
    std::vector<std::string> row = {w.value("name", ""), trigger,
                                    std::to_string(w.at("tasks").size())};
    const json& last = w.at("last_run");
    for (const char* key : {"run_id", "state", "started_at", "summary"}) {
      row.push_back(last.is_null() ? "-" : last.value(key, ""));
    }
    t.rows.push_back(std::move(row));
  }
  if (s.format() == OutputFormat::kJson) {
    print(json_text(*all, 2) + "\n");
  } else if ((*cfg)->workflows.empty()) {
    print("no workflows are configured (`workflows:` in " + (*cfg)->file.string() + ")\n");
  } else {
    print(t.render(s.color()));
  }
  return 0;
}

int cmd_workflow_run(Session& s, const WorkflowArgs& a) {
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  const config::Config& config = **cfg;
  runtime::JobKindRegistry& kinds = s.kinds();
  const config::Workflow* workflow = config.find_workflow(a.name);
  if (!workflow) {
    return report(make_error(ErrorCode::kNotFound, "unknown workflow \"" + a.name + "\"")
                      .with_hint("`dbops workflow list` lists the workflows"));
  }
  if (auto st = ops::workflow::check_workflows(config, kinds, a.name); !st) {
    return report(st.error());
  }

  // Queued: the agents run it, its tasks become jobs of their own.
  if (a.enqueue) {
    auto queue = s.queue();
    if (!queue) return report(queue.error());
    store::JobSpec spec = ops::workflow::run_job(*workflow);
    spec.idempotency_key = a.idempotency_key;
    auto queued = (*queue)->enqueue(spec);
    if (!queued) return report(queued.error());
    if (s.format() == OutputFormat::kJson) {
      print(json_text(json{{"id", queued->id}, {"workflow", a.name}, {"created", queued->created}},
                      2) +
            "\n");
    } else {
      print("workflow " + a.name + " queued as job " + std::to_string(queued->id) +
            (queued->created ? "" : " (already queued with this key)") + "; `dbops workflow show " +
            std::to_string(queued->id) + "` follows it\n");
    }
    return 0;
  }

  // In-process: its tasks run here, each recorded as a run of its own.
  auto store = s.store();
  if (!store) return report(store.error());
  std::atomic<bool> cancel{false};
  runtime::CancelTimer timer(workflow->timeout, cancel);
  runtime::LocalLauncher launcher(kinds, config, **store, real_clock(), s.dispatcher());
  ProgressLine progress;
  runtime::Runner runner(kinds, config, **store, real_clock(),
                         runtime::RunnerOptions{.dispatcher = s.dispatcher(),
                                                .cancel = &cancel,
                                                .progress = progress.sink(),
                                                .launcher = &launcher});
  const store::JobSpec job = ops::workflow::run_job(*workflow);
  auto reported = runner.run(runtime::JobSpec{
      .kind = job.kind, .params_json = job.params_json, .idempotency_key = a.idempotency_key});
  progress.clear();
  if (!reported) return report(reported.error());
  auto status = ops::workflow::run_status(**store, config, reported->run);
  if (!status) return report(status.error());
  if (s.format() == OutputFormat::kJson) {
    json j = agent::workflow_run_json(*status);
    j["reused"] = reported->reused;
    print(json_text(j, 2) + "\n");
  } else {
    print(run_text(*status, s.color()));
  }
  if (cancel && reported->run.state != store::RunState::kSucceeded) {
    std::fprintf(stderr, "dbops: workflow %s: stopped after its timeout of %s\n", a.name.c_str(),
                 seconds_text(std::chrono::duration<double>(workflow->timeout).count()).c_str());
  }
  if (reported->error_code) return exit_code_for(*reported->error_code);
  // A task that failed to run (unreachable, a tool failed) makes it a
  // runtime failure (3); one whose check failed, a gate (1).
  int exit_code = run_exit_code(reported->run);
  for (const auto& task : status->tasks) {
    if (task.state == ops::workflow::TaskState::kFailed) exit_code = std::max(exit_code, 3);
  }
  return exit_code;
}

int cmd_workflow_show(Session& s, const WorkflowArgs& a) {
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  auto store = s.store();
  if (!store) return report(store.error());
  auto run = find_workflow_run(s, a.run);
  if (!run) return report(run.error());
  auto status = ops::workflow::run_status(**store, **cfg, *run);
  if (!status) return report(status.error());
  if (s.format() == OutputFormat::kJson) {
    print(json_text(agent::workflow_run_json(*status), 2) + "\n");
  } else {
    print(run_text(*status, s.color()));
  }
  return 0;
}

}  // namespace dbops::cli
