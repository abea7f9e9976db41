// The clock seam: wall time, monotonic time and sleeping behind one interface,
// so that schedules, retries, leases and timeouts are tested with a FakeClock.
#pragma once

#include <chrono>
#include <mutex>

namespace dbops {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (UTC instants).
  virtual std::chrono::system_clock::time_point now() const = 0;
  // Monotonic time for durations and deadlines.
  virtual std::chrono::steady_clock::time_point steady_now() const = 0;
  virtual void sleep_for(std::chrono::nanoseconds duration) = 0;
};

// The process's real clock.
Clock& real_clock();

// Seconds elapsed on the monotonic clock since `start`.
double seconds_since(std::chrono::steady_clock::time_point start);

// A clock that only moves when told to; sleep_for advances it instantly.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(
      std::chrono::system_clock::time_point start = std::chrono::system_clock::time_point{
          std::chrono::seconds{1'800'000'000}});
  std::chrono::system_clock::time_point now() const override;
  std::chrono::steady_clock::time_point steady_now() const override;
  void sleep_for(std::chrono::nanoseconds duration) override;
  void advance(std::chrono::nanoseconds duration);
  // Total time spent in sleep_for so far.
  std::chrono::nanoseconds slept() const;

 private:
  mutable std::mutex mu_;
  std::chrono::system_clock::time_point wall_;
  std::chrono::steady_clock::time_point mono_;
  std::chrono::nanoseconds slept_{0};
};

}  // namespace dbops
