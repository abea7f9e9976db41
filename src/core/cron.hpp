// Cron schedules: parsing Vixie-cron expressions and computing fire times in a
// time zone, with the daylight-saving rules of Debian's cron(8).
//
// Grammar (5 fields separated by spaces or tabs):
//
//   minute        0-59
//   hour          0-23
//   day-of-month  1-31
//   month         1-12 or jan-dec
//   day-of-week   0-7 or sun-sat (0 and 7 are both Sunday)
//
// Each field is a comma-separated list of elements; an element is `*`, a value
// `a`, a range `a-b`, or one of those followed by a step: `*/n`, `a-b/n`, `a/n`
// (`a/n` means `a-max/n`). Month and weekday names are three-letter English
// abbreviations, case-insensitive, and may appear in ranges (`mon-fri`). A step
// is between 1 and the size of the field (60 for minutes, 7 for weekdays, ...).
// Instead of the 5 fields an expression may be one of the macros @hourly,
// @daily (= @midnight), @weekly, @monthly, @yearly (= @annually).
//
// Day matching follows Vixie cron: when both day-of-month and day-of-week are
// restricted (neither field starts with '*'), a day matches if EITHER matches,
// so "0 0 1 * mon" fires on the 1st and on every Monday; otherwise both must
// match, so "0 0 */2 * mon" fires on Mondays with an odd day of month.
//
// Daylight saving (Debian cron(8)): fire times are computed on local wall
// time in the schedule's time zone, and
//   - a fixed-time job (fixed_time() is true) whose local time is skipped by a
//     forward change fires at the instant of the change (the first valid local
//     time after the gap), once, and a fixed-time job whose local time is
//     repeated by a backward change fires only at the first occurrence;
//   - a wildcard job fires at every real instant whose local wall time matches:
//     times inside a gap never happen, times inside a repeated interval happen
//     twice and fire twice.
// Time zones come from the OS tz database (/usr/share/zoneinfo) through Howard
// Hinnant's date library, which reads the transitions listed in the zone files
// but not the POSIX rule at their end: with Debian's files, the last modelled
// transition is in 2037 and later years keep the offset in force then.
//
// All fire times are whole seconds (whole minutes of local time); a Schedule is
// immutable, cheap to copy and safe to share between threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dbops::cron {

class Schedule {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // How far next_after() looks ahead before giving up: five years, so that
  // "0 0 29 2 *" (Feb 29) is always found except across 2100.
  static constexpr std::chrono::days kSearchHorizon{5 * 366};

  // Parses a cron expression evaluated in the IANA time zone `time_zone`
  // ("Europe/Paris", "UTC", ...). Leading and trailing white space of `expr`
  // is ignored. Fails with kInvalidArgument and a message naming the field,
  // e.g. `cron "61 * * * *": minute field: 61 is out of range 0-59`, or
  // `cron "0 2 * * *": unknown time zone "Europe/Pariss"` (with a hint).
  static Result<Schedule> parse(std::string_view expr, std::string_view time_zone = "UTC");

  // The first fire time strictly after `after`, or nullopt when there is none
  // within kSearchHorizon (e.g. "0 0 30 2 *" never fires) or it would not be
  // representable as a system_clock time point.
  std::optional<TimePoint> next_after(TimePoint after) const;

  // The next `n` fire times strictly after `after`, in increasing order; fewer
  // when next_after() runs out.
  std::vector<TimePoint> next_n(TimePoint after, std::size_t n) const;

  // The expression as given to parse() (trimmed), and the time zone name.
  const std::string& expression() const { return expression_; }
  const std::string& time_zone() const { return time_zone_; }

  // True for jobs "that run at a particular time" in cron(8)'s words: neither
  // the minute nor the hour field starts with '*' (so not @hourly). Decides
  // the daylight-saving behaviour described at the top of this file.
  bool fixed_time() const { return fixed_time_; }

 private:
  Schedule() = default;

  // The first fire time > after (Unix seconds) for each DST policy.
  std::optional<std::int64_t> next_fixed(std::int64_t after, std::int64_t limit) const;
  std::optional<std::int64_t> next_wildcard(std::int64_t after, std::int64_t limit) const;
  // The first local wall time (minutes since 1970-01-01 00:00 local) in
  // [from, to] that matches the fields.
  std::optional<std::int64_t> next_local_match(std::int64_t from, std::int64_t to) const;
  bool day_matches(unsigned day_of_month, unsigned day_of_week) const;

  std::string expression_;
  std::string time_zone_;
  // The date::time_zone (owned by the library's tz database, which lives
  // until exit), or nullptr for UTC. Opaque here to keep <date/tz.h> out.
  const void* zone_ = nullptr;
  std::uint64_t minutes_ = 0;        // bit m set: minute m matches
  std::uint32_t hours_ = 0;          // bits 0-23
  std::uint32_t days_of_month_ = 0;  // bits 1-31
  std::uint32_t months_ = 0;         // bits 1-12
  std::uint32_t days_of_week_ = 0;   // bits 0-6, 0 = Sunday
  bool day_or_ = false;              // both day fields restricted: either matches
  bool fixed_time_ = false;
};

}  // namespace dbops::cron
