// Connection URIs: scheme://[user[:password]@]host[:port][/path][?k=v&...].
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace dbops {

struct Uri {
  std::string scheme;
  std::string user;      // percent-decoded
  std::string password;  // percent-decoded; a secret
  bool has_password = false;
  std::string host;  // brackets of an IPv6 literal removed
  int port = 0;      // 0 when absent
  std::string path;  // without the leading '/', percent-decoded
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded

  std::optional<std::string> query_value(std::string_view key) const;
};

// Parses a URI; errors never echo the password.
Result<Uri> parse_uri(std::string_view text);

}  // namespace dbops
