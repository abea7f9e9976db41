// The backup job kinds: backup, backup.verify, backup.prune, backup.restore.
#include <nlohmann/json.hpp>

#include "core/fault.hpp"
#include "core/json_text.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/temp_dir.hpp"
#include "core/time_format.hpp"
#include "core/version.hpp"
#include "engine/engine.hpp"
#include "ops/backup/backup.hpp"
#include "ops/register.hpp"
#include "repo/backup_io.hpp"
#include "runtime/job.hpp"

namespace dbops::ops::backup {
namespace {

using json = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

repo::ProgressFn progress_to(const runtime::JobContext& ctx) {
  return [&ctx](std::string_view phase, std::uint64_t done, std::uint64_t total,
                std::string_view note) {
    // Phases such as a checkpoint wait also reach the log, for runs without a
    // terminal.
    if (!note.empty()) log::info(std::string(note), {{"phase", std::string(phase)}});
    ctx.progress(runtime::Progress{
        .phase = std::string(phase), .done = done, .total = total, .note = std::string(note)});
  };
}

double seconds(std::chrono::system_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

Result<const engine::Engine*> engine_of(std::string_view name) {
  const engine::Engine* e = engine::Registry::global().find(name);
  if (!e) return fail(ErrorCode::kUnsupported, "unknown engine \"" + std::string(name) + "\"");
  return e;
}

std::optional<Secret> key_of(const repo::PipelineOptions& options) {
  return options.key;
}

// ------------------------------------------------------------------ backup

constexpr runtime::ParamDecl kBackupParams[] = {
    {.name = "method",
     .type = runtime::ParamType::kString,
     .description = "backup method (logical, physical, file ...); the target's backup.method, "
                    "else the engine's first"},
    {.name = "databases",
     .type = runtime::ParamType::kStringList,
     .description = "databases of a logical backup; [\"*\"] for all plus globals"},
    {.name = "fingerprint",
     .type = runtime::ParamType::kString,
     .description = "off | sampled | full; the target's setting, else backup.fingerprint"},
};

class BackupJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return "backup"; }
  bool exclusive() const override { return true; }
  std::string_view description() const override {
    return "takes a backup of the target into the repository (streamed through zstd, optional "
           "encryption and SHA-256), with a content fingerprint";
  }
  std::span<const runtime::ParamDecl> params() const override { return kBackupParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    const config::Target& target = *ctx.target();
    const config::Config& config = ctx.config();
    DBOPS_ASSIGN(const engine::Engine* eng, engine_of(target.engine));
    const engine::BackupDriver* driver = eng->backup_driver();
    if (!driver) {
      return fail(ErrorCode::kUnsupported,
                  "engine " + std::string(eng->name()) + " cannot take backups yet");
    }
    engine::BackupRequest request;
    request.method = ctx.params().string("method", target.backup.method);
    const auto methods = driver->methods();
    if (request.method.empty()) request.method = methods.front();
    if (std::find(methods.begin(), methods.end(), request.method) == methods.end()) {
      return fail(ErrorCode::kInvalidArgument, "engine " + std::string(eng->name()) +
                                                   " has no backup method \"" + request.method +
                                                   "\"; it has: " + join(methods, ", "));
    }
    request.databases =
        ctx.params().has("databases") ? ctx.params().strings("databases") : target.backup.databases;
    const std::string fp_text = ctx.params().string("fingerprint", target.backup.fingerprint.empty()
                                                                       ? config.backup.fingerprint
                                                                       : target.backup.fingerprint);
    const auto fp_mode = engine::parse_fingerprint_mode(fp_text);
    if (!fp_mode) {
      return fail(ErrorCode::kInvalidArgument,
                  "fingerprint \"" + fp_text + "\": expected off, sampled or full");
    }
    request.fingerprint = *fp_mode;
    request.checkpoint = config.backup.checkpoint;
    request.timeout = config.backup.timeout;

    DBOPS_ASSIGN(auto repository, repo::open_repository(config, ctx.clock()));
    DBOPS_ASSIGN(auto options, repo::pipeline_options(config.repository));
    DBOPS_ASSIGN(auto lock, repository->lock(target.name, ctx.run_id()));
    DBOPS_ASSIGN(auto leftovers, repository->remove_leftovers(target.name));
    if (!leftovers.empty()) {
      ctx.event(store::Severity::kWarn, "backup.leftovers_removed",
                "removed " + std::to_string(leftovers.size()) +
                    " incomplete backup(s) left by an earlier run: " + join(leftovers, ", "));
    }

    repo::Manifest m;
    m.id = repo::new_backup_id(ctx.clock().now());
    m.target = target.name;
    m.engine = std::string(eng->name());
    m.method = request.method;
    m.dbops_version = std::string(version());
    m.started_at = ctx.clock().now();
    DBOPS_ASSIGN(auto spool, TempDirectory::create({}, "dbops-spool-"));
    repo::BackupWriter writer(*repository, target.name, m.id, options, spool.path(),
                              ctx.cancel_flag(), progress_to(ctx));
    log::info("backup started", {{"backup_id", m.id}, {"method", m.method}});
    auto taken = driver->backup(target, request, writer);
    const auto discard = [&] {
      (void)repository->storage().remove_prefix(repo::backup_prefix(target.name, m.id));
    };
    if (!taken) {
      discard();
      return std::unexpected(std::move(taken).error());
    }
    m.finished_at = ctx.clock().now();
    m.server_version = taken->server_version;
    m.tool = taken->tool;
    m.position = taken->position;
    m.details = taken->details;
    m.objects = writer.objects();
    m.fingerprints = repo::to_manifest(taken->fingerprints);
    if (auto healthy = lock.healthy(); !healthy) {
      discard();
      return std::unexpected(std::move(healthy).error().with_context("backup lock"));
    }
    fault::point("backup.before_manifest");
    if (auto published = repository->publish(m); !published) {
      discard();
      return std::unexpected(std::move(published).error());
    }
    if (auto st =
            ctx.store().upsert_backup(catalog_record(repository->describe(), m, ctx.run_id()));
        !st) {
      log::warn("backup catalog not updated; `dbops backup reindex` repairs it",
                {{"error", st.error().to_string()}});
    }
    (void)lock.release();

    const double took = seconds(m.finished_at - m.started_at);
    json result;
    result["backup_id"] = m.id;
    result["target"] = m.target;
    result["engine"] = m.engine;
    result["method"] = m.method;
    result["repository"] = repository->describe();
    result["plain_bytes"] = m.plain_size();
    result["stored_bytes"] = m.stored_size();
    result["seconds"] = took;
    result["position"] = m.position;
    result["objects"] = json::array();
    for (const auto& o : m.objects) {
      result["objects"].push_back(
          {{"name", o.name}, {"plain_bytes", o.plain_size}, {"stored_bytes", o.stored_size}});
    }
    std::size_t tables = 0;
    for (const auto& fp : m.fingerprints) tables += fp.tables.size();
    // Physical backups have no snapshot to fingerprint.
    result["fingerprint"] = {{"mode", m.fingerprints.empty() ? std::string("none") : fp_text},
                             {"tables", tables}};
    if (m.details.contains("fingerprint_seconds")) {
      result["fingerprint"]["seconds"] = std::stod(m.details.at("fingerprint_seconds"));
    }
    char summary[256];
    std::snprintf(summary, sizeof summary, "backup %s (%s): %.1f MiB stored, %.1f MiB plain, %.1fs",
                  m.id.c_str(), m.method.c_str(), static_cast<double>(m.stored_size()) / 1048576.0,
                  static_cast<double>(m.plain_size()) / 1048576.0, took);
    return runtime::JobOutcome{
        .passed = true, .summary = summary, .result_json = json_text(result)};
  }
};

// ------------------------------------------------------------------ verify

constexpr runtime::ParamDecl kVerifyParams[] = {
    {.name = "backup",
     .type = runtime::ParamType::kString,
     .description = "backup id (or a unique prefix); without it, the target's newest backup"},
};

class VerifyJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return "backup.verify"; }
  std::string_view description() const override {
    return "re-reads every object of a backup: decrypts, decompresses and compares each chunk "
           "with the manifest's checksums";
  }
  bool needs_target() const override { return false; }
  std::span<const runtime::ParamDecl> params() const override { return kVerifyParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    DBOPS_ASSIGN(auto repository, repo::open_repository(ctx.config(), ctx.clock()));
    DBOPS_ASSIGN(auto options, repo::pipeline_options(ctx.config().repository));
    // The backup named, or the target's newest.
    repo::Manifest m;
    if (const std::string id = ctx.params().string("backup"); !id.empty()) {
      DBOPS_ASSIGN(m, repository->find(id));
      if (ctx.target() && m.target != ctx.target()->name) {
        return fail(ErrorCode::kInvalidArgument, "backup " + m.id + " belongs to target " +
                                                     m.target + ", not " + ctx.target()->name);
      }
    } else if (ctx.target()) {
      DBOPS_ASSIGN(m, repository->newest(ctx.target()->name));
    } else {
      return fail(ErrorCode::kInvalidArgument, "backup.verify: which backup?",
                  "pass the backup parameter (an id), or a target to verify its newest backup");
    }
    DBOPS_ASSIGN(auto pin, repository->pin(m.target, m.id, ctx.run_id()));
    const auto start = SteadyClock::now();
    repo::StoredBackup stored(*repository, m, key_of(options), {}, ctx.cancel_flag(),
                              progress_to(ctx), "verify");
    for (const auto& o : m.objects) {
      if (auto st = stored.read(o.name, nullptr); !st) {
        return std::unexpected(
            std::move(st).error().with_context("backup " + m.id + " of " + m.target));
      }
    }
    const double took = seconds_since(start);
    json result{{"backup_id", m.id},
                {"target", m.target},
                {"objects", m.objects.size()},
                {"plain_bytes", m.plain_size()},
                {"stored_bytes", m.stored_size()},
                {"seconds", took}};
    return runtime::JobOutcome{.passed = true,
                               .summary = "backup " + m.id + ": " +
                                          std::to_string(m.objects.size()) +
                                          " object(s) match their checksums",
                               .result_json = json_text(result)};
  }
};

// ------------------------------------------------------------------- prune

constexpr runtime::ParamDecl kPruneParams[] = {
    {.name = "dry_run",
     .type = runtime::ParamType::kBool,
     .description = "list what would be deleted, delete nothing"},
};

class PruneJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return "backup.prune"; }
  bool exclusive() const override { return true; }
  std::string_view description() const override {
    return "deletes the target's backups that its retention policy no longer keeps";
  }
  bool changes_target() const override { return false; }
  std::span<const runtime::ParamDecl> params() const override { return kPruneParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    const config::Target& target = *ctx.target();
    const config::RetentionPolicy policy =
        target.backup.retention.value_or(ctx.config().backup.retention);
    const bool dry_run = ctx.params().boolean("dry_run");
    DBOPS_ASSIGN(auto repository, repo::open_repository(ctx.config(), ctx.clock()));
    std::optional<repo::LeaseGuard> lock;
    if (!dry_run) {
      DBOPS_ASSIGN(auto held, repository->lock(target.name, ctx.run_id()));
      lock = std::move(held);
    }
    DBOPS_ASSIGN(auto listing, repository->list(target.name));
    std::vector<repo::BackupListing> complete;
    for (auto& l : listing) {
      if (l.manifest) complete.push_back(std::move(l));
    }
    std::string drilled;
    DBOPS_ASSIGN(auto drills,
                 ctx.store().list_drills({.target = target.name, .passed = true, .limit = 200}));
    for (const auto& d : drills) {
      // The newest backup that passed a drill (drills come newest first).
      for (auto it = complete.rbegin(); it != complete.rend() && drilled.empty(); ++it) {
        if (it->id == d.backup_id) drilled = d.backup_id;
      }
      if (!drilled.empty()) break;
    }
    const auto plan = plan_prune(complete, policy, ctx.clock().now(), drilled);
    json result{{"target", target.name}, {"dry_run", dry_run}, {"backups", json::array()}};
    int deleted = 0;
    for (const auto& d : plan) {
      result["backups"].push_back({{"id", d.id}, {"keep", d.keep}, {"reason", d.reason}});
      if (d.keep || dry_run) continue;
      DBOPS_TRY(repository->remove_backup(target.name, d.id));
      (void)ctx.store().remove_backup(repository->describe(), target.name, d.id);
      ++deleted;
    }
    const auto would =
        std::count_if(plan.begin(), plan.end(), [](const auto& d) { return !d.keep; });
    std::string summary = dry_run ? std::to_string(would) + " of " + std::to_string(plan.size()) +
                                        " backup(s) would be deleted"
                                  : std::to_string(deleted) + " of " + std::to_string(plan.size()) +
                                        " backup(s) deleted";
    return runtime::JobOutcome{
        .passed = true, .summary = summary, .result_json = json_text(result)};
  }
};

// ----------------------------------------------------------------- restore

constexpr runtime::ParamDecl kRestoreParams[] = {
    {.name = "backup",
     .type = runtime::ParamType::kString,
     .required = true,
     .description = "backup id (or a unique prefix)"},
    {.name = "to",
     .type = runtime::ParamType::kString,
     .required = true,
     .description = "a configured target (logical restore) or a path (physical, or files)"},
    {.name = "yes",
     .type = runtime::ParamType::kBool,
     .description = "restore into a target that already holds data"},
};

class RestoreJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return "backup.restore"; }
  std::string_view description() const override {
    return "restores a backup into a target or a path";
  }
  bool needs_target() const override { return false; }
  bool changes_target() const override { return true; }
  std::span<const runtime::ParamDecl> params() const override { return kRestoreParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    DBOPS_ASSIGN(auto repository, repo::open_repository(ctx.config(), ctx.clock()));
    DBOPS_ASSIGN(auto options, repo::pipeline_options(ctx.config().repository));
    DBOPS_ASSIGN(auto m, repository->find(ctx.params().string("backup")));
    DBOPS_ASSIGN(const engine::Engine* eng, engine_of(m.engine));
    const engine::RestoreTarget* restorer = eng->restore_target();
    if (!restorer) {
      return fail(ErrorCode::kUnsupported,
                  "engine " + std::string(eng->name()) + " cannot restore backups yet");
    }
    DBOPS_ASSIGN(auto pin, repository->pin(m.target, m.id, ctx.run_id()));
    DBOPS_ASSIGN(auto spool, TempDirectory::create({}, "dbops-restore-"));
    repo::StoredBackup stored(*repository, m, key_of(options), spool.path(), ctx.cancel_flag(),
                              progress_to(ctx));
    const std::string to = ctx.params().string("to");
    engine::RestoreOptions ro{.allow_nonempty = ctx.params().boolean("yes"),
                              .jobs = ctx.config().drill.jobs,
                              .timeout = ctx.config().backup.timeout};
    const auto start = SteadyClock::now();
    std::string where;
    if (const config::Target* dest = ctx.config().find_target(to)) {
      if (dest->engine != m.engine) {
        return fail(ErrorCode::kInvalidArgument, "backup " + m.id + " is a " + m.engine +
                                                     " backup; target " + dest->name + " is " +
                                                     dest->engine);
      }
      DBOPS_TRY(restorer->restore_into(*dest, stored, ro));
      where = "target " + dest->name;
    } else {
      if (to.find('/') == std::string::npos && to.find('.') == std::string::npos) {
        return fail(ErrorCode::kNotFound,
                    "\"" + to + "\" is neither a configured target nor a path",
                    "give a target name from the config, or a path such as ./restored");
      }
      DBOPS_TRY(restorer->restore_to_path(std::filesystem::absolute(to), stored, ro));
      where = std::filesystem::absolute(to).string();
    }
    const double took = seconds_since(start);
    json result{{"backup_id", m.id}, {"target", m.target}, {"to", where}, {"seconds", took}};
    return runtime::JobOutcome{.passed = true,
                               .summary = "restored backup " + m.id + " into " + where,
                               .result_json = json_text(result)};
  }
};

}  // namespace

void register_kinds(runtime::JobKindRegistry& registry) {
  registry.add(std::make_unique<BackupJob>());
  registry.add(std::make_unique<VerifyJob>());
  registry.add(std::make_unique<PruneJob>());
  registry.add(std::make_unique<RestoreJob>());
}

}  // namespace dbops::ops::backup
