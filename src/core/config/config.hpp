// The configuration model: what dbops.yaml says, resolved and validated.
//
// Loading (load_config) reads YAML, resolves ${env:NAME} and ${file:PATH}
// references (with an optional .env file beside the config), checks every
// key against the declarations in schema.hpp and reports every problem with
// file:line:column, the key path and what was expected. Secret values are
// held as Secret and never printed in clear.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/secret.hpp"

namespace dbops::config {

struct SourceLocation {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based; 0 when unknown
};

// TLS options, engine-neutral; each engine maps them onto its client's
// settings (PostgreSQL sslmode/sslrootcert/sslcert/sslkey, MariaDB
// ssl-ca/ssl-cert/ssl-key/verify-server-cert).
struct TlsOptions {
  std::string mode;       // disable | allow | prefer | require | verify-ca | verify-full
  std::string ca_file;    // CA certificate(s) to verify the server with
  std::string cert_file;  // client certificate
  std::string key_file;   // client private key
  std::optional<bool> verify_server_cert;
};

// Which backups prune keeps; a backup kept by any rule stays. All zero (and
// no max_age): keep everything.
struct RetentionPolicy {
  int keep_last = 0;                     // the newest N
  int keep_daily = 0;                    // the newest of each of the last N days that have one
  int keep_weekly = 0;                   // ... ISO weeks
  int keep_monthly = 0;                  // ... calendar months
  std::chrono::milliseconds max_age{0};  // older ones go whatever the rules above say; 0: none
};

// A query a restore drill runs on the restored data, with the result it must
// give (columns joined by '|', rows by newlines, surrounding blanks ignored).
struct Canary {
  std::string name;
  std::string database;  // empty: the target's database
  std::string sql;
  std::string expect;
};

// A pgBackRest stanza dbops drives (method pgbackrest).
struct PgBackRestOptions {
  std::string stanza;
  std::string config;               // pgbackrest.conf; empty: pgBackRest's default
  std::string type = "full";        // full | diff | incr
  std::string run_as = "postgres";  // when dbops runs as root
};

// Per-target backup settings; empty fields fall back to the `backup:` section.
struct TargetBackup {
  std::string method;                  // empty: the engine's default
  std::vector<std::string> databases;  // logical backups; ["*"]: all plus globals
  std::string fingerprint;             // off | sampled | full
  std::optional<RetentionPolicy> retention;
  std::optional<PgBackRestOptions> pgbackrest;
};

struct Target {
  std::string name;
  std::string engine;  // canonical engine name (aliases resolved)
  // Either a connection string in the engine's native form ...
  Secret dsn;
  // ... or structured fields ...
  std::string host;
  int port = 0;  // 0: the engine's default
  std::string user;
  Secret password;
  std::string database;
  // ... or, for file-based engines (SQLite), a path (absolute once loaded).
  std::string path;
  TlsOptions tls;
  std::map<std::string, std::string> tags;
  std::string description;
  TargetBackup backup;
  std::vector<Canary> canaries;
  SourceLocation location;
};

struct NotifyChannel {
  std::string name;
  std::string type;  // webhook | slack
  Secret url;
  std::string min_severity = "error";  // info | warn | error
  std::chrono::milliseconds timeout{10'000};
  SourceLocation location;
};

// How probes run (`dbops probe` and the agent's rounds).
struct ProbeConfig {
  int concurrency = 32;                              // targets probed at once
  std::chrono::milliseconds connect_timeout{5'000};  // dbops's deadline to connect
  std::chrono::milliseconds query_timeout{5'000};    // deadline of the probe's queries
  int breaker_failures = 3;                          // consecutive failures that open the breaker
  std::chrono::milliseconds breaker_open{60'000};    // how long a broken target is left alone
  // Buckets (seconds) of dbops_probe_duration_seconds.
  std::vector<double> duration_buckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                          0.1,   0.25,   0.5,   1,    2.5,   5};
};

// What a schedule does about fire times that passed while no agent enqueued
// them (every agent was down, or the store was unreachable).
enum class CatchUp {
  kSkip,  // nothing; the schedule goes on from its next fire time
  kOnce,  // one job, for the most recent missed fire time
};
std::string_view catch_up_name(CatchUp catch_up);

// A job the agent enqueues at every fire time of a cron expression. The kind,
// target and params are checked against the job-kind registry when the agent
// starts (agent::check_schedules); the loader checks the rest.
struct Schedule {
  std::string name;
  std::string cron;                // five fields or a macro (core/cron.hpp)
  std::string time_zone = "UTC";   // IANA name the expression is evaluated in
  std::string kind;                // job kind
  std::string target;              // empty: none (kinds that need no target)
  std::string params_json = "{}";  // a JSON object
  CatchUp catch_up = CatchUp::kSkip;
  int priority = 0;
  int max_attempts = 3;
  std::chrono::milliseconds timeout{0};  // per attempt; 0: no limit
  bool enabled = true;
  SourceLocation location;
};

// One task of a workflow: a job of any kind (but another workflow), started
// once every task it depends on has succeeded. The kind, target and params
// are checked against the job-kind registry before a run
// (ops::workflow::check_workflows); the loader checks names, references and
// cycles.
struct WorkflowTask {
  std::string name;
  std::string kind;
  std::string target;  // empty: none (kinds that need no target)
  std::string params_json = "{}";
  std::vector<std::string> depends_on;
  int retries = 0;                       // attempts after the first failed one
  std::chrono::milliseconds timeout{0};  // per attempt; 0: no limit
  SourceLocation location;
};

// A named DAG of tasks. `trigger` is "manual" (runs when asked: `dbops
// workflow run`, the API) or a cron expression the agent fires it on, as a
// schedule named "workflow.<name>" would.
struct Workflow {
  std::string name;
  std::string trigger = "manual";
  std::string time_zone = "UTC";
  CatchUp catch_up = CatchUp::kSkip;
  std::chrono::milliseconds timeout{0};  // the whole run; 0: no limit
  int max_attempts = 3;                  // of the run itself (its agent dying counts)
  bool enabled = true;                   // false: the trigger does not fire
  std::vector<WorkflowTask> tasks;       // in config order, without cycles
  SourceLocation location;

  bool manual() const { return trigger == "manual"; }
  const WorkflowTask* find_task(std::string_view name) const;
};

struct AgentConfig {
  std::string listen = "127.0.0.1:9646";  // host:port of /metrics, /healthz, /readyz
  std::chrono::milliseconds probe_interval{15'000};
  // Queue workers: jobs this agent runs at once.
  int workers = 4;
  // A claimed job's lease (renewed every third of it); a job whose agent died
  // returns to the queue once it passes.
  std::chrono::milliseconds lease{30'000};
  // How often an idle agent looks for due jobs.
  std::chrono::milliseconds poll_interval{1'000};
  // At SIGTERM: how long running jobs get to finish before they are stopped
  // and given back to the queue.
  std::chrono::milliseconds shutdown_grace{30'000};
  // Finished jobs are deleted from the queue after this long.
  std::chrono::milliseconds job_retention{7LL * 24 * 3'600'000};
  // Bearer token of the API's changing endpoints; empty: they are refused.
  Secret token;
};

// Where backups are kept.
struct RepositoryConfig {
  std::string path;  // posix repository root, absolute once loaded; empty: not configured
  int compression_level = 3;
  int compression_threads = 2;  // zstd worker threads; 0: on the backup's own thread
  Secret encryption_key;        // 32 bytes as hex or base64; empty: not encrypted
  std::chrono::milliseconds lock_lease{60'000};
};

// Defaults of every target's backups.
struct BackupConfig {
  std::string fingerprint = "sampled";  // off | sampled | full
  std::string checkpoint = "fast";      // fast | spread (physical backups)
  std::chrono::milliseconds timeout{6 * 3'600'000};
  RetentionPolicy retention{.keep_last = 7};
};

// How restore drills run.
struct DrillConfig {
  std::string run_as;    // user of the throwaway servers; empty: the engine's package user
  std::string base_dir;  // parent of the throwaway instances; empty: $DBOPS_INSTANCE_DIR or /tmp
  std::chrono::milliseconds timeout{3'600'000};
  int jobs = 2;  // parallel restore workers
};

struct StateConfig {
  // A PostgreSQL connection string (shared store) ...
  Secret postgres_dsn;
  // ... or the SQLite file (embedded default), absolute once loaded.
  std::string sqlite_path;
  // A direct connection to the PostgreSQL store (not through PgBouncer) on
  // which agents LISTEN for new jobs; empty: they only poll.
  Secret listen_dsn;
  bool is_postgres() const { return !postgres_dsn.empty(); }
};

struct Config {
  std::filesystem::path file;      // the file it was loaded from
  std::filesystem::path base_dir;  // relative paths are resolved against this
  StateConfig state;
  std::vector<Target> targets;
  std::vector<NotifyChannel> notify;
  std::vector<Schedule> schedules;
  std::vector<Workflow> workflows;
  ProbeConfig probe;
  AgentConfig agent;
  RepositoryConfig repository;
  BackupConfig backup;
  DrillConfig drill;

  const Target* find_target(std::string_view name) const;
  const Workflow* find_workflow(std::string_view name) const;
};

// What the loader needs to know about an engine to validate a target.
// engine/ provides these; config does not know engines by name.
struct EngineShape {
  std::string name;
  std::vector<std::string> aliases;
  bool file_based = false;               // addressed by `path`
  std::vector<std::string> dsn_schemes;  // URI schemes its `dsn` may use
  bool accepts_key_value_dsn = false;    // libpq-style "host=... dbname=..."
};

struct LoadOptions {
  std::vector<EngineShape> engines;
  // Read the .env file beside the config for ${env:} references not set in
  // the process environment.
  bool load_dotenv = true;
};

struct Problem {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key_path;  // e.g. "targets[1].engine"
  std::string message;   // what is wrong and what was expected
  // "file:line:column: key_path: message"
  std::string to_string() const;
};

// Loads and validates a config file. On failure the error's message lists
// every problem, one per line; `problems` (when given) receives them too.
Result<Config> load_config(const std::filesystem::path& path, const LoadOptions& options,
                           std::vector<Problem>* problems = nullptr);

// The same for YAML text already in memory; `file` names it in messages and
// anchors relative paths.
Result<Config> parse_config(std::string_view text, const std::filesystem::path& file,
                            const LoadOptions& options, std::vector<Problem>* problems = nullptr);

// The config file to use: the --config flag, then $DBOPS_CONFIG, then
// ./dbops.yaml.
std::filesystem::path resolve_config_path(std::string_view flag_value);

// The resolved config as YAML / JSON, secrets redacted.
std::string to_yaml(const Config& config);
std::string to_json(const Config& config);

// Parses durations such as "250ms", "30s", "5m", "1h30m", "2d".
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::string format_duration(std::chrono::milliseconds duration);

}  // namespace dbops::config
