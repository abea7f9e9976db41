#include "cli/output.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dbops::cli {
namespace {

// Display width of UTF-8 text (code points, which is right for the text we print).
std::size_t width(const std::string& s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

}  // namespace

std::string Table::render(bool color) const {
  std::vector<std::size_t> widths(headers.size(), 0);
  for (std::size_t c = 0; c < headers.size(); ++c) widths[c] = width(headers[c]);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], width(row[c]));
    }
  }
  const auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string out;
    if (header && color) out += "\x1b[1m";
    for (std::size_t c = 0; c < widths.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      out += cell;
      if (c + 1 < widths.size()) out += std::string(widths[c] - width(cell) + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    if (header && color) out += "\x1b[0m";
    return out + "\n";
  };
  std::string out = line(headers, true);
  for (const auto& row : rows) out += line(row, false);
  return out;
}

std::string bytes_text(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", bytes, kUnits[u]);
  return buf;
}

std::string seconds_text(double s) {
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.0fm%02.0fs", std::floor(s / 60), std::fmod(s, 60));
  } else {
    std::snprintf(buf, sizeof buf, "%.0fh%02.0fm", std::floor(s / 3600), std::fmod(s / 60, 60));
  }
  return buf;
}

ProgressLine::ProgressLine() : enabled_(isatty(STDERR_FILENO) != 0) {}
ProgressLine::~ProgressLine() {
  clear();
}

runtime::ProgressSink ProgressLine::sink() {
  return [this](const runtime::Progress& p) { update(p); };
}

void ProgressLine::clear() {
  if (drawn_) {
    std::fputs("\r\033[K", stderr);
    drawn_ = false;
  }
}

void ProgressLine::update(const runtime::Progress& p) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (phase_ != p.phase) {
    phase_ = p.phase;
    start_ = now;
  }
  if (!p.note.empty()) {
    clear();
    std::fprintf(stderr, "%s: %s\n", p.phase.c_str(), p.note.c_str());
    return;
  }
  if (now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(p.done) / elapsed : 0;
  std::string line = p.phase + " " + bytes_text(static_cast<double>(p.done));
  if (p.total) {
    line += " of " + bytes_text(static_cast<double>(p.total));
    char pct[16];
    std::snprintf(pct, sizeof pct, " (%.0f%%)",
                  100.0 * static_cast<double>(p.done) / static_cast<double>(p.total));
    line += pct;
  }
  line += "  " + bytes_text(rate) + "/s";
  if (p.total && rate > 0 && p.done < p.total) {
    line += "  ETA " + seconds_text(static_cast<double>(p.total - p.done) / rate);
  }
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  drawn_ = true;
}

}  // namespace dbops::cli
