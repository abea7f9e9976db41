// Server instances shared by the tests of one integration test binary.
//
// shared_postgres(), shared_mariadb() and shared_redis() start their server
// (engine/launcher) on first use, once per test binary, and stop it when the
// binary exits. When the start fails, the calling test fails with the
// launcher's error (which carries the server log's tail) and so does every
// later caller; a test never skips for want of a server.
//
// Each instance is a fresh server owned by the whole binary: tests that change
// global state (users, settings) must undo it or use their own database/key
// prefix. Connect as the superuser over TCP with instance.target(name) or
// host()/port()/superuser()/superuser_password():
//   PostgreSQL  user "dbops", database "postgres", scram-sha-256 password
//   MariaDB     user "root" (also a "repl" replication user in the replicated
//               pair), no default database
//   Redis       user "default" (requirepass), database 0
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "engine/launcher/launcher.hpp"

namespace dbops::testing {

engine::launcher::Instance& shared_postgres();
engine::launcher::Instance& shared_mariadb();
engine::launcher::Instance& shared_redis();

// Command-line clients against an instance, as its superuser over TCP (the
// password in the environment, never in argv). They return stdout without its
// final newline, or an error carrying the client's stderr.

// psql -X -A -t: one line per row, columns separated by '|'. `sql` may hold
// several statements.
Result<std::string> psql(const engine::launcher::Instance& pg, std::string_view sql,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30),
                         std::string_view database = "postgres");
// mariadb --batch --skip-column-names: one line per row, tab-separated; `sql`
// goes through stdin.
Result<std::string> mariadb(const engine::launcher::Instance& db, std::string_view sql,
                            std::chrono::milliseconds timeout = std::chrono::seconds(30));
// redis-cli <args...> (raw output); redis-cli has no connect timeout, so
// `timeout` bounds the whole run.
Result<std::string> redis_cli(const engine::launcher::Instance& redis,
                              const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace dbops::testing
