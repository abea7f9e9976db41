// Child jobs run in-process, by the Runner, on the calling thread: what
// `dbops workflow run` uses.
//
// Each attempt is one run recorded in the store under the child's
// idempotency key; a key whose run already succeeded is not run again (the
// Runner's rule), so running a workflow again with the same key resumes it.
// A transient failure (runtime::transient) is retried after a backoff, up to
// the child's max_attempts; an attempt over the child's timeout is stopped
// through its cancel flag (the subprocess layer stops its process group) and
// counts as transient. When the caller's cancel flag is raised, the running
// attempt is stopped the same way and the child ends kCancelled.
#pragma once

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "runtime/job.hpp"
#include "store/store.hpp"

namespace dbops::notify {
class Dispatcher;
}

namespace dbops::runtime {

class LocalLauncher final : public JobLauncher {
 public:
  // Everything passed must outlive the launcher; `dispatcher` may be null.
  LocalLauncher(JobKindRegistry& kinds, const config::Config& config, store::Store& store,
                Clock& clock, notify::Dispatcher* dispatcher);

  Result<ChildResult> run(const ChildJob& child, const std::atomic<bool>& cancel) override;

 private:
  JobKindRegistry& kinds_;
  const config::Config& config_;
  store::Store& store_;
  Clock& clock_;
  notify::Dispatcher* dispatcher_;
};

}  // namespace dbops::runtime
