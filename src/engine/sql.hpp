// A SQL session: queries with bound parameters, statements, cancellation.
// Implemented per engine (sqlite/ now; postgres/ and mysql/ next).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.hpp"

namespace dbops::engine {

// A bound parameter. Text is bound as text; engines convert as needed.
using Param = std::variant<std::nullptr_t, std::int64_t, double, std::string>;

struct QueryResult {
  std::vector<std::string> columns;
  // Values in their text form; nullopt for SQL NULL.
  std::vector<std::vector<std::optional<std::string>>> rows;
  std::int64_t affected_rows = 0;

  bool empty() const { return rows.empty(); }
  // The value at (row, col) or "" for NULL.
  std::string text(std::size_t row, std::size_t col) const;
  std::int64_t integer(std::size_t row, std::size_t col) const;
  bool is_null(std::size_t row, std::size_t col) const;
};

class SqlSession {
 public:
  virtual ~SqlSession() = default;
  // One statement with positional parameters ($1.. for PostgreSQL, ? for
  // SQLite and MariaDB).
  virtual Result<QueryResult> query(std::string_view sql, std::span<const Param> params = {}) = 0;
  // One or more statements without parameters.
  virtual Status exec(std::string_view sql) = 0;
  // Asks the server to stop the statement in progress; safe from another thread.
  virtual void cancel() = 0;
};

}  // namespace dbops::engine
