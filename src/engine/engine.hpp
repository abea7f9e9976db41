// The engine layer's entry point: one Engine per database engine, registered
// in a Registry that the rest of dbops asks for what an engine can do.
//
// Each engine lives in its own folder (postgres/, mysql/, redis/, sqlite/),
// which is the only place that includes that engine's client library. Code
// above this layer never branches on an engine's name: it asks the registry
// for the engine and calls what the engine implements.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"
#include "engine/backup.hpp"
#include "engine/probe.hpp"
#include "engine/session.hpp"

namespace dbops::engine {

// Environment variables for a child process; secrets travel here, never in argv.
using Environment = std::vector<std::pair<std::string, std::string>>;

struct ConnectOptions {
  // dbops's own deadline for establishing the connection (TCP, TLS, auth).
  std::chrono::milliseconds connect_timeout{5'000};
  // Default deadline for each statement on the session.
  std::chrono::milliseconds statement_timeout{30'000};
  std::string application_name = "dbops";
  // Connects to this database instead of the target's own (PostgreSQL).
  std::string database;
};

// One row of the capability matrix `dbops engines` prints.
struct CapabilityStatus {
  std::string capability;  // "connect", "HealthProbe", ...
  std::string variant;     // "" or e.g. "MySQL 8" where support differs by server
  bool implemented = false;
  // Whether the test suite exercises it against a live server.
  bool live_tested = false;
  std::string note;
};

class Engine {
 public:
  virtual ~Engine() = default;

  virtual std::string_view name() const = 0;
  virtual std::vector<std::string> aliases() const { return {}; }
  virtual std::string_view description() const = 0;
  // 0 for engines addressed by a file path.
  virtual int default_port() const = 0;
  virtual bool file_based() const { return false; }
  virtual std::vector<std::string> dsn_schemes() const = 0;
  virtual bool accepts_key_value_dsn() const { return false; }
  // "libpq 15.x" and the like; empty while no client library is linked.
  virtual std::string client_library() const { return {}; }

  // The environment that the engine's native tools (psql, pg_dump, mariadb,
  // redis-cli, sqlite3) read to reach the target, plus DBOPS_TARGET_* fields
  // for scripts. The password goes only into the engine's own variable
  // (PGPASSWORD, MYSQL_PWD, REDISCLI_AUTH).
  virtual Result<Environment> client_environment(const config::Target& target) const = 0;

  // Checks that need no connection: a file exists and is a database of this
  // engine, a host name resolves, a connection string parses.
  virtual Status preflight(const config::Target& target) const = 0;

  // Opens a session (SqlSession or CommandSession) within options.connect_timeout.
  virtual Result<std::unique_ptr<Session>> connect(const config::Target& target,
                                                   const ConnectOptions& options) const {
    (void)target;
    (void)options;
    return fail(ErrorCode::kUnsupported,
                "engine " + std::string(name()) + " cannot connect in this build");
  }

  // Capabilities; nullptr when the engine does not implement one.
  virtual const HealthProbe* health_probe() const { return nullptr; }
  virtual const BackupDriver* backup_driver() const { return nullptr; }
  virtual const RestoreTarget* restore_target() const { return nullptr; }

  // The rows of the capability matrix.
  virtual std::vector<CapabilityStatus> capabilities() const { return {}; }
};

class Registry {
 public:
  // The process's registry with every built-in engine.
  static const Registry& global();

  void add(std::unique_ptr<Engine> engine);
  // By canonical name or alias; nullptr when unknown.
  const Engine* find(std::string_view name) const;
  std::vector<const Engine*> all() const;
  // What the config loader needs to validate targets.
  std::vector<config::EngineShape> shapes() const;

 private:
  std::vector<std::unique_ptr<Engine>> engines_;
};

// Each engine folder defines one of these; builtin.cpp calls them all.
void register_builtin_engines(Registry& registry);

// Helpers shared by engine folders.
namespace detail {
// Resolves a host name (a path, for a Unix socket, is checked to exist).
Status check_host_resolves(std::string_view host);
// DBOPS_TARGET, DBOPS_TARGET_ENGINE and the structured fields that are set.
Environment base_environment(const config::Target& target, std::string_view host, int port,
                             std::string_view user, std::string_view database);
}  // namespace detail

}  // namespace dbops::engine
