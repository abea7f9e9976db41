// Backup repositories: where backups live, behind a small Storage interface.
//
// A repository is a tree of objects addressed by keys: relative,
// '/'-separated paths of printable ASCII segments (no empty segment, no "." or
// "..", no leading '/'), e.g. "pg-main/20261126T101522Z-3f9a/manifest.json".
// The posix driver maps keys onto files under its root; S3-compatible and
// other object stores follow behind the same interface.
//
// Writes are streaming and atomic: put() returns an ObjectWriter that takes
// the object piece by piece; nothing is visible under the key until commit()
// returns, after which the object is durable (posix: temporary file, fsync,
// rename, directory fsync). An abandoned writer (destroyed without commit,
// or after a failed write) leaves nothing under the key. Temporary files of a
// killed process are named "<key>.tmp.<pid>.<random>" and are never listed.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dbops::repo {

// What a driver can do; callers check before relying on it.
enum Feature : unsigned {
  kFeatureAtomicPut = 1U << 0,        // put() is all-or-nothing
  kFeatureExclusiveCreate = 1U << 1,  // create_exclusive() is atomic
  kFeatureRangeRead = 1U << 2,        // get() with an offset
  kFeatureDurable = 1U << 3,          // commit() survives a power loss
  kFeatureRename = 1U << 4,           // rename() is atomic
};

struct ObjectInfo {
  std::string key;
  std::uint64_t size = 0;
  std::chrono::system_clock::time_point modified{};
};

class ObjectWriter {
 public:
  // Destroying an uncommitted writer abandons the object.
  virtual ~ObjectWriter() = default;
  // Appends data. A full disk is an Error naming the key and "No space left on
  // device"; afterwards the writer is unusable.
  virtual Status write(std::string_view data) = 0;
  // Makes the object durable and visible under its key (replacing an object
  // with that key).
  virtual Status commit() = 0;
  // Removes what was written; the key is untouched.
  virtual void abandon() = 0;
  virtual std::uint64_t bytes_written() const = 0;
};

class ObjectReader {
 public:
  virtual ~ObjectReader() = default;
  // Reads up to cap bytes; 0 at the end of the object.
  virtual Result<std::size_t> read(char* buf, std::size_t cap) = 0;
  virtual std::uint64_t size() const = 0;
};

class Storage {
 public:
  virtual ~Storage() = default;

  virtual std::string_view driver() const = 0;  // "posix"
  // "posix:/var/backups/dbops", for messages and `dbops backup` output.
  virtual std::string describe() const = 0;
  virtual unsigned features() const = 0;

  virtual Result<std::unique_ptr<ObjectWriter>> put(std::string_view key) = 0;
  // Reads from `offset` (needs kFeatureRangeRead when offset > 0).
  // kNotFound when the object does not exist.
  virtual Result<std::unique_ptr<ObjectReader>> get(std::string_view key,
                                                    std::uint64_t offset = 0) = 0;
  // Objects whose key starts with `prefix` ("" lists everything; "pg-main/"
  // lists one target), sorted by key, temporary files excluded.
  virtual Result<std::vector<ObjectInfo>> list(std::string_view prefix) = 0;
  // nullopt when the object does not exist.
  virtual Result<std::optional<ObjectInfo>> stat(std::string_view key) = 0;
  // Removing a missing object is not an error.
  virtual Status remove(std::string_view key) = 0;
  // Creates the object with `data` only when the key does not exist yet:
  // false (and nothing written) when it does. Atomic with
  // kFeatureExclusiveCreate; the object is durable on return.
  virtual Result<bool> create_exclusive(std::string_view key, std::string_view data) = 0;
  // Moves an object; fails with kConflict when `to` exists.
  virtual Status rename(std::string_view from, std::string_view to) = 0;

  // Conveniences built on the above.
  Status put_bytes(std::string_view key, std::string_view data);
  // The bytes as stored; kNotFound when missing. Fails with
  // kInvalidArgument beyond `limit` bytes.
  Result<std::string> get_bytes(std::string_view key, std::size_t limit = 64U << 20);
  // Removes every object under `prefix` (which must end with '/'). Drivers
  // may override it to also remove what a killed writer left there (the posix
  // driver removes temporary files and empty directories); call it only when
  // no writer can be active under the prefix.
  virtual Status remove_prefix(std::string_view prefix);
};

// OK when `key` is a valid object key (see the top of this file): at most
// 1024 bytes, segments of at most 255 bytes, and no segment that looks like
// a temporary file ("<name>.tmp.<digits>.<hex>"). kInvalidArgument otherwise.
Status validate_key(std::string_view key);

// The posix driver, rooted at `root` (created with mode 0700 when missing).
Result<std::unique_ptr<Storage>> open_posix(const std::filesystem::path& root);

}  // namespace dbops::repo
