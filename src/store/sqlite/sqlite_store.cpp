#include "store/sqlite/sqlite_store.hpp"

#include <filesystem>
#include <functional>
#include <mutex>
#include <span>

#include "engine/sqlite/sqlite_session.hpp"
#include "store/store_rows.hpp"

namespace dbops::store::sqlite {
namespace {

using engine::Param;
using engine::QueryResult;

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

}  // namespace

// Migrations only ever add (tables, columns, indexes), so that the previous
// release keeps working on a migrated store.
constexpr Migration kMigrations[] = {
    {1, "job runs and events", R"sql(
CREATE TABLE job_runs (
  run_id          TEXT PRIMARY KEY,
  kind            TEXT NOT NULL,
  target          TEXT NOT NULL DEFAULT '',
  idempotency_key TEXT NOT NULL DEFAULT '',
  params_json     TEXT NOT NULL DEFAULT '{}',
  state           TEXT NOT NULL,
  started_at_ms   INTEGER NOT NULL,
  finished_at_ms  INTEGER,
  summary         TEXT NOT NULL DEFAULT '',
  result_json     TEXT NOT NULL DEFAULT '{}',
  error           TEXT NOT NULL DEFAULT '',
  host            TEXT NOT NULL DEFAULT '',
  pid             INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX job_runs_started ON job_runs (started_at_ms);
CREATE INDEX job_runs_target ON job_runs (target, started_at_ms);
CREATE INDEX job_runs_key ON job_runs (idempotency_key) WHERE idempotency_key <> '';
CREATE TABLE events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  at_ms      INTEGER NOT NULL,
  run_id     TEXT NOT NULL DEFAULT '',
  target     TEXT NOT NULL DEFAULT '',
  type       TEXT NOT NULL,
  severity   TEXT NOT NULL,
  message    TEXT NOT NULL,
  data_json  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_run ON events (run_id);
CREATE INDEX events_at ON events (at_ms);
)sql"},
    {2, "backup catalog and drill results", R"sql(
CREATE TABLE backups (
  repository      TEXT NOT NULL,
  target          TEXT NOT NULL,
  id              TEXT NOT NULL,
  engine          TEXT NOT NULL DEFAULT '',
  method          TEXT NOT NULL DEFAULT '',
  started_at_ms   INTEGER NOT NULL,
  finished_at_ms  INTEGER NOT NULL,
  plain_size      INTEGER NOT NULL DEFAULT 0,
  stored_size     INTEGER NOT NULL DEFAULT 0,
  run_id          TEXT NOT NULL DEFAULT '',
  manifest_json   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (repository, target, id)
);
CREATE INDEX backups_finished ON backups (finished_at_ms);
CREATE INDEX backups_target ON backups (target, finished_at_ms);
CREATE TABLE drills (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id          TEXT NOT NULL,
  target          TEXT NOT NULL DEFAULT '',
  backup_id       TEXT NOT NULL DEFAULT '',
  started_at_ms   INTEGER NOT NULL,
  finished_at_ms  INTEGER NOT NULL,
  passed          INTEGER NOT NULL,
  rto_seconds     REAL NOT NULL DEFAULT 0,
  rpo_seconds     REAL NOT NULL DEFAULT 0,
  failed_check    TEXT NOT NULL DEFAULT '',
  evidence_json   TEXT NOT NULL DEFAULT '{}',
  UNIQUE (run_id, target, backup_id)
);
CREATE INDEX drills_finished ON drills (finished_at_ms);
CREATE INDEX drills_target ON drills (target, finished_at_ms);
CREATE INDEX drills_backup ON drills (backup_id);
)sql"},
    {3, "job queue", R"sql(
CREATE TABLE jobs (
  id                  INTEGER PRIMARY KEY AUTOINCREMENT,
  kind                TEXT NOT NULL,
  target              TEXT NOT NULL DEFAULT '',
  params_json         TEXT NOT NULL DEFAULT '{}',
  idempotency_key     TEXT,
  priority            INTEGER NOT NULL DEFAULT 0,
  run_at_ms           INTEGER NOT NULL,
  max_attempts        INTEGER NOT NULL,
  timeout_ms          INTEGER NOT NULL DEFAULT 0,
  exclusive           INTEGER NOT NULL DEFAULT 0,
  state               TEXT NOT NULL,
  attempt             INTEGER NOT NULL DEFAULT 0,
  lease_owner         TEXT NOT NULL DEFAULT '',
  lease_expires_at_ms INTEGER,
  lease_token         INTEGER NOT NULL DEFAULT 0,
  last_error          TEXT NOT NULL DEFAULT '',
  result_json         TEXT NOT NULL DEFAULT '',
  created_at_ms       INTEGER NOT NULL,
  updated_at_ms       INTEGER NOT NULL,
  finished_at_ms      INTEGER
);
CREATE UNIQUE INDEX jobs_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs (priority DESC, run_at_ms, id)
  WHERE state IN ('scheduled', 'available', 'retrying', 'running');
CREATE INDEX jobs_running ON jobs (target) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
CREATE INDEX jobs_created ON jobs (created_at_ms);
CREATE TABLE job_tokens (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
);
INSERT INTO job_tokens VALUES (1, 0);
)sql"},
    {4, "agent members and the leader lease", R"sql(
CREATE TABLE members (
  id                TEXT PRIMARY KEY,
  info_json         TEXT NOT NULL DEFAULT '{}',
  started_at_ms     INTEGER NOT NULL,
  last_heartbeat_ms INTEGER NOT NULL,
  expires_at_ms     INTEGER NOT NULL
);
CREATE TABLE leader (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  holder        TEXT NOT NULL,
  term          INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
INSERT INTO leader VALUES (1, '', 0, 0);
CREATE TABLE leader_terms (
  term          INTEGER PRIMARY KEY,
  holder        TEXT NOT NULL,
  started_at_ms INTEGER NOT NULL,
  held_until_ms INTEGER NOT NULL
);
)sql"},
};

namespace {

std::int64_t to_ms(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint from_ms(std::int64_t ms) {
  return TimePoint{std::chrono::milliseconds{ms}};
}

constexpr const char* kRunColumns =
    "run_id, kind, target, idempotency_key, params_json, state, started_at_ms, finished_at_ms, "
    "summary, result_json, error, host, pid";

constexpr const char* kBackupColumns =
    "repository, target, id, engine, method, started_at_ms, finished_at_ms, plain_size, "
    "stored_size, run_id, manifest_json";

// Sizes are stored as SQLite's signed 64-bit integers; the cast round-trips.
std::int64_t to_db_size(std::uint64_t size) {
  return static_cast<std::int64_t>(size);
}

constexpr const char* kDrillColumns =
    "run_id, target, backup_id, started_at_ms, finished_at_ms, passed, rto_seconds, "
    "rpo_seconds, failed_check, evidence_json";

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<engine::SqlSession> session, std::string path, int version)
      : session_(std::move(session)), path_(std::move(path)), version_(version) {}

  std::string describe() const override { return "sqlite " + path_; }
  int schema_version() const override { return version_; }

  Status insert_run(const RunRecord& run) override {
    std::lock_guard lock(mu_);
    const Param params[] = {run.run_id,
                            run.kind,
                            run.target,
                            run.idempotency_key,
                            run.params_json,
                            std::string(run_state_name(run.state)),
                            to_ms(run.started_at),
                            run.finished_at ? Param{to_ms(*run.finished_at)} : Param{nullptr},
                            run.summary,
                            run.result_json,
                            run.error,
                            run.host,
                            static_cast<std::int64_t>(run.pid)};
    auto r = session_->query(std::string("INSERT INTO job_runs (") + kRunColumns +
                                 ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                             params);
    if (!r) {
      if (r.error().message.find("UNIQUE") != std::string::npos) {
        return fail(ErrorCode::kConflict, "run " + run.run_id + " is already recorded");
      }
      return std::unexpected(std::move(r).error().with_context("state store"));
    }
    return ok();
  }

  Status finish_run(const RunRecord& run) override {
    std::lock_guard lock(mu_);
    const Param params[] = {std::string(run_state_name(run.state)),
                            run.finished_at ? Param{to_ms(*run.finished_at)} : Param{nullptr},
                            run.summary,
                            run.result_json,
                            run.error,
                            run.run_id};
    DBOPS_ASSIGN(auto r, session_->query("UPDATE job_runs SET state = ?, finished_at_ms = ?, "
                                         "summary = ?, result_json = ?, error = ? "
                                         "WHERE run_id = ?",
                                         params));
    if (r.affected_rows != 1) {
      return fail(ErrorCode::kNotFound, "state store: run " + run.run_id + " is not recorded");
    }
    return ok();
  }

  Result<std::optional<RunRecord>> get_run(std::string_view run_id) override {
    std::lock_guard lock(mu_);
    const Param exact[] = {std::string(run_id)};
    DBOPS_ASSIGN(auto r, session_->query(std::string("SELECT ") + kRunColumns +
                                             " FROM job_runs WHERE run_id = ?",
                                         exact));
    if (!r.empty()) return run_from_row(r, 0, from_ms);
    if (run_id.size() < 6) return std::optional<RunRecord>{};
    // A unique prefix; LIKE wildcards in the input are escaped.
    std::string pattern;
    for (const char c : run_id) {
      if (c == '%' || c == '_' || c == '\\') pattern += '\\';
      pattern += c;
    }
    pattern += '%';
    const Param prefix[] = {pattern};
    DBOPS_ASSIGN(auto p, session_->query(std::string("SELECT ") + kRunColumns +
                                             " FROM job_runs WHERE run_id LIKE ? ESCAPE '\\' "
                                             "LIMIT 2",
                                         prefix));
    if (p.rows.size() == 1) return run_from_row(p, 0, from_ms);
    if (p.rows.size() > 1) {
      return fail(ErrorCode::kInvalidArgument,
                  "run id prefix " + std::string(run_id) + " is ambiguous",
                  "give more characters of the run id");
    }
    return std::optional<RunRecord>{};
  }

  Result<std::optional<RunRecord>> find_run_by_key(std::string_view key) override {
    std::lock_guard lock(mu_);
    const Param params[] = {std::string(key)};
    DBOPS_ASSIGN(auto r, session_->query(std::string("SELECT ") + kRunColumns +
                                             " FROM job_runs WHERE idempotency_key = ? "
                                             "ORDER BY started_at_ms DESC, rowid DESC LIMIT 1",
                                         params));
    if (r.empty()) return std::optional<RunRecord>{};
    return run_from_row(r, 0, from_ms);
  }

  // " WHERE ..." for a run query's target, kind and state (state set means
  // exactly that state).
  static std::string run_filter(const RunQuery& q, std::vector<Param>& params) {
    std::string where = " WHERE 1=1";
    if (!q.target.empty()) {
      where += " AND target = ?";
      params.emplace_back(q.target);
    }
    if (!q.kind.empty()) {
      where += " AND kind = ?";
      params.emplace_back(q.kind);
    }
    if (q.state) {
      where += " AND state = ?";
      params.emplace_back(std::string(run_state_name(*q.state)));
    }
    return where;
  }

  Result<std::vector<RunRecord>> list_runs(const RunQuery& q) override {
    std::lock_guard lock(mu_);
    std::vector<Param> params;
    std::string sql = std::string("SELECT ") + kRunColumns + " FROM job_runs" +
                      run_filter(q, params) + " ORDER BY started_at_ms DESC, rowid DESC LIMIT ?";
    params.emplace_back(static_cast<std::int64_t>(q.limit));
    DBOPS_ASSIGN(auto r, session_->query(sql, params));
    std::vector<RunRecord> out;
    for (std::size_t i = 0; i < r.rows.size(); ++i) out.push_back(run_from_row(r, i, from_ms));
    return out;
  }

  Result<std::int64_t> count_runs(const RunQuery& q) override {
    std::lock_guard lock(mu_);
    std::vector<Param> params;
    const std::string sql = "SELECT count(*) FROM job_runs" + run_filter(q, params);
    DBOPS_ASSIGN(auto r, session_->query(sql, params));
    return r.integer(0, 0);
  }

  Result<std::int64_t> append_event(const EventRecord& e) override {
    std::lock_guard lock(mu_);
    const Param params[] = {
        to_ms(e.at), e.run_id,   e.target, e.type, std::string(severity_name(e.severity)),
        e.message,   e.data_json};
    DBOPS_ASSIGN(auto r, session_->query("INSERT INTO events (at_ms, run_id, target, type, "
                                         "severity, message, data_json) VALUES (?,?,?,?,?,?,?) "
                                         "RETURNING id",
                                         params));
    return r.integer(0, 0);
  }

  Result<std::vector<EventRecord>> list_events(const EventQuery& q) override {
    std::lock_guard lock(mu_);
    std::string sql =
        "SELECT id, at_ms, run_id, target, type, severity, message, data_json FROM events "
        "WHERE 1=1";
    std::vector<Param> params;
    if (!q.run_id.empty()) {
      sql += " AND run_id = ?";
      params.emplace_back(q.run_id);
    }
    if (!q.target.empty()) {
      sql += " AND target = ?";
      params.emplace_back(q.target);
    }
    if (q.min_severity) {
      std::string in = "'error'";
      if (*q.min_severity <= Severity::kWarn) in += ",'warn'";
      if (*q.min_severity <= Severity::kInfo) in += ",'info'";
      sql += " AND severity IN (" + in + ")";
    }
    sql += " ORDER BY id DESC LIMIT ?";
    params.emplace_back(static_cast<std::int64_t>(q.limit));
    DBOPS_ASSIGN(auto r, session_->query("SELECT * FROM (" + sql + ") ORDER BY id", params));
    std::vector<EventRecord> out;
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
      EventRecord e;
      e.id = r.integer(i, 0);
      e.at = from_ms(r.integer(i, 1));
      e.run_id = r.text(i, 2);
      e.target = r.text(i, 3);
      e.type = r.text(i, 4);
      e.severity = parse_severity(r.text(i, 5)).value_or(Severity::kInfo);
      e.message = r.text(i, 6);
      e.data_json = r.text(i, 7);
      out.push_back(std::move(e));
    }
    return out;
  }

  Status upsert_backup(const BackupRecord& backup) override {
    std::lock_guard lock(mu_);
    DBOPS_TRY(check_backup_key(backup));
    auto r = write_backup(backup);
    if (!r) return std::unexpected(std::move(r).error().with_context("state store"));
    return ok();
  }

  Status remove_backup(std::string_view repository, std::string_view target,
                       std::string_view id) override {
    std::lock_guard lock(mu_);
    const Param params[] = {std::string(repository), std::string(target), std::string(id)};
    auto r = session_->query("DELETE FROM backups WHERE repository = ? AND target = ? AND id = ?",
                             params);
    if (!r) return std::unexpected(std::move(r).error().with_context("state store"));
    return ok();
  }

  Result<std::vector<BackupRecord>> list_backups(const BackupQuery& q) override {
    std::lock_guard lock(mu_);
    std::string sql = std::string("SELECT ") + kBackupColumns + " FROM backups WHERE 1=1";
    std::vector<Param> params;
    if (!q.repository.empty()) {
      sql += " AND repository = ?";
      params.emplace_back(q.repository);
    }
    if (!q.target.empty()) {
      sql += " AND target = ?";
      params.emplace_back(q.target);
    }
    sql += " ORDER BY finished_at_ms DESC, started_at_ms DESC, id DESC LIMIT ?";
    params.emplace_back(static_cast<std::int64_t>(q.limit));
    auto r = session_->query(sql, params);
    if (!r) return std::unexpected(std::move(r).error().with_context("state store"));
    std::vector<BackupRecord> out;
    out.reserve(r->rows.size());
    for (std::size_t i = 0; i < r->rows.size(); ++i) out.push_back(backup_from_row(*r, i, from_ms));
    return out;
  }

  Status replace_backups(std::string_view repository,
                         const std::vector<BackupRecord>& backups) override {
    std::lock_guard lock(mu_);
    if (repository.empty()) {
      return fail(ErrorCode::kInvalidArgument, "state store: replace_backups: empty repository");
    }
    // Validate everything before touching the catalog.
    for (const auto& b : backups) {
      if (!b.repository.empty() && b.repository != repository) {
        return fail(ErrorCode::kInvalidArgument,
                    "state store: backup " + b.id + " of repository " + b.repository +
                        " given to replace the catalog of " + std::string(repository));
      }
      BackupRecord keyed = b;
      keyed.repository = std::string(repository);
      DBOPS_TRY(check_backup_key(keyed));
    }
    auto r = write_transaction(*session_, [&]() -> Status {
      const Param params[] = {std::string(repository)};
      DBOPS_TRY(session_->query("DELETE FROM backups WHERE repository = ?", params));
      for (const auto& b : backups) {
        if (b.repository.empty()) {
          BackupRecord keyed = b;
          keyed.repository = std::string(repository);
          DBOPS_TRY(write_backup(keyed));
        } else {
          DBOPS_TRY(write_backup(b));
        }
      }
      return ok();
    });
    if (!r) return std::unexpected(std::move(r).error().with_context("state store"));
    return ok();
  }

  Status insert_drill(const DrillRecord& d) override {
    std::lock_guard lock(mu_);
    if (d.run_id.empty()) {
      return fail(ErrorCode::kInvalidArgument, "state store: a drill result needs a run id");
    }
    const Param params[] = {d.run_id,
                            d.target,
                            d.backup_id,
                            to_ms(d.started_at),
                            to_ms(d.finished_at),
                            static_cast<std::int64_t>(d.passed ? 1 : 0),
                            d.rto_seconds,
                            d.rpo_seconds,
                            d.failed_check,
                            d.evidence_json};
    auto r = session_->query(
        std::string("INSERT INTO drills (") + kDrillColumns + ") VALUES (?,?,?,?,?,?,?,?,?,?)",
        params);
    if (!r) {
      if (r.error().message.find("UNIQUE") != std::string::npos) {
        return fail(ErrorCode::kConflict, "state store: the drill of run " + d.run_id +
                                              " on backup " + d.backup_id + " is already recorded");
      }
      return std::unexpected(std::move(r).error().with_context("state store"));
    }
    return ok();
  }

  Result<std::vector<DrillRecord>> list_drills(const DrillQuery& q) override {
    std::lock_guard lock(mu_);
    std::string sql = std::string("SELECT ") + kDrillColumns + " FROM drills WHERE 1=1";
    std::vector<Param> params;
    if (!q.target.empty()) {
      sql += " AND target = ?";
      params.emplace_back(q.target);
    }
    if (!q.backup_id.empty()) {
      sql += " AND backup_id = ?";
      params.emplace_back(q.backup_id);
    }
    if (q.passed) {
      sql += " AND passed = ?";
      params.emplace_back(static_cast<std::int64_t>(*q.passed ? 1 : 0));
    }
    sql += " ORDER BY finished_at_ms DESC, id DESC LIMIT ?";
    params.emplace_back(static_cast<std::int64_t>(q.limit));
    auto r = session_->query(sql, params);
    if (!r) return std::unexpected(std::move(r).error().with_context("state store"));
    std::vector<DrillRecord> out;
    out.reserve(r->rows.size());
    for (std::size_t i = 0; i < r->rows.size(); ++i) out.push_back(drill_from_row(*r, i, from_ms));
    return out;
  }

 private:
  static Status check_backup_key(const BackupRecord& b) {
    if (b.repository.empty() || b.target.empty() || b.id.empty()) {
      return fail(ErrorCode::kInvalidArgument,
                  "state store: a catalog entry needs a repository, a target and an id (got "
                  "repository \"" +
                      b.repository + "\", target \"" + b.target + "\", id \"" + b.id + "\")");
    }
    return ok();
  }

  // Inserts or replaces one catalog row, keyed by (repository, target, id).
  Status write_backup(const BackupRecord& b) {
    const Param params[] = {b.repository,
                            b.target,
                            b.id,
                            b.engine,
                            b.method,
                            to_ms(b.started_at),
                            to_ms(b.finished_at),
                            to_db_size(b.plain_size),
                            to_db_size(b.stored_size),
                            b.run_id,
                            b.manifest_json};
    DBOPS_TRY(session_->query(
        std::string("INSERT INTO backups (") + kBackupColumns +
            ") VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (repository, target, id) DO UPDATE SET "
            "engine = excluded.engine, method = excluded.method, "
            "started_at_ms = excluded.started_at_ms, finished_at_ms = excluded.finished_at_ms, "
            "plain_size = excluded.plain_size, stored_size = excluded.stored_size, "
            "run_id = excluded.run_id, manifest_json = excluded.manifest_json",
        params));
    return ok();
  }

  // One connection; the agent's job threads share the store.
  std::mutex mu_;
  std::unique_ptr<engine::SqlSession> session_;
  std::string path_;
  int version_;
};

// Brings the schema up to date inside one write transaction, so that two
// processes opening a new store at once cannot both migrate it.
Result<int> migrate(engine::SqlSession& s, const std::string& path) {
  DBOPS_TRY(s.exec("BEGIN IMMEDIATE"));
  auto body = [&]() -> Result<int> {
    DBOPS_TRY(
        s.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
               "description TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)"));
    DBOPS_ASSIGN(auto r, s.query("SELECT coalesce(max(version), 0) FROM schema_migrations"));
    int version = static_cast<int>(r.integer(0, 0));
    if (version > current_schema_version()) {
      return fail(ErrorCode::kUnsupported,
                  "state store " + path + " has schema version " + std::to_string(version) +
                      ", newer than this dbops knows (" + std::to_string(current_schema_version()) +
                      ")",
                  "upgrade dbops to the release that wrote this store, or point `state` at "
                  "another file");
    }
    for (const auto& m : kMigrations) {
      if (m.version <= version) continue;
      DBOPS_TRY(s.exec(m.sql));
      const Param params[] = {static_cast<std::int64_t>(m.version), std::string(m.description),
                              to_ms(std::chrono::system_clock::now())};
      DBOPS_TRY(s.query("INSERT INTO schema_migrations VALUES (?, ?, ?)", params));
      version = m.version;
    }
    return version;
  };
  auto result = body();
  if (!result) {
    (void)s.exec("ROLLBACK");
    return result;
  }
  DBOPS_TRY(s.exec("COMMIT"));
  return result;
}

}  // namespace

Status write_transaction(engine::SqlSession& session, const std::function<Status()>& body) {
  DBOPS_TRY(session.exec("BEGIN IMMEDIATE"));
  Status status = body();
  if (!status) {
    (void)session.exec("ROLLBACK");
    return status;
  }
  if (auto commit = session.exec("COMMIT"); !commit) {
    (void)session.exec("ROLLBACK");
    return commit;
  }
  return ok();
}

Result<OpenedState> open_state_file(const std::string& path) {
  std::error_code ec;
  const auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
  if (ec) {
    return fail(ErrorCode::kIo,
                "state store: cannot create directory " + dir.string() + ": " + ec.message());
  }
  auto session = engine::sqlite::open(path, {.create = true, .wal = true});
  if (!session) return std::unexpected(std::move(session).error().with_context("state store"));
  auto version = migrate(**session, path);
  if (!version) return std::unexpected(std::move(version).error());
  return OpenedState{std::move(*session), *version};
}

Result<SchemaPart> schema_status(const std::string& path) {
  SchemaPart part{.name = "state store",
                  .table = "schema_migrations",
                  .known = std::span(kMigrations).back().version};
  if (std::filesystem::exists(path)) {
    auto session = engine::sqlite::open(path, {.read_only = true});
    if (!session) return std::unexpected(std::move(session).error().with_context("state store"));
    DBOPS_ASSIGN(auto table, (*session)->query("SELECT count(*) FROM sqlite_master WHERE type = "
                                               "'table' AND name = 'schema_migrations'"));
    if (table.integer(0, 0) > 0) {
      DBOPS_ASSIGN(auto r,
                   (*session)->query("SELECT coalesce(max(version), 0) FROM schema_migrations"));
      part.version = static_cast<int>(r.integer(0, 0));
    }
  }
  for (const auto& m : kMigrations) {
    if (m.version > part.version) part.pending.push_back({m.version, m.description});
  }
  return part;
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  DBOPS_ASSIGN(auto opened, open_state_file(path));
  return std::unique_ptr<Store>(
      std::make_unique<SqliteStore>(std::move(opened.session), path, opened.version));
}

}  // namespace dbops::store::sqlite

namespace dbops::store {
int current_schema_version() {
  return std::span(sqlite::kMigrations).back().version;
}
}  // namespace dbops::store
