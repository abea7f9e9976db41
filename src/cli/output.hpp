// Printing results: aligned tables for people, JSON for scripts.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "runtime/job.hpp"

namespace dbops::cli {

enum class OutputFormat { kTable, kJson };

struct Table {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;

  // Columns padded to their widest cell; the header underlined when `color`.
  std::string render(bool color) const;
};

// 1536 -> "1.5KiB".
std::string bytes_text(double bytes);

// 95.2 -> "1m35s"; under two minutes with a decimal, over two hours as hours.
std::string seconds_text(double seconds);

// A one-line progress display on stderr, when stderr is a terminal: bytes,
// rate and ETA, redrawn at most four times a second; a progress report with
// a note is printed as a line of its own.
class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  runtime::ProgressSink sink();
  // Removes the line (before other output).
  void clear();

 private:
  void update(const runtime::Progress& p);

  bool enabled_;
  bool drawn_ = false;
  std::string phase_;
  std::chrono::steady_clock::time_point start_{}, last_{};
};

}  // namespace dbops::cli
