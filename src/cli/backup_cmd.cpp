// `dbops backup ...` and `dbops drill`.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "core/time_format.hpp"
#include "ops/backup/backup.hpp"
#include "repo/backup_io.hpp"
#include "runtime/runner.hpp"

namespace dbops::cli {
namespace {

using json = nlohmann::ordered_json;

struct JobRun {
  std::string target;
  Result<runtime::RunReport> report;
};

// Runs one job through the runner with a progress line.
Result<runtime::RunReport> run_job(Session& s, const runtime::JobSpec& spec) {
  DBOPS_ASSIGN(const config::Config* cfg, s.config());
  DBOPS_ASSIGN(store::Store * store, s.store());
  ProgressLine progress;
  runtime::Runner runner(
      s.kinds(), *cfg, *store, real_clock(),
      runtime::RunnerOptions{.dispatcher = s.dispatcher(), .progress = progress.sink()});
  auto report = runner.run(spec);
  progress.clear();
  return report;
}

int exit_code_of(const runtime::RunReport& report) {
  return report.error_code ? exit_code_for(*report.error_code) : run_exit_code(report.run);
}

Status write_metrics(Session& s, const std::string& textfile) {
  if (textfile.empty()) return ok();
  DBOPS_ASSIGN(const config::Config* cfg, s.config());
  DBOPS_ASSIGN(store::Store * store, s.store());
  obs::Registry registry;
  DBOPS_TRY(ops::backup::publish_metrics(*cfg, *store, registry));
  return ops::backup::write_textfile(textfile, registry);
}

// Runs `kind` once per selected target and prints one row per run.
int run_per_target(
    Session& s, const std::string& kind, const BackupArgs& a, const json& params,
    const std::vector<std::string>& headers,
    const std::function<std::vector<std::string>(const store::RunRecord&, const json&)>& row) {
  auto selected = s.select_targets(a.targets, a.tags);
  if (!selected) return report(selected.error());
  int exit_code = 0;
  json all = json::array();
  Table table{.headers = headers};
  std::vector<std::string> errors;
  for (const auto* t : *selected) {
    auto rep = run_job(s, {.kind = kind, .target = t->name, .params_json = params.dump()});
    if (!rep) {
      exit_code = std::max(exit_code, exit_code_for(rep.error().code));
      errors.push_back(t->name + ": " + rep.error().to_string());
      all.push_back({{"target", t->name}, {"state", "error"}, {"error", rep.error().message}});
      continue;
    }
    const auto& run = rep->run;
    exit_code = std::max(exit_code, exit_code_of(*rep));
    json result = json::parse(run.result_json, nullptr, false);
    if (result.is_discarded()) result = json::object();
    json entry{{"target", t->name},
               {"run_id", run.run_id},
               {"state", store::run_state_name(run.state)},
               {"summary", run.summary}};
    if (!run.error.empty()) entry["error"] = run.error;
    entry["result"] = result;
    all.push_back(entry);
    if (run.state == store::RunState::kSucceeded || run.state == store::RunState::kCheckFailed) {
      table.rows.push_back(row(run, result));
      if (run.state == store::RunState::kCheckFailed) {
        errors.push_back(t->name + ": " + (run.error.empty() ? run.summary : run.error));
      }
    } else {
      errors.push_back(t->name + ": " + run.error);
    }
  }
  if (auto st = write_metrics(s, a.metrics_textfile); !st) {
    report(st.error());
    exit_code = std::max(exit_code, 3);
  }
  if (s.format() == OutputFormat::kJson) {
    print(json_text(all, 2) + "\n");
  } else {
    std::string out = table.rows.empty() ? std::string() : table.render(s.color());
    print(out);
    for (const auto& e : errors) std::fprintf(stderr, "error: %s\n", redact::scrub(e).c_str());
  }
  return exit_code;
}

// A job without a target: prints its summary (or JSON result).
int run_single(Session& s, const std::string& kind, const json& params) {
  auto rep = run_job(s, {.kind = kind, .params_json = params.dump()});
  if (!rep) return report(rep.error());
  const auto& run = rep->run;
  if (s.format() == OutputFormat::kJson) {
    json out{{"run_id", run.run_id},
             {"state", store::run_state_name(run.state)},
             {"summary", run.summary}};
    if (!run.error.empty()) out["error"] = run.error;
    json result = json::parse(run.result_json, nullptr, false);
    out["result"] = result.is_discarded() ? json::object() : result;
    print(json_text(out, 2) + "\n");
  } else if (run.state == store::RunState::kSucceeded) {
    print(run.summary + "\n");
  } else {
    std::fprintf(stderr, "error: %s\n",
                 redact::scrub(run.error.empty() ? run.summary : run.error).c_str());
  }
  return exit_code_of(*rep);
}

}  // namespace

int cmd_backup_run(Session& s, const BackupArgs& a) {
  json params = json::object();
  if (!a.method.empty()) params["method"] = a.method;
  if (!a.fingerprint.empty()) params["fingerprint"] = a.fingerprint;
  return run_per_target(s, "backup", a, params,
                        {"TARGET", "BACKUP", "METHOD", "STORED", "PLAIN", "TIME"},
                        [](const store::RunRecord& run, const json& r) -> std::vector<std::string> {
                          return {run.target,
                                  r.value("backup_id", "-"),
                                  r.value("method", "-"),
                                  bytes_text(r.value("stored_bytes", 0.0)),
                                  bytes_text(r.value("plain_bytes", 0.0)),
                                  seconds_text(r.value("seconds", 0.0))};
                        });
}

int cmd_drill(Session& s, const BackupArgs& a) {
  BackupArgs args = a;
  json params = json::object();
  if (!a.backup.empty()) {
    // The backup names its target.
    auto repository = s.repository();
    if (!repository) return report(repository.error());
    auto m = (*repository)->find(a.backup);
    if (!m) return report(m.error());
    params["backup"] = m->id;
    args.targets = {m->target};
    args.tags.clear();
  }
  const int code = run_per_target(
      s, "drill", args, params, {"TARGET", "BACKUP", "RESULT", "RTO", "RPO", "CHECKS"},
      [](const store::RunRecord& run, const json& r) -> std::vector<std::string> {
        std::string checks;
        if (r.contains("checks")) {
          for (const auto& c : r["checks"]) {
            if (!checks.empty()) checks += " ";
            checks += c.value("name", "?") + (c.value("passed", false) ? "✓" : "✗");
          }
        }
        return {run.target,
                r.value("backup_id", "-"),
                run.state == store::RunState::kSucceeded ? "passed" : "FAILED",
                seconds_text(r.value("rto_seconds", 0.0)),
                seconds_text(r.value("rpo_seconds", 0.0)),
                checks};
      });
  return code;
}

int cmd_backup_prune(Session& s, const BackupArgs& a) {
  json params{{"dry_run", a.dry_run}};
  return run_per_target(
      s, "backup.prune", a, params, {"TARGET", "RESULT"},
      [&](const store::RunRecord& run, const json& r) -> std::vector<std::string> {
        std::string text = run.summary;
        if (r.contains("backups")) {
          for (const auto& b : r["backups"]) {
            if (!b.value("keep", true)) {
              text += "\n  " + std::string(a.dry_run ? "would delete " : "deleted ") +
                      b.value("id", "?") + " (" + b.value("reason", "") + ")";
            }
          }
        }
        return {run.target, text};
      });
}

int cmd_backup_verify(Session& s, const BackupArgs& a) {
  return run_single(s, "backup.verify", json{{"backup", a.backup}});
}

int cmd_backup_restore(Session& s, const BackupArgs& a) {
  return run_single(s, "backup.restore", json{{"backup", a.backup}, {"to", a.to}, {"yes", a.yes}});
}

int cmd_backup_reindex(Session& s) {
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  auto store = s.store();
  if (!store) return report(store.error());
  auto n = ops::backup::reindex(**cfg, **store, real_clock());
  if (!n) return report(n.error());
  if (s.format() == OutputFormat::kJson) {
    print(json_text(json{{"backups", *n}}, 2) + "\n");
  } else {
    print("catalog rebuilt from " + (*cfg)->repository.path + ": " + std::to_string(*n) +
          " backup(s)\n");
  }
  return 0;
}

int cmd_backup_list(Session& s, const BackupArgs& a) {
  auto repository = s.repository();
  if (!repository) return report(repository.error());
  std::vector<std::string> targets = a.targets;
  if (targets.empty()) targets.push_back("");
  std::vector<repo::BackupListing> listing;
  for (const auto& t : targets) {
    auto l = (*repository)->list(t);
    if (!l) return report(l.error());
    for (auto& b : *l) {
      if (b.manifest || a.all) listing.push_back(std::move(b));
    }
  }
  // The latest drill of each backup, from the store.
  std::map<std::string, store::DrillRecord> drills;
  if (auto store = s.store()) {
    if (auto d = (*store)->list_drills({.limit = 10000})) {
      for (auto& r : *d) drills.emplace(r.backup_id, std::move(r));  // newest first: first wins
    }
  }
  if (s.format() == OutputFormat::kJson) {
    json out = json::array();
    for (const auto& l : listing) {
      json j{{"target", l.target}, {"id", l.id}, {"complete", l.manifest.has_value()}};
      if (l.manifest) {
        j["method"] = l.manifest->method;
        j["engine"] = l.manifest->engine;
        j["started_at"] = format_utc(l.manifest->started_at);
        j["finished_at"] = format_utc(l.manifest->finished_at);
        j["stored_bytes"] = l.manifest->stored_size();
        j["plain_bytes"] = l.manifest->plain_size();
      } else if (!l.problem.empty()) {
        j["problem"] = l.problem;
      }
      if (const auto it = drills.find(l.id); it != drills.end()) {
        j["drill"] = {{"passed", it->second.passed},
                      {"at", format_utc(it->second.finished_at)},
                      {"run_id", it->second.run_id}};
      }
      if (!l.pins.empty()) j["pinned_by"] = l.pins;
      out.push_back(j);
    }
    print(json_text(out, 2) + "\n");
    return 0;
  }
  Table table{.headers = {"TARGET", "BACKUP", "METHOD", "FINISHED", "STORED", "PLAIN", "DRILL"}};
  for (const auto& l : listing) {
    std::string drill = "-";
    if (const auto it = drills.find(l.id); it != drills.end()) {
      drill = it->second.passed ? "passed" : "FAILED (" + it->second.failed_check + ")";
    }
    if (!l.manifest) {
      table.rows.push_back(
          {l.target, l.id, "incomplete", "-", "-", "-", l.problem.empty() ? "-" : l.problem});
      continue;
    }
    const auto& m = *l.manifest;
    table.rows.push_back({l.target, l.id, m.method, format_utc(m.finished_at),
                          bytes_text(static_cast<double>(m.stored_size())),
                          bytes_text(static_cast<double>(m.plain_size())), drill});
  }
  if (table.rows.empty()) {
    print("no backups in " + (*repository)->describe() + "\n");
    return 0;
  }
  print(table.render(s.color()));
  return 0;
}

int cmd_backup_show(Session& s, const BackupArgs& a) {
  auto repository = s.repository();
  if (!repository) return report(repository.error());
  auto m = (*repository)->find(a.backup);
  if (!m) return report(m.error());
  if (s.format() == OutputFormat::kJson) {
    print(repo::to_json(*m) + "\n");
    return 0;
  }
  std::string out;
  out += "backup:     " + m->id + "\n";
  out += "target:     " + m->target + " (" + m->engine + " " + m->server_version + ")\n";
  out += "method:     " + m->method + " with " + m->tool + "\n";
  out += "started:    " + format_utc(m->started_at) + "\n";
  out += "finished:   " + format_utc(m->finished_at) + "\n";
  out += "size:       " + bytes_text(static_cast<double>(m->stored_size())) + " stored, " +
         bytes_text(static_cast<double>(m->plain_size())) + " plain\n";
  if (!m->position.empty()) {
    out += "position:  ";
    for (const auto& [k, v] : m->position) out += " " + k + "=" + v;
    out += "\n";
  }
  out += "objects:\n";
  for (const auto& o : m->objects) {
    out += "  " + o.name + "  " + o.content + "  " +
           bytes_text(static_cast<double>(o.stored_size)) + " stored  sha256 " +
           o.stored_sha256.substr(0, 16) + "...  " + o.compression +
           (o.encryption == "none" ? "" : ", " + o.encryption) + "\n";
  }
  for (const auto& fp : m->fingerprints) {
    out += "fingerprint " + fp.database + " (" + fp.mode + "):\n";
    for (const auto& t : fp.tables) {
      out += "  " + t.table + "  " + std::to_string(t.rows) + " rows  " + t.hash +
             (t.sampled ? " (sampled)" : "") + "\n";
    }
  }
  print(out);
  return 0;
}

}  // namespace dbops::cli
