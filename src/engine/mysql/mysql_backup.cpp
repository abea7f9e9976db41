#include "engine/mysql/mysql_backup.hpp"

#include <charconv>
#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "core/clock.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "core/temp_dir.hpp"
#include "engine/engine.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/mysql/mysql_session.hpp"

namespace dbops::engine::mysql {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kSampleRows = 10'000;
const std::set<std::string> kSystemDatabases = {"information_schema", "performance_schema", "mysql",
                                                "sys"};

const Engine& engine() {
  return *Registry::global().find("mysql");
}

Result<std::string> tool(std::string_view name) {
  DBOPS_ASSIGN(auto path, launcher::tool_path("mysql", name));
  return path.string();
}

// The connection options of the MariaDB tools: host, port and user in argv
// (not secret), the password in MYSQL_PWD.
struct ToolConnection {
  std::vector<std::string> args;
  Environment env;
};

Result<ToolConnection> tool_connection(const config::Target& target) {
  DBOPS_ASSIGN(auto p, connect_params(target));
  ToolConnection c;
  DBOPS_ASSIGN(c.env, engine().client_environment(target));
  c.args.push_back("--no-defaults");
  if (!p.unix_socket.empty()) {
    c.args.push_back("--socket=" + p.unix_socket);
  } else {
    c.args.push_back("--protocol=tcp");
    c.args.push_back("--host=" + p.host);
    c.args.push_back("--port=" + std::to_string(p.port));
  }
  if (!p.user.empty()) c.args.push_back("--user=" + p.user);
  const std::string& mode = p.tls.mode;
  if (mode == "require" || mode == "verify-ca" || mode == "verify-full") {
    c.args.push_back("--ssl");
    if (!p.tls.ca_file.empty()) c.args.push_back("--ssl-ca=" + p.tls.ca_file);
    if (!p.tls.cert_file.empty()) c.args.push_back("--ssl-cert=" + p.tls.cert_file);
    if (!p.tls.key_file.empty()) c.args.push_back("--ssl-key=" + p.tls.key_file);
    if (mode == "verify-full") c.args.push_back("--ssl-verify-server-cert");
  }
  return c;
}

// A session on `target`; `any_database`: without selecting the target's
// database (which a restore may be about to create).
Result<std::unique_ptr<MysqlSession>> open_session(const config::Target& target,
                                                   bool any_database = false) {
  DBOPS_ASSIGN(auto p, connect_params(target));
  p.application_name = "dbops backup";
  if (any_database) p.database.clear();
  DBOPS_ASSIGN(auto session, connect(p, Deadline::after(std::chrono::seconds(30))));
  session->set_default_timeout(std::chrono::hours(24));
  return session;
}

// Per table of `database`: row count and the sum modulo 2^64 of a 64-bit
// hash of each row's text, in the session's current transaction. The
// session's time_zone is pinned so that TIMESTAMP columns read the same.
Result<DatabaseFingerprint> fingerprint_database(MysqlSession& session, std::string_view database,
                                                 FingerprintMode mode) {
  DatabaseFingerprint fp;
  fp.database = std::string(database);
  fp.mode = mode;
  DBOPS_ASSIGN(auto tables,
               session.query("SELECT t.TABLE_NAME, "
                             "(SELECT GROUP_CONCAT(CONCAT('`', REPLACE(c.COLUMN_NAME, '`', '``'), "
                             "'`') ORDER BY c.ORDINAL_POSITION SEPARATOR ',') "
                             "   FROM information_schema.COLUMNS c WHERE c.TABLE_SCHEMA = "
                             "t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME), "
                             "(SELECT GROUP_CONCAT(CONCAT('`', REPLACE(k.COLUMN_NAME, '`', '``'), "
                             "'`') ORDER BY k.ORDINAL_POSITION SEPARATOR ',') "
                             "   FROM information_schema.KEY_COLUMN_USAGE k WHERE "
                             "k.TABLE_SCHEMA = t.TABLE_SCHEMA AND k.TABLE_NAME = t.TABLE_NAME "
                             "AND k.CONSTRAINT_NAME = 'PRIMARY') "
                             "FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = ? AND "
                             "t.TABLE_TYPE = 'BASE TABLE' ORDER BY t.TABLE_NAME",
                             std::vector<Param>{std::string(database)}));
  for (std::size_t i = 0; i < tables.rows.size(); ++i) {
    TableFingerprint t;
    t.table = tables.text(i, 0);
    const std::string table =
        quote_identifier(database, '`') + "." + quote_identifier(t.table, '`');
    std::string columns;
    for (const auto& col : split(tables.text(i, 1), ',')) {
      if (!columns.empty()) columns += ", ";
      columns += "IFNULL(" + col + ", '\\\\N')";
    }
    const std::string pk = tables.text(i, 2);
    const std::string row_hash =
        "CAST(CONV(LEFT(MD5(CONCAT_WS(0x1f, " + columns + ")), 16), 16, 10) AS DECIMAL(20,0))";
    const std::string sum =
        "CAST(COALESCE(SUM(" + row_hash + "), 0) % 18446744073709551616 AS CHAR)";
    std::string sql;
    if (mode == FingerprintMode::kSampled && !pk.empty()) {
      sql = "SELECT (SELECT COUNT(*) FROM " + table + "), " + sum + ", (SELECT COUNT(*) FROM " +
            table + ") > " + std::to_string(kSampleRows) + " FROM (SELECT * FROM " + table +
            " ORDER BY " + pk + " LIMIT " + std::to_string(kSampleRows) + ") dbops_fp_row";
    } else {
      sql = "SELECT COUNT(*), " + sum + ", 0 FROM " + table;
    }
    DBOPS_ASSIGN(auto r, session.query(sql));
    t.rows = r.integer(0, 0);
    const std::string hash = r.text(0, 1);
    std::from_chars(hash.data(), hash.data() + hash.size(), t.hash);
    t.sampled = r.text(0, 2) == "1";
    fp.tables.push_back(std::move(t));
  }
  return fp;
}

// ---------------------------------------------------------------- backup --

// mariabackup's own program: a separate package from the server.
Result<std::string> mariabackup_tool() {
  auto path = tool("mariadb-backup");
  if (!path) path = tool("mariabackup");
  if (!path) {
    return fail(ErrorCode::kNotFound, "mariadb-backup (mariabackup) is not installed",
                "The physical method needs the mariadb-backup package of the server's version on "
                "the database host.");
  }
  return path;
}

constexpr std::string_view kDumpContent = "mariadb-dump sql";
constexpr std::string_view kXbstreamContent = "mariabackup xbstream";

// The binary log position and redo log range mariabackup reports on stderr
// at the end of a backup (the consistent point, taken under BACKUP STAGE
// BLOCK_COMMIT).
void parse_mariabackup_log(const std::string& log, BackupResult& result) {
  static const std::regex binlog_re(
      R"(MySQL binlog position: filename '([^']*)', position '(\d+)'(?:, GTID of the last change '([^']*)')?)");
  static const std::regex lsn_re(R"(Redo log \(from LSN (\d+) to (\d+)\) was copied)");
  std::smatch m;
  if (std::regex_search(log, m, binlog_re)) {
    result.position["binlog_file"] = m[1];
    result.position["binlog_pos"] = m[2];
    if (m[3].matched && m[3].length() > 0) result.position["gtid"] = m[3];
  }
  if (std::regex_search(log, m, lsn_re)) {
    result.position["lsn_start"] = m[1];
    result.position["lsn_end"] = m[2];
  }
}

class MysqlBackupDriver final : public BackupDriver {
 public:
  std::vector<std::string> methods() const override { return {"logical", "physical"}; }

  Result<BackupResult> backup(const config::Target& target, const BackupRequest& request,
                              BackupOutput& output) const override {
    const std::string method = request.method.empty() ? "logical" : request.method;
    if (method != "logical" && method != "physical") {
      return fail(ErrorCode::kUnsupported,
                  "mysql has no backup method \"" + method + "\"; it has: logical, physical");
    }
    const bool physical = method == "physical";
    std::string program;
    if (physical) {
      DBOPS_ASSIGN(program, mariabackup_tool());
    } else {
      DBOPS_ASSIGN(program, tool("mariadb-dump"));
    }
    BackupResult result;
    {
      // mariabackup prints its version on stderr.
      DBOPS_ASSIGN(auto r, run_process({.argv = {program, "--version"},
                                        .timeout = std::chrono::seconds(10),
                                        .stdout_sink = OutputSink::capture(4096),
                                        .stderr_sink = OutputSink::capture(4096)}));
      result.tool = std::string(trim(r.stdout_text.empty() ? r.stderr_text : r.stdout_text));
    }
    DBOPS_ASSIGN(auto session, open_session(target));
    result.server_version = session->server_version();
    DBOPS_ASSIGN(auto conn, tool_connection(target));
    if (physical) {
      // mariabackup copies the data directory's files: it runs where they are.
      DBOPS_ASSIGN(auto dir, session->query("SELECT @@datadir"));
      const std::string datadir = dir.text(0, 0);
      std::error_code ec;
      if (!std::filesystem::is_directory(std::filesystem::path(datadir) / "mysql", ec)) {
        return fail(ErrorCode::kUnsupported,
                    "target " + target.name + ": the server's data directory " + datadir +
                        " is not on this host (or not readable here), and mariabackup copies "
                        "it file by file",
                    "Run the physical method on the database host, as root or the server's "
                    "user; use method logical from elsewhere.");
      }
      result.details["datadir"] = datadir;
    }

    std::vector<std::string> databases = request.databases;
    if ((databases.size() == 1 && databases.front() == "*") ||
        (databases.empty() && session->params().database.empty())) {
      DBOPS_ASSIGN(auto r, session->query("SHOW DATABASES"));
      databases.clear();
      for (std::size_t i = 0; i < r.rows.size(); ++i) {
        if (!kSystemDatabases.contains(r.text(i, 0))) databases.push_back(r.text(i, 0));
      }
    } else if (databases.empty()) {
      databases.push_back(session->params().database);
    }
    if (databases.empty()) return fail(ErrorCode::kNotFound, "the server has no database to dump");
    result.details["databases"] = join(databases, ",");

    DBOPS_ASSIGN(auto binlog, session->query("SELECT @@log_bin"));
    const bool log_bin = binlog.text(0, 0) == "1";

    // The fingerprint's own snapshot; its binary log position says whether
    // it is the dump's.
    std::string fp_position;
    if (request.fingerprint != FingerprintMode::kOff) {
      DBOPS_TRY(session->exec(
          "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET time_zone = '+00:00'"));
      DBOPS_TRY(session->exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"));
      // The binary log position this snapshot sees (MariaDB keeps it per
      // consistent-snapshot transaction).
      auto pos = session->query("SHOW STATUS LIKE 'binlog_snapshot_%'");
      std::string file, offset;
      for (std::size_t i = 0; pos && i < pos->rows.size(); ++i) {
        if (pos->text(i, 0) == "Binlog_snapshot_file") file = pos->text(i, 1);
        if (pos->text(i, 0) == "Binlog_snapshot_position") offset = pos->text(i, 1);
      }
      if (!file.empty() && !offset.empty()) fp_position = file + ":" + offset;
    }
    std::vector<std::string> argv = {program};
    argv.insert(argv.end(), conn.args.begin(), conn.args.end());
    TempDirectory scratch;
    if (physical) {
      // The whole instance; --target-dir only holds mariabackup's scratch files.
      DBOPS_ASSIGN(scratch, TempDirectory::create({}, "dbops-mariabackup-"));
      for (std::string a : {"--backup", "--stream=xbstream", "--parallel=2"}) argv.push_back(a);
      argv.push_back("--target-dir=" + scratch.path().string());
    } else {
      for (const char* a : {"--single-transaction", "--routines", "--triggers", "--events",
                            "--hex-blob", "--default-character-set=utf8mb4", "--tz-utc"}) {
        argv.emplace_back(a);
      }
      if (log_bin) {
        argv.emplace_back("--master-data=2");
        argv.emplace_back("--gtid");
      }
      argv.emplace_back("--databases");
      argv.insert(argv.end(), databases.begin(), databases.end());
    }

    // The dump's position is in a comment near its top.
    std::string head;
    Result<std::vector<DatabaseFingerprint>> fingerprints = std::vector<DatabaseFingerprint>{};
    double fingerprint_seconds = 0;
    std::thread fingerprinter;
    if (request.fingerprint != FingerprintMode::kOff) {
      fingerprinter = std::thread([&] {
        const auto start = Clock::now();
        std::vector<DatabaseFingerprint> out;
        for (const auto& db : databases) {
          auto fp = fingerprint_database(*session, db, request.fingerprint);
          if (!fp) {
            fingerprints = std::unexpected(std::move(fp).error());
            return;
          }
          out.push_back(std::move(*fp));
        }
        fingerprints = std::move(out);
        fingerprint_seconds = seconds_since(start);
      });
    }
    std::string tool_log;
    const Status dumped = output.object(
        physical ? "backup.xbstream" : "dump.sql",
        std::string(physical ? kXbstreamContent : kDumpContent),
        [&](const BackupOutput::Write& write) -> Status {
          DBOPS_ASSIGN(
              auto r, run_process({.argv = argv,
                                   .env = conn.env,
                                   .timeout = request.timeout,
                                   .cancel = output.cancel(),
                                   .stdout_sink = OutputSink::callback([&](std::string_view bytes) {
                                     if (!physical && head.size() < 16384) {
                                       head.append(bytes.substr(0, 16384 - head.size()));
                                     }
                                     return write(bytes);
                                   }),
                                   .stderr_sink = OutputSink::capture_tail(65536)}));
          tool_log = std::move(r.stderr_text);
          if (physical && r.succeeded() && tool_log.find("completed OK!") == std::string::npos) {
            return fail(ErrorCode::kIo,
                        "mariabackup exited 0 without \"completed OK!\": " +
                            std::string(trim(tool_log.substr(
                                tool_log.size() - std::min<std::size_t>(tool_log.size(), 400)))));
          }
          return r.check(physical ? "mariabackup" : "mariadb-dump");
        });
    if (fingerprinter.joinable()) fingerprinter.join();
    (void)session->exec("COMMIT");
    DBOPS_TRY(dumped);

    static const std::regex gtid_re(R"(gtid_slave_pos='([^']*)')");
    static const std::regex file_re(R"(MASTER_LOG_FILE='([^']*)', MASTER_LOG_POS=(\d+))");
    std::smatch m;
    if (physical) {
      parse_mariabackup_log(tool_log, result);
    } else {
      if (std::regex_search(head, m, gtid_re)) result.position["gtid"] = m[1];
      if (std::regex_search(head, m, file_re)) {
        result.position["binlog_file"] = m[1];
        result.position["binlog_pos"] = m[2];
      }
    }
    if (request.fingerprint != FingerprintMode::kOff) {
      if (!fingerprints) {
        return std::unexpected(std::move(fingerprints).error().with_context("fingerprint"));
      }
      // Exact only when both snapshots are at the same binary log position.
      const bool aligned =
          log_bin && !fp_position.empty() && result.position.contains("binlog_file") &&
          result.position["binlog_file"] + ":" + result.position["binlog_pos"] == fp_position;
      for (auto& fp : *fingerprints) fp.approximate = !aligned;
      result.details["fingerprint_position"] = fp_position.empty() ? "unknown" : fp_position;
      result.details["fingerprint"] =
          aligned ? "exact: taken at the backup's binary log position"
                  : "approximate: the fingerprint's snapshot cannot be aligned with the backup's " +
                        std::string(log_bin ? "(the binary log positions differ: writes went on)"
                                            : "(binary log off: no position to compare)");
      result.fingerprints = std::move(*fingerprints);
    }
    result.details["fingerprint_seconds"] = std::to_string(fingerprint_seconds);
    return result;
  }
};

// --------------------------------------------------------------- restore --

// Feeds the dump to the mariadb client.
Status load_dump(const ToolConnection& conn, BackupInput& input, std::string_view object,
                 std::chrono::milliseconds timeout) {
  DBOPS_ASSIGN(const std::string client, tool("mariadb"));
  std::vector<std::string> argv = {client};
  argv.insert(argv.end(), conn.args.begin(), conn.args.end());
  argv.emplace_back("--binary-mode");
  DBOPS_ASSIGN(
      auto r,
      run_process_fed({.argv = argv, .env = conn.env, .timeout = timeout, .cancel = input.cancel()},
                      [&](const PushWrite& write) { return input.read(object, write); }));
  return r.check("mariadb");
}

Result<std::string> object_of(BackupInput& input, std::string_view wanted) {
  for (const auto& [name, content] : input.objects()) {
    if (content == wanted) return name;
  }
  return fail(ErrorCode::kCorrupt, "the backup has no " + std::string(wanted) + " object");
}

Result<std::string> dump_object(BackupInput& input) {
  return object_of(input, kDumpContent);
}

// The xbstream object unpacked into `dir` (which must exist) with mbstream.
Status extract_xbstream(BackupInput& input, const std::filesystem::path& dir) {
  DBOPS_ASSIGN(auto object, object_of(input, kXbstreamContent));
  DBOPS_ASSIGN(const std::string mbstream, tool("mbstream"));
  DBOPS_ASSIGN(auto r,
               run_process_fed({.argv = {mbstream, "--extract", "--directory=" + dir.string()},
                                .cancel = input.cancel()},
                               [&](const PushWrite& write) { return input.read(object, write); }));
  return r.check("mbstream");
}

// mariabackup --prepare: applies the redo log copied with the backup, so
// that the files are a consistent data directory. Until it succeeds, the copy
// is not a backup.
Result<std::string> prepare_copy(const std::filesystem::path& dir,
                                 std::chrono::milliseconds timeout,
                                 const std::atomic<bool>* cancel) {
  DBOPS_ASSIGN(const std::string mariabackup, mariabackup_tool());
  DBOPS_ASSIGN(auto r, run_process({.argv = {mariabackup, "--prepare", "--use-memory=512M",
                                             "--target-dir=" + dir.string()},
                                    .timeout = timeout,
                                    .cancel = cancel,
                                    .stderr_sink = OutputSink::capture_tail(16384)}));
  if (!r.succeeded() || r.stderr_text.find("completed OK!") == std::string::npos) {
    std::string why = r.succeeded() ? "exited 0 without \"completed OK!\"" : r.describe();
    const auto lines = split(std::string(trim(r.stderr_text)), '\n');
    for (std::size_t i = lines.size() > 3 ? lines.size() - 3 : 0; i < lines.size(); ++i) {
      why += "; " + std::string(trim(lines[i]));
    }
    return fail(ErrorCode::kCorrupt, "mariabackup --prepare failed: " + why);
  }
  return std::string("mariabackup --prepare: redo log applied");
}

bool is_physical(BackupInput& input) {
  return input.method() == "physical";
}

std::vector<std::string> backup_databases(BackupInput& input) {
  const auto it = input.details().find("databases");
  return it == input.details().end() ? std::vector<std::string>{} : split(it->second, ',');
}

class MysqlDrill final : public DrillInstance {
 public:
  MysqlDrill(std::unique_ptr<launcher::Instance> instance, std::vector<std::string> databases,
             std::vector<DrillCheck> checks = {})
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
    checks.push_back(check_tables());
    return checks;
  }

  DrillCheck check_tables() {
    DrillCheck check{.name = "check_table"};
    const auto start = Clock::now();
    std::vector<std::string> problems;
    std::size_t tables = 0;
    auto session = open_session(instance_->target("drill"));
    if (!session) {
      check.detail = session.error().message;
      return check;
    }
    for (const auto& db : databases_) {
      auto names = (*session)->query(
          "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND "
          "TABLE_TYPE = 'BASE TABLE'",
          std::vector<Param>{db});
      if (!names) {
        problems.push_back(names.error().message);
        continue;
      }
      for (std::size_t i = 0; i < names->rows.size(); ++i) {
        const std::string table =
            quote_identifier(db, '`') + "." + quote_identifier(names->text(i, 0), '`');
        auto r = (*session)->query("CHECK TABLE " + table);
        ++tables;
        if (!r) {
          problems.push_back(table + ": " + r.error().message);
          continue;
        }
        for (std::size_t row = 0; row < r->rows.size(); ++row) {
          const std::string type = r->text(row, 2), text = r->text(row, 3);
          if (type == "status" && text != "OK") problems.push_back(table + ": " + text);
          if (type == "error") problems.push_back(table + ": " + text);
        }
      }
    }
    check.passed = problems.empty();
    check.detail = problems.empty() ? "CHECK TABLE: " + std::to_string(tables) + " table(s) OK"
                                    : join(problems, "; ");
    check.seconds = seconds_since(start);
    return check;
  }

  Result<DatabaseFingerprint> fingerprint(std::string_view database,
                                          FingerprintMode mode) override {
    DBOPS_ASSIGN(auto session, open_session(instance_->target("drill")));
    DBOPS_TRY(session->exec(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET time_zone = '+00:00'"));
    DBOPS_TRY(session->exec("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"));
    auto fp = fingerprint_database(*session, database, mode);
    (void)session->exec("COMMIT");
    return fp;
  }

  Result<std::string> query(std::string_view database, std::string_view sql) override {
    DBOPS_ASSIGN(auto session, open_session(target(database)));
    DBOPS_ASSIGN(auto result, session->query(sql));
    return result.to_text();
  }

 private:
  std::unique_ptr<launcher::Instance> instance_;
  std::vector<std::string> databases_;
  std::vector<DrillCheck> checks_;
};

class MysqlRestoreTarget final : public RestoreTarget {
 public:
  Status restore_into(const config::Target& destination, BackupInput& input,
                      const RestoreOptions& options) const override {
    if (is_physical(input)) {
      return fail(ErrorCode::kUnsupported,
                  "a physical MariaDB backup replaces a whole data directory and cannot be loaded "
                  "into the running server of target " +
                      destination.name,
                  "Restore it to a path (dbops backup restore ID --to /path): it is extracted and "
                  "prepared there; stop the server, move it into place as its datadir, chown it "
                  "to the server's user, and start the server.");
    }
    DBOPS_ASSIGN(auto object, dump_object(input));
    if (!options.allow_nonempty) {
      DBOPS_ASSIGN(auto session, open_session(destination, /*any_database=*/true));
      for (const auto& db : backup_databases(input)) {
        DBOPS_ASSIGN(auto r, session->query("SELECT COUNT(*) FROM information_schema.TABLES "
                                            "WHERE TABLE_SCHEMA = ?",
                                            std::vector<Param>{db}));
        if (r.integer(0, 0) > 0) {
          return fail(ErrorCode::kConflict,
                      "database " + db + " on target " + destination.name + " is not empty (" +
                          r.text(0, 0) + " tables)",
                      "drop it first, or pass --yes to load the dump over it");
        }
      }
    }
    DBOPS_ASSIGN(auto conn, tool_connection(destination));
    return load_dump(conn, input, object, options.timeout);
  }

  Status restore_to_path(const std::filesystem::path& path, BackupInput& input,
                         const RestoreOptions& options) const override {
    std::error_code ec;
    if (is_physical(input)) {
      // A data directory: extracted and prepared, ready to be moved into place.
      if (std::filesystem::exists(path, ec) && !std::filesystem::is_empty(path, ec)) {
        return fail(ErrorCode::kConflict, path.string() + " exists and is not empty");
      }
      std::filesystem::create_directories(path, ec);
      if (ec) return fail(ErrorCode::kIo, "create " + path.string() + ": " + ec.message());
      std::filesystem::permissions(path, std::filesystem::perms::owner_all, ec);
      DBOPS_TRY(extract_xbstream(input, path));
      DBOPS_TRY(prepare_copy(path, options.timeout, input.cancel()));
      return ok();
    }
    if (std::filesystem::exists(path, ec)) {
      return fail(ErrorCode::kConflict, path.string() + " already exists");
    }
    // The SQL dump as a file, for the mariadb client by hand.
    DBOPS_ASSIGN(auto object, dump_object(input));
    return write_object_file(input, object, path, /*durable=*/true);
  }

  Result<std::unique_ptr<DrillInstance>> start_drill(BackupInput& input,
                                                     const DrillOptions& options) const override {
    launcher::Options lo{.run_as = options.run_as, .base_dir = options.base_dir};
    // The launcher's defaults are sized for tests; a restore of real data
    // needs a buffer pool and redo log that are not the bottleneck.
    lo.settings = {{"innodb_buffer_pool_size", "512M"},
                   {"innodb_log_file_size", "256M"},
                   {"innodb_flush_log_at_trx_commit", "0"}};
    auto databases = backup_databases(input);
    if (databases.empty()) return fail(ErrorCode::kCorrupt, "the manifest lists no database");
    if (is_physical(input)) {
      DBOPS_ASSIGN(auto prepared, launcher::prepare_mariadb_instance(lo));
      DBOPS_TRY(extract_xbstream(input, prepared->data_dir()));
      DrillCheck check{.name = "mariabackup_prepare"};
      const auto start = Clock::now();
      DBOPS_ASSIGN(check.detail,
                   prepare_copy(prepared->data_dir(), options.timeout, input.cancel()));
      check.passed = true;
      check.seconds = seconds_since(start);
      DBOPS_ASSIGN(auto instance, launcher::start_mariadb_restored(std::move(prepared)));
      return std::unique_ptr<DrillInstance>(std::make_unique<MysqlDrill>(
          std::move(instance), std::move(databases), std::vector<DrillCheck>{std::move(check)}));
    }
    DBOPS_ASSIGN(auto object, dump_object(input));
    DBOPS_ASSIGN(auto instance, launcher::start_mariadb(lo));
    DBOPS_ASSIGN(auto conn, tool_connection(instance->target("drill")));
    DBOPS_TRY(load_dump(conn, input, object, options.timeout));
    return std::unique_ptr<DrillInstance>(
        std::make_unique<MysqlDrill>(std::move(instance), std::move(databases)));
  }
};

}  // namespace

const BackupDriver& backup_driver() {
  static const MysqlBackupDriver driver;
  return driver;
}

const RestoreTarget& restore_target() {
  static const MysqlRestoreTarget target;
  return target;
}

}  // namespace dbops::engine::mysql
