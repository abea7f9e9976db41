#include "cli/app.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/api.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "core/atomic_file.hpp"
#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "core/config/schema.hpp"
#include "core/json_text.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/time_format.hpp"
#include "core/version.hpp"
#include "engine/engine.hpp"
#include "notify/notifier.hpp"
#include "ops/register.hpp"
#include "runtime/runner.hpp"
#include "store/store.hpp"

namespace dbops::cli {
namespace {

using json = nlohmann::ordered_json;

json run_json(const store::RunRecord& r) {
  json j;
  j["run_id"] = r.run_id;
  j["kind"] = r.kind;
  j["target"] = r.target;
  j["state"] = std::string(store::run_state_name(r.state));
  j["started_at"] = format_utc(r.started_at);
  j["finished_at"] = r.finished_at ? json(format_utc(*r.finished_at)) : json(nullptr);
  if (r.finished_at) {
    j["duration_seconds"] = std::chrono::duration<double>(*r.finished_at - r.started_at).count();
  }
  j["summary"] = r.summary;
  if (!r.idempotency_key.empty()) j["idempotency_key"] = r.idempotency_key;
  auto params = json::parse(r.params_json, nullptr, false);
  j["params"] = params.is_discarded() ? json::object() : params;
  auto result = json::parse(r.result_json, nullptr, false);
  j["result"] = result.is_discarded() ? json::object() : result;
  if (!r.error.empty()) j["error"] = r.error;
  j["host"] = r.host;
  j["pid"] = r.pid;
  return j;
}

// ---------------------------------------------------------------------------
// Commands. Each takes the session and returns the exit code.

int cmd_version(Session& s) {
  json j;
  j["version"] = version();
  j["commit"] = git_commit();
#if defined(__clang__)
  j["compiler"] = "clang " __clang_version__;
#else
  j["compiler"] = "gcc " __VERSION__;
#endif
  json libs = json::object();
  for (const auto* e : engine::Registry::global().all()) {
    const std::string lib = e->client_library();
    libs[std::string(e->name())] = lib.empty() ? "not linked" : lib;
  }
  j["client_libraries"] = libs;
  if (s.format() == OutputFormat::kJson) {
    print(json_text(j, 2) + "\n");
    return 0;
  }
  std::string out = "dbops " + j["version"].get<std::string>() + " (commit " +
                    j["commit"].get<std::string>() + ")\n";
  out += "compiler: " + j["compiler"].get<std::string>() + "\n";
  for (const auto& [name, lib] : libs.items()) out += name + ": " + lib.get<std::string>() + "\n";
  print(out);
  return 0;
}

int cmd_config_check(Session& s, Globals& g) {
  std::vector<config::Problem> problems;
  auto c = s.config(&problems);
  const auto path = config::resolve_config_path(g.config_path).string();
  if (s.format() == OutputFormat::kJson) {
    json j;
    j["file"] = path;
    j["valid"] = c.has_value();
    j["problems"] = json::array();
    for (const auto& p : problems) {
      j["problems"].push_back({{"file", p.file},
                               {"line", p.line},
                               {"column", p.column},
                               {"key", p.key_path},
                               {"message", p.message}});
    }
    if (!c && problems.empty()) j["error"] = c.error().to_string();
    print(redact::scrub(json_text(j, 2)) + "\n");
    return c ? 0 : exit_code_for(c.error().code);
  }
  if (!c) {
    if (!problems.empty()) {
      std::string out;
      for (const auto& p : problems) out += p.to_string() + "\n";
      out += std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems") +
             " in " + path + "\n";
      std::fputs(redact::scrub(out).c_str(), stderr);
      return 2;
    }
    return report(c.error());
  }
  const config::Config& cfg = **c;
  print(path + ": ok (" + std::to_string(cfg.targets.size()) +
        (cfg.targets.size() == 1 ? " target, " : " targets, ") + std::to_string(cfg.notify.size()) +
        (cfg.notify.size() == 1 ? " notify channel, state " : " notify channels, state ") +
        (cfg.state.is_postgres() ? "postgresql" : "sqlite " + cfg.state.sqlite_path) + ")\n");
  return 0;
}

int cmd_config_show(Session& s) {
  auto c = s.config();
  if (!c) return report(c.error());
  print(s.format() == OutputFormat::kJson ? config::to_json(**c) + "\n" : config::to_yaml(**c));
  return 0;
}

std::string capability_status(const engine::CapabilityStatus& c) {
  if (!c.implemented) return "not implemented";
  return c.live_tested ? "tested live" : "never run against a live server";
}

int cmd_engines(Session& s) {
  const auto engines = engine::Registry::global().all();
  if (s.format() == OutputFormat::kJson) {
    json j = json::array();
    for (const auto* e : engines) {
      json caps = json::array();
      for (const auto& c : e->capabilities()) {
        caps.push_back({{"capability", c.capability},
                        {"variant", c.variant},
                        {"implemented", c.implemented},
                        {"live_tested", c.live_tested},
                        {"note", c.note}});
      }
      j.push_back({{"name", e->name()},
                   {"aliases", e->aliases()},
                   {"description", e->description()},
                   {"default_port", e->default_port()},
                   {"file_based", e->file_based()},
                   {"dsn_schemes", e->dsn_schemes()},
                   {"client_library", e->client_library()},
                   {"capabilities", caps}});
    }
    print(json_text(j, 2) + "\n");
    return 0;
  }
  Table t{.headers = {"ENGINE", "ALIASES", "ADDRESS", "CLIENT LIBRARY", "DESCRIPTION"}};
  Table caps{.headers = {"ENGINE", "CAPABILITY", "VARIANT", "STATUS", "NOTE"}};
  for (const auto* e : engines) {
    std::string address = e->file_based() ? "path" : "";
    for (const auto& scheme : e->dsn_schemes()) {
      address += (address.empty() ? "" : ", ") + scheme + "://";
    }
    if (e->accepts_key_value_dsn()) address += ", key=value";
    const auto aliases = e->aliases();
    t.rows.push_back({std::string(e->name()), join(aliases, ", "), address,
                      e->client_library().empty() ? "-" : e->client_library(),
                      std::string(e->description())});
    for (const auto& c : e->capabilities()) {
      caps.rows.push_back({std::string(e->name()), c.capability,
                           c.variant.empty() ? "-" : c.variant, capability_status(c), c.note});
    }
  }
  print(t.render(s.color()) + "\n" + caps.render(s.color()));
  return 0;
}

struct RunArgs {
  std::vector<std::string> targets;
  std::vector<std::string> tags;
  std::vector<std::string> params;
  std::string params_json;
  std::string idempotency_key;
  std::vector<std::string> argv;
  std::string kind;
};

// Builds the params JSON from --param key=value, --params-json and trailing argv.
Result<std::string> build_params(const RunArgs& a) {
  json j = json::object();
  if (!a.params_json.empty()) {
    j = json::parse(a.params_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return fail(ErrorCode::kInvalidArgument, "--params-json: expected a JSON object");
    }
  }
  for (const auto& p : a.params) {
    const auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail(ErrorCode::kInvalidArgument, "--param " + p + ": expected key=value");
    }
    const std::string key = p.substr(0, eq), value = p.substr(eq + 1);
    const auto parsed = json::parse(value, nullptr, false);
    // Numbers, booleans and JSON lists stay typed; everything else is a string.
    if (!parsed.is_discarded() &&
        (parsed.is_number() || parsed.is_boolean() || parsed.is_array())) {
      j[key] = parsed;
    } else {
      j[key] = value;
    }
  }
  if (!a.argv.empty()) j["argv"] = a.argv;
  return json_text(j);
}

// Runs one job kind for each selected target (or once, for kinds without one)
// and prints a line per run.
int run_jobs(Session& s, const RunArgs& a) {
  auto store = s.store();
  if (!store) return report(store.error());
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  runtime::JobKindRegistry& kinds = s.kinds();
  const runtime::JobKind* kind = kinds.find(a.kind);
  std::vector<std::string> target_names;
  if (kind && kind->needs_target()) {
    auto selected = s.select_targets(a.targets, a.tags);
    if (!selected) return report(selected.error());
    for (const auto* t : *selected) target_names.push_back(t->name);
  } else {
    target_names.push_back("");
  }
  auto params = build_params(a);
  if (!params) return report(params.error());

  runtime::Runner runner(kinds, **cfg, **store, real_clock(),
                         runtime::RunnerOptions{.dispatcher = s.dispatcher()});
  int exit_code = 0;
  json all = json::array();
  Table table{.headers = {"TARGET", "KIND", "STATE", "DURATION", "RUN", "SUMMARY"}};
  for (const auto& name : target_names) {
    runtime::JobSpec spec{.kind = a.kind,
                          .target = name,
                          .params_json = *params,
                          .idempotency_key = a.idempotency_key};
    auto reported = runner.run(spec);
    if (!reported) return report(reported.error());
    const auto& r = reported->run;
    exit_code = std::max(exit_code, run_exit_code(r));
    json j = run_json(r);
    j["reused"] = reported->reused;
    all.push_back(j);
    std::string state(store::run_state_name(r.state));
    if (reported->reused) state += " (earlier run)";
    table.rows.push_back(
        {r.target.empty() ? "-" : r.target, r.kind, state, duration_text(r), r.run_id, r.summary});
    if (!r.error.empty() && s.format() == OutputFormat::kTable) {
      std::fprintf(stderr, "dbops: %s\n", r.error.c_str());
    }
  }
  print(s.format() == OutputFormat::kJson ? json_text(all, 2) + "\n" : table.render(s.color()));
  return exit_code;
}

int cmd_jobs_kinds(Session& s) {
  const auto kinds = s.kinds().all();
  if (s.format() == OutputFormat::kJson) {
    json j = json::array();
    for (const auto* k : kinds) {
      json params = json::array();
      for (const auto& p : k->params()) {
        params.push_back({{"name", p.name},
                          {"type", runtime::param_type_name(p.type)},
                          {"required", p.required},
                          {"description", p.description}});
      }
      j.push_back({{"kind", k->name()},
                   {"description", k->description()},
                   {"needs_target", k->needs_target()},
                   {"changes_target", k->changes_target()},
                   {"exclusive", k->exclusive()},
                   {"params", params}});
    }
    print(json_text(j, 2) + "\n");
    return 0;
  }
  Table t{.headers = {"KIND", "TARGET", "CHANGES TARGET", "EXCLUSIVE", "PARAMS", "DESCRIPTION"}};
  for (const auto* k : kinds) {
    std::vector<std::string> params;
    for (const auto& p : k->params()) {
      params.push_back(std::string(p.name) + (p.required ? "" : "?") + ":" +
                       std::string(runtime::param_type_name(p.type)));
    }
    t.rows.push_back({std::string(k->name()), k->needs_target() ? "yes" : "no",
                      k->changes_target() ? "yes" : "no", k->exclusive() ? "yes" : "no",
                      join(params, ", "), std::string(k->description())});
  }
  print(t.render(s.color()));
  return 0;
}

// ------------------------------------------------------------ job queue --

struct QueueArgs {
  std::string state, target, kind;
  std::int64_t id = 0;
  std::size_t limit = 50;
  int priority = 0;
  int max_attempts = 3;
  std::string in;       // due after this long
  std::string timeout;  // per attempt
};

// `dbops jobs enqueue KIND`: one queued job per selected target (or one, for
// kinds without a target), checked against the kind's parameters first.
int cmd_jobs_enqueue(Session& s, const RunArgs& a, const QueueArgs& q) {
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  const runtime::JobKind* kind = s.kinds().find(a.kind);
  if (!kind) {
    return report(make_error(ErrorCode::kNotFound, "unknown job kind \"" + a.kind + "\"")
                      .with_hint("`dbops jobs kinds` lists the job kinds"));
  }
  auto params = build_params(a);
  if (!params) return report(params.error());
  std::vector<std::string> target_names;
  if (kind->needs_target()) {
    auto selected = s.select_targets(a.targets, a.tags);
    if (!selected) return report(selected.error());
    for (const auto* t : *selected) target_names.push_back(t->name);
  } else {
    target_names.push_back("");
  }
  agent::EnqueueRequest request{.kind = a.kind,
                                .params_json = *params,
                                .priority = q.priority,
                                .max_attempts = q.max_attempts};
  if (!q.in.empty()) {
    auto delay = config::parse_duration(q.in);
    if (!delay) {
      return report(make_error(ErrorCode::kInvalidArgument,
                               "--in " + q.in + ": expected a duration such as 90s or 2h"));
    }
    request.delay = *delay;
  }
  if (!q.timeout.empty()) {
    auto timeout = config::parse_duration(q.timeout);
    if (!timeout) {
      return report(make_error(ErrorCode::kInvalidArgument,
                               "--timeout " + q.timeout + ": expected a duration such as 30m"));
    }
    request.timeout = *timeout;
  }
  std::vector<store::JobSpec> specs;
  for (const auto& name : target_names) {
    request.target = name;
    request.idempotency_key.clear();
    if (!a.idempotency_key.empty()) {
      request.idempotency_key =
          target_names.size() > 1 ? a.idempotency_key + ":" + name : a.idempotency_key;
    }
    auto spec = agent::make_job_spec(request, s.kinds(), **cfg);
    if (!spec) return report(spec.error());
    specs.push_back(std::move(*spec));
  }
  auto queue = s.queue();
  if (!queue) return report(queue.error());
  auto results = (*queue)->enqueue_batch(specs);
  if (!results) return report(results.error());
  json all = json::array();
  Table t{.headers = {"JOB", "KIND", "TARGET", "STATE"}};
  for (std::size_t i = 0; i < results->size(); ++i) {
    const auto& r = (*results)[i];
    all.push_back({{"id", r.id},
                   {"kind", specs[i].kind},
                   {"target", specs[i].target},
                   {"created", r.created}});
    t.rows.push_back({std::to_string(r.id), specs[i].kind,
                      specs[i].target.empty() ? "-" : specs[i].target,
                      r.created ? "queued" : "already queued (same key)"});
  }
  print(s.format() == OutputFormat::kJson ? json_text(all, 2) + "\n" : t.render(s.color()));
  return 0;
}

int cmd_jobs_list(Session& s, const QueueArgs& a) {
  store::JobQuery query{.target = a.target, .kind = a.kind, .limit = a.limit};
  if (!a.state.empty()) {
    query.state = store::parse_job_state(a.state);
    if (!query.state) {
      return report(make_error(ErrorCode::kInvalidArgument,
                               "--state " + a.state +
                                   ": expected scheduled, available, running, retrying, "
                                   "succeeded, failed, dead or cancelled"));
    }
  }
  auto queue = s.queue();
  if (!queue) return report(queue.error());
  auto jobs = (*queue)->list(query);
  if (!jobs) return report(jobs.error());
  if (s.format() == OutputFormat::kJson) {
    json j = json::array();
    for (const auto& q : *jobs) j.push_back(agent::queued_job_json(q));
    print(json_text(j, 2) + "\n");
    return 0;
  }
  Table t{.headers = {"JOB", "KIND", "TARGET", "STATE", "ATTEMPT", "DUE", "OWNER", "LAST ERROR"}};
  for (const auto& q : *jobs) {
    t.rows.push_back(
        {std::to_string(q.id), q.spec.kind, q.spec.target.empty() ? "-" : q.spec.target,
         std::string(store::job_state_name(q.state)),
         std::to_string(q.attempt) + "/" + std::to_string(q.spec.max_attempts),
         format_utc(q.run_at), q.lease_owner.empty() ? "-" : q.lease_owner, q.last_error});
  }
  print(t.render(s.color()));
  return 0;
}

int cmd_jobs_show(Session& s, const QueueArgs& a) {
  auto queue = s.queue();
  if (!queue) return report(queue.error());
  auto job = (*queue)->get(a.id);
  if (!job) return report(job.error());
  if (!*job) {
    return report(make_error(ErrorCode::kNotFound, "no queued job " + std::to_string(a.id))
                      .with_hint("`dbops jobs list` shows the queue"));
  }
  const json j = agent::queued_job_json(**job);
  if (s.format() == OutputFormat::kJson) {
    print(json_text(j, 2) + "\n");
    return 0;
  }
  std::string out;
  for (const auto& [key, value] : j.items()) {
    if (value.is_null() || (value.is_string() && value.get<std::string>().empty())) continue;
    std::string text = value.is_string() ? value.get<std::string>() : json_text(value);
    out += key + ":" + std::string(key.size() < 17 ? 17 - key.size() : 1, ' ') + text + "\n";
  }
  print(redact::scrub(out));
  return 0;
}

int cmd_jobs_cancel(Session& s, const QueueArgs& a) {
  auto queue = s.queue();
  if (!queue) return report(queue.error());
  auto previous = (*queue)->cancel(a.id);
  if (!previous) return report(previous.error());
  const bool was_final = store::job_state_final(*previous);
  const std::string was(store::job_state_name(*previous));
  if (s.format() == OutputFormat::kJson) {
    print(json_text(json{{"id", a.id}, {"previous_state", was}, {"cancelled", !was_final}}, 2) +
          "\n");
  } else if (was_final) {
    print("job " + std::to_string(a.id) + " had already ended (" + was + "); nothing to cancel\n");
  } else {
    print("job " + std::to_string(a.id) + " cancelled (was " + was + ")" +
          (*previous == store::JobState::kRunning ? "; its agent stops it at its next heartbeat\n"
                                                  : "\n"));
  }
  return 0;
}

int cmd_agent_members(Session& s) {
  auto queue = s.queue();
  if (!queue) return report(queue.error());
  auto members = (*queue)->members();
  if (!members) return report(members.error());
  auto terms = (*queue)->leader_terms(1);
  if (!terms) return report(terms.error());
  if (s.format() == OutputFormat::kJson) {
    json j;
    j["members"] = json::array();
    for (const auto& m : *members) j["members"].push_back(agent::member_json(m));
    if (!terms->empty()) {
      j["last_term"] = {{"term", terms->front().term},
                        {"holder", terms->front().holder},
                        {"started_at", format_utc(terms->front().started_at)},
                        {"held_until", format_utc(terms->front().held_until)}};
    }
    print(json_text(j, 2) + "\n");
    return 0;
  }
  Table t{.headers = {"MEMBER", "ALIVE", "LEADER", "RUNNING", "LAST HEARTBEAT", "STARTED"}};
  for (const auto& m : *members) {
    t.rows.push_back({m.id, m.alive ? "yes" : "no", m.leader ? "yes" : "-",
                      std::to_string(m.running_jobs), format_utc(m.last_heartbeat),
                      format_utc(m.started_at)});
  }
  std::string out = t.render(s.color());
  if (!terms->empty()) {
    out += "last leader term: " + std::to_string(terms->front().term) + " (" +
           terms->front().holder + ", since " + format_utc(terms->front().started_at) + ")\n";
  }
  print(out);
  return 0;
}

struct RunsArgs {
  std::string target, kind, state, run_id;
  std::size_t limit = 20;
};

int cmd_runs_list(Session& s, const RunsArgs& a) {
  auto store = s.store();
  if (!store) return report(store.error());
  store::RunQuery q{.target = a.target, .kind = a.kind, .limit = a.limit};
  if (!a.state.empty()) {
    q.state = store::parse_run_state(a.state);
    if (!q.state) {
      return report(make_error(
          ErrorCode::kInvalidArgument,
          "--state " + a.state + ": expected running, succeeded, failed or check_failed"));
    }
  }
  auto runs = (*store)->list_runs(q);
  if (!runs) return report(runs.error());
  if (s.format() == OutputFormat::kJson) {
    json j = json::array();
    for (const auto& r : *runs) j.push_back(run_json(r));
    print(json_text(j, 2) + "\n");
    return 0;
  }
  Table t{.headers = {"RUN", "STARTED", "KIND", "TARGET", "STATE", "DURATION", "SUMMARY"}};
  for (const auto& r : *runs) {
    t.rows.push_back({r.run_id, format_utc(r.started_at), r.kind, r.target.empty() ? "-" : r.target,
                      std::string(store::run_state_name(r.state)), duration_text(r), r.summary});
  }
  print(t.render(s.color()));
  return 0;
}

int cmd_runs_show(Session& s, const RunsArgs& a) {
  auto store = s.store();
  if (!store) return report(store.error());
  auto run = (*store)->get_run(a.run_id);
  if (!run) return report(run.error());
  if (!*run) {
    return report(make_error(ErrorCode::kNotFound, "no run with id " + a.run_id)
                      .with_hint("`dbops runs list` shows recent runs"));
  }
  auto events = (*store)->list_events({.run_id = (*run)->run_id});
  if (!events) return report(events.error());
  json j = run_json(**run);
  j["events"] = json::array();
  for (const auto& e : *events) {
    auto data = json::parse(e.data_json, nullptr, false);
    j["events"].push_back({{"at", format_utc(e.at)},
                           {"type", e.type},
                           {"severity", store::severity_name(e.severity)},
                           {"message", e.message},
                           {"data", data.is_discarded() ? json::object() : data}});
  }
  if (s.format() == OutputFormat::kJson) {
    print(json_text(j, 2) + "\n");
    return 0;
  }
  const auto& r = **run;
  std::string out;
  out += "run:       " + r.run_id + "\n";
  out += "kind:      " + r.kind + "\n";
  out += "target:    " + (r.target.empty() ? std::string("-") : r.target) + "\n";
  out += "state:     " + std::string(store::run_state_name(r.state)) + "\n";
  out += "started:   " + format_utc(r.started_at) + "\n";
  out += "duration:  " + duration_text(r) + "\n";
  out += "host:      " + r.host + " (pid " + std::to_string(r.pid) + ")\n";
  if (!r.idempotency_key.empty()) out += "key:       " + r.idempotency_key + "\n";
  out += "summary:   " + r.summary + "\n";
  if (!r.error.empty()) out += "error:     " + r.error + "\n";
  out += "params:    " + json_text(j["params"]) + "\n";
  out += "result:    " + json_text(j["result"]) + "\n";
  if (!events->empty()) {
    out += "events:\n";
    for (const auto& e : *events) {
      out += "  " + format_utc(e.at) + "  " + std::string(store::severity_name(e.severity)) + "  " +
             e.type + "  " + e.message + "\n";
    }
  }
  print(redact::scrub(out));
  return 0;
}

// ---------------------------------------------------------------------------
// The command tree. Descriptions and examples live here once: --help and the
// generated command reference in docs/ both come from them.

struct Example {
  const char* command;
  const char* text;
};

std::string examples_footer(std::initializer_list<Example> examples) {
  std::string out = "Examples:\n";
  for (const auto& e : examples) {
    out += "  # ";
    out += e.text;
    out += "\n  ";
    out += e.command;
    out += "\n";
  }
  return out;
}

void add_target_selection(CLI::App* cmd, RunArgs& a) {
  cmd->add_option("--target", a.targets, "Target name (repeatable); all targets when omitted");
  cmd->add_option("--tag", a.tags, "Only targets with this tag, key=value (repeatable)");
}

struct Commands {
  Globals g;
  RunArgs run;
  RunsArgs runs;
  QueueArgs queue;
  std::string docs_dir;
  AgentArgs agent;
  BackupArgs backup;
  WorkflowArgs workflow;
  bool agent_logs_info = false;
  bool allows_trailing = false;
  std::function<int()> action;
};

std::unique_ptr<CLI::App> build_app(Commands& c, Session& s) {
  auto app = std::make_unique<CLI::App>(
      "dbops: verified backups, probes, migrations and failover for PostgreSQL, MariaDB/MySQL, "
      "Redis and SQLite, from one binary.",
      "dbops");
  app->require_subcommand(1);
  app->fallthrough();
  app->set_help_all_flag("--help-all", "Show help for every command");
  app->add_option("--config", c.g.config_path,
                  "Config file (default: $DBOPS_CONFIG, then ./dbops.yaml)");
  app->add_option("--output", c.g.output, "Output format")
      ->check(CLI::IsMember({"table", "json"}))
      ->default_str("table");
  app->add_option("--log-level", c.g.log_level, "Log level on stderr")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->default_str("warn");
  app->add_flag("--no-color", c.g.no_color, "Plain output without colour (also: NO_COLOR set)");

  auto* version =
      app->add_subcommand("version", "Print version, commit, compiler and client libraries");
  version->footer(examples_footer({{"dbops version --output json", "versions for an inventory"}}));
  version->callback([&] { c.action = [&] { return cmd_version(s); }; });

  auto* engines = app->add_subcommand("engines", "List the database engines this build supports");
  engines->footer(examples_footer({{"dbops engines", "what each engine accepts as an address"}}));
  engines->callback([&] { c.action = [&] { return cmd_engines(s); }; });

  auto* config = app->add_subcommand("config", "Validate and show the configuration");
  config->require_subcommand(1);
  auto* config_check = config->add_subcommand(
      "check", "Validate the config; every problem with file:line:column (exit 2 on any)");
  config_check->footer(examples_footer({{"dbops --config /etc/dbops/dbops.yaml config check",
                                         "validate a config before deploying it"}}));
  config_check->callback([&] { c.action = [&] { return cmd_config_check(s, c.g); }; });
  auto* config_show =
      config->add_subcommand("show", "Print the resolved config with secrets redacted");
  config_show->footer(examples_footer(
      {{"dbops config show --output json", "the resolved config as JSON, passwords redacted"}}));
  config_show->callback([&] { c.action = [&] { return cmd_config_show(s); }; });

  auto* check = app->add_subcommand(
      "check",
      "Check targets without connecting: engine, address, database file (a job per target)");
  add_target_selection(check, c.run);
  check->footer(examples_footer({{"dbops check --tag env=prod", "check every production target"}}));
  check->callback([&] {
    c.run.kind = "check";
    c.action = [&] { return run_jobs(s, c.run); };
  });

  auto* probe = app->add_subcommand(
      "probe", "Probe targets: reachability, latency, role, lag, connections, size, health");
  add_target_selection(probe, c.run);
  probe->footer(examples_footer(
      {{"dbops probe --tag env=prod --output json", "probe production targets, for a script"},
       {"dbops probe --target pg-main", "one target"}}));
  probe->callback([&] { c.action = [&] { return cmd_probe(s, c.run.targets, c.run.tags); }; });

  auto* backup = app->add_subcommand(
      "backup", "Take, list, verify, prune and restore backups in the repository");
  backup->require_subcommand(1);
  auto* backup_run = backup->add_subcommand(
      "run", "Back up the selected targets into the repository, with checksums and a fingerprint");
  backup_run->add_option("--target", c.backup.targets,
                         "Target name (repeatable); all targets when omitted");
  backup_run->add_option("--tag", c.backup.tags,
                         "Only targets with this tag, key=value (repeatable)");
  backup_run->add_option(
      "--method", c.backup.method,
      "Backup method (postgres: logical, physical, pgbackrest; mysql: logical; redis: rdb; "
      "sqlite: file)");
  backup_run->add_option("--fingerprint", c.backup.fingerprint, "Content fingerprint")
      ->check(CLI::IsMember({"off", "sampled", "full"}));
  backup_run->add_option("--metrics-textfile", c.backup.metrics_textfile,
                         "Also write the backup and drill gauges to this node_exporter textfile");
  backup_run->footer(examples_footer(
      {{"dbops backup run --target pg-main --method physical", "a physical backup of one target"},
       {"dbops backup run --metrics-textfile /var/lib/node_exporter/dbops.prom",
        "every target, from cron, with metrics for node_exporter"}}));
  backup_run->callback([&] { c.action = [&] { return cmd_backup_run(s, c.backup); }; });

  auto* backup_list = backup->add_subcommand("list", "List the backups in the repository");
  backup_list->add_option("--target", c.backup.targets, "Only this target (repeatable)");
  backup_list->add_flag("--all", c.backup.all,
                        "Also list incomplete backups (left by a killed run until the next run of "
                        "that target removes them)");
  backup_list->footer(
      examples_footer({{"dbops backup list --target pg-main", "one target's backups"}}));
  backup_list->callback([&] { c.action = [&] { return cmd_backup_list(s, c.backup); }; });

  auto* backup_show = backup->add_subcommand("show", "Show a backup's manifest");
  backup_show->add_option("id", c.backup.backup, "Backup id or unique prefix")->required();
  backup_show->footer(examples_footer(
      {{"dbops backup show 20261126T1015 --output json", "the manifest as stored"}}));
  backup_show->callback([&] { c.action = [&] { return cmd_backup_show(s, c.backup); }; });

  auto* backup_verify = backup->add_subcommand(
      "verify", "Re-read a backup and check every chunk against its manifest (exit 1 on damage)");
  backup_verify->add_option("id", c.backup.backup, "Backup id or unique prefix")->required();
  backup_verify->footer(examples_footer({{"dbops backup verify 20261126T1015", "is it intact?"}}));
  backup_verify->callback([&] { c.action = [&] { return cmd_backup_verify(s, c.backup); }; });

  auto* backup_prune =
      backup->add_subcommand("prune", "Delete the backups the retention policy no longer keeps");
  backup_prune->add_option("--target", c.backup.targets,
                           "Target name (repeatable); all when omitted");
  backup_prune->add_option("--tag", c.backup.tags,
                           "Only targets with this tag, key=value (repeatable)");
  backup_prune->add_flag("--dry-run", c.backup.dry_run,
                         "List what would be deleted; delete nothing");
  backup_prune->footer(examples_footer({{"dbops backup prune --dry-run", "what would go"}}));
  backup_prune->callback([&] { c.action = [&] { return cmd_backup_prune(s, c.backup); }; });

  auto* backup_restore = backup->add_subcommand(
      "restore", "Restore a backup into a target (logical) or a path (physical, files)");
  backup_restore->add_option("id", c.backup.backup, "Backup id or unique prefix")->required();
  backup_restore->add_option("--to", c.backup.to, "A configured target, or a path")->required();
  backup_restore->add_flag("--yes", c.backup.yes, "Restore into a target that already holds data");
  backup_restore->footer(examples_footer(
      {{"dbops backup restore 20261126T1015 --to pg-scratch", "into an empty database"},
       {"dbops backup restore 20261126T1015 --to /srv/restore/pg",
        "a physical backup's data directory"}}));
  backup_restore->callback([&] { c.action = [&] { return cmd_backup_restore(s, c.backup); }; });

  auto* backup_reindex = backup->add_subcommand(
      "reindex", "Rebuild the state store's backup catalog from the repository alone");
  backup_reindex->footer(
      examples_footer({{"dbops backup reindex", "after moving the state store"}}));
  backup_reindex->callback([&] { c.action = [&] { return cmd_backup_reindex(s); }; });

  auto* drill = app->add_subcommand(
      "drill", "Restore a backup into a throwaway instance and prove it: RTO, RPO, checks");
  drill->add_option("--target", c.backup.targets, "Target name (repeatable); all when omitted");
  drill->add_option("--tag", c.backup.tags, "Only targets with this tag, key=value (repeatable)");
  drill->add_option("--backup", c.backup.backup, "Backup id or prefix; the newest when omitted");
  drill->add_option("--metrics-textfile", c.backup.metrics_textfile,
                    "Also write the backup and drill gauges to this node_exporter textfile");
  drill->footer(examples_footer(
      {{"dbops drill --target pg-main", "drill the newest backup"},
       {"dbops drill --backup 20261126T1015 --output json", "evidence for an audit"}}));
  drill->callback([&] { c.action = [&] { return cmd_drill(s, c.backup); }; });

  auto* agent = app->add_subcommand(
      "agent",
      "Run the agent: probe rounds, schedules, queued jobs, /metrics, the API; or list members");
  agent->add_option("--listen", c.agent.listen,
                    "host:port to serve on (overrides agent.listen; port 0: any free port, "
                    "logged)");
  agent->footer(examples_footer(
      {{"dbops --config /etc/dbops/dbops.yaml agent", "serve metrics for Prometheus to scrape"}}));
  auto* members = agent->add_subcommand(
      "members", "List the agents on the state store: alive, leader, running jobs");
  members->footer(examples_footer({{"dbops agent members", "who is up, who leads"}}));
  members->callback([&] { c.action = [&] { return cmd_agent_members(s); }; });
  agent->callback([&, members] {
    if (members->parsed()) return;
    c.agent_logs_info = true;
    c.action = [&] { return cmd_agent(s, c.agent); };
  });

  auto* jobs = app->add_subcommand("jobs", "Run jobs, queue them for the agents, list the kinds");
  jobs->require_subcommand(1);
  auto* jobs_run =
      jobs->add_subcommand("run", "Run a job of any kind in-process, once per selected target");
  jobs_run->add_option("kind", c.run.kind, "Job kind (see `dbops jobs kinds`)")->required();
  add_target_selection(jobs_run, c.run);
  jobs_run->add_option("--param", c.run.params, "Job parameter key=value (repeatable)");
  jobs_run->add_option("--params-json", c.run.params_json, "Job parameters as a JSON object");
  jobs_run->add_option("--idempotency-key", c.run.idempotency_key,
                       "Skip the run when a run with this key already succeeded");
  jobs_run->add_option("argv", c.run.argv,
                       "For the command kind: the program and its arguments, after --");
  jobs_run->footer(examples_footer(
      {{"dbops jobs run command --target pg-main -- psql -c 'VACUUM ANALYZE'",
        "run a maintenance script with the target's credentials in its environment"},
       {"dbops jobs run check --target sample --idempotency-key nightly-2026-11-26",
        "run a job at most once per key"}}));
  jobs_run->callback([&] {
    c.allows_trailing = true;
    c.action = [&] { return run_jobs(s, c.run); };
  });
  auto* jobs_kinds = jobs->add_subcommand("kinds", "List the job kinds and their parameters");
  jobs_kinds->footer(examples_footer({{"dbops jobs kinds", "what can be run"}}));
  jobs_kinds->callback([&] { c.action = [&] { return cmd_jobs_kinds(s); }; });

  auto* jobs_enqueue = jobs->add_subcommand(
      "enqueue", "Queue a job for the agents, once per selected target (retried on failure)");
  jobs_enqueue->add_option("kind", c.run.kind, "Job kind (see `dbops jobs kinds`)")->required();
  add_target_selection(jobs_enqueue, c.run);
  jobs_enqueue->add_option("--param", c.run.params, "Job parameter key=value (repeatable)");
  jobs_enqueue->add_option("--params-json", c.run.params_json, "Job parameters as a JSON object");
  jobs_enqueue->add_option("--idempotency-key", c.run.idempotency_key,
                           "A second enqueue with this key returns the first job (with several "
                           "targets, the key gets :TARGET appended)");
  jobs_enqueue->add_option("--priority", c.queue.priority, "Higher runs first")->default_str("0");
  jobs_enqueue
      ->add_option("--max-attempts", c.queue.max_attempts, "Attempts before the job is dead")
      ->default_str("3")
      ->check(CLI::Range(1, 100));
  jobs_enqueue->add_option("--in", c.queue.in, "Due after this long (e.g. 10m); default now");
  jobs_enqueue->add_option("argv", c.run.argv,
                           "For the command kind: the program and its arguments, after --");
  jobs_enqueue->add_option("--timeout", c.queue.timeout, "Stop an attempt after this long");
  jobs_enqueue->footer(examples_footer(
      {{"dbops jobs enqueue backup --target pg-main --idempotency-key pg-main-2026-11-26",
        "a backup the agents run once"},
       {"dbops jobs enqueue drill --target pg-main --in 1h", "a drill in an hour"}}));
  jobs_enqueue->callback([&] {
    c.allows_trailing = true;
    c.action = [&] { return cmd_jobs_enqueue(s, c.run, c.queue); };
  });

  auto* jobs_list = jobs->add_subcommand("list", "List queued jobs, newest first");
  jobs_list->add_option("--state", c.queue.state, "Only jobs in this state")
      ->check(CLI::IsMember({"scheduled", "available", "running", "retrying", "succeeded", "failed",
                             "dead", "cancelled"}));
  jobs_list->add_option("--target", c.queue.target, "Only jobs of this target");
  jobs_list->add_option("--kind", c.queue.kind, "Only jobs of this kind");
  jobs_list->add_option("--limit", c.queue.limit, "At most this many jobs")->default_str("50");
  jobs_list->footer(examples_footer({{"dbops jobs list --state dead", "what gave up"}}));
  jobs_list->callback([&] { c.action = [&] { return cmd_jobs_list(s, c.queue); }; });

  auto* jobs_show = jobs->add_subcommand("show", "Show one queued job");
  jobs_show->add_option("id", c.queue.id, "Job id")->required();
  jobs_show->footer(examples_footer({{"dbops jobs show 42", "state, attempts, lease, error"}}));
  jobs_show->callback([&] { c.action = [&] { return cmd_jobs_show(s, c.queue); }; });

  auto* jobs_cancel = jobs->add_subcommand("cancel", "Cancel a queued or running job");
  jobs_cancel->add_option("id", c.queue.id, "Job id")->required();
  jobs_cancel->footer(examples_footer(
      {{"dbops jobs cancel 42", "a running job is stopped by its agent at the next heartbeat"}}));
  jobs_cancel->callback([&] { c.action = [&] { return cmd_jobs_cancel(s, c.queue); }; });

  auto* workflow = app->add_subcommand(
      "workflow", "Run the config's workflows (DAGs of jobs), list them, show a run's tasks");
  workflow->require_subcommand(1);
  auto* workflow_list =
      workflow->add_subcommand("list", "List the workflows with their trigger and latest run");
  workflow_list->footer(examples_footer({{"dbops workflow list", "what runs when, how it went"}}));
  workflow_list->callback([&] { c.action = [&] { return cmd_workflow_list(s); }; });
  auto* workflow_run = workflow->add_subcommand(
      "run", "Run a workflow in-process (or queue it for the agents with --enqueue)");
  workflow_run->add_option("name", c.workflow.name, "Workflow name (see `dbops workflow list`)")
      ->required();
  workflow_run->add_flag("--enqueue", c.workflow.enqueue,
                         "Queue the run for the agents; its tasks become queued jobs");
  workflow_run->add_option("--idempotency-key", c.workflow.idempotency_key,
                           "A run with this key that already succeeded is not run again; one "
                           "that failed goes on where it stopped");
  workflow_run->footer(examples_footer(
      {{"dbops workflow run pg-main-nightly", "back up, verify and drill now, here"},
       {"dbops workflow run pg-main-nightly --enqueue", "let the agents run it"}}));
  workflow_run->callback([&] { c.action = [&] { return cmd_workflow_run(s, c.workflow); }; });
  auto* workflow_show =
      workflow->add_subcommand("show", "Show a workflow run and the state of each of its tasks");
  workflow_show
      ->add_option("run", c.workflow.run,
                   "Run id (or a unique prefix), or the id of the queued job of the run")
      ->required();
  workflow_show->footer(
      examples_footer({{"dbops workflow show 01JDX3", "which task failed, which were skipped"},
                       {"dbops workflow show 42 --output json", "a queued run, by its job id"}}));
  workflow_show->callback([&] { c.action = [&] { return cmd_workflow_show(s, c.workflow); }; });

  auto* store_cmd = app->add_subcommand(
      "store", "The state store's schema: where it stands, and migrating it ahead of a rollout");
  store_cmd->require_subcommand(1);
  auto* store_status =
      store_cmd->add_subcommand("status", "Show each schema part's version and what is pending");
  store_status->footer(
      examples_footer({{"dbops store status", "is the shared store ready for this release?"}}));
  store_status->callback([&] { c.action = [&] { return cmd_store_status(s); }; });
  auto* store_migrate = store_cmd->add_subcommand(
      "migrate",
      "Apply pending schema migrations (expand only: the previous release keeps working)");
  store_migrate->footer(examples_footer({{"dbops --config /etc/dbops/dbops.yaml store migrate",
                                          "before upgrading the agents one at a time"}}));
  store_migrate->callback([&] { c.action = [&] { return cmd_store_migrate(s); }; });

  auto* runs = app->add_subcommand("runs", "Show recorded job runs and their events");
  runs->require_subcommand(1);
  auto* runs_list = runs->add_subcommand("list", "List recent runs, newest first");
  runs_list->add_option("--target", c.runs.target, "Only runs of this target");
  runs_list->add_option("--kind", c.runs.kind, "Only runs of this job kind");
  runs_list->add_option("--state", c.runs.state, "Only runs in this state")
      ->check(CLI::IsMember({"running", "succeeded", "failed", "check_failed"}));
  runs_list->add_option("--limit", c.runs.limit, "At most this many runs")->default_str("20");
  runs_list->footer(examples_footer({{"dbops runs list --state failed", "what failed lately"}}));
  runs_list->callback([&] { c.action = [&] { return cmd_runs_list(s, c.runs); }; });
  auto* runs_show = runs->add_subcommand("show", "Show one run with its result and events");
  runs_show->add_option("run_id", c.runs.run_id, "Run id (or a unique prefix)")->required();
  runs_show->footer(examples_footer({{"dbops runs show 01JDX3", "details of a run"}}));
  runs_show->callback([&] { c.action = [&] { return cmd_runs_show(s, c.runs); }; });

  // Set last: subcommands created after it would inherit it.
  app->footer(examples_footer(
      {{"dbops --config examples/quickstart/dbops.yaml check", "check every target of a config"},
       {"dbops config check", "validate ./dbops.yaml"}}));

  // Maintainer commands, not shown in help.
  auto* docs = app->add_subcommand("docs", "");
  docs->group("");
  docs->require_subcommand(1);
  docs->add_subcommand("update", "")
      ->callback([&] { c.action = [&] { return -1; }; })
      ->add_option("--dir", c.docs_dir)
      ->required();
  return app;
}

// ---------------------------------------------------------------------------
// Generated documentation.

struct DocPage {
  const char* file;
  std::vector<std::string> commands;  // top-level commands documented there
  bool global_options = false;
  bool config_keys = false;
  bool engine_matrix = false;
};

const std::vector<DocPage>& doc_pages() {
  static const std::vector<DocPage> pages = {
      {"cli.md", {"version", "engines"}, true, false, true}, {"config.md", {"config"}, false, true},
      {"jobs.md", {"check", "jobs", "runs"}, false, false},  {"probe.md", {"probe"}, false, false},
      {"backup.md", {"backup", "drill"}, false, false},      {"agent.md", {"agent"}, false, false},
      {"workflow.md", {"workflow"}, false, false},           {"store.md", {"store"}, false, false},
  };
  return pages;
}

void option_rows(const CLI::App* cmd, std::string& out) {
  std::string rows;
  for (const CLI::Option* opt : cmd->get_options()) {
    if (opt->get_name() == "--help" || opt->get_name() == "--help-all") continue;
    std::string name = opt->get_name(false, true);
    if (name.empty()) name = opt->get_name();
    std::string desc = opt->get_description();
    if (!opt->get_default_str().empty()) desc += " (default: " + opt->get_default_str() + ")";
    if (opt->get_required()) desc += " (required)";
    rows += "| `" + name + "` | " + desc + " |\n";
  }
  if (rows.empty()) return;
  out += "| option | description |\n|---|---|\n" + rows;
}

void command_section(const CLI::App* cmd, const std::string& path, std::string& out) {
  if (cmd->get_group().empty()) return;
  out += "### `dbops " + path + "`\n\n" + cmd->get_description() + "\n\n";
  option_rows(cmd, out);
  if (!cmd->get_footer().empty()) {
    out += "\n```\n" + cmd->get_footer() + "```\n";
  }
  out += "\n";
  for (const CLI::App* sub : cmd->get_subcommands({})) {
    command_section(sub, path + " " + sub->get_name(), out);
  }
}

std::string generated_block(const DocPage& page, const CLI::App& app) {
  std::string out;
  if (page.global_options) {
    out += "### Global options\n\n";
    option_rows(&app, out);
    out += "\n";
  }
  for (const auto& name : page.commands) {
    for (const CLI::App* cmd : app.get_subcommands({})) {
      if (cmd->get_name() == name) command_section(cmd, name, out);
    }
  }
  if (page.engine_matrix) {
    out +=
        "### Engines and capabilities\n\n"
        "What this build implements per engine, and whether the test suite runs it against a "
        "live server (generated from the engine registry, as `dbops engines` prints it).\n\n"
        "| engine | capability | variant | status | note |\n|---|---|---|---|---|\n";
    for (const auto* e : engine::Registry::global().all()) {
      for (const auto& c : e->capabilities()) {
        out += "| " + std::string(e->name()) + " | " + c.capability + " | " +
               (c.variant.empty() ? "" : c.variant) + " | " + capability_status(c) + " | " +
               c.note + " |\n";
      }
    }
    out += "\n";
  }
  if (page.config_keys) {
    out += "### Keys\n\n" + config::schema_markdown() + "\n";
  }
  return out;
}

constexpr std::string_view kBegin =
    "<!-- BEGIN GENERATED: edit the declarations in src/, then run `make docs` -->\n";
constexpr std::string_view kEnd = "<!-- END GENERATED -->";

// Replaces the generated block of a page's text; nullopt when it has no markers.
std::optional<std::string> with_block(const std::string& text, const std::string& block) {
  const auto b = text.find(kBegin);
  const auto e = text.find(kEnd);
  if (b == std::string::npos || e == std::string::npos || e < b) return std::nullopt;
  return text.substr(0, b + kBegin.size()) + block + text.substr(e);
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int update_docs(const CLI::App& app, const std::string& dir) {
  for (const auto& page : doc_pages()) {
    const auto path = std::filesystem::path(dir) / page.file;
    const std::string text = read_text(path);
    auto updated = with_block(text, generated_block(page, app));
    if (!updated) {
      std::fprintf(stderr, "dbops: %s: no generated-block markers\n", path.c_str());
      return 2;
    }
    if (*updated != text) {
      if (auto st = write_file_atomic(path, *updated); !st) return report(st.error());
      std::printf("updated %s\n", path.c_str());
    }
  }
  return 0;
}

}  // namespace

std::vector<std::string> stale_doc_pages(const std::filesystem::path& docs_dir) {
  Commands c;
  Session s(c.g);
  auto app = build_app(c, s);
  std::vector<std::string> stale;
  for (const auto& page : doc_pages()) {
    const std::string text = read_text(docs_dir / page.file);
    auto updated = with_block(text, generated_block(page, *app));
    if (!updated || *updated != text) stale.emplace_back(page.file);
  }
  return stale;
}

int run(int argc, char** argv) {
  Commands c;
  Session s(c.g);
  auto app = build_app(c, s);
  // Everything after the first "--" is a program's argv (`jobs run command`),
  // kept away from the option parser so that its own flags pass through.
  std::vector<std::string> args(argv + 1, argv + argc);
  std::vector<std::string> trailing;
  bool has_separator = false;
  if (const auto sep = std::find(args.begin(), args.end(), "--"); sep != args.end()) {
    trailing.assign(sep + 1, args.end());
    args.erase(sep, args.end());
    has_separator = true;
  }
  const std::vector<std::string> given = args;
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
  try {
    app->parse(args);
  } catch (const CLI::Success& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    // Name an unknown command rather than saying only that one is required.
    const CLI::App* current = app.get();
    std::string path = "dbops";
    for (std::size_t i = 0; i < given.size(); ++i) {
      const std::string& a = given[i];
      if (a == "--config" || a == "--output" || a == "--log-level") {
        ++i;
        continue;
      }
      if (a.starts_with("-")) continue;
      std::vector<std::string> commands;
      const CLI::App* next = nullptr;
      for (const CLI::App* sub : current->get_subcommands({})) {
        if (sub->get_group().empty()) continue;
        commands.push_back(sub->get_name());
        if (sub->get_name() == a) next = sub;
      }
      if (next) {
        current = next;
        path += " " + a;
        continue;
      }
      if (commands.empty()) break;
      std::string msg = path + ": unknown command \"" + a + "\"";
      if (auto guess = did_you_mean(a, commands)) msg += " (did you mean \"" + *guess + "\"?)";
      std::fprintf(stderr, "%s\nRun `%s --help` for the list of commands.\n", msg.c_str(),
                   path.c_str());
      return 2;
    }
    const int rc = app->exit(e);
    return rc == 0 ? 0 : 2;
  }
  log::Level level = log::Level::kWarn;
  log::parse_level(c.g.log_level, level);
  // The agent is a service: it logs at info unless told otherwise.
  if (c.agent_logs_info && app->get_option("--log-level")->count() == 0) level = log::Level::kInfo;
  const bool tty = isatty(STDERR_FILENO);
  log::init({.level = level,
             .format = tty ? log::Format::kText : log::Format::kJson,
             .color = tty && !c.g.no_color && !std::getenv("NO_COLOR")});
  if (!c.docs_dir.empty()) return update_docs(*app, c.docs_dir);
  if (has_separator) {
    if (!c.allows_trailing) {
      std::fputs("dbops: arguments after -- are only taken by `jobs run`\n", stderr);
      return 2;
    }
    c.run.argv.insert(c.run.argv.end(), trailing.begin(), trailing.end());
  }
  if (!c.action) return 2;
  return c.action();
}

}  // namespace dbops::cli
