#include "core/secret.hpp"

#include <algorithm>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <vector>

#include "core/strings.hpp"

namespace dbops {
namespace {

struct Registry {
  std::shared_mutex mu;
  // Longest first, so that a secret containing another is scrubbed whole.
  std::vector<std::string> values;
  std::set<std::string> seen;
};

Registry& registry() {
  static Registry r;
  return r;
}

void add_form(Registry& r, std::string form) {
  if (form.size() < redact::kMinSecretLength) return;
  if (!r.seen.insert(form).second) return;
  const auto pos = std::lower_bound(
      r.values.begin(), r.values.end(), form,
      [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  r.values.insert(pos, std::move(form));
}

}  // namespace

Secret::Secret(std::string value) : value_(std::move(value)) {
  redact::register_secret(value_);
}

namespace redact {

void register_secret(std::string_view value) {
  if (value.size() < kMinSecretLength) return;
  auto& r = registry();
  std::unique_lock lock(r.mu);
  add_form(r, std::string(value));
  add_form(r, percent_encode(value));
  // Lowercase hex escapes are equally valid percent-encoding.
  add_form(r, to_lower(percent_encode(value)));
  std::string b64 = base64_encode(value);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  add_form(r, std::move(b64));
}

std::string scrub(std::string_view text) {
  auto& r = registry();
  std::shared_lock lock(r.mu);
  std::string out(text);
  if (r.values.empty()) return out;
  for (const auto& value : r.values) {
    std::size_t pos = 0;
    while ((pos = out.find(value, pos)) != std::string::npos) {
      out.replace(pos, value.size(), kRedacted);
      pos += kRedacted.size();
    }
  }
  return out;
}

namespace {

bool looks_like_uri(std::string_view s) {
  return s.find("://") != std::string_view::npos;
}

// Locates the password in a URI's userinfo: [begin, end) offsets.
std::pair<std::size_t, std::size_t> uri_password_span(std::string_view s) {
  const auto scheme_end = s.find("://");
  const std::size_t auth_start = scheme_end + 3;
  std::size_t auth_end = s.find_first_of("/?#", auth_start);
  if (auth_end == std::string_view::npos) auth_end = s.size();
  const auto at = s.rfind('@', auth_end == 0 ? 0 : auth_end - 1);
  if (at == std::string_view::npos || at < auth_start) return {0, 0};
  const auto colon = s.find(':', auth_start);
  if (colon == std::string_view::npos || colon > at) return {0, 0};
  return {colon + 1, at};
}

struct KvSpan {
  std::size_t begin = 0, end = 0;
};

// Finds `password=` values in a key=value connection string (or a URI's query).
std::vector<KvSpan> kv_password_spans(std::string_view s, std::size_t from) {
  std::vector<KvSpan> spans;
  std::size_t i = from;
  while (i < s.size()) {
    const auto key_pos = s.find("password", i);
    if (key_pos == std::string_view::npos) break;
    const bool boundary = key_pos == 0 || s[key_pos - 1] == ' ' || s[key_pos - 1] == '&' ||
                          s[key_pos - 1] == '?' || s[key_pos - 1] == '\t';
    std::size_t j = key_pos + 8;
    while (j < s.size() && s[j] == ' ') ++j;
    if (!boundary || j >= s.size() || s[j] != '=') {
      i = key_pos + 8;
      continue;
    }
    ++j;
    while (j < s.size() && s[j] == ' ') ++j;
    KvSpan span{.begin = j, .end = j};
    if (j < s.size() && s[j] == '\'') {
      std::size_t k = j + 1;
      while (k < s.size() && s[k] != '\'') k += (s[k] == '\\' && k + 1 < s.size()) ? 2 : 1;
      span.end = std::min(k + 1, s.size());
    } else {
      std::size_t k = j;
      while (k < s.size() && s[k] != ' ' && s[k] != '&' && s[k] != '\t') ++k;
      span.end = k;
    }
    spans.push_back(span);
    i = span.end;
  }
  return spans;
}

std::string unquote_kv(std::string_view v) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    std::string out;
    for (std::size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == '\\' && i + 2 < v.size()) ++i;
      out += v[i];
    }
    return out;
  }
  return std::string(v);
}

// All password spans of a connection string, in order of position.
std::vector<KvSpan> password_spans(std::string_view s) {
  std::vector<KvSpan> spans;
  std::size_t query_from = 0;
  if (looks_like_uri(s)) {
    const auto [b, e] = uri_password_span(s);
    if (e > b) spans.push_back({b, e});
    query_from = s.find('?');
    if (query_from == std::string_view::npos) return spans;
  }
  for (const auto& span : kv_password_spans(s, query_from)) spans.push_back(span);
  std::sort(spans.begin(), spans.end(),
            [](const KvSpan& a, const KvSpan& b) { return a.begin < b.begin; });
  return spans;
}

}  // namespace

std::string dsn(std::string_view s) {
  std::string out;
  std::size_t last = 0;
  for (const auto& span : password_spans(s)) {
    if (span.begin < last) continue;
    out.append(s.substr(last, span.begin - last));
    out.append(kRedacted);
    last = span.end;
  }
  out.append(s.substr(last));
  return scrub(out);
}

std::string dsn_password(std::string_view s) {
  const auto spans = password_spans(s);
  if (spans.empty()) return {};
  const auto raw = s.substr(spans.front().begin, spans.front().end - spans.front().begin);
  if (looks_like_uri(s)) return percent_decode(raw).value_or(std::string(raw));
  return unquote_kv(raw);
}

void clear_for_testing() {
  auto& r = registry();
  std::unique_lock lock(r.mu);
  r.values.clear();
  r.seen.clear();
}

}  // namespace redact
}  // namespace dbops
