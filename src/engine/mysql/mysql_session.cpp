#include "engine/mysql/mysql_session.hpp"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <mysql.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <utility>

#include "core/sigpipe_guard.hpp"
#include "core/uri.hpp"

namespace dbops::engine::mysql {
namespace {

// Server and client error numbers this file acts on (mysqld_error.h, errmsg.h).
constexpr unsigned kErrDbAccessDenied = 1044;
constexpr unsigned kErrAccessDenied = 1045;
constexpr unsigned kErrBadDb = 1049;
constexpr unsigned kErrBadTable = 1051;
constexpr unsigned kErrServerShutdown = 1053;
constexpr unsigned kErrDupEntry = 1062;
constexpr unsigned kErrParse = 1064;
constexpr unsigned kErrDiskFull = 1021;
constexpr unsigned kErrConCount = 1040;
constexpr unsigned kErrRecordFileFull = 1114;
constexpr unsigned kErrHostBlocked = 1129;
constexpr unsigned kErrHostNotPrivileged = 1130;
constexpr unsigned kErrTableAccessDenied = 1142;
constexpr unsigned kErrColumnAccessDenied = 1143;
constexpr unsigned kErrNoSuchTable = 1146;
constexpr unsigned kErrTooManyUserConnections = 1203;
constexpr unsigned kErrLockWaitTimeout = 1205;
constexpr unsigned kErrLockDeadlock = 1213;
constexpr unsigned kErrSpecificAccessDenied = 1227;
constexpr unsigned kErrOptionPreventsStatement = 1290;
constexpr unsigned kErrQueryInterrupted = 1317;
constexpr unsigned kErrProcAccessDenied = 1370;
constexpr unsigned kErrAccessDeniedNoPassword = 1698;
constexpr unsigned kErrReadOnlyMode = 1836;
constexpr unsigned kErrConnectionKilled = 1927;          // MariaDB
constexpr unsigned kErrStatementTimeout = 1969;          // MariaDB max_statement_time
constexpr unsigned kErrMysqlExecutionTime = 3024;        // MySQL max_execution_time
constexpr unsigned kErrClientInteractionTimeout = 4031;  // MySQL 8
constexpr unsigned kCrConnectionError = 2002;
constexpr unsigned kCrConnHostError = 2003;
constexpr unsigned kCrUnknownHost = 2005;
constexpr unsigned kCrServerGone = 2006;
constexpr unsigned kCrServerLost = 2013;
constexpr unsigned kCrSslConnectionError = 2026;
constexpr unsigned kCrServerLostExtended = 2055;

// How long the side connection that sends KILL QUERY may take.
constexpr std::chrono::milliseconds kKillTimeout{2'000};
// How long closing a prepared statement may take.
constexpr std::chrono::milliseconds kStmtCloseTimeout{2'000};

void library_init() {
  static std::once_flag once;
  // mysql_init() would do this lazily, but not thread-safely.
  std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

std::string lower_first(std::string text) {
  // "Access denied ..." -> "access denied ...", but "SSL ..." stays.
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[0])) &&
      std::islower(static_cast<unsigned char>(text[1]))) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  while (!text.empty() && (text.back() == '.' || text.back() == '\n')) text.pop_back();
  return text;
}

std::string seconds_text(std::chrono::steady_clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::max(0.0, std::chrono::duration<double>(d).count()));
  return buf;
}

// What a session whose connection broke (or was closed on a deadline) says.
Error closed_error() {
  return make_error(ErrorCode::kUnavailable, "connection is closed")
      .with_hint("an earlier failure closed this session's connection; open a new session");
}

Error with_target(Error error, std::string_view step, const ConnectParams& p) {
  if (!step.empty()) error.with_context(std::string(step));
  if (!p.target.empty()) error.with_context(p.target);
  return error;
}

bool is_connection_lost(unsigned err) {
  return err == kCrServerGone || err == kCrServerLost || err == kCrServerLostExtended ||
         err == kErrConnectionKilled || err == kErrServerShutdown ||
         err == kErrClientInteractionTimeout ||
         // Any other client-side failure (out of sync, network read/write, out of
         // memory) leaves the protocol state unknown: drop the connection.
         (err >= 2000 && err < 3000) || (err >= 5000 && err < 6000);
}

Error coded(ErrorCode code, std::string message, std::string hint = {}) {
  Error e = make_error(code, std::move(message));
  e.hint = std::move(hint);
  return e;
}

// Maps a library or server error onto dbops's codes with a hint when the fix
// is known.
Error classify(unsigned err, std::string_view sqlstate, std::string message,
               const ConnectParams& p) {
  message = lower_first(redact::scrub(message));
  const std::string who = "'" + p.user + "'";
  switch (err) {
    case kErrAccessDenied:
    case kErrAccessDeniedNoPassword:
      return coded(ErrorCode::kUnavailable, message,
                   "check the user and password configured for target " + p.target);
    case kErrDbAccessDenied:
      return coded(ErrorCode::kUnavailable, message,
                   "grant user " + who + " access to database '" + p.database +
                       "' or fix the target's database");
    case kErrBadDb:
      return coded(
          ErrorCode::kUnavailable, message,
          "check the target's database name; the server has no database '" + p.database + "'");
    case kErrHostNotPrivileged:
      return coded(ErrorCode::kUnavailable, message,
                   "create the account for the host dbops connects from, or connect through "
                   "an allowed host");
    case kErrHostBlocked:
      return coded(ErrorCode::kUnavailable, message,
                   "run FLUSH HOSTS on the server and check max_connect_errors");
    case kErrConCount:
    case kErrTooManyUserConnections:
      return coded(ErrorCode::kUnavailable, message,
                   "the server is out of connections; raise max_connections (or the user's "
                   "limit) or close idle sessions");
    case kCrConnectionError:
    case kCrConnHostError:
      return coded(ErrorCode::kUnavailable, "cannot connect to " + p.address() + ": " + message,
                   "check that a MariaDB or MySQL server listens on " + p.address() +
                       " and that no firewall blocks dbops");
    case kCrUnknownHost:
      return coded(ErrorCode::kUnavailable, message, "check the target's host name");
    case kCrSslConnectionError:
      return coded(ErrorCode::kUnavailable, message,
                   "check the target's tls settings (mode, ca_file, cert_file, key_file) and "
                   "that the server has TLS enabled");
    case kErrTableAccessDenied:
    case kErrColumnAccessDenied:
    case kErrSpecificAccessDenied:
    case kErrProcAccessDenied:
      return coded(ErrorCode::kUnavailable, "permission denied: " + message,
                   "grant user " + who + " the privilege the statement needs");
    case kErrParse:
      return coded(ErrorCode::kInvalidArgument, message);
    case kErrNoSuchTable:
    case kErrBadTable:
      return coded(ErrorCode::kNotFound, message);
    case kErrLockWaitTimeout:
    case kErrLockDeadlock:
    case kErrDupEntry:
      return coded(ErrorCode::kConflict, message);
    case kErrQueryInterrupted:
      return coded(ErrorCode::kCancelled, message);
    case kErrStatementTimeout:
    case kErrMysqlExecutionTime:
      return coded(ErrorCode::kTimeout, message);
    case kErrOptionPreventsStatement:
    case kErrReadOnlyMode:
      return coded(ErrorCode::kUnavailable, message,
                   "the server is read-only (a replica?); run writes on the primary");
    case kErrDiskFull:
    case kErrRecordFileFull:
      return coded(ErrorCode::kIo, message);
    default:
      break;
  }
  if (is_connection_lost(err)) {
    return coded(ErrorCode::kUnavailable, message,
                 "the connection to " + p.address() + " broke; the next attempt reconnects");
  }
  // SQLSTATE class 42: syntax error or access rule violation; 22: data
  // exception; 23: integrity constraint violation.
  if (sqlstate.starts_with("42") || sqlstate.starts_with("22") || sqlstate.starts_with("HY")) {
    return coded(ErrorCode::kInvalidArgument, message);
  }
  if (sqlstate.starts_with("23")) return coded(ErrorCode::kConflict, message);
  if (sqlstate.starts_with("08")) return coded(ErrorCode::kUnavailable, message);
  return coded(ErrorCode::kInternal, message);
}

enum class Wait { kReady, kDeadline, kWoken };

// Waits for what the library asked for (status) on its socket fd, or for
// wake_fd, until the deadline; library_timeout_ms is the library's own
// timeout when status includes MYSQL_WAIT_TIMEOUT. On kReady, events is the
// _cont argument.
Wait wait_for(int fd, int status, unsigned library_timeout_ms, Deadline deadline, int wake_fd,
              int& events) {
  pollfd fds[2] = {};
  nfds_t count = 1;
  fds[0].fd = fd;
  if (status & MYSQL_WAIT_READ) fds[0].events |= POLLIN;
  if (status & MYSQL_WAIT_WRITE) fds[0].events |= POLLOUT;
  if (status & MYSQL_WAIT_EXCEPT) fds[0].events |= POLLPRI;
  if (wake_fd >= 0) {
    fds[1].fd = wake_fd;
    fds[1].events = POLLIN;
    count = 2;
  }
  while (true) {
    if (deadline.expired()) return Wait::kDeadline;
    int timeout = deadline.remaining_ms();
    bool library_timeout = false;
    if (status & MYSQL_WAIT_TIMEOUT) {
      // The library's own timeout only counts when it comes before ours.
      if (library_timeout_ms < static_cast<unsigned>(timeout)) {
        timeout = static_cast<int>(library_timeout_ms);
        library_timeout = true;
      }
    }
    const int rc = ::poll(fds, count, timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      // Let the library find out what is wrong with its socket.
      events = status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
      return Wait::kReady;
    }
    if (rc == 0) {
      if (library_timeout) {
        events = MYSQL_WAIT_TIMEOUT;
        return Wait::kReady;
      }
      continue;  // the deadline check at the top decides
    }
    if (count == 2 && (fds[1].revents & POLLIN)) return Wait::kWoken;
    events = 0;
    if (fds[0].revents & POLLIN) events |= MYSQL_WAIT_READ;
    if (fds[0].revents & POLLOUT) events |= MYSQL_WAIT_WRITE;
    if (fds[0].revents & POLLPRI) events |= MYSQL_WAIT_EXCEPT;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      events |= status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_EXCEPT);
    }
    if (events != 0) return Wait::kReady;
  }
}

// The socket of an established connection, or -1. mysql_get_socket() falls
// back to the handle of the last connect attempt, which dangles once the
// library has closed the connection (its number may by then belong to another
// connection): only the established connection's handle is trusted here.
int established_socket(MYSQL* m) {
  if (m->net.pvio == nullptr) return -1;
  return static_cast<int>(mysql_get_socket(m));
}

// Makes a socket non-blocking. Connector/C puts it back into blocking mode
// once TCP is connected; plain reads still pass MSG_DONTWAIT, but over TLS a
// blocking SSL_read would sit inside a *_start/_cont call and defeat the
// deadline.
void make_nonblocking(int fd) {
  if (fd < 0) return;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && !(flags & O_NONBLOCK)) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Bounds each blocking read and write on the socket by the time left (0: no
// bound). Used while connecting: Connector/C runs the TLS handshake inside
// one *_cont call on the blocking socket, and on a non-blocking one it would
// wait for each handshake reply only "connect_timeout" milliseconds (it
// passes seconds where milliseconds are meant), failing on any link slower
// than that.
void bound_blocking_io(int fd, std::optional<Deadline> deadline) {
  if (fd < 0) return;
  timeval tv{};
  if (deadline) {
    // A little past the deadline, so that a read it cuts ends after it.
    const int ms = std::max(1, deadline->remaining_ms()) + 10;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
  }
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Empties OpenSSL's error queue for this thread. Connector/C asks
// SSL_get_error() why SSL_read/SSL_write stopped without clearing the queue
// first, so an error left by an earlier failure on this thread (an aborted
// TLS connection) turns the next connection's harmless "want read" into a
// lost connection. libcrypto is loaded with libmariadb; it is looked up at
// run time because dbops does not link OpenSSL itself.
void clear_tls_errors() {
  using ClearFn = void (*)();
  static const ClearFn clear = reinterpret_cast<ClearFn>(::dlsym(RTLD_DEFAULT, "ERR_clear_error"));
  if (clear) clear();
}

// Closes a connection without waiting for the server: the socket is shut
// down first, so the COM_QUIT that mysql_close() writes fails at once.
void close_now(MYSQL* m) {
  SigpipeGuard guard;
  clear_tls_errors();
  mariadb_cancel(m);  // shuts the established connection's socket down, if any
  mysql_close(m);
}

// Closes a healthy connection (COM_QUIT is a few bytes into the socket buffer).
void close_politely(MYSQL* m) {
  SigpipeGuard guard;
  clear_tls_errors();
  make_nonblocking(established_socket(m));
  mysql_close(m);
}

enum class Drive { kDone, kDeadline, kWoken };

// kConnect: the socket stays blocking with bounded I/O (see
// bound_blocking_io); kSession: it is kept non-blocking.
enum class Phase { kConnect, kSession };

// Runs one non-blocking library call to its end: start() begins it, cont(events)
// continues it; both return the library's wait status (0 when done). When the
// deadline passes or wake_fd fires, the connection's socket is shut down and
// the call is run to its (failing) end, so that nothing is left suspended
// inside the library and the handle can be closed without waiting.
template <typename Start, typename Cont>
Drive drive(MYSQL* m, Deadline deadline, int wake_fd, Start&& start, Cont&& cont,
            Phase phase = Phase::kSession) {
  SigpipeGuard guard;
  if (phase == Phase::kSession) make_nonblocking(established_socket(m));
  clear_tls_errors();
  int status = start();
  while (status != 0) {
    // Suspended, the library is waiting on a live socket (the connection's,
    // or while connecting the one it connects).
    const int fd = static_cast<int>(mysql_get_socket(m));
    int events = 0;
    const Wait w = wait_for(fd, status, mysql_get_timeout_value_ms(m), deadline, wake_fd, events);
    if (w != Wait::kReady) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
      for (int i = 0; status != 0 && i < 64; ++i) status = cont(status);
      clear_tls_errors();
      return w == Wait::kDeadline ? Drive::kDeadline : Drive::kWoken;
    }
    if (phase == Phase::kSession) {
      make_nonblocking(fd);
    } else {
      bound_blocking_io(fd, deadline);
    }
    clear_tls_errors();
    status = cont(events);
  }
  clear_tls_errors();
  return Drive::kDone;
}

// Maps the engine-neutral TLS options onto Connector/C's. Connector/C 3.3
// asks for TLS when MYSQL_OPT_SSL_ENFORCE is set but carries on in plain text
// when the server offers none, which is "prefer"; "require" and the verify
// modes are checked after connecting (see open_connection). A CA file makes
// the library verify the chain; MYSQL_OPT_SSL_VERIFY_SERVER_CERT adds the
// host name (and the system CAs when no CA file is given).
void apply_tls(MYSQL* m, const config::TlsOptions& tls) {
  my_bool use_tls = tls.mode != "disable" && tls.mode != "allow";
  mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &use_tls);
  if (!use_tls) return;
  if (!tls.ca_file.empty()) mysql_options(m, MYSQL_OPT_SSL_CA, tls.ca_file.c_str());
  if (!tls.cert_file.empty()) mysql_options(m, MYSQL_OPT_SSL_CERT, tls.cert_file.c_str());
  if (!tls.key_file.empty()) mysql_options(m, MYSQL_OPT_SSL_KEY, tls.key_file.c_str());
  bool verify = tls.mode == "verify-full" || (tls.mode == "verify-ca" && tls.ca_file.empty());
  if (tls.verify_server_cert) verify = *tls.verify_server_cert;
  my_bool v = verify ? 1 : 0;
  mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &v);
}

bool tls_required(const config::TlsOptions& tls) {
  return tls.mode == "require" || tls.mode == "verify-ca" || tls.mode == "verify-full";
}

// Opens a connection within the deadline; the handle is the caller's.
Result<MYSQL*> open_connection(const ConnectParams& p, Deadline deadline) {
  library_init();
  MYSQL* m = mysql_init(nullptr);
  if (!m) return fail(with_target(make_error(ErrorCode::kInternal, "out of memory"), "connect", p));
  const auto started = std::chrono::steady_clock::now();
  mysql_options(m, MYSQL_OPT_NONBLOCK, nullptr);
  // A backstop: the deadline, rounded up to the whole seconds the option takes.
  const int remaining = deadline.remaining_ms();
  unsigned int backstop = remaining >= INT_MAX / 2
                              ? 3600u
                              : std::max(1u, static_cast<unsigned>((remaining + 999) / 1000));
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &backstop);
  mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  unsigned int no_local_infile = 0;
  mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &no_local_infile);
  if (!p.application_name.empty()) {
    mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", p.application_name.c_str());
  }
  apply_tls(m, p.tls);

  const char* host = p.host.empty() ? nullptr : p.host.c_str();
  const char* socket = p.unix_socket.empty() ? nullptr : p.unix_socket.c_str();
  if (socket) host = "localhost";
  const char* db = p.database.empty() ? nullptr : p.database.c_str();
  // Never nullptr: the library would read MYSQL_PWD from the environment.
  const char* password = p.password.reveal().c_str();
  const unsigned long flags = CLIENT_MULTI_STATEMENTS | CLIENT_MULTI_RESULTS;
  MYSQL* ret = nullptr;
  const Drive d = drive(
      m, deadline, -1,
      [&] {
        return mysql_real_connect_start(&ret, m, host, p.user.c_str(), password, db,
                                        static_cast<unsigned>(p.port), socket, flags);
      },
      [&](int events) { return mysql_real_connect_cont(&ret, m, events); }, Phase::kConnect);
  // A failure at the deadline (the library's backstop fired inside the TLS
  // handshake) is the deadline's.
  if (d != Drive::kDone || (!ret && deadline.expired())) {
    close_now(m);
    return fail(with_target(
        make_error(ErrorCode::kTimeout, "no answer from " + p.address() + " within " +
                                            seconds_text(deadline.at() - started))
            .with_hint("check that the server at " + p.address() +
                       " is not overloaded or frozen, and that nothing on the path drops "
                       "traffic"),
        "connect", p));
  }
  if (!ret) {
    Error e = classify(mysql_errno(m), mysql_sqlstate(m), mysql_error(m), p);
    close_now(m);
    return fail(with_target(std::move(e), "connect", p));
  }
  // From here on the socket is non-blocking and drive() waits for it.
  bound_blocking_io(established_socket(m), std::nullopt);
  make_nonblocking(established_socket(m));
  if (tls_required(p.tls) && mysql_get_ssl_cipher(m) == nullptr) {
    close_now(m);
    return fail(with_target(
        make_error(ErrorCode::kUnavailable, "tls mode " + p.tls.mode +
                                                " requires TLS but the connection to " +
                                                p.address() + " is not encrypted")
            .with_hint("enable TLS on the server (ssl_cert, ssl_key) or lower the target's "
                       "tls mode"),
        "connect", p));
  }
  return m;
}

// Copies a text-protocol result into a QueryResult.
QueryResult read_result(MYSQL_RES* res) {
  QueryResult out;
  const unsigned ncols = mysql_num_fields(res);
  const MYSQL_FIELD* fields = mysql_fetch_fields(res);
  out.columns.reserve(ncols);
  for (unsigned c = 0; c < ncols; ++c) out.columns.emplace_back(fields[c].name);
  out.rows.reserve(static_cast<std::size_t>(mysql_num_rows(res)));
  // The result is stored: fetching reads memory, not the socket.
  while (MYSQL_ROW row = mysql_fetch_row(res)) {
    const unsigned long* lengths = mysql_fetch_lengths(res);
    auto& r = out.rows.emplace_back();
    r.reserve(ncols);
    for (unsigned c = 0; c < ncols; ++c) {
      if (row[c] == nullptr) {
        r.emplace_back(std::nullopt);
      } else {
        r.emplace_back(std::string(row[c], lengths[c]));
      }
    }
  }
  out.affected_rows = static_cast<std::int64_t>(mysql_num_rows(res));
  return out;
}

// A DSN's ssl-mode: dbops's names, or MySQL's (REQUIRED, VERIFY_IDENTITY ...).
std::string tls_mode_from_dsn(std::string_view value) {
  std::string mode;
  for (const char c : value) {
    mode += c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (mode == "disabled") return "disable";
  if (mode == "preferred") return "prefer";
  if (mode == "required") return "require";
  if (mode == "verify-identity") return "verify-full";
  return mode;
}

}  // namespace

std::string ConnectParams::address() const {
  if (!unix_socket.empty()) return unix_socket;
  if (host.empty() || host == "localhost") return "the local socket";
  return host + ":" + std::to_string(port);
}

Result<ConnectParams> connect_params(const config::Target& t) {
  ConnectParams p;
  p.target = t.name;
  p.host = t.host;
  p.port = t.port;
  p.user = t.user;
  p.password = t.password;
  p.database = t.database;
  p.tls = t.tls;
  if (!t.dsn.empty()) {
    auto uri = parse_uri(t.dsn.reveal());
    if (!uri) {
      Error e = std::move(uri).error();
      if (!t.name.empty()) e.with_context(t.name);
      return fail(std::move(e));
    }
    if (uri->scheme != "mysql" && uri->scheme != "mariadb") {
      return fail(with_target(make_error(ErrorCode::kConfig, "dsn scheme " + uri->scheme +
                                                                 " is not mysql:// or mariadb://"),
                              "", p));
    }
    p.host = uri->host;
    p.port = uri->port;
    p.user = uri->user;
    p.password = Secret(uri->password);
    p.database = uri->path;
    for (const auto& [key, value] : uri->query) {
      if (key == "ssl-mode" || key == "sslmode" || key == "tls") {
        p.tls.mode = tls_mode_from_dsn(value);
      } else if (key == "ssl-ca") {
        p.tls.ca_file = value;
      } else if (key == "ssl-cert") {
        p.tls.cert_file = value;
      } else if (key == "ssl-key") {
        p.tls.key_file = value;
      } else if (key == "ssl-verify-server-cert") {
        p.tls.verify_server_cert = value == "1" || value == "true" || value == "on";
      } else if (key == "socket") {
        p.unix_socket = value;
      } else {
        return fail(with_target(
            make_error(ErrorCode::kConfig, "unknown dsn parameter " + key)
                .with_hint("use ssl-mode, ssl-ca, ssl-cert, ssl-key, ssl-verify-server-cert "
                           "or socket"),
            "", p));
      }
    }
  }
  // A host that is a path names the server's Unix socket.
  if (!p.host.empty() && p.host.front() == '/') {
    p.unix_socket = p.host;
    p.host = "localhost";
  }
  if (p.port == 0) p.port = 3306;
  static constexpr std::string_view kModes[] = {"",        "disable",   "allow",      "prefer",
                                                "require", "verify-ca", "verify-full"};
  if (std::find(std::begin(kModes), std::end(kModes), p.tls.mode) == std::end(kModes)) {
    return fail(
        with_target(make_error(ErrorCode::kConfig, "unknown tls mode " + p.tls.mode)
                        .with_hint("use disable, allow, prefer, require, verify-ca or verify-full"),
                    "", p));
  }
  return p;
}

std::string client_library_version() {
  return std::string("MariaDB Connector/C ") + mysql_get_client_info();
}

MysqlSession::MysqlSession(MYSQL* conn, ConnectParams params)
    : conn_(conn), params_(std::move(params)) {
  server_version_ = mysql_get_server_info(conn_);
  thread_id_ = mysql_thread_id(conn_);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

MysqlSession::~MysqlSession() {
  if (conn_) {
    close_politely(conn_);
    conn_ = nullptr;
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void MysqlSession::abort_connection() {
  if (!conn_) return;
  close_now(conn_);
  conn_ = nullptr;
}

void MysqlSession::cancel() {
  if (thread_id_ == 0) return;
  cancel_requested_ = true;
  if (!kill(params_, thread_id_, /*connection=*/false, Deadline::after(kKillTimeout))) {
    // The server is out of reach: make the waiting thread drop the connection.
    const std::uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }
}

Error MysqlSession::last_error(std::string_view step) {
  const unsigned err = mysql_errno(conn_);
  Error e = classify(err, mysql_sqlstate(conn_), mysql_error(conn_), params_);
  if (err == kErrQueryInterrupted && cancel_requested_) {
    e.message = "statement cancelled";
  }
  if (is_connection_lost(err)) abort_connection();
  return with_target(std::move(e), step, params_);
}

Error MysqlSession::timed_out(std::string_view step, Deadline deadline) {
  // The statement may still run on the server: stop it there too.
  (void)kill(params_, thread_id_, /*connection=*/false, Deadline::after(kKillTimeout));
  abort_connection();
  return with_target(
      make_error(ErrorCode::kTimeout,
                 "no answer within " + seconds_text(deadline.at() - op_started_))
          .with_hint("the statement was killed and the connection closed; raise the timeout "
                     "or check what blocks the server"),
      step, params_);
}

const Error* MysqlSession::refused(const std::string& sql) const {
  const auto it = refused_.find(sql);
  if (it == refused_.end()) return nullptr;
  if (std::chrono::steady_clock::now() - it->second.at > kRefusalMemory) return nullptr;
  return &it->second.error;
}

void MysqlSession::remember_refused(const std::string& sql, Error error) {
  refused_.insert_or_assign(sql, Refusal{std::move(error), std::chrono::steady_clock::now()});
}

Status MysqlSession::ping(Deadline deadline) {
  if (!conn_) {
    return fail(with_target(closed_error(), "ping", params_));
  }
  op_started_ = std::chrono::steady_clock::now();
  int rc = 0;
  const Drive d = drive(
      conn_, deadline, wake_fd_, [&] { return mysql_ping_start(&rc, conn_); },
      [&](int events) { return mysql_ping_cont(&rc, conn_, events); });
  if (d == Drive::kDeadline) return fail(timed_out("ping", deadline));
  if (d == Drive::kWoken) {
    abort_connection();
    return fail(with_target(make_error(ErrorCode::kCancelled, "cancelled"), "ping", params_));
  }
  if (rc != 0) return fail(last_error("ping"));
  return ok();
}

Status MysqlSession::run_text(std::string_view sql, Deadline deadline, std::string_view step,
                              std::vector<QueryResult>* results,
                              std::optional<Error>* server_error) {
  if (!conn_) {
    return fail(with_target(closed_error(), step, params_));
  }
  op_started_ = std::chrono::steady_clock::now();
  cancel_requested_ = false;
  std::uint64_t drained = 0;
  if (wake_fd_ >= 0) (void)!::read(wake_fd_, &drained, sizeof drained);

  // Turns an aborted drive into the error it stands for.
  auto aborted = [&](Drive d) -> Error {
    if (d == Drive::kDeadline) return timed_out(step, deadline);
    abort_connection();
    return with_target(make_error(ErrorCode::kCancelled,
                                  "statement cancelled; the server did "
                                  "not answer, connection closed"),
                       step, params_);
  };

  int rc = 0;
  Drive d = drive(
      conn_, deadline, wake_fd_,
      [&] {
        return mysql_real_query_start(&rc, conn_, sql.data(),
                                      static_cast<unsigned long>(sql.size()));
      },
      [&](int events) { return mysql_real_query_cont(&rc, conn_, events); });
  if (d != Drive::kDone) return fail(aborted(d));
  while (true) {
    if (rc != 0) {
      Error e = last_error(step);
      if (!conn_ || !server_error) return fail(std::move(e));
      *server_error = std::move(e);
      return ok();
    }
    if (mysql_field_count(conn_) > 0) {
      MYSQL_RES* res = nullptr;
      d = drive(
          conn_, deadline, wake_fd_, [&] { return mysql_store_result_start(&res, conn_); },
          [&](int events) { return mysql_store_result_cont(&res, conn_, events); });
      if (d != Drive::kDone) {
        if (res) mysql_free_result(res);
        return fail(aborted(d));
      }
      if (!res) {
        rc = 1;
        continue;
      }
      if (results) results->push_back(read_result(res));
      mysql_free_result(res);
    } else if (results) {
      QueryResult r;
      r.affected_rows = static_cast<std::int64_t>(mysql_affected_rows(conn_));
      results->push_back(std::move(r));
    }
    if (!mysql_more_results(conn_)) return ok();
    d = drive(
        conn_, deadline, wake_fd_, [&] { return mysql_next_result_start(&rc, conn_); },
        [&](int events) { return mysql_next_result_cont(&rc, conn_, events); });
    if (d != Drive::kDone) return fail(aborted(d));
    // mysql_next_result: 0 another result, -1 none, >0 error.
    if (rc < 0) return ok();
  }
}

Status MysqlSession::exec(std::string_view sql, Deadline deadline) {
  std::optional<Error> server_error;
  DBOPS_TRY(run_text(sql, deadline, "exec", nullptr, &server_error));
  if (server_error) {
    // The server stopped at this statement; the connection is in sync again.
    return fail(std::move(*server_error));
  }
  return ok();
}

Result<BatchResult> MysqlSession::batch(std::span<const std::string> statements,
                                        Deadline deadline) {
  std::string sql;
  for (const auto& s : statements) {
    if (!sql.empty()) sql += ";\n";
    sql += s;
  }
  BatchResult out;
  DBOPS_TRY(run_text(sql, deadline, "query", &out.results, &out.error));
  return out;
}

Result<QueryResult> MysqlSession::query(std::string_view sql, std::span<const Param> params,
                                        Deadline deadline) {
  if (!params.empty()) return run_prepared(sql, params, deadline);
  std::vector<QueryResult> results;
  std::optional<Error> server_error;
  DBOPS_TRY(run_text(sql, deadline, "query", &results, &server_error));
  if (server_error) return fail(std::move(*server_error));
  if (results.empty()) return QueryResult{};
  // A CALL or several statements: the first result with rows, else the first.
  for (auto& r : results) {
    if (!r.columns.empty()) return std::move(r);
  }
  return std::move(results.front());
}

Result<QueryResult> MysqlSession::run_prepared(std::string_view sql, std::span<const Param> params,
                                               Deadline deadline) {
  constexpr std::string_view kStep = "query";
  if (!conn_) {
    return fail(with_target(closed_error(), kStep, params_));
  }
  op_started_ = std::chrono::steady_clock::now();
  cancel_requested_ = false;
  std::uint64_t drained = 0;
  if (wake_fd_ >= 0) (void)!::read(wake_fd_, &drained, sizeof drained);

  MYSQL_STMT* stmt = mysql_stmt_init(conn_);
  if (!stmt) return fail(last_error(kStep));
  // Closes the statement: over the wire while the connection is up (bounded),
  // else only its memory (the library detached it when the connection closed).
  struct Closer {
    MysqlSession* self;
    MYSQL_STMT* stmt;
    ~Closer() {
      if (self->conn_) {
        my_bool rc = 0;
        const Drive d = drive(
            self->conn_, Deadline::after(kStmtCloseTimeout), -1,
            [&] { return mysql_stmt_close_start(&rc, stmt); },
            [&](int events) { return mysql_stmt_close_cont(&rc, stmt, events); });
        if (d != Drive::kDone) {
          self->abort_connection();
        }
      } else {
        mysql_stmt_close(stmt);
      }
    }
  } closer{this, stmt};

  auto stmt_error = [&]() -> Error {
    const unsigned err = mysql_stmt_errno(stmt);
    Error e = classify(err, mysql_stmt_sqlstate(stmt), mysql_stmt_error(stmt), params_);
    if (err == kErrQueryInterrupted && cancel_requested_) e.message = "statement cancelled";
    if (is_connection_lost(err)) abort_connection();
    return with_target(std::move(e), kStep, params_);
  };
  auto aborted = [&](Drive d) -> Error {
    if (d == Drive::kDeadline) return timed_out(kStep, deadline);
    abort_connection();
    return with_target(make_error(ErrorCode::kCancelled,
                                  "statement cancelled; the server did "
                                  "not answer, connection closed"),
                       kStep, params_);
  };

  int rc = 0;
  Drive d = drive(
      conn_, deadline, wake_fd_,
      [&] {
        return mysql_stmt_prepare_start(&rc, stmt, sql.data(),
                                        static_cast<unsigned long>(sql.size()));
      },
      [&](int events) { return mysql_stmt_prepare_cont(&rc, stmt, events); });
  if (d != Drive::kDone) return fail(aborted(d));
  if (rc != 0) return fail(stmt_error());

  const unsigned long expected = mysql_stmt_param_count(stmt);
  if (expected != params.size()) {
    return fail(
        with_target(make_error(ErrorCode::kInvalidArgument,
                               "statement has " + std::to_string(expected) + " placeholders but " +
                                   std::to_string(params.size()) + " parameters were given"),
                    kStep, params_));
  }
  // Bound in the binary protocol: the values never become part of the SQL text.
  std::vector<MYSQL_BIND> binds(params.size());
  std::vector<long long> ints(params.size());
  std::vector<double> doubles(params.size());
  std::vector<unsigned long> lengths(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    MYSQL_BIND& b = binds[i];
    std::memset(&b, 0, sizeof b);
    if (std::holds_alternative<std::nullptr_t>(params[i])) {
      b.buffer_type = MYSQL_TYPE_NULL;
    } else if (const auto* n = std::get_if<std::int64_t>(&params[i])) {
      ints[i] = *n;
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &ints[i];
    } else if (const auto* x = std::get_if<double>(&params[i])) {
      doubles[i] = *x;
      b.buffer_type = MYSQL_TYPE_DOUBLE;
      b.buffer = &doubles[i];
    } else {
      const auto& s = std::get<std::string>(params[i]);
      lengths[i] = static_cast<unsigned long>(s.size());
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = const_cast<char*>(s.data());
      b.buffer_length = lengths[i];
      b.length = &lengths[i];
    }
  }
  if (!binds.empty() && mysql_stmt_bind_param(stmt, binds.data())) return fail(stmt_error());

  d = drive(
      conn_, deadline, wake_fd_, [&] { return mysql_stmt_execute_start(&rc, stmt); },
      [&](int events) { return mysql_stmt_execute_cont(&rc, stmt, events); });
  if (d != Drive::kDone) return fail(aborted(d));
  if (rc != 0) return fail(stmt_error());

  QueryResult out;
  MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
  if (!meta) {
    out.affected_rows = static_cast<std::int64_t>(mysql_stmt_affected_rows(stmt));
  } else {
    const unsigned ncols = mysql_num_fields(meta);
    const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    for (unsigned c = 0; c < ncols; ++c) out.columns.emplace_back(fields[c].name);
    mysql_free_result(meta);

    d = drive(
        conn_, deadline, wake_fd_, [&] { return mysql_stmt_store_result_start(&rc, stmt); },
        [&](int events) { return mysql_stmt_store_result_cont(&rc, stmt, events); });
    if (d != Drive::kDone) return fail(aborted(d));
    if (rc != 0) return fail(stmt_error());

    // Every column is fetched in its text form; longer values are read again
    // with mysql_stmt_fetch_column once their length is known.
    constexpr unsigned long kInitial = 256;
    std::vector<MYSQL_BIND> out_binds(ncols);
    std::vector<std::vector<char>> buffers(ncols, std::vector<char>(kInitial));
    std::vector<unsigned long> out_lengths(ncols);
    std::vector<my_bool> nulls(ncols), errors(ncols);
    for (unsigned c = 0; c < ncols; ++c) {
      MYSQL_BIND& b = out_binds[c];
      std::memset(&b, 0, sizeof b);
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = buffers[c].data();
      b.buffer_length = kInitial;
      b.length = &out_lengths[c];
      b.is_null = &nulls[c];
      b.error = &errors[c];
    }
    if (ncols > 0 && mysql_stmt_bind_result(stmt, out_binds.data())) return fail(stmt_error());
    // The rows are stored client-side: fetching reads memory, not the socket.
    while (true) {
      const int f = mysql_stmt_fetch(stmt);
      if (f == MYSQL_NO_DATA) break;
      if (f == 1) return fail(stmt_error());
      auto& row = out.rows.emplace_back();
      row.reserve(ncols);
      for (unsigned c = 0; c < ncols; ++c) {
        if (nulls[c]) {
          row.emplace_back(std::nullopt);
          continue;
        }
        const unsigned long len = out_lengths[c];
        if (len <= kInitial) {
          row.emplace_back(std::string(buffers[c].data(), len));
          continue;
        }
        std::string value(len, '\0');
        MYSQL_BIND big;
        std::memset(&big, 0, sizeof big);
        unsigned long big_length = 0;
        big.buffer_type = MYSQL_TYPE_STRING;
        big.buffer = value.data();
        big.buffer_length = len;
        big.length = &big_length;
        if (mysql_stmt_fetch_column(stmt, &big, c, 0)) return fail(stmt_error());
        value.resize(std::min(big_length, len));
        row.emplace_back(std::move(value));
      }
    }
    out.affected_rows = static_cast<std::int64_t>(out.rows.size());
  }
  // A CALL answers with more results: read past them to keep the protocol in sync.
  while (mysql_stmt_more_results(stmt)) {
    mysql_stmt_free_result(stmt);
    d = drive(
        conn_, deadline, wake_fd_, [&] { return mysql_stmt_next_result_start(&rc, stmt); },
        [&](int events) { return mysql_stmt_next_result_cont(&rc, stmt, events); });
    if (d != Drive::kDone) return fail(aborted(d));
    if (rc > 0) return fail(stmt_error());
    if (rc < 0) break;
    if (mysql_stmt_field_count(stmt) > 0) {
      d = drive(
          conn_, deadline, wake_fd_, [&] { return mysql_stmt_store_result_start(&rc, stmt); },
          [&](int events) { return mysql_stmt_store_result_cont(&rc, stmt, events); });
      if (d != Drive::kDone) return fail(aborted(d));
    }
  }
  return out;
}

Result<std::unique_ptr<MysqlSession>> connect(const ConnectParams& params, Deadline deadline) {
  DBOPS_ASSIGN(MYSQL * conn, open_connection(params, deadline));
  return std::make_unique<MysqlSession>(conn, params);
}

Status kill(const ConnectParams& params, unsigned long thread_id, bool connection,
            Deadline deadline) {
  DBOPS_ASSIGN(MYSQL * m, open_connection(params, deadline));
  const std::string sql =
      std::string(connection ? "KILL CONNECTION " : "KILL QUERY ") + std::to_string(thread_id);
  int rc = 0;
  const Drive d = drive(
      m, deadline, -1,
      [&] {
        return mysql_real_query_start(&rc, m, sql.data(), static_cast<unsigned long>(sql.size()));
      },
      [&](int events) { return mysql_real_query_cont(&rc, m, events); });
  Status result = ok();
  if (d != Drive::kDone) {
    result =
        fail(with_target(make_error(ErrorCode::kTimeout, "no answer to " + sql), "kill", params));
  } else if (rc != 0) {
    result = fail(with_target(classify(mysql_errno(m), mysql_sqlstate(m), mysql_error(m), params),
                              "kill", params));
  }
  if (d == Drive::kDone) {
    close_politely(m);
  } else {
    close_now(m);
  }
  return result;
}

}  // namespace dbops::engine::mysql
