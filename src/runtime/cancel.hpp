// Waiting with a cancel flag: what the job launchers and the command line
// share to stop a job that ran out of time or was cancelled (the subprocess
// layer and the job kinds watch the flag).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace dbops::runtime {

// Sleeps `duration`, or less once `cancel` is raised; false when it was.
bool sleep_unless_cancelled(std::chrono::milliseconds duration, const std::atomic<bool>& cancel);

// Raises `flag` once `timeout` has passed (zero: never) or `parent` (when
// given) is raised, until it is destroyed.
class CancelTimer {
 public:
  CancelTimer(std::chrono::milliseconds timeout, std::atomic<bool>& flag,
              const std::atomic<bool>* parent = nullptr);
  ~CancelTimer();
  CancelTimer(const CancelTimer&) = delete;
  CancelTimer& operator=(const CancelTimer&) = delete;

  // Whether it was the timeout that raised the flag.
  bool timed_out() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool timed_out_ = false;
  std::thread thread_;
};

}  // namespace dbops::runtime
