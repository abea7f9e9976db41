#include "engine/redis/redis_session.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/log.hpp"
#include "core/sigpipe_guard.hpp"
#include "core/uri.hpp"

namespace dbops::engine::redis {
namespace {

using Clock = std::chrono::steady_clock;

std::string lowercase(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

std::string format_seconds(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  return buf;
}

double seconds_until(Deadline deadline) {
  if (deadline.at() == Clock::time_point::max()) return 0;
  return std::chrono::duration<double>(deadline.at() - Clock::now()).count();
}

// The first word of an error reply: "ERR", "NOAUTH", "WRONGPASS" ...
std::string_view error_prefix(std::string_view text) {
  return text.substr(0, text.find(' '));
}

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:  // REDIS_REPLY_NIL
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

// What the current network step is, for messages.
struct Step {
  std::string_view stage;  // "connect" or "command"
  std::string what;        // "", or the command name
  double budget_seconds;   // the deadline's distance when the step started
};

class RedisSession final : public CommandSession {
 public:
  RedisSession(redisContext* ctx, ConnectParams params) : ctx_(ctx), params_(std::move(params)) {}
  ~RedisSession() override { close(); }
  RedisSession(const RedisSession&) = delete;
  RedisSession& operator=(const RedisSession&) = delete;

  std::string_view engine() const override { return "redis"; }
  const std::string& server_version() const override { return version_; }
  bool is_open() const override { return open_.load(); }

  void cancel() override {
    std::lock_guard lock(mu_);
    if (ctx_ && running_.load()) {
      cancel_requested_ = true;
      ::shutdown(ctx_->fd, SHUT_RDWR);
    }
  }

  Status ping(Deadline deadline) override {
    static const std::string kPing = "PING";
    DBOPS_ASSIGN(Reply reply, command(std::span(&kPing, 1), deadline));
    if (auto e = reply_error(reply, "PING")) return fail(in_context(std::move(*e), "ping"));
    return ok();
  }

  Result<Reply> command(std::span<const std::string> argv, Deadline deadline) override {
    Step step{"command", argv.empty() ? std::string() : argv[0], seconds_until(deadline)};
    if (argv.empty()) {
      return fail(in_context(make_error(ErrorCode::kInvalidArgument, "empty command"), "command"));
    }
    if (!open_) {
      return fail(
          in_context(make_error(ErrorCode::kUnavailable, "the connection is closed"), "command")
              .with_hint("reconnect; the connection broke or timed out earlier"));
    }
    if (log::enabled(log::Level::kTrace) && step.what != "AUTH") {
      log::trace("redis command", {{"target", params_.target_name}, {"command", step.what}});
    }
    cancel_requested_ = false;
    running_ = true;
    struct Running {
      std::atomic<bool>& flag;
      ~Running() { flag = false; }
    } running{running_};
    DBOPS_TRY(append(argv, step));
    DBOPS_TRY(write_all(deadline, step));
    return read_reply(deadline, step);
  }

  // TCP (or Unix socket) connect, then AUTH, SELECT, CLIENT SETNAME and INFO
  // server pipelined in one round trip.
  Status handshake(const ConnectOptions& options, Deadline deadline) {
    Step step{"connect", "", seconds_until(deadline)};
    DBOPS_TRY(wait_connected(deadline, step));
    enum class Kind { kAuth, kSelect, kSetName, kInfo };
    std::vector<Kind> sent;
    const bool auth = !params_.password.empty() || !params_.user.empty();
    if (auth) {
      std::vector<std::string> argv{"AUTH"};
      if (!params_.user.empty()) argv.push_back(params_.user);
      argv.push_back(params_.password.reveal());
      DBOPS_TRY(append(argv, step));
      sent.push_back(Kind::kAuth);
    }
    if (params_.db != 0) {
      DBOPS_TRY(append(std::vector<std::string>{"SELECT", std::to_string(params_.db)}, step));
      sent.push_back(Kind::kSelect);
    }
    std::string name = options.application_name;
    for (char& ch : name) {
      if (ch <= ' ' || ch > '~') ch = '-';
    }
    if (!name.empty()) {
      DBOPS_TRY(append(std::vector<std::string>{"CLIENT", "SETNAME", name}, step));
      sent.push_back(Kind::kSetName);
    }
    DBOPS_TRY(append(std::vector<std::string>{"INFO", "server"}, step));
    sent.push_back(Kind::kInfo);
    DBOPS_TRY(write_all(deadline, step));
    for (Kind kind : sent) {
      DBOPS_ASSIGN(Reply reply, read_reply(deadline, step));
      if (reply.type == Reply::Type::kError) {
        DBOPS_TRY(check_connect_error(reply.str, kind == Kind::kAuth, auth));
        if (kind == Kind::kSelect) {
          return fail(in_context(make_error(ErrorCode::kConfig,
                                            "cannot select database " + std::to_string(params_.db) +
                                                ": " + redact::scrub(reply.str)),
                                 "connect",
                                 "check the target's database number (databases in redis.conf; "
                                 "an ACL user also needs +select)"));
        }
        // CLIENT SETNAME and INFO may be denied to a least-privileged user.
        continue;
      }
      if (kind == Kind::kInfo && reply.type == Reply::Type::kString) {
        const auto pos = reply.str.find("redis_version:");
        if (pos != std::string::npos) {
          const auto start = pos + std::strlen("redis_version:");
          version_ = reply.str.substr(start, reply.str.find_first_of("\r\n", start) - start);
        }
      }
    }
    return ok();
  }

 private:
  Error in_context(Error e, std::string_view stage, std::string hint = {}) const {
    if (!hint.empty() && e.hint.empty()) e.hint = std::move(hint);
    e.message = redact::scrub(e.message);
    return std::move(e).with_context(std::string(stage)).with_context(params_.target_name);
  }

  std::string endpoint() const {
    return params_.unix_socket() ? params_.host : params_.host + ":" + std::to_string(params_.port);
  }

  // Error replies that end a connect attempt, whatever command they answer.
  Status check_connect_error(const std::string& text, bool is_auth_reply, bool sent_auth) {
    const auto prefix = error_prefix(text);
    const std::string scrubbed = redact::scrub(text);
    auto refuse = [&](ErrorCode code, std::string message, std::string hint) -> Status {
      close();
      return fail(in_context(make_error(code, std::move(message)), "connect", std::move(hint)));
    };
    if (prefix == "NOAUTH") {
      return refuse(ErrorCode::kUnavailable,
                    sent_auth ? "authentication failed: " + scrubbed
                              : "the server requires a password: " + scrubbed,
                    "set the target's password (and user, for an ACL user)");
    }
    if (text.find("max number of clients reached") != std::string::npos) {
      return refuse(ErrorCode::kUnavailable, "the server refused the connection: " + scrubbed,
                    "raise maxclients on the server or close idle connections");
    }
    if (prefix == "LOADING" || prefix == "MASTERDOWN" || prefix == "BUSY") {
      return refuse(ErrorCode::kUnavailable, "the server is not ready: " + scrubbed,
                    "retry once the server has finished loading or the busy script ends");
    }
    if (prefix == "DENIED") {
      return refuse(ErrorCode::kUnavailable, "the server refused the connection: " + scrubbed,
                    "the server runs in protected mode; set a password on it or bind it to "
                    "the interface dbops connects to");
    }
    if (is_auth_reply) {
      if (text.find("without any password configured") != std::string::npos ||
          text.find("no password is set") != std::string::npos) {
        return refuse(ErrorCode::kUnavailable,
                      "authentication failed: the server has no password set",
                      "remove the password from the target, or set one on the server "
                      "(requirepass or ACL SETUSER)");
      }
      return refuse(ErrorCode::kUnavailable, "authentication failed: " + scrubbed,
                    "check the user and password");
    }
    return ok();
  }

  void close() {
    std::lock_guard lock(mu_);
    if (ctx_) {
      redisFree(ctx_);
      ctx_ = nullptr;
    }
    open_ = false;
  }

  // Closes the connection and returns why it ended.
  Error broken(const Step& step, std::string detail) {
    const bool cancelled = cancel_requested_.load();
    close();
    if (cancelled) {
      return in_context(make_error(ErrorCode::kCancelled,
                                   (step.what.empty() ? std::string("connect") : step.what) +
                                       " cancelled; the connection was closed"),
                        step.stage);
    }
    const bool connecting = step.stage == "connect";
    Error e = make_error(ErrorCode::kUnavailable,
                         (connecting ? "lost the connection to " + endpoint() + " during connect: "
                                     : "connection lost: ") +
                             detail);
    return in_context(std::move(e), step.stage,
                      connecting ? "check that the host and port lead to a Redis server"
                                 : "the server restarted or closed the connection (CLIENT KILL, "
                                   "timeout); the next attempt reconnects");
  }

  Error timed_out(const Step& step) {
    close();
    std::string message = "no answer";
    if (!step.what.empty()) message += " to " + step.what;
    message += " within " + format_seconds(step.budget_seconds);
    return in_context(make_error(ErrorCode::kTimeout, std::move(message)), step.stage,
                      step.stage == "connect"
                          ? "the server at " + endpoint() +
                                " did not answer in time; check that it is a Redis server and "
                                "that it is not frozen or overloaded"
                          : "the server did not answer in time; check whether it is frozen, "
                            "overloaded or busy with a slow command (SLOWLOG GET); the "
                            "connection was closed");
  }

  std::string context_error() const {
    if (!ctx_) return "connection closed";
    std::string text = ctx_->errstr;
    if (text.empty()) text = "error " + std::to_string(ctx_->err);
    return lowercase(std::move(text));
  }

  // Polls the socket for `events` until the deadline. nullopt when ready.
  std::optional<Error> wait(short events, Deadline deadline, const Step& step) {
    while (true) {
      const int ms = deadline.remaining_ms();
      if (ms <= 0) return timed_out(step);
      struct pollfd pfd {
        ctx_->fd, events, 0
      };
      const int n = ::poll(&pfd, 1, ms);
      if (n > 0) return std::nullopt;
      if (n < 0 && errno != EINTR) return broken(step, "poll: " + lowercase(std::strerror(errno)));
    }
  }

  Status wait_connected(Deadline deadline, const Step& step) {
    if (auto e = wait(POLLOUT, deadline, step)) return fail(std::move(*e));
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(ctx_->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      close();
      return fail(in_context(
          make_error(ErrorCode::kUnavailable,
                     "cannot connect to " + endpoint() + ": " + lowercase(std::strerror(err))),
          "connect",
          "check that the server is running and that the host and port are "
          "right"));
    }
    // TCP keepalive finds a peer that vanished while the session sat in a pool
    // (on a Unix socket it fails and would leave the context in error).
    if (!params_.unix_socket() && redisEnableKeepAlive(ctx_) != REDIS_OK) {
      ctx_->err = 0;
      ctx_->errstr[0] = '\0';
    }
    return ok();
  }

  Status append(std::span<const std::string> argv, const Step& step) {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    ptrs.reserve(argv.size());
    lens.reserve(argv.size());
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), ptrs.data(), lens.data()) !=
        REDIS_OK) {
      Error e = broken(step, "cannot queue the command: " + context_error());
      e.code = ErrorCode::kInternal;
      return fail(std::move(e));
    }
    return ok();
  }

  Status write_all(Deadline deadline, const Step& step) {
    while (true) {
      int done = 0;
      int rc;
      {
        SigpipeGuard guard;
        rc = redisBufferWrite(ctx_, &done);
      }
      if (rc != REDIS_OK) return fail(broken(step, context_error()));
      if (done) return ok();
      if (auto e = wait(POLLOUT, deadline, step)) return fail(std::move(*e));
    }
  }

  Result<Reply> read_reply(Deadline deadline, const Step& step) {
    while (true) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) {
        return fail(broken(step, "protocol error: " + context_error()));
      }
      if (raw) {
        Reply reply = convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        return reply;
      }
      if (auto e = wait(POLLIN, deadline, step)) return fail(std::move(*e));
      if (redisBufferRead(ctx_) != REDIS_OK) return fail(broken(step, context_error()));
    }
  }

  // Guards ctx_ against cancel() from another thread; the owning thread reads
  // ctx_ without it, because only the owning thread replaces it.
  mutable std::mutex mu_;
  redisContext* ctx_;
  ConnectParams params_;
  std::string version_;
  std::atomic<bool> open_{true};
  std::atomic<bool> running_{false};
  std::atomic<bool> cancel_requested_{false};
};

bool is_tls_mode(std::string_view mode) {
  return mode == "require" || mode == "verify-ca" || mode == "verify-full";
}

Result<int> parse_db(std::string_view text) {
  if (text.empty()) return 0;
  int db = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), db);
  if (ec != std::errc() || end != text.data() + text.size() || db < 0) {
    return fail(ErrorCode::kConfig, "database must be a Redis database number (0, 1, ...), got '" +
                                        std::string(text) + "'");
  }
  return db;
}

}  // namespace

Result<ConnectParams> resolve_params(const config::Target& t) {
  auto in_target = [&](Error e) { return fail(std::move(e).with_context(t.name)); };
  const auto& tls = t.tls;
  const bool tls_files = !tls.ca_file.empty() || !tls.cert_file.empty() || !tls.key_file.empty() ||
                         tls.verify_server_cert.value_or(false);
  if (is_tls_mode(tls.mode) || (tls.mode.empty() && tls_files)) {
    return in_target(make_error(ErrorCode::kUnsupported, std::string(kNoTlsMessage))
                         .with_hint("connect without TLS (tls.mode: disable) through a trusted "
                                    "network, or use a TLS tunnel such as stunnel"));
  }
  ConnectParams p;
  p.target_name = t.name;
  if (!t.dsn.empty()) {
    auto uri = parse_uri(t.dsn.reveal());
    if (!uri) return in_target(make_error(ErrorCode::kConfig, uri.error().message));
    if (uri->scheme == "rediss") {
      return in_target(make_error(ErrorCode::kUnsupported, std::string(kNoTlsMessage))
                           .with_hint("use redis:// through a trusted network, or a TLS "
                                      "tunnel such as stunnel"));
    }
    if (uri->scheme != "redis") {
      return in_target(make_error(
          ErrorCode::kConfig, "expected a redis:// connection string, got " + uri->scheme + "://"));
    }
    if (!uri->host.empty()) p.host = uri->host;
    if (uri->port) p.port = uri->port;
    p.user = uri->user;
    p.password = Secret(uri->password);
    std::string db_text = uri->path;
    for (const auto& [key, value] : uri->query) {
      if (key == "db") {
        db_text = value;
      } else {
        return in_target(make_error(ErrorCode::kConfig,
                                    "unknown parameter '" + key + "' in the connection string")
                             .with_hint("a redis:// connection string takes only ?db=N"));
      }
    }
    auto db = parse_db(db_text);
    if (!db) return in_target(std::move(db).error());
    p.db = *db;
  } else {
    if (!t.host.empty()) p.host = t.host;
    if (t.port) p.port = t.port;
    p.user = t.user;
    p.password = t.password;
    auto db = parse_db(t.database);
    if (!db) return in_target(std::move(db).error());
    p.db = *db;
  }
  // "default" with no password is how an unauthenticated client already is.
  if (p.user == "default" && p.password.empty()) p.user.clear();
  return p;
}

Result<std::unique_ptr<CommandSession>> connect(const ConnectParams& params,
                                                const ConnectOptions& options) {
  const auto deadline = Deadline::after(options.connect_timeout);
  redisContext* ctx = params.unix_socket() ? redisConnectUnixNonBlock(params.host.c_str())
                                           : redisConnectNonBlock(params.host.c_str(), params.port);
  const std::string endpoint =
      params.unix_socket() ? params.host : params.host + ":" + std::to_string(params.port);
  if (!ctx) {
    return fail(make_error(ErrorCode::kInternal, "cannot allocate a hiredis context")
                    .with_context("connect")
                    .with_context(params.target_name));
  }
  if (ctx->err) {
    const std::string detail = lowercase(ctx->errstr);
    redisFree(ctx);
    return fail(make_error(ErrorCode::kUnavailable,
                           redact::scrub("cannot connect to " + endpoint + ": " + detail))
                    .with_hint("check that the server is running and that the host and port "
                               "are right")
                    .with_context("connect")
                    .with_context(params.target_name));
  }
  auto session = std::make_unique<RedisSession>(ctx, params);
  DBOPS_TRY(session->handshake(options, deadline));
  log::debug("redis connected", {{"target", params.target_name},
                                 {"endpoint", endpoint},
                                 {"db", params.db},
                                 {"server_version", session->server_version()}});
  return std::unique_ptr<CommandSession>(std::move(session));
}

std::string library_version() {
  return std::to_string(HIREDIS_MAJOR) + "." + std::to_string(HIREDIS_MINOR) + "." +
         std::to_string(HIREDIS_PATCH);
}

std::optional<Error> reply_error(const Reply& reply, std::string_view what) {
  if (reply.type != Reply::Type::kError) return std::nullopt;
  const auto prefix = error_prefix(reply.str);
  std::string message = std::string(what) + ": " + redact::scrub(reply.str);
  auto make = [&](ErrorCode code, std::string hint = {}) {
    Error e = make_error(code, std::move(message));
    e.hint = std::move(hint);
    return e;
  };
  if (prefix == "NOAUTH" || prefix == "WRONGPASS") {
    return make(ErrorCode::kUnavailable, "check the user and password");
  }
  if (prefix == "NOPERM") {
    return make(ErrorCode::kUnavailable,
                "the user lacks the permission; grant it with ACL SETUSER <user> +<command>");
  }
  if (prefix == "LOADING" || prefix == "BUSY" || prefix == "MASTERDOWN" ||
      prefix == "CLUSTERDOWN" || prefix == "TRYAGAIN" || prefix == "MISCONF") {
    return make(ErrorCode::kUnavailable, "the server cannot serve the command right now; retry");
  }
  if (prefix == "OOM") {
    return make(ErrorCode::kUnavailable,
                "the server reached maxmemory; raise it or choose an eviction policy");
  }
  if (prefix == "READONLY") {
    return make(ErrorCode::kUnavailable, "the target is a replica; send writes to the primary");
  }
  if (prefix == "MOVED" || prefix == "ASK") {
    return make(ErrorCode::kUnsupported, "dbops does not follow Redis Cluster redirects");
  }
  if (prefix == "ERR" || prefix == "WRONGTYPE" || prefix == "NOSCRIPT" || prefix == "EXECABORT" ||
      prefix == "BUSYKEY" || prefix == "NOGROUP" || prefix == "CROSSSLOT" || prefix == "NOPROTO") {
    return make(ErrorCode::kInvalidArgument);
  }
  return make(ErrorCode::kInternal);
}

}  // namespace dbops::engine::redis
