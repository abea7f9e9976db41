#include "core/uri.hpp"

#include "core/strings.hpp"

namespace dbops {

std::optional<std::string> Uri::query_value(std::string_view key) const {
  for (const auto& [k, v] : query) {
    if (k == key) return v;
  }
  return std::nullopt;
}

Result<Uri> parse_uri(std::string_view text) {
  Uri uri;
  const auto scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    return fail(ErrorCode::kInvalidArgument, "expected scheme://host in connection string");
  }
  uri.scheme = to_lower(text.substr(0, scheme_end));
  std::string_view rest = text.substr(scheme_end + 3);
  std::string_view query;
  if (const auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (const auto h = rest.find('#'); h != std::string_view::npos) rest = rest.substr(0, h);
  std::string_view authority = rest;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    auto path = percent_decode(rest.substr(slash + 1));
    if (!path) return fail(ErrorCode::kInvalidArgument, "malformed %-escape in connection path");
    uri.path = *path;
  }
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    if (!user) return fail(ErrorCode::kInvalidArgument, "malformed %-escape in connection user");
    uri.user = *user;
    if (colon != std::string_view::npos) {
      auto password = percent_decode(userinfo.substr(colon + 1));
      if (!password) {
        return fail(ErrorCode::kInvalidArgument, "malformed %-escape in connection password");
      }
      uri.password = *password;
      uri.has_password = true;
    }
  }
  std::string_view port_text;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return fail(ErrorCode::kInvalidArgument, "unterminated IPv6 address in connection string");
    }
    uri.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        return fail(ErrorCode::kInvalidArgument, "unexpected text after IPv6 address");
      }
      port_text = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    uri.host = std::string(authority.substr(0, colon));
    port_text = authority.substr(colon + 1);
  } else {
    uri.host = std::string(authority);
  }
  if (auto host = percent_decode(uri.host)) uri.host = *host;
  if (!port_text.empty()) {
    int port = 0;
    for (const char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) {
        return fail(ErrorCode::kInvalidArgument,
                    "invalid port \"" + std::string(port_text) + "\" in connection string");
      }
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) {
      return fail(ErrorCode::kInvalidArgument,
                  "port " + std::to_string(port) + " is out of range 1..65535");
    }
    uri.port = port;
  }
  if (!query.empty()) {
    for (const auto& item : split(query, '&')) {
      if (item.empty()) continue;
      const auto eq = item.find('=');
      auto key = percent_decode(item.substr(0, eq));
      auto value = percent_decode(eq == std::string::npos ? "" : item.substr(eq + 1));
      if (!key || !value) {
        return fail(ErrorCode::kInvalidArgument, "malformed %-escape in connection parameters");
      }
      uri.query.emplace_back(*key, *value);
    }
  }
  return uri;
}

}  // namespace dbops
