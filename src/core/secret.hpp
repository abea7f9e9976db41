// Secrets and redaction.
//
// A Secret holds a value that must never leave the process in clear text:
// passwords, tokens, webhook URLs, the password inside a DSN. Constructing a
// Secret registers its value (and its percent-encoded and base64 forms) with
// the process-wide scrubber, which every log line, error message and printed
// document passes through before it is written. Printing a Secret itself
// yields "[redacted]"; reveal() is for the one place that hands the value to
// a client library or a child's environment.
#pragma once

#include <string>
#include <string_view>

namespace dbops {

inline constexpr std::string_view kRedacted = "[redacted]";

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value);

  const std::string& reveal() const { return value_; }
  bool empty() const { return value_.empty(); }
  // "[redacted]" for a non-empty secret, "" for an empty one.
  std::string_view redacted() const { return value_.empty() ? std::string_view{} : kRedacted; }

  friend bool operator==(const Secret& a, const Secret& b) { return a.value_ == b.value_; }

 private:
  std::string value_;
};

namespace redact {

// Registers a value to be scrubbed from all output. Values shorter than
// kMinSecretLength are not registered (scrubbing them would garble output);
// such short secrets are still never printed through Secret.
inline constexpr std::size_t kMinSecretLength = 4;
void register_secret(std::string_view value);

// Replaces every registered secret (clear, percent-encoded, base64) in text.
std::string scrub(std::string_view text);

// A connection string with its password replaced by "[redacted]". Handles
// URIs (scheme://user:password@host/...?password=...) and libpq-style
// key=value strings (password=... , including quoted values).
std::string dsn(std::string_view connection_string);

// The password inside a connection string, if it has one (percent-decoded
// for URIs, unquoted for key=value).
std::string dsn_password(std::string_view connection_string);

// Forgets all registered secrets (tests only).
void clear_for_testing();

}  // namespace redact
}  // namespace dbops
