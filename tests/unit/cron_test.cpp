// Tests for cron::Schedule. Expected fire times are UTC instants; the DST cases
// use the 2026 change days, checked against `zdump -v -c 2026,2027 <zone>`:
//   Europe/Paris         2026-03-29 01:00Z  02:00 CET  -> 03:00 CEST (gap 02:00-02:59)
//                        2026-10-25 01:00Z  03:00 CEST -> 02:00 CET  (02:00-02:59 twice)
//   America/New_York     2026-03-08 07:00Z  02:00 EST  -> 03:00 EDT  (gap 02:00-02:59)
//                        2026-11-01 06:00Z  02:00 EDT  -> 01:00 EST  (01:00-01:59 twice)
//   Australia/Lord_Howe  2026-04-04 15:00Z  02:00 +11  -> 01:30 +1030 (01:30-01:59 twice)
//                        2026-10-03 15:30Z  02:00 +1030 -> 02:30 +11  (gap 02:00-02:29)
#include "core/cron.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace dbops::cron {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

// "2026-03-29T01:00:00Z" (optionally with ".5" fractional seconds) to a time point.
TimePoint At(const std::string& iso) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, consumed = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d%n", &y, &mo, &d, &h, &mi, &s, &consumed) != 6) {
    ADD_FAILURE() << "bad ISO time " << iso;
    return {};
  }
  std::chrono::nanoseconds fraction{0};
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < iso.size() && iso[i] == '.') {
    long long scale = 100'000'000;
    for (++i; i < iso.size() && iso[i] >= '0' && iso[i] <= '9'; ++i, scale /= 10) {
      fraction += std::chrono::nanoseconds{(iso[i] - '0') * scale};
    }
  }
  if (i >= iso.size() || iso[i] != 'Z') ADD_FAILURE() << "ISO time must end in Z: " << iso;
  const std::chrono::sys_days day{std::chrono::year{y} / mo / d};
  return TimePoint{day} + std::chrono::hours{h} + std::chrono::minutes{mi} +
         std::chrono::seconds{s} + fraction;
}

std::string Iso(TimePoint t) {
  const auto seconds = std::chrono::floor<std::chrono::seconds>(t);
  const auto day = std::chrono::floor<std::chrono::days>(seconds);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{seconds - day};
  char buf[64];
  std::snprintf(
      buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lldZ", int{ymd.year()},
      unsigned{ymd.month()}, unsigned{ymd.day()}, static_cast<long long>(hms.hours().count()),
      static_cast<long long>(hms.minutes().count()), static_cast<long long>(hms.seconds().count()));
  std::string out = buf;
  if (t != seconds) out += " (+" + std::to_string((t - seconds).count()) + "ns)";
  return out;
}

Schedule MustParse(std::string_view expr, std::string_view tz = "UTC") {
  auto schedule = Schedule::parse(expr, tz);
  if (!schedule) {
    ADD_FAILURE() << "parse failed: " << schedule.error().to_string();
    return *Schedule::parse("* * * * *");
  }
  return *schedule;
}

// The next n fire times of expr in tz after `after`, as ISO strings.
std::vector<std::string> Next(std::string_view expr, std::string_view tz, const std::string& after,
                              std::size_t n) {
  std::vector<std::string> out;
  for (const TimePoint t : MustParse(expr, tz).next_n(At(after), n)) out.push_back(Iso(t));
  return out;
}

// The rendered parse error, or "" when the expression parsed.
std::string ParseError(std::string_view expr, std::string_view tz = "UTC") {
  auto schedule = Schedule::parse(expr, tz);
  if (schedule) return "";
  EXPECT_EQ(schedule.error().code, ErrorCode::kInvalidArgument);
  return schedule.error().to_string();
}

using Times = std::vector<std::string>;

// ---------------------------------------------------------------------------
// Helpers

TEST(CronTestHelpers, IsoRoundTrip) {
  EXPECT_EQ(At("1970-01-01T00:00:00Z"), TimePoint{});
  EXPECT_EQ(At("2026-03-29T01:00:00Z").time_since_epoch(), std::chrono::seconds{1774746000});
  EXPECT_EQ(Iso(At("2026-10-25T01:30:00Z")), "2026-10-25T01:30:00Z");
}

// ---------------------------------------------------------------------------
// UTC schedules

TEST(CronNext, EveryMinute) {
  EXPECT_EQ(Next("* * * * *", "UTC", "2026-01-01T00:00:00Z", 3),
            (Times{"2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z"}));
}

TEST(CronNext, StrictlyAfterAndSubSecond) {
  EXPECT_EQ(Next("0 * * * *", "UTC", "2026-01-01T01:00:00Z", 1), (Times{"2026-01-01T02:00:00Z"}));
  EXPECT_EQ(Next("0 * * * *", "UTC", "2026-01-01T00:59:59.999Z", 1),
            (Times{"2026-01-01T01:00:00Z"}));
  EXPECT_EQ(Next("* * * * *", "UTC", "2026-01-01T00:00:30.5Z", 1), (Times{"2026-01-01T00:01:00Z"}));
}

TEST(CronNext, FixedTimeDaily) {
  EXPECT_EQ(Next("30 4 * * *", "UTC", "2026-01-01T05:00:00Z", 2),
            (Times{"2026-01-02T04:30:00Z", "2026-01-03T04:30:00Z"}));
}

TEST(CronNext, HourRange) {
  EXPECT_EQ(Next("0 9-11 * * *", "UTC", "2026-01-01T00:00:00Z", 4),
            (Times{"2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z",
                   "2026-01-02T09:00:00Z"}));
}

TEST(CronNext, StarStep) {
  EXPECT_EQ(Next("*/15 * * * *", "UTC", "2026-01-01T00:07:00Z", 4),
            (Times{"2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z",
                   "2026-01-01T01:00:00Z"}));
}

TEST(CronNext, RangeStep) {
  EXPECT_EQ(Next("0 1-10/4 * * *", "UTC", "2026-01-01T00:00:00Z", 4),
            (Times{"2026-01-01T01:00:00Z", "2026-01-01T05:00:00Z", "2026-01-01T09:00:00Z",
                   "2026-01-02T01:00:00Z"}));
}

TEST(CronNext, StartStepMeansStartToMax) {
  EXPECT_EQ(Next("10/20 * * * *", "UTC", "2026-01-01T00:00:00Z", 4),
            (Times{"2026-01-01T00:10:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:50:00Z",
                   "2026-01-01T01:10:00Z"}));
}

TEST(CronNext, ListOfValuesRangesAndSteps) {
  EXPECT_EQ(Next("5,10-12,*/30 0 * * *", "UTC", "2026-01-01T00:00:00Z", 6),
            (Times{"2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z", "2026-01-01T00:11:00Z",
                   "2026-01-01T00:12:00Z", "2026-01-01T00:30:00Z", "2026-01-02T00:00:00Z"}));
}

TEST(CronNext, MonthNames) {
  EXPECT_EQ(Next("0 0 1 jan,jul *", "UTC", "2026-02-01T00:00:00Z", 2),
            (Times{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"}));
}

TEST(CronNext, WeekdayNameRange) {
  // 2026-01-02 is a Friday.
  EXPECT_EQ(Next("0 8 * * mon-fri", "UTC", "2026-01-02T09:00:00Z", 2),
            (Times{"2026-01-05T08:00:00Z", "2026-01-06T08:00:00Z"}));
}

TEST(CronNext, NamesAreCaseInsensitive) {
  EXPECT_EQ(Next("0 8 * JAN-Mar SAT", "UTC", "2026-01-01T00:00:00Z", 2),
            (Times{"2026-01-03T08:00:00Z", "2026-01-10T08:00:00Z"}));
  EXPECT_EQ(Next("0 8 * JAN-Mar SAT", "UTC", "2026-03-29T00:00:00Z", 1),
            (Times{"2027-01-02T08:00:00Z"}));
}

TEST(CronNext, SevenIsSunday) {
  const Times sundays = {"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"};
  EXPECT_EQ(Next("0 0 * * 7", "UTC", "2026-01-01T00:00:00Z", 2), sundays);
  EXPECT_EQ(Next("0 0 * * 0", "UTC", "2026-01-01T00:00:00Z", 2), sundays);
  EXPECT_EQ(Next("0 0 * * sun", "UTC", "2026-01-01T00:00:00Z", 2), sundays);
}

TEST(CronNext, WeekdayRangeEndingOnSeven) {
  EXPECT_EQ(Next("0 0 * * 5-7", "UTC", "2026-01-01T00:00:00Z", 4),
            (Times{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z",
                   "2026-01-09T00:00:00Z"}));
}

TEST(CronNext, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // Fridays, and the 13th (a Tuesday in January 2026).
  EXPECT_EQ(Next("0 0 13 * fri", "UTC", "2026-01-01T00:00:00Z", 4),
            (Times{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z",
                   "2026-01-16T00:00:00Z"}));
}

TEST(CronNext, DayOfWeekAloneWhenDayOfMonthIsStar) {
  EXPECT_EQ(Next("0 0 * * mon", "UTC", "2026-01-01T00:00:00Z", 2),
            (Times{"2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"}));
}

TEST(CronNext, StarStepDayOfMonthStillMeansBothMustMatch) {
  // "*/2" starts with '*': Mondays that fall on an odd day of the month.
  EXPECT_EQ(Next("0 0 */2 * mon", "UTC", "2026-01-01T00:00:00Z", 4),
            (Times{"2026-01-05T00:00:00Z", "2026-01-19T00:00:00Z", "2026-02-09T00:00:00Z",
                   "2026-02-23T00:00:00Z"}));
}

TEST(CronNext, DayOfMonthAlone) {
  EXPECT_EQ(Next("0 12 15 * *", "UTC", "2026-01-20T00:00:00Z", 2),
            (Times{"2026-02-15T12:00:00Z", "2026-03-15T12:00:00Z"}));
}

TEST(CronNext, FebruaryTwentyNinthWaitsForLeapYears) {
  EXPECT_EQ(Next("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 2),
            (Times{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}));
}

TEST(CronNext, ImpossibleDateNeverFires) {
  const Schedule schedule = MustParse("0 0 30 2 *");
  EXPECT_EQ(schedule.next_after(At("2026-01-01T00:00:00Z")), std::nullopt);
  EXPECT_TRUE(schedule.next_n(At("2026-01-01T00:00:00Z"), 3).empty());
  EXPECT_EQ(MustParse("0 0 31 4,6,9,11 *").next_after(At("2026-01-01T00:00:00Z")), std::nullopt);
}

TEST(CronNext, ThirtyFirstSkipsShortMonths) {
  EXPECT_EQ(Next("0 0 31 * *", "UTC", "2026-01-31T00:00:00Z", 6),
            (Times{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z",
                   "2026-08-31T00:00:00Z", "2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z"}));
}

TEST(CronNext, YearEndWrap) {
  EXPECT_EQ(Next("59 23 31 12 *", "UTC", "2026-12-31T23:59:00Z", 1),
            (Times{"2027-12-31T23:59:00Z"}));
  EXPECT_EQ(Next("* * * * *", "UTC", "2026-12-31T23:59:00Z", 1), (Times{"2027-01-01T00:00:00Z"}));
}

TEST(CronNext, YearlyAndAnnually) {
  const Times expected = {"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"};
  EXPECT_EQ(Next("@yearly", "UTC", "2026-06-01T00:00:00Z", 2), expected);
  EXPECT_EQ(Next("@annually", "UTC", "2026-06-01T00:00:00Z", 2), expected);
}

TEST(CronNext, OtherMacros) {
  EXPECT_EQ(Next("@monthly", "UTC", "2026-01-15T00:00:00Z", 1), (Times{"2026-02-01T00:00:00Z"}));
  EXPECT_EQ(Next("@weekly", "UTC", "2026-01-01T00:00:00Z", 1), (Times{"2026-01-04T00:00:00Z"}));
  EXPECT_EQ(Next("@daily", "UTC", "2026-01-01T00:00:00Z", 1), (Times{"2026-01-02T00:00:00Z"}));
  EXPECT_EQ(Next("@midnight", "UTC", "2026-01-01T12:00:00Z", 1), (Times{"2026-01-02T00:00:00Z"}));
  EXPECT_EQ(Next("@hourly", "UTC", "2026-01-01T12:30:00Z", 2),
            (Times{"2026-01-01T13:00:00Z", "2026-01-01T14:00:00Z"}));
  EXPECT_EQ(Next("@DAILY", "UTC", "2026-01-01T00:00:00Z", 1), (Times{"2026-01-02T00:00:00Z"}));
}

TEST(CronNext, NextNIsStrictlyIncreasing) {
  const Schedule schedule = MustParse("*/7 */5 * * *", "Europe/Paris");
  const TimePoint after = At("2026-03-28T20:00:00Z");
  const auto times = schedule.next_n(after, 200);
  ASSERT_EQ(times.size(), 200u);
  EXPECT_GT(times.front(), after);
  for (std::size_t i = 1; i < times.size(); ++i) EXPECT_LT(times[i - 1], times[i]) << i;
  EXPECT_TRUE(schedule.next_n(after, 0).empty());
}

TEST(CronNext, BeforeTheEpoch) {
  EXPECT_EQ(Next("* * * * *", "UTC", "1969-12-31T23:58:30Z", 2),
            (Times{"1969-12-31T23:59:00Z", "1970-01-01T00:00:00Z"}));
}

TEST(CronNext, EdgesOfTheClockRange) {
  const Schedule schedule = MustParse("* * * * *");
  EXPECT_EQ(schedule.next_after(TimePoint::max()), std::nullopt);
  const auto first = schedule.next_after(TimePoint::min());
  ASSERT_TRUE(first.has_value());
  EXPECT_GT(*first, TimePoint::min());
  EXPECT_EQ(MustParse("0 0 1 1 *", "Europe/Paris").next_after(TimePoint::max()), std::nullopt);
}

TEST(CronNext, ZoneWithoutDaylightSaving) {
  EXPECT_EQ(Next("0 9 * * *", "Asia/Tokyo", "2026-03-29T00:00:00Z", 2),
            (Times{"2026-03-30T00:00:00Z", "2026-03-31T00:00:00Z"}));
}

TEST(CronNext, EtcUtcMatchesUtc) {
  EXPECT_EQ(Next("30 2 * * *", "Etc/UTC", "2026-03-29T00:00:00Z", 2),
            Next("30 2 * * *", "UTC", "2026-03-29T00:00:00Z", 2));
}

// ---------------------------------------------------------------------------
// Accessors

TEST(CronParse, KeepsTrimmedExpressionAndZone) {
  const Schedule schedule = MustParse("  0 5 * * *\n", "Europe/Paris");
  EXPECT_EQ(schedule.expression(), "0 5 * * *");
  EXPECT_EQ(schedule.time_zone(), "Europe/Paris");
  EXPECT_EQ(MustParse("@daily").time_zone(), "UTC");
}

TEST(CronParse, TabsAndRepeatedSpacesSeparateFields) {
  EXPECT_EQ(Next("0\t5   *  * *", "UTC", "2026-01-01T00:00:00Z", 1),
            (Times{"2026-01-01T05:00:00Z"}));
}

TEST(CronParse, FixedTime) {
  EXPECT_TRUE(MustParse("30 2 * * *").fixed_time());
  EXPECT_TRUE(MustParse("0 1-3 * * *").fixed_time());
  EXPECT_TRUE(MustParse("0,30 9,17 * * mon-fri").fixed_time());
  EXPECT_TRUE(MustParse("@daily").fixed_time());
  EXPECT_TRUE(MustParse("@weekly").fixed_time());
  EXPECT_FALSE(MustParse("@hourly").fixed_time());
  EXPECT_FALSE(MustParse("30 * * * *").fixed_time());
  EXPECT_FALSE(MustParse("* 2 * * *").fixed_time());
  EXPECT_FALSE(MustParse("*/15 * * * *").fixed_time());
  EXPECT_FALSE(MustParse("0 */2 * * *").fixed_time());
}

// ---------------------------------------------------------------------------
// Parse errors

TEST(CronParseError, MinuteOutOfRangeExactMessage) {
  EXPECT_EQ(ParseError("61 * * * *"),
            R"(cron "61 * * * *": minute field: 61 is out of range 0-59)");
}

struct ErrorCase {
  const char* expr;
  const char* message;  // the complete rendered error
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
  *os << '"' << c.expr << '"';
}

class CronParseErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CronParseErrors, NamesTheField) {
  const ErrorCase& c = GetParam();
  EXPECT_EQ(ParseError(c.expr), c.message) << "expression: " << c.expr;
}

INSTANTIATE_TEST_SUITE_P(
    All, CronParseErrors,
    ::testing::Values(
        ErrorCase{"* 24 * * *", R"(cron "* 24 * * *": hour field: 24 is out of range 0-23)"},
        ErrorCase{"* * 0 * *", R"(cron "* * 0 * *": day-of-month field: 0 is out of range 1-31)"},
        ErrorCase{"* * 32 * *",
                  R"(cron "* * 32 * *": day-of-month field: 32 is out of range 1-31)"},
        ErrorCase{"* * * 13 *", R"(cron "* * * 13 *": month field: 13 is out of range 1-12)"},
        ErrorCase{"* * * * 8", R"(cron "* * * * 8": day-of-week field: 8 is out of range 0-7)"},
        ErrorCase{"99999999999999999999 * * * *",
                  R"(cron "99999999999999999999 * * * *": minute field: )"
                  R"(99999999999999999999 is out of range 0-59)"},
        ErrorCase{"*/0 * * * *",
                  R"(cron "*/0 * * * *": minute field: step 0 in "*/0" is out of range 1-60)"},
        ErrorCase{"0 1-5/0 * * *",
                  R"(cron "0 1-5/0 * * *": hour field: step 0 in "1-5/0" is out of range 1-24)"},
        ErrorCase{"0 0 * * */8",
                  R"(cron "0 0 * * */8": day-of-week field: step 8 in "*/8" is out of range 1-7)"},
        ErrorCase{"5-1 * * * *", R"(cron "5-1 * * * *": minute field: range "5-1" is reversed)"},
        ErrorCase{"0 0 * * fri-mon",
                  R"(cron "0 0 * * fri-mon": day-of-week field: range "fri-mon" is reversed)"},
        ErrorCase{"0 0 * * mon-sun",
                  R"(cron "0 0 * * mon-sun": day-of-week field: range "mon-sun" is reversed )"
                  R"((sunday is 7 at the end of a range))"},
        ErrorCase{"0 0 * dec-jan *",
                  R"(cron "0 0 * dec-jan *": month field: range "dec-jan" is reversed)"},
        ErrorCase{"1,,2 * * * *",
                  R"(cron "1,,2 * * * *": minute field: empty list element in "1,,2")"},
        ErrorCase{"0 1, * * *", R"(cron "0 1, * * *": hour field: empty list element in "1,")"},
        ErrorCase{"* * * *", R"(cron "* * * *": expected 5 fields (minute hour day-of-month month )"
                             R"(day-of-week), got 4)"},
        ErrorCase{"* * * * * *",
                  R"(cron "* * * * * *": expected 5 fields (minute hour day-of-month month )"
                  R"(day-of-week), got 6)"},
        ErrorCase{"   ", R"(cron "": expression is empty)"},
        ErrorCase{"1# * * * *",
                  R"(cron "1# * * * *": minute field: unexpected character '#' in "1#")"},
        ErrorCase{"** * * * *",
                  R"(cron "** * * * *": minute field: unexpected character '*' in "**")"},
        ErrorCase{"*/x * * * *",
                  R"(cron "*/x * * * *": minute field: unexpected character 'x' in step of "*/x")"},
        ErrorCase{"*/ * * * *", R"(cron "*/ * * * *": minute field: missing step in "*/")"},
        ErrorCase{"1- * * * *", R"(cron "1- * * * *": minute field: missing value in "1-")"},
        ErrorCase{"0 -3 * * *", R"(cron "0 -3 * * *": hour field: missing value in "-3")"},
        ErrorCase{"0 0 * foo *",
                  R"(cron "0 0 * foo *": month field: invalid value "foo" (expected 1-12 or )"
                  R"(jan-dec))"},
        ErrorCase{"0 0 * * monday",
                  R"(cron "0 0 * * monday": day-of-week field: invalid value "monday" )"
                  R"((expected 0-7 or sun-sat))"},
        ErrorCase{"jan * * * *",
                  R"(cron "jan * * * *": minute field: invalid value "jan" (expected 0-59))"},
        ErrorCase{"0 0 * * 1x", R"(cron "0 0 * * 1x": day-of-week field: invalid value "1x" )"
                                R"((expected 0-7 or sun-sat))"},
        ErrorCase{"1\x01 * * * *",
                  R"(cron "1\x01 * * * *": minute field: unexpected character '\x01' in )"
                  R"("1\x01")"},
        ErrorCase{"@fortnightly",
                  R"(cron "@fortnightly": unknown macro "@fortnightly" (expected @hourly, )"
                  R"(@daily, @midnight, @weekly, @monthly, @yearly or @annually))"},
        ErrorCase{"@daily 5", R"(cron "@daily 5": unexpected "5" after "@daily")"}),
    [](const ::testing::TestParamInfo<ErrorCase>& info) {
      // The expression, made a valid test name, plus the index for uniqueness.
      std::string name;
      for (const char c : std::string_view(info.param.expr)) {
        name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      }
      return "case" + std::to_string(info.index) + "_" + name;
    });

TEST(CronParseError, UnknownTimeZoneSuggestsAName) {
  auto schedule = Schedule::parse("0 2 * * *", "Europe/Pariss");
  ASSERT_FALSE(schedule.has_value());
  EXPECT_EQ(schedule.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(schedule.error().message, R"(cron "0 2 * * *": unknown time zone "Europe/Pariss")");
  EXPECT_EQ(schedule.error().hint, R"(Did you mean "Europe/Paris"?)");

  auto lower = Schedule::parse("0 2 * * *", "europe/paris");
  ASSERT_FALSE(lower.has_value());
  EXPECT_EQ(lower.error().hint, R"(Did you mean "Europe/Paris"?)");
}

TEST(CronParseError, UnknownTimeZoneWithoutCloseName) {
  auto schedule = Schedule::parse("0 2 * * *", "Xyzzy/Qwerty");
  ASSERT_FALSE(schedule.has_value());
  EXPECT_EQ(schedule.error().message, R"(cron "0 2 * * *": unknown time zone "Xyzzy/Qwerty")");
  EXPECT_EQ(schedule.error().hint,
            R"(Use an IANA time zone name such as "Europe/Paris" or "UTC".)");
}

TEST(CronParseError, EmptyOrJunkTimeZone) {
  EXPECT_EQ(ParseError("0 2 * * *", ""), R"(cron "0 2 * * *": time zone is empty)");
  EXPECT_NE(ParseError("0 2 * * *", "../../etc/passwd").find("unknown time zone"),
            std::string::npos);
  EXPECT_NE(ParseError("0 2 * * *", "zone.tab").find("unknown time zone"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Europe/Paris, spring forward: 2026-03-29 02:00 CET -> 03:00 CEST at 01:00Z.

TEST(CronDstParis, FixedTimeInTheGapFiresAtTheTransition) {
  EXPECT_EQ(Next("30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 2),
            (Times{"2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}));
  EXPECT_EQ(Next("0 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 2),
            (Times{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z"}));
}

TEST(CronDstParis, SeveralGapTimesFireOnce) {
  EXPECT_EQ(Next("0,30 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 3),
            (Times{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T00:30:00Z"}));
  // 02:00 (skipped) and 03:00 (the transition itself) are the same instant.
  EXPECT_EQ(Next("0 2,3 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 3),
            (Times{"2026-03-29T01:00:00Z", "2026-03-30T00:00:00Z", "2026-03-30T01:00:00Z"}));
}

TEST(CronDstParis, FixedTimesAroundTheGapAreUnaffected) {
  EXPECT_EQ(Next("30 1,2,3 * * *", "Europe/Paris", "2026-03-28T23:00:00Z", 3),
            (Times{"2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"}));
}

TEST(CronDstParis, WildcardSkipsTheGap) {
  EXPECT_EQ(Next("*/15 * * * *", "Europe/Paris", "2026-03-29T00:30:00Z", 3),
            (Times{"2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:15:00Z"}));
  // 30 * * * * has '*' in the hour: 02:30 does not exist that day and is not run.
  EXPECT_EQ(Next("30 * * * *", "Europe/Paris", "2026-03-29T00:00:00Z", 2),
            (Times{"2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"}));
}

TEST(CronDstParis, MinuteWildcardInASkippedHourDoesNotRun) {
  EXPECT_EQ(Next("* 2 * * *", "Europe/Paris", "2026-03-28T12:00:00Z", 1),
            (Times{"2026-03-30T00:00:00Z"}));
}

TEST(CronDstParis, HourlyAcrossSpringForward) {
  EXPECT_EQ(Next("@hourly", "Europe/Paris", "2026-03-28T23:30:00Z", 3),
            (Times{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}));
}

// Europe/Paris, fall back: 2026-10-25 03:00 CEST -> 02:00 CET at 01:00Z.

TEST(CronDstParis, FixedTimeInTheRepeatedHourFiresOnce) {
  EXPECT_EQ(Next("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00Z", 2),
            (Times{"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}));
}

TEST(CronDstParis, NoSecondRunWhenAskedDuringTheRepeatedHour) {
  // Right after the first run, and during the second pass of 02:00-02:59.
  EXPECT_EQ(Next("30 2 * * *", "Europe/Paris", "2026-10-25T00:30:00Z", 1),
            (Times{"2026-10-26T01:30:00Z"}));
  EXPECT_EQ(Next("30 2 * * *", "Europe/Paris", "2026-10-25T01:00:00Z", 1),
            (Times{"2026-10-26T01:30:00Z"}));
  EXPECT_EQ(Next("30 2 * * *", "Europe/Paris", "2026-10-25T01:45:00Z", 1),
            (Times{"2026-10-26T01:30:00Z"}));
}

TEST(CronDstParis, WildcardRunsInBothPassesOfTheRepeatedHour) {
  EXPECT_EQ(Next("30 * * * *", "Europe/Paris", "2026-10-24T23:00:00Z", 4),
            (Times{"2026-10-24T23:30:00Z", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z",
                   "2026-10-25T02:30:00Z"}));
  EXPECT_EQ(Next("*/15 * * * *", "Europe/Paris", "2026-10-25T00:40:00Z", 3),
            (Times{"2026-10-25T00:45:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z"}));
  EXPECT_EQ(Next("* 2 * * *", "Europe/Paris", "2026-10-25T00:58:00Z", 3),
            (Times{"2026-10-25T00:59:00Z", "2026-10-25T01:00:00Z", "2026-10-25T01:01:00Z"}));
}

TEST(CronDstParis, HourlyAcrossFallBack) {
  EXPECT_EQ(Next("@hourly", "Europe/Paris", "2026-10-24T23:30:00Z", 3),
            (Times{"2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"}));
}

// ---------------------------------------------------------------------------
// America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT at 07:00Z;
// 2026-11-01 02:00 EDT -> 01:00 EST at 06:00Z.

TEST(CronDstNewYork, FixedTimeInTheGap) {
  EXPECT_EQ(Next("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            (Times{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}));
}

TEST(CronDstNewYork, WildcardSkipsTheGap) {
  EXPECT_EQ(Next("15 * * * *", "America/New_York", "2026-03-08T06:00:00Z", 2),
            (Times{"2026-03-08T06:15:00Z", "2026-03-08T07:15:00Z"}));
}

TEST(CronDstNewYork, HourlyAcrossSpringForward) {
  EXPECT_EQ(Next("@hourly", "America/New_York", "2026-03-08T06:00:00Z", 2),
            (Times{"2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"}));
}

TEST(CronDstNewYork, FixedTimeInTheRepeatedHour) {
  EXPECT_EQ(Next("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            (Times{"2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}));
  EXPECT_EQ(Next("0 1 * * sun", "America/New_York", "2026-10-31T12:00:00Z", 2),
            (Times{"2026-11-01T05:00:00Z", "2026-11-08T06:00:00Z"}));
}

TEST(CronDstNewYork, TwoAmOnFallBackDayExistsOnce) {
  EXPECT_EQ(Next("0 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            (Times{"2026-11-01T07:00:00Z", "2026-11-02T07:00:00Z"}));
}

TEST(CronDstNewYork, WildcardInTheRepeatedHour) {
  EXPECT_EQ(Next("30 * * * *", "America/New_York", "2026-11-01T04:00:00Z", 4),
            (Times{"2026-11-01T04:30:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z",
                   "2026-11-01T07:30:00Z"}));
}

// ---------------------------------------------------------------------------
// Australia/Lord_Howe, half-hour shifts: 2026-04-05 02:00 +11 -> 01:30 +1030 at
// 2026-04-04 15:00Z; 2026-10-04 02:00 +1030 -> 02:30 +11 at 2026-10-03 15:30Z.

TEST(CronDstLordHowe, FixedTimeInTheRepeatedHalfHour) {
  EXPECT_EQ(Next("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", 2),
            (Times{"2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"}));
  // 01:15 is before the repeated half hour and happens once.
  EXPECT_EQ(Next("15 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00Z", 1),
            (Times{"2026-04-04T14:15:00Z"}));
}

TEST(CronDstLordHowe, WildcardInTheRepeatedHalfHour) {
  EXPECT_EQ(Next("45 * * * *", "Australia/Lord_Howe", "2026-04-04T13:00:00Z", 4),
            (Times{"2026-04-04T13:45:00Z", "2026-04-04T14:45:00Z", "2026-04-04T15:15:00Z",
                   "2026-04-04T16:15:00Z"}));
}

TEST(CronDstLordHowe, HourlyAcrossFallBack) {
  EXPECT_EQ(Next("@hourly", "Australia/Lord_Howe", "2026-04-04T12:30:00Z", 4),
            (Times{"2026-04-04T13:00:00Z", "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z",
                   "2026-04-04T16:30:00Z"}));
}

TEST(CronDstLordHowe, FixedTimeInTheSkippedHalfHour) {
  EXPECT_EQ(Next("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 2),
            (Times{"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"}));
  // 02:30 exists: it is the first valid local time after the gap.
  EXPECT_EQ(Next("30 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00Z", 1),
            (Times{"2026-10-03T15:30:00Z"}));
}

TEST(CronDstLordHowe, HourlyAcrossSpringForward) {
  EXPECT_EQ(Next("@hourly", "Australia/Lord_Howe", "2026-10-03T14:00:00Z", 3),
            (Times{"2026-10-03T14:30:00Z", "2026-10-03T16:00:00Z", "2026-10-03T17:00:00Z"}));
}

TEST(CronDstLordHowe, WildcardMinutesInThePartlySkippedHour) {
  EXPECT_EQ(Next("*/20 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00:00Z", 2),
            (Times{"2026-10-03T15:40:00Z", "2026-10-04T15:00:00Z"}));
}

}  // namespace
}  // namespace dbops::cron
