// Redis sessions over hiredis 0.14's non-blocking API.
//
// Every network step (TCP connect, AUTH, SELECT, each command) runs on a
// non-blocking socket that dbops polls itself until the Deadline; hiredis's
// own blocking calls and timeouts are never used. Redis has no way to cancel
// most commands, so a deadline that passes, or cancel() from another thread,
// closes the connection: the call returns kTimeout (or kCancelled) and the
// session reports !is_open() so that the pool replaces it.
//
// Debian's hiredis 0.14 has no TLS: rediss:// and tls.mode require, verify-ca
// or verify-full fail with kUnsupported before anything is sent.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/config/config.hpp"
#include "core/result.hpp"
#include "core/secret.hpp"
#include "engine/engine.hpp"
#include "engine/session.hpp"

namespace dbops::engine::redis {

// The note `dbops engines` prints for the TLS row and the kUnsupported message.
inline constexpr std::string_view kNoTlsMessage =
    "rediss:// (TLS) is not supported in this build: Debian's hiredis 0.14 has no TLS";

// Where and how to connect, from a target's structured fields or its DSN
// (redis://[user[:password]@]host[:port][/db][?db=N]). A host that starts
// with '/' is a Unix socket path.
struct ConnectParams {
  std::string target_name;
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;  // empty: AUTH with the password alone (the default user)
  Secret password;
  int db = 0;
  bool unix_socket() const { return host.starts_with('/'); }
};

// Resolves and validates a target without connecting: kConfig for a bad DSN
// or database number, kUnsupported for TLS.
Result<ConnectParams> resolve_params(const config::Target& target);

// Connects, authenticates (AUTH [user] password), selects the database and
// reads the server version, all within options.connect_timeout.
Result<std::unique_ptr<CommandSession>> connect(const ConnectParams& params,
                                                const ConnectOptions& options);

// "hiredis 0.14.1", from the headers the engine was built with.
std::string library_version();

// Turns an error reply into an Error a DBA can act on: unknown command, wrong
// arguments and syntax errors -> kInvalidArgument; NOAUTH, WRONGPASS, NOPERM
// -> kUnavailable with a hint; LOADING, BUSY, MASTERDOWN -> kUnavailable;
// READONLY -> kUnsupported (a write sent to a replica); anything else ->
// kInternal. `what` names the command for the message. nullopt when the reply
// is not an error.
std::optional<Error> reply_error(const Reply& reply, std::string_view what);

}  // namespace dbops::engine::redis
