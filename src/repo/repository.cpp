#include "repo/repository.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "core/strings.hpp"
#include "repo/internal.hpp"

namespace dbops::repo {

// What a lock or pin object holds.
struct detail::LeaseRecord {
  std::string owner;  // "host:pid"
  std::string host;
  long pid = 0;
  std::string run_id;
  std::string token;  // unique per acquisition: tells one holder from another
  TimePoint acquired_at{};
  TimePoint expires_at{};
};

namespace {
using detail::LeaseRecord;

using nlohmann::json;

constexpr std::string_view kLockName = "lock";
constexpr std::string_view kTakeoverInfix = "lock.takeover.";
constexpr std::string_view kPinsDir = "pins/";
constexpr std::string_view kManifestName = "manifest.json";
constexpr int kLockAttempts = 16;

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::string record_json(const LeaseRecord& r) {
  json j = {{"owner", r.owner},
            {"host", r.host},
            {"pid", r.pid},
            {"run_id", r.run_id},
            {"token", r.token},
            {"acquired_at", internal::format_time(r.acquired_at)},
            {"expires_at", internal::format_time(r.expires_at)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::optional<LeaseRecord> parse_record(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  LeaseRecord r;
  auto str = [&](const char* field, std::string& out) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  std::string acquired, expires;
  if (!str("owner", r.owner) || !str("run_id", r.run_id) || !str("expires_at", expires)) {
    return std::nullopt;
  }
  str("host", r.host);
  str("token", r.token);
  str("acquired_at", acquired);
  if (auto it = j.find("pid"); it != j.end() && it->is_number_integer()) r.pid = it->get<long>();
  auto exp = internal::parse_time(expires);
  if (!exp) return std::nullopt;
  r.expires_at = *exp;
  if (auto acq = internal::parse_time(acquired)) r.acquired_at = *acq;
  return r;
}

LeaseRecord new_record(Clock& clock, std::chrono::milliseconds lease, std::string_view run_id) {
  LeaseRecord r;
  r.host = hostname();
  r.pid = static_cast<long>(::getpid());
  r.owner = r.host + ":" + std::to_string(r.pid);
  r.run_id = std::string(run_id);
  r.token = internal::random_hex(16);
  r.acquired_at = clock.now();
  r.expires_at = r.acquired_at + lease;
  return r;
}

Status validate_name(std::string_view what, std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos || !validate_key(name)) {
    return fail(ErrorCode::kInvalidArgument, "invalid " + std::string(what) + " \"" +
                                                 std::string(name) +
                                                 "\": expected printable ASCII without '/'");
  }
  return ok();
}

Status validate_id(std::string_view id) {
  if (!is_backup_id(id)) {
    return fail(ErrorCode::kInvalidArgument,
                "\"" + std::string(id) + "\" is not a backup id (yyyymmddThhmmssZ-xxxx)");
  }
  return ok();
}

std::string lock_key(std::string_view target) {
  return std::string(target) + "/" + std::string(kLockName);
}

// What one target's listing holds for a backup directory.
struct BackupDir {
  bool has_manifest = false;
  std::vector<std::string> pin_keys;
};

}  // namespace

// ---------------------------------------------------------------------------
// LeaseGuard

struct LeaseGuard::State {
  Storage* storage = nullptr;
  Clock* clock = nullptr;
  std::chrono::milliseconds lease{};
  std::string key;
  std::string what;  // "lock of target pg-main", "pin of backup pg-main/<id>"
  bool is_lock = false;
  LeaseRecord record;

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool released = false;
  bool lost = false;
  Status health;
  std::thread thread;

  void start() {
    thread = std::thread([this] { run(); });
  }

  void run() {
    // The lease is renewed every third of its length, in real time; the
    // record's times come from the injected clock.
    auto period = std::max(lease / 3, std::chrono::milliseconds(1));
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      cv.wait_for(lock, period, [this] { return stop; });
      if (stop || lost) break;
      renew_locked(lock);
    }
  }

  void renew_locked(std::unique_lock<std::mutex>& lock) {
    if (is_lock) {
      auto current = storage->get_bytes(key);
      // A contender's takeover may move the lock aside for a moment before it
      // puts it back: look again before calling it lost.
      for (int retry = 0; retry < 3 && !current && current.error().code == ErrorCode::kNotFound;
           ++retry) {
        if (cv.wait_for(lock, std::chrono::milliseconds(50), [this] { return stop; })) return;
        current = storage->get_bytes(key);
      }
      if (!current) {
        if (current.error().code == ErrorCode::kNotFound) {
          mark_lost("was removed by someone else");
        } else {
          health = std::unexpected(current.error());
        }
        return;
      }
      auto parsed = parse_record(*current);
      if (!parsed || parsed->token != record.token) {
        std::string by = parsed ? " by " + parsed->owner + " (run " + parsed->run_id + ")" : "";
        mark_lost("was taken over" + by);
        return;
      }
    }
    LeaseRecord next = record;
    next.expires_at = clock->now() + lease;
    auto written = storage->put_bytes(key, record_json(next));
    if (!written) {
      health = std::unexpected(written.error());
      return;
    }
    record = next;
    health = ok();
  }

  void mark_lost(const std::string& why) {
    lost = true;
    health = fail(ErrorCode::kConflict, "the " + what + " " + why + "; this run no longer holds it",
                  "Stop this run: another process may be working on the same data.");
  }

  Status release() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (released) return ok();
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    if (lost) return ok();
    if (is_lock) {
      // Remove only our own lock, never one that someone took over.
      auto current = storage->get_bytes(key);
      if (!current) {
        if (current.error().code == ErrorCode::kNotFound) return ok();
        return std::unexpected(current.error());
      }
      auto parsed = parse_record(*current);
      if (!parsed || parsed->token != record.token) return ok();
    }
    return storage->remove(key);
  }
};

LeaseGuard::LeaseGuard() = default;
LeaseGuard::LeaseGuard(LeaseGuard&&) noexcept = default;

LeaseGuard& LeaseGuard::operator=(LeaseGuard&& other) noexcept {
  if (this != &other) {
    (void)release();
    state_ = std::move(other.state_);
  }
  return *this;
}

LeaseGuard::~LeaseGuard() {
  (void)release();
}

Status LeaseGuard::release() {
  if (!state_) return ok();
  return state_->release();
}

Status LeaseGuard::healthy() const {
  if (!state_) return ok();
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->health;
}

const std::string& LeaseGuard::key() const {
  static const std::string kEmpty;
  return state_ ? state_->key : kEmpty;
}

// ---------------------------------------------------------------------------
// Repository

Repository::Repository(std::unique_ptr<Storage> storage, Clock& clock,
                       std::chrono::milliseconds lease)
    : storage_(std::move(storage)), clock_(clock), lease_(lease) {}

LeaseGuard Repository::start_lease(std::string key, std::string what, bool is_lock,
                                   LeaseRecord record) {
  LeaseGuard guard;
  guard.state_ = std::make_unique<LeaseGuard::State>();
  auto& s = *guard.state_;
  s.storage = storage_.get();
  s.clock = &clock_;
  s.lease = lease_;
  s.key = std::move(key);
  s.what = std::move(what);
  s.is_lock = is_lock;
  s.record = std::move(record);
  s.start();
  return guard;
}

Result<LeaseGuard> Repository::lock(std::string_view target, std::string_view run_id) {
  DBOPS_TRY(validate_name("target", target));
  const std::string key = lock_key(target);
  for (int attempt = 0; attempt < kLockAttempts; ++attempt) {
    LeaseRecord record = new_record(clock_, lease_, run_id);
    DBOPS_ASSIGN(bool created, storage_->create_exclusive(key, record_json(record)));
    if (created) {
      return start_lease(key, "lock of target " + std::string(target), /*is_lock=*/true,
                         std::move(record));
    }

    auto existing = storage_->get_bytes(key);
    if (!existing) {
      if (existing.error().code == ErrorCode::kNotFound) continue;  // released meanwhile
      return std::unexpected(existing.error());
    }
    auto holder = parse_record(*existing);
    if (!holder) {
      return fail(ErrorCode::kConflict,
                  "target " + std::string(target) + " is locked by an unreadable lock object " +
                      key + " in " + describe(),
                  "If no dbops is working on this target, remove that object.");
    }
    if (holder->expires_at > clock_.now()) {
      return fail(ErrorCode::kConflict,
                  "target " + std::string(target) + " is locked by " + holder->owner + " (run " +
                      holder->run_id + ") until " + internal::format_time(holder->expires_at),
                  "Wait for that run to finish; if its process died, the lock expires at that "
                  "time on its own.");
    }

    // Expired: move it aside, and make sure what was moved is what was read
    // (someone else may have taken it over and locked again meanwhile).
    std::string aside =
        std::string(target) + "/" + std::string(kTakeoverInfix) + internal::random_hex(16);
    auto moved = storage_->rename(key, aside);
    if (!moved) {
      auto code = moved.error().code;
      if (code == ErrorCode::kNotFound || code == ErrorCode::kConflict) continue;
      return std::unexpected(moved.error());
    }
    auto moved_bytes = storage_->get_bytes(aside);
    if (!moved_bytes) return std::unexpected(moved_bytes.error());
    if (*moved_bytes == *existing) {
      DBOPS_TRY(storage_->remove(aside));
      continue;  // the expired lock is gone: create ours
    }
    // We moved someone's fresh lock: put it back.
    auto restored = storage_->rename(aside, key);
    if (!restored) {
      if (restored.error().code != ErrorCode::kConflict) return std::unexpected(restored.error());
      // A third contender locked meanwhile; the lock we moved is lost and its
      // holder learns it at its next renewal.
      DBOPS_TRY(storage_->remove(aside));
    }
  }
  return fail(ErrorCode::kConflict,
              "could not lock target " + std::string(target) + ": its lock kept changing hands");
}

Result<std::optional<LockInfo>> Repository::lock_holder(std::string_view target) {
  DBOPS_TRY(validate_name("target", target));
  auto bytes = storage_->get_bytes(lock_key(target));
  if (!bytes) {
    if (bytes.error().code == ErrorCode::kNotFound) return std::optional<LockInfo>{};
    return std::unexpected(bytes.error());
  }
  auto record = parse_record(*bytes);
  if (!record) {
    return fail(ErrorCode::kCorrupt,
                "lock object " + lock_key(target) + " in " + describe() + " is not readable");
  }
  if (record->expires_at <= clock_.now()) return std::optional<LockInfo>{};
  return std::optional<LockInfo>{
      LockInfo{record->owner, record->run_id, record->acquired_at, record->expires_at}};
}

Result<LeaseGuard> Repository::pin(std::string_view target, std::string_view id,
                                   std::string_view run_id) {
  DBOPS_TRY(validate_name("target", target));
  DBOPS_TRY(validate_id(id));
  DBOPS_TRY(validate_name("run id", run_id));
  const std::string mkey = manifest_key(target, id);
  auto backup_missing = [&]() {
    return fail(ErrorCode::kNotFound, "backup " + std::string(target) + "/" + std::string(id) +
                                          " does not exist in " + describe());
  };
  DBOPS_ASSIGN(auto manifest, storage_->stat(mkey));
  if (!manifest) return backup_missing();

  LeaseRecord record = new_record(clock_, lease_, run_id);
  std::string key = backup_prefix(target, id) + std::string(kPinsDir) + std::string(run_id);
  DBOPS_TRY(storage_->put_bytes(key, record_json(record)));
  // A concurrent removal may have deleted the manifest before our pin landed.
  DBOPS_ASSIGN(manifest, storage_->stat(mkey));
  if (!manifest) {
    (void)storage_->remove(key);
    return backup_missing();
  }

  return start_lease(std::move(key), "pin of backup " + std::string(target) + "/" + std::string(id),
                     /*is_lock=*/false, std::move(record));
}

Result<std::vector<std::string>> Repository::targets() {
  DBOPS_ASSIGN(auto objects, storage_->list(""));
  std::vector<std::string> out;
  for (const auto& o : objects) {
    std::size_t slash = o.key.find('/');
    if (slash == std::string::npos) continue;
    std::string target = o.key.substr(0, slash);
    if (out.empty() || out.back() != target) out.push_back(std::move(target));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

// The backup directories under `target` (every target when empty), keyed by
// (target, id), from one listing of the storage.
Result<std::map<std::pair<std::string, std::string>, BackupDir>> scan(Storage& storage,
                                                                      std::string_view target) {
  const std::string prefix = target.empty() ? std::string() : std::string(target) + "/";
  DBOPS_ASSIGN(auto objects, storage.list(prefix));
  std::map<std::pair<std::string, std::string>, BackupDir> dirs;
  for (const auto& o : objects) {
    const std::string_view key = o.key;
    const std::size_t first = key.find('/');
    if (first == std::string_view::npos) continue;
    const std::string_view rest = key.substr(first + 1);
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) continue;  // the lock, takeover leftovers
    const std::string_view id = rest.substr(0, slash);
    if (!is_backup_id(id)) continue;
    const std::string_view inside = rest.substr(slash + 1);
    BackupDir& dir = dirs[{std::string(key.substr(0, first)), std::string(id)}];
    if (inside == kManifestName) {
      dir.has_manifest = true;
    } else if (inside.starts_with(kPinsDir) &&
               inside.find('/', kPinsDir.size()) == std::string_view::npos) {
      dir.pin_keys.push_back(o.key);
    }
  }
  return dirs;
}

// The run ids of the pins among `pin_keys` whose lease has not expired.
std::vector<std::string> live_pins(Storage& storage, const std::vector<std::string>& pin_keys,
                                   TimePoint now) {
  std::vector<std::string> out;
  for (const auto& pin_key : pin_keys) {
    auto bytes = storage.get_bytes(pin_key);
    if (!bytes) continue;  // released meanwhile
    auto record = parse_record(*bytes);
    if (record && record->expires_at > now) out.push_back(pin_key.substr(pin_key.rfind('/') + 1));
  }
  return out;
}

}  // namespace

Result<std::vector<BackupListing>> Repository::list(std::string_view target) {
  if (!target.empty()) DBOPS_TRY(validate_name("target", target));
  DBOPS_ASSIGN(auto dirs, scan(*storage_, target));
  std::vector<BackupListing> out;
  const TimePoint now = clock_.now();
  for (auto& [where, dir] : dirs) {
    BackupListing listing;
    listing.target = where.first;
    listing.id = where.second;
    if (dir.has_manifest) {
      auto manifest = read_manifest(listing.target, listing.id);
      if (manifest) {
        listing.manifest = std::move(*manifest);
      } else {
        listing.problem = manifest.error().to_string();
      }
    } else {
      listing.problem = "incomplete: no manifest";
    }
    listing.pins = live_pins(*storage_, dir.pin_keys, now);
    out.push_back(std::move(listing));
  }
  // Oldest first. Ids carry whole seconds only; within one second the
  // manifests' start times (milliseconds) decide.
  const auto key = [](const BackupListing& b) {
    return std::make_tuple(b.id.substr(0, 16),
                           b.manifest ? b.manifest->started_at : TimePoint::max(), b.id, b.target);
  };
  std::stable_sort(out.begin(), out.end(),
                   [&](const BackupListing& a, const BackupListing& b) { return key(a) < key(b); });
  return out;
}

Result<Manifest> Repository::read_manifest(std::string_view target, std::string_view id) {
  DBOPS_TRY(validate_name("target", target));
  DBOPS_TRY(validate_id(id));
  std::string where = std::string(target) + "/" + std::string(id);
  auto bytes = storage_->get_bytes(manifest_key(target, id));
  if (!bytes) {
    if (bytes.error().code == ErrorCode::kNotFound) {
      return fail(ErrorCode::kNotFound,
                  "backup " + where + " does not exist in " + describe() + " (no manifest)");
    }
    return fail(std::move(bytes).error().with_context(where));
  }
  auto manifest = manifest_from_json(*bytes);
  if (!manifest) return fail(std::move(manifest).error().with_context(where));
  if (manifest->target != target || manifest->id != id) {
    return fail(ErrorCode::kCorrupt, "manifest of " + where + " describes backup " +
                                         manifest->target + "/" + manifest->id);
  }
  return manifest;
}

Result<Manifest> Repository::newest(std::string_view target) {
  DBOPS_ASSIGN(auto listing, list(target));
  for (auto it = listing.rbegin(); it != listing.rend(); ++it) {
    if (it->manifest) return *it->manifest;
  }
  return fail(ErrorCode::kNotFound, "target " + std::string(target) + " has no backup",
              "take one with `dbops backup run --target " + std::string(target) + "`");
}

Result<Manifest> Repository::find(std::string_view id) {
  if (id.empty()) return fail(ErrorCode::kInvalidArgument, "empty backup id");
  // Matched on the listing; only the manifest that matches is read.
  DBOPS_ASSIGN(auto dirs, scan(*storage_, ""));
  std::vector<std::pair<std::pair<std::string, std::string>, BackupDir>> matches;
  bool exact = false;
  for (const auto& [where, dir] : dirs) {
    if (where.second == id) {
      if (!exact) matches.clear();
      exact = true;
      matches.emplace_back(where, dir);
    } else if (!exact && where.second.starts_with(id)) {
      matches.emplace_back(where, dir);
    }
  }
  if (matches.empty()) {
    return fail(ErrorCode::kNotFound, "no backup with id " + std::string(id) + " in " + describe(),
                "List the backups with `dbops backup list`.");
  }
  std::vector<std::string> complete, incomplete;
  const std::pair<std::string, std::string>* found = nullptr;
  for (const auto& [where, dir] : matches) {
    (dir.has_manifest ? complete : incomplete).push_back(where.first + "/" + where.second);
    if (dir.has_manifest) found = &where;
  }
  if (complete.size() > 1) {
    return fail(ErrorCode::kInvalidArgument,
                "backup id " + std::string(id) + " is ambiguous: " + join(complete, ", "),
                "Give more of the id.");
  }
  if (!found) {
    return fail(ErrorCode::kNotFound, "no complete backup matches " + std::string(id) + ": " +
                                          join(incomplete, ", ") + " (incomplete: no manifest)");
  }
  return read_manifest(found->first, found->second);
}

Status Repository::publish(const Manifest& manifest) {
  DBOPS_TRY(validate_name("target", manifest.target));
  DBOPS_TRY(validate_id(manifest.id));
  std::string where = manifest.target + "/" + manifest.id;
  std::string text = to_json(manifest);
  if (auto check = manifest_from_json(text); !check) {
    return fail(ErrorCode::kInternal, "refusing to publish an invalid manifest for " + where +
                                          ": " + check.error().message);
  }
  // Every object must be there, at the size recorded.
  for (const auto& object : manifest.objects) {
    std::string key = backup_prefix(manifest.target, manifest.id) + object.name;
    DBOPS_ASSIGN(auto info, storage_->stat(key));
    if (!info) {
      return fail(ErrorCode::kNotFound, "cannot publish backup " + where + ": object " +
                                            object.name + " is missing from " + describe());
    }
    if (info->size != object.stored_size) {
      return fail(ErrorCode::kCorrupt, "cannot publish backup " + where + ": object " +
                                           object.name + " has " + std::to_string(info->size) +
                                           " bytes, the manifest records " +
                                           std::to_string(object.stored_size));
    }
  }
  DBOPS_ASSIGN(bool created,
               storage_->create_exclusive(manifest_key(manifest.target, manifest.id), text));
  if (!created) {
    return fail(ErrorCode::kConflict, "backup " + where + " is already published in " + describe());
  }
  return ok();
}

Status Repository::remove_backup(std::string_view target, std::string_view id) {
  DBOPS_TRY(validate_name("target", target));
  DBOPS_TRY(validate_id(id));
  std::string where = std::string(target) + "/" + std::string(id);
  DBOPS_ASSIGN(auto objects, storage_->list(backup_prefix(target, id)));
  if (objects.empty()) {
    return fail(ErrorCode::kNotFound, "backup " + where + " does not exist in " + describe());
  }
  std::vector<std::string> pin_keys;
  const std::string pins_prefix = backup_prefix(target, id) + std::string(kPinsDir);
  for (const auto& o : objects) {
    if (o.key.starts_with(pins_prefix)) pin_keys.push_back(o.key);
  }
  std::vector<std::string> pins = live_pins(*storage_, pin_keys, clock_.now());
  if (!pins.empty()) {
    return fail(ErrorCode::kConflict, "backup " + where + " is pinned by run " + join(pins, ", "),
                "Wait for the drill or restore to finish; pins of a process that died expire "
                "on their own.");
  }
  DBOPS_TRY(storage_->remove(manifest_key(target, id)));
  return storage_->remove_prefix(backup_prefix(target, id));
}

Result<std::vector<std::string>> Repository::remove_leftovers(std::string_view target,
                                                              std::string_view keep_id) {
  DBOPS_TRY(validate_name("target", target));
  DBOPS_ASSIGN(auto dirs, scan(*storage_, target));
  std::vector<std::string> removed;
  for (const auto& [where, dir] : dirs) {
    const std::string& id = where.second;
    if (dir.has_manifest || id == keep_id) continue;
    DBOPS_TRY(storage_->remove_prefix(backup_prefix(target, id)));
    removed.push_back(id);
  }
  // Locks moved aside by a takeover that was killed halfway.
  std::string aside_prefix = std::string(target) + "/" + std::string(kTakeoverInfix);
  DBOPS_ASSIGN(auto asides, storage_->list(aside_prefix));
  const TimePoint now = clock_.now();
  for (const auto& aside : asides) {
    auto bytes = storage_->get_bytes(aside.key);
    if (!bytes) continue;
    auto record = parse_record(*bytes);
    if (!record || record->expires_at + lease_ < now) DBOPS_TRY(storage_->remove(aside.key));
  }
  return removed;
}

}  // namespace dbops::repo
