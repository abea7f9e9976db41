// Jobs: the one shape every operation takes.
//
// A JobSpec names a job kind, a target and typed parameters, plus an
// idempotency key. Capabilities register JobKinds in a JobKindRegistry; the
// Runner (runner.hpp) runs a spec in-process, records the run and its events
// in the store and hands failures to the notifiers. The CLI uses the runner
// now; the agent's queue workers use the same code.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "core/result.hpp"
#include "store/store.hpp"

namespace dbops::runtime {

struct JobSpec {
  std::string kind;
  std::string target;  // empty for jobs that need none
  // Parameters as a JSON object; validated against the kind's ParamDecls.
  std::string params_json = "{}";
  // Runs with the same key are one job: a key that already succeeded is not
  // run again.
  std::string idempotency_key;
};

// The one JSON mapping of a JobSpec, shared by CLI, agent and API.
std::string to_json(const JobSpec& spec);
Result<JobSpec> job_spec_from_json(std::string_view json);

enum class ParamType { kString, kInt, kBool, kStringList, kDuration };
std::string_view param_type_name(ParamType type);

struct ParamDecl {
  std::string_view name;
  ParamType type = ParamType::kString;
  bool required = false;
  std::string_view description;
};

using ParamValue = std::variant<std::string, std::int64_t, bool, std::vector<std::string>,
                                std::chrono::milliseconds>;

// A job's parameters, checked against its kind's declarations.
class JobParams {
 public:
  static Result<JobParams> parse(std::string_view json, std::span<const ParamDecl> decls);

  bool has(std::string_view name) const;
  std::string string(std::string_view name, std::string fallback = {}) const;
  std::int64_t integer(std::string_view name, std::int64_t fallback = 0) const;
  bool boolean(std::string_view name, bool fallback = false) const;
  std::vector<std::string> strings(std::string_view name) const;
  std::chrono::milliseconds duration(std::string_view name,
                                     std::chrono::milliseconds fallback = {}) const;

 private:
  std::map<std::string, ParamValue, std::less<>> values_;
};

// What a job reports when it ran to the end.
struct JobOutcome {
  // false when the job ran but a check or gate it performs failed.
  bool passed = true;
  std::string summary;             // one line for listings
  std::string result_json = "{}";  // structured result kept with the run
};

// How far a long job is; the CLI draws it on a terminal, the agent ignores it.
struct Progress {
  std::string phase;        // "backup", "restore", "verify" ...
  std::uint64_t done = 0;   // bytes (or units) done
  std::uint64_t total = 0;  // 0: unknown
  std::string note;         // "waiting for a spread checkpoint"
};
using ProgressSink = std::function<void(const Progress&)>;

class JobContext;

// Whether a failure is worth another attempt: core's is_transient (the
// target or a tool was unreachable, slow, failed on I/O, or a lock was
// held), plus an unexpected failure (kInternal) or one without a code. A
// failed check, a configuration or usage error, damaged data or a missing
// feature fails the same way every time.
bool transient(std::optional<ErrorCode> code);

// A job started by another job (a workflow's task).
struct ChildJob {
  // Its idempotency key must be set: it keeps the child one job across the
  // attempts of the job that starts it.
  JobSpec spec;
  int max_attempts = 1;                  // transient failures are retried up to this
  std::chrono::milliseconds timeout{0};  // per attempt; 0: no limit
};

enum class ChildState { kSucceeded, kFailed, kCheckFailed, kCancelled };

struct ChildResult {
  ChildState state = ChildState::kFailed;
  std::string run_id;       // its last run; empty when none ran
  std::int64_t job_id = 0;  // its queued job; 0 when it ran in-process
  int attempts = 0;
  std::string summary;
  std::string error;
};

// How a job starts other jobs and waits for them: in-process for the CLI
// (runtime/local_launcher.hpp), through the queue in the agent, where any
// agent's workers may run them.
class JobLauncher {
 public:
  virtual ~JobLauncher() = default;
  // Runs `child` through its attempts and says how it ended. A child whose
  // key already ran is not started again: its run (or queued job) is waited
  // for or reported. When `cancel` is raised the launcher stops waiting and
  // returns kCancelled; whether the child itself is stopped is the
  // launcher's business (see each). An error: the child could not be started
  // or followed (store unreachable).
  virtual Result<ChildResult> run(const ChildJob& child, const std::atomic<bool>& cancel) = 0;
};

class JobKind {
 public:
  virtual ~JobKind() = default;
  virtual std::string_view name() const = 0;
  virtual std::string_view description() const = 0;
  virtual bool needs_target() const { return true; }
  // Whether it changes the target (backups, migrations) or only reads it.
  virtual bool changes_target() const { return false; }
  // Queued jobs of exclusive kinds run one at a time per target, across all
  // agents: those that change it, and heavy ones that hold its backup
  // repository's lock.
  virtual bool exclusive() const { return changes_target(); }
  // Whether it spends its time waiting for child jobs (a workflow run): the
  // agent runs those outside its worker slots, so that they never take the
  // slots their children need.
  virtual bool waits_on_children() const { return false; }
  virtual std::span<const ParamDecl> params() const { return {}; }
  virtual Result<JobOutcome> run(JobContext& ctx) = 0;
};

class JobKindRegistry {
 public:
  void add(std::unique_ptr<JobKind> kind);
  const JobKind* find(std::string_view name) const;
  JobKind* find(std::string_view name);
  std::vector<const JobKind*> all() const;

 private:
  std::vector<std::unique_ptr<JobKind>> kinds_;
};

// Everything a running job may use.
class JobContext {
 public:
  JobContext(std::string run_id, const config::Config& config, const config::Target* target,
             JobParams params, store::Store& store, Clock& clock, const std::atomic<bool>* cancel);

  const std::string& run_id() const { return run_id_; }
  // The run's idempotency key; empty when it has none.
  const std::string& idempotency_key() const { return idempotency_key_; }
  void set_idempotency_key(std::string key) { idempotency_key_ = std::move(key); }
  // Where child jobs go; nullptr when this runner starts none.
  JobLauncher* launcher() const { return launcher_; }
  void set_launcher(JobLauncher* launcher) { launcher_ = launcher; }
  const config::Config& config() const { return config_; }
  // nullptr for jobs that need no target.
  const config::Target* target() const { return target_; }
  const JobParams& params() const { return params_; }
  store::Store& store() { return store_; }
  Clock& clock() { return clock_; }
  const std::atomic<bool>* cancel_flag() const { return cancel_; }
  bool cancelled() const { return cancel_ && cancel_->load(); }

  // Records an event of this run (and hands it to the notifiers at the end).
  void event(store::Severity severity, std::string type, std::string message,
             std::string data_json = "{}");
  const std::vector<store::EventRecord>& events() const { return events_; }

  // Reports progress to whoever watches (nothing when nobody does).
  void progress(const Progress& progress) const {
    if (progress_) progress_(progress);
  }
  void set_progress_sink(ProgressSink sink) { progress_ = std::move(sink); }

 private:
  std::string run_id_;
  const config::Config& config_;
  const config::Target* target_;
  JobParams params_;
  store::Store& store_;
  Clock& clock_;
  const std::atomic<bool>* cancel_;
  std::vector<store::EventRecord> events_;
  ProgressSink progress_;
  std::string idempotency_key_;
  JobLauncher* launcher_ = nullptr;
};

// What is wrong with a job of `kind` on `target` with `params_json` that
// the registry can tell before it runs: an unknown kind (with a guess), a
// missing or unknown target, parameters that do not fit the kind; nullopt
// when nothing is.
std::optional<std::string> check_job(const JobKindRegistry& kinds, const config::Config& config,
                                     std::string_view kind, std::string_view target,
                                     std::string_view params_json);

// A new run id: a ULID (26 characters, time-ordered).
std::string new_run_id(std::chrono::system_clock::time_point now);

}  // namespace dbops::runtime
