// The repository: backups of every target on one Storage, with the per-target
// lock, pins, listing and removal.
//
// Lock: one object "<target>/lock" holds JSON {owner, host, pid, run_id,
// acquired_at, expires_at}. acquire() creates it exclusively; when it exists
// and its lease has expired it is taken over (renamed aside to a unique name
// and checked to be the one read, so two contenders never both win); when it
// is held, kConflict names the holder and when its lease ends. The holder
// renews the lease (a background thread of LockGuard does it every lease/3)
// and releases it at the end. Leftovers of a killed backup (backup directories
// without a manifest) are removed by the next lock holder only: the lease
// guarantees their writer is gone.
//
// Pins: a drill or restore pins a backup ("<target>/<id>/pins/<run-id>", JSON
// with an expiry renewed like the lock); prune skips pinned backups.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "repo/manifest.hpp"
#include "repo/storage.hpp"

namespace dbops::repo {

struct LockInfo {
  std::string owner;  // "host:pid"
  std::string run_id;
  TimePoint acquired_at{};
  TimePoint expires_at{};
};

class Repository;
namespace detail {
struct LeaseRecord;
}

// Holds a lock or a pin and renews it until destroyed or released. It must
// not outlive the Repository it came from. A holder checks healthy() before
// a step that relies on the lease (e.g. before publishing a manifest).
class LeaseGuard {
 public:
  LeaseGuard();  // holds nothing
  LeaseGuard(LeaseGuard&&) noexcept;
  LeaseGuard& operator=(LeaseGuard&&) noexcept;
  ~LeaseGuard();  // releases
  // Removes the lock/pin object now; idempotent.
  Status release();
  // An error when a renewal failed (the lease may have been lost).
  Status healthy() const;
  const std::string& key() const;

 private:
  friend class Repository;
  struct State;
  std::unique_ptr<State> state_;
};

struct BackupListing {
  std::string target;
  std::string id;
  std::optional<Manifest> manifest;  // nullopt: incomplete (no manifest)
  std::string problem;               // why the manifest could not be read
  std::vector<std::string> pins;     // run ids with a live pin
};

class Repository {
 public:
  Repository(std::unique_ptr<Storage> storage, Clock& clock,
             std::chrono::milliseconds lease = std::chrono::seconds(60));

  Storage& storage() { return *storage_; }
  std::string describe() const { return storage_->describe(); }
  std::chrono::milliseconds lease() const { return lease_; }

  // The per-target lock (see the top of this file).
  Result<LeaseGuard> lock(std::string_view target, std::string_view run_id);
  // Who holds a target's lock, nullopt when free or expired.
  Result<std::optional<LockInfo>> lock_holder(std::string_view target);
  // Pins a backup against prune while a drill or restore reads it.
  Result<LeaseGuard> pin(std::string_view target, std::string_view id, std::string_view run_id);

  // Targets with at least one object in the repository.
  Result<std::vector<std::string>> targets();
  // Backups of a target (every target when empty), oldest first, complete or
  // not.
  Result<std::vector<BackupListing>> list(std::string_view target = {});
  Result<Manifest> read_manifest(std::string_view target, std::string_view id);
  // Finds a backup by id (or unique prefix) across targets.
  Result<Manifest> find(std::string_view id);
  // The newest complete backup of a target; kNotFound when it has none.
  Result<Manifest> newest(std::string_view target);
  // Writes the manifest durably: the backup becomes visible.
  Status publish(const Manifest& manifest);
  // Deletes a backup: the manifest first (it disappears from listings), then
  // its objects.
  Status remove_backup(std::string_view target, std::string_view id);
  // Removes incomplete backup directories of a target; call with the lock held.
  Result<std::vector<std::string>> remove_leftovers(std::string_view target,
                                                    std::string_view keep_id = {});

 private:
  // A guard holding `record` under `key`, renewed from now on.
  LeaseGuard start_lease(std::string key, std::string what, bool is_lock,
                         detail::LeaseRecord record);

  std::unique_ptr<Storage> storage_;
  Clock& clock_;
  std::chrono::milliseconds lease_;
};

}  // namespace dbops::repo
