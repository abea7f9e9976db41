// PostgreSQL instances: initdb, a generated configuration, the postmaster run
// directly as our child (not through pg_ctl, which daemonises: a direct child
// can get a parent-death signal), and streaming replicas from pg_basebackup.
#include <signal.h>
#include <stdlib.h>
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

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Rewrites the generated block at the end of postgresql.conf (initdb's
// defaults above it stay; a replica's copy of the primary's block goes).
Status write_postgresql_conf(const LaunchedInstance& instance, const PgTools& tools,
                             const Options& options, std::string_view cluster_name, int port) {
  const fs::path path = instance.data_dir() / "postgresql.conf";
  std::string text = read_text(path);
  if (auto marker = text.find(kConfMarker); marker != std::string::npos) text.resize(marker);
  if (!text.empty() && text.back() != '\n') text += '\n';
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
       << "wal_level = replica\n"
       << "wal_log_hints = on\n"
       << "max_wal_senders = 10\n"
       << "max_replication_slots = 10\n"
       << "hot_standby = on\n"
       << "cluster_name = " << conf_value(cluster_name) << "\n";
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
              "postgres",
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
                         std::string cluster_name, Clock::time_point deadline) {
  LaunchedInstance::Launch launch;
  launch.argv = {tools.tool("postgres").string(), "-D", instance.data_dir().string()};
  launch.configure = [&](int port) {
    return write_postgresql_conf(instance, tools, options, cluster_name, port);
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

Result<std::unique_ptr<LaunchedInstance>> start_primary(const Options& options,
                                                        std::string cluster_name,
                                                        Clock::time_point deadline) {
  DBOPS_ASSIGN(fs::path bindir, postgres_bindir());
  const PgTools tools{bindir};
  DBOPS_ASSIGN(RunAs as, resolve_run_as(options, "postgres"));
  DBOPS_ASSIGN(auto instance, LaunchedInstance::create(options, "pg", postgres_shape(), as,
                                                       Secret(random_password())));
  DBOPS_TRY(instance->socket_path(".s.PGSQL.65535"));

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

}  // namespace dbops::engine::launcher
