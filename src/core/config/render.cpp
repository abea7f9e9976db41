// The resolved config printed back, secrets redacted.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/config/config.hpp"
#include "core/json_text.hpp"

namespace dbops::config {
namespace {

std::string state_text(const StateConfig& state) {
  return state.is_postgres() ? redact::dsn(state.postgres_dsn.reveal()) : state.sqlite_path;
}

// A job's kind, target (when it has one) and params (when there are any),
// as schedules and workflow tasks declare them.
void put_job(nlohmann::ordered_json& j, const std::string& kind, const std::string& target,
             const std::string& params_json) {
  j["kind"] = kind;
  if (!target.empty()) j["target"] = target;
  const auto params = nlohmann::ordered_json::parse(params_json, nullptr, false);
  if (params.is_object() && !params.empty()) j["params"] = params;
}

nlohmann::ordered_json retention_json(const RetentionPolicy& r) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (r.keep_last) j["keep_last"] = r.keep_last;
  if (r.keep_daily) j["keep_daily"] = r.keep_daily;
  if (r.keep_weekly) j["keep_weekly"] = r.keep_weekly;
  if (r.keep_monthly) j["keep_monthly"] = r.keep_monthly;
  if (r.max_age.count()) j["max_age"] = format_duration(r.max_age);
  return j;
}

nlohmann::ordered_json target_json(const Target& t) {
  nlohmann::ordered_json j;
  j["name"] = t.name;
  j["engine"] = t.engine;
  if (!t.dsn.empty()) j["dsn"] = redact::dsn(t.dsn.reveal());
  if (!t.host.empty()) j["host"] = t.host;
  if (t.port) j["port"] = t.port;
  if (!t.user.empty()) j["user"] = t.user;
  if (!t.password.empty()) j["password"] = std::string(t.password.redacted());
  if (!t.database.empty()) j["database"] = t.database;
  if (!t.path.empty()) j["path"] = t.path;
  if (!t.description.empty()) j["description"] = t.description;
  if (!t.tags.empty()) j["tags"] = t.tags;
  nlohmann::ordered_json tls = nlohmann::ordered_json::object();
  if (!t.tls.mode.empty()) tls["mode"] = t.tls.mode;
  if (!t.tls.ca_file.empty()) tls["ca_file"] = t.tls.ca_file;
  if (!t.tls.cert_file.empty()) tls["cert_file"] = t.tls.cert_file;
  if (!t.tls.key_file.empty()) tls["key_file"] = t.tls.key_file;
  if (t.tls.verify_server_cert) tls["verify_server_cert"] = *t.tls.verify_server_cert;
  if (!tls.empty()) j["tls"] = tls;
  nlohmann::ordered_json backup = nlohmann::ordered_json::object();
  if (!t.backup.method.empty()) backup["method"] = t.backup.method;
  if (!t.backup.databases.empty()) backup["databases"] = t.backup.databases;
  if (!t.backup.fingerprint.empty()) backup["fingerprint"] = t.backup.fingerprint;
  if (t.backup.retention) backup["retention"] = retention_json(*t.backup.retention);
  if (t.backup.pgbackrest) {
    nlohmann::ordered_json p;
    p["stanza"] = t.backup.pgbackrest->stanza;
    if (!t.backup.pgbackrest->config.empty()) p["config"] = t.backup.pgbackrest->config;
    p["type"] = t.backup.pgbackrest->type;
    p["run_as"] = t.backup.pgbackrest->run_as;
    backup["pgbackrest"] = p;
  }
  if (!backup.empty()) j["backup"] = backup;
  if (!t.canaries.empty()) {
    j["canaries"] = nlohmann::ordered_json::array();
    for (const auto& c : t.canaries) {
      nlohmann::ordered_json cj;
      cj["name"] = c.name;
      if (!c.database.empty()) cj["database"] = c.database;
      cj["sql"] = c.sql;
      cj["expect"] = c.expect;
      j["canaries"].push_back(cj);
    }
  }
  return j;
}

nlohmann::ordered_json config_json(const Config& c) {
  nlohmann::ordered_json j;
  j["file"] = c.file.string();
  j["state"] = state_text(c.state);
  if (!c.state.listen_dsn.empty()) j["state_listen"] = redact::dsn(c.state.listen_dsn.reveal());
  j["targets"] = nlohmann::ordered_json::array();
  for (const auto& t : c.targets) j["targets"].push_back(target_json(t));
  j["probe"] = {{"concurrency", c.probe.concurrency},
                {"connect_timeout", format_duration(c.probe.connect_timeout)},
                {"query_timeout", format_duration(c.probe.query_timeout)},
                {"breaker_failures", c.probe.breaker_failures},
                {"breaker_open", format_duration(c.probe.breaker_open)},
                {"duration_buckets", c.probe.duration_buckets}};
  j["agent"] = {{"listen", c.agent.listen},
                {"probe_interval", format_duration(c.agent.probe_interval)},
                {"workers", c.agent.workers},
                {"lease", format_duration(c.agent.lease)},
                {"poll_interval", format_duration(c.agent.poll_interval)},
                {"shutdown_grace", format_duration(c.agent.shutdown_grace)},
                {"job_retention", format_duration(c.agent.job_retention)},
                {"token", std::string(c.agent.token.redacted())}};
  if (!c.repository.path.empty()) {
    nlohmann::ordered_json repo;
    repo["path"] = c.repository.path;
    repo["compression"] = {{"level", c.repository.compression_level},
                           {"threads", c.repository.compression_threads}};
    if (!c.repository.encryption_key.empty()) {
      repo["encryption_key"] = std::string(c.repository.encryption_key.redacted());
    }
    repo["lock_lease"] = format_duration(c.repository.lock_lease);
    j["repository"] = repo;
  }
  j["backup"] = {{"fingerprint", c.backup.fingerprint},
                 {"checkpoint", c.backup.checkpoint},
                 {"timeout", format_duration(c.backup.timeout)},
                 {"retention", retention_json(c.backup.retention)}};
  nlohmann::ordered_json drill;
  if (!c.drill.run_as.empty()) drill["run_as"] = c.drill.run_as;
  if (!c.drill.base_dir.empty()) drill["base_dir"] = c.drill.base_dir;
  drill["timeout"] = format_duration(c.drill.timeout);
  drill["jobs"] = c.drill.jobs;
  j["drill"] = drill;
  j["schedules"] = nlohmann::ordered_json::array();
  for (const auto& sc : c.schedules) {
    nlohmann::ordered_json sj;
    sj["name"] = sc.name;
    sj["cron"] = sc.cron;
    sj["time_zone"] = sc.time_zone;
    put_job(sj, sc.kind, sc.target, sc.params_json);
    sj["catch_up"] = std::string(catch_up_name(sc.catch_up));
    sj["priority"] = sc.priority;
    sj["max_attempts"] = sc.max_attempts;
    if (sc.timeout.count() > 0) sj["timeout"] = format_duration(sc.timeout);
    sj["enabled"] = sc.enabled;
    j["schedules"].push_back(sj);
  }
  j["workflows"] = nlohmann::ordered_json::array();
  for (const auto& w : c.workflows) {
    nlohmann::ordered_json wj;
    wj["name"] = w.name;
    wj["trigger"] = w.trigger;
    if (!w.manual()) {
      wj["time_zone"] = w.time_zone;
      wj["catch_up"] = std::string(catch_up_name(w.catch_up));
    }
    if (w.timeout.count() > 0) wj["timeout"] = format_duration(w.timeout);
    wj["max_attempts"] = w.max_attempts;
    wj["enabled"] = w.enabled;
    wj["tasks"] = nlohmann::ordered_json::array();
    for (const auto& t : w.tasks) {
      nlohmann::ordered_json tj;
      tj["name"] = t.name;
      put_job(tj, t.kind, t.target, t.params_json);
      if (!t.depends_on.empty()) tj["depends_on"] = t.depends_on;
      if (t.retries > 0) tj["retries"] = t.retries;
      if (t.timeout.count() > 0) tj["timeout"] = format_duration(t.timeout);
      wj["tasks"].push_back(std::move(tj));
    }
    j["workflows"].push_back(std::move(wj));
  }
  j["notify"] = nlohmann::ordered_json::array();
  for (const auto& n : c.notify) {
    j["notify"].push_back({{"name", n.name},
                           {"type", n.type},
                           {"url", std::string(n.url.redacted())},
                           {"min_severity", n.min_severity},
                           {"timeout", format_duration(n.timeout)}});
  }
  return j;
}

void emit(YAML::Emitter& out, const nlohmann::ordered_json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << k << YAML::Value;
      emit(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    // Lists of scalars (bucket bounds) read better on one line.
    const bool flow =
        !j.empty() && std::all_of(j.begin(), j.end(), [](const auto& v) { return v.is_number(); });
    if (flow) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& v : j) emit(out, v);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    out << j.get<std::string>();
  } else if (j.is_boolean()) {
    out << j.get<bool>();
  } else if (j.is_number_integer()) {
    out << j.get<long long>();
  } else if (j.is_number_float()) {
    // The shortest text that reads back as the same number.
    const double v = j.get<double>();
    char buf[32];
    for (int precision = 1; precision <= 17; ++precision) {
      std::snprintf(buf, sizeof buf, "%.*g", precision, v);
      if (std::strtod(buf, nullptr) == v) break;
    }
    out << std::string(buf);
  } else {
    out << json_text(j);
  }
}

}  // namespace

std::string to_json(const Config& config) {
  return redact::scrub(json_text(config_json(config), 2));
}

std::string to_yaml(const Config& config) {
  nlohmann::ordered_json j = config_json(config);
  j.erase("file");
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const char* key : {"state", "state_listen", "targets", "repository", "backup", "drill",
                          "probe", "agent", "schedules", "workflows", "notify"}) {
    if (!j.contains(key) || (j[key].is_array() && j[key].empty())) continue;
    out << YAML::Key << key << YAML::Value;
    emit(out, j[key]);
  }
  out << YAML::EndMap;
  return redact::scrub(std::string(out.c_str()) + "\n");
}

}  // namespace dbops::config
