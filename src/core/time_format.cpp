#include "core/time_format.hpp"

#include <cstdio>
#include <ctime>

namespace dbops {

std::string format_utc(std::chrono::system_clock::time_point t, bool millis) {
  const auto since_epoch = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch());
  const auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  const int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string out(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
  if (millis) {
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>((since_epoch - secs).count()));
    out += buf;
  }
  out += 'Z';
  return out;
}

}  // namespace dbops
