#include "runtime/runner.hpp"

#include <signal.h>
#include <unistd.h>

#include <exception>

#include "core/log.hpp"
#include "core/strings.hpp"

namespace dbops::runtime {
namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

bool process_alive(int pid) {
  return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

notify::Event to_notify(const store::EventRecord& e) {
  return notify::Event{.at = e.at,
                       .run_id = e.run_id,
                       .target = e.target,
                       .type = e.type,
                       .severity = std::string(store::severity_name(e.severity)),
                       .message = e.message,
                       .data_json = e.data_json};
}

}  // namespace

Runner::Runner(JobKindRegistry& kinds, const config::Config& config, store::Store& store,
               Clock& clock, RunnerOptions options)
    : kinds_(kinds), config_(config), store_(store), clock_(clock), options_(options) {}

Result<RunReport> Runner::run(const JobSpec& spec) {
  // Find the job kind and its target.
  JobKind* kind = kinds_.find(spec.kind);
  if (!kind) {
    std::vector<std::string> names;
    for (const auto* k : kinds_.all()) names.emplace_back(k->name());
    std::string msg = "unknown job kind \"" + spec.kind + "\"";
    if (auto guess = did_you_mean(spec.kind, names)) msg += " (did you mean \"" + *guess + "\"?)";
    return fail(ErrorCode::kNotFound, msg, "`dbops jobs kinds` lists the job kinds");
  }
  // Kinds that need no target may still be given one (backup.verify: its
  // newest backup).
  const config::Target* target = nullptr;
  if (kind->needs_target() && spec.target.empty()) {
    return fail(ErrorCode::kInvalidArgument, spec.kind + ": needs a target", "pass --target NAME");
  }
  if (!spec.target.empty()) {
    target = config_.find_target(spec.target);
    if (!target) {
      std::vector<std::string> names;
      for (const auto& t : config_.targets) names.push_back(t.name);
      std::string msg = "unknown target \"" + spec.target + "\"";
      if (auto guess = did_you_mean(spec.target, names)) {
        msg += " (did you mean \"" + *guess + "\"?)";
      }
      return fail(ErrorCode::kNotFound, msg,
                  "the targets are listed under `targets` in " + config_.file.string());
    }
  }

  // Check the parameters against the kind's declarations.
  auto params = JobParams::parse(spec.params_json, kind->params());
  if (!params) return std::unexpected(std::move(params).error().with_context(spec.kind));

  // An idempotency key that already succeeded is not run again.
  if (!spec.idempotency_key.empty()) {
    DBOPS_ASSIGN(auto previous, store_.find_run_by_key(spec.idempotency_key));
    if (previous && previous->state == store::RunState::kSucceeded) {
      return RunReport{.run = *previous, .events = {}, .reused = true};
    }
    if (previous && previous->state == store::RunState::kRunning && previous->host == host_name() &&
        process_alive(previous->pid)) {
      return fail(ErrorCode::kConflict, "job with idempotency key " + spec.idempotency_key +
                                            " is already running as " + previous->run_id +
                                            " (pid " + std::to_string(previous->pid) + ")");
    }
  }

  // Record the run as started.
  store::RunRecord run;
  run.run_id = new_run_id(clock_.now());
  run.kind = spec.kind;
  run.target = target ? target->name : "";
  run.idempotency_key = spec.idempotency_key;
  // Secrets belong in the config, not in parameters; any that slipped in are
  // not recorded.
  run.params_json = redact::scrub(spec.params_json.empty() ? "{}" : spec.params_json);
  run.state = store::RunState::kRunning;
  run.started_at = clock_.now();
  run.host = host_name();
  run.pid = static_cast<int>(getpid());
  DBOPS_TRY(store_.insert_run(run));

  // Run the job with its run id on every log line.
  log::Scope scope(run.run_id, run.target, run.kind);
  log::info("job started");
  JobContext ctx(run.run_id, config_, target, std::move(*params), store_, clock_, options_.cancel);
  ctx.set_progress_sink(options_.progress);
  ctx.set_idempotency_key(spec.idempotency_key);
  ctx.set_launcher(options_.launcher);
  const auto started = clock_.steady_now();
  Result<JobOutcome> outcome = fail(ErrorCode::kInternal, "job did not run");
  try {
    outcome = kind->run(ctx);
  } catch (const std::exception& e) {
    outcome = fail(ErrorCode::kInternal, std::string("unexpected exception: ") + e.what());
  }
  const auto elapsed = std::chrono::duration<double>(clock_.steady_now() - started).count();
  std::optional<ErrorCode> error_code;

  // Record how it ended.
  run.finished_at = clock_.now();
  if (outcome) {
    run.state = outcome->passed ? store::RunState::kSucceeded : store::RunState::kCheckFailed;
    run.summary = redact::scrub(outcome->summary);
    run.result_json = redact::scrub(outcome->result_json);
  } else {
    const Error& error = outcome.error();
    error_code = error.code;
    run.state =
        exit_code_for(error.code) == 1 ? store::RunState::kCheckFailed : store::RunState::kFailed;
    run.error = redact::scrub(error.to_string());
    run.summary = redact::scrub(error.message);
  }
  if (run.state != store::RunState::kSucceeded) {
    ctx.event(store::Severity::kError,
              run.state == store::RunState::kCheckFailed ? "job.check_failed" : "job.failed",
              spec.kind + (run.target.empty() ? "" : " on " + run.target) + ": " + run.summary);
  }
  DBOPS_TRY(store_.finish_run(run));
  if (run.state == store::RunState::kSucceeded) {
    log::info("job succeeded", {{"duration_seconds", elapsed}, {"summary", run.summary}});
  } else {
    log::error("job " + std::string(store::run_state_name(run.state)),
               {{"duration_seconds", elapsed}, {"error", run.error}});
  }

  // Hand what went wrong to the notifiers.
  if (options_.dispatcher) {
    for (const auto& e : ctx.events()) {
      if (auto st = options_.dispatcher->dispatch(to_notify(e)); !st) {
        log::warn("notification failed", {{"error", st.error().to_string()}});
      }
    }
  }
  return RunReport{
      .run = std::move(run), .events = ctx.events(), .reused = false, .error_code = error_code};
}

}  // namespace dbops::runtime
