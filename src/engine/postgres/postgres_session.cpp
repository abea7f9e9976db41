#include "engine/postgres/postgres_session.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "core/log.hpp"
#include "core/secret.hpp"

namespace dbops::engine::postgres {
namespace {

using Clock = Deadline::Clock;

// How long the server gets to confirm a cancel request before the connection
// is closed instead.
constexpr std::chrono::milliseconds kCancelGrace{1'500};

// libpq messages span lines ("...failed: FATAL:  password ...\n\tIs the server
// running ...?"); dbops's messages are one line, its parts joined by "; ".
std::string one_line(std::string_view text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string line;
    bool space = false;
    for (const char c : text.substr(start, end - start)) {
      if (c == ' ' || c == '\t' || c == '\r') {
        space = !line.empty();
        continue;
      }
      if (space) line += ' ';
      space = false;
      line += c;
    }
    if (!line.empty()) out += (out.empty() ? "" : "; ") + line;
    start = end + 1;
  }
  for (const std::string_view prefix : {"FATAL: ", "ERROR: "}) {
    for (auto at = out.find(prefix); at != std::string::npos; at = out.find(prefix, at)) {
      out.erase(at, prefix.size());
    }
  }
  return redact::scrub(out);
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string seconds_text(std::chrono::nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

Error with_where(Error error, const std::string& name, std::string_view step) {
  error.with_context(std::string(step)).with_context(name);
  return error;
}

// ---- connection failures ----------------------------------------------------

std::string connect_hint(std::string_view msg, bool needs_password) {
  if (needs_password || contains(msg, "no password supplied")) {
    return "set the target's password (or a password in its connection string).";
  }
  if (contains(msg, "authentication failed") || contains(msg, "password")) {
    return "check the target's user and password, and the server's pg_hba.conf.";
  }
  if (contains(msg, "no pg_hba.conf entry")) {
    return "allow this client's address, user and database in the server's pg_hba.conf.";
  }
  if (contains(msg, "role \"") && contains(msg, "does not exist")) {
    return "check the target's user; the role does not exist on the server.";
  }
  if (contains(msg, "database \"") && contains(msg, "does not exist")) {
    return "check the target's database name.";
  }
  if (contains(msg, "too many") || contains(msg, "remaining connection slots")) {
    return "the server is at max_connections; close idle sessions or raise max_connections.";
  }
  if (contains(msg, "starting up") || contains(msg, "shutting down") ||
      contains(msg, "recovery mode")) {
    return "the server is starting or stopping; retry in a moment.";
  }
  if (contains(msg, "SSL") || contains(msg, "certificate")) {
    return "check the target's tls settings (mode, ca_file, cert_file, key_file) and the "
           "server's ssl configuration.";
  }
  if (contains(msg, "translate host name") || contains(msg, "Name or service not known")) {
    return "check the target's host name.";
  }
  if (contains(msg, "refused") || contains(msg, "No such file or directory")) {
    return "check that the server is running and listens on the target's host and port.";
  }
  return "check that the server is reachable from here and the target's settings are right.";
}

// ---- statement failures -----------------------------------------------------

ErrorCode code_for_sqlstate(std::string_view state) {
  if (state.size() != 5) return ErrorCode::kInternal;
  const std::string_view cls = state.substr(0, 2);
  if (state == "42501") return ErrorCode::kUnavailable;  // insufficient_privilege
  if (state == "57014") return ErrorCode::kCancelled;    // query_canceled (refined by caller)
  if (state == "55P03") return ErrorCode::kConflict;     // lock_not_available
  if (state == "25006") return ErrorCode::kUnavailable;  // read_only_sql_transaction
  if (state == "3D000") return ErrorCode::kNotFound;     // invalid_catalog_name
  if (cls == "42" || cls == "22" || cls == "2F" || cls == "34" || cls == "3F" || cls == "P0" ||
      cls == "25" || cls == "26" || cls == "27" || cls == "44" || cls == "21") {
    return ErrorCode::kInvalidArgument;
  }
  if (cls == "28" || cls == "08" || cls == "53" || cls == "57" || cls == "3D") {
    return ErrorCode::kUnavailable;
  }
  if (cls == "23" || cls == "40") return ErrorCode::kConflict;
  if (cls == "0A") return ErrorCode::kUnsupported;
  if (cls == "58") return ErrorCode::kIo;
  if (cls == "XX")
    return state == "XX001" || state == "XX002" ? ErrorCode::kCorrupt : ErrorCode::kInternal;
  return ErrorCode::kInternal;
}

std::string sqlstate_hint(std::string_view state) {
  if (state.starts_with("28")) return "check the target's user and password.";
  if (state == "42501") {
    return "grant the privilege to the target's user, or use a user that has it (for probes: "
           "GRANT pg_monitor).";
  }
  if (state == "25006") return "the server is read-only (a replica?); run this on the primary.";
  if (state == "55P03") return "another session holds a conflicting lock; retry later.";
  if (state == "53300") return "the server is at max_connections; close idle sessions.";
  return {};
}

// Rows, columns and the affected-row count of one result.
QueryResult to_query_result(const PGresult* res) {
  QueryResult out;
  const int ncols = PQnfields(res);
  const int nrows = PQntuples(res);
  out.columns.reserve(static_cast<std::size_t>(ncols));
  for (int c = 0; c < ncols; ++c) out.columns.emplace_back(PQfname(res, c));
  out.rows.reserve(static_cast<std::size_t>(nrows));
  for (int r = 0; r < nrows; ++r) {
    auto& row = out.rows.emplace_back();
    row.reserve(static_cast<std::size_t>(ncols));
    for (int c = 0; c < ncols; ++c) {
      if (PQgetisnull(res, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(res, r, c), static_cast<std::size_t>(PQgetlength(res, r, c))));
      }
    }
  }
  const char* affected = PQcmdTuples(const_cast<PGresult*>(res));
  out.affected_rows = affected && *affected ? std::strtoll(affected, nullptr, 10) : 0;
  return out;
}

// Parameters in PostgreSQL's text format; nullptr for NULL. Types are left to
// the server to infer from the statement, as for literals.
class TextParams {
 public:
  explicit TextParams(std::span<const Param> params) {
    storage_.reserve(params.size());
    for (const auto& p : params) {
      if (std::holds_alternative<std::nullptr_t>(p)) {
        storage_.emplace_back();
      } else if (const auto* n = std::get_if<std::int64_t>(&p)) {
        storage_.emplace_back(std::to_string(*n));
      } else if (const auto* d = std::get_if<double>(&p)) {
        storage_.emplace_back(double_text(*d));
      } else {
        storage_.emplace_back(std::get<std::string>(p));
      }
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      values_.push_back(std::holds_alternative<std::nullptr_t>(params[i]) ? nullptr
                                                                          : storage_[i].c_str());
    }
  }
  int count() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.empty() ? nullptr : values_.data(); }

 private:
  static std::string double_text(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    return ec == std::errc() ? std::string(buf, end) : std::to_string(d);
  }

  std::vector<std::string> storage_;
  std::vector<const char*> values_;
};

// The cancel key of a connection, shared with cancel requests in flight, which
// may outlive the session: PQcancel blocks until the server closes the cancel
// connection, forever if the server is frozen, so it never runs on the
// caller's thread.
struct CancelKey {
  explicit CancelKey(PGcancel* c) : cancel(c) {}
  ~CancelKey() { PQfreeCancel(cancel); }
  CancelKey(const CancelKey&) = delete;
  CancelKey& operator=(const CancelKey&) = delete;

  PGcancel* cancel;
  std::atomic<bool> in_flight{false};
};

// Sends a cancel request from a detached thread; at most one per connection
// at a time. Returns false when none could be started.
bool send_cancel(const std::shared_ptr<CancelKey>& key) {
  if (!key || !key->cancel) return false;
  if (key->in_flight.exchange(true)) return true;
  try {
    std::thread([key] {
      char err[256] = {};
      if (!PQcancel(key->cancel, err, sizeof err)) {
        log::debug("postgres: cancel request failed", {{"error", one_line(err)}});
      }
      key->in_flight = false;
    }).detach();
    return true;
  } catch (const std::exception& e) {
    key->in_flight = false;
    log::warn("postgres: cannot start a cancel request", {{"error", e.what()}});
    return false;
  }
}

class Session final : public PostgresSession {
 public:
  Session(PGconn* conn, std::string name) : conn_(conn), name_(std::move(name)) {
    PQsetNoticeProcessor(conn_, &Session::on_notice, &name_);
    key_ = std::make_shared<CancelKey>(PQgetCancel(conn_));
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    version_num_ = PQserverVersion(conn_);
    const char* v = PQparameterStatus(conn_, "server_version");
    version_ = v ? v : "";
    // "15.8 (Debian 15.8-1.pgdg120+1)" -> "15.8"
    if (const auto space = version_.find(' '); space != std::string::npos) version_.resize(space);
  }
  ~Session() override {
    if (conn_) PQfinish(conn_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::string_view engine() const override { return "postgres"; }
  const std::string& server_version() const override { return version_; }
  int server_version_num() const override { return version_num_; }
  const std::string& target_name() const override { return name_; }
  RoleFacts& role_facts() override { return role_facts_; }
  SlowFields& slow_fields() override { return slow_fields_; }
  bool is_open() const override { return open_ && conn_ && PQstatus(conn_) == CONNECTION_OK; }
  bool transaction_idle() const override {
    return conn_ && PQtransactionStatus(conn_) == PQTRANS_IDLE;
  }

  void cancel() override {
    if (!busy_) return;
    cancel_requested_ = true;
    send_cancel(key_);
    if (wake_fd_ >= 0) {
      const std::uint64_t one = 1;
      [[maybe_unused]] const auto n = ::write(wake_fd_, &one, sizeof one);
    }
  }

  Status ping(Deadline deadline) override {
    DBOPS_TRY(run("ping", deadline, [this] { return PQsendQuery(conn_, "SELECT 1"); }));
    return ok();
  }

  using SqlSession::exec;
  using SqlSession::query;

  Result<QueryResult> query(std::string_view sql, std::span<const Param> params,
                            Deadline deadline) override {
    DBOPS_TRY(check_no_nul(sql, params, "query"));
    const std::string text(sql);
    const TextParams values(params);
    DBOPS_ASSIGN(auto results, run("query", deadline, [&] {
                   return PQsendQueryParams(conn_, text.c_str(), values.count(), nullptr,
                                            values.values(), nullptr, nullptr, 0);
                 }));
    if (results.empty()) return QueryResult{};
    return std::move(results.back());
  }

  Status exec(std::string_view sql, Deadline deadline) override {
    DBOPS_TRY(exec_results(sql, deadline));
    return ok();
  }

  Result<std::vector<QueryResult>> exec_results(std::string_view sql, Deadline deadline) override {
    DBOPS_TRY(check_no_nul(sql, {}, "exec"));
    const std::string text(sql);
    return run("exec", deadline, [&] { return PQsendQuery(conn_, text.c_str()); });
  }

  Result<std::vector<std::string>> wait_notifications(Deadline deadline) override {
    constexpr std::string_view kStep = "listen";
    if (!open_ || !conn_) return closed_error(kStep);
    Exchange x{.step = kStep, .deadline = deadline, .budget = deadline.at() - Clock::now()};
    std::vector<std::string> channels;
    const auto drain = [&] {
      while (PGnotify* n = PQnotifies(conn_)) {
        channels.emplace_back(n->relname);
        PQfreemem(n);
      }
    };
    // Notifications may have come with an earlier result.
    drain();
    while (channels.empty() && !deadline.expired()) {
      pollfd fd{};
      fd.fd = PQsocket(conn_);
      fd.events = POLLIN;
      if (fd.fd < 0) return lost(x, "no socket");
      const int rc = ::poll(&fd, 1, deadline.remaining_ms());
      if (rc < 0) {
        if (errno == EINTR) continue;
        return lost(x, "poll failed");
      }
      if (rc == 0) break;
      if (!PQconsumeInput(conn_)) return lost(x, "cannot read");
      drain();
      if (PQstatus(conn_) == CONNECTION_BAD) return lost(x, "connection closed");
    }
    return channels;
  }

 private:
  // One exchange: what happened so far and the deadline now in force (the
  // caller's, then the grace period after a cancel).
  struct Exchange {
    std::string_view step;
    Deadline deadline;
    std::chrono::nanoseconds budget;
    bool timed_out = false;
    bool cancelled = false;
  };

  // PostgreSQL text cannot hold a NUL byte, and libpq would cut the text there.
  Status check_no_nul(std::string_view sql, std::span<const Param> params,
                      std::string_view step) const {
    bool nul = sql.find('\0') != std::string_view::npos;
    for (const auto& p : params) {
      if (const auto* t = std::get_if<std::string>(&p)) {
        nul = nul || t->find('\0') != std::string::npos;
      }
    }
    if (!nul) return ok();
    return fail(with_where(make_error(ErrorCode::kInvalidArgument,
                                      "the statement or a text parameter contains a nul byte"),
                           name_, step));
  }

  static void on_notice(void* arg, const char* message) {
    const auto* name = static_cast<const std::string*>(arg);
    log::debug("postgres notice", {{"target", *name}, {"notice", one_line(message)}});
  }

  // Sends with `send` and reads every result until the server is ready again.
  template <typename Send>
  Result<std::vector<QueryResult>> run(std::string_view step, Deadline deadline, Send send) {
    if (!open_ || !conn_) return closed_error(step);
    Exchange x{.step = step, .deadline = deadline, .budget = deadline.at() - Clock::now()};
    if (deadline.expired()) {
      return fail(with_where(make_error(ErrorCode::kTimeout, "no time left before the deadline"),
                             name_, step));
    }
    reset_cancel();
    busy_ = true;
    struct Idle {
      std::atomic<bool>& busy;
      ~Idle() { busy = false; }
    } idle{busy_};

    if (!send()) {
      // libpq refused the statement itself (too many parameters, ...).
      if (PQstatus(conn_) == CONNECTION_OK) {
        return fail(with_where(
            make_error(ErrorCode::kInvalidArgument, one_line(PQerrorMessage(conn_))), name_, step));
      }
      return lost(x, "cannot send");
    }
    // Non-blocking mode: the statement may not have left yet.
    while (true) {
      const int rc = PQflush(conn_);
      if (rc == 0) break;
      if (rc < 0) return lost(x, "cannot send");
      DBOPS_TRY(wait(x, true));
    }

    std::vector<QueryResult> results;
    std::optional<Error> first_error;
    while (true) {
      while (PQisBusy(conn_)) DBOPS_TRY(wait(x, false));
      PGresult* res = PQgetResult(conn_);
      if (!res) break;
      const ExecStatusType status = PQresultStatus(res);
      switch (status) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
        case PGRES_SINGLE_TUPLE:
          results.push_back(to_query_result(res));
          break;
        case PGRES_COPY_OUT: {
          PQclear(res);
          DBOPS_TRY(skip_copy_out(x));
          if (!first_error) first_error = unsupported_copy(step);
          continue;
        }
        case PGRES_COPY_IN:
          PQclear(res);
          // Ends the copy with an error; 0 means libpq's buffer is full for now.
          while (true) {
            const int rc = PQputCopyEnd(conn_, "dbops does not send copy data through a query");
            if (rc > 0) break;
            if (rc < 0) return lost(x, "cannot end copy");
            DBOPS_TRY(wait(x, true));
          }
          if (!first_error) first_error = unsupported_copy(step);
          while (true) {
            const int rc = PQflush(conn_);
            if (rc == 0) break;
            if (rc < 0) return lost(x, "cannot send");
            DBOPS_TRY(wait(x, true));
          }
          continue;
        case PGRES_COPY_BOTH:
          PQclear(res);
          close_connection();
          return fail(with_where(
              make_error(ErrorCode::kUnsupported, "replication protocol is not supported here"),
              name_, step));
        default:
          if (!first_error) first_error = result_error(res, x);
          break;
      }
      PQclear(res);
    }
    if (PQstatus(conn_) == CONNECTION_BAD) open_ = false;
    if (x.timed_out) return timeout_error(x);
    if (x.cancelled) return cancelled_error(x);
    if (first_error) return fail(std::move(*first_error));
    return results;
  }

  // Waits for the socket (readable, or writable when `write`) or a cancel()
  // wake-up, and hands what arrived to libpq. When the deadline passes it
  // sends a cancel request and allows a grace period; when that passes too,
  // it closes the connection and fails.
  Status wait(Exchange& x, bool write) {
    while (true) {
      pollfd fds[2] = {};
      fds[0].fd = PQsocket(conn_);
      fds[0].events = static_cast<short>(POLLIN | (write ? POLLOUT : 0));
      fds[1].fd = wake_fd_;
      fds[1].events = POLLIN;
      if (fds[0].fd < 0) return lost(x, "no socket");
      const int rc = ::poll(fds, 2, x.deadline.remaining_ms());
      if (rc < 0) {
        if (errno == EINTR) continue;
        return lost(x, "poll failed");
      }
      if (fds[1].revents & POLLIN) {
        reset_wake();
        if (!x.timed_out && !x.cancelled) {
          x.cancelled = true;
          x.deadline = Deadline::after(kCancelGrace);
        }
      }
      if (fds[0].revents & (POLLIN | POLLERR | POLLHUP)) {
        if (!PQconsumeInput(conn_)) return lost(x, "cannot read");
      }
      if (x.deadline.expired()) {
        if (!x.timed_out && !x.cancelled) {
          x.timed_out = true;
          x.deadline = Deadline::after(kCancelGrace);
          send_cancel(key_);
          continue;
        }
        // The server did not confirm the cancel: give up on the connection.
        close_connection();
        return x.timed_out ? timeout_error(x) : cancelled_error(x);
      }
      if (rc > 0 && (fds[0].revents || fds[1].revents)) return ok();
    }
  }

  Status skip_copy_out(Exchange& x) {
    while (true) {
      char* buf = nullptr;
      const int n = PQgetCopyData(conn_, &buf, 1);
      if (buf) PQfreemem(buf);
      if (n > 0) continue;
      if (n == -1) return ok();
      if (n == -2) return lost(x, "copy failed");
      DBOPS_TRY(wait(x, false));
    }
  }

  Error result_error(const PGresult* res, const Exchange& x) {
    const char* state_field = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const std::string_view state = state_field ? state_field : "";
    const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char* detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    const char* server_hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    const char* position = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
    std::string message = one_line(primary ? primary : PQresultErrorMessage(res));
    if (position) message += " at character " + std::string(position);
    if (detail) message += ": " + one_line(detail);
    ErrorCode code = ErrorCode::kInternal;
    if (!state.empty()) {
      message += " (sqlstate " + std::string(state) + ")";
      code = code_for_sqlstate(state);
      // The server ends the connection after these (08xxx, 57P01 shutdown ...).
      if (state.starts_with("08") || state.starts_with("57P")) open_ = false;
    } else if (PQstatus(conn_) == CONNECTION_BAD) {
      code = ErrorCode::kUnavailable;
    }
    if (state == "57014") {
      // Our own deadline or the server's statement_timeout: a timeout; cancel(): cancelled.
      code = cancel_requested_ && !x.timed_out ? ErrorCode::kCancelled : ErrorCode::kTimeout;
    }
    Error error = with_where(make_error(code, std::move(message)), name_, x.step);
    error.hint = server_hint ? one_line(server_hint) : sqlstate_hint(state);
    return error;
  }

  Error unsupported_copy(std::string_view step) const {
    return with_where(make_error(ErrorCode::kUnsupported,
                                 "copy to or from the client is not supported through a query"),
                      name_, step);
  }

  std::unexpected<Error> timeout_error(const Exchange& x) const {
    Error e =
        with_where(make_error(ErrorCode::kTimeout, "no answer within " + seconds_text(x.budget)),
                   name_, x.step);
    if (!is_open()) {
      e.hint =
          "the server did not confirm the cancel request in time, so the connection was "
          "closed; check that the server is not frozen or overloaded.";
    }
    return std::unexpected(std::move(e));
  }

  std::unexpected<Error> cancelled_error(const Exchange& x) const {
    return fail(with_where(make_error(ErrorCode::kCancelled, "cancelled"), name_, x.step));
  }

  std::unexpected<Error> closed_error(std::string_view step) const {
    Error e =
        with_where(make_error(ErrorCode::kUnavailable, "the connection is closed"), name_, step);
    e.hint = "open a new session.";
    return std::unexpected(std::move(e));
  }

  // The connection failed mid-exchange: it is closed for good.
  std::unexpected<Error> lost(const Exchange& x, std::string_view what) {
    std::string detail = conn_ ? one_line(PQerrorMessage(conn_)) : std::string();
    if (detail.empty()) detail = std::string(what);
    open_ = false;
    Error e = with_where(make_error(ErrorCode::kUnavailable, "connection lost: " + detail), name_,
                         x.step);
    e.hint = "the server restarted or closed the connection; retry on a new session.";
    return std::unexpected(std::move(e));
  }

  void close_connection() {
    open_ = false;
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

  void reset_wake() {
    std::uint64_t n = 0;
    while (::read(wake_fd_, &n, sizeof n) > 0) {
    }
  }

  void reset_cancel() {
    cancel_requested_ = false;
    if (wake_fd_ >= 0) reset_wake();
  }

  PGconn* conn_;
  std::string name_;
  std::string version_;
  int version_num_ = 0;
  std::shared_ptr<CancelKey> key_;
  int wake_fd_ = -1;
  std::atomic<bool> open_{true};
  std::atomic<bool> busy_{false};
  std::atomic<bool> cancel_requested_{false};
  RoleFacts role_facts_;
  SlowFields slow_fields_;
};

std::string display_name(const config::Target& t) {
  if (!t.name.empty()) return t.name;
  if (!t.host.empty()) return t.host + ":" + std::to_string(t.port ? t.port : 5432);
  return "postgres";
}

}  // namespace

Result<std::unique_ptr<PostgresSession>> connect(const config::Target& target,
                                                 const ConnectOptions& options) {
  const std::string name = display_name(target);
  const auto where = [&](Error e) {
    return std::unexpected(with_where(std::move(e), name, "connect"));
  };
  const Deadline deadline = Deadline::after(options.connect_timeout);

  // Keywords in order: later ones win, so a connection string (last) may
  // override the defaults and TLS settings before it.
  std::vector<std::pair<const char*, std::string>> params;
  params.emplace_back("application_name", options.application_name);
  params.emplace_back("keepalives", "1");
  params.emplace_back("keepalives_idle", "30");
  params.emplace_back("keepalives_interval", "10");
  params.emplace_back("keepalives_count", "3");
  if (!target.tls.mode.empty()) params.emplace_back("sslmode", target.tls.mode);
  if (!target.tls.ca_file.empty()) params.emplace_back("sslrootcert", target.tls.ca_file);
  if (!target.tls.cert_file.empty()) params.emplace_back("sslcert", target.tls.cert_file);
  if (!target.tls.key_file.empty()) params.emplace_back("sslkey", target.tls.key_file);
  int expand_dbname = 0;
  if (!target.dsn.empty()) {
    // The password inside the string must never be echoed back in an error.
    redact::register_secret(redact::dsn_password(target.dsn.reveal()));
    params.emplace_back("dbname", target.dsn.reveal());
    expand_dbname = 1;
  } else {
    if (!target.host.empty()) params.emplace_back("host", target.host);
    if (target.port) params.emplace_back("port", std::to_string(target.port));
    if (!target.user.empty()) params.emplace_back("user", target.user);
    if (!target.password.empty()) params.emplace_back("password", target.password.reveal());
    if (!target.database.empty()) params.emplace_back("dbname", target.database);
  }
  // A later dbname is a plain name and overrides the one above.
  if (!options.database.empty()) params.emplace_back("dbname", options.database);
  std::vector<const char*> keywords, values;
  for (const auto& [k, v] : params) {
    keywords.push_back(k);
    values.push_back(v.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);

  PGconn* raw = PQconnectStartParams(keywords.data(), values.data(), expand_dbname);
  if (!raw) return where(make_error(ErrorCode::kInternal, "libpq is out of memory"));
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(raw, &PQfinish);
  const auto failed = [&] {
    const std::string msg = one_line(PQerrorMessage(conn.get()));
    Error e = make_error(ErrorCode::kUnavailable, msg.empty() ? "connection failed" : msg);
    e.hint = connect_hint(msg, PQconnectionNeedsPassword(conn.get()) != 0);
    return where(std::move(e));
  };
  if (PQstatus(conn.get()) == CONNECTION_BAD) return failed();

  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  while (status != PGRES_POLLING_OK) {
    if (status == PGRES_POLLING_FAILED) return failed();
    if (status == PGRES_POLLING_ACTIVE) {
      status = PQconnectPoll(conn.get());
      continue;
    }
    pollfd fd{};
    fd.fd = PQsocket(conn.get());
    fd.events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (fd.fd < 0) return failed();
    const int rc = ::poll(&fd, 1, deadline.remaining_ms());
    if (rc < 0) {
      if (errno == EINTR) continue;
      return where(errno_error("poll", errno));
    }
    if (rc == 0 && deadline.expired()) {
      Error e = make_error(ErrorCode::kTimeout,
                           "no answer within " + seconds_text(options.connect_timeout));
      e.hint =
          "check that the server is up, not overloaded or frozen, and that no firewall "
          "drops the connection.";
      return where(std::move(e));
    }
    status = PQconnectPoll(conn.get());
  }
  if (PQsetnonblocking(conn.get(), 1) != 0) return failed();

  auto session = std::make_unique<Session>(conn.release(), name);
  session->set_default_timeout(options.statement_timeout);
  log::debug("postgres: connected",
             {{"target", name}, {"server_version", session->server_version()}});
  return std::unique_ptr<PostgresSession>(std::move(session));
}

}  // namespace dbops::engine::postgres
