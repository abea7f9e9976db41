// Retention planning, the catalog rebuilt from the repository, and the backup
// and drill metrics derived from the store.
#include <ctime>
#include <map>
#include <set>

#include "core/atomic_file.hpp"
#include "ops/backup/backup.hpp"
#include "repo/backup_io.hpp"

namespace dbops::ops::backup {
namespace {

std::tm utc(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return tm;
}

std::string period_key(const std::tm& tm, char kind) {
  char buf[32];
  if (kind == 'd') {
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  } else if (kind == 'w') {
    std::strftime(buf, sizeof buf, "%G-W%V", &tm);
  } else {
    std::strftime(buf, sizeof buf, "%Y-%m", &tm);
  }
  return buf;
}

}  // namespace

std::vector<PruneDecision> plan_prune(const std::vector<repo::BackupListing>& backups,
                                      const config::RetentionPolicy& policy,
                                      std::chrono::system_clock::time_point now,
                                      std::string_view protected_id) {
  const std::size_t n = backups.size();
  std::vector<PruneDecision> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i].id = backups[i].id;
  const bool any_rule = policy.keep_last || policy.keep_daily || policy.keep_weekly ||
                        policy.keep_monthly || policy.max_age.count();
  if (!any_rule) {
    for (auto& d : out) {
      d.keep = true;
      d.reason = "no retention rule";
    }
    return out;
  }
  const auto finished = [&](std::size_t i) {
    return backups[i].manifest ? backups[i].manifest->finished_at
                               : std::chrono::system_clock::time_point{};
  };
  // With max_age alone, everything younger stays.
  const bool keep_rules =
      policy.keep_last || policy.keep_daily || policy.keep_weekly || policy.keep_monthly;
  if (!keep_rules) {
    for (auto& d : out) {
      d.keep = true;
      d.reason = "younger than max_age";
    }
  }
  // Newest first.
  int kept_last = 0;
  std::map<char, std::set<std::string>> periods;
  const std::map<char, int> limits = {
      {'d', policy.keep_daily}, {'w', policy.keep_weekly}, {'m', policy.keep_monthly}};
  for (std::size_t k = n; k-- > 0;) {
    PruneDecision& d = out[k];
    if (kept_last < policy.keep_last) {
      ++kept_last;
      d.keep = true;
      d.reason = "keep_last";
    }
    const std::tm tm = utc(finished(k));
    for (const auto& [kind, limit] : limits) {
      if (limit <= 0) continue;
      auto& seen = periods[kind];
      const std::string key = period_key(tm, kind);
      if (seen.contains(key) || static_cast<int>(seen.size()) >= limit) continue;
      seen.insert(key);
      if (!d.keep) {
        d.keep = true;
        d.reason = std::string(kind == 'd' ? "daily " : kind == 'w' ? "weekly " : "monthly ") + key;
      }
    }
    if (policy.max_age.count() && now - finished(k) > policy.max_age) {
      d.keep = false;
      d.reason = "older than max_age";
    } else if (!d.keep && d.reason.empty()) {
      d.reason = "not kept by any rule";
    }
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (!protected_id.empty() && out[k].id == protected_id && !out[k].keep) {
      out[k].keep = true;
      out[k].reason = "newest backup that passed a drill";
    }
    if (!backups[k].pins.empty() && !out[k].keep) {
      out[k].keep = true;
      out[k].reason = "pinned by a running drill or restore";
    }
  }
  if (n && std::none_of(out.begin(), out.end(), [](const auto& d) { return d.keep; })) {
    out[n - 1].keep = true;
    out[n - 1].reason = "the newest backup is never deleted";
  }
  return out;
}

store::BackupRecord catalog_record(std::string repository, const repo::Manifest& m,
                                   std::string run_id) {
  return store::BackupRecord{.repository = std::move(repository),
                             .target = m.target,
                             .id = m.id,
                             .engine = m.engine,
                             .method = m.method,
                             .started_at = m.started_at,
                             .finished_at = m.finished_at,
                             .plain_size = m.plain_size(),
                             .stored_size = m.stored_size(),
                             .run_id = std::move(run_id),
                             .manifest_json = repo::to_json(m)};
}

Result<std::size_t> reindex(const config::Config& config, store::Store& store, Clock& clock) {
  DBOPS_ASSIGN(auto repository, repo::open_repository(config, clock));
  DBOPS_ASSIGN(auto listing, repository->list());
  std::vector<store::BackupRecord> records;
  for (const auto& l : listing) {
    if (!l.manifest) continue;
    records.push_back(catalog_record(repository->describe(), *l.manifest, {}));
  }
  DBOPS_TRY(store.replace_backups(repository->describe(), records));
  return records.size();
}

Status publish_metrics(const config::Config& config, store::Store& store, obs::Registry& registry) {
  auto& last_success =
      registry.gauge("dbops_backup_last_success_timestamp_seconds",
                     "When the target's newest backup finished (Unix time).", {"target"});
  auto& duration = registry.gauge("dbops_backup_duration_seconds",
                                  "How long the target's newest backup took.", {"target"});
  auto& size =
      registry.gauge("dbops_backup_size_bytes",
                     "Bytes the target's newest backup occupies in the repository.", {"target"});
  auto& failures =
      registry.counter("dbops_backup_failures_total",
                       "Backups of the target that failed (runs in the state store).", {"target"});
  auto& drill_success =
      registry.gauge("dbops_drill_last_success_timestamp_seconds",
                     "When the target's newest passing drill finished.", {"target"});
  auto& rto =
      registry.gauge("dbops_drill_rto_seconds",
                     "Restore plus verification time of the target's newest drill.", {"target"});
  auto& rpo =
      registry.gauge("dbops_drill_rpo_seconds",
                     "Age of the drilled backup's position when the newest drill ran.", {"target"});
  const auto unix_seconds = [](std::chrono::system_clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
  };
  for (const auto& t : config.targets) {
    DBOPS_ASSIGN(auto backups, store.list_backups({.target = t.name, .limit = 1}));
    if (!backups.empty()) {
      const auto& b = backups.front();
      last_success.set({t.name}, unix_seconds(b.finished_at));
      duration.set({t.name}, std::chrono::duration<double>(b.finished_at - b.started_at).count());
      size.set({t.name}, static_cast<double>(b.stored_size));
    }
    std::int64_t failed_runs = 0;
    for (const auto state : {store::RunState::kFailed, store::RunState::kCheckFailed}) {
      DBOPS_ASSIGN(const auto n,
                   store.count_runs({.target = t.name, .kind = "backup", .state = state}));
      failed_runs += n;
    }
    failures.set({t.name}, static_cast<double>(failed_runs));
    DBOPS_ASSIGN(auto drills, store.list_drills({.target = t.name, .limit = 1}));
    if (!drills.empty()) {
      rto.set({t.name}, drills.front().rto_seconds);
      rpo.set({t.name}, drills.front().rpo_seconds);
    }
    DBOPS_ASSIGN(auto passed, store.list_drills({.target = t.name, .passed = true, .limit = 1}));
    if (!passed.empty()) drill_success.set({t.name}, unix_seconds(passed.front().finished_at));
  }
  return ok();
}

Status write_textfile(const std::filesystem::path& path, const obs::Registry& registry) {
  // node_exporter reads *.prom files; the atomic rename keeps it from reading
  // half a file.
  return write_file_atomic(path, registry.expose(), 0644);
}

}  // namespace dbops::ops::backup
