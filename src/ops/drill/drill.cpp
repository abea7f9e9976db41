// The `drill` job: restore a backup into a throwaway instance, verify what
// came back, record RTO, RPO and the evidence, tear the instance down.
#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/temp_dir.hpp"
#include "engine/engine.hpp"
#include "ops/register.hpp"
#include "repo/backup_io.hpp"
#include "runtime/job.hpp"

namespace dbops::ops::drill {
namespace {

using json = nlohmann::ordered_json;
using SteadyClock = std::chrono::steady_clock;

std::string hex64(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Compares a restored database's fingerprint with the one the backup took.
engine::DrillCheck compare_fingerprint(const engine::DatabaseFingerprint& expected,
                                       const Result<engine::DatabaseFingerprint>& actual,
                                       double seconds) {
  engine::DrillCheck check{.name = "fingerprint:" + expected.database, .seconds = seconds};
  if (!actual) {
    check.detail = actual.error().message;
    return check;
  }
  std::map<std::string, const engine::TableFingerprint*> got;
  for (const auto& t : actual->tables) got[t.table] = &t;
  std::vector<std::string> problems;
  for (const auto& t : expected.tables) {
    const auto it = got.find(t.table);
    if (it == got.end()) {
      problems.push_back("table " + t.table + " is missing");
      continue;
    }
    const auto& a = *it->second;
    if (a.rows != t.rows) {
      problems.push_back("table " + t.table + " has " + std::to_string(a.rows) +
                         " rows, the backup had " + std::to_string(t.rows));
    } else if (a.hash != t.hash) {
      problems.push_back("table " + t.table + ": content hash " + hex64(a.hash) +
                         " differs from the backup's " + hex64(t.hash));
    }
    got.erase(it);
  }
  for (const auto& [name, t] : got) problems.push_back("table " + name + " was not in the backup");
  check.passed = problems.empty();
  check.detail = problems.empty()
                     ? std::to_string(expected.tables.size()) + " table(s) match (" +
                           std::string(engine::fingerprint_mode_name(expected.mode)) + ")"
                     : join(problems, "; ");
  if (expected.approximate) {
    // Taken beside the backup, not in its snapshot: differences are reported,
    // not failed on.
    check.detail = "approximate fingerprint (not the backup's own snapshot): " + check.detail;
    check.passed = true;
  }
  return check;
}

constexpr runtime::ParamDecl kParams[] = {
    {.name = "backup",
     .type = runtime::ParamType::kString,
     .description = "backup id (or unique prefix); the target's newest backup when omitted"},
};

class DrillJob final : public runtime::JobKind {
 public:
  std::string_view name() const override { return "drill"; }
  bool exclusive() const override { return true; }
  std::string_view description() const override {
    return "restores a backup into a throwaway instance and verifies it: checksums, engine "
           "checks, content fingerprint and canary queries; records RTO and RPO";
  }
  std::span<const runtime::ParamDecl> params() const override { return kParams; }

  Result<runtime::JobOutcome> run(runtime::JobContext& ctx) override {
    const config::Target& target = *ctx.target();
    const config::Config& config = ctx.config();
    DBOPS_ASSIGN(auto repository, repo::open_repository(config, ctx.clock()));
    DBOPS_ASSIGN(auto options, repo::pipeline_options(config.repository));
    repo::Manifest m;
    if (const std::string id = ctx.params().string("backup"); !id.empty()) {
      DBOPS_ASSIGN(m, repository->find(id));
      if (m.target != target.name) {
        return fail(ErrorCode::kInvalidArgument,
                    "backup " + m.id + " belongs to target " + m.target + ", not " + target.name);
      }
    } else {
      DBOPS_ASSIGN(m, repository->newest(target.name));
    }
    const engine::Engine* eng = engine::Registry::global().find(m.engine);
    const engine::RestoreTarget* restorer = eng ? eng->restore_target() : nullptr;
    if (!restorer) {
      return fail(ErrorCode::kUnsupported, "engine " + m.engine + " cannot restore backups yet");
    }
    DBOPS_ASSIGN(auto pin, repository->pin(m.target, m.id, ctx.run_id()));

    const auto drill_started = ctx.clock().now();
    const auto start = SteadyClock::now();
    std::vector<engine::DrillCheck> checks;
    DBOPS_ASSIGN(auto spool, TempDirectory::create(config.drill.base_dir, "dbops-drill-"));
    repo::StoredBackup stored(*repository, m, options.key, spool.path(), ctx.cancel_flag(),
                              [&ctx](std::string_view phase, std::uint64_t done,
                                     std::uint64_t total, std::string_view note) {
                                ctx.progress(runtime::Progress{.phase = std::string(phase),
                                                               .done = done,
                                                               .total = total,
                                                               .note = std::string(note)});
                              });
    engine::DrillOptions drill_options{.run_as = config.drill.run_as,
                                       .base_dir = config.drill.base_dir,
                                       .timeout = config.drill.timeout,
                                       .jobs = config.drill.jobs};
    log::info("drill restoring", {{"backup_id", m.id}, {"method", m.method}});
    const auto restore_start = SteadyClock::now();
    auto instance = restorer->start_drill(stored, drill_options);
    const double restore_seconds = seconds_since(restore_start);
    if (!instance && (instance.error().code == ErrorCode::kConfig ||
                      instance.error().code == ErrorCode::kUnsupported ||
                      instance.error().code == ErrorCode::kNotFound)) {
      // A wrong key or a missing tool says nothing about the backup: the run
      // fails with the configuration error instead of recording a failed
      // drill.
      return fail(std::move(instance).error().with_context("drill of " + m.id));
    }
    // The restore read every object through the pipeline, which compares each
    // chunk with the manifest: that is the checksum check.
    engine::DrillCheck sums{.name = "checksums", .seconds = restore_seconds};
    if (!instance) {
      sums.detail = instance.error().to_string();
      sums.name = instance.error().code == ErrorCode::kCorrupt ? "checksums" : "restore";
      checks.push_back(sums);
    } else {
      sums.passed = true;
      sums.detail = std::to_string(m.objects.size()) + " object(s), " +
                    std::to_string(m.plain_size()) + " bytes, match the manifest";
      checks.push_back(sums);
      for (auto& c : (*instance)->verify()) checks.push_back(std::move(c));
      for (const auto& expected : m.fingerprints) {
        const auto fp_start = SteadyClock::now();
        const auto want = repo::from_manifest(expected);
        auto got = (*instance)->fingerprint(expected.database, want.mode);
        checks.push_back(compare_fingerprint(want, got, seconds_since(fp_start)));
      }
      for (const auto& canary : target.canaries) {
        const auto c_start = SteadyClock::now();
        engine::DrillCheck check{.name = "canary:" + canary.name};
        auto got = (*instance)->query(canary.database.empty() ? target.database : canary.database,
                                      canary.sql);
        if (!got) {
          check.detail = got.error().message;
        } else {
          check.passed = trim(*got) == trim(canary.expect);
          check.detail = check.passed
                             ? "returned \"" + std::string(trim(*got)) + "\""
                             : "returned \"" + std::string(trim(*got)) + "\", expected \"" +
                                   std::string(trim(canary.expect)) + "\"";
        }
        check.seconds = seconds_since(c_start);
        checks.push_back(std::move(check));
      }
    }
    const double rto = seconds_since(start);
    const auto consistent_at = m.method == "physical" ? m.finished_at : m.started_at;
    const double rpo = std::chrono::duration<double>(drill_started - consistent_at).count();
    instance = fail(ErrorCode::kCancelled, "torn down");  // stops and removes the instance

    bool passed = true;
    std::string failed;
    json evidence{{"backup_id", m.id},
                  {"target", m.target},
                  {"engine", m.engine},
                  {"method", m.method},
                  {"server_version", m.server_version},
                  {"rto_seconds", rto},
                  {"rpo_seconds", rpo},
                  {"restore_seconds", restore_seconds},
                  {"checks", json::array()}};
    for (const auto& c : checks) {
      evidence["checks"].push_back(
          {{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}, {"seconds", c.seconds}});
      if (!c.passed && passed) {
        passed = false;
        failed = c.name;
      }
    }
    evidence["passed"] = passed;
    store::DrillRecord record{.run_id = ctx.run_id(),
                              .target = m.target,
                              .backup_id = m.id,
                              .started_at = drill_started,
                              .finished_at = ctx.clock().now(),
                              .passed = passed,
                              .rto_seconds = rto,
                              .rpo_seconds = rpo,
                              .failed_check = failed,
                              .evidence_json = json_text(evidence)};
    DBOPS_TRY(ctx.store().insert_drill(record));
    char summary[512];
    if (passed) {
      std::snprintf(summary, sizeof summary,
                    "drill of %s passed %zu check(s): RTO %.1fs, RPO %.0fs", m.id.c_str(),
                    checks.size(), rto, rpo);
    } else {
      std::string detail;
      for (const auto& c : checks) {
        if (c.name == failed) detail = c.detail;
      }
      std::snprintf(summary, sizeof summary, "drill of %s failed check %s: %s", m.id.c_str(),
                    failed.c_str(), detail.c_str());
    }
    return runtime::JobOutcome{
        .passed = passed, .summary = summary, .result_json = json_text(evidence)};
  }
};

}  // namespace

void register_kinds(runtime::JobKindRegistry& registry) {
  registry.add(std::make_unique<DrillJob>());
}

}  // namespace dbops::ops::drill
