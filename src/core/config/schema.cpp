#include "core/config/schema.hpp"

#include <array>

namespace dbops::config {
namespace {

constexpr auto kSchema = std::to_array<KeyDecl>({
    {.path = "state",
     .type = KeyType::kConnection,
     .default_value = "dbops-state.db",
     .description = "Where dbops keeps its state (job runs, events, catalogs): a SQLite file path "
                    "(the embedded default, relative to the config file) or a PostgreSQL "
                    "connection string (postgresql://...) for a store shared by several agents.",
     .example = "state: /var/lib/dbops/state.db"},
    {.path = "state_listen",
     .type = KeyType::kConnection,
     .description =
         "A direct connection to the PostgreSQL state store, on which agents LISTEN so that an "
         "idle agent starts a new job at once instead of at its next poll. Set it when `state` "
         "goes through PgBouncer in transaction pooling mode (which cannot keep a LISTEN), "
         "pointing at the server itself; when `state` is a direct connection, set it to the "
         "same. Unset: agents only poll, every agent.poll_interval.",
     .example = "state_listen: ${env:DBOPS_STATE_DIRECT_DSN}"},

    {.path = "targets",
     .type = KeyType::kObjectList,
     .description = "The databases dbops works on.",
     .example = ""},
    {.path = "targets[].name",
     .type = KeyType::kString,
     .required = true,
     .description = "Unique name of the target: lowercase letters, digits, '.', '_' and '-'; "
                    "used in commands (--target), logs and metrics.",
     .example = "name: pg-main"},
    {.path = "targets[].engine",
     .type = KeyType::kEnum,
     .required = true,
     .choices = "@engines",
     .description = "The database engine; `dbops engines` lists them.",
     .example = "engine: postgres"},
    {.path = "targets[].dsn",
     .type = KeyType::kConnection,
     .description = "Connection string in the engine's native form (postgresql://, mysql://, "
                    "mariadb://, redis://, or libpq key=value). The password inside it is treated "
                    "as a secret. Excludes host/port/user/password/database.",
     .example = "dsn: postgresql://dbops@db1:5432/app?sslmode=verify-full"},
    {.path = "targets[].host",
     .type = KeyType::kString,
     .description = "Host name or address (or a Unix socket directory for PostgreSQL).",
     .example = "host: db1.internal"},
    {.path = "targets[].port",
     .type = KeyType::kInt,
     .description = "TCP port; the engine's default when omitted.",
     .example = "port: 5432"},
    {.path = "targets[].user",
     .type = KeyType::kString,
     .description = "User name to connect as.",
     .example = "user: dbops"},
    {.path = "targets[].password",
     .type = KeyType::kSecret,
     .description = "Password; use a ${env:NAME} or ${file:PATH} reference rather than a literal.",
     .example = "password: ${file:/run/secrets/pg-main}"},
    {.path = "targets[].database",
     .type = KeyType::kString,
     .description = "Database name (PostgreSQL, MariaDB) or number (Redis).",
     .example = "database: app"},
    {.path = "targets[].path",
     .type = KeyType::kPath,
     .description = "Database file of a file-based engine (SQLite), relative to the config file.",
     .example = "path: ./sample.db"},
    {.path = "targets[].description",
     .type = KeyType::kString,
     .description = "Free text shown in listings.",
     .example = "description: orders primary"},
    {.path = "targets[].tags",
     .type = KeyType::kStringMap,
     .description = "Labels for selecting targets (--tag key=value).",
     .example = "tags: {env: prod, team: payments}"},
    {.path = "targets[].tls",
     .type = KeyType::kObject,
     .description = "TLS settings, passed to the engine's client library.",
     .example = ""},
    {.path = "targets[].tls.mode",
     .type = KeyType::kEnum,
     .choices = "disable|allow|prefer|require|verify-ca|verify-full",
     .description = "TLS mode (PostgreSQL sslmode; for MariaDB, require and above turn TLS on "
                    "and verify-* verify the server certificate).",
     .example = "mode: verify-full"},
    {.path = "targets[].tls.ca_file",
     .type = KeyType::kPath,
     .description = "CA certificate file (PostgreSQL sslrootcert, MariaDB ssl-ca).",
     .example = "ca_file: /etc/ssl/certs/db-ca.pem"},
    {.path = "targets[].tls.cert_file",
     .type = KeyType::kPath,
     .description = "Client certificate file (PostgreSQL sslcert, MariaDB ssl-cert).",
     .example = "cert_file: /etc/dbops/client.crt"},
    {.path = "targets[].tls.key_file",
     .type = KeyType::kPath,
     .description = "Client private key file (PostgreSQL sslkey, MariaDB ssl-key).",
     .example = "key_file: /etc/dbops/client.key"},
    {.path = "targets[].tls.verify_server_cert",
     .type = KeyType::kBool,
     .description = "Verify the server's certificate (MariaDB verify-server-cert).",
     .example = "verify_server_cert: true"},

    {.path = "targets[].backup",
     .type = KeyType::kObject,
     .description = "Backup settings of this target; unset keys fall back to `backup:`.",
     .example = ""},
    {.path = "targets[].backup.method",
     .type = KeyType::kString,
     .description = "Backup method: logical or physical for PostgreSQL, file for SQLite; the "
                    "engine's first method when omitted (`dbops engines` lists them).",
     .example = "method: physical"},
    {.path = "targets[].backup.databases",
     .type = KeyType::kStringList,
     .description = "Databases a logical backup dumps; the target's database when omitted; "
                    "[\"*\"] dumps every database plus the globals (roles, tablespaces).",
     .example = "databases: [app, billing]"},
    {.path = "targets[].backup.fingerprint",
     .type = KeyType::kEnum,
     .choices = "off|sampled|full",
     .description = "Content fingerprint of this target's backups (see `backup.fingerprint`).",
     .example = "fingerprint: full"},
    {.path = "targets[].backup.retention",
     .type = KeyType::kObject,
     .description = "Which backups `dbops backup prune` keeps; a backup kept by any rule stays, "
                    "and the newest backup that passed a drill is never deleted.",
     .example = ""},
    {.path = "targets[].backup.retention.keep_last",
     .type = KeyType::kInt,
     .default_value = "",
     .description = "Keep the newest N backups.",
     .example = "keep_last: 7"},
    {.path = "targets[].backup.retention.keep_daily",
     .type = KeyType::kInt,
     .description = "Keep the newest backup of each of the last N days that have one.",
     .example = "keep_daily: 7"},
    {.path = "targets[].backup.retention.keep_weekly",
     .type = KeyType::kInt,
     .description = "Keep the newest backup of each of the last N ISO weeks that have one.",
     .example = "keep_weekly: 4"},
    {.path = "targets[].backup.retention.keep_monthly",
     .type = KeyType::kInt,
     .description = "Keep the newest backup of each of the last N months that have one.",
     .example = "keep_monthly: 6"},
    {.path = "targets[].backup.retention.max_age",
     .type = KeyType::kDuration,
     .description = "Delete backups older than this whatever the keep rules say (the newest "
                    "drilled backup excepted).",
     .example = "max_age: 90d"},
    {.path = "targets[].backup.pgbackrest",
     .type = KeyType::kObject,
     .description = "The pgBackRest stanza that method pgbackrest runs (for sites that already "
                    "run pgBackRest: dbops runs its backup and verify, records the set and drills "
                    "it).",
     .example = ""},
    {.path = "targets[].backup.pgbackrest.stanza",
     .type = KeyType::kString,
     .required = true,
     .description = "The stanza.",
     .example = "stanza: main"},
    {.path = "targets[].backup.pgbackrest.config",
     .type = KeyType::kPath,
     .description = "pgbackrest.conf; pgBackRest's default when omitted.",
     .example = "config: /etc/pgbackrest/pgbackrest.conf"},
    {.path = "targets[].backup.pgbackrest.type",
     .type = KeyType::kEnum,
     .default_value = "full",
     .choices = "full|diff|incr",
     .description = "Backup type.",
     .example = "type: diff"},
    {.path = "targets[].backup.pgbackrest.run_as",
     .type = KeyType::kString,
     .default_value = "postgres",
     .description = "User pgBackRest runs as when dbops runs as root.",
     .example = "run_as: postgres"},
    {.path = "targets[].canaries",
     .type = KeyType::kObjectList,
     .description = "Queries a restore drill runs on the restored data, each with the result it "
                    "must give.",
     .example = ""},
    {.path = "targets[].canaries[].name",
     .type = KeyType::kString,
     .required = true,
     .description = "Name of the canary, shown in drill results.",
     .example = "name: recent-orders"},
    {.path = "targets[].canaries[].database",
     .type = KeyType::kString,
     .description = "Database to run it in; the target's database when omitted.",
     .example = "database: app"},
    {.path = "targets[].canaries[].sql",
     .type = KeyType::kString,
     .required = true,
     .description = "The query (read-only).",
     .example = "sql: SELECT count(*) > 0 FROM orders"},
    {.path = "targets[].canaries[].expect",
     .type = KeyType::kString,
     .required = true,
     .description = "The expected result as text: columns joined by '|', rows by newlines "
                    "(PostgreSQL booleans read t/f).",
     .example = "expect: \"t\""},

    {.path = "repository",
     .type = KeyType::kObject,
     .description = "Where backups are kept (docs/backup.md describes the layout).",
     .example = ""},
    {.path = "repository.path",
     .type = KeyType::kPath,
     .required = true,
     .description = "Directory of the repository (posix driver), relative to the config file.",
     .example = "path: /var/backups/dbops"},
    {.path = "repository.compression",
     .type = KeyType::kObject,
     .description = "zstd compression of stored objects.",
     .example = ""},
    {.path = "repository.compression.level",
     .type = KeyType::kInt,
     .default_value = "3",
     .description = "zstd level, 1 (fast) to 19 (small).",
     .example = "level: 3"},
    {.path = "repository.compression.threads",
     .type = KeyType::kInt,
     .default_value = "2",
     .description = "zstd worker threads; 0 compresses on the backup's own thread.",
     .example = "threads: 4"},
    {.path = "repository.encryption_key",
     .type = KeyType::kSecret,
     .description = "Encrypts stored objects (libsodium secretstream, XChaCha20-Poly1305) with "
                    "this 32-byte key, given as 64 hex digits or base64; use a ${file:} or "
                    "${env:} reference. Manifests record the key's id, never the key. Without the "
                    "key the backups cannot be read: keep a copy away from the repository.",
     .example = "encryption_key: ${file:/etc/dbops/backup.key}"},
    {.path = "repository.lock_lease",
     .type = KeyType::kDuration,
     .default_value = "60s",
     .description = "Lease of the per-target backup lock (renewed while a backup runs); the "
                    "leftovers of a killed backup are removed once it has expired.",
     .example = "lock_lease: 2m"},

    {.path = "backup",
     .type = KeyType::kObject,
     .description = "Defaults of every target's backups.",
     .example = ""},
    {.path = "backup.fingerprint",
     .type = KeyType::kEnum,
     .default_value = "sampled",
     .choices = "off|sampled|full",
     .description = "Content fingerprint taken with logical backups (in the backup's own "
                    "snapshot) and compared by drills: per table the row count and a hash of the "
                    "rows; sampled hashes up to 10000 rows per table chosen by primary key, full "
                    "hashes every row.",
     .example = "fingerprint: full"},
    {.path = "backup.checkpoint",
     .type = KeyType::kEnum,
     .default_value = "fast",
     .choices = "fast|spread",
     .description = "Checkpoint a physical backup starts with: fast (immediate I/O burst) or "
                    "spread (follows checkpoint_completion_target; can take minutes).",
     .example = "checkpoint: spread"},
    {.path = "backup.timeout",
     .type = KeyType::kDuration,
     .default_value = "6h",
     .description = "Deadline of one backup.",
     .example = "timeout: 2h"},
    {.path = "backup.retention",
     .type = KeyType::kObject,
     .description = "Which backups `dbops backup prune` keeps; a backup kept by any rule stays, "
                    "and the newest backup that passed a drill is never deleted.",
     .example = ""},
    {.path = "backup.retention.keep_last",
     .type = KeyType::kInt,
     .default_value = "7",
     .description = "Keep the newest N backups.",
     .example = "keep_last: 7"},
    {.path = "backup.retention.keep_daily",
     .type = KeyType::kInt,
     .description = "Keep the newest backup of each of the last N days that have one.",
     .example = "keep_daily: 7"},
    {.path = "backup.retention.keep_weekly",
     .type = KeyType::kInt,
     .description = "Keep the newest backup of each of the last N ISO weeks that have one.",
     .example = "keep_weekly: 4"},
    {.path = "backup.retention.keep_monthly",
     .type = KeyType::kInt,
     .description = "Keep the newest backup of each of the last N months that have one.",
     .example = "keep_monthly: 6"},
    {.path = "backup.retention.max_age",
     .type = KeyType::kDuration,
     .description = "Delete backups older than this whatever the keep rules say (the newest "
                    "drilled backup excepted).",
     .example = "max_age: 90d"},

    {.path = "drill",
     .type = KeyType::kObject,
     .description = "How restore drills run.",
     .example = ""},
    {.path = "drill.run_as",
     .type = KeyType::kString,
     .description = "User the throwaway servers run as when dbops runs as root; the engine's "
                    "package user (postgres, mysql, redis) when omitted.",
     .example = "run_as: postgres"},
    {.path = "drill.base_dir",
     .type = KeyType::kPath,
     .description = "Directory under which throwaway instances are created; $DBOPS_INSTANCE_DIR "
                    "or /tmp when omitted. It needs room for the largest restored backup.",
     .example = "base_dir: /srv/drills"},
    {.path = "drill.timeout",
     .type = KeyType::kDuration,
     .default_value = "1h",
     .description = "Deadline of each restore step of a drill (pg_restore, psql).",
     .example = "timeout: 3h"},
    {.path = "drill.jobs",
     .type = KeyType::kInt,
     .default_value = "2",
     .description = "Parallel restore workers (pg_restore -j).",
     .example = "jobs: 4"},

    {.path = "probe",
     .type = KeyType::kObject,
     .description = "How targets are probed by `dbops probe` and the agent.",
     .example = ""},
    {.path = "probe.concurrency",
     .type = KeyType::kInt,
     .default_value = "32",
     .description = "Targets probed at the same time.",
     .example = "concurrency: 64"},
    {.path = "probe.connect_timeout",
     .type = KeyType::kDuration,
     .default_value = "5s",
     .description = "Deadline for connecting to a target (dbops's own, not the server's).",
     .example = "connect_timeout: 3s"},
    {.path = "probe.query_timeout",
     .type = KeyType::kDuration,
     .default_value = "5s",
     .description = "Deadline for the probe's queries on one target.",
     .example = "query_timeout: 2s"},
    {.path = "probe.breaker_failures",
     .type = KeyType::kInt,
     .default_value = "3",
     .description = "Consecutive failed probes after which a target is left alone for "
                    "breaker_open and reported as not probed.",
     .example = "breaker_failures: 5"},
    {.path = "probe.breaker_open",
     .type = KeyType::kDuration,
     .default_value = "1m",
     .description = "How long a target whose breaker opened is left alone before a trial probe.",
     .example = "breaker_open: 30s"},
    {.path = "probe.duration_buckets",
     .type = KeyType::kNumberList,
     .default_value = "[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]",
     .description = "Histogram buckets (seconds) of dbops_probe_duration_seconds; include the "
                    "thresholds of your latency SLOs.",
     .example = "duration_buckets: [0.01, 0.05, 0.1, 0.5, 1]"},

    {.path = "agent",
     .type = KeyType::kObject,
     .description = "The agent (`dbops agent`).",
     .example = ""},
    {.path = "agent.listen",
     .type = KeyType::kString,
     .default_value = "127.0.0.1:9646",
     .description = "host:port serving /metrics, /healthz and /readyz; loopback unless you "
                    "choose otherwise.",
     .example = "listen: 0.0.0.0:9646"},
    {.path = "agent.probe_interval",
     .type = KeyType::kDuration,
     .default_value = "15s",
     .description = "Time between probe rounds.",
     .example = "probe_interval: 30s"},
    {.path = "agent.workers",
     .type = KeyType::kInt,
     .default_value = "4",
     .description = "Queued jobs this agent runs at once (1-256). Jobs that change a target "
                    "(backups, drills) still run one at a time per target across all agents.",
     .example = "workers: 8"},
    {.path = "agent.lease",
     .type = KeyType::kDuration,
     .default_value = "30s",
     .description = "Lease of a claimed job, renewed every third of it; when an agent dies, its "
                    "jobs return to the queue once their lease passes (at least 1s).",
     .example = "lease: 1m"},
    {.path = "agent.poll_interval",
     .type = KeyType::kDuration,
     .default_value = "1s",
     .description = "How often an idle agent looks for due jobs. While it listens for new "
                    "jobs (state_listen), at least once a second: notifications bring new jobs "
                    "at once, polling finds those that come due later.",
     .example = "poll_interval: 5s"},
    {.path = "agent.shutdown_grace",
     .type = KeyType::kDuration,
     .default_value = "30s",
     .description = "At SIGTERM, how long running jobs get to finish before they are stopped "
                    "and given back to the queue (their attempt not counted).",
     .example = "shutdown_grace: 2m"},
    {.path = "agent.job_retention",
     .type = KeyType::kDuration,
     .default_value = "7d",
     .description = "Finished queued jobs are deleted after this long, in batches.",
     .example = "job_retention: 30d"},
    {.path = "agent.token",
     .type = KeyType::kSecret,
     .description = "Bearer token the API's changing endpoints (enqueue, cancel) require; "
                    "without it they are refused. At least 16 characters; keep it out of the "
                    "file with ${env:...} or ${file:...}.",
     .example = "token: ${env:DBOPS_AGENT_TOKEN}"},

    {.path = "schedules",
     .type = KeyType::kObjectList,
     .description = "Jobs the agent enqueues on a cron schedule. Each fire time enqueues one job "
                    "with the idempotency key `schedule:<name>:<fire time, UTC, RFC 3339>`, so "
                    "agents sharing a state store enqueue it once between them.",
     .example = ""},
    {.path = "schedules[].name",
     .type = KeyType::kString,
     .required = true,
     .description = "Unique name of the schedule: lowercase letters, digits, '.', '_' and '-'; "
                    "part of its jobs' idempotency keys, so renaming it starts a new history.",
     .example = "name: pg-main-nightly"},
    {.path = "schedules[].cron",
     .type = KeyType::kString,
     .required = true,
     .description =
         "When it fires: minute hour day-of-month month day-of-week (Vixie cron syntax, names "
         "such as mon-fri and jan allowed) or @hourly, @daily, @weekly, @monthly, @yearly, "
         "evaluated in time_zone. Across daylight-saving changes it follows Debian's cron: a "
         "fixed time that a forward change skips fires once at the change, one that a backward "
         "change repeats fires once (the first time); an expression with `*` in the minute or "
         "hour field fires at every real instant that matches, twice in a repeated hour.",
     .example = "cron: 0 3 * * *"},
    {.path = "schedules[].time_zone",
     .type = KeyType::kString,
     .default_value = "UTC",
     .description = "IANA time zone the cron expression is evaluated in.",
     .example = "time_zone: Europe/Paris"},
    {.path = "schedules[].kind",
     .type = KeyType::kString,
     .required = true,
     .description = "The kind of job to enqueue; `dbops jobs kinds` lists them. The agent checks "
                    "kinds, targets and params when it starts.",
     .example = "kind: backup"},
    {.path = "schedules[].target",
     .type = KeyType::kString,
     .description = "The target the job runs on (the name of one of `targets`); required by the "
                    "kinds that work on a target.",
     .example = "target: pg-main"},
    {.path = "schedules[].params",
     .type = KeyType::kStringMap,
     .description = "The job's parameters (`dbops jobs kinds` lists each kind's): strings, or "
                    "lists of strings.",
     .example = "params: {method: pg_dump, databases: [app, billing]}"},
    {.path = "schedules[].catch_up",
     .type = KeyType::kEnum,
     .default_value = "skip",
     .choices = "skip|once",
     .description = "What becomes of fire times missed while no agent ran (or all were "
                    "suspended, or the state store could not be reached); a fire time is missed "
                    "once it is more than a minute late. `skip`: nothing, the schedule goes on "
                    "from its next fire time; `once`: one job, for the most recent missed fire "
                    "time. Missed fire times are those after the schedule's newest job in the "
                    "queue: a schedule that never enqueued a job (or whose jobs were all deleted "
                    "after agent.job_retention) catches up nothing.",
     .example = "catch_up: once"},
    {.path = "schedules[].priority",
     .type = KeyType::kInt,
     .default_value = "0",
     .description = "Priority of its jobs (-1000 to 1000); higher runs first.",
     .example = "priority: 10"},
    {.path = "schedules[].max_attempts",
     .type = KeyType::kInt,
     .default_value = "3",
     .description = "Attempts of each job (1-100) before it is dead; transient failures are "
                    "retried with backoff.",
     .example = "max_attempts: 5"},
    {.path = "schedules[].timeout",
     .type = KeyType::kDuration,
     .description = "How long one attempt may run before it is stopped; no limit when omitted "
                    "(the kind's own limits, such as backup.timeout, still apply).",
     .example = "timeout: 2h"},
    {.path = "schedules[].enabled",
     .type = KeyType::kBool,
     .default_value = "true",
     .description = "false keeps the schedule in the file but enqueues nothing.",
     .example = "enabled: false"},

    {.path = "workflows",
     .type = KeyType::kObjectList,
     .description =
         "Named DAGs of tasks, each task a job of any kind: backup, then verify, then drill, "
         "say. A task starts once every task it depends on has succeeded; one that fails stops "
         "its dependents, which are marked skipped, while independent branches go on. A run is "
         "itself a job (kind `workflow`): `dbops workflow run` runs it in-process, the agent "
         "runs it from the queue and its tasks become queued jobs of their own.",
     .example = ""},
    {.path = "workflows[].name",
     .type = KeyType::kString,
     .required = true,
     .description = "Unique name of the workflow: lowercase letters, digits, '.', '_' and '-'.",
     .example = "name: pg-main-nightly"},
    {.path = "workflows[].trigger",
     .type = KeyType::kString,
     .default_value = "manual",
     .description =
         "`manual` (runs when asked: `dbops workflow run`, `POST /api/v1/workflows/{name}/runs`) "
         "or a cron expression, with the same syntax and daylight-saving rules as "
         "schedules[].cron, on which the agent starts a run. A triggered workflow fires as the "
         "schedule `workflow.<name>` (its runs' idempotency keys start with "
         "`schedule:workflow.<name>:`).",
     .example = "trigger: 0 3 * * *"},
    {.path = "workflows[].time_zone",
     .type = KeyType::kString,
     .default_value = "UTC",
     .description = "IANA time zone the trigger's cron expression is evaluated in.",
     .example = "time_zone: Europe/Paris"},
    {.path = "workflows[].catch_up",
     .type = KeyType::kEnum,
     .default_value = "skip",
     .choices = "skip|once",
     .description = "What becomes of trigger times missed while no agent ran; as "
                    "schedules[].catch_up.",
     .example = "catch_up: once"},
    {.path = "workflows[].timeout",
     .type = KeyType::kDuration,
     .description = "How long a whole run may take; when it passes, the running tasks are "
                    "cancelled and the rest skipped. No limit when omitted.",
     .example = "timeout: 8h"},
    {.path = "workflows[].max_attempts",
     .type = KeyType::kInt,
     .default_value = "3",
     .description =
         "Attempts of a queued run (1-100). A run whose agent dies is picked up by another "
         "agent as its next attempt, which goes on from where the run was: tasks that "
         "succeeded are not run again, running ones are waited for.",
     .example = "max_attempts: 5"},
    {.path = "workflows[].enabled",
     .type = KeyType::kBool,
     .default_value = "true",
     .description = "false: the trigger does not fire (a manual run still works).",
     .example = "enabled: false"},
    {.path = "workflows[].tasks",
     .type = KeyType::kObjectList,
     .required = true,
     .description = "The tasks, at least one. Their depends_on must name tasks of the same "
                    "workflow and form no cycle; the config check reports the line of each "
                    "problem.",
     .example = ""},
    {.path = "workflows[].tasks[].name",
     .type = KeyType::kString,
     .required = true,
     .description = "Name of the task, unique in its workflow; part of its job's idempotency "
                    "key (`task:<run key>/<task>`).",
     .example = "name: verify"},
    {.path = "workflows[].tasks[].kind",
     .type = KeyType::kString,
     .required = true,
     .description = "The job kind the task runs (`dbops jobs kinds`); any kind but `workflow`.",
     .example = "kind: drill"},
    {.path = "workflows[].tasks[].target",
     .type = KeyType::kString,
     .description = "The target the task runs on; required by the kinds that work on a target.",
     .example = "target: pg-main"},
    {.path = "workflows[].tasks[].params",
     .type = KeyType::kStringMap,
     .description = "The task's job parameters, as schedules[].params.",
     .example = "params: {method: physical}"},
    {.path = "workflows[].tasks[].depends_on",
     .type = KeyType::kStringList,
     .description = "Tasks that must succeed before this one starts.",
     .example = "depends_on: [backup]"},
    {.path = "workflows[].tasks[].retries",
     .type = KeyType::kInt,
     .default_value = "0",
     .description = "Further attempts (0-100) after a failed one, with backoff, when the "
                    "failure is transient (unreachable, timed out, I/O); a failed check is not "
                    "retried.",
     .example = "retries: 2"},
    {.path = "workflows[].tasks[].timeout",
     .type = KeyType::kDuration,
     .description = "How long one attempt of the task may run; no limit when omitted.",
     .example = "timeout: 1h"},

    {.path = "notify",
     .type = KeyType::kObjectList,
     .description = "Where failure events are delivered.",
     .example = ""},
    {.path = "notify[].name",
     .type = KeyType::kString,
     .required = true,
     .description = "Unique name of the channel.",
     .example = "name: oncall"},
    {.path = "notify[].type",
     .type = KeyType::kEnum,
     .required = true,
     .choices = "webhook|slack",
     .description = "webhook posts the event as JSON; slack posts an incoming-webhook message.",
     .example = "type: slack"},
    {.path = "notify[].url",
     .type = KeyType::kSecret,
     .required = true,
     .description = "The webhook URL (a secret: it usually embeds a token).",
     .example = "url: ${env:SLACK_WEBHOOK_URL}"},
    {.path = "notify[].min_severity",
     .type = KeyType::kEnum,
     .default_value = "error",
     .choices = "info|warn|error",
     .description = "Least severe event delivered.",
     .example = "min_severity: warn"},
    {.path = "notify[].timeout",
     .type = KeyType::kDuration,
     .default_value = "10s",
     .description = "Deadline for one delivery attempt.",
     .example = "timeout: 5s"},
});

}  // namespace

std::string_view key_type_name(KeyType type) {
  switch (type) {
    case KeyType::kObject:
      return "mapping";
    case KeyType::kObjectList:
      return "list of mappings";
    case KeyType::kString:
      return "string";
    case KeyType::kInt:
      return "integer";
    case KeyType::kBool:
      return "boolean";
    case KeyType::kDuration:
      return "duration";
    case KeyType::kSecret:
      return "secret string";
    case KeyType::kConnection:
      return "connection string";
    case KeyType::kPath:
      return "path";
    case KeyType::kEnum:
      return "one of";
    case KeyType::kStringMap:
      return "mapping of strings";
    case KeyType::kStringList:
      return "list of strings";
    case KeyType::kNumberList:
      return "list of numbers";
  }
  return "value";
}

std::span<const KeyDecl> schema() {
  return kSchema;
}

const KeyDecl* find_key(std::string_view path) {
  for (const auto& decl : kSchema) {
    if (decl.path == path) return &decl;
  }
  return nullptr;
}

std::string schema_markdown() {
  std::string out;
  out += "| key | type | required | default | description |\n";
  out += "|---|---|---|---|---|\n";
  for (const auto& decl : kSchema) {
    std::string type(key_type_name(decl.type));
    if (decl.type == KeyType::kEnum) {
      if (decl.choices == "@engines") {
        type = "engine name";
      } else {
        type = "one of `";
        for (const char c : decl.choices) {
          if (c == '|') {
            type += "`, `";
          } else {
            type += c;
          }
        }
        type += '`';
      }
    }
    out += "| `";
    out += decl.path;
    out += "` | ";
    out += type;
    out += " | ";
    out += decl.required ? "yes" : "no";
    out += " | ";
    if (!decl.default_value.empty()) {
      out += '`';
      out += decl.default_value;
      out += '`';
    }
    out += " | ";
    out += decl.description;
    if (!decl.example.empty()) {
      out += " Example: `";
      out += decl.example;
      out += '`';
    }
    out += " |\n";
  }
  return out;
}

}  // namespace dbops::config
