// The in-process runner: runs one JobSpec through its JobKind, recording the
// run and its events in the store. The CLI calls it directly; the agent's
// queue workers call it for each claimed job.
#pragma once

#include <atomic>
#include <optional>

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "notify/notifier.hpp"
#include "runtime/job.hpp"
#include "store/store.hpp"

namespace dbops::runtime {

struct RunReport {
  store::RunRecord run;
  std::vector<store::EventRecord> events;
  // true when the idempotency key had already succeeded and nothing ran.
  bool reused = false;
  // The code of the job's error when it failed (for the process exit code).
  std::optional<ErrorCode> error_code;
};

struct RunnerOptions {
  // Where failure events go; may be null.
  notify::Dispatcher* dispatcher = nullptr;
  // Checked by jobs between steps and by the subprocess layer.
  const std::atomic<bool>* cancel = nullptr;
  // Receives the jobs' progress reports; may be empty.
  ProgressSink progress;
  // Where jobs start their child jobs (workflows); may be null.
  JobLauncher* launcher = nullptr;
};

class Runner {
 public:
  Runner(JobKindRegistry& kinds, const config::Config& config, store::Store& store, Clock& clock,
         RunnerOptions options = {});

  // Runs the spec to its end. An error means the run could not start (unknown
  // kind or target, bad parameters, store failure); a job that started and
  // failed comes back as a report with state failed or check_failed.
  Result<RunReport> run(const JobSpec& spec);

 private:
  JobKindRegistry& kinds_;
  const config::Config& config_;
  store::Store& store_;
  Clock& clock_;
  RunnerOptions options_;
};

}  // namespace dbops::runtime
