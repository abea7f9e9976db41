#include "engine/postgres/postgres_backup.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <regex>
#include <thread>

#include "core/atomic_file.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "engine/engine.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/postgres/pgbackrest.hpp"
#include "engine/postgres/postgres_session.hpp"

namespace dbops::engine::postgres {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::int64_t kSampleRows = 10'000;
constexpr std::size_t kCopyBuffer = std::size_t{1} << 20;

const Engine& engine() {
  return *Registry::global().find("postgres");
}

Result<std::string> tool(std::string_view name) {
  DBOPS_ASSIGN(auto path, launcher::tool_path("postgres", name));
  return path.string();
}

// The environment of a PostgreSQL tool reaching `target`, optionally in
// another database.
Result<Environment> tool_env(const config::Target& target, std::string_view database = {}) {
  DBOPS_ASSIGN(auto env, engine().client_environment(target));
  if (!database.empty()) {
    std::erase_if(env, [](const auto& kv) { return kv.first == "PGDATABASE"; });
    env.emplace_back("PGDATABASE", std::string(database));
  }
  // Tools must not read a user's service or password files by accident.
  env.emplace_back("PGSERVICEFILE", "/dev/null");
  return env;
}

Result<std::string> tool_version(const std::string& program) {
  DBOPS_ASSIGN(auto r, run_process({.argv = {program, "--version"},
                                    .timeout = std::chrono::seconds(10),
                                    .stdout_sink = OutputSink::capture(4096)}));
  DBOPS_TRY(r.check(program));
  return std::string(trim(r.stdout_text));
}

Result<std::unique_ptr<PostgresSession>> open_session(const config::Target& target,
                                                      std::string_view database = {}) {
  ConnectOptions options;
  options.application_name = "dbops backup";
  options.database = std::string(database);
  options.statement_timeout = std::chrono::hours(24);
  return connect(target, options);
}

// Setting that make rows render the same text on every server.
constexpr std::string_view kPinnedSettings =
    "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; "
    "SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 1; "
    "SET LOCAL bytea_output = 'hex'; SET LOCAL search_path = pg_catalog";

// The fingerprint of the current database, in the session's transaction
// (which the caller has opened, e.g. in an exported snapshot).
Result<DatabaseFingerprint> fingerprint_in_transaction(PostgresSession& session,
                                                       std::string_view database,
                                                       FingerprintMode mode) {
  DatabaseFingerprint fp;
  fp.database = std::string(database);
  fp.mode = mode;
  DBOPS_TRY(session.exec(kPinnedSettings));
  // Ordinary tables outside the system schemas, with their primary key
  // columns (for the sample).
  DBOPS_ASSIGN(
      auto tables,
      session.query("SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
                    "(SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord) "
                    "   FROM pg_index i, unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord), "
                    "        pg_attribute a "
                    "  WHERE i.indrelid = c.oid AND i.indisprimary AND a.attrelid = c.oid "
                    "    AND a.attnum = k.attnum) "
                    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r' AND c.relpersistence <> 't' "
                    "  AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
                    "ORDER BY 1"));
  for (std::size_t i = 0; i < tables.rows.size(); ++i) {
    TableFingerprint t;
    t.table = tables.text(i, 0);
    const std::string pk = tables.text(i, 1);
    // Each row's text form hashed to 64 bits (offset to be non-negative),
    // summed modulo 2^64: independent of the rows' physical order.
    const std::string row_hash =
        "(('x' || left(md5(dbops_fp_row::text), 16))::bit(64)::bigint::numeric "
        "+ 9223372036854775808)";
    const std::string sum = "coalesce(sum(" + row_hash + ") % 18446744073709551616, 0)::text";
    std::string sql;
    if (mode == FingerprintMode::kSampled && !pk.empty()) {
      sql = "SELECT (SELECT count(*) FROM " + t.table + "), " + sum + ", (SELECT count(*) FROM " +
            t.table + ") > " + std::to_string(kSampleRows) + " FROM (SELECT * FROM " + t.table +
            " ORDER BY " + pk + " LIMIT " + std::to_string(kSampleRows) + ") dbops_fp_row";
    } else {
      sql = "SELECT count(*), " + sum + ", false FROM " + t.table + " dbops_fp_row";
    }
    DBOPS_ASSIGN(auto r, session.query(sql));
    t.rows = r.integer(0, 0);
    const std::string hash = r.text(0, 1);
    std::from_chars(hash.data(), hash.data() + hash.size(), t.hash);
    t.sampled = r.text(0, 2) == "t";
    fp.tables.push_back(std::move(t));
  }
  return fp;
}

// Writes an object of the backup to a spool file (pg_restore -j needs a file
// it can seek in).
Result<fs::path> spool_object(BackupInput& input, std::string_view name) {
  const fs::path path = input.spool_dir() / std::string(name);
  DBOPS_TRY(write_object_file(input, name, path, /*durable=*/false));
  return path;
}

// ---------------------------------------------------------------- backup --

class PostgresBackupDriver final : public BackupDriver {
 public:
  std::vector<std::string> methods() const override {
    return {"logical", "physical", "pgbackrest"};
  }

  Result<BackupResult> backup(const config::Target& target, const BackupRequest& request,
                              BackupOutput& output) const override {
    const std::string method = request.method.empty() ? "logical" : request.method;
    if (method == "logical") return logical(target, request, output);
    if (method == "physical") return physical(target, request, output);
    if (method == "pgbackrest") return pgbackrest::backup(target, request, output);
    return fail(ErrorCode::kUnsupported, "postgres has no backup method \"" + method +
                                             "\"; it has: logical, physical, pgbackrest");
  }

 private:
  Result<BackupResult> logical(const config::Target& target, const BackupRequest& request,
                               BackupOutput& output) const {
    DBOPS_ASSIGN(const std::string pg_dump, tool("pg_dump"));
    BackupResult result;
    DBOPS_ASSIGN(result.tool, tool_version(pg_dump));
    DBOPS_ASSIGN(auto main, open_session(target));
    result.server_version = main->server_version();

    // Which databases.
    std::vector<std::string> databases = request.databases;
    const bool all = databases.size() == 1 && databases.front() == "*";
    if (all) {
      DBOPS_ASSIGN(auto r, main->query("SELECT datname FROM pg_database WHERE datallowconn "
                                       "AND NOT datistemplate ORDER BY datname"));
      databases.clear();
      for (std::size_t i = 0; i < r.rows.size(); ++i) databases.push_back(r.text(i, 0));
    } else if (databases.empty()) {
      DBOPS_ASSIGN(auto r, main->query("SELECT current_database()"));
      databases.push_back(r.text(0, 0));
    }
    main.reset();
    result.details["databases"] = join(databases, ",");

    if (all) {
      // Roles and tablespaces; role passwords need superuser and stay out.
      DBOPS_ASSIGN(const std::string pg_dumpall, tool("pg_dumpall"));
      DBOPS_ASSIGN(auto env, tool_env(target));
      DBOPS_TRY(output.object(
          "globals.sql", "pg_dumpall globals", [&](const BackupOutput::Write& write) -> Status {
            DBOPS_ASSIGN(auto r,
                         run_process({.argv = {pg_dumpall, "--globals-only", "--no-role-passwords"},
                                      .env = env,
                                      .timeout = request.timeout,
                                      .cancel = output.cancel(),
                                      .stdout_sink = OutputSink::callback(write)}));
            return r.check("pg_dumpall");
          }));
    }

    double fingerprint_seconds = 0;
    for (const auto& database : databases) {
      DBOPS_ASSIGN(auto session, open_session(target, database));
      // The snapshot pg_dump will use, exported from a transaction that stays
      // open until pg_dump is done; the fingerprint is taken in it too.
      DBOPS_ASSIGN(auto begun, session->exec_results(
                                   "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; "
                                   "SELECT pg_export_snapshot(), "
                                   "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
                                   "ELSE pg_current_wal_lsn() END::text, "
                                   "(SELECT timeline_id FROM pg_control_checkpoint())::text, "
                                   "pg_is_in_recovery()",
                                   Deadline::after(std::chrono::seconds(60))));
      const QueryResult& snap = begun.back();
      const std::string snapshot = snap.text(0, 0);
      if (result.position.empty()) {
        result.position["lsn"] = snap.text(0, 1);
        result.position["timeline"] = snap.text(0, 2);
        result.details["taken_on"] = snap.text(0, 3) == "t" ? "replica" : "primary";
      }

      Result<DatabaseFingerprint> fingerprint = fail(ErrorCode::kInternal, "not taken");
      std::thread fingerprinter;
      if (request.fingerprint != FingerprintMode::kOff) {
        fingerprinter = std::thread([&] {
          const auto start = Clock::now();
          fingerprint = fingerprint_in_transaction(*session, database, request.fingerprint);
          fingerprint_seconds += seconds_since(start);
        });
      }
      DBOPS_ASSIGN(auto env, tool_env(target, database));
      const Status dumped = output.object(
          database + ".dump", "pg_dump custom", [&](const BackupOutput::Write& write) -> Status {
            // -Z0: dbops compresses (zstd, in parallel) what pg_dump would
            // otherwise gzip on one core.
            DBOPS_ASSIGN(auto r, run_process({.argv = {pg_dump, "--format=custom", "--compress=0",
                                                       "--snapshot=" + snapshot, "--no-sync"},
                                              .env = env,
                                              .timeout = request.timeout,
                                              .cancel = output.cancel(),
                                              .stdout_sink = OutputSink::callback(write)}));
            return r.check("pg_dump");
          });
      if (fingerprinter.joinable()) fingerprinter.join();
      (void)session->exec("COMMIT");
      DBOPS_TRY(dumped);
      if (request.fingerprint != FingerprintMode::kOff) {
        if (!fingerprint) {
          return std::unexpected(
              std::move(fingerprint).error().with_context("fingerprint of " + database));
        }
        result.fingerprints.push_back(std::move(*fingerprint));
      }
    }
    result.details["fingerprint_seconds"] = std::to_string(fingerprint_seconds);
    return result;
  }

  Result<BackupResult> physical(const config::Target& target, const BackupRequest& request,
                                BackupOutput& output) const {
    DBOPS_ASSIGN(const std::string pg_basebackup, tool("pg_basebackup"));
    BackupResult result;
    DBOPS_ASSIGN(result.tool, tool_version(pg_basebackup));
    DBOPS_ASSIGN(auto session, open_session(target));
    result.server_version = session->server_version();

    // Preflight: extra tablespaces cannot go through one tar on stdout.
    DBOPS_ASSIGN(auto spaces,
                 session->query("SELECT spcname, pg_tablespace_location(oid) FROM pg_tablespace "
                                "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY 1"));
    if (!spaces.empty()) {
      std::string names;
      for (std::size_t i = 0; i < spaces.rows.size(); ++i) {
        if (i) names += ", ";
        names += spaces.text(i, 0) + " (" + spaces.text(i, 1) + ")";
      }
      return fail(
          ErrorCode::kUnsupported,
          "physical backups of clusters with extra tablespaces are not supported yet: " + names,
          "use method logical for this target");
    }
    // A temporary slot of this session keeps every WAL segment from now on
    // until the backup has fetched it; it goes away with the session, also
    // when dbops dies.
    // Unique per backup: several backups of one cluster may run at once.
    const std::string slot =
        "dbops_backup_" + std::to_string(getpid()) + "_" + std::to_string(std::random_device{}());
    if (auto st = session->query("SELECT pg_create_physical_replication_slot($1, true, true)",
                                 std::vector<Param>{slot});
        !st) {
      return std::unexpected(std::move(st).error().with_context(
          "reserving WAL for the backup (the role needs REPLICATION)"));
    }
    result.details["wal_reserved_by"] = "temporary slot " + slot;
    result.details["checkpoint"] = request.checkpoint;
    DBOPS_ASSIGN(auto env, tool_env(target));
    output.note(request.checkpoint == "spread"
                    ? "waiting for a spread checkpoint (it follows checkpoint_completion_target "
                      "and can take minutes)"
                    : "waiting for a fast checkpoint");
    bool first_bytes = true;
    DBOPS_TRY(output.object("base.tar", "tar", [&](const BackupOutput::Write& write) -> Status {
      DBOPS_ASSIGN(auto r,
                   run_process({.argv = {pg_basebackup, "--format=tar", "--wal-method=fetch",
                                         "--pgdata=-", "--checkpoint=" + request.checkpoint,
                                         "--verbose", "--label=dbops", "--no-sync"},
                                .env = env,
                                .timeout = request.timeout,
                                .cancel = output.cancel(),
                                .stdout_sink = OutputSink::callback([&](std::string_view bytes) {
                                  if (first_bytes) {
                                    first_bytes = false;
                                    output.note("checkpoint done, copying");
                                  }
                                  return write(bytes);
                                })}));
      DBOPS_TRY(r.check("pg_basebackup"));
      static const std::regex start_re(
          R"(write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+))");
      static const std::regex end_re(R"(write-ahead log end point: ([0-9A-F]+/[0-9A-F]+))");
      std::smatch m;
      if (std::regex_search(r.stderr_text, m, start_re)) {
        result.position["start_lsn"] = m[1];
        result.position["timeline"] = m[2];
      }
      if (std::regex_search(r.stderr_text, m, end_re)) result.position["lsn"] = m[1];
      return ok();
    }));
    return result;
  }
};

// --------------------------------------------------------------- restore --

// Extracts the tar object of a physical backup into `dir`.
Status extract_tar(BackupInput& input, const std::string& object, const fs::path& dir) {
  DBOPS_ASSIGN(auto r, run_process_fed({.argv = {"tar", "--extract", "--file=-",
                                                 "--directory=" + dir.string(), "--no-same-owner"},
                                        .cancel = input.cancel()},
                                       [&](const PushWrite& write) {
                                         // tar may stop at its end-of-archive marker;
                                         // the rest is still read, so that every chunk
                                         // is checked against the manifest.
                                         bool tar_done = false;
                                         return input.read(object,
                                                           [&](std::string_view b) -> Status {
                                                             if (!tar_done && !write(b))
                                                               tar_done = true;
                                                             return ok();
                                                           });
                                       }));
  return r.check("tar");
}

Result<std::string> physical_object(BackupInput& input) {
  for (const auto& [name, content] : input.objects()) {
    if (content == "tar") return name;
  }
  return fail(ErrorCode::kCorrupt, "the backup has no tar object");
}

// pg_restore of one dump into `database` of the server `env` reaches.
Status run_pg_restore(const Environment& env, const fs::path& dump, std::string_view database,
                      int jobs, bool keep_owners, std::chrono::milliseconds timeout,
                      const std::atomic<bool>* cancel) {
  DBOPS_ASSIGN(const std::string pg_restore, tool("pg_restore"));
  std::vector<std::string> argv = {pg_restore, "--exit-on-error",
                                   "--dbname=" + std::string(database),
                                   "--jobs=" + std::to_string(std::max(1, jobs))};
  if (!keep_owners) {
    argv.push_back("--no-owner");
    argv.push_back("--no-privileges");
  }
  argv.push_back(dump.string());
  DBOPS_ASSIGN(auto r,
               run_process({.argv = argv, .env = env, .timeout = timeout, .cancel = cancel}));
  return r.check("pg_restore");
}

Status run_sql_file(const Environment& env, const fs::path& file, std::string_view database,
                    std::chrono::milliseconds timeout) {
  DBOPS_ASSIGN(const std::string psql, tool("psql"));
  DBOPS_ASSIGN(
      auto r, run_process({.argv = {psql, "--no-psqlrc", "--quiet",
                                    "--dbname=" + std::string(database), "--file=" + file.string()},
                           .env = env,
                           .timeout = timeout}));
  return r.check("psql");
}

class PostgresDrill final : public DrillInstance {
 public:
  PostgresDrill(std::unique_ptr<launcher::Instance> instance, std::vector<std::string> databases,
                std::vector<DrillCheck> checks)
      : instance_(std::move(instance)),
        databases_(std::move(databases)),
        checks_(std::move(checks)) {}

  config::Target target(std::string_view database) const override {
    config::Target t = instance_->target("drill");
    t.database = std::string(database.empty() ? databases_.front() : database);
    return t;
  }
  std::vector<std::string> databases() const override { return databases_; }

  std::vector<DrillCheck> verify() override {
    std::vector<DrillCheck> checks = checks_;
    DrillCheck amcheck{.name = "amcheck"};
    const auto start = Clock::now();
    const Status st = run_amcheck();
    amcheck.passed = st.has_value();
    amcheck.detail = st ? "pg_amcheck: heaps and B-tree indexes of " +
                              std::to_string(databases_.size()) + " database(s) are consistent"
                        : st.error().message;
    amcheck.seconds = seconds_since(start);
    checks.push_back(std::move(amcheck));
    return checks;
  }

  Result<DatabaseFingerprint> fingerprint(std::string_view database,
                                          FingerprintMode mode) override {
    DBOPS_ASSIGN(auto session, open_session(instance_->target("drill"), database));
    DBOPS_TRY(session->exec("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"));
    auto fp = fingerprint_in_transaction(*session, database, mode);
    (void)session->exec("COMMIT");
    return fp;
  }

  Result<std::string> query(std::string_view database, std::string_view sql) override {
    DBOPS_ASSIGN(auto session,
                 open_session(instance_->target("drill"),
                              database.empty() ? std::string_view(databases_.front()) : database));
    DBOPS_ASSIGN(auto result, session->query(sql));
    return result.to_text();
  }

 private:
  Status run_amcheck() {
    DBOPS_ASSIGN(const std::string pg_amcheck, tool("pg_amcheck"));
    DBOPS_ASSIGN(auto env, tool_env(instance_->target("drill")));
    for (const auto& db : databases_) {
      DBOPS_ASSIGN(auto session, open_session(instance_->target("drill"), db));
      DBOPS_TRY(session->exec("CREATE EXTENSION IF NOT EXISTS amcheck"));
    }
    // Heap pages and B-tree structure; --heapallindexed (every heap tuple
    // looked up in every index) roughly doubles the time and is left out.
    std::vector<std::string> argv = {pg_amcheck, "--jobs=2"};
    for (const auto& db : databases_) argv.push_back("--database=" + db);
    DBOPS_ASSIGN(auto r, run_process({.argv = argv,
                                      .env = env,
                                      .timeout = std::chrono::hours(6),
                                      .stdout_sink = OutputSink::capture_tail(8192)}));
    if (!r.succeeded()) {
      std::string detail = std::string(trim(r.stdout_text + r.stderr_text));
      return fail(ErrorCode::kCheckFailed, "pg_amcheck " + r.describe() + ": " + detail);
    }
    return ok();
  }

  std::unique_ptr<launcher::Instance> instance_;
  std::vector<std::string> databases_;
  std::vector<DrillCheck> checks_;
};

class PostgresRestoreTarget final : public RestoreTarget {
 public:
  Status restore_into(const config::Target& destination, BackupInput& input,
                      const RestoreOptions& options) const override {
    if (input.method() != "logical") {
      return fail(ErrorCode::kUnsupported,
                  "a physical backup is restored into a path, not into a running server",
                  "use --to PATH, then start a server on it");
    }
    DBOPS_ASSIGN(auto session, open_session(destination));
    DBOPS_ASSIGN(auto current, session->query("SELECT current_database()"));
    const std::string target_db = current.text(0, 0);
    const auto dumps = dump_objects(input);
    if (dumps.size() > 1) {
      return fail(ErrorCode::kUnsupported,
                  "the backup holds " + std::to_string(dumps.size()) +
                      " databases; restoring several at once is not supported yet",
                  "restore each dump by hand with pg_restore (docs/backup.md)");
    }
    if (!options.allow_nonempty) {
      DBOPS_ASSIGN(auto count,
                   session->query("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
                                  "n.oid = c.relnamespace WHERE c.relkind IN ('r','v','m','S','p') "
                                  "AND n.nspname NOT IN ('pg_catalog','information_schema') "
                                  "AND n.nspname NOT LIKE 'pg\\_toast%'"));
      if (count.integer(0, 0) > 0) {
        return fail(ErrorCode::kConflict,
                    "database " + target_db + " of target " + destination.name + " is not empty (" +
                        count.text(0, 0) + " relations)",
                    "restore into an empty database, or pass --yes to restore over it");
      }
    }
    session.reset();
    DBOPS_ASSIGN(auto dump, spool_object(input, dumps.front()));
    DBOPS_ASSIGN(auto env, tool_env(destination));
    return run_pg_restore(env, dump, target_db, options.jobs, true, options.timeout,
                          input.cancel());
  }

  Status restore_to_path(const fs::path& path, BackupInput& input,
                         const RestoreOptions&) const override {
    std::error_code ec;
    if (input.method() == "physical" || input.method() == "pgbackrest") {
      if (fs::exists(path, ec) && !fs::is_empty(path, ec)) {
        return fail(ErrorCode::kConflict, path.string() + " exists and is not empty");
      }
      fs::create_directories(path, ec);
      if (ec) return fail(ErrorCode::kIo, "create " + path.string() + ": " + ec.message());
      fs::permissions(path, fs::perms::owner_all, ec);
      if (input.method() == "pgbackrest") return pgbackrest::restore(input, path);
      DBOPS_ASSIGN(auto object, physical_object(input));
      return extract_tar(input, object, path);
    }
    // Logical: the dumps as files, for pg_restore by hand.
    if (fs::exists(path, ec) && !fs::is_empty(path, ec)) {
      return fail(ErrorCode::kConflict, path.string() + " exists and is not empty");
    }
    fs::create_directories(path, ec);
    if (ec) return fail(ErrorCode::kIo, "create " + path.string() + ": " + ec.message());
    for (const auto& [name, content] : input.objects()) {
      DBOPS_TRY(write_object_file(input, name, path / name, /*durable=*/true));
    }
    return ok();
  }

  Result<std::unique_ptr<DrillInstance>> start_drill(BackupInput& input,
                                                     const DrillOptions& options) const override {
    launcher::Options lo{.run_as = options.run_as, .base_dir = options.base_dir};
    if (input.method() == "physical" || input.method() == "pgbackrest") {
      return physical_drill(input, lo);
    }
    return logical_drill(input, lo, options);
  }

 private:
  static std::vector<std::string> dump_objects(BackupInput& input) {
    std::vector<std::string> out;
    for (const auto& [name, content] : input.objects()) {
      if (content == "pg_dump custom") out.push_back(name);
    }
    return out;
  }

  Result<std::unique_ptr<DrillInstance>> logical_drill(BackupInput& input,
                                                       const launcher::Options& lo,
                                                       const DrillOptions& options) const {
    DBOPS_ASSIGN(auto instance, launcher::start_postgres(lo));
    DBOPS_ASSIGN(auto env, tool_env(instance->target("drill")));
    bool globals = false;
    for (const auto& [name, content] : input.objects()) {
      if (content != "pg_dumpall globals") continue;
      DBOPS_ASSIGN(auto file, spool_object(input, name));
      // Roles that exist already (the instance's own) make psql complain;
      // that is expected and not fatal.
      (void)run_sql_file(env, file, "postgres", options.timeout);
      globals = true;
    }
    std::vector<std::string> databases;
    for (const auto& name : dump_objects(input)) {
      const std::string database = name.substr(0, name.size() - std::string_view(".dump").size());
      DBOPS_ASSIGN(auto file, spool_object(input, name));
      {
        DBOPS_ASSIGN(auto session, open_session(instance->target("drill"), "postgres"));
        if (database != "postgres") {
          DBOPS_TRY(session->exec("CREATE DATABASE " + quote_identifier(database)));
        }
      }
      if (auto st = run_pg_restore(env, file, database, options.jobs, globals, options.timeout,
                                   input.cancel());
          !st) {
        return std::unexpected(std::move(st).error().with_context("restore of " + database));
      }
      std::error_code ec;
      fs::remove(file, ec);
      databases.push_back(database);
    }
    if (databases.empty()) return fail(ErrorCode::kCorrupt, "the backup holds no database dump");
    return std::unique_ptr<DrillInstance>(std::make_unique<PostgresDrill>(
        std::move(instance), std::move(databases), std::vector<DrillCheck>{}));
  }

  Result<std::unique_ptr<DrillInstance>> physical_drill(BackupInput& input,
                                                        const launcher::Options& lo) const {
    DBOPS_ASSIGN(auto prepared, launcher::prepare_postgres_instance(lo));
    std::vector<DrillCheck> checks;
    if (input.method() == "pgbackrest") {
      DBOPS_TRY(pgbackrest::restore(input, prepared->data_dir()));
      DrillCheck check{.name = "pgbackrest verify"};
      const auto start = Clock::now();
      const Status verified = pgbackrest::verify(input);
      check.passed = verified.has_value();
      check.detail = verified ? "pgbackrest verify: no problem reported" : verified.error().message;
      check.seconds = seconds_since(start);
      checks.push_back(std::move(check));
    } else {
      DBOPS_ASSIGN(auto object, physical_object(input));
      DBOPS_TRY(extract_tar(input, object, prepared->data_dir()));
    }
    // pg_verifybackup before the server touches anything.
    if (input.method() == "physical") {
      DrillCheck check{.name = "pg_verifybackup"};
      const auto start = Clock::now();
      DBOPS_ASSIGN(const std::string verify, tool("pg_verifybackup"));
      DBOPS_ASSIGN(auto r,
                   run_process({.argv = {verify, "--no-parse-wal", prepared->data_dir().string()},
                                .timeout = std::chrono::hours(6),
                                .stdout_sink = OutputSink::capture_tail(8192)}));
      check.passed = r.succeeded();
      check.detail = std::string(trim(r.succeeded() ? r.stdout_text : r.stderr_text));
      if (check.detail.empty()) check.detail = "pg_verifybackup " + r.describe();
      check.seconds = seconds_since(start);
      checks.push_back(std::move(check));
    }
    DBOPS_ASSIGN(auto instance, launcher::start_postgres_restored(std::move(prepared)));
    DBOPS_ASSIGN(auto session, open_session(instance->target("drill")));
    DBOPS_ASSIGN(auto dbs, session->query("SELECT datname FROM pg_database WHERE datallowconn "
                                          "AND NOT datistemplate ORDER BY datname"));
    std::vector<std::string> databases;
    for (std::size_t i = 0; i < dbs.rows.size(); ++i) databases.push_back(dbs.text(i, 0));
    return std::unique_ptr<DrillInstance>(std::make_unique<PostgresDrill>(
        std::move(instance), std::move(databases), std::move(checks)));
  }
};

}  // namespace

const BackupDriver& backup_driver() {
  static const PostgresBackupDriver driver;
  return driver;
}

const RestoreTarget& restore_target() {
  static const PostgresRestoreTarget target;
  return target;
}

}  // namespace dbops::engine::postgres
