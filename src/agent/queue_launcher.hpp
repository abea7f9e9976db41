// Child jobs through the queue: what a workflow run in the agent uses.
//
// A child is enqueued under its idempotency key (so a run that is tried
// again finds the job its earlier attempt enqueued) and followed until it
// ends; any agent's workers may run it. When the caller's cancel flag is
// raised, the child job is cancelled only if `abandon_children` says so (the
// run itself was cancelled or timed out); when the run merely lost its lease
// or the agent shuts down, the children go on and the run's next attempt
// waits for them. A store that fails transiently while a child is followed
// is waited out (the child goes on meanwhile); only a cancel ends the wait.
#pragma once

#include <chrono>
#include <functional>

#include "runtime/job.hpp"
#include "store/queue.hpp"
#include "store/store.hpp"

namespace dbops::agent {

class QueueLauncher final : public runtime::JobLauncher {
 public:
  // Everything passed must outlive the launcher. `poll`: how often a child's
  // job is looked at.
  QueueLauncher(store::JobQueue& queue, store::Store& store, const runtime::JobKindRegistry& kinds,
                std::chrono::milliseconds poll, std::function<bool()> abandon_children);

  Result<runtime::ChildResult> run(const runtime::ChildJob& child,
                                   const std::atomic<bool>& cancel) override;

 private:
  store::JobQueue& queue_;
  store::Store& store_;
  const runtime::JobKindRegistry& kinds_;
  std::chrono::milliseconds poll_;
  std::function<bool()> abandon_children_;
};

}  // namespace dbops::agent
