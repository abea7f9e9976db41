// Backup manifests: what a backup is, recorded next to its data.
//
// Layout of a repository (documented in docs/backup.md):
//   <target>/<backup-id>/manifest.json   written last; its presence makes the
//                                        backup exist
//   <target>/<backup-id>/<object>...     the data objects
//   <target>/<backup-id>/pins/<run-id>   pins held by running drills/restores
//   <target>/lock                        the per-target lock (repository.hpp)
//
// A backup id is "<UTC yyyymmddThhmmssZ>-<4 hex>", sortable by time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dbops::repo {

using TimePoint = std::chrono::system_clock::time_point;

struct ObjectEntry {
  std::string name;     // within the backup directory, e.g. "app.dump" (stored compressed)
  std::string content;  // what the plaintext is: "pg_dump custom", "tar", "sqlite" ...
  std::uint64_t plain_size = 0;
  std::uint64_t stored_size = 0;
  // SHA-256 (hex) of the list of plain_chunks, one lowercase hex digest and a
  // newline each: `split -b 4M --filter="sha256sum | cut -c1-64" FILE | sha256sum`.
  std::string plain_list_sha256;
  std::string stored_sha256;  // hex
  std::uint64_t chunk_size = 0;
  std::vector<std::string> plain_chunks;   // SHA-256 (hex) per chunk of plaintext
  std::vector<std::string> stored_chunks;  // SHA-256 (hex) per chunk of stored bytes
  std::string compression = "zstd";        // "zstd" | "none"
  int compression_level = 0;
  std::string encryption = "none";  // "none" | "xchacha20poly1305-secretstream"
  std::string key_id;               // of the encryption key; never the key
};

// Per table: row count and an order-independent 64-bit hash of its rows.
struct TableFingerprint {
  std::string table;  // schema-qualified where the engine has schemas
  std::int64_t rows = 0;
  std::string hash;  // 16 hex digits
  bool sampled = false;
};

struct DatabaseFingerprint {
  std::string database;
  std::string mode;  // "full" | "sampled"
  // Not taken in the backup's own snapshot; drills report, not fail, on it.
  bool approximate = false;
  std::vector<TableFingerprint> tables;
};

struct Manifest {
  int format = 1;
  std::string id;
  std::string target;
  std::string engine;
  std::string server_version;
  std::string method;  // "logical" | "physical" | "file" ...
  std::string tool;    // "pg_dump 15.8", "sqlite3 backup API 3.40.1" ...
  std::string dbops_version;
  TimePoint started_at{};
  TimePoint finished_at{};
  // Engine position, e.g. {"lsn": "0/3000060", "timeline": "1"}; for a
  // snapshot backup the position the data is consistent at.
  std::map<std::string, std::string> position;
  // Free-form facts: databases, tablespaces, checkpoint mode ...
  std::map<std::string, std::string> details;
  std::vector<ObjectEntry> objects;
  std::vector<DatabaseFingerprint> fingerprints;

  std::uint64_t plain_size() const;
  std::uint64_t stored_size() const;
  const ObjectEntry* find_object(std::string_view name) const;
};

std::string to_json(const Manifest& manifest);
// kCorrupt with what is wrong when the text is not a manifest this version reads.
Result<Manifest> manifest_from_json(std::string_view json);

// "20261126T101522Z-3f9a"
std::string new_backup_id(TimePoint now);
bool is_backup_id(std::string_view text);

// Keys of a backup's parts.
std::string backup_prefix(std::string_view target, std::string_view id);  // "t/id/"
std::string manifest_key(std::string_view target, std::string_view id);

}  // namespace dbops::repo
