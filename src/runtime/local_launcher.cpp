#include "runtime/local_launcher.hpp"

#include "core/retry.hpp"
#include "runtime/cancel.hpp"
#include "runtime/runner.hpp"
#include "store/queue.hpp"

namespace dbops::runtime {

LocalLauncher::LocalLauncher(JobKindRegistry& kinds, const config::Config& config,
                             store::Store& store, Clock& clock, notify::Dispatcher* dispatcher)
    : kinds_(kinds), config_(config), store_(store), clock_(clock), dispatcher_(dispatcher) {}

Result<ChildResult> LocalLauncher::run(const ChildJob& child, const std::atomic<bool>& cancel) {
  ChildResult result;
  const int max_attempts = std::max(1, child.max_attempts);
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    if (cancel.load()) {
      result.state = ChildState::kCancelled;
      return result;
    }
    std::atomic<bool> stop{false};
    Result<RunReport> report = fail(ErrorCode::kInternal, "not run");
    bool timed_out = false;
    {
      CancelTimer watcher(child.timeout, stop, &cancel);
      Runner runner(kinds_, config_, store_, clock_,
                    RunnerOptions{.dispatcher = dispatcher_, .cancel = &stop, .launcher = this});
      report = runner.run(child.spec);
      timed_out = watcher.timed_out();
    }
    if (!report) {
      // It could not start (unknown kind or target, bad parameters, store).
      if (!transient(report.error().code)) return std::unexpected(std::move(report).error());
      result.error = report.error().to_string();
      result.state = ChildState::kFailed;
    } else {
      const store::RunRecord& run = report->run;
      result.run_id = run.run_id;
      result.summary = run.summary;
      result.error = run.error;
      if (!report->reused) result.attempts = attempt;
      if (run.state == store::RunState::kSucceeded) {
        result.state = ChildState::kSucceeded;
        return result;
      }
      if (cancel.load()) {
        result.state = ChildState::kCancelled;
        return result;
      }
      if (run.state == store::RunState::kCheckFailed) {
        result.state = ChildState::kCheckFailed;
        return result;
      }
      result.state = ChildState::kFailed;
      if (timed_out) {
        result.error =
            "timed out after " + std::to_string(child.timeout.count()) + " ms: " + result.error;
      } else if (!transient(report->error_code)) {
        return result;
      }
    }
    if (attempt < max_attempts) {
      const auto delay =
          store::retry_delay(store::RetryPolicy{}, attempt, default_rng().uniform01());
      if (!sleep_unless_cancelled(delay, cancel)) {
        result.state = ChildState::kCancelled;
        return result;
      }
    }
  }
  return result;
}

}  // namespace dbops::runtime
