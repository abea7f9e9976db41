// PostgreSQL sessions over libpq, with dbops's own deadlines.
//
// Everything runs through libpq's non-blocking API: the connection is opened
// with PQconnectStartParams/PQconnectPoll and statements are sent with
// PQsendQueryParams/PQsendQuery, each followed by poll() on the socket until
// the Deadline. When the deadline passes the statement is cancelled (a cancel
// request on a separate thread, so that a frozen server cannot block the
// caller) and the session waits a short grace period for the server to
// confirm; if it does not, the connection is closed and is_open() turns
// false. Either way the call returns ErrorCode::kTimeout.
//
// The session is PgBouncer-friendly (transaction pooling): it only uses
// unnamed prepared statements and never changes session-level settings.
// Server-side timeouts, where wanted, go inside a transaction with SET LOCAL
// (see the health probe).
//
// A session is used by one thread at a time; cancel() may be called from any
// thread.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "engine/engine.hpp"
#include "engine/session.hpp"

namespace dbops::engine::postgres {

// What the health probe learnt about the connected role, kept on the session
// so that later probes need a single round trip.
struct RoleFacts {
  bool known = false;
  bool read_all_stats = false;      // member of pg_read_all_stats (pg_monitor) or superuser
  bool ls_waldir = false;           // EXECUTE on pg_ls_waldir()
  bool control_checkpoint = false;  // EXECUTE on pg_control_checkpoint()
};

// The slow fields of the health probe's last read of them on this session,
// which later probes may carry over (engine/probe.hpp, ProbeOptions). Kept
// for every open session, so kept small.
struct SlowFields {
  bool known = false;
  // In the order of the probe's slow columns (postgres_probe.cpp); nullopt
  // for NULL.
  std::array<std::optional<std::string>, 8> values;
  Deadline::Clock::time_point read_at;  // when they were read
  std::string started;                  // the server's start time then: a restart drops them
};

class PostgresSession : public SqlSession {
 public:
  // Runs one or more statements without parameters through the simple query
  // protocol (one round trip) and returns every statement's result in order.
  // The first failing statement's error is returned instead; note that a
  // failure inside an explicit BEGIN leaves the transaction aborted (see
  // transaction_idle()).
  virtual Result<std::vector<QueryResult>> exec_results(std::string_view sql,
                                                        Deadline deadline) = 0;
  // The server's version as a number (150008 for 15.8), from the connection's
  // start-up parameters: no round trip.
  virtual int server_version_num() const = 0;
  // Whether the session is outside any transaction block (not in BEGIN ...
  // COMMIT, nor in an aborted one).
  virtual bool transaction_idle() const = 0;
  // The target's name (or host:port) used as context in error messages.
  virtual const std::string& target_name() const = 0;
  // Cached facts for the health probe; empty (known = false) on a new session.
  virtual RoleFacts& role_facts() = 0;
  // The probe's slow fields; unknown on a new session.
  virtual SlowFields& slow_fields() = 0;
  // After LISTEN on this session: waits until a notification arrives or the
  // deadline passes, and returns the channels of the notifications that
  // arrived (empty when none did). kUnavailable when the connection broke.
  // Only on a direct connection: a pooler in transaction mode does not keep
  // a LISTEN.
  virtual Result<std::vector<std::string>> wait_notifications(Deadline deadline) = 0;
};

// Opens a session within options.connect_timeout. The target gives either a
// native connection string (URI or key=value, in `dsn`) or the structured
// fields; TLS options (sslmode, sslrootcert, sslcert, sslkey) come from
// target.tls, and a connection string may override them. Failures to reach
// the server, TLS and authentication failures are kUnavailable (with a hint);
// the deadline passing is kTimeout.
Result<std::unique_ptr<PostgresSession>> connect(const config::Target& target,
                                                 const ConnectOptions& options);

}  // namespace dbops::engine::postgres
