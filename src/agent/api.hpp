// The agent's HTTP API (JSON, under /api/v1 on agent.listen):
//
//   GET  /api/v1/jobs?state=&target=&kind=&limit=   queued jobs, newest first
//   GET  /api/v1/jobs/{id}                          one job
//   POST /api/v1/jobs                               enqueue (changing)
//   POST /api/v1/jobs/{id}/cancel                   cancel (changing)
//   GET  /api/v1/members                            the agents on this state store
//   GET  /api/v1/workflows                          the config's workflows, each with
//                                                   its latest run
//   GET  /api/v1/workflows/{name}/runs?limit=       its runs, newest first, with
//                                                   their tasks
//   POST /api/v1/workflows/{name}/runs              start a run: enqueues its job
//                                                   (changing)
//
// Changing endpoints need `Authorization: Bearer <agent.token>`; without a
// configured token they are refused (403), so a fresh agent never accepts
// changes from anyone who can reach its port. Bodies are JSON objects of at
// most ApiOptions::max_body bytes; malformed JSON, unknown fields and wrong
// types are a 400 that says which. Errors are {"error": ..., "hint": ...}.
// Nothing of a request's headers is logged.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "core/config/config.hpp"
#include "core/secret.hpp"
#include "ops/workflow/workflow.hpp"
#include "store/queue.hpp"

namespace httplib {
class Server;
}
namespace dbops::runtime {
class JobKindRegistry;
}

namespace dbops::agent {

struct ApiOptions {
  Secret token;  // empty: changing endpoints are refused
  std::size_t max_body = 64 * 1024;
  std::string member_id;  // this agent, marked "self" in /members
  // Called after a job was enqueued, so that the local worker looks at once.
  std::function<void()> enqueued;
};

// Adds the /api/v1 handlers to `server`; everything passed must outlive it.
void register_api(httplib::Server& server, store::JobQueue& queue, store::Store& store,
                  const runtime::JobKindRegistry& kinds, const config::Config& config,
                  ApiOptions options);

// The one JSON form of a queued job, shared by the API and `dbops jobs`.
nlohmann::ordered_json queued_job_json(const store::QueuedJob& job);
// A member as the API and `dbops agent members` show it; `self` marks the
// answering agent.
nlohmann::ordered_json member_json(const store::Member& member, std::string_view self = {});
// The config's workflows (trigger, tasks), each with its latest run
// ("last_run": run_id, state, started_at, finished_at, summary; null when it
// never ran), from one read of the store: GET /api/v1/workflows and
// `dbops workflow list`.
Result<nlohmann::ordered_json> workflows_json(store::Store& store, const config::Config& config);
// A workflow run with its tasks, shared by the API and `dbops workflow show`.
nlohmann::ordered_json workflow_run_json(const ops::workflow::RunStatus& status);
// The latest runs of workflow `name` (every workflow when empty), newest
// first, at most `limit`.
Result<std::vector<store::RunRecord>> workflow_runs(store::Store& store, std::string_view name,
                                                    std::size_t limit);

// A job spec from the API's (and `dbops jobs enqueue`'s) terms, checked
// against the kind's parameters and the config's targets: kNotFound for an
// unknown kind or target, kInvalidArgument for anything else wrong.
struct EnqueueRequest {
  std::string kind;
  std::string target;
  std::string params_json = "{}";
  std::string idempotency_key;
  int priority = 0;
  int max_attempts = 3;
  std::chrono::milliseconds delay{0};
  std::chrono::milliseconds timeout{0};
};
Result<store::JobSpec> make_job_spec(const EnqueueRequest& request,
                                     const runtime::JobKindRegistry& kinds,
                                     const config::Config& config);

}  // namespace dbops::agent
