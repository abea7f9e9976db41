// Printing results: aligned tables for people, JSON for scripts.
#pragma once

#include <string>
#include <vector>

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

}  // namespace dbops::cli
