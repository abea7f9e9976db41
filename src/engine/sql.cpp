#include "engine/sql.hpp"

#include <cstdlib>

namespace dbops::engine {

std::string QueryResult::text(std::size_t row, std::size_t col) const {
  const auto& v = rows.at(row).at(col);
  return v ? *v : std::string();
}

std::int64_t QueryResult::integer(std::size_t row, std::size_t col) const {
  const auto& v = rows.at(row).at(col);
  return v ? std::strtoll(v->c_str(), nullptr, 10) : 0;
}

bool QueryResult::is_null(std::size_t row, std::size_t col) const {
  return !rows.at(row).at(col).has_value();
}

}  // namespace dbops::engine
