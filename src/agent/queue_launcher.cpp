#include "agent/queue_launcher.hpp"

#include <algorithm>

#include "core/log.hpp"
#include "runtime/cancel.hpp"

namespace dbops::agent {
using namespace std::chrono_literals;

QueueLauncher::QueueLauncher(store::JobQueue& queue, store::Store& store,
                             const runtime::JobKindRegistry& kinds, std::chrono::milliseconds poll,
                             std::function<bool()> abandon_children)
    : queue_(queue),
      store_(store),
      kinds_(kinds),
      poll_(std::max<std::chrono::milliseconds>(poll, 10ms)),
      abandon_children_(std::move(abandon_children)) {}

Result<runtime::ChildResult> QueueLauncher::run(const runtime::ChildJob& child,
                                                const std::atomic<bool>& cancel) {
  // Store calls that fail transiently (the store or PgBouncer away for a
  // moment) are tried again every poll until they work or the run is
  // cancelled: the task's job goes on meanwhile, and a run that gave up on it
  // would skip its dependents for nothing.
  std::string last_error;
  const auto patiently = [&](auto call) -> decltype(call()) {
    while (true) {
      auto result = call();
      if (result || !runtime::transient(result.error().code) || cancel.load()) return result;
      if (result.error().message != last_error) {
        last_error = result.error().message;
        log::warn("workflow task: the queue did not answer; trying again",
                  {{"task_key", child.spec.idempotency_key}, {"error", last_error}});
      }
      runtime::sleep_unless_cancelled(poll_, cancel);
    }
  };

  // Enqueue it, or find the job an earlier attempt enqueued.
  const runtime::JobKind* kind = kinds_.find(child.spec.kind);
  store::JobSpec spec{.kind = child.spec.kind,
                      .target = child.spec.target,
                      .params_json = child.spec.params_json,
                      .idempotency_key = child.spec.idempotency_key,
                      .max_attempts = std::max(1, child.max_attempts),
                      .timeout = child.timeout,
                      .exclusive = kind && kind->exclusive()};
  DBOPS_ASSIGN(auto enqueued, patiently([&] { return queue_.enqueue(spec); }));
  runtime::ChildResult result{.job_id = enqueued.id};

  // Follow it until it ends.
  while (true) {
    DBOPS_ASSIGN(auto job, patiently([&] { return queue_.get(enqueued.id); }));
    if (!job) {
      return fail(ErrorCode::kNotFound,
                  "job " + std::to_string(enqueued.id) + " (" + spec.idempotency_key +
                      ") left the queue before it ended",
                  "agent.job_retention may be shorter than a workflow run");
    }
    result.attempts = job->attempt;
    if (store::job_state_final(job->state)) {
      result.error = job->last_error;
      DBOPS_ASSIGN(auto run,
                   patiently([&] { return store_.find_run_by_key(spec.idempotency_key); }));
      if (run) {
        result.run_id = run->run_id;
        result.summary = run->summary;
        if (result.error.empty()) result.error = run->error;
      }
      switch (job->state) {
        case store::JobState::kSucceeded:
          result.state = runtime::ChildState::kSucceeded;
          break;
        case store::JobState::kCancelled:
          result.state = runtime::ChildState::kCancelled;
          break;
        default:
          result.state = run && run->state == store::RunState::kCheckFailed
                             ? runtime::ChildState::kCheckFailed
                             : runtime::ChildState::kFailed;
      }
      return result;
    }
    // Wait a poll, looking at the cancel flag meanwhile.
    if (!runtime::sleep_unless_cancelled(poll_, cancel)) {
      if (abandon_children_ && abandon_children_()) {
        if (auto st = queue_.cancel(enqueued.id); !st) {
          log::warn("cancelling a workflow task's job failed",
                    {{"job_id", enqueued.id}, {"error", st.error().to_string()}});
        }
      }
      result.state = runtime::ChildState::kCancelled;
      return result;
    }
  }
}

}  // namespace dbops::agent
