// The state store: job runs, their events, and (as later capabilities land)
// targets' observed state, the backup catalog and drill results.
//
// SQLite (WAL) is the embedded default; PostgreSQL is the store several
// agents share. The schema is versioned and migrated on open; a schema newer
// than this binary knows is refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"

namespace dbops::store {

using TimePoint = std::chrono::system_clock::time_point;

enum class RunState { kRunning, kSucceeded, kFailed, kCheckFailed };
std::string_view run_state_name(RunState state);
std::optional<RunState> parse_run_state(std::string_view text);

struct RunRecord {
  std::string run_id;
  std::string kind;
  std::string target;  // empty for jobs not tied to one target
  std::string idempotency_key;
  std::string params_json = "{}";
  RunState state = RunState::kRunning;
  TimePoint started_at{};
  std::optional<TimePoint> finished_at;
  std::string summary;             // one line for listings
  std::string result_json = "{}";  // the job's structured result
  std::string error;               // rendered error when failed
  std::string host;                // where it ran
  int pid = 0;
};

enum class Severity { kInfo, kWarn, kError };
std::string_view severity_name(Severity severity);
std::optional<Severity> parse_severity(std::string_view text);

struct EventRecord {
  std::int64_t id = 0;  // assigned by the store
  TimePoint at{};
  std::string run_id;
  std::string target;
  std::string type;  // e.g. "job.failed"
  Severity severity = Severity::kInfo;
  std::string message;
  std::string data_json = "{}";
};

struct RunQuery {
  std::string target;
  std::string kind;
  std::optional<RunState> state;
  std::size_t limit = 50;
};

struct EventQuery {
  std::string run_id;
  std::string target;
  std::optional<Severity> min_severity;
  std::size_t limit = 200;
};

class Store {
 public:
  virtual ~Store() = default;

  // e.g. "sqlite /var/lib/dbops/state.db"
  virtual std::string describe() const = 0;
  virtual int schema_version() const = 0;

  // Records a run as started; a second run with the same id is a conflict.
  virtual Status insert_run(const RunRecord& run) = 0;
  // Records how a run ended (state, finished_at, summary, result, error).
  virtual Status finish_run(const RunRecord& run) = 0;
  // By full id or a unique prefix of at least 6 characters.
  virtual Result<std::optional<RunRecord>> get_run(std::string_view run_id) = 0;
  // The latest run with this idempotency key.
  virtual Result<std::optional<RunRecord>> find_run_by_key(std::string_view key) = 0;
  // Newest first.
  virtual Result<std::vector<RunRecord>> list_runs(const RunQuery& query) = 0;

  virtual Result<std::int64_t> append_event(const EventRecord& event) = 0;
  // Oldest first.
  virtual Result<std::vector<EventRecord>> list_events(const EventQuery& query) = 0;
};

// The schema version this binary creates and understands.
int current_schema_version();

// Opens (creating and migrating as needed) the store the config names.
Result<std::unique_ptr<Store>> open_store(const config::StateConfig& state);

}  // namespace dbops::store
