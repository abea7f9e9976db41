// Workflows: named DAGs of tasks from the config's `workflows:`, each task a
// job of any kind.
//
// A run is itself a job, of kind `workflow` (parameter `workflow`: the name).
// It starts every task whose dependencies have all succeeded through the job
// context's launcher (runtime::JobLauncher), several at once where the graph
// allows, and waits. A task that fails (or whose check fails, or that is
// cancelled) stops its dependents, which are marked skipped; independent
// branches go on. The run passes when every task succeeded; otherwise it
// ends check_failed, with each task's state in its result.
//
// Each task is a job whose idempotency key is "task:<run key>/<task>" (a
// namespace of its own: a triggered run's key is a schedule's, and the
// scheduler finds where a schedule stands from the greatest key that starts
// with "schedule:<name>:"), where the run key is the run's own idempotency key ("queue:<job id>",
// or "schedule:workflow.<name>:<fire time>" for a triggered run), or "workflow:<run id>" when it
// has none (a run from the command line). So a run that is tried again (its agent died, and another
// agent claimed the run's job) goes on where it was: tasks that succeeded are not run again, tasks
// that are running are waited for.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"
#include "runtime/job.hpp"
#include "store/queue.hpp"
#include "store/store.hpp"

namespace dbops::ops::workflow {

inline constexpr std::string_view kKind = "workflow";

// Checks what the config loader cannot know about every workflow's tasks:
// their kinds exist, a kind that needs a target has one, their params fit
// the kind. kConfig listing every problem, one per line, each naming the
// workflow, the task and its line.
// `only`: just the workflow of that name.
Status check_workflows(const config::Config& config, const runtime::JobKindRegistry& kinds,
                       std::string_view only = {});

// The queued job of one run of `workflow`: kind workflow, its timeout and
// max_attempts; not exclusive.
store::JobSpec run_job(const config::Workflow& workflow);

// The schedules that fire the enabled workflows whose trigger is a cron
// expression: named "workflow.<name>", kind workflow, with run_job()'s
// attempts and timeout.
std::vector<config::Schedule> trigger_schedules(const config::Config& config);

// "workflow:<run id>" when the run has no idempotency key of its own.
std::string run_key(const store::RunRecord& run);
std::string task_key(std::string_view run_key, std::string_view task);

enum class TaskState {
  kPending,  // not started yet
  kRunning,  // its job runs (or is queued)
  kSucceeded,
  kFailed,       // it could not run or failed on the way (runtime error)
  kCheckFailed,  // it ran and a check it makes failed
  kCancelled,
  kSkipped,  // a task it depends on ended without success, or the run stopped
};
std::string_view task_state_name(TaskState state);
std::optional<TaskState> parse_task_state(std::string_view name);

struct TaskStatus {
  std::string name;
  std::string kind;
  std::string target;
  std::vector<std::string> depends_on;
  TaskState state = TaskState::kPending;
  std::string run_id;       // its latest run, when one started
  std::int64_t job_id = 0;  // its queued job, when it was queued
  int attempts = 0;
  std::string summary;
  std::string error;
};

struct RunStatus {
  store::RunRecord run;  // the workflow run itself
  std::string workflow;
  std::vector<TaskStatus> tasks;
};

// Where a workflow run stands. A finished run is read from its result; a
// running one (or one that ended before it could write a result) from the
// config's workflow and the runs of its tasks in the store.
Result<RunStatus> run_status(store::Store& store, const config::Config& config,
                             const store::RunRecord& run);

// The one JSON form of a task's status: in a run's result, in the API and in
// `dbops workflow show`.
nlohmann::ordered_json task_json(const TaskStatus& task);

// The workflow a run ran (its `workflow` parameter); empty when the run is
// not a workflow run.
std::string workflow_of(const store::RunRecord& run);

void register_kinds(runtime::JobKindRegistry& registry);

}  // namespace dbops::ops::workflow
