// MariaDB/MySQL sessions over MariaDB Connector/C's non-blocking API.
//
// Every network step (connect, TLS, authentication, query, result transfer)
// runs as a *_start/*_cont pair driven by poll() on the connection's socket
// until the caller's Deadline; the library's own timeouts are only a backstop.
// One exception: Connector/C runs the TLS handshake inside a single *_cont
// call on a blocking socket; while connecting, each blocking read and write
// is therefore bounded by the time left (SO_RCVTIMEO/SO_SNDTIMEO), so a server
// that stalls mid-handshake is cut at the deadline too.
//
// When a statement passes its deadline the session sends KILL QUERY <thread
// id> over a second short-lived connection, closes its own connection
// (is_open() turns false) and returns kTimeout; the KILL gets two seconds of
// its own, so against a frozen server the caller waits up to the deadline
// plus those two seconds. cancel() sends the same KILL
// QUERY from another thread; the statement then fails with kCancelled and the
// session stays usable. When the server cannot be reached for the KILL either,
// cancel() wakes the waiting thread, which drops the connection.
//
// query() with parameters uses a server-side prepared statement ('?'
// placeholders, values bound in the binary protocol, never spliced into the
// text); without parameters it uses the text protocol, one round trip, and
// when the text holds several statements (or a CALL answers with several
// results) it returns the first result that has columns. Values come back in
// their text form.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"
#include "core/secret.hpp"
#include "engine/session.hpp"

// Connector/C's handle, kept out of this header.
typedef struct st_mysql MYSQL;

namespace dbops::engine::mysql {

// Everything needed to open a connection, resolved from a config::Target.
struct ConnectParams {
  std::string target;  // the target's name, for messages
  std::string host;    // "" or "localhost": the Unix socket; "/path": that socket
  int port = 3306;
  std::string unix_socket;
  std::string user;
  Secret password;
  std::string database;
  // mode: disable, allow: plain text; "" or prefer: TLS when the server offers
  // it; require: TLS or no connection; verify-ca: the certificate chain checked
  // against ca_file (the system CAs and the host name when there is none);
  // verify-full: chain and host name. verify_server_cert, when set, decides
  // the host name check. cert_file/key_file: a client certificate.
  config::TlsOptions tls;
  std::string application_name = "dbops";

  // "127.0.0.1:3306" or the socket path, for messages.
  std::string address() const;
};

// Reads the structured fields or the DSN (mysql:// or mariadb://, with query
// parameters ssl-mode (dbops's mode names or MySQL's: REQUIRED,
// VERIFY_IDENTITY ...), ssl-ca, ssl-cert, ssl-key, ssl-verify-server-cert and
// socket) of a target; DSN parameters override the target's tls block. A
// host that is a path is the server's Unix socket.
Result<ConnectParams> connect_params(const config::Target& target);

// The linked library, "MariaDB Connector/C 3.3.x".
std::string client_library_version();

// The outcome of a batch of statements sent in one round trip.
struct BatchResult {
  // One result per statement that ran, in order.
  std::vector<QueryResult> results;
  // The server error of statement results.size(), which ended the batch;
  // the statements after it did not run.
  std::optional<Error> error;
};

class MysqlSession final : public SqlSession {
 public:
  // Use connect(); takes ownership of an open connection.
  MysqlSession(MYSQL* conn, ConnectParams params);
  ~MysqlSession() override;
  MysqlSession(const MysqlSession&) = delete;
  MysqlSession& operator=(const MysqlSession&) = delete;

  std::string_view engine() const override { return "mysql"; }
  const std::string& server_version() const override { return server_version_; }
  bool is_open() const override { return conn_ != nullptr; }
  void cancel() override;
  Status ping(Deadline deadline) override;

  using SqlSession::exec;
  using SqlSession::query;
  Result<QueryResult> query(std::string_view sql, std::span<const Param> params,
                            Deadline deadline) override;
  Status exec(std::string_view sql, Deadline deadline) override;

  // Sends statements (no parameters) as one multi-statement text query and
  // collects each one's result. A server error ends the batch (the server
  // runs nothing after it) and comes back in BatchResult::error; a transport
  // failure or the deadline is the Result's error.
  Result<BatchResult> batch(std::span<const std::string> statements, Deadline deadline);

  // The server's id for this connection (what KILL takes).
  unsigned long thread_id() const { return thread_id_; }
  const ConnectParams& params() const { return params_; }

  // Statements the server refused on this session (no privilege, no such
  // table), so that the probe does not send them every round; a refusal is
  // forgotten after kRefusalMemory, so a later GRANT is picked up.
  static constexpr std::chrono::minutes kRefusalMemory{10};
  const Error* refused(const std::string& sql) const;
  void remember_refused(const std::string& sql, Error error);

 private:
  // Runs one text query and appends every statement's result to results (when
  // given); the first server error ends it and lands in server_error.
  Status run_text(std::string_view sql, Deadline deadline, std::string_view step,
                  std::vector<QueryResult>* results, std::optional<Error>* server_error);
  Result<QueryResult> run_prepared(std::string_view sql, std::span<const Param> params,
                                   Deadline deadline);
  // The error for the connection's last failure; closes the session when the
  // connection is gone.
  Error last_error(std::string_view step);
  // On a passed deadline: KILL QUERY over a side connection, then close.
  Error timed_out(std::string_view step, Deadline deadline);
  // Drops the connection without waiting for the server.
  void abort_connection();

  MYSQL* conn_;
  ConnectParams params_;
  std::string server_version_;
  unsigned long thread_id_ = 0;
  // cancel() writes here to wake a waiting poll() when KILL could not be sent.
  int wake_fd_ = -1;
  std::atomic<bool> cancel_requested_{false};
  std::chrono::steady_clock::time_point op_started_;
  struct Refusal {
    Error error;
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Refusal, std::less<>> refused_;
};

// Opens a session within the deadline.
Result<std::unique_ptr<MysqlSession>> connect(const ConnectParams& params, Deadline deadline);

// Sends KILL QUERY <thread_id> (or KILL CONNECTION) over a new connection
// opened with params; used on deadline and by cancel().
Status kill(const ConnectParams& params, unsigned long thread_id, bool connection,
            Deadline deadline);

}  // namespace dbops::engine::mysql
