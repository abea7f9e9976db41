// The agent's queue worker: claims due jobs from the store's queue and runs
// each through the in-process runner, on its own thread, while a heartbeat
// keeps its lease.
//
// - At most `concurrency` jobs run at once in this agent; the queue keeps
//   exclusive jobs (those whose kind changes its target) to one per target
//   across all agents.
// - A job runs with a cancel flag that is raised when its timeout passes, when
//   its lease is lost (a heartbeat is refused: the job was cancelled, or the
//   lease expired and another worker claimed it) and at shutdown; the
//   subprocess layer then stops the job's process group.
// - The run's idempotency key is the job's key (or "queue:<id>"), so that an
//   attempt whose run already succeeded (the worker died before it could
//   report) is not run again.
// - Outcome: succeeded -> succeed(); a failed check or a configuration error
//   -> failed (no retry); other failures (server unreachable, timeout, I/O)
//   -> retried with backoff until max_attempts, then dead. Dead jobs, also
//   those whose last lease expired, become a `job.dead` event.
// - Kinds that wait on children (workflow runs) are claimed into a pool of
//   their own (WorkerOptions::waiting_jobs) and start their children through
//   the queue (agent/queue_launcher.hpp).
// - stop(): no new claims; running jobs get `shutdown_grace` to finish, then
//   are cancelled and released back to the queue (their attempt not counted).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "core/result.hpp"
#include "store/queue.hpp"
#include "store/store.hpp"

namespace dbops::notify {
class Dispatcher;
}
namespace dbops::runtime {
class JobKindRegistry;
}

namespace dbops::agent {

struct WorkerOptions {
  std::string owner;  // this agent's member id (lease owner)
  std::size_t concurrency = 4;
  std::chrono::milliseconds lease{30'000};
  // How often an idle worker looks for due jobs (wake() shortens the wait).
  std::chrono::milliseconds poll{1'000};
  std::chrono::milliseconds shutdown_grace{30'000};
  // Jobs that spend their time waiting for other jobs (workflow runs) run
  // beside `concurrency`, up to this many, so that they never hold the slots
  // their own tasks need.
  std::size_t waiting_jobs = 16;
  // The store whose notifications (store::listen_for_jobs: state_listen) wake
  // the worker as soon as jobs are enqueued; while they do, polling goes on
  // no faster than once a second. nullopt: polling only.
  std::optional<config::StateConfig> listen;
};

struct WorkerStats {
  std::uint64_t claimed = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;    // failed, retrying or dead after an attempt
  std::uint64_t lost = 0;      // lease lost while running (not reported)
  std::uint64_t released = 0;  // given back at shutdown
};

class Worker {
 public:
  Worker(store::JobQueue& queue, runtime::JobKindRegistry& kinds, const config::Config& config,
         store::Store& store, Clock& clock, notify::Dispatcher* dispatcher, WorkerOptions options);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the claim loop on its own thread.
  void start();
  // See the top of this file; returns once every job thread has ended.
  void stop();
  // Look for due jobs now.
  void wake();

  // One claim round without the loop (tests): reaps expired leases, claims
  // what fits and starts the jobs; returns how many were claimed.
  Result<std::size_t> poll_once();
  // Waits until no job runs or the timeout passes; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);

  std::size_t running() const;
  WorkerStats stats() const;

 private:
  struct Running;
  void loop();
  // Listens for notifications (WorkerOptions::listen) until stop(),
  // connecting again when the connection breaks.
  void listen_loop();
  void run_job(Running& job);
  void reap();
  // A `job.dead` event in the store and to the notifiers.
  void record_dead(const store::QueuedJob& job, const std::string& run_id,
                   const std::string& message);
  void collect_finished();

  store::JobQueue& queue_;
  runtime::JobKindRegistry& kinds_;
  const config::Config& config_;
  store::Store& store_;
  Clock& clock_;
  notify::Dispatcher* dispatcher_;
  WorkerOptions options_;
  // The kinds it claims: those that wait on children (a pool of their own)
  // and the others; from the registry, once.
  std::vector<std::string> waiting_kinds_;
  std::vector<std::string> other_kinds_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<std::unique_ptr<Running>> running_;
  WorkerStats stats_;
  bool stopping_ = false;
  bool woken_ = false;
  std::chrono::milliseconds poll_;  // guarded by mu_; relaxed while listening
  std::thread loop_;
  std::thread listener_;
};

}  // namespace dbops::agent
