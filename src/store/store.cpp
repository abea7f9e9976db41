#include "store/store.hpp"

#include "store/postgres/postgres_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace dbops::store {

std::string_view run_state_name(RunState state) {
  switch (state) {
    case RunState::kRunning:
      return "running";
    case RunState::kSucceeded:
      return "succeeded";
    case RunState::kFailed:
      return "failed";
    case RunState::kCheckFailed:
      return "check_failed";
  }
  return "failed";
}

std::optional<RunState> parse_run_state(std::string_view text) {
  for (const auto s :
       {RunState::kRunning, RunState::kSucceeded, RunState::kFailed, RunState::kCheckFailed}) {
    if (run_state_name(s) == text) return s;
  }
  return std::nullopt;
}

std::string_view severity_name(Severity severity) {
  switch (severity) {
    case Severity::kInfo:
      return "info";
    case Severity::kWarn:
      return "warn";
    case Severity::kError:
      return "error";
  }
  return "info";
}

std::optional<Severity> parse_severity(std::string_view text) {
  for (const auto s : {Severity::kInfo, Severity::kWarn, Severity::kError}) {
    if (severity_name(s) == text) return s;
  }
  return std::nullopt;
}

Result<std::unique_ptr<Store>> open_store(const config::StateConfig& state) {
  if (state.is_postgres()) return postgres::open_postgres_store(state.postgres_dsn);
  return sqlite::open_sqlite_store(state.sqlite_path);
}

}  // namespace dbops::store
