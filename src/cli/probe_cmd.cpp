#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "core/clock.hpp"
#include "core/json_text.hpp"
#include "runtime/runner.hpp"

namespace dbops::cli {
namespace {

using json = nlohmann::ordered_json;

std::string fmt_seconds(const json& v) {
  if (!v.is_number()) return "-";
  const double s = v.get<double>();
  char buf[32];
  if (s < 1) {
    std::snprintf(buf, sizeof buf, "%.1fms", s * 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%.2fs", s);
  }
  return buf;
}

std::string fmt_bytes(const json& v) {
  return v.is_number() ? bytes_text(v.get<double>()) : "-";
}

std::string fmt_lag(const json& t) {
  std::string out;
  if (t.contains("replication_lag_seconds")) out = fmt_seconds(t["replication_lag_seconds"]);
  if (t.contains("replication_lag_bytes")) {
    out += (out.empty() ? "" : " / ") + fmt_bytes(t["replication_lag_bytes"]);
  }
  return out.empty() ? "-" : out;
}

std::string fmt_uptime(const json& v) {
  if (!v.is_number()) return "-";
  const long long s = static_cast<long long>(v.get<double>());
  char buf[32];
  if (s >= 86400) {
    std::snprintf(buf, sizeof buf, "%lldd%lldh", s / 86400, (s % 86400) / 3600);
  } else if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%lldm", s / 3600, (s % 3600) / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%llds", s / 60, s % 60);
  }
  return buf;
}

}  // namespace

int cmd_probe(Session& s, const std::vector<std::string>& names,
              const std::vector<std::string>& tags) {
  // Select the targets and run the probe job through the runner.
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  auto selected = s.select_targets(names, tags);
  if (!selected) return report(selected.error());
  auto store = s.store();
  if (!store) return report(store.error());
  json params;
  params["targets"] = json::array();
  for (const auto* t : *selected) params["targets"].push_back(t->name);
  runtime::Runner runner(s.kinds(), **cfg, **store, real_clock(),
                         runtime::RunnerOptions{.dispatcher = s.dispatcher()});
  auto report_run = runner.run(runtime::JobSpec{.kind = "probe", .params_json = params.dump()});
  if (!report_run) return report(report_run.error());
  const auto& run = report_run->run;
  if (run.state != store::RunState::kSucceeded) {
    return report(make_error(ErrorCode::kInternal, "probe round failed: " + run.error));
  }
  json result = json::parse(run.result_json, nullptr, false);
  if (result.is_discarded())
    return report(make_error(ErrorCode::kInternal, "probe result unreadable"));
  int exit_code = 0;
  for (const auto& t : result["targets"]) {
    if (t["status"] != "up") exit_code = 3;
  }

  if (s.format() == OutputFormat::kJson) {
    result["run_id"] = run.run_id;
    print(json_text(result, 2) + "\n");
    return exit_code;
  }
  Table table{.headers = {"TARGET", "ENGINE", "STATUS", "ROLE", "VERSION", "CONNECT", "RTT", "LAG",
                          "CONNS", "SIZE", "UPTIME"}};
  std::vector<std::string> errors;
  bool has_counters = false;
  for (const auto& t : result["targets"]) {
    const std::string name = t["target"];
    std::string conns = "-";
    if (t.contains("connections")) {
      conns = std::to_string(t["connections"].get<long long>());
      if (t.contains("max_connections")) {
        conns += "/" + std::to_string(t["max_connections"].get<long long>());
      }
    }
    table.rows.push_back({name, t["engine"], t["status"], t.value("role", "-"),
                          t.value("version", "-"), fmt_seconds(t.value("connect_seconds", json())),
                          fmt_seconds(t.value("rtt_seconds", json())), fmt_lag(t), conns,
                          fmt_bytes(t.value("database_size_bytes", json())),
                          fmt_uptime(t.value("uptime_seconds", json()))});
    if (t.contains("error")) errors.push_back(t["error"]);
    if (t.contains("unavailable")) {
      for (const auto& [field, why] : t["unavailable"].items()) {
        if (field.ends_with("_per_second")) has_counters = true;
      }
    }
  }
  std::string out = table.render(s.color());
  for (const auto& e : errors) out += "error: " + e + "\n";
  if (has_counters) {
    out +=
        "note: rates (WAL, checkpoints, evictions ... per second) need two samples; "
        "`dbops agent` derives them between rounds. --output json lists every field.\n";
  }
  print(out);
  return exit_code;
}

}  // namespace dbops::cli
