// The state store: job runs, their events, and (as later capabilities land)
// targets' observed state, the backup catalog and drill results.
//
// SQLite (WAL) is the embedded default; PostgreSQL is the store several
// agents share (store/postgres/postgres_store.hpp). The schema is versioned
// and migrated on open. A SQLite schema newer than this binary knows is
// refused; a newer PostgreSQL one is used (its migrations only expand, so
// that agents sharing it can be upgraded one at a time).
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

// The backup catalog mirrors the repositories' manifests; the repository is
// the source of truth (`dbops backup reindex` rebuilds this from it).
struct BackupRecord {
  std::string repository;  // Storage::describe() of the repository
  std::string target;
  std::string id;
  std::string engine;
  std::string method;
  TimePoint started_at{};
  TimePoint finished_at{};
  std::uint64_t plain_size = 0;
  std::uint64_t stored_size = 0;
  std::string run_id;         // the run that took it; empty after a reindex
  std::string manifest_json;  // the manifest as stored
};

struct BackupQuery {
  std::string repository;  // empty: any
  std::string target;      // empty: every target
  std::size_t limit = 1000;
};

// The result of one restore drill, with its evidence.
struct DrillRecord {
  std::string run_id;
  std::string target;
  std::string backup_id;
  TimePoint started_at{};
  TimePoint finished_at{};
  bool passed = false;
  double rto_seconds = 0;            // restore plus verification
  double rpo_seconds = 0;            // age of the backup's position at drill time
  std::string failed_check;          // the first check that failed, empty when passed
  std::string evidence_json = "{}";  // every check with its detail
};

struct DrillQuery {
  std::string target;
  std::string backup_id;
  std::optional<bool> passed;
  std::size_t limit = 50;
};

class Store {
 public:
  virtual ~Store() = default;

  // e.g. "sqlite /var/lib/dbops/state.db", "postgres host=db1 dbname=dbops"
  // (never a password)
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
  // How many runs match (limit ignored).
  virtual Result<std::int64_t> count_runs(const RunQuery& query) = 0;

  virtual Result<std::int64_t> append_event(const EventRecord& event) = 0;
  // Oldest first.
  virtual Result<std::vector<EventRecord>> list_events(const EventQuery& query) = 0;

  // Backup catalog. upsert_backup() inserts or replaces by (repository,
  // target, id), which must all be set.
  virtual Status upsert_backup(const BackupRecord& backup) = 0;
  // Removing an entry the catalog does not hold is not an error.
  virtual Status remove_backup(std::string_view repository, std::string_view target,
                               std::string_view id) = 0;
  // Newest first (by finished_at).
  virtual Result<std::vector<BackupRecord>> list_backups(const BackupQuery& query) = 0;
  // Replaces every catalog row of `repository` with `backups`, in one
  // transaction (reindex). An entry's repository must be empty (taken as
  // `repository`) or equal to it.
  virtual Status replace_backups(std::string_view repository,
                                 const std::vector<BackupRecord>& backups) = 0;

  // Drill results; newest first (by finished_at). A second result with the
  // same (run_id, target, backup_id) is a conflict.
  virtual Status insert_drill(const DrillRecord& drill) = 0;
  virtual Result<std::vector<DrillRecord>> list_drills(const DrillQuery& query) = 0;
};

// The schema version this binary creates and understands (SQLite; the
// PostgreSQL store numbers its own).
int current_schema_version();

// Opens (creating and migrating as needed) the store the config names.
Result<std::unique_ptr<Store>> open_store(const config::StateConfig& state);

}  // namespace dbops::store
