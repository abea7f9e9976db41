#include "runtime/local_launcher.hpp"

#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "runtime/runner.hpp"
#include "store/queue.hpp"

namespace dbops::runtime {
namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

double random01() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng);
}

// Raises `out` when `parent` is raised or `timeout` (if any) passes, until
// the watcher is destroyed.
class Watcher {
 public:
  Watcher(const std::atomic<bool>& parent, std::chrono::milliseconds timeout,
          std::atomic<bool>& out)
      : thread_([this, &parent, timeout, &out] {
          const auto deadline =
              timeout.count() > 0 ? SteadyClock::now() + timeout : SteadyClock::time_point::max();
          std::unique_lock lock(mu_);
          while (!done_) {
            if (parent.load()) {
              out = true;
              return;
            }
            if (SteadyClock::now() >= deadline) {
              timed_out_ = true;
              out = true;
              return;
            }
            cv_.wait_for(lock, 50ms);
          }
        }) {}
  ~Watcher() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  bool timed_out() {
    std::lock_guard lock(mu_);
    return timed_out_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool timed_out_ = false;
  std::thread thread_;
};

// Sleeps `delay`, or less when `cancel` is raised; false when it was.
bool wait_or_cancel(std::chrono::milliseconds delay, const std::atomic<bool>& cancel) {
  const auto until = SteadyClock::now() + delay;
  while (SteadyClock::now() < until) {
    if (cancel.load()) return false;
    std::this_thread::sleep_for(std::min<SteadyClock::duration>(50ms, until - SteadyClock::now()));
  }
  return !cancel.load();
}

}  // namespace

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
      Watcher watcher(cancel, child.timeout, stop);
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
      const auto delay = store::retry_delay(store::RetryPolicy{}, attempt, random01());
      if (!wait_or_cancel(delay, cancel)) {
        result.state = ChildState::kCancelled;
        return result;
      }
    }
  }
  return result;
}

}  // namespace dbops::runtime
