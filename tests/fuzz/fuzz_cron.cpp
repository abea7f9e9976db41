// libFuzzer harness for cron::Schedule.
//
// Input: the first line is the cron expression, an optional second line the
// time zone (UTC when missing or empty). Parsing must never crash or hang, and
// a schedule that parses must produce fire times that are strictly after the
// reference time and strictly increasing, at several reference times including
// the edges of the clock's range and the 2026 daylight-saving changes.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/cron.hpp"

namespace {

using TimePoint = std::chrono::system_clock::time_point;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

std::string_view first_line(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

void check_times(const dbops::cron::Schedule& schedule, TimePoint after) {
  const auto times = schedule.next_n(after, 4);
  check(times.size() <= 4);
  TimePoint previous = after;
  for (const TimePoint t : times) {
    check(t > previous);
    previous = t;
  }
  const auto first = schedule.next_after(after);
  check(first.has_value() == !times.empty());
  if (first) check(*first == times.front());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1024) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string_view expr = first_line(input);
  std::string_view time_zone = "UTC";
  if (const std::size_t newline = input.find('\n'); newline != std::string_view::npos) {
    const std::string_view second = first_line(input.substr(newline + 1));
    if (!second.empty()) time_zone = second;
  }

  auto schedule = dbops::cron::Schedule::parse(expr, time_zone);
  if (!schedule) {
    check(!schedule.error().message.empty());
    check(schedule.error().code == dbops::ErrorCode::kInvalidArgument);
    return 0;
  }

  // The stored expression and zone parse again into the same schedule.
  auto again = dbops::cron::Schedule::parse(schedule->expression(), schedule->time_zone());
  check(again.has_value());
  check(again->fixed_time() == schedule->fixed_time());

  // A reference time derived from the input, anywhere in 1970-2169.
  std::uint64_t hash = 1469598103934665603ull;
  for (const unsigned char c : input) hash = (hash ^ c) * 1099511628211ull;
  const std::int64_t derived = static_cast<std::int64_t>(hash % (200ull * 366 * 86400));

  const TimePoint references[] = {
      TimePoint{std::chrono::seconds{derived}},
      TimePoint{std::chrono::seconds{1774699200}},  // 2026-03-28T12:00:00Z
      TimePoint{std::chrono::seconds{1792843200}},  // 2026-10-24T12:00:00Z
      TimePoint{std::chrono::seconds{-1}},
      TimePoint::min(),
      TimePoint::max() - std::chrono::hours{24},
      TimePoint::max(),
  };
  for (const TimePoint after : references) check_times(*schedule, after);
  if (const auto next = again->next_after(references[0])) {
    check(next == schedule->next_after(references[0]));
  }
  return 0;
}
