#include "agent/api.hpp"

#include <httplib.h>

#include <charconv>
#include <map>
#include <nlohmann/json.hpp>

#include "core/log.hpp"
#include "core/time_format.hpp"
#include "runtime/job.hpp"

namespace dbops::agent {
namespace {

using json = nlohmann::ordered_json;

void send(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& hint = {}) {
  json body{{"error", message}};
  if (!hint.empty()) body["hint"] = hint;
  send(res, status, body);
}

int status_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kConfig:
    case ErrorCode::kUnsupported:
      return 400;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
      return 503;
    default:
      return 500;
  }
}

void send_error(httplib::Response& res, const Error& error) {
  send_error(res, status_for(error.code), error.message, error.hint);
}

// Constant time in the length of the presented token.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// Whether the request may change something; answers it when not.
bool authorized(const httplib::Request& req, httplib::Response& res, const Secret& token) {
  if (token.empty()) {
    send_error(res, 403, "changes over the API are disabled",
               "set agent.token (e.g. token: ${env:DBOPS_AGENT_TOKEN}) and send it as "
               "Authorization: Bearer <token>");
    return false;
  }
  const std::string header = req.get_header_value("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0 ||
      !same_secret(std::string_view(header).substr(kBearer.size()), token.reveal())) {
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "missing or wrong bearer token");
    return false;
  }
  return true;
}

Result<std::int64_t> parse_id(const std::string& text) {
  std::int64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) {
    return fail(ErrorCode::kInvalidArgument, "job id " + text + " is not a positive integer");
  }
  return id;
}

// The enqueue body: every field known and of its type.
Result<EnqueueRequest> parse_enqueue(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return fail(ErrorCode::kInvalidArgument, "the body is not valid JSON");
  if (!j.is_object()) return fail(ErrorCode::kInvalidArgument, "the body must be a JSON object");
  EnqueueRequest r;
  for (const auto& [key, value] : j.items()) {
    auto want = [&](bool ok, const char* type) -> Status {
      if (!ok) {
        return fail(ErrorCode::kInvalidArgument, "field \"" + key + "\" must be " + type);
      }
      return dbops::ok();
    };
    auto duration = [&](std::chrono::milliseconds& out) -> Status {
      DBOPS_TRY(want(value.is_string(), "a duration string such as \"90s\""));
      auto d = config::parse_duration(value.get<std::string>());
      if (!d) {
        return fail(ErrorCode::kInvalidArgument,
                    "field \"" + key + "\": " + value.get<std::string>() + " is not a duration");
      }
      out = *d;
      return dbops::ok();
    };
    if (key == "kind") {
      DBOPS_TRY(want(value.is_string(), "a string"));
      r.kind = value.get<std::string>();
    } else if (key == "target") {
      DBOPS_TRY(want(value.is_string(), "a string"));
      r.target = value.get<std::string>();
    } else if (key == "params") {
      DBOPS_TRY(want(value.is_object(), "an object"));
      r.params_json = value.dump();
    } else if (key == "idempotency_key") {
      DBOPS_TRY(want(value.is_string(), "a string"));
      r.idempotency_key = value.get<std::string>();
    } else if (key == "priority") {
      DBOPS_TRY(want(value.is_number_integer(), "an integer"));
      r.priority = value.get<int>();
    } else if (key == "max_attempts") {
      DBOPS_TRY(want(value.is_number_integer() && value.get<int>() >= 1 && value.get<int>() <= 100,
                     "an integer from 1 to 100"));
      r.max_attempts = value.get<int>();
    } else if (key == "in") {
      DBOPS_TRY(duration(r.delay));
    } else if (key == "timeout") {
      DBOPS_TRY(duration(r.timeout));
    } else {
      return fail(ErrorCode::kInvalidArgument, "unknown field \"" + key + "\"",
                  "the fields are kind, target, params, idempotency_key, priority, "
                  "max_attempts, in, timeout");
    }
  }
  if (r.kind.empty()) return fail(ErrorCode::kInvalidArgument, "field \"kind\" is required");
  return r;
}

// The body of POST /api/v1/workflows/{name}/runs: empty, or an object with
// an idempotency_key.
Result<std::string> parse_run_request(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return std::string();
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return fail(ErrorCode::kInvalidArgument, "the body is not valid JSON");
  if (!j.is_object()) return fail(ErrorCode::kInvalidArgument, "the body must be a JSON object");
  std::string key;
  for (const auto& [name, value] : j.items()) {
    if (name != "idempotency_key") {
      return fail(ErrorCode::kInvalidArgument, "unknown field \"" + name + "\"",
                  "the only field is idempotency_key");
    }
    if (!value.is_string()) {
      return fail(ErrorCode::kInvalidArgument, "field \"idempotency_key\" must be a string");
    }
    key = value.get<std::string>();
  }
  return key;
}

// How many of the newest workflow runs are read to find each workflow's.
constexpr std::size_t kWorkflowRunsRead = 1'000;

json run_summary_json(const store::RunRecord& run) {
  return json{{"run_id", run.run_id},
              {"state", std::string(store::run_state_name(run.state))},
              {"started_at", format_utc(run.started_at)},
              {"finished_at", run.finished_at ? json(format_utc(*run.finished_at)) : json()},
              {"summary", run.summary}};
}

json workflow_json(const config::Workflow& w) {
  json tasks = json::array();
  for (const auto& t : w.tasks) {
    tasks.push_back({{"name", t.name},
                     {"kind", t.kind},
                     {"target", t.target},
                     {"depends_on", t.depends_on},
                     {"retries", t.retries},
                     {"timeout_ms", t.timeout.count()}});
  }
  return json{{"name", w.name},
              {"trigger", w.trigger},
              {"time_zone", w.time_zone},
              {"enabled", w.enabled},
              {"timeout_ms", w.timeout.count()},
              {"max_attempts", w.max_attempts},
              {"tasks", std::move(tasks)}};
}

}  // namespace

json workflow_run_json(const ops::workflow::RunStatus& status) {
  json j = run_summary_json(status.run);
  j["workflow"] = status.workflow;
  j["run_key"] = ops::workflow::run_key(status.run);
  if (!status.run.error.empty()) j["error"] = status.run.error;
  j["tasks"] = json::array();
  for (const auto& t : status.tasks) j["tasks"].push_back(ops::workflow::task_json(t));
  return j;
}

Result<json> workflows_json(store::Store& store, const config::Config& config) {
  // One read of the newest workflow runs, for every workflow.
  DBOPS_ASSIGN(auto runs, workflow_runs(store, "", kWorkflowRunsRead));
  std::map<std::string, const store::RunRecord*, std::less<>> latest;
  for (const auto& run : runs) latest.emplace(ops::workflow::workflow_of(run), &run);
  json out = json::array();
  for (const auto& w : config.workflows) {
    json j = workflow_json(w);
    const auto it = latest.find(w.name);
    j["last_run"] = it == latest.end() ? json() : run_summary_json(*it->second);
    out.push_back(std::move(j));
  }
  return out;
}

Result<std::vector<store::RunRecord>> workflow_runs(store::Store& store, std::string_view name,
                                                    std::size_t limit) {
  // Workflow runs are few beside other runs; a bounded scan of the newest.
  DBOPS_ASSIGN(auto runs, store.list_runs(store::RunQuery{.kind = std::string(ops::workflow::kKind),
                                                          .limit = kWorkflowRunsRead}));
  std::vector<store::RunRecord> out;
  for (auto& run : runs) {
    if (out.size() >= limit) break;
    if (name.empty() || ops::workflow::workflow_of(run) == name) out.push_back(std::move(run));
  }
  return out;
}

json member_json(const store::Member& m, std::string_view self) {
  json j;
  j["id"] = m.id;
  j["self"] = m.id == self;
  j["alive"] = m.alive;
  j["leader"] = m.leader;
  j["running_jobs"] = m.running_jobs;
  j["started_at"] = format_utc(m.started_at);
  j["last_heartbeat"] = format_utc(m.last_heartbeat, /*millis=*/true);
  const json info = json::parse(m.info_json, nullptr, false);
  j["info"] = info.is_discarded() ? json::object() : info;
  return j;
}

json queued_job_json(const store::QueuedJob& q) {
  json j;
  j["id"] = q.id;
  j["kind"] = q.spec.kind;
  j["target"] = q.spec.target;
  const json params = json::parse(q.spec.params_json, nullptr, false);
  j["params"] = params.is_discarded() ? json::object() : params;
  j["state"] = std::string(store::job_state_name(q.state));
  j["attempt"] = q.attempt;
  j["max_attempts"] = q.spec.max_attempts;
  j["priority"] = q.spec.priority;
  j["exclusive"] = q.spec.exclusive;
  j["timeout_ms"] = q.spec.timeout.count();
  j["idempotency_key"] = q.spec.idempotency_key;
  j["run_at"] = format_utc(q.run_at);
  j["lease_owner"] = q.lease_owner;
  j["lease_expires_at"] = q.lease_expires_at ? json(format_utc(*q.lease_expires_at)) : json();
  j["last_error"] = q.last_error;
  const json result = json::parse(q.result_json.empty() ? "null" : q.result_json, nullptr, false);
  j["result"] = result.is_discarded() ? json() : result;
  j["created_at"] = format_utc(q.created_at);
  j["finished_at"] = q.finished_at ? json(format_utc(*q.finished_at)) : json();
  return j;
}

Result<store::JobSpec> make_job_spec(const EnqueueRequest& r, const runtime::JobKindRegistry& kinds,
                                     const config::Config& config) {
  const runtime::JobKind* kind = kinds.find(r.kind);
  if (!kind) {
    return fail(ErrorCode::kNotFound, "unknown job kind \"" + r.kind + "\"",
                "`dbops jobs kinds` lists the job kinds");
  }
  if (kind->needs_target()) {
    if (r.target.empty()) {
      return fail(ErrorCode::kInvalidArgument, r.kind + ": needs a target");
    }
    if (!config.find_target(r.target)) {
      return fail(ErrorCode::kNotFound, "unknown target \"" + r.target + "\"");
    }
  } else if (!r.target.empty() && !config.find_target(r.target)) {
    return fail(ErrorCode::kNotFound, "unknown target \"" + r.target + "\"");
  }
  if (auto params = runtime::JobParams::parse(r.params_json, kind->params()); !params) {
    return std::unexpected(std::move(params).error().with_context(r.kind));
  }
  if (r.max_attempts < 1) {
    return fail(ErrorCode::kInvalidArgument, "max_attempts must be at least 1");
  }
  store::JobSpec spec;
  spec.kind = r.kind;
  spec.target = r.target;
  spec.params_json = r.params_json;
  spec.idempotency_key = r.idempotency_key;
  spec.priority = r.priority;
  spec.max_attempts = r.max_attempts;
  spec.timeout = r.timeout;
  spec.exclusive = kind->exclusive();
  if (r.delay.count() > 0) spec.run_at = std::chrono::system_clock::now() + r.delay;
  return spec;
}

void register_api(httplib::Server& server, store::JobQueue& queue, store::Store& store,
                  const runtime::JobKindRegistry& kinds, const config::Config& config,
                  ApiOptions options) {
  server.set_payload_max_length(options.max_body);
  auto opts = std::make_shared<ApiOptions>(std::move(options));

  server.Get("/api/v1/jobs", [&queue](const httplib::Request& req, httplib::Response& res) {
    store::JobQuery q;
    if (req.has_param("state")) {
      q.state = store::parse_job_state(req.get_param_value("state"));
      if (!q.state) {
        return send_error(res, 400, "state " + req.get_param_value("state") + " is not a job state",
                          "scheduled, available, running, retrying, succeeded, failed, dead, "
                          "cancelled");
      }
    }
    if (req.has_param("target")) q.target = req.get_param_value("target");
    if (req.has_param("kind")) q.kind = req.get_param_value("kind");
    if (req.has_param("limit")) {
      auto limit = parse_id(req.get_param_value("limit"));
      if (!limit || *limit > 10'000) {
        return send_error(res, 400, "limit must be an integer from 1 to 10000");
      }
      q.limit = static_cast<std::size_t>(*limit);
    }
    auto jobs = queue.list(q);
    if (!jobs) return send_error(res, jobs.error());
    json out = json::array();
    for (const auto& job : *jobs) out.push_back(queued_job_json(job));
    send(res, 200, out);
  });

  server.Get(R"(/api/v1/jobs/([^/]+))",
             [&queue](const httplib::Request& req, httplib::Response& res) {
               auto id = parse_id(req.matches[1]);
               if (!id) return send_error(res, id.error());
               auto job = queue.get(*id);
               if (!job) return send_error(res, job.error());
               if (!*job) return send_error(res, 404, "no job " + std::to_string(*id));
               send(res, 200, queued_job_json(**job));
             });

  server.Post("/api/v1/jobs", [&queue, &kinds, &config, opts](const httplib::Request& req,
                                                              httplib::Response& res) {
    if (!authorized(req, res, opts->token)) return;
    auto request = parse_enqueue(req.body);
    if (!request) return send_error(res, request.error());
    auto spec = make_job_spec(*request, kinds, config);
    if (!spec) return send_error(res, spec.error());
    auto queued = queue.enqueue(*spec);
    if (!queued) return send_error(res, queued.error());
    log::info("job enqueued over the API",
              {{"job_id", queued->id}, {"kind", spec->kind}, {"target", spec->target}});
    if (opts->enqueued) opts->enqueued();
    send(res, queued->created ? 201 : 200, json{{"id", queued->id}, {"created", queued->created}});
  });

  server.Post(R"(/api/v1/jobs/([^/]+)/cancel)",
              [&queue, opts](const httplib::Request& req, httplib::Response& res) {
                if (!authorized(req, res, opts->token)) return;
                auto id = parse_id(req.matches[1]);
                if (!id) return send_error(res, id.error());
                auto previous = queue.cancel(*id);
                if (!previous) return send_error(res, previous.error());
                log::info("job cancelled over the API", {{"job_id", *id}});
                send(res, 200,
                     json{{"id", *id},
                          {"previous_state", std::string(store::job_state_name(*previous))},
                          {"cancelled", !store::job_state_final(*previous)}});
              });

  server.Get("/api/v1/members", [&queue, opts](const httplib::Request&, httplib::Response& res) {
    auto members = queue.members();
    if (!members) return send_error(res, members.error());
    json out = json::array();
    for (const auto& m : *members) out.push_back(member_json(m, opts->member_id));
    send(res, 200, out);
  });

  server.Get("/api/v1/workflows",
             [&store, &config](const httplib::Request&, httplib::Response& res) {
               auto workflows = workflows_json(store, config);
               if (!workflows) return send_error(res, workflows.error());
               send(res, 200, *workflows);
             });

  server.Get(R"(/api/v1/workflows/([^/]+)/runs)",
             [&store, &config](const httplib::Request& req, httplib::Response& res) {
               const std::string name = req.matches[1];
               if (!config.find_workflow(name)) return send_error(res, 404, "no workflow " + name);
               std::size_t limit = 20;
               if (req.has_param("limit")) {
                 auto n = parse_id(req.get_param_value("limit"));
                 if (!n || *n > 1'000)
                   return send_error(res, 400, "limit must be an integer from 1 to 1000");
                 limit = static_cast<std::size_t>(*n);
               }
               auto runs = workflow_runs(store, name, limit);
               if (!runs) return send_error(res, runs.error());
               json out = json::array();
               for (const auto& run : *runs) {
                 auto status = ops::workflow::run_status(store, config, run);
                 if (!status) return send_error(res, status.error());
                 out.push_back(workflow_run_json(*status));
               }
               send(res, 200, out);
             });

  server.Post(R"(/api/v1/workflows/([^/]+)/runs)", [&queue, &config, opts](
                                                       const httplib::Request& req,
                                                       httplib::Response& res) {
    if (!authorized(req, res, opts->token)) return;
    const std::string name = req.matches[1];
    const config::Workflow* workflow = config.find_workflow(name);
    if (!workflow) {
      return send_error(res, 404, "no workflow " + name, "GET /api/v1/workflows lists them");
    }
    auto key = parse_run_request(req.body);
    if (!key) return send_error(res, key.error());
    store::JobSpec spec = ops::workflow::run_job(*workflow);
    spec.idempotency_key = *key;
    auto queued = queue.enqueue(spec);
    if (!queued) return send_error(res, queued.error());
    log::info("workflow run enqueued over the API", {{"job_id", queued->id}, {"workflow", name}});
    if (opts->enqueued) opts->enqueued();
    send(res, queued->created ? 201 : 200,
         json{{"id", queued->id}, {"workflow", name}, {"created", queued->created}});
  });

  // Anything else under /api/v1: a JSON 404, not httplib's empty one.
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/api/", 0) == 0 && res.body.empty()) {
      if (res.status == 413) {
        send_error(res, 413, "the body is larger than the API accepts");
      } else if (res.status == 404) {
        send_error(res, 404, "no such endpoint: " + req.method + " " + req.path);
      }
    }
  });
}

}  // namespace dbops::agent
