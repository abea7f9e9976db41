// Result<T> and Status: expected failures as values.
//
// An Error carries a code (which maps onto dbops's exit codes), a message a
// DBA can act on, the context it happened in (target, step, ...) and an
// optional hint. Messages are lowercase with no final period; the rendered
// form puts context first: "pg-main: backup: pg_dump exited 1: ...".
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dbops {

enum class ErrorCode {
  kInvalidArgument,  // bad user input (exit 2)
  kConfig,           // configuration problem (exit 2)
  kNotFound,         // a named thing does not exist (exit 2)
  kCheckFailed,      // a check or gate failed (exit 1)
  kIo,               // file system or pipe failure (exit 3)
  kTimeout,          // a deadline passed (exit 3)
  kUnavailable,      // a server or peer could not be reached (exit 3)
  kCancelled,        // the operation was cancelled (exit 3)
  kConflict,         // a lock or lease is held by someone else (exit 3)
  kCorrupt,          // stored data failed its checksum (exit 1)
  kUnsupported,      // not implemented for this engine or build (exit 2)
  kInternal,         // a bug or an unexpected library failure (exit 3)
};

std::string_view error_code_name(ErrorCode code);

// The process exit code DESIGN.md assigns to an error of this code:
// 1 check failed, 2 usage or configuration, 3 runtime failure.
int exit_code_for(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  // Outermost first, e.g. {"pg-main", "backup"}.
  std::vector<std::string> context;
  // A full sentence telling the user what to do next; may be empty.
  std::string hint;

  // Prepends a context element ("pg-main", "backup") and returns *this.
  Error& with_context(std::string element) &;
  Error&& with_context(std::string element) &&;
  Error& with_hint(std::string text) &;
  Error&& with_hint(std::string text) &&;

  // "ctx1: ctx2: message" and, when a hint is set, "\nHINT: hint".
  std::string to_string() const;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline Error make_error(ErrorCode code, std::string message) {
  Error error;
  error.code = code;
  error.message = std::move(message);
  return error;
}
inline std::unexpected<Error> fail(ErrorCode code, std::string message) {
  return std::unexpected<Error>(make_error(code, std::move(message)));
}
inline std::unexpected<Error> fail(ErrorCode code, std::string message, std::string hint) {
  Error error = make_error(code, std::move(message));
  error.hint = std::move(hint);
  return std::unexpected<Error>(std::move(error));
}
inline std::unexpected<Error> fail(Error error) {
  return std::unexpected<Error>(std::move(error));
}

inline Status ok() {
  return {};
}

// Turns errno into an Error: "<what>: <strerror>".
Error errno_error(std::string_view what, int err);

}  // namespace dbops

// Evaluates a Status/Result expression and returns its error from the current
// function when it failed.
#define DBOPS_TRY(expr)                                                                   \
  do {                                                                                    \
    auto&& dbops_try_result_ = (expr);                                                    \
    if (!dbops_try_result_) return std::unexpected(std::move(dbops_try_result_).error()); \
  } while (false)

#define DBOPS_CONCAT_INNER_(a, b) a##b
#define DBOPS_CONCAT_(a, b) DBOPS_CONCAT_INNER_(a, b)
// DBOPS_ASSIGN(auto x, expr): assigns the value of a Result or returns its error.
#define DBOPS_ASSIGN(lhs, expr) DBOPS_ASSIGN_IMPL_(DBOPS_CONCAT_(dbops_r_, __LINE__), lhs, expr)
#define DBOPS_ASSIGN_IMPL_(tmp, lhs, expr)                  \
  auto tmp = (expr);                                        \
  if (!tmp) return std::unexpected(std::move(tmp).error()); \
  lhs = std::move(*tmp)
