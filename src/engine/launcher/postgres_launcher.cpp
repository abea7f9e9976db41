// PostgreSQL instances: initdb, a generated configuration, the postmaster run
// directly as our child (not through pg_ctl, which daemonises: a direct child
// can get a parent-death signal), streaming replicas from pg_basebackup, and
// clusters restored from a base backup for restore drills.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "core/log.hpp"
#include "core/strings.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/launcher/launcher_internal.hpp"

namespace dbops::engine::launcher {
namespace detail {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

Result<fs::path> postgres_bindir() {
  auto has_server = [](const fs::path& dir) {
    return ::access((dir / "initdb").c_str(), X_OK) == 0 &&
           ::access((dir / "postgres").c_str(), X_OK) == 0;
  };
  constexpr std::string_view kHint =
      "Install the PostgreSQL server (scripts/setup test installs postgresql-15) or set "
      "DBOPS_PG_BINDIR to the directory holding initdb and postgres.";
  if (const char* env = std::getenv("DBOPS_PG_BINDIR"); env != nullptr && *env != '\0') {
    if (has_server(env)) return fs::path(env);
    return fail(ErrorCode::kNotFound,
                std::string("postgres: DBOPS_PG_BINDIR=") + env + " holds no initdb and postgres",
                std::string(kHint));
  }
  int best_version = -1;
  fs::path best;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/usr/lib/postgresql", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.empty() || !std::ranges::all_of(name, [](char c) { return std::isdigit(c); })) {
      continue;
    }
    const int version = std::stoi(name);
    if (version > best_version && has_server(it->path() / "bin")) {
      best_version = version;
      best = it->path() / "bin";
    }
  }
  if (best_version >= 0) return best;
  auto initdb = find_tool("postgres", {"initdb"}, {}, kHint);
  if (initdb && has_server(initdb->parent_path())) return initdb->parent_path();
  return fail(ErrorCode::kNotFound, "postgres: initdb and postgres not found", std::string(kHint));
}

namespace {

constexpr std::string_view kSuperuser = "dbops";
constexpr std::string_view kConfMarker =
    "# --- dbops launcher: generated settings; everything below is rewritten ---";

struct PgTools {
  fs::path bindir;
  fs::path tool(std::string_view name) const { return bindir / name; }
};

LaunchedInstance::Shape postgres_shape() {
  LaunchedInstance::Shape shape;
  shape.engine = "postgres";
  shape.log_name = "postgres.log";
  shape.superuser = std::string(kSuperuser);
  shape.database = "postgres";
  shape.stop_signal = SIGINT;    // fast shutdown
  shape.death_signal = SIGQUIT;  // immediate shutdown, children included
  shape.stop_grace = 15s;
  return shape;
}

// A configuration value: kept as written when it is a number, a plain word or
// already quoted; quoted otherwise.
std::string conf_value(std::string_view value) {
  const bool plain = !value.empty() && std::ranges::all_of(value, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
           c == '+';
  });
  if (plain || (value.size() >= 2 && value.front() == '\'' && value.back() == '\'')) {
    return std::string(value);
  }
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// Which configuration an instance gets.
enum class ConfKind {
  // initdb's cluster, or a replica cloned from it: initdb's defaults stay above
  // the generated block.
  kFresh,
  // A data directory restored from a backup: the whole file is generated, so
  // that nothing of the source's configuration (archiving, replication, its
  // paths, its preloaded libraries) survives.
  kRestored,
};

// Rewrites the generated block at the end of postgresql.conf (initdb's
// defaults above it stay; a replica's copy of the primary's block goes), or
// the whole file for a restored cluster.
Status write_postgresql_conf(const LaunchedInstance& instance, const PgTools& tools,
                             const Options& options, std::string_view cluster_name, int port,
                             ConfKind kind) {
  const fs::path path = instance.data_dir() / "postgresql.conf";
  std::string text;
  if (kind == ConfKind::kFresh) {
    text = read_text(path);
    if (auto marker = text.find(kConfMarker); marker != std::string::npos) text.resize(marker);
    if (!text.empty() && text.back() != '\n') text += '\n';
  } else {
    text =
        "# A data directory restored from a backup, started by the dbops launcher for a\n"
        "# restore drill. The source's configuration is deliberately not used: no\n"
        "# archiving, no replication, no subscriptions, nothing that reaches production.\n";
  }
  std::ostringstream conf;
  conf << kConfMarker << "\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << port << "\n"
       << "unix_socket_directories = " << conf_value(instance.directory().string()) << "\n"
       << "unix_socket_permissions = 0700\n"
       << "max_connections = 60\n"
       << "shared_buffers = 16MB\n"
       << "# A throwaway instance: its data is disposable, so durability is traded for\n"
       << "# speed. Never copy this line to a server whose data matters.\n"
       << "fsync = off\n"
       << "archive_mode = off\n"
       << "# The log is the server's stderr, which the launcher sends to "
       << instance.log_file().filename().string() << " in the instance directory.\n"
       << "logging_collector = off\n"
       << "log_destination = 'stderr'\n"
       << "log_line_prefix = '%m [%p] %q%u@%d '\n"
       << "wal_level = replica\n";
  if (kind == ConfKind::kFresh) {
    conf << "wal_log_hints = on\n"
         << "max_wal_senders = 10\n"
         << "max_replication_slots = 10\n"
         << "hot_standby = on\n";
  } else {
    // No replication slots at all: the server refuses to start when slots exist
    // on disk, which is why pg_replslot/ was emptied before.
    conf << "archive_command = ''\n"
         << "restore_command = ''\n"
         << "primary_conninfo = ''\n"
         << "primary_slot_name = ''\n"
         << "max_wal_senders = 0\n"
         << "max_replication_slots = 0\n"
         << "max_logical_replication_workers = 0\n"
         << "ssl = off\n"
         << "password_encryption = 'scram-sha-256'\n";
  }
  conf << "cluster_name = " << conf_value(cluster_name) << "\n";
  if (::access((tools.bindir.parent_path() / "lib" / "pg_stat_statements.so").c_str(), R_OK) == 0) {
    conf << "shared_preload_libraries = 'pg_stat_statements'\n";
  }
  for (const auto& [key, value] : options.settings)
    conf << key << " = " << conf_value(value) << "\n";
  return write_owned_file(path, text + conf.str(), instance.run_as(), 0600);
}

Status write_pg_hba(const LaunchedInstance& instance) {
  // The socket lives in the 0700 instance directory: only root and the server's
  // user can reach it, so trust there means "the OS user". TCP needs the
  // password, also for replication (pg_basebackup, replicas).
  const std::string hba =
      "# generated by the dbops launcher\n"
      "local   all          all                 trust\n"
      "local   replication  all                 trust\n"
      "host    all          all   127.0.0.1/32  scram-sha-256\n"
      "host    replication  all   127.0.0.1/32  scram-sha-256\n";
  return write_owned_file(instance.data_dir() / "pg_hba.conf", hba, instance.run_as(), 0600);
}

std::vector<std::pair<std::string, std::string>> client_env(const Instance& instance) {
  return {{"PGPASSWORD", instance.superuser_password().reveal()},
          {"PGCONNECT_TIMEOUT", "5"},
          {"PGAPPNAME", "dbops-launcher"},
          {"PGSSLMODE", "disable"}};
}

// One statement through psql over TCP as the superuser; the unaligned,
// tuples-only output.
Result<std::string> psql(const LaunchedInstance& instance, const PgTools& tools,
                         std::string_view sql) {
  ToolRun run;
  run.argv = {tools.tool("psql").string(),
              "-X",
              "-q",
              "-A",
              "-t",
              "-v",
              "ON_ERROR_STOP=1",
              "-h",
              instance.host(),
              "-p",
              std::to_string(instance.port()),
              "-U",
              instance.superuser(),
              "-d",
              instance.database(),
              "-c",
              std::string(sql)};
  run.env = client_env(instance);
  run.timeout = 15s;
  run.cwd = instance.directory();
  return run_tool(run);
}

// Starts the postmaster on the data directory already in place and waits
// until it accepts connections over TCP with the password.
Status launch_postmaster(LaunchedInstance& instance, const PgTools& tools, const Options& options,
                         std::string cluster_name, Clock::time_point deadline,
                         ConfKind kind = ConfKind::kFresh) {
  LaunchedInstance::Launch launch;
  launch.argv = {tools.tool("postgres").string(), "-D", instance.data_dir().string()};
  launch.configure = [&](int port) {
    return write_postgresql_conf(instance, tools, options, cluster_name, port, kind);
  };
  launch.ready = [&](std::string& why_not) -> Result<bool> {
    ToolRun run;
    run.argv = {tools.tool("pg_isready").string(),
                "-h",
                instance.host(),
                "-p",
                std::to_string(instance.port()),
                "-t",
                "2"};
    run.timeout = 5s;
    run.cwd = instance.directory();
    DBOPS_ASSIGN(ProcessResult result, run_tool_raw(run));
    if (result.succeeded()) return true;
    why_not = "pg_isready: " + std::string(trim(result.stdout_text));
    return false;
  };
  DBOPS_TRY(instance.start(launch, deadline));
  // Proves the password and pg_hba.conf, not only the listening socket.
  auto check = psql(instance, tools, "select 1");
  if (!check) return fail(instance.error_with_log(check.error().code, check.error().message));
  return ok();
}

Result<std::unique_ptr<LaunchedInstance>> create_postgres_instance(const Options& options,
                                                                   std::string_view tag) {
  DBOPS_ASSIGN(RunAs as, resolve_run_as(options, "postgres"));
  DBOPS_ASSIGN(auto instance, LaunchedInstance::create(options, tag, postgres_shape(), as,
                                                       Secret(random_password())));
  DBOPS_TRY(instance->socket_path(".s.PGSQL.65535"));
  return instance;
}

Result<std::unique_ptr<LaunchedInstance>> start_primary(const Options& options,
                                                        std::string cluster_name,
                                                        Clock::time_point deadline) {
  DBOPS_ASSIGN(fs::path bindir, postgres_bindir());
  const PgTools tools{bindir};
  DBOPS_ASSIGN(auto instance, create_postgres_instance(options, "pg"));
  const RunAs& as = instance->run_as();

  const fs::path pwfile = instance->directory() / "initdb.pw";
  DBOPS_TRY(write_owned_file(pwfile, instance->superuser_password().reveal() + "\n", as, 0600));
  ToolRun initdb;
  initdb.argv = {tools.tool("initdb").string(),
                 "-D",
                 instance->data_dir().string(),
                 "-U",
                 std::string(kSuperuser),
                 "--auth-local=trust",
                 "--auth-host=scram-sha-256",
                 "--pwfile=" + pwfile.string(),
                 "-E",
                 "UTF8",
                 "--locale=C.UTF-8",
                 "--no-sync",
                 "--no-instructions"};
  initdb.timeout = std::max<std::chrono::milliseconds>(
      1s, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  initdb.cwd = instance->directory();
  initdb.as = &instance->run_as();
  auto initdb_result = run_tool(initdb);
  std::error_code ec;
  fs::remove(pwfile, ec);
  if (!initdb_result) {
    return fail(std::move(initdb_result)
                    .error()
                    .with_context("postgres instance " + instance->directory().string()));
  }
  DBOPS_TRY(write_pg_hba(*instance));
  DBOPS_TRY(launch_postmaster(*instance, tools, options, std::move(cluster_name), deadline));
  return instance;
}

Clock::time_point deadline_for(const Options& options) {
  return Clock::now() + options.start_timeout;
}

// What is left of the deadline for one tool run, at least a second.
std::chrono::milliseconds remaining(Clock::time_point deadline) {
  return std::max<std::chrono::milliseconds>(
      1s, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
}

// The installed server's version as `postgres -V` prints it ("15.8") and its
// major version as PG_VERSION spells it ("15"; "9.6" before 10).
struct ServerVersion {
  std::string full;
  std::string major;
};

Result<ServerVersion> installed_version(const LaunchedInstance& instance, const PgTools& tools) {
  ToolRun run;
  run.argv = {tools.tool("postgres").string(), "-V"};
  run.timeout = 10s;
  run.cwd = instance.directory();
  run.as = &instance.run_as();
  DBOPS_ASSIGN(std::string out, run_tool(run));
  // "postgres (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)"
  constexpr std::string_view kTag = "(PostgreSQL) ";
  const auto at = out.find(kTag);
  ServerVersion version;
  if (at != std::string::npos) {
    std::string_view rest = std::string_view(out).substr(at + kTag.size());
    const auto end = rest.find_first_not_of("0123456789.");
    version.full = std::string(rest.substr(0, end));
  }
  const auto parts = split(version.full, '.');
  if (parts.empty() || parts[0].empty() ||
      !std::ranges::all_of(parts[0], [](char c) { return std::isdigit(c) != 0; })) {
    return fail(
        ErrorCode::kInternal,
        "postgres: cannot read the server version from `postgres -V`: " + std::string(trim(out)));
  }
  version.major = parts[0];
  if (std::stoi(parts[0]) < 10 && parts.size() > 1) version.major += "." + parts[1];
  return version;
}

// A physical backup starts only on the major version that wrote it.
Status check_restored_version(const LaunchedInstance& instance, const PgTools& tools) {
  const fs::path file = instance.data_dir() / "PG_VERSION";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    return fail(ErrorCode::kInvalidArgument,
                "postgres restore: " + instance.data_dir().string() +
                    " holds no PG_VERSION: it is not a PostgreSQL data directory",
                "Extract the base backup (the base.tar of pg_basebackup -Ft) into the prepared "
                "instance's data_dir() before starting it.");
  }
  const std::string backup_major(trim(read_text(file)));
  DBOPS_ASSIGN(ServerVersion installed, installed_version(instance, tools));
  if (backup_major != installed.major) {
    return fail(ErrorCode::kUnsupported,
                "postgres restore: the backup is of PostgreSQL " + backup_major +
                    " (its PG_VERSION) but the installed server is PostgreSQL " + installed.full +
                    " (" + tools.bindir.string() + ")",
                "A physical backup starts only on the major version that wrote it: install the "
                "PostgreSQL " +
                    backup_major +
                    " server packages and point DBOPS_PG_BINDIR at their bin directory.");
  }
  return ok();
}

// Removes what would tie the restored cluster to its source, then hands the
// data directory to the server's user.
Status cut_off_restored(const LaunchedInstance& instance) {
  const fs::path& data = instance.data_dir();
  std::error_code ec;
  // A symbolic link (a tablespace in pg_tblspc/, a pg_wal/ kept elsewhere)
  // points at the source's paths: a drill on the source's host would write
  // into the source's own files.
  for (auto it = fs::recursive_directory_iterator(data, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_symlink(type_ec)) {
      return fail(ErrorCode::kUnsupported,
                  "postgres restore: the backup holds a symbolic link, " +
                      it->path().lexically_relative(data).string() + " -> " +
                      fs::read_symlink(it->path(), type_ec).string() +
                      ": tablespaces and a separate WAL directory cannot be restored into a "
                      "throwaway instance",
                  "Restore drills support clusters without tablespaces, with pg_wal inside the "
                  "data directory.");
    }
  }
  if (ec) {
    return fail(ErrorCode::kIo, "postgres restore: read " + data.string() + ": " + ec.message());
  }
  if (!trim(read_text(data / "tablespace_map")).empty()) {
    return fail(ErrorCode::kUnsupported,
                "postgres restore: the backup has tablespaces (tablespace_map is not empty), "
                "which cannot be restored into a throwaway instance",
                "Restore drills support clusters without tablespaces.");
  }

  // recovery.conf: a PostgreSQL 12+ server refuses to start with one.
  for (const char* name : {"postgresql.auto.conf", "standby.signal", "recovery.signal",
                           "recovery.conf", "postmaster.pid", "postmaster.opts"}) {
    fs::remove(data / name, ec);
    if (ec) {
      return fail(ErrorCode::kIo,
                  "postgres restore: remove " + (data / name).string() + ": " + ec.message());
    }
  }
  const fs::path slots = data / "pg_replslot";
  if (fs::is_directory(slots, ec)) {
    for (auto it = fs::directory_iterator(slots, ec); !ec && it != fs::end(it); it.increment(ec)) {
      std::error_code rm_ec;
      fs::remove_all(it->path(), rm_ec);
      if (rm_ec) {
        return fail(ErrorCode::kIo, "postgres restore: remove the replication slot " +
                                        it->path().string() + ": " + rm_ec.message());
      }
    }
  } else if (!ec && fs::create_directory(slots, ec)) {
    fs::permissions(slots, fs::perms::owner_all, ec);
  }
  if (ec) {
    return fail(ErrorCode::kIo, "postgres restore: empty " + slots.string() + ": " + ec.message());
  }

  DBOPS_TRY(chown_tree(data, instance.run_as()));
  // The server refuses a data directory that others can read.
  if (::chmod(data.c_str(), 0700) != 0) {
    return fail(errno_error("postgres restore: chmod " + data.string(), errno));
  }
  return ok();
}

// `text` with every occurrence of `secret` masked.
std::string redact(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
    text.replace(at, secret.size(), "********");
  }
  return text;
}

// Makes sure the superuser "dbops" exists with the instance's password, in
// single-user mode, before the server listens anywhere. This first start also
// performs the recovery from the backup's backup_label and WAL (as crash
// recovery would: "starting backup recovery ... consistent recovery state
// reached" in the log), writes the end-of-recovery and shutdown checkpoints and
// renames backup_label to backup_label.old; the postmaster started afterwards
// finds a cleanly shut down cluster. The password goes through stdin, never
// argv. The session runs in "postgres", or in template1 when the backup has no
// "postgres" database; target() then names template1.
Status set_superuser_single_user(LaunchedInstance& instance, const PgTools& tools,
                                 Clock::time_point deadline) {
  const std::string& password = instance.superuser_password().reveal();
  const std::string role(kSuperuser);
  // One statement per line: without -j a newline ends a statement.
  const std::string sql =
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = " + sql_quote(role) +
      ") THEN CREATE ROLE " + role + " SUPERUSER LOGIN; END IF; END $$;\n" + "ALTER ROLE " + role +
      " SUPERUSER LOGIN CONNECTION LIMIT -1 VALID UNTIL 'infinity' PASSWORD " +
      sql_quote(password) + ";\n" + "ALTER ROLE " + role + " RESET ALL;\n";
  std::string transcript = read_text(instance.log_file());
  for (const std::string database : {"postgres", "template1"}) {
    ToolRun run;
    // exit_on_error: a failed statement ends the session with a non-zero exit
    // (single-user mode otherwise carries on and exits 0);
    // log_min_error_statement: a failed statement is not echoed to the log.
    run.argv = {tools.tool("postgres").string(),
                "--single",
                "-D",
                instance.data_dir().string(),
                "-c",
                "exit_on_error=on",
                "-c",
                "log_min_error_statement=panic",
                database};
    run.stdin_data = sql;
    run.timeout = remaining(deadline);
    run.cwd = instance.directory();
    run.as = &instance.run_as();
    DBOPS_ASSIGN(ProcessResult result, run_tool_raw(run));
    transcript += "--- dbops launcher: single-user mode in database " + database +
                  " (recovery, then the " + role + " superuser's password): " + result.describe() +
                  " ---\n" + redact(result.stderr_text, password);
    if (!transcript.empty() && transcript.back() != '\n') transcript += '\n';
    DBOPS_TRY(write_owned_file(instance.log_file(), transcript, instance.run_as(), 0640));
    if (result.succeeded()) {
      instance.set_database(database);
      return ok();
    }
    if (database == "postgres" &&
        result.stderr_text.find("database \"postgres\" does not exist") != std::string::npos) {
      log::debug("launcher: the restored cluster has no database \"postgres\"; using template1",
                 {{"dir", instance.directory().string()}});
      continue;
    }
    return fail(
        instance
            .error_with_log(result.timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
                            "single-user mode (recovery from the backup, then the " + role +
                                " superuser): " + result.describe())
            .with_hint("Read the server log above. A base backup needs its WAL "
                       "(pg_basebackup -X fetch or -X stream) to reach a consistent "
                       "state."));
  }
  return fail(instance.error_with_log(ErrorCode::kInternal, "single-user mode: no database left"));
}

}  // namespace
}  // namespace detail

Result<std::unique_ptr<Instance>> start_postgres(const Options& options) {
  DBOPS_ASSIGN(auto instance,
               detail::start_primary(options, "dbops", detail::deadline_for(options)));
  return std::unique_ptr<Instance>(std::move(instance));
}

Result<PostgresTopology> start_postgres_replicated(int replicas, const Options& options) {
  using namespace detail;
  if (replicas < 1 || replicas > 8) {
    return fail(ErrorCode::kInvalidArgument,
                "postgres topology: " + std::to_string(replicas) + " replicas, expected 1 to 8");
  }
  const auto deadline = deadline_for(options);
  DBOPS_ASSIGN(fs::path bindir, postgres_bindir());
  const PgTools tools{bindir};
  DBOPS_ASSIGN(auto primary, start_primary(options, "primary", deadline));

  PostgresTopology topology;
  for (int i = 1; i <= replicas; ++i) {
    const std::string name = "replica" + std::to_string(i);
    DBOPS_ASSIGN(auto replica,
                 LaunchedInstance::create(options, "pg", postgres_shape(), primary->run_as(),
                                          primary->superuser_password()));
    // -R writes primary_conninfo (with the password, from PGPASSWORD) into the
    // replica's postgresql.auto.conf and creates standby.signal; -C -S gives it
    // a replication slot on the primary so that it never falls behind for good.
    ToolRun backup;
    backup.argv = {tools.tool("pg_basebackup").string(),
                   "-h",
                   primary->host(),
                   "-p",
                   std::to_string(primary->port()),
                   "-U",
                   primary->superuser(),
                   "-D",
                   replica->data_dir().string(),
                   "-X",
                   "stream",
                   "-R",
                   "-C",
                   "-S",
                   "dbops_" + name,
                   "-c",
                   "fast",
                   "--no-sync"};
    // Only what belongs in the replica's primary_conninfo, which -R builds
    // from this connection.
    backup.env = {{"PGPASSWORD", primary->superuser_password().reveal()},
                  {"PGCONNECT_TIMEOUT", "5"}};
    backup.timeout = std::max<std::chrono::milliseconds>(
        1s, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    backup.cwd = replica->directory();
    backup.as = &replica->run_as();
    if (auto result = run_tool(backup); !result) {
      return fail(std::move(result).error().with_context("postgres " + name + " " +
                                                         replica->directory().string()));
    }
    DBOPS_TRY(launch_postmaster(*replica, tools, options, name, deadline));
    topology.replicas.push_back(std::move(replica));
  }

  const std::string count_sql =
      "select count(*) from pg_stat_replication where state = 'streaming'";
  auto streaming = wait_until(
      "postgres topology: replicas streaming", deadline, [&](std::string& why_not) -> Result<bool> {
        DBOPS_ASSIGN(std::string out, psql(*primary, tools, count_sql));
        why_not = std::string(trim(out)) + " of " + std::to_string(replicas) + " streaming";
        return std::string(trim(out)) == std::to_string(replicas);
      });
  if (!streaming) {
    return fail(primary->error_with_log(streaming.error().code, streaming.error().message));
  }
  topology.primary = std::move(primary);
  return topology;
}

Result<std::unique_ptr<Instance>> prepare_postgres_instance(const Options& options) {
  using namespace detail;
  // No server installed: fail before creating anything.
  DBOPS_TRY(postgres_bindir());
  DBOPS_ASSIGN(auto instance, create_postgres_instance(options, "pgr"));
  const fs::path& data = instance->data_dir();
  if (::mkdir(data.c_str(), 0700) != 0) {
    return fail(errno_error("postgres restore: create " + data.string(), errno));
  }
  const RunAs& as = instance->run_as();
  if (as.user && ::chown(data.c_str(), as.user->uid, as.user->gid) != 0) {
    return fail(errno_error("postgres restore: chown " + data.string(), errno));
  }
  return std::unique_ptr<Instance>(std::move(instance));
}

Result<std::unique_ptr<Instance>> start_postgres_restored(std::unique_ptr<Instance> prepared) {
  using namespace detail;
  auto* instance = dynamic_cast<LaunchedInstance*>(prepared.get());
  if (instance == nullptr || instance->engine() != "postgres") {
    return fail(ErrorCode::kInvalidArgument,
                "postgres restore: the instance was not made by prepare_postgres_instance()");
  }
  if (instance->pid() != 0) {
    return fail(
        ErrorCode::kInvalidArgument,
        "postgres restore: instance " + instance->directory().string() + " was already started");
  }
  const Options& options = instance->options();
  const auto deadline = deadline_for(options);
  DBOPS_ASSIGN(fs::path bindir, postgres_bindir());
  const PgTools tools{bindir};
  DBOPS_TRY(check_restored_version(*instance, tools));
  DBOPS_TRY(cut_off_restored(*instance));
  // Single-user mode reads the same configuration; the port is rewritten when
  // the postmaster starts.
  constexpr int kNoPortYet = 5432;
  DBOPS_TRY(write_postgresql_conf(*instance, tools, options, "restored", kNoPortYet,
                                  ConfKind::kRestored));
  DBOPS_TRY(write_pg_hba(*instance));
  DBOPS_TRY(write_owned_file(instance->data_dir() / "pg_ident.conf",
                             "# generated by the dbops launcher: no user name maps\n",
                             instance->run_as(), 0600));
  DBOPS_TRY(set_superuser_single_user(*instance, tools, deadline));
  DBOPS_TRY(
      launch_postmaster(*instance, tools, options, "restored", deadline, ConfKind::kRestored));
  return prepared;
}

}  // namespace dbops::engine::launcher
