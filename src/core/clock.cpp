#include "core/clock.hpp"

#include <thread>

namespace dbops {
namespace {
class RealClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::now();
  }
  std::chrono::steady_clock::time_point steady_now() const override {
    return std::chrono::steady_clock::now();
  }
  void sleep_for(std::chrono::nanoseconds duration) override {
    std::this_thread::sleep_for(duration);
  }
};
}  // namespace

Clock& real_clock() {
  static RealClock clock;
  return clock;
}

FakeClock::FakeClock(std::chrono::system_clock::time_point start)
    : wall_(start), mono_(std::chrono::steady_clock::time_point{std::chrono::hours{1}}) {}

std::chrono::system_clock::time_point FakeClock::now() const {
  std::lock_guard lock(mu_);
  return wall_;
}
std::chrono::steady_clock::time_point FakeClock::steady_now() const {
  std::lock_guard lock(mu_);
  return mono_;
}
void FakeClock::sleep_for(std::chrono::nanoseconds duration) {
  std::lock_guard lock(mu_);
  if (duration.count() < 0) return;
  wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(duration);
  mono_ += duration;
  slept_ += duration;
}
void FakeClock::advance(std::chrono::nanoseconds duration) {
  std::lock_guard lock(mu_);
  wall_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(duration);
  mono_ += duration;
}
std::chrono::nanoseconds FakeClock::slept() const {
  std::lock_guard lock(mu_);
  return slept_;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace dbops
