// Loads dbops.yaml: YAML parsing, reference resolution, validation against the
// schema, and the typed model. Collects every problem instead of stopping at
// the first.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/config/config.hpp"
#include "core/config/schema.hpp"
#include "core/cron.hpp"
#include "core/strings.hpp"

namespace dbops::config {
namespace fs = std::filesystem;
namespace {

SourceLocation location_of(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return {};
  return {.line = mark.line + 1, .column = mark.column + 1};
}

class Ctx {
 public:
  Ctx(const fs::path& file, const LoadOptions& options) : file_(file), options_(options) {
    base_dir_ = file.parent_path().empty() ? fs::current_path() : fs::absolute(file.parent_path());
  }

  const fs::path& base_dir() const { return base_dir_; }
  const LoadOptions& options() const { return options_; }
  std::vector<Problem>& problems() { return problems_; }

  void problem(SourceLocation loc, std::string key_path, std::string message) {
    problems_.push_back(Problem{.file = file_.string(),
                                .line = loc.line,
                                .column = loc.column,
                                .key_path = std::move(key_path),
                                .message = std::move(message)});
  }
  void problem(const YAML::Node& node, std::string key_path, std::string message) {
    problem(location_of(node), std::move(key_path), std::move(message));
  }

  void load_dotenv() {
    const fs::path path = base_dir_ / ".env";
    std::ifstream in(path);
    if (!in) return;
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      std::string_view text = trim(line);
      if (text.empty() || text.front() == '#') continue;
      if (text.starts_with("export ")) text = trim(text.substr(7));
      const auto eq = text.find('=');
      if (eq == std::string_view::npos || eq == 0) {
        problems_.push_back(Problem{.file = path.string(),
                                    .line = line_no,
                                    .column = 1,
                                    .key_path = "",
                                    .message = "expected NAME=VALUE"});
        continue;
      }
      const std::string name(trim(text.substr(0, eq)));
      std::string value(trim(text.substr(eq + 1)));
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
          value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
      }
      dotenv_[name] = value;
    }
  }

  std::optional<std::string> env(const std::string& name) const {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    if (const auto it = dotenv_.find(name); it != dotenv_.end()) return it->second;
    return std::nullopt;
  }

  fs::path resolve_path(std::string_view text) const {
    fs::path p(text);
    if (p.is_relative()) p = base_dir_ / p;
    return p.lexically_normal();
  }

  // Expands ${env:NAME} and ${file:PATH} references inside a scalar; "$${"
  // stands for a literal "${".
  std::optional<std::string> expand(const YAML::Node& node, const std::string& key_path,
                                    std::string_view text, bool* used_reference = nullptr) {
    std::string out;
    std::size_t i = 0;
    bool ok = true;
    while (i < text.size()) {
      if (text.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 3;
        continue;
      }
      if (text.compare(i, 2, "${") != 0) {
        out += text[i++];
        continue;
      }
      const auto close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        problem(node, key_path, "unterminated reference: expected ${env:NAME} or ${file:PATH}");
        return std::nullopt;
      }
      const std::string_view ref = text.substr(i + 2, close - i - 2);
      if (used_reference) *used_reference = true;
      if (ref.starts_with("env:")) {
        const std::string name(ref.substr(4));
        if (name.empty()) {
          problem(node, key_path, "empty variable name in ${env:}");
          ok = false;
        } else if (auto value = env(name)) {
          out += *value;
        } else {
          problem(node, key_path,
                  "unresolvable reference ${env:" + name + "}: environment variable " + name +
                      " is not set (nor in .env beside the config)");
          ok = false;
        }
      } else if (ref.starts_with("file:")) {
        const fs::path path = resolve_path(ref.substr(5));
        std::ifstream in(path, std::ios::binary);
        if (ref.size() == 5) {
          problem(node, key_path, "empty path in ${file:}");
          ok = false;
        } else if (!in) {
          problem(node, key_path,
                  "unresolvable reference ${file:" + std::string(ref.substr(5)) +
                      "}: cannot read " + path.string());
          ok = false;
        } else {
          std::stringstream buffer;
          buffer << in.rdbuf();
          std::string content = buffer.str();
          while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) {
            content.pop_back();
          }
          out += content;
        }
      } else {
        problem(
            node, key_path,
            "unknown reference ${" + std::string(ref) + "}: expected ${env:NAME} or ${file:PATH}");
        ok = false;
      }
      i = close + 1;
    }
    if (!ok) return std::nullopt;
    return out;
  }

  const EngineShape* engine(std::string_view name) const {
    for (const auto& e : options_.engines) {
      if (e.name == name) return &e;
      for (const auto& alias : e.aliases) {
        if (alias == name) return &e;
      }
    }
    return nullptr;
  }

  std::vector<std::string> engine_names() const {
    std::vector<std::string> names;
    for (const auto& e : options_.engines) {
      names.push_back(e.name);
      for (const auto& alias : e.aliases) names.push_back(alias);
    }
    return names;
  }

 private:
  fs::path file_;
  fs::path base_dir_;
  const LoadOptions& options_;
  std::vector<Problem> problems_;
  std::map<std::string, std::string> dotenv_;
};

std::string join_choices(const std::vector<std::string>& choices) {
  std::string out;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (i) out += ", ";
    out += choices[i];
  }
  return out;
}

std::string_view node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "nothing";
    default:
      return "an undefined value";
  }
}

// Reads the keys of one mapping, checking each against its declaration.
class ObjectReader {
 public:
  // decl_prefix: "" for the root, "targets[]" for a target, "targets[].tls" ...
  // display: the key path shown to users, "targets[1]", "targets[1].tls".
  ObjectReader(Ctx& ctx, const YAML::Node& node, std::string decl_prefix, std::string display)
      : ctx_(ctx), node_(node), prefix_(std::move(decl_prefix)), display_(std::move(display)) {
    if (node.IsNull() || !node.IsDefined()) return;
    if (!node.IsMap()) {
      ctx_.problem(node, display_.empty() ? "(top level)" : display_,
                   "expected a mapping, got " + std::string(node_kind(node)));
      return;
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>("");
      if (!seen.insert(key).second) {
        ctx_.problem(kv.first, path_of(key), "duplicate key");
        continue;
      }
      entries_.push_back({key, kv.first, kv.second});
    }
  }

  // Reports unknown keys and missing required ones.
  void finish() {
    std::vector<std::string> known;
    for (const auto& decl : schema()) {
      if (const auto name = child_name(decl.path)) known.push_back(*name);
    }
    for (const auto& e : entries_) {
      if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
      std::string msg = "unknown key \"" + e.key + "\"";
      if (const auto guess = did_you_mean(e.key, known)) {
        msg += " (did you mean \"" + *guess + "\"?)";
      } else {
        msg += "; expected one of: " + join_choices(known);
      }
      ctx_.problem(e.key_node, path_of(e.key), msg);
    }
    if (node_.IsMap() || node_.IsNull() || !node_.IsDefined()) {
      for (const auto& decl : schema()) {
        const auto name = child_name(decl.path);
        if (!name || !decl.required || find(*name)) continue;
        ctx_.problem(node_, path_of(*name),
                     "missing required key; expected " + std::string(key_type_name(decl.type)) +
                         (decl.type == KeyType::kEnum ? " " + choices_text(decl) : ""));
      }
    }
  }

  bool has(std::string_view key) const { return find(key) != nullptr; }

  // A scalar key (string, path, secret, connection, enum), references expanded.
  std::optional<std::string> text(std::string_view key, bool* used_reference = nullptr) {
    const auto* e = find(key);
    if (!e) return std::nullopt;
    const KeyDecl& d = decl(key);
    if (!e->value.IsScalar()) {
      ctx_.problem(e->value, path_of(key),
                   "expected " + std::string(key_type_name(d.type)) + ", got " +
                       std::string(node_kind(e->value)));
      return std::nullopt;
    }
    auto value = ctx_.expand(e->value, path_of(key), e->value.Scalar(), used_reference);
    if (!value) return std::nullopt;
    if (d.type == KeyType::kEnum) {
      const auto choices = choice_list(d);
      if (d.choices == "@engines") {
        if (const auto* shape = ctx_.engine(*value)) return shape->name;
      } else if (std::find(choices.begin(), choices.end(), *value) != choices.end()) {
        return value;
      }
      std::string msg = "unknown value \"" + *value + "\"";
      if (const auto guess = did_you_mean(*value, choices)) {
        msg += " (did you mean \"" + *guess + "\"?)";
      }
      msg += "; expected " + choices_text(d);
      ctx_.problem(e->value, path_of(key), msg);
      return std::nullopt;
    }
    if (d.type == KeyType::kPath) {
      if (value->empty()) {
        ctx_.problem(e->value, path_of(key), "expected a path, got an empty string");
        return std::nullopt;
      }
      return ctx_.resolve_path(*value).string();
    }
    return value;
  }

  std::optional<long long> integer(std::string_view key, long long min, long long max) {
    const auto* e = find(key);
    if (!e) return std::nullopt;
    auto value = text(key);
    if (!value) return std::nullopt;
    long long n = 0;
    std::size_t used = 0;
    bool ok = !value->empty();
    try {
      n = std::stoll(*value, &used);
      ok = ok && used == value->size();
    } catch (const std::exception&) {
      ok = false;
    }
    if (!ok) {
      ctx_.problem(e->value, path_of(key), "expected an integer, got \"" + *value + "\"");
      return std::nullopt;
    }
    if (n < min || n > max) {
      ctx_.problem(e->value, path_of(key),
                   "value " + std::to_string(n) + " is out of range " + std::to_string(min) + ".." +
                       std::to_string(max));
      return std::nullopt;
    }
    return n;
  }

  std::optional<bool> boolean(std::string_view key) {
    const auto* e = find(key);
    if (!e) return std::nullopt;
    auto value = text(key);
    if (!value) return std::nullopt;
    const std::string v = to_lower(*value);
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
    ctx_.problem(e->value, path_of(key),
                 "expected a boolean (true or false), got \"" + *value + "\"");
    return std::nullopt;
  }

  std::optional<std::chrono::milliseconds> duration(std::string_view key) {
    const auto* e = find(key);
    if (!e) return std::nullopt;
    auto value = text(key);
    if (!value) return std::nullopt;
    auto d = parse_duration(*value);
    if (!d) {
      ctx_.problem(e->value, path_of(key),
                   "expected a duration such as 500ms, 30s, 5m or 1h30m, got \"" + *value + "\"");
    }
    return d;
  }

  std::map<std::string, std::string> string_map(std::string_view key) {
    std::map<std::string, std::string> out;
    const auto* e = find(key);
    if (!e) return out;
    decl(key);
    if (e->value.IsNull()) return out;
    if (!e->value.IsMap()) {
      ctx_.problem(e->value, path_of(key),
                   "expected a mapping of strings, got " + std::string(node_kind(e->value)));
      return out;
    }
    for (const auto& kv : e->value) {
      const std::string k = kv.first.as<std::string>("");
      const std::string sub = path_of(key) + "." + k;
      if (!kv.second.IsScalar()) {
        ctx_.problem(kv.second, sub, "expected a string, got " + std::string(node_kind(kv.second)));
        continue;
      }
      if (auto v = ctx_.expand(kv.second, sub, kv.second.Scalar())) out[k] = *v;
    }
    return out;
  }

  std::optional<std::vector<double>> number_list(std::string_view key) {
    const auto* e = find(key);
    if (!e) return std::nullopt;
    decl(key);
    if (!e->value.IsSequence()) {
      ctx_.problem(e->value, path_of(key),
                   "expected a list of numbers, got " + std::string(node_kind(e->value)));
      return std::nullopt;
    }
    std::vector<double> out;
    for (std::size_t i = 0; i < e->value.size(); ++i) {
      const YAML::Node item = e->value[i];
      const std::string sub = path_of(key) + "[" + std::to_string(i) + "]";
      if (!item.IsScalar()) {
        ctx_.problem(item, sub, "expected a number, got " + std::string(node_kind(item)));
        return std::nullopt;
      }
      char* end = nullptr;
      const std::string text = item.Scalar();
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(v)) {
        ctx_.problem(item, sub, "expected a number, got \"" + text + "\"");
        return std::nullopt;
      }
      out.push_back(v);
    }
    return out;
  }

  std::optional<std::vector<std::string>> string_list(std::string_view key) {
    const auto* e = find(key);
    if (!e) return std::nullopt;
    decl(key);
    if (!e->value.IsSequence()) {
      ctx_.problem(e->value, path_of(key),
                   "expected a list of strings, got " + std::string(node_kind(e->value)));
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < e->value.size(); ++i) {
      const YAML::Node item = e->value[i];
      if (!item.IsScalar() || item.Scalar().empty()) {
        ctx_.problem(item, path_of(key) + "[" + std::to_string(i) + "]",
                     "expected a non-empty string, got " + std::string(node_kind(item)));
        return std::nullopt;
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  // A nested node (object or list) for the caller to read.
  const YAML::Node* node(std::string_view key) {
    const auto* e = find(key);
    if (!e) return nullptr;
    decl(key);
    return &e->value;
  }

  SourceLocation key_location(std::string_view key) const {
    const auto* e = find(key);
    return e ? location_of(e->key_node) : location_of(node_);
  }
  SourceLocation location() const { return location_of(node_); }

  std::string path_of(std::string_view key) const {
    return display_.empty() ? std::string(key) : display_ + "." + std::string(key);
  }
  const std::string& display() const { return display_; }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };

  const Entry* find(std::string_view key) const {
    for (const auto& e : entries_) {
      if (e.key == key) return &e;
    }
    return nullptr;
  }

  std::optional<std::string> child_name(std::string_view path) const {
    std::string_view rest = path;
    if (!prefix_.empty()) {
      if (!path.starts_with(prefix_) || path.size() <= prefix_.size() + 1 ||
          path[prefix_.size()] != '.') {
        return std::nullopt;
      }
      rest = path.substr(prefix_.size() + 1);
    }
    if (rest.find('.') != std::string_view::npos || rest.find('[') != std::string_view::npos) {
      return std::nullopt;
    }
    return std::string(rest);
  }

  const KeyDecl& decl(std::string_view key) const {
    const std::string full = prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
    const KeyDecl* d = find_key(full);
    if (!d) {
      // A key read by the loader must be declared in schema.cpp.
      std::abort();
    }
    return *d;
  }

  std::vector<std::string> choice_list(const KeyDecl& d) const {
    if (d.choices == "@engines") return ctx_.engine_names();
    return split(d.choices, '|');
  }
  std::string choices_text(const KeyDecl& d) const {
    return "one of: " + join_choices(choice_list(d));
  }

  Ctx& ctx_;
  YAML::Node node_;
  std::string prefix_;
  std::string display_;
  std::vector<Entry> entries_;
};

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  const auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok_first(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return ok_first(c) || c == '-' || c == '_' || c == '.'; });
}

bool is_postgres_dsn(std::string_view s) {
  return s.starts_with("postgresql://") || s.starts_with("postgres://") ||
         (s.find('=') != std::string_view::npos && s.find("://") == std::string_view::npos);
}

void read_tls(Ctx& ctx, const YAML::Node& node, const std::string& display, TlsOptions& tls) {
  ObjectReader r(ctx, node, "targets[].tls", display);
  tls.mode = r.text("mode").value_or("");
  tls.ca_file = r.text("ca_file").value_or("");
  tls.cert_file = r.text("cert_file").value_or("");
  tls.key_file = r.text("key_file").value_or("");
  tls.verify_server_cert = r.boolean("verify_server_cert");
  r.finish();
}

template <typename Fn>
void read_list(Ctx& ctx, ObjectReader& root, std::string_view key, Fn&& fn) {
  const YAML::Node* node = root.node(key);
  if (!node || node->IsNull()) return;
  if (!node->IsSequence()) {
    ctx.problem(*node, root.path_of(key),
                "expected a list of mappings, got " + std::string(node_kind(*node)));
    return;
  }
  for (std::size_t i = 0; i < node->size(); ++i) fn((*node)[i], i);
}

RetentionPolicy read_retention(Ctx& ctx, const YAML::Node& node, std::string prefix,
                               std::string display, RetentionPolicy policy) {
  ObjectReader r(ctx, node, std::move(prefix), std::move(display));
  if (auto v = r.integer("keep_last", 0, 100000)) policy.keep_last = static_cast<int>(*v);
  if (auto v = r.integer("keep_daily", 0, 100000)) policy.keep_daily = static_cast<int>(*v);
  if (auto v = r.integer("keep_weekly", 0, 100000)) policy.keep_weekly = static_cast<int>(*v);
  if (auto v = r.integer("keep_monthly", 0, 100000)) policy.keep_monthly = static_cast<int>(*v);
  if (auto v = r.duration("max_age")) {
    if (v->count() <= 0) {
      ctx.problem(r.key_location("max_age"), r.path_of("max_age"),
                  "expected a duration above zero");
    } else {
      policy.max_age = *v;
    }
  }
  r.finish();
  return policy;
}

void read_target_backup(Ctx& ctx, const YAML::Node& node, const std::string& display,
                        TargetBackup& backup) {
  ObjectReader r(ctx, node, "targets[].backup", display);
  backup.method = r.text("method").value_or("");
  if (auto v = r.string_list("databases")) backup.databases = *v;
  backup.fingerprint = r.text("fingerprint").value_or("");
  if (const auto* retention = r.node("retention")) {
    backup.retention = read_retention(ctx, *retention, "targets[].backup.retention",
                                      r.path_of("retention"), RetentionPolicy{});
  }
  if (const auto* node = r.node("pgbackrest")) {
    ObjectReader p(ctx, *node, "targets[].backup.pgbackrest", r.path_of("pgbackrest"));
    PgBackRestOptions o;
    o.stanza = p.text("stanza").value_or("");
    o.config = p.text("config").value_or("");
    o.type = p.text("type").value_or(o.type);
    o.run_as = p.text("run_as").value_or(o.run_as);
    p.finish();
    backup.pgbackrest = std::move(o);
  }
  r.finish();
}

void read_canary(Ctx& ctx, const YAML::Node& node, const std::string& display,
                 std::vector<Canary>& canaries) {
  ObjectReader r(ctx, node, "targets[].canaries[]", display);
  Canary c;
  c.name = r.text("name").value_or("");
  c.database = r.text("database").value_or("");
  c.sql = r.text("sql").value_or("");
  c.expect = r.text("expect").value_or("");
  for (const auto& other : canaries) {
    if (!c.name.empty() && other.name == c.name) {
      ctx.problem(r.key_location("name"), r.path_of("name"),
                  "duplicate canary name \"" + c.name + "\"");
    }
  }
  r.finish();
  canaries.push_back(std::move(c));
}

// The `name` of a list entry: valid, and unique among `names` (name -> line).
std::optional<std::string> read_unique_name(Ctx& ctx, ObjectReader& r, std::string_view what,
                                            std::map<std::string, int>& names) {
  auto name = r.text("name");
  if (!name) return std::nullopt;
  if (!valid_name(*name)) {
    ctx.problem(r.key_location("name"), r.path_of("name"),
                "invalid name \"" + *name +
                    "\": expected lowercase letters, digits, '.', '_' or '-', starting with a "
                    "letter or digit, at most 63 characters");
  } else if (const auto it = names.find(*name); it != names.end()) {
    ctx.problem(r.key_location("name"), r.path_of("name"),
                "duplicate " + std::string(what) + " name \"" + *name +
                    "\" (first defined at line " + std::to_string(it->second) + ")");
  } else {
    names[*name] = r.key_location("name").line;
  }
  return name;
}

void read_target(Ctx& ctx, const YAML::Node& node, std::size_t index, Config& config,
                 std::map<std::string, int>& names) {
  const std::string display = "targets[" + std::to_string(index) + "]";
  ObjectReader r(ctx, node, "targets[]", display);
  Target t;
  t.location = r.location();
  if (auto name = read_unique_name(ctx, r, "target", names)) t.name = *name;
  const auto engine = r.text("engine");
  if (engine) t.engine = *engine;
  if (auto dsn = r.text("dsn")) {
    const std::string password = redact::dsn_password(*dsn);
    if (!password.empty()) redact::register_secret(password);
    t.dsn = Secret(*dsn);
  }
  t.host = r.text("host").value_or("");
  if (auto port = r.integer("port", 1, 65535)) t.port = static_cast<int>(*port);
  t.user = r.text("user").value_or("");
  if (auto password = r.text("password")) t.password = Secret(*password);
  t.database = r.text("database").value_or("");
  t.path = r.text("path").value_or("");
  t.description = r.text("description").value_or("");
  t.tags = r.string_map("tags");
  if (const auto* tls = r.node("tls")) read_tls(ctx, *tls, r.path_of("tls"), t.tls);
  if (const auto* backup = r.node("backup")) {
    read_target_backup(ctx, *backup, r.path_of("backup"), t.backup);
  }
  read_list(ctx, r, "canaries", [&](const YAML::Node& n, std::size_t i) {
    read_canary(ctx, n, r.path_of("canaries") + "[" + std::to_string(i) + "]", t.canaries);
  });
  r.finish();

  // How the target is addressed must fit its engine.
  if (const EngineShape* shape = engine ? ctx.engine(*engine) : nullptr) {
    const bool structured =
        r.has("host") || r.has("port") || r.has("user") || r.has("password") || r.has("database");
    if (shape->file_based) {
      if (!r.has("path")) {
        ctx.problem(r.location(), r.path_of("path"),
                    "missing required key for engine " + shape->name +
                        "; expected the path of the database file");
      }
      for (const char* key : {"dsn", "host", "port", "user", "password", "database"}) {
        if (r.has(key)) {
          ctx.problem(r.key_location(key), r.path_of(key),
                      "not used by engine " + shape->name + "; expected only path");
        }
      }
    } else {
      if (r.has("path")) {
        ctx.problem(r.key_location("path"), r.path_of("path"),
                    "engine " + shape->name + " is not file-based; expected dsn or host");
      }
      if (r.has("dsn") && structured) {
        ctx.problem(r.key_location("dsn"), r.path_of("dsn"),
                    "dsn excludes host, port, user, password and database; expected one or the "
                    "other");
      } else if (!r.has("dsn") && !r.has("host")) {
        ctx.problem(r.location(), display,
                    "missing connection details; expected dsn or host (with port, user, "
                    "password, database)");
      }
      if (!t.dsn.empty()) {
        const std::string& dsn = t.dsn.reveal();
        const auto scheme_end = dsn.find("://");
        if (scheme_end != std::string::npos) {
          const std::string scheme = dsn.substr(0, scheme_end);
          if (std::find(shape->dsn_schemes.begin(), shape->dsn_schemes.end(), scheme) ==
              shape->dsn_schemes.end()) {
            ctx.problem(r.key_location("dsn"), r.path_of("dsn"),
                        "scheme \"" + scheme + "://\" does not fit engine " + shape->name +
                            "; expected " + join_choices(shape->dsn_schemes));
          }
        } else if (!shape->accepts_key_value_dsn) {
          ctx.problem(r.key_location("dsn"), r.path_of("dsn"),
                      "expected a URI such as " +
                          (shape->dsn_schemes.empty() ? std::string("scheme://")
                                                      : shape->dsn_schemes.front() + "://") +
                          "user@host:port/...");
        }
      }
    }
  }
  config.targets.push_back(std::move(t));
}

void read_notify(Ctx& ctx, const YAML::Node& node, std::size_t index, Config& config,
                 std::set<std::string>& names) {
  const std::string display = "notify[" + std::to_string(index) + "]";
  ObjectReader r(ctx, node, "notify[]", display);
  NotifyChannel n;
  n.location = r.location();
  if (auto name = r.text("name")) {
    if (!names.insert(*name).second) {
      ctx.problem(r.key_location("name"), r.path_of("name"),
                  "duplicate notify channel name \"" + *name + "\"");
    }
    n.name = *name;
  }
  n.type = r.text("type").value_or("");
  if (auto url = r.text("url")) {
    n.url = Secret(*url);
    if (!url->starts_with("http://") && !url->starts_with("https://")) {
      ctx.problem(r.key_location("url"), r.path_of("url"), "expected an http:// or https:// URL");
    }
  }
  n.min_severity = r.text("min_severity").value_or("error");
  if (auto t = r.duration("timeout")) n.timeout = *t;
  r.finish();
  config.notify.push_back(std::move(n));
}

// An error's message and, when it has one, its hint as a clause.
std::string message_with_hint(const Error& error) {
  std::string out = error.message;
  if (!error.hint.empty()) {
    std::string hint = error.hint;
    hint.front() = static_cast<char>(std::tolower(static_cast<unsigned char>(hint.front())));
    out += "; " + hint;
  }
  return out;
}

// A schedule's params: a mapping of strings or lists of strings, kept as a
// JSON object (the job-kind checks the values when the agent starts).
std::string read_params(Ctx& ctx, ObjectReader& r, std::string_view key) {
  const YAML::Node* node = r.node(key);
  if (!node || node->IsNull()) return "{}";
  if (!node->IsMap()) {
    ctx.problem(*node, r.path_of(key),
                "expected a mapping of parameters, got " + std::string(node_kind(*node)));
    return "{}";
  }
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  for (const auto& kv : *node) {
    const std::string name = kv.first.as<std::string>("");
    const std::string sub = r.path_of(key) + "." + name;
    const YAML::Node& value = kv.second;
    if (value.IsScalar()) {
      if (auto v = ctx.expand(value, sub, value.Scalar())) params[name] = *v;
      continue;
    }
    if (value.IsSequence()) {
      nlohmann::ordered_json items = nlohmann::ordered_json::array();
      for (std::size_t i = 0; i < value.size(); ++i) {
        const std::string item_path = sub + "[" + std::to_string(i) + "]";
        if (!value[i].IsScalar()) {
          ctx.problem(value[i], item_path,
                      "expected a string, got " + std::string(node_kind(value[i])));
          continue;
        }
        if (auto v = ctx.expand(value[i], item_path, value[i].Scalar())) items.push_back(*v);
      }
      params[name] = std::move(items);
      continue;
    }
    ctx.problem(value, sub,
                "expected a string or a list of strings, got " + std::string(node_kind(value)));
  }
  try {
    return params.dump();
  } catch (const nlohmann::json::exception&) {
    ctx.problem(*node, r.path_of(key), "expected UTF-8 text");
    return "{}";
  }
}

// A time_zone key: the IANA name, checked; false when it is not one.
bool read_time_zone(Ctx& ctx, ObjectReader& r, std::string& zone_out) {
  auto zone = r.text("time_zone");
  if (!zone) return true;
  zone_out = *zone;
  auto checked = cron::Schedule::parse("* * * * *", *zone);
  if (checked) return true;
  Error error = checked.error();
  if (const auto colon = error.message.find("\": "); colon != std::string::npos) {
    error.message.erase(0, colon + 3);  // the placeholder expression
  }
  ctx.problem(r.key_location("time_zone"), r.path_of("time_zone"), message_with_hint(error));
  return false;
}

// A `kind` key: a job kind's name (the registry checks it later).
std::string read_kind(Ctx& ctx, ObjectReader& r) {
  auto kind = r.text("kind");
  if (!kind) return {};
  if (trim(*kind).empty()) {
    ctx.problem(r.key_location("kind"), r.path_of("kind"),
                "expected a job kind such as backup or drill, got an empty string");
  }
  return *kind;
}

// A `target` key naming one of the config's targets.
std::string read_target_ref(Ctx& ctx, ObjectReader& r, const Config& config) {
  auto target = r.text("target");
  if (!target) return {};
  if (!config.find_target(*target)) {
    std::vector<std::string> known;
    for (const auto& t : config.targets) known.push_back(t.name);
    std::string msg = "unknown target \"" + *target + "\"";
    if (const auto guess = did_you_mean(*target, known)) {
      msg += " (did you mean \"" + *guess + "\"?)";
    } else if (known.empty()) {
      msg += "; no targets are configured";
    } else {
      msg += "; expected one of: " + join_choices(known);
    }
    ctx.problem(r.key_location("target"), r.path_of("target"), msg);
  }
  return *target;
}

// A `timeout` key that, when present, must be above zero.
std::chrono::milliseconds read_positive_timeout(Ctx& ctx, ObjectReader& r) {
  auto v = r.duration("timeout");
  if (!v) return std::chrono::milliseconds{0};
  if (v->count() <= 0) {
    ctx.problem(r.key_location("timeout"), r.path_of("timeout"),
                "expected a duration above zero (omit it for no limit)");
    return std::chrono::milliseconds{0};
  }
  return *v;
}

// When something fires: a time zone, a cron expression under `cron_key`
// (checked in that zone) unless it is "manual" and `manual` is allowed, and
// a catch_up policy.
void read_firing(Ctx& ctx, ObjectReader& r, std::string_view cron_key, bool allow_manual,
                 std::string& cron, std::string& zone, CatchUp& catch_up) {
  // The time zone first, so that the expression is checked in it.
  const bool zone_ok = read_time_zone(ctx, r, zone);
  if (auto expr = r.text(cron_key)) {
    cron = std::string(trim(*expr));
    if (!(allow_manual && cron == "manual")) {
      if (auto checked = cron::Schedule::parse(cron, zone_ok ? zone : "UTC"); !checked) {
        ctx.problem(r.key_location(cron_key), r.path_of(cron_key),
                    message_with_hint(checked.error()));
      }
    }
  }
  if (auto v = r.text("catch_up")) catch_up = *v == "once" ? CatchUp::kOnce : CatchUp::kSkip;
}

void read_schedule(Ctx& ctx, const YAML::Node& node, std::size_t index, Config& config,
                   std::map<std::string, int>& names) {
  const std::string display = "schedules[" + std::to_string(index) + "]";
  ObjectReader r(ctx, node, "schedules[]", display);
  Schedule s;
  s.location = r.location();
  if (auto name = read_unique_name(ctx, r, "schedule", names)) s.name = *name;
  read_firing(ctx, r, "cron", /*allow_manual=*/false, s.cron, s.time_zone, s.catch_up);
  s.kind = read_kind(ctx, r);
  s.target = read_target_ref(ctx, r, config);
  s.params_json = read_params(ctx, r, "params");
  if (auto v = r.integer("priority", -1000, 1000)) s.priority = static_cast<int>(*v);
  if (auto v = r.integer("max_attempts", 1, 100)) s.max_attempts = static_cast<int>(*v);
  s.timeout = read_positive_timeout(ctx, r);
  if (auto v = r.boolean("enabled")) s.enabled = *v;
  r.finish();
  config.schedules.push_back(std::move(s));
}

void read_workflow_task(Ctx& ctx, const YAML::Node& node, const std::string& display,
                        const Config& config, Workflow& workflow,
                        std::map<std::string, int>& names) {
  ObjectReader r(ctx, node, "workflows[].tasks[]", display);
  WorkflowTask t;
  t.location = r.location();
  if (auto name = read_unique_name(ctx, r, "task", names)) t.name = *name;
  t.kind = read_kind(ctx, r);
  if (t.kind == "workflow") {
    ctx.problem(r.key_location("kind"), r.path_of("kind"),
                "a task cannot run a workflow; workflows do not nest");
  }
  t.target = read_target_ref(ctx, r, config);
  t.params_json = read_params(ctx, r, "params");
  if (auto deps = r.string_list("depends_on")) t.depends_on = *deps;
  if (auto v = r.integer("retries", 0, 100)) t.retries = static_cast<int>(*v);
  t.timeout = read_positive_timeout(ctx, r);
  r.finish();
  workflow.tasks.push_back(std::move(t));
}

// Every depends_on names a task of the same workflow, and following them
// never comes back to where it started.
void check_workflow_graph(Ctx& ctx, const Workflow& w, const std::string& display,
                          const YAML::Node& tasks_node) {
  const auto task_location = [&](std::size_t i, std::string_view key) {
    const YAML::Node task = tasks_node[i];
    const YAML::Node n = task.IsMap() ? task[std::string(key)] : YAML::Node();
    return location_of(n.IsDefined() && !n.IsNull() ? n : task);
  };
  std::vector<std::string> names;
  for (const auto& t : w.tasks) names.push_back(t.name);
  bool references_ok = true;
  for (std::size_t i = 0; i < w.tasks.size(); ++i) {
    const auto& t = w.tasks[i];
    const std::string path = display + ".tasks[" + std::to_string(i) + "].depends_on";
    for (const auto& dep : t.depends_on) {
      if (dep == t.name) {
        ctx.problem(task_location(i, "depends_on"), path,
                    "task \"" + t.name + "\" depends on itself");
        references_ok = false;
      } else if (!w.find_task(dep)) {
        std::string msg = "unknown task \"" + dep + "\"";
        if (const auto guess = did_you_mean(dep, names)) {
          msg += " (did you mean \"" + *guess + "\"?)";
        } else {
          msg += "; the tasks of workflow " + w.name + " are: " + join_choices(names);
        }
        ctx.problem(task_location(i, "depends_on"), path, msg);
        references_ok = false;
      }
    }
  }
  if (!references_ok) return;
  // Depth-first search; a task met again while on the path closes a cycle.
  enum class Mark { kNew, kOnPath, kDone };
  std::vector<Mark> marks(w.tasks.size(), Mark::kNew);
  std::vector<std::size_t> path;
  const auto index_of = [&](const std::string& name) {
    for (std::size_t i = 0; i < w.tasks.size(); ++i) {
      if (w.tasks[i].name == name) return i;
    }
    return w.tasks.size();
  };
  std::function<bool(std::size_t)> visit = [&](std::size_t i) {
    marks[i] = Mark::kOnPath;
    path.push_back(i);
    for (const auto& dep : w.tasks[i].depends_on) {
      const std::size_t d = index_of(dep);
      if (marks[d] == Mark::kOnPath) {
        std::string cycle;
        const auto from = std::find(path.begin(), path.end(), d);
        for (auto it = from; it != path.end(); ++it) cycle += w.tasks[*it].name + " -> ";
        cycle += w.tasks[d].name;
        ctx.problem(
            task_location(i, "depends_on"),
            display + ".tasks[" + std::to_string(i) + "].depends_on",
            "the tasks' dependencies form a cycle: " + cycle + " (each waits for the next)");
        return false;
      }
      if (marks[d] == Mark::kNew && !visit(d)) return false;
    }
    path.pop_back();
    marks[i] = Mark::kDone;
    return true;
  };
  for (std::size_t i = 0; i < w.tasks.size(); ++i) {
    if (marks[i] == Mark::kNew && !visit(i)) return;
  }
}

void read_workflow(Ctx& ctx, const YAML::Node& node, std::size_t index, Config& config,
                   std::map<std::string, int>& names) {
  const std::string display = "workflows[" + std::to_string(index) + "]";
  ObjectReader r(ctx, node, "workflows[]", display);
  Workflow w;
  w.location = r.location();
  if (auto name = read_unique_name(ctx, r, "workflow", names)) w.name = *name;
  read_firing(ctx, r, "trigger", /*allow_manual=*/true, w.trigger, w.time_zone, w.catch_up);
  w.timeout = read_positive_timeout(ctx, r);
  if (auto v = r.integer("max_attempts", 1, 100)) w.max_attempts = static_cast<int>(*v);
  if (auto v = r.boolean("enabled")) w.enabled = *v;
  std::map<std::string, int> task_names;
  read_list(ctx, r, "tasks", [&](const YAML::Node& n, std::size_t i) {
    read_workflow_task(ctx, n, display + ".tasks[" + std::to_string(i) + "]", config, w,
                       task_names);
  });
  if (const YAML::Node* tasks = r.node("tasks"); tasks && tasks->IsSequence()) {
    if (tasks->size() == 0) {
      ctx.problem(r.key_location("tasks"), r.path_of("tasks"), "expected at least one task");
    } else {
      check_workflow_graph(ctx, w, display, *tasks);
    }
  }
  r.finish();
  config.workflows.push_back(std::move(w));
}

// A triggered workflow fires as the schedule "workflow.<name>"; no schedule
// of the config may take that name.
void check_workflow_schedule_names(Ctx& ctx, const Config& config) {
  for (const auto& w : config.workflows) {
    if (w.manual()) continue;
    for (const auto& s : config.schedules) {
      if (s.name != "workflow." + w.name) continue;
      ctx.problem(s.location, "schedules[].name",
                  "schedule name \"" + s.name + "\" is taken by the trigger of workflow " + w.name +
                      " (line " + std::to_string(w.location.line) + "); rename the schedule");
    }
  }
}

void read_probe(Ctx& ctx, const YAML::Node& node, ProbeConfig& probe) {
  ObjectReader r(ctx, node, "probe", "probe");
  if (auto v = r.integer("concurrency", 1, 4096)) probe.concurrency = static_cast<int>(*v);
  for (const char* key : {"connect_timeout", "query_timeout", "breaker_open"}) {
    auto v = r.duration(key);
    if (!v) continue;
    if (v->count() <= 0) {
      ctx.problem(r.key_location(key), r.path_of(key), "expected a duration above zero");
      continue;
    }
    const std::string_view k = key;
    (k == "connect_timeout" ? probe.connect_timeout
     : k == "query_timeout" ? probe.query_timeout
                            : probe.breaker_open) = *v;
  }
  if (auto v = r.integer("breaker_failures", 1, 1000)) {
    probe.breaker_failures = static_cast<int>(*v);
  }
  if (auto v = r.number_list("duration_buckets")) {
    if (v->empty() || !std::is_sorted(v->begin(), v->end()) ||
        std::adjacent_find(v->begin(), v->end()) != v->end() || v->front() <= 0) {
      ctx.problem(r.key_location("duration_buckets"), "probe.duration_buckets",
                  "expected positive bucket bounds in increasing order");
    } else {
      probe.duration_buckets = *v;
    }
  }
  r.finish();
}

void read_agent(Ctx& ctx, const YAML::Node& node, AgentConfig& agent) {
  ObjectReader r(ctx, node, "agent", "agent");
  if (auto listen = r.text("listen")) {
    const auto colon = listen->rfind(':');
    int port = 0;
    if (colon != std::string::npos) port = std::atoi(listen->c_str() + colon + 1);
    if (colon == std::string::npos || colon == 0 || port <= 0 || port > 65535) {
      ctx.problem(r.key_location("listen"), "agent.listen",
                  "expected host:port, e.g. 127.0.0.1:9646, got \"" + *listen + "\"");
    } else {
      agent.listen = *listen;
    }
  }
  if (auto v = r.duration("probe_interval")) {
    if (v->count() <= 0) {
      ctx.problem(r.key_location("probe_interval"), "agent.probe_interval",
                  "expected a duration above zero");
    } else {
      agent.probe_interval = *v;
    }
  }
  if (auto v = r.integer("workers", 1, 256)) agent.workers = static_cast<int>(*v);
  if (auto v = r.duration("lease")) {
    if (*v < std::chrono::seconds(1)) {
      ctx.problem(r.key_location("lease"), "agent.lease",
                  "expected at least 1s (the lease is renewed every third of it)");
    } else {
      agent.lease = *v;
    }
  }
  if (auto v = r.duration("poll_interval")) {
    if (v->count() < 10) {
      ctx.problem(r.key_location("poll_interval"), "agent.poll_interval", "expected at least 10ms");
    } else {
      agent.poll_interval = *v;
    }
  }
  if (auto v = r.duration("shutdown_grace")) agent.shutdown_grace = *v;
  if (auto v = r.duration("job_retention")) {
    if (v->count() <= 0) {
      ctx.problem(r.key_location("job_retention"), "agent.job_retention",
                  "expected a duration above zero");
    } else {
      agent.job_retention = *v;
    }
  }
  if (auto token = r.text("token")) {
    if (token->size() < 16) {
      ctx.problem(r.key_location("token"), "agent.token",
                  "expected at least 16 characters (e.g. from `openssl rand -hex 32`)");
    } else {
      agent.token = Secret(*token);
    }
  }
  r.finish();
}

void read_repository(Ctx& ctx, const YAML::Node& node, RepositoryConfig& repo) {
  ObjectReader r(ctx, node, "repository", "repository");
  repo.path = r.text("path").value_or("");
  if (const auto* compression = r.node("compression")) {
    ObjectReader c(ctx, *compression, "repository.compression", "repository.compression");
    if (auto v = c.integer("level", 1, 19)) repo.compression_level = static_cast<int>(*v);
    if (auto v = c.integer("threads", 0, 64)) repo.compression_threads = static_cast<int>(*v);
    c.finish();
  }
  if (auto key = r.text("encryption_key")) repo.encryption_key = Secret(*key);
  if (auto v = r.duration("lock_lease")) {
    if (*v < std::chrono::seconds(5)) {
      ctx.problem(r.key_location("lock_lease"), "repository.lock_lease",
                  "expected at least 5s (the lease is renewed every third of it)");
    } else {
      repo.lock_lease = *v;
    }
  }
  r.finish();
}

void read_backup_defaults(Ctx& ctx, const YAML::Node& node, BackupConfig& backup) {
  ObjectReader r(ctx, node, "backup", "backup");
  backup.fingerprint = r.text("fingerprint").value_or(backup.fingerprint);
  backup.checkpoint = r.text("checkpoint").value_or(backup.checkpoint);
  if (auto v = r.duration("timeout")) {
    if (v->count() <= 0) {
      ctx.problem(r.key_location("timeout"), "backup.timeout", "expected a duration above zero");
    } else {
      backup.timeout = *v;
    }
  }
  if (const auto* retention = r.node("retention")) {
    backup.retention =
        read_retention(ctx, *retention, "backup.retention", "backup.retention", RetentionPolicy{});
  }
  r.finish();
}

void read_drill(Ctx& ctx, const YAML::Node& node, DrillConfig& drill) {
  ObjectReader r(ctx, node, "drill", "drill");
  drill.run_as = r.text("run_as").value_or("");
  drill.base_dir = r.text("base_dir").value_or("");
  if (auto v = r.duration("timeout")) {
    if (v->count() <= 0) {
      ctx.problem(r.key_location("timeout"), "drill.timeout", "expected a duration above zero");
    } else {
      drill.timeout = *v;
    }
  }
  if (auto v = r.integer("jobs", 1, 64)) drill.jobs = static_cast<int>(*v);
  r.finish();
}

std::string render_problems(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) {
    if (!out.empty()) out += '\n';
    out += p.to_string();
  }
  return out;
}

}  // namespace

std::string Problem::to_string() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
  }
  out += ": ";
  if (!key_path.empty()) out += key_path + ": ";
  out += message;
  return out;
}

std::string_view catch_up_name(CatchUp catch_up) {
  switch (catch_up) {
    case CatchUp::kSkip:
      return "skip";
    case CatchUp::kOnce:
      return "once";
  }
  return "skip";
}

const Target* Config::find_target(std::string_view name) const {
  for (const auto& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const Workflow* Config::find_workflow(std::string_view name) const {
  for (const auto& w : workflows) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

const WorkflowTask* Workflow::find_task(std::string_view task) const {
  for (const auto& t : tasks) {
    if (t.name == task) return &t;
  }
  return nullptr;
}

Result<Config> parse_config(std::string_view text, const fs::path& file, const LoadOptions& options,
                            std::vector<Problem>* problems_out) {
  Ctx ctx(file, options);
  if (options.load_dotenv) ctx.load_dotenv();
  Config config;
  config.file = file;
  config.base_dir = ctx.base_dir();

  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    ctx.problem(SourceLocation{.line = e.mark.line + 1, .column = e.mark.column + 1}, "",
                "invalid YAML: " + e.msg);
  }
  if (ctx.problems().empty()) {
    try {
      ObjectReader r(ctx, root, "", "");
      bool used_reference = false;
      const auto state = r.text("state", &used_reference);
      if (state && is_postgres_dsn(*state)) {
        const std::string password = redact::dsn_password(*state);
        if (!password.empty()) redact::register_secret(password);
        config.state.postgres_dsn = Secret(*state);
      } else if (state && !state->empty()) {
        config.state.sqlite_path = ctx.resolve_path(*state).string();
      } else if (!state && !r.has("state")) {
        config.state.sqlite_path = ctx.resolve_path("dbops-state.db").string();
      }
      if (const auto listen = r.text("state_listen")) {
        if (!is_postgres_dsn(*listen)) {
          ctx.problem(r.key_location("state_listen"), "state_listen",
                      "expected a PostgreSQL connection string (postgresql://...)");
        } else if (!config.state.is_postgres()) {
          ctx.problem(r.key_location("state_listen"), "state_listen",
                      "only for a PostgreSQL state store; `state` is a SQLite file");
        } else {
          const std::string password = redact::dsn_password(*listen);
          if (!password.empty()) redact::register_secret(password);
          config.state.listen_dsn = Secret(*listen);
        }
      }
      std::map<std::string, int> target_names;
      read_list(ctx, r, "targets", [&](const YAML::Node& n, std::size_t i) {
        read_target(ctx, n, i, config, target_names);
      });
      if (const auto* probe = r.node("probe")) read_probe(ctx, *probe, config.probe);
      if (const auto* agent = r.node("agent")) read_agent(ctx, *agent, config.agent);
      if (const auto* repo = r.node("repository")) read_repository(ctx, *repo, config.repository);
      if (const auto* backup = r.node("backup")) read_backup_defaults(ctx, *backup, config.backup);
      if (const auto* drill = r.node("drill")) read_drill(ctx, *drill, config.drill);
      std::set<std::string> notify_names;
      read_list(ctx, r, "notify", [&](const YAML::Node& n, std::size_t i) {
        read_notify(ctx, n, i, config, notify_names);
      });
      // After the targets, which schedules name.
      std::map<std::string, int> schedule_names;
      read_list(ctx, r, "schedules", [&](const YAML::Node& n, std::size_t i) {
        read_schedule(ctx, n, i, config, schedule_names);
      });
      std::map<std::string, int> workflow_names;
      read_list(ctx, r, "workflows", [&](const YAML::Node& n, std::size_t i) {
        read_workflow(ctx, n, i, config, workflow_names);
      });
      check_workflow_schedule_names(ctx, config);
      r.finish();
    } catch (const YAML::Exception& e) {
      ctx.problem(SourceLocation{.line = e.mark.line + 1, .column = e.mark.column + 1}, "",
                  "invalid YAML: " + e.msg);
    }
  }

  auto& problems = ctx.problems();
  std::stable_sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    if (a.file != b.file) return a.file < b.file;
    if (a.line != b.line) return a.line < b.line;
    return a.column < b.column;
  });
  if (problems_out) *problems_out = problems;
  if (!problems.empty()) {
    Error error = make_error(ErrorCode::kConfig, render_problems(problems));
    error.hint = "fix the problems listed above; `dbops config check` repeats this check";
    return std::unexpected(std::move(error));
  }
  return config;
}

Result<Config> load_config(const fs::path& path, const LoadOptions& options,
                           std::vector<Problem>* problems) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Error error = make_error(ErrorCode::kConfig, "cannot read config file " + path.string());
    error.hint =
        "pass --config PATH, set DBOPS_CONFIG, or create dbops.yaml in the current directory";
    return std::unexpected(std::move(error));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_config(buffer.str(), path, options, problems);
}

fs::path resolve_config_path(std::string_view flag_value) {
  if (!flag_value.empty()) return fs::path(flag_value);
  if (const char* env = std::getenv("DBOPS_CONFIG"); env && *env) return fs::path(env);
  return fs::path("dbops.yaml");
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  long long total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    long long n = 0;
    std::size_t digits = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > 1'000'000'000LL) return std::nullopt;
      n = n * 10 + (text[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0) return std::nullopt;
    std::size_t unit_start = i;
    while (i < text.size() && text[i] >= 'a' && text[i] <= 'z') ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    long long factor = 0;
    if (unit == "ms")
      factor = 1;
    else if (unit == "s")
      factor = 1000;
    else if (unit == "m")
      factor = 60'000;
    else if (unit == "h")
      factor = 3'600'000;
    else if (unit == "d")
      factor = 86'400'000;
    else
      return std::nullopt;
    total_ms += n * factor;
  }
  return std::chrono::milliseconds(total_ms);
}

std::string format_duration(std::chrono::milliseconds duration) {
  long long ms = duration.count();
  if (ms == 0) return "0s";
  std::string out;
  const auto part = [&](long long unit, const char* suffix) {
    if (ms >= unit) {
      out += std::to_string(ms / unit) + suffix;
      ms %= unit;
    }
  };
  part(86'400'000, "d");
  part(3'600'000, "h");
  part(60'000, "m");
  part(1000, "s");
  part(1, "ms");
  return out;
}

}  // namespace dbops::config
