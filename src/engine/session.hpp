// Sessions: open connections to a target, with dbops's own deadlines.
//
// Every call takes a Deadline. Implementations use their client library's
// non-blocking API and poll the socket, so that a server that accepts a
// connection and never answers cannot hang dbops: when the deadline passes
// the statement is cancelled (or the connection closed) and a kTimeout error
// comes back. A session whose connection broke reports !is_open() and is
// replaced by the pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/result.hpp"

namespace dbops::engine {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  explicit Deadline(Clock::time_point at) : at_(at) {}
  static Deadline after(std::chrono::milliseconds d) { return Deadline(Clock::now() + d); }
  static Deadline never() { return Deadline(Clock::time_point::max()); }
  Clock::time_point at() const { return at_; }
  bool expired() const { return Clock::now() >= at_; }
  // Milliseconds left, at least 0; capped so that it fits a poll() timeout.
  int remaining_ms() const;
  // The earlier of two deadlines.
  Deadline min(Deadline other) const { return Deadline(std::min(at_, other.at_)); }

 private:
  Clock::time_point at_;
};

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
  double number(std::size_t row, std::size_t col) const;
  bool is_null(std::size_t row, std::size_t col) const;
  // The rows as text: columns joined by '|', rows by '\n' (NULL as ""), the
  // form canary queries are compared in.
  std::string to_text() const;
  // Column index by name, or nullopt.
  std::optional<std::size_t> column(std::string_view name) const;
};

class Session {
 public:
  virtual ~Session() = default;
  // Canonical engine name ("postgres", "mysql", "redis", "sqlite").
  virtual std::string_view engine() const = 0;
  // The server's version string as it reports it ("15.8", "10.11.6-MariaDB").
  virtual const std::string& server_version() const = 0;
  // false once the connection is known to be broken.
  virtual bool is_open() const = 0;
  // Asks the server to stop the statement in progress; safe from another thread.
  virtual void cancel() = 0;
  // A trivial round trip (SELECT 1, PING).
  virtual Status ping(Deadline deadline) = 0;
};

class SqlSession : public Session {
 public:
  // One statement with positional parameters ($1.. for PostgreSQL, ? for
  // SQLite and MariaDB). PostgreSQL uses only unnamed prepared statements.
  virtual Result<QueryResult> query(std::string_view sql, std::span<const Param> params,
                                    Deadline deadline) = 0;
  // One or more statements without parameters.
  virtual Status exec(std::string_view sql, Deadline deadline) = 0;

  // The same with the session's default statement timeout.
  Result<QueryResult> query(std::string_view sql, std::span<const Param> params = {}) {
    return query(sql, params, Deadline::after(default_timeout_));
  }
  Status exec(std::string_view sql) { return exec(sql, Deadline::after(default_timeout_)); }
  void set_default_timeout(std::chrono::milliseconds t) { default_timeout_ = t; }
  std::chrono::milliseconds default_timeout() const { return default_timeout_; }

 private:
  std::chrono::milliseconds default_timeout_{30'000};
};

// A command-protocol reply (Redis RESP now, others later).
struct Reply {
  enum class Type { kNil, kInteger, kString, kStatus, kError, kArray };
  Type type = Type::kNil;
  std::int64_t integer = 0;
  std::string str;  // kString, kStatus, kError
  std::vector<Reply> elements;
};

class CommandSession : public Session {
 public:
  // One command; an error reply comes back as a Reply of Type::kError, a
  // transport failure as an Error.
  virtual Result<Reply> command(std::span<const std::string> argv, Deadline deadline) = 0;
};

}  // namespace dbops::engine
