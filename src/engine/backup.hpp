// Backup and restore capabilities of an engine.
//
// A BackupDriver takes a backup of a target with the engine's own tools
// (pg_dump, pg_basebackup, the SQLite backup API ...) and hands the bytes of
// each object it produces to a BackupOutput, which the caller (ops/backup)
// streams through the repository's pipeline. A RestoreTarget puts a stored
// backup back: into a live target, into a path, or into a throwaway instance
// for a restore drill, where it also computes what the drill compares.
//
// Content fingerprints: per table the row count and an order-independent
// 64-bit hash of its rows, computed identically at backup time (inside the
// backup's snapshot) and in the drill's restored instance.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"

namespace dbops::engine {

enum class FingerprintMode { kOff, kSampled, kFull };
std::string_view fingerprint_mode_name(FingerprintMode mode);
std::optional<FingerprintMode> parse_fingerprint_mode(std::string_view text);

struct TableFingerprint {
  std::string table;  // schema-qualified where the engine has schemas
  std::int64_t rows = 0;
  std::uint64_t hash = 0;  // sum of the rows' 64-bit hashes, modulo 2^64
  bool sampled = false;    // hash covers a deterministic sample of the rows
};

struct DatabaseFingerprint {
  std::string database;
  FingerprintMode mode = FingerprintMode::kFull;
  // Not taken in the backup's own snapshot (MariaDB, when the binary log positions
  // of the two snapshots differ): a drill reports differences, but does not
  // fail on them.
  bool approximate = false;
  std::vector<TableFingerprint> tables;
};

// Where a driver puts the objects of one backup.
class BackupOutput {
 public:
  using Write = std::function<Status(std::string_view bytes)>;
  virtual ~BackupOutput() = default;
  // Stores one object: `produce` gets a Write that takes the object's bytes in
  // order; the object is complete when `produce` returns OK.
  virtual Status object(std::string_view name, std::string_view content,
                        const std::function<Status(const Write&)>& produce) = 0;
  // A phase the user should know about ("waiting for a spread checkpoint").
  virtual void note(std::string_view message) = 0;
  // Set when the operation is cancelled; drivers pass it to their children.
  virtual const std::atomic<bool>* cancel() const = 0;
  // A directory for temporary files (removed by the caller afterwards).
  virtual const std::filesystem::path& spool_dir() const = 0;
};

struct BackupRequest {
  std::string method;  // one of BackupDriver::methods(); empty: the first
  // Logical backups: the databases to dump; empty: the target's database;
  // {"*"}: every database plus the globals (roles, tablespaces).
  std::vector<std::string> databases;
  FingerprintMode fingerprint = FingerprintMode::kSampled;
  // Physical backups: "fast" or "spread".
  std::string checkpoint = "fast";
  // For each child process; zero: none.
  std::chrono::milliseconds timeout{0};
};

struct BackupResult {
  std::string server_version;
  std::string tool;  // "pg_dump 15.8 (Debian 15.8-0+deb12u1)"
  std::map<std::string, std::string> position;
  std::map<std::string, std::string> details;
  std::vector<DatabaseFingerprint> fingerprints;
};

class BackupDriver {
 public:
  virtual ~BackupDriver() = default;
  // The methods it implements; the first is the default.
  virtual std::vector<std::string> methods() const = 0;
  virtual Result<BackupResult> backup(const config::Target& target, const BackupRequest& request,
                                      BackupOutput& output) const = 0;
};

// What a restore reads: the objects of one stored backup.
class BackupInput {
 public:
  virtual ~BackupInput() = default;
  // Names and contents ("pg_dump custom", "tar" ...) of the objects, in order.
  virtual std::vector<std::pair<std::string, std::string>> objects() const = 0;
  // Streams an object's plaintext (checked against its checksums) to consume.
  virtual Status read(std::string_view name,
                      const std::function<Status(std::string_view bytes)>& consume) = 0;
  virtual const std::string& method() const = 0;
  virtual const std::map<std::string, std::string>& details() const = 0;
  virtual const std::atomic<bool>* cancel() const = 0;
  virtual const std::filesystem::path& spool_dir() const = 0;
};

// Writes an object's plaintext (checked against its manifest on the way) to
// `path`: durably and atomically (temporary file, fsync, rename) for a
// restore's result, or plainly for a spool file that only lives as long as
// the operation.
Status write_object_file(BackupInput& input, std::string_view name,
                         const std::filesystem::path& path, bool durable);

// One verification a drill performed.
struct DrillCheck {
  std::string name;  // "checksums", "pg_verifybackup", "amcheck", "fingerprint", "canary:<name>"
  bool passed = false;
  std::string detail;
  double seconds = 0;
};

// A restored backup running somewhere throwaway, for a drill.
class DrillInstance {
 public:
  virtual ~DrillInstance() = default;
  // A target that reaches the restored data (a database of the instance, or
  // the restored file); `database` empty: the backup's main database.
  virtual config::Target target(std::string_view database = {}) const = 0;
  // The databases that were restored.
  virtual std::vector<std::string> databases() const = 0;
  // Engine checks of the restored data (pg_verifybackup, amcheck,
  // quick_check ...), in order.
  virtual std::vector<DrillCheck> verify() = 0;
  // The fingerprint of one restored database, computed like at backup time.
  virtual Result<DatabaseFingerprint> fingerprint(std::string_view database,
                                                  FingerprintMode mode) = 0;
  // Runs a canary query and returns its result rendered as text (columns
  // separated by '|', rows by '\n').
  virtual Result<std::string> query(std::string_view database, std::string_view sql) = 0;
};

struct DrillOptions {
  std::string run_as;  // user the throwaway server runs as
  std::filesystem::path base_dir;
  std::chrono::milliseconds timeout{0};
  int jobs = 2;  // parallel restore workers where the tool has them
};

struct RestoreOptions {
  // Restore into a target that already holds data.
  bool allow_nonempty = false;
  int jobs = 2;
  std::chrono::milliseconds timeout{0};
};

class RestoreTarget {
 public:
  virtual ~RestoreTarget() = default;
  // Restores into a live target (logical backups; SQLite: the target's file
  // is replaced atomically). kConflict when the target holds data and
  // allow_nonempty is false.
  virtual Status restore_into(const config::Target& destination, BackupInput& input,
                              const RestoreOptions& options) const = 0;
  // Restores into a path: a data directory for a physical backup, a file for
  // SQLite. The path must not exist or be an empty directory.
  virtual Status restore_to_path(const std::filesystem::path& path, BackupInput& input,
                                 const RestoreOptions& options) const = 0;
  // Restores into a throwaway instance for a drill.
  virtual Result<std::unique_ptr<DrillInstance>> start_drill(BackupInput& input,
                                                             const DrillOptions& options) const = 0;
};

}  // namespace dbops::engine
