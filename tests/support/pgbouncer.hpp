// PgBouncer (Debian's pgbouncer) in transaction pooling mode in front of a
// test's PostgreSQL instance, on a free loopback port, for as long as the
// object lives. It runs as the user the instance's files belong to when the
// tests run as root (PgBouncer refuses root), with its files in a directory
// of its own: the configuration, the user list (the instance's superuser and
// password, mode 0600) and its log.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/background_process.hpp"
#include "core/result.hpp"
#include "engine/launcher/launcher.hpp"
#include "support/support.hpp"

namespace dbops::testing {

class PgBouncer {
 public:
  // Starts it and waits until it accepts connections (a SELECT 1 through it).
  static Result<std::unique_ptr<PgBouncer>> start(const engine::launcher::Instance& pg,
                                                  int pool_size = 20);
  ~PgBouncer();
  PgBouncer(const PgBouncer&) = delete;
  PgBouncer& operator=(const PgBouncer&) = delete;

  int port() const { return port_; }
  // postgresql://superuser:password@127.0.0.1:port/database through PgBouncer.
  std::string dsn(std::string_view database) const;
  // Its log, for failure messages.
  std::string log() const;

 private:
  PgBouncer(const engine::launcher::Instance& pg, TempDir dir, int port)
      : pg_(pg), dir_(std::move(dir)), port_(port) {}

  const engine::launcher::Instance& pg_;
  TempDir dir_;
  int port_ = 0;
  BackgroundProcess process_;
};

}  // namespace dbops::testing
