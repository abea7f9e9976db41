// Backups: the job kinds `backup`, `backup.verify`, `backup.prune` and
// `backup.restore`, the catalog (reindex), retention planning and the backup
// and drill metrics derived from the state store.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "obs/metrics.hpp"
#include "repo/repository.hpp"
#include "store/store.hpp"

namespace dbops::ops::backup {

// What prune decides for one complete backup.
struct PruneDecision {
  std::string id;
  bool keep = false;
  std::string reason;  // "keep_last", "daily 2026-11-25", "newest drilled", "max_age" ...
};

// Decides which of a target's complete backups (oldest first) prune keeps:
// the union of keep_last, keep_daily/weekly/monthly (UTC calendar), minus
// those older than max_age, except that `protected_id` (the newest backup
// that passed a drill) and pinned backups always stay, and so does the newest
// backup when every rule would delete everything.
std::vector<PruneDecision> plan_prune(const std::vector<repo::BackupListing>& backups,
                                      const config::RetentionPolicy& policy,
                                      std::chrono::system_clock::time_point now,
                                      std::string_view protected_id);

// The catalog row of a published backup (`run_id` empty after a reindex).
store::BackupRecord catalog_record(std::string repository, const repo::Manifest& manifest,
                                   std::string run_id);

// Rebuilds the store's catalog of the configured repository from its
// manifests; returns how many backups it found.
Result<std::size_t> reindex(const config::Config& config, store::Store& store, Clock& clock);

// Sets the dbops_backup_* and dbops_drill_* gauges (and the failure counter)
// from the store, for every configured target.
Status publish_metrics(const config::Config& config, store::Store& store, obs::Registry& registry);

// Writes a registry to a node_exporter textfile-collector file (atomically).
Status write_textfile(const std::filesystem::path& path, const obs::Registry& registry);

}  // namespace dbops::ops::backup
