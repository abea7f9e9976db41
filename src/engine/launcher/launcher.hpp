// Throwaway server instances: PostgreSQL, MariaDB and Redis started on
// loopback ports in temporary directories, for restore drills and tests.
//
// Each instance gets a generated configuration cut off from production: no
// archiving, no replication (except in the replicated topologies below), no
// event scheduler, small memory, listening on 127.0.0.1 only. When dbops runs
// as root the server runs as an unprivileged user. start_* returns once the
// server accepts connections; the Instance's destructor stops it and removes
// its directory, also when the caller fails. A port already taken is retried
// with another (bind and retry, never probe-then-bind).
//
// How to reach an instance (target() carries the TCP form):
// - PostgreSQL: superuser "dbops", database "postgres"; TCP from 127.0.0.1
//   with the password (scram-sha-256, also for replication connections such
//   as pg_basebackup); the Unix socket (directory() is
//   unix_socket_directories) trusts every user, and only root and the server's
//   user can reach it (the directory is 0700). wal_level=replica,
//   wal_log_hints=on, fsync=off, pg_stat_statements preloaded when installed;
//   the server's stderr is directory()/postgres.log.
// - MariaDB ("mysql"): root@127.0.0.1 and root@localhost (socket
//   directory()/mysqld.sock) with the password, no anonymous accounts; no
//   default database. The replicated pair shares one password and also has
//   repl@127.0.0.1 (same password, REPLICATION SLAVE). Log:
//   directory()/mariadbd.log; internal temporary files in directory()/tmp.
// - Redis: requirepass (user "default"), database 0, no persistence; socket
//   directory()/redis.sock. Log: directory()/redis.log.
// Clients get the password through the environment (PGPASSWORD, MYSQL_PWD,
// REDISCLI_AUTH), never in argv. The servers run as a direct child with a
// parent-death signal, so they die with dbops; reap_stale() (run by every
// start_*) removes what a killed process left behind.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"
#include "core/secret.hpp"

namespace dbops::engine::launcher {

struct Options {
  // User the server runs as when dbops runs as root. Empty: the engine's
  // package user ("postgres", "mysql", "redis") when it exists, else "nobody".
  std::string run_as;
  // Parent of the instance directories; short, because Unix socket paths are
  // limited to 107 bytes. Empty: $DBOPS_INSTANCE_DIR, else /tmp.
  std::filesystem::path base_dir;
  // How long to wait for the server to accept connections.
  std::chrono::milliseconds start_timeout{60'000};
  // Extra settings appended to the generated server configuration.
  std::vector<std::pair<std::string, std::string>> settings;
  // Redis: an RDB file the server loads at start (copied in as its
  // dump.rdb; the instance still never saves).
  std::filesystem::path redis_rdb;
};

class Instance {
 public:
  // Stops the server (fast shutdown, then SIGKILL) and removes its directory.
  virtual ~Instance() = default;

  virtual std::string_view engine() const = 0;
  virtual const std::string& host() const = 0;  // "127.0.0.1"
  virtual int port() const = 0;
  // The instance's own directory; the data directory is inside it.
  virtual const std::filesystem::path& directory() const = 0;
  virtual const std::filesystem::path& data_dir() const = 0;
  // The server's main process.
  virtual int pid() const = 0;
  virtual const std::string& superuser() const = 0;
  virtual const Secret& superuser_password() const = 0;
  // A target that reaches the instance as its superuser over TCP
  // (structured fields: host, port, user, password, database).
  virtual config::Target target(std::string name) const = 0;

  // Graceful stop; idempotent.
  virtual Status stop() = 0;
  // SIGSTOP / SIGCONT to every process of the server (hung-target tests).
  virtual Status pause() = 0;
  virtual Status resume() = 0;
};

Result<std::unique_ptr<Instance>> start_postgres(const Options& options = {});
Result<std::unique_ptr<Instance>> start_mariadb(const Options& options = {});
Result<std::unique_ptr<Instance>> start_redis(const Options& options = {});

// A PostgreSQL instance on a data directory restored from a physical backup
// (a base backup with its backup_label and WAL, as pg_basebackup -Ft -X fetch
// writes it), for restore drills. prepare_postgres_instance() creates an
// empty instance directory (data/ inside, owned by the user the server will
// run as) for the caller to fill; start_postgres_restored() then cuts the
// data directory off from production and starts it:
// - postgresql.auto.conf, standby.signal, recovery.signal, postmaster.pid and
//   postmaster.opts are removed; pg_replslot/ is emptied, so no slot of the
//   source survives;
// - a generated postgresql.conf and pg_hba.conf replace whatever came with the
//   backup (a Debian cluster keeps them outside the data directory, so none
//   may have come): listen on 127.0.0.1, archive_mode=off, no
//   archive_command, restore_command or primary_conninfo,
//   max_logical_replication_workers=0, max_wal_senders=0 ... (plus
//   Options::settings);
// - the superuser "dbops" gets a fresh password through single-user mode
//   before the server listens (the backup's roles are kept as they are).
// That single-user run also recovers the cluster from the backup's WAL to a
// consistent state (backup_label becomes backup_label.old); the server then
// starts on a cleanly shut down cluster, and start_postgres_restored()
// returns once it accepts connections. target()
// names database "postgres", or template1 when the backup has no "postgres".
// Refused: a backup of another major version than the installed server
// (kUnsupported), a data directory without PG_VERSION (kInvalidArgument), and
// symbolic links or a non-empty tablespace_map (tablespaces, pg_wal elsewhere:
// kUnsupported), which would make the instance write to the source's paths.
Result<std::unique_ptr<Instance>> prepare_postgres_instance(const Options& options = {});
Result<std::unique_ptr<Instance>> start_postgres_restored(std::unique_ptr<Instance> prepared);

// A MariaDB instance on a data directory restored from a physical backup
// (mariabackup --backup, extracted and prepared with mariabackup --prepare),
// for restore drills. prepare_mariadb_instance() creates an empty instance
// directory (data/ inside, owned by the user the server will run as) for the
// caller to fill; start_mariadb_restored() then starts mariadbd on it with the
// generated my.cnf (loopback only, no binary log, skip-slave-start,
// event_scheduler=OFF, plus Options::settings) and the InnoDB layout the
// backup was made with (innodb_page_size, innodb_data_file_path,
// innodb_undo_tablespaces, innodb_checksum_algorithm from backup-my.cnf).
// root@localhost and root@127.0.0.1 get the instance's password through an
// init-file that the server runs before it listens (and that is removed once
// it does); the backup's other accounts are kept as they are.
// master.info, relay-log.info and multi-master.info are removed.
// Refused: a directory without mysql/ or a copy that was not prepared
// (kInvalidArgument), and tables kept outside the data directory (.isl files,
// symbolic links: kUnsupported).
Result<std::unique_ptr<Instance>> prepare_mariadb_instance(const Options& options = {});
Result<std::unique_ptr<Instance>> start_mariadb_restored(std::unique_ptr<Instance> prepared);

// A PostgreSQL primary with streaming replicas (wal_log_hints on, so that
// pg_rewind can work), each replica started from pg_basebackup of the primary.
struct PostgresTopology {
  std::unique_ptr<Instance> primary;
  std::vector<std::unique_ptr<Instance>> replicas;
};
Result<PostgresTopology> start_postgres_replicated(int replicas, const Options& options = {});

// A primary and one replica: MariaDB with GTID replication (log_bin,
// log_slave_updates, unique server_id, gtid_strict_mode, performance_schema,
// anonymous accounts dropped); Redis with replicaof.
struct ReplicatedPair {
  std::unique_ptr<Instance> primary;
  std::unique_ptr<Instance> replica;
};
Result<ReplicatedPair> start_mariadb_replicated(const Options& options = {});
Result<ReplicatedPair> start_redis_replicated(const Options& options = {});

// Removes instance directories under base_dir whose owning process is gone
// (left by a killed test or drill), stopping any server still running there.
void reap_stale(const std::filesystem::path& base_dir);

// Where the launcher finds an engine's programs, so that callers drive the
// same installation as the servers: engine "postgres" looks in PostgreSQL's
// bin directory ($DBOPS_PG_BINDIR, else the newest /usr/lib/postgresql/<v>/bin,
// else PATH) for "psql", "pg_basebackup", "pg_dump" ...; "mysql" and "redis"
// look on PATH, then /usr/sbin and /usr/libexec ("mariadb", "mariadbd",
// "mariadb-dump", "redis-cli" ...). kNotFound, with an installation hint, when
// it is missing.
Result<std::filesystem::path> tool_path(std::string_view engine, std::string_view name);

}  // namespace dbops::engine::launcher
