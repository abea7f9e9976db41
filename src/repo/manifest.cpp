#include "repo/manifest.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>

#include "repo/internal.hpp"
#include "repo/storage.hpp"

namespace dbops::repo {
namespace {

using nlohmann::json;

constexpr int kFormat = 1;
constexpr std::string_view kEncryptionNone = "none";
constexpr std::string_view kEncryptionSecretstream = "xchacha20poly1305-secretstream";

json object_to_json(const ObjectEntry& o) {
  json j = json::object();
  j["name"] = o.name;
  j["content"] = o.content;
  j["plain_size"] = o.plain_size;
  j["stored_size"] = o.stored_size;
  j["plain_list_sha256"] = o.plain_list_sha256;
  j["stored_sha256"] = o.stored_sha256;
  j["chunk_size"] = o.chunk_size;
  j["plain_chunks"] = o.plain_chunks;
  j["stored_chunks"] = o.stored_chunks;
  j["compression"] = o.compression;
  j["compression_level"] = o.compression_level;
  j["encryption"] = o.encryption;
  if (!o.key_id.empty()) j["key_id"] = o.key_id;
  return j;
}

json fingerprint_to_json(const DatabaseFingerprint& d) {
  json tables = json::array();
  for (const auto& t : d.tables) {
    tables.push_back(
        json{{"table", t.table}, {"rows", t.rows}, {"hash", t.hash}, {"sampled", t.sampled}});
  }
  json out{{"database", d.database}, {"mode", d.mode}};
  if (d.approximate) out["approximate"] = true;
  out["tables"] = std::move(tables);
  return out;
}

// Strict reading: every problem is kCorrupt naming the field's path.
class Reader {
 public:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  std::unexpected<Error> bad(const std::string& field, const std::string& what) const {
    return fail(ErrorCode::kCorrupt, "manifest: " + qualified(field) + ": " + what);
  }

  Result<const json*> member(const json& obj, const std::string& field, bool required) const {
    auto it = obj.find(field);
    if (it == obj.end() || it->is_null()) {
      if (required) return bad(field, "missing");
      return static_cast<const json*>(nullptr);
    }
    return &*it;
  }

  Status get(const json& obj, const std::string& field, std::string& out, bool required) const {
    DBOPS_ASSIGN(const json* v, member(obj, field, required));
    if (v == nullptr) return ok();
    if (!v->is_string()) return bad(field, "expected a string");
    out = v->get<std::string>();
    return ok();
  }

  Status get(const json& obj, const std::string& field, std::uint64_t& out, bool required) const {
    DBOPS_ASSIGN(const json* v, member(obj, field, required));
    if (v == nullptr) return ok();
    if (!v->is_number_unsigned()) return bad(field, "expected a non-negative integer");
    out = v->get<std::uint64_t>();
    return ok();
  }

  Status get(const json& obj, const std::string& field, std::int64_t& out, bool required) const {
    DBOPS_ASSIGN(const json* v, member(obj, field, required));
    if (v == nullptr) return ok();
    if (!v->is_number_integer()) return bad(field, "expected an integer");
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > INT64_MAX) {
      return bad(field, "integer out of range");
    }
    out = v->get<std::int64_t>();
    return ok();
  }

  Status get(const json& obj, const std::string& field, int& out, bool required) const {
    std::int64_t value = out;
    DBOPS_TRY(get(obj, field, value, required));
    if (value < INT32_MIN || value > INT32_MAX) return bad(field, "integer out of range");
    out = static_cast<int>(value);
    return ok();
  }

  Status get(const json& obj, const std::string& field, bool& out, bool required) const {
    DBOPS_ASSIGN(const json* v, member(obj, field, required));
    if (v == nullptr) return ok();
    if (!v->is_boolean()) return bad(field, "expected true or false");
    out = v->get<bool>();
    return ok();
  }

  Status get(const json& obj, const std::string& field, TimePoint& out, bool required) const {
    std::string text;
    DBOPS_TRY(get(obj, field, text, required));
    if (text.empty() && !required) return ok();
    auto parsed = internal::parse_time(text);
    if (!parsed) return bad(field, "expected an RFC 3339 time, got \"" + text + "\"");
    out = *parsed;
    return ok();
  }

  Status get(const json& obj, const std::string& field, std::vector<std::string>& out,
             bool required) const {
    DBOPS_ASSIGN(const json* v, member(obj, field, required));
    if (v == nullptr) return ok();
    if (!v->is_array()) return bad(field, "expected an array of strings");
    out.clear();
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        return bad(field + "[" + std::to_string(i) + "]", "expected a string");
      }
      out.push_back((*v)[i].get<std::string>());
    }
    return ok();
  }

  Status get(const json& obj, const std::string& field, std::map<std::string, std::string>& out,
             bool required) const {
    DBOPS_ASSIGN(const json* v, member(obj, field, required));
    if (v == nullptr) return ok();
    if (!v->is_object()) return bad(field, "expected an object of strings");
    out.clear();
    for (auto it = v->begin(); it != v->end(); ++it) {
      if (!it->is_string()) return bad(field + "." + it.key(), "expected a string");
      out.emplace(it.key(), it->get<std::string>());
    }
    return ok();
  }

  Result<const json*> array(const json& obj, const std::string& field, bool required) const {
    DBOPS_ASSIGN(const json* v, member(obj, field, required));
    if (v != nullptr && !v->is_array()) return bad(field, "expected an array");
    return v;
  }

  Reader nested(const std::string& field) const { return Reader(qualified(field)); }

 private:
  std::string qualified(const std::string& field) const {
    if (field.empty()) return path_;
    return path_.empty() ? field : path_ + "." + field;
  }
  std::string path_;
};

std::uint64_t chunk_count(std::uint64_t size, std::uint64_t chunk) {
  return chunk == 0 ? 0 : (size + chunk - 1) / chunk;
}

Result<ObjectEntry> read_object_entry(const json& j, const Reader& r) {
  if (!j.is_object()) return r.bad("", "expected an object");
  ObjectEntry o;
  o.compression.clear();
  o.encryption.clear();
  DBOPS_TRY(r.get(j, "name", o.name, true));
  DBOPS_TRY(r.get(j, "content", o.content, false));
  DBOPS_TRY(r.get(j, "plain_size", o.plain_size, true));
  DBOPS_TRY(r.get(j, "stored_size", o.stored_size, true));
  DBOPS_TRY(r.get(j, "plain_list_sha256", o.plain_list_sha256, true));
  DBOPS_TRY(r.get(j, "stored_sha256", o.stored_sha256, true));
  DBOPS_TRY(r.get(j, "chunk_size", o.chunk_size, true));
  DBOPS_TRY(r.get(j, "plain_chunks", o.plain_chunks, true));
  DBOPS_TRY(r.get(j, "stored_chunks", o.stored_chunks, true));
  DBOPS_TRY(r.get(j, "compression", o.compression, true));
  DBOPS_TRY(r.get(j, "compression_level", o.compression_level, false));
  DBOPS_TRY(r.get(j, "encryption", o.encryption, true));
  DBOPS_TRY(r.get(j, "key_id", o.key_id, false));

  if (o.name.empty() || o.name.find('/') != std::string::npos || !validate_key(o.name)) {
    return r.bad("name", "\"" + o.name + "\" is not a valid object name");
  }
  if (!internal::is_hex(o.plain_list_sha256, 64))
    return r.bad("plain_list_sha256", "expected 64 hex digits");
  if (!internal::is_hex(o.stored_sha256, 64)) {
    return r.bad("stored_sha256", "expected 64 hex digits");
  }
  if (o.chunk_size == 0) return r.bad("chunk_size", "must be positive");
  auto check_chunks = [&](const std::string& field, const std::vector<std::string>& chunks,
                          std::uint64_t size) -> Status {
    if (chunks.size() != chunk_count(size, o.chunk_size)) {
      return r.bad(field, std::to_string(chunks.size()) + " checksums for " + std::to_string(size) +
                              " bytes in chunks of " + std::to_string(o.chunk_size));
    }
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      if (!internal::is_hex(chunks[i], 64)) {
        return r.bad(field + "[" + std::to_string(i) + "]", "expected 64 hex digits");
      }
    }
    return ok();
  };
  DBOPS_TRY(check_chunks("plain_chunks", o.plain_chunks, o.plain_size));
  DBOPS_TRY(check_chunks("stored_chunks", o.stored_chunks, o.stored_size));
  if (o.compression != "zstd" && o.compression != "none") {
    return fail(ErrorCode::kUnsupported, "manifest: object " + o.name + ": compression \"" +
                                             o.compression + "\" is not supported by this dbops");
  }
  if (o.encryption != kEncryptionNone && o.encryption != kEncryptionSecretstream) {
    return fail(ErrorCode::kUnsupported, "manifest: object " + o.name + ": encryption \"" +
                                             o.encryption + "\" is not supported by this dbops");
  }
  if (o.encryption != kEncryptionNone && !internal::is_hex(o.key_id, 16)) {
    return r.bad("key_id", "expected 16 hex digits for an encrypted object");
  }
  return o;
}

Result<DatabaseFingerprint> read_fingerprint(const json& j, const Reader& r) {
  if (!j.is_object()) return r.bad("", "expected an object");
  DatabaseFingerprint d;
  DBOPS_TRY(r.get(j, "database", d.database, true));
  DBOPS_TRY(r.get(j, "mode", d.mode, true));
  DBOPS_TRY(r.get(j, "approximate", d.approximate, false));
  DBOPS_ASSIGN(const json* tables, r.array(j, "tables", true));
  for (std::size_t i = 0; i < tables->size(); ++i) {
    const json& t = (*tables)[i];
    Reader tr = r.nested("tables[" + std::to_string(i) + "]");
    if (!t.is_object()) return tr.bad("", "expected an object");
    TableFingerprint f;
    DBOPS_TRY(tr.get(t, "table", f.table, true));
    DBOPS_TRY(tr.get(t, "rows", f.rows, true));
    DBOPS_TRY(tr.get(t, "hash", f.hash, true));
    DBOPS_TRY(tr.get(t, "sampled", f.sampled, false));
    d.tables.push_back(std::move(f));
  }
  return d;
}

}  // namespace

std::uint64_t Manifest::plain_size() const {
  std::uint64_t total = 0;
  for (const auto& o : objects) total += o.plain_size;
  return total;
}

std::uint64_t Manifest::stored_size() const {
  std::uint64_t total = 0;
  for (const auto& o : objects) total += o.stored_size;
  return total;
}

const ObjectEntry* Manifest::find_object(std::string_view name) const {
  for (const auto& o : objects) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

std::string to_json(const Manifest& m) {
  json j = json::object();
  j["format"] = m.format;
  j["id"] = m.id;
  j["target"] = m.target;
  j["engine"] = m.engine;
  j["server_version"] = m.server_version;
  j["method"] = m.method;
  j["tool"] = m.tool;
  j["dbops_version"] = m.dbops_version;
  j["started_at"] = internal::format_time(m.started_at);
  j["finished_at"] = internal::format_time(m.finished_at);
  j["position"] = m.position;
  j["details"] = m.details;
  json objects = json::array();
  for (const auto& o : m.objects) objects.push_back(object_to_json(o));
  j["objects"] = std::move(objects);
  json fingerprints = json::array();
  for (const auto& d : m.fingerprints) fingerprints.push_back(fingerprint_to_json(d));
  j["fingerprints"] = std::move(fingerprints);
  // Invalid UTF-8 (a server version string, a table name) must not make
  // writing the manifest fail.
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<Manifest> manifest_from_json(std::string_view text) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return fail(ErrorCode::kCorrupt, std::string("manifest: not valid JSON: ") + e.what());
  }
  Reader r("");
  if (!j.is_object()) return fail(ErrorCode::kCorrupt, "manifest: expected a JSON object");
  Manifest m;
  DBOPS_TRY(r.get(j, "format", m.format, true));
  if (m.format > kFormat) {
    return fail(ErrorCode::kUnsupported,
                "manifest format " + std::to_string(m.format) + " is newer than this dbops",
                "Upgrade dbops to read this backup.");
  }
  if (m.format < 1) return r.bad("format", "must be 1 or more");
  DBOPS_TRY(r.get(j, "id", m.id, true));
  DBOPS_TRY(r.get(j, "target", m.target, true));
  DBOPS_TRY(r.get(j, "engine", m.engine, true));
  DBOPS_TRY(r.get(j, "server_version", m.server_version, false));
  DBOPS_TRY(r.get(j, "method", m.method, true));
  DBOPS_TRY(r.get(j, "tool", m.tool, false));
  DBOPS_TRY(r.get(j, "dbops_version", m.dbops_version, false));
  DBOPS_TRY(r.get(j, "started_at", m.started_at, true));
  DBOPS_TRY(r.get(j, "finished_at", m.finished_at, true));
  DBOPS_TRY(r.get(j, "position", m.position, false));
  DBOPS_TRY(r.get(j, "details", m.details, false));
  if (!is_backup_id(m.id)) return r.bad("id", "\"" + m.id + "\" is not a backup id");
  if (m.target.empty() || m.target.find('/') != std::string::npos || !validate_key(m.target)) {
    return r.bad("target", "\"" + m.target + "\" is not a valid target name");
  }

  DBOPS_ASSIGN(const json* objects, r.array(j, "objects", true));
  std::set<std::string> names;
  for (std::size_t i = 0; i < objects->size(); ++i) {
    Reader orr = r.nested("objects[" + std::to_string(i) + "]");
    DBOPS_ASSIGN(ObjectEntry o, read_object_entry((*objects)[i], orr));
    if (!names.insert(o.name).second) return orr.bad("name", "duplicate object " + o.name);
    m.objects.push_back(std::move(o));
  }
  DBOPS_ASSIGN(const json* fingerprints, r.array(j, "fingerprints", false));
  if (fingerprints != nullptr) {
    for (std::size_t i = 0; i < fingerprints->size(); ++i) {
      DBOPS_ASSIGN(DatabaseFingerprint d,
                   read_fingerprint((*fingerprints)[i],
                                    r.nested("fingerprints[" + std::to_string(i) + "]")));
      m.fingerprints.push_back(std::move(d));
    }
  }
  return m;
}

std::string new_backup_id(TimePoint now) {
  auto secs = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch());
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02dZ-", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return std::string(buf) + internal::random_hex(4);
}

bool is_backup_id(std::string_view text) {
  // yyyymmddThhmmssZ-xxxx
  if (text.size() != 21) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool good = false;
    if (i == 8) {
      good = c == 'T';
    } else if (i == 15) {
      good = c == 'Z';
    } else if (i == 16) {
      good = c == '-';
    } else if (i > 16) {
      good = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    } else {
      good = c >= '0' && c <= '9';
    }
    if (!good) return false;
  }
  return true;
}

std::string backup_prefix(std::string_view target, std::string_view id) {
  std::string out;
  out.reserve(target.size() + id.size() + 2);
  out.append(target).append("/").append(id).append("/");
  return out;
}

std::string manifest_key(std::string_view target, std::string_view id) {
  return backup_prefix(target, id) + "manifest.json";
}

}  // namespace dbops::repo
