#include "runtime/cancel.hpp"

namespace dbops::runtime {
namespace {

using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A flag without a notification is looked at this often.
constexpr auto kFlagPoll = 10ms;

}  // namespace

bool sleep_unless_cancelled(std::chrono::milliseconds duration, const std::atomic<bool>& cancel) {
  const auto until = SteadyClock::now() + duration;
  while (!cancel.load()) {
    const auto now = SteadyClock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<SteadyClock::duration>(kFlagPoll, until - now));
  }
  return false;
}

CancelTimer::CancelTimer(std::chrono::milliseconds timeout, std::atomic<bool>& flag,
                         const std::atomic<bool>* parent) {
  if (timeout.count() <= 0 && !parent) return;
  thread_ = std::thread([this, timeout, &flag, parent] {
    const auto deadline =
        timeout.count() > 0 ? SteadyClock::now() + timeout : SteadyClock::time_point::max();
    std::unique_lock lock(mu_);
    while (!done_) {
      if (parent && parent->load()) {
        flag = true;
        return;
      }
      if (SteadyClock::now() >= deadline) {
        timed_out_ = true;
        flag = true;
        return;
      }
      // Without a parent to look at, sleep until the deadline (or the end).
      if (parent) {
        cv_.wait_for(lock, kFlagPoll * 5);
      } else {
        cv_.wait_until(lock, deadline);
      }
    }
  });
}

CancelTimer::~CancelTimer() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool CancelTimer::timed_out() const {
  std::lock_guard lock(mu_);
  return timed_out_;
}

}  // namespace dbops::runtime
