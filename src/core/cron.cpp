#include "core/cron.hpp"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <span>
#include <utility>

#include "core/strings.hpp"

namespace dbops::cron {
namespace {

using std::int64_t;

constexpr int64_t kMinutesPerDay = 24 * 60;
constexpr int64_t kHorizonSeconds =
    std::chrono::duration_cast<std::chrono::seconds>(Schedule::kSearchHorizon).count();
// Safety nets for the search loops. next_local_match() needs about two steps
// per day of the horizon, a zone has a handful of transitions per year, and a
// fixed-time job only skips candidates inside a repeated interval.
constexpr int kMaxMatchSteps = 1 << 16;
constexpr int kMaxSegments = 1 << 12;
constexpr int kMaxCandidates = 1 << 16;
// Bounds for "no transition" (UTC); far from overflow when offsets are added.
constexpr int64_t kFarPast = std::numeric_limits<int64_t>::min() / 4;
constexpr int64_t kFarFuture = std::numeric_limits<int64_t>::max() / 4;

constexpr int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
constexpr int64_t ceil_div(int64_t a, int64_t b) {
  return -floor_div(-a, b);
}

// ---------------------------------------------------------------------------
// Parsing

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> kWeekdayNames = {"sun", "mon", "tue", "wed",
                                                           "thu", "fri", "sat"};

struct FieldSpec {
  std::string_view name;
  int min;
  int max;       // largest value accepted
  int star_max;  // end of `*` and of `a/n` (6 for day-of-week: 7 is Sunday again)
  std::span<const std::string_view> names;  // names[i] means min + i
  std::string_view expected;                // for "invalid value" messages
};

constexpr std::array<FieldSpec, 5> kFields = {{
    {"minute", 0, 59, 59, {}, "0-59"},
    {"hour", 0, 23, 23, {}, "0-23"},
    {"day-of-month", 1, 31, 31, {}, "1-31"},
    {"month", 1, 12, 12, kMonthNames, "1-12 or jan-dec"},
    {"day-of-week", 0, 7, 6, kWeekdayNames, "0-7 or sun-sat"},
}};

// `text` between double quotes, with control and non-ASCII bytes as \xNN so
// that error messages stay printable whatever the input.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", u);
        out += buf;
      }
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string describe_char(char c) {
  std::string q = quote(std::string_view(&c, 1));
  q.front() = '\'';
  q.back() = '\'';
  return q;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Errors inside a field carry only the field-relative part; parse() adds
// `cron "<expr>": <field> field: ` in front.
using FieldResult = std::expected<int, std::string>;

// A number or a name. `element` is the list element being parsed, for context.
FieldResult parse_value(std::string_view token, std::string_view element, const FieldSpec& spec) {
  if (token.empty()) return std::unexpected("missing value in " + quote(element));
  for (const char c : token) {
    if (!is_digit(c) && !is_alpha(c)) {
      return std::unexpected("unexpected character " + describe_char(c) + " in " + quote(element));
    }
  }
  if (std::all_of(token.begin(), token.end(), is_digit)) {
    // Saturate instead of overflowing: anything past 9999 is out of range anyway.
    int value = 0;
    for (const char c : token) value = std::min(value * 10 + (c - '0'), 10000);
    if (value < spec.min || value > spec.max) {
      return std::unexpected(std::string(token) + " is out of range " + std::to_string(spec.min) +
                             "-" + std::to_string(spec.max));
    }
    return value;
  }
  const std::string lower = to_lower(token);
  for (std::size_t i = 0; i < spec.names.size(); ++i) {
    if (lower == spec.names[i]) return spec.min + static_cast<int>(i);
  }
  return std::unexpected("invalid value " + quote(token) + " (expected " +
                         std::string(spec.expected) + ")");
}

// Sets the bits of one list element ("*", "5", "1-5", "*/15", "1-30/2", "5/10").
std::expected<void, std::string> parse_element(std::string_view element, const FieldSpec& spec,
                                               std::uint64_t& bits) {
  const std::size_t slash = element.find('/');
  const std::string_view base = element.substr(0, slash);
  int low = 0;
  int high = 0;
  if (base == "*") {
    low = spec.min;
    high = spec.star_max;
  } else if (base.empty()) {
    return std::unexpected("missing value in " + quote(element));
  } else {
    const std::size_t dash = base.find('-');
    auto first = parse_value(base.substr(0, dash), element, spec);
    if (!first) return std::unexpected(std::move(first).error());
    low = *first;
    if (dash == std::string_view::npos) {
      // "a/n" means "a-max/n"; a plain "a" is just a.
      high = slash == std::string_view::npos ? low : std::max(low, spec.star_max);
    } else {
      auto second = parse_value(base.substr(dash + 1), element, spec);
      if (!second) return std::unexpected(std::move(second).error());
      high = *second;
      if (low > high) {
        std::string message = "range " + quote(base) + " is reversed";
        if (spec.max == 7 && high == 0) message += " (sunday is 7 at the end of a range)";
        return std::unexpected(std::move(message));
      }
    }
  }
  int step = 1;
  if (slash != std::string_view::npos) {
    const std::string_view step_text = element.substr(slash + 1);
    if (step_text.empty()) return std::unexpected("missing step in " + quote(element));
    const int max_step = spec.star_max - spec.min + 1;
    int value = 0;
    for (const char c : step_text) {
      if (!is_digit(c)) {
        return std::unexpected("unexpected character " + describe_char(c) + " in step of " +
                               quote(element));
      }
      value = std::min(value * 10 + (c - '0'), 10000);
    }
    if (value < 1 || value > max_step) {
      return std::unexpected("step " + std::string(step_text) + " in " + quote(element) +
                             " is out of range 1-" + std::to_string(max_step));
    }
    step = value;
  }
  // low >= min >= 0, high <= 7 or 59, step >= 1: at most 60 iterations.
  for (int v = low; v <= high; v += step) {
    bits |= std::uint64_t{1} << (spec.max == 7 && v == 7 ? 0 : v);
  }
  return {};
}

std::expected<std::uint64_t, std::string> parse_field(std::string_view text,
                                                      const FieldSpec& spec) {
  std::uint64_t bits = 0;
  const std::vector<std::string> elements = split(text, ',');
  for (const std::string& element : elements) {
    if (element.empty()) return std::unexpected("empty list element in " + quote(text));
    auto status = parse_element(element, spec, bits);
    if (!status) return std::unexpected(std::move(status).error());
  }
  return bits;
}

// Splits on runs of spaces and tabs.
std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t') ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::optional<std::string_view> expand_macro(std::string_view macro) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kMacros = {{
      {"@hourly", "0 * * * *"},
      {"@daily", "0 0 * * *"},
      {"@midnight", "0 0 * * *"},
      {"@weekly", "0 0 * * 0"},
      {"@monthly", "0 0 1 * *"},
      {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"},
  }};
  const std::string lower = to_lower(macro);
  for (const auto& [name, fields] : kMacros) {
    if (lower == name) return fields;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Time zones

const date::time_zone* as_zone(const void* zone) {
  return static_cast<const date::time_zone*>(zone);
}

// The stretch of time around an instant during which the UTC offset is
// constant: instants in [begin, end) have local time = instant + offset.
struct Segment {
  int64_t begin;
  int64_t end;
  int64_t offset;
};

Segment segment_at(const void* zone, int64_t instant) {
  if (zone == nullptr) return {kFarPast, kFarFuture, 0};
  const date::sys_info info =
      as_zone(zone)->get_info(date::sys_seconds{std::chrono::seconds{instant}});
  return {info.begin.time_since_epoch().count(), info.end.time_since_epoch().count(),
          info.offset.count()};
}

// The instant a fixed-time job scheduled at local wall time `local` (seconds)
// fires: the time itself when it exists once, its first occurrence when it is
// repeated, and the end of the gap when it is skipped.
int64_t resolve_fixed(const void* zone, int64_t local) {
  if (zone == nullptr) return local;
  const date::local_info info =
      as_zone(zone)->get_info(date::local_seconds{std::chrono::seconds{local}});
  if (info.result == date::local_info::nonexistent) {
    return info.second.begin.time_since_epoch().count();
  }
  return local - info.first.offset.count();  // unique, or the first of two
}

// Letter counts of a zone name, case-insensitive; everything else in bin 26.
using Histogram = std::array<std::uint8_t, 27>;

Histogram histogram(std::string_view text) {
  Histogram h{};
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(c)));
    auto& bin = h[u >= 'a' && u <= 'z' ? u - 'a' : 26];
    if (bin < 255) ++bin;
  }
  return h;
}

// The zone name closest to a misspelt one, if any is close enough.
std::optional<std::string> suggest_zone(std::string_view name) {
  // IANA names are at most 32 characters; longer input is not a typo of one.
  constexpr std::size_t kMaxName = 40;
  if (name.size() > kMaxName) return std::nullopt;
  struct Known {
    std::string name;
    Histogram letters;
  };
  static const std::vector<Known> kZones = [] {
    std::vector<Known> zones;
    for (const auto& zone : date::get_tzdb().zones) {
      zones.push_back({std::string(zone.name()), histogram(zone.name())});
    }
    return zones;
  }();
  // did_you_mean() computes edit distances, too slow to run on ~600 names for
  // every typo. An edit changes the letter counts by at most 2 in total, which
  // bounds the distance from below and discards nearly all names cheaply.
  const Histogram wanted = histogram(name);
  const std::size_t limit = std::max<std::size_t>(2, name.size() / 3);  // as did_you_mean()
  std::vector<std::string> candidates;
  for (const Known& zone : kZones) {
    std::size_t l1 = 0;
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      l1 += static_cast<std::size_t>(std::abs(int{wanted[i]} - int{zone.letters[i]}));
    }
    if ((l1 + 1) / 2 <= limit) candidates.push_back(zone.name);
  }
  return did_you_mean(name, candidates);
}

Result<const void*> find_zone(std::string_view name, std::string_view context) {
  if (name.empty()) {
    return fail(ErrorCode::kInvalidArgument, std::string(context) + "time zone is empty");
  }
  if (name == "UTC") return nullptr;
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(name);
  } catch (const std::exception&) {
    Error error;
    error.code = ErrorCode::kInvalidArgument;
    error.message = std::string(context) + "unknown time zone " + quote(name);
    std::optional<std::string> suggestion;
    try {
      suggestion = suggest_zone(name);
    } catch (const std::exception&) {
      // No suggestion then.
    }
    error.hint = suggestion ? "Did you mean \"" + *suggestion + "\"?"
                            : "Use an IANA time zone name such as \"Europe/Paris\" or \"UTC\".";
    return fail(std::move(error));
  }
  try {
    // Loads the zone file now, so that a broken one is a parse error and
    // next_after() does not meet it.
    (void)zone->get_info(date::sys_seconds{});
  } catch (const std::exception& e) {
    return fail(ErrorCode::kInvalidArgument,
                std::string(context) + "time zone " + quote(name) + ": " + e.what());
  }
  return static_cast<const void*>(zone);
}

}  // namespace

Result<Schedule> Schedule::parse(std::string_view expr, std::string_view time_zone) {
  const std::string_view text = trim(expr);
  const std::string context = "cron " + quote(text) + ": ";
  if (text.empty()) return fail(ErrorCode::kInvalidArgument, context + "expression is empty");

  std::vector<std::string_view> fields = split_fields(text);
  if (text.front() == '@') {
    const auto expansion = expand_macro(fields.front());
    if (!expansion) {
      return fail(ErrorCode::kInvalidArgument,
                  context + "unknown macro " + quote(fields.front()) +
                      " (expected @hourly, @daily, @midnight, @weekly, @monthly, @yearly or "
                      "@annually)");
    }
    if (fields.size() != 1) {
      return fail(ErrorCode::kInvalidArgument,
                  context + "unexpected " + quote(fields[1]) + " after " + quote(fields.front()));
    }
    fields = split_fields(*expansion);
  }
  if (fields.size() != kFields.size()) {
    return fail(ErrorCode::kInvalidArgument,
                context + "expected 5 fields (minute hour day-of-month month day-of-week), got " +
                    std::to_string(fields.size()));
  }

  std::array<std::uint64_t, 5> bits{};
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    auto parsed = parse_field(fields[i], kFields[i]);
    if (!parsed) {
      return fail(ErrorCode::kInvalidArgument,
                  context + std::string(kFields[i].name) + " field: " + parsed.error());
    }
    bits[i] = *parsed;
  }

  DBOPS_ASSIGN(const void* zone, find_zone(time_zone, context));

  Schedule schedule;
  schedule.expression_ = std::string(text);
  schedule.time_zone_ = std::string(time_zone);
  schedule.zone_ = zone;
  schedule.minutes_ = bits[0];
  schedule.hours_ = static_cast<std::uint32_t>(bits[1]);
  schedule.days_of_month_ = static_cast<std::uint32_t>(bits[2]);
  schedule.months_ = static_cast<std::uint32_t>(bits[3]);
  schedule.days_of_week_ = static_cast<std::uint32_t>(bits[4]);
  schedule.day_or_ = fields[2].front() != '*' && fields[4].front() != '*';
  schedule.fixed_time_ = fields[0].front() != '*' && fields[1].front() != '*';
  return schedule;
}

bool Schedule::day_matches(unsigned day_of_month, unsigned day_of_week) const {
  const bool dom = (days_of_month_ >> day_of_month) & 1;
  const bool dow = (days_of_week_ >> day_of_week) & 1;
  return day_or_ ? (dom || dow) : (dom && dow);
}

std::optional<int64_t> Schedule::next_local_match(int64_t from, int64_t to) const {
  int64_t t = from;
  for (int step = 0; step < kMaxMatchSteps && t <= to; ++step) {
    const int64_t day = floor_div(t, kMinutesPerDay);
    const auto minute_of_day = static_cast<int>(t - day * kMinutesPerDay);
    const std::chrono::sys_days date{std::chrono::days{day}};
    const std::chrono::year_month_day ymd{date};
    if (!((months_ >> static_cast<unsigned>(ymd.month())) & 1)) {
      const auto next_month =
          std::chrono::year_month_day{ymd.year() / ymd.month() / 1} + std::chrono::months{1};
      t = std::chrono::sys_days{next_month}.time_since_epoch().count() * kMinutesPerDay;
      continue;
    }
    if (!day_matches(static_cast<unsigned>(ymd.day()), std::chrono::weekday{date}.c_encoding())) {
      t = (day + 1) * kMinutesPerDay;
      continue;
    }
    const int hour = minute_of_day / 60;
    const int minute = minute_of_day % 60;
    if (!((hours_ >> hour) & 1)) {
      const std::uint32_t later = hours_ & ~((std::uint32_t{2} << hour) - 1);
      t = later != 0 ? day * kMinutesPerDay + std::countr_zero(later) * 60
                     : (day + 1) * kMinutesPerDay;
      continue;
    }
    if (!((minutes_ >> minute) & 1)) {
      const std::uint64_t later = minutes_ & ~((std::uint64_t{2} << minute) - 1);
      t = day * kMinutesPerDay + hour * 60 + (later != 0 ? std::countr_zero(later) : 60);
      continue;
    }
    return t;
  }
  return std::nullopt;
}

std::optional<int64_t> Schedule::next_fixed(int64_t after, int64_t limit) const {
  // resolve_fixed() is non-decreasing in local time, and every local time up
  // to the wall time of `after` resolves to `after` or earlier: start just
  // past it and skip candidates that resolve too early (a repeated interval).
  const int64_t local_after = after + segment_at(zone_, after).offset;
  int64_t from = floor_div(local_after, 60) + 1;
  const int64_t to = floor_div(local_after + (limit - after), 60);
  for (int candidate = 0; candidate < kMaxCandidates; ++candidate) {
    const auto local = next_local_match(from, to);
    if (!local) return std::nullopt;
    const int64_t instant = resolve_fixed(zone_, *local * 60);
    if (instant > after) return instant;
    from = *local + 1;
  }
  return std::nullopt;
}

std::optional<int64_t> Schedule::next_wildcard(int64_t after, int64_t limit) const {
  // Walk the stretches of constant UTC offset; inside one, local time and
  // instants map one to one, so the first matching local minute is the answer.
  int64_t t = after;
  for (int segment = 0; segment < kMaxSegments && t <= limit; ++segment) {
    const Segment seg = segment_at(zone_, t);
    const int64_t local = t + seg.offset;
    // First segment: instants > after; later ones: instants >= their start.
    const int64_t from = segment == 0 ? floor_div(local, 60) + 1 : ceil_div(local, 60);
    const int64_t to =
        std::min(ceil_div(seg.end + seg.offset, 60) - 1, floor_div(limit + seg.offset, 60));
    if (from <= to) {
      if (const auto match = next_local_match(from, to)) return *match * 60 - seg.offset;
    }
    if (seg.end <= t) return std::nullopt;  // cannot happen; never loop in place
    t = seg.end;
  }
  return std::nullopt;
}

std::optional<Schedule::TimePoint> Schedule::next_after(TimePoint after) const {
  const int64_t start = std::chrono::floor<std::chrono::seconds>(after).time_since_epoch().count();
  const int64_t max_seconds =
      std::chrono::floor<std::chrono::seconds>(TimePoint::max()).time_since_epoch().count();
  std::optional<int64_t> found;
  try {
    const int64_t limit = start + kHorizonSeconds;
    found = fixed_time_ ? next_fixed(start, limit) : next_wildcard(start, limit);
  } catch (const std::exception&) {
    // The zone was loaded by parse(); the library has nothing left to throw
    // about, but no exception leaves this module.
    return std::nullopt;
  }
  if (!found || *found > max_seconds) return std::nullopt;
  return TimePoint{std::chrono::seconds{*found}};
}

std::vector<Schedule::TimePoint> Schedule::next_n(TimePoint after, std::size_t n) const {
  std::vector<TimePoint> out;
  out.reserve(std::min<std::size_t>(n, 256));
  for (std::size_t i = 0; i < n; ++i) {
    const auto next = next_after(after);
    if (!next) break;
    out.push_back(*next);
    after = *next;
  }
  return out;
}

}  // namespace dbops::cron
