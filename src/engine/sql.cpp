#include <algorithm>
#include <climits>
#include <cstdlib>

#include "engine/session.hpp"

namespace dbops::engine {

int Deadline::remaining_ms() const {
  const auto now = Clock::now();
  if (now >= at_) return 0;
  if (at_ == Clock::time_point::max()) return INT_MAX;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(at_ - now).count();
  return static_cast<int>(std::min<long long>(ms, INT_MAX));
}

std::string QueryResult::text(std::size_t row, std::size_t col) const {
  const auto& v = rows.at(row).at(col);
  return v ? *v : std::string();
}

std::int64_t QueryResult::integer(std::size_t row, std::size_t col) const {
  const auto& v = rows.at(row).at(col);
  return v ? std::strtoll(v->c_str(), nullptr, 10) : 0;
}

double QueryResult::number(std::size_t row, std::size_t col) const {
  const auto& v = rows.at(row).at(col);
  return v ? std::strtod(v->c_str(), nullptr) : 0.0;
}

std::string QueryResult::to_text() const {
  std::string out;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    if (r) out += '\n';
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      if (c) out += '|';
      out += text(r, c);
    }
  }
  return out;
}

bool QueryResult::is_null(std::size_t row, std::size_t col) const {
  return !rows.at(row).at(col).has_value();
}

std::optional<std::size_t> QueryResult::column(std::string_view name) const {
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return i;
  }
  return std::nullopt;
}

}  // namespace dbops::engine
