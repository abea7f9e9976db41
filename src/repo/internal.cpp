#include "repo/internal.hpp"

#include <sys/random.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include "core/time_format.hpp"

namespace dbops::repo::internal {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void fill_random(unsigned char* out, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    ssize_t n = ::getrandom(out + done, size - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // No getrandom(): unique enough for names that are also checked.
    static std::atomic<std::uint64_t> counter{0};
    std::uint64_t x =
        static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
            0x9E3779B97F4A7C15ULL +
        counter.fetch_add(1);
    for (; done < size; ++done) {
      out[done] = static_cast<unsigned char>(x);
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    }
  }
}

bool all_of(std::string_view text, int (*pred)(int)) {
  if (text.empty()) return false;
  for (char c : text) {
    if (pred(static_cast<unsigned char>(c)) == 0) return false;
  }
  return true;
}

bool take_number(std::string_view& text, std::size_t digits, int& out) {
  if (text.size() < digits) return false;
  int value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  out = value;
  text.remove_prefix(digits);
  return true;
}

bool take_char(std::string_view& text, char expected) {
  if (text.empty() || (text.front() != expected &&
                       std::tolower(static_cast<unsigned char>(text.front())) != expected)) {
    return false;
  }
  text.remove_prefix(1);
  return true;
}

}  // namespace

std::string random_hex(std::size_t digits) {
  std::string bytes((digits + 1) / 2, '\0');
  fill_random(reinterpret_cast<unsigned char*>(bytes.data()), bytes.size());
  std::string out = to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.resize(digits);
  return out;
}

bool is_temp_name(std::string_view segment) {
  // "<name>.tmp.<pid>.<random>"
  std::size_t last_dot = segment.rfind('.');
  if (last_dot == std::string_view::npos || last_dot == 0) return false;
  std::string_view random = segment.substr(last_dot + 1);
  std::string_view rest = segment.substr(0, last_dot);
  std::size_t pid_dot = rest.rfind('.');
  if (pid_dot == std::string_view::npos) return false;
  std::string_view pid = rest.substr(pid_dot + 1);
  rest = rest.substr(0, pid_dot);
  constexpr std::string_view kTmp = ".tmp";
  if (rest.size() <= kTmp.size() || !rest.ends_with(kTmp)) return false;
  return all_of(pid, [](int c) { return std::isdigit(c); }) &&
         all_of(random, [](int c) { return std::isxdigit(c); });
}

std::string format_time(std::chrono::system_clock::time_point t) {
  return format_utc(t, true);
}

std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text) {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!take_number(text, 4, y) || !take_char(text, '-') || !take_number(text, 2, mo) ||
      !take_char(text, '-') || !take_number(text, 2, d) || !take_char(text, 't') ||
      !take_number(text, 2, h) || !take_char(text, ':') || !take_number(text, 2, mi) ||
      !take_char(text, ':') || !take_number(text, 2, s)) {
    return std::nullopt;
  }
  std::int64_t nanos = 0;
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    int digits = 0;
    while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (text.front() - '0');
        ++digits;
      }
      text.remove_prefix(1);
    }
    if (digits == 0) return std::nullopt;
    for (int i = digits; i < 9; ++i) nanos *= 10;
  }
  int offset_minutes = 0;
  if (take_char(text, 'z')) {
  } else if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    int sign = text.front() == '-' ? -1 : 1;
    text.remove_prefix(1);
    int oh = 0, om = 0;
    if (!take_number(text, 2, oh) || !take_char(text, ':') || !take_number(text, 2, om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (!text.empty()) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  auto tp = sys_days{ymd} + hours{h} + minutes{mi} + seconds{s} - minutes{offset_minutes};
  return time_point_cast<system_clock::duration>(tp + nanoseconds{nanos});
}

std::string to_hex(const unsigned char* data, std::size_t size) {
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kHexDigits[data[i] >> 4];
    out[2 * i + 1] = kHexDigits[data[i] & 0xF];
  }
  return out;
}

bool is_hex(std::string_view text, std::size_t digits) {
  if (text.size() != digits) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace dbops::repo::internal
