// MariaDB and MySQL through MariaDB Connector/C.
#include <filesystem>

#include "engine/engine.hpp"
#include "engine/mysql/mysql_backup.hpp"
#include "engine/mysql/mysql_dialect.hpp"
#include "engine/mysql/mysql_probe.hpp"
#include "engine/mysql/mysql_session.hpp"

namespace dbops::engine::mysql {
namespace {

class MysqlEngine final : public Engine {
 public:
  std::string_view name() const override { return "mysql"; }
  std::vector<std::string> aliases() const override { return {"mariadb"}; }
  std::string_view description() const override { return "MariaDB and MySQL"; }
  int default_port() const override { return 3306; }
  std::vector<std::string> dsn_schemes() const override { return {"mysql", "mariadb"}; }
  std::string client_library() const override { return client_library_version(); }

  Result<Environment> client_environment(const config::Target& t) const override {
    DBOPS_ASSIGN(auto p, connect_params(t));
    auto env = detail::base_environment(t, p.unix_socket.empty() ? p.host : p.unix_socket, p.port,
                                        p.user, p.database);
    // The MariaDB and MySQL clients read these.
    if (!p.unix_socket.empty()) {
      env.emplace_back("MYSQL_UNIX_PORT", p.unix_socket);
    } else if (!p.host.empty()) {
      env.emplace_back("MYSQL_HOST", p.host);
    }
    env.emplace_back("MYSQL_TCP_PORT", std::to_string(p.port));
    if (!p.password.empty()) env.emplace_back("MYSQL_PWD", p.password.reveal());
    return env;
  }

  Status preflight(const config::Target& t) const override {
    DBOPS_ASSIGN(auto p, connect_params(t));
    if (!p.unix_socket.empty()) {
      std::error_code ec;
      if (!std::filesystem::exists(p.unix_socket, ec)) {
        return fail(ErrorCode::kUnavailable, "socket " + p.unix_socket + " does not exist",
                    "check the target's host (a socket path) and that the server runs");
      }
      return ok();
    }
    return detail::check_host_resolves(p.host);
  }

  Result<std::unique_ptr<Session>> connect(const config::Target& target,
                                           const ConnectOptions& options) const override {
    DBOPS_ASSIGN(auto params, connect_params(target));
    params.application_name = options.application_name;
    DBOPS_ASSIGN(auto session, mysql::connect(params, Deadline::after(options.connect_timeout)));
    session->set_default_timeout(options.statement_timeout);
    return std::unique_ptr<Session>(std::move(session));
  }

  const HealthProbe* health_probe() const override { return &probe_; }
  const BackupDriver* backup_driver() const override { return &mysql::backup_driver(); }
  const RestoreTarget* restore_target() const override { return &mysql::restore_target(); }

  std::vector<CapabilityStatus> capabilities() const override {
    const Dialect mariadb = dialect_for("10.11.0-MariaDB");
    const Dialect mysql8 = dialect_for("8.0.22");
    const Dialect mysql57 = dialect_for("5.7.44");
    return {
        {.capability = "connect",
         .variant = "",
         .implemented = true,
         .live_tested = true,
         .note = "non-blocking Connector/C API; KILL QUERY on deadline and cancel"},
        {.capability = "connect",
         .variant = "TLS (ssl-mode, CA, client certificate)",
         .implemented = true,
         .live_tested = true,
         .note = "require / verify-ca / verify-full; a handshake stalled mid-way is cut at the "
                 "deadline"},
        {.capability = "connect",
         .variant = "Unix socket",
         .implemented = true,
         .live_tested = true,
         .note = "host given as a socket path"},
        {.capability = "HealthProbe",
         .variant = mariadb.name,
         .implemented = true,
         .live_tested = mariadb.live_tested,
         .note = "one round trip for a user with PROCESS and REPLICA MONITOR; SHOW ALL SLAVES "
                 "STATUS, GTID positions"},
        {.capability = "HealthProbe",
         .variant = mysql8.name,
         .implemented = true,
         .live_tested = mysql8.live_tested,
         .note = "SHOW REPLICA STATUS, Source_/Replica_ fields (8.0.22+); version selection "
                 "unit-tested only, no MySQL server here"},
        {.capability = "HealthProbe",
         .variant = mysql57.name,
         .implemented = true,
         .live_tested = mysql57.live_tested,
         .note = "SHOW SLAVE STATUS (before 8.0.22); version selection unit-tested only"},
        {.capability = "BackupDriver",
         .variant = "logical",
         .implemented = true,
         .live_tested = true,
         .note = "mariadb-dump --single-transaction with the binlog and GTID position; fingerprint "
                 "exact when its snapshot has the dump's binlog position, else marked approximate"},
        {.capability = "BackupDriver",
         .variant = "physical (mariabackup)",
         .implemented = false,
         .live_tested = false,
         .note = "mariabackup --stream=xbstream: not implemented yet"},
        {.capability = "RestoreTarget", .implemented = true, .live_tested = true},
    };
  }

 private:
  MysqlProbe probe_;
};

}  // namespace

void register_engine(Registry& registry) {
  registry.add(std::make_unique<MysqlEngine>());
}

}  // namespace dbops::engine::mysql
