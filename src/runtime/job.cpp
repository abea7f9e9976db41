#include "runtime/job.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/config/config.hpp"
#include "core/json_text.hpp"
#include "core/log.hpp"
#include "core/retry.hpp"
#include "core/strings.hpp"

namespace dbops::runtime {

std::string to_json(const JobSpec& spec) {
  nlohmann::ordered_json j;
  j["kind"] = spec.kind;
  if (!spec.target.empty()) j["target"] = spec.target;
  j["params"] = nlohmann::json::parse(spec.params_json, nullptr, false);
  if (j["params"].is_discarded()) j["params"] = nlohmann::json::object();
  if (!spec.idempotency_key.empty()) j["idempotency_key"] = spec.idempotency_key;
  return json_text(j);
}

Result<JobSpec> job_spec_from_json(std::string_view json) {
  const auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "job spec: expected a JSON object");
  }
  JobSpec spec;
  for (const auto& [key, value] : j.items()) {
    if (key == "kind" && value.is_string()) {
      spec.kind = value.get<std::string>();
    } else if (key == "target" && value.is_string()) {
      spec.target = value.get<std::string>();
    } else if (key == "params" && value.is_object()) {
      spec.params_json = json_text(value);
    } else if (key == "idempotency_key" && value.is_string()) {
      spec.idempotency_key = value.get<std::string>();
    } else {
      static const std::vector<std::string> kKeys = {"kind", "target", "params", "idempotency_key"};
      std::string msg = "job spec: unexpected field \"" + key + "\" or wrong type";
      if (auto guess = did_you_mean(key, kKeys); guess && *guess != key) {
        msg += " (did you mean \"" + *guess + "\"?)";
      }
      return fail(ErrorCode::kInvalidArgument, msg);
    }
  }
  if (spec.kind.empty()) return fail(ErrorCode::kInvalidArgument, "job spec: missing \"kind\"");
  return spec;
}

std::string_view param_type_name(ParamType type) {
  switch (type) {
    case ParamType::kString:
      return "string";
    case ParamType::kInt:
      return "integer";
    case ParamType::kBool:
      return "boolean";
    case ParamType::kStringList:
      return "list of strings";
    case ParamType::kDuration:
      return "duration";
  }
  return "value";
}

Result<JobParams> JobParams::parse(std::string_view json, std::span<const ParamDecl> decls) {
  const auto j =
      nlohmann::json::parse(json.empty() ? std::string_view("{}") : json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(ErrorCode::kInvalidArgument, "params: expected a JSON object");
  }
  JobParams out;
  std::vector<std::string> names;
  for (const auto& d : decls) names.emplace_back(d.name);
  for (const auto& [key, value] : j.items()) {
    const ParamDecl* decl = nullptr;
    for (const auto& d : decls) {
      if (d.name == key) decl = &d;
    }
    if (!decl) {
      std::string msg = "unknown parameter \"" + key + "\"";
      if (auto guess = did_you_mean(key, names)) msg += " (did you mean \"" + *guess + "\"?)";
      return fail(ErrorCode::kInvalidArgument, msg);
    }
    const auto wrong = [&] {
      return fail(ErrorCode::kInvalidArgument, "parameter \"" + key + "\": expected " +
                                                   std::string(param_type_name(decl->type)));
    };
    switch (decl->type) {
      case ParamType::kString:
        if (!value.is_string()) return wrong();
        out.values_[key] = value.get<std::string>();
        break;
      case ParamType::kInt:
        if (value.is_number_integer()) {
          out.values_[key] = value.get<std::int64_t>();
        } else if (value.is_string()) {
          try {
            std::size_t used = 0;
            const auto s = value.get<std::string>();
            const long long n = std::stoll(s, &used);
            if (used != s.size()) return wrong();
            out.values_[key] = static_cast<std::int64_t>(n);
          } catch (const std::exception&) {
            return wrong();
          }
        } else {
          return wrong();
        }
        break;
      case ParamType::kBool:
        if (value.is_boolean()) {
          out.values_[key] = value.get<bool>();
        } else if (value.is_string() && (value == "true" || value == "false")) {
          out.values_[key] = value == "true";
        } else {
          return wrong();
        }
        break;
      case ParamType::kStringList: {
        std::vector<std::string> items;
        if (!value.is_array()) return wrong();
        for (const auto& item : value) {
          if (!item.is_string()) return wrong();
          items.push_back(item.get<std::string>());
        }
        out.values_[key] = std::move(items);
        break;
      }
      case ParamType::kDuration: {
        if (!value.is_string()) return wrong();
        auto d = config::parse_duration(value.get<std::string>());
        if (!d) return wrong();
        out.values_[key] = *d;
        break;
      }
    }
  }
  for (const auto& d : decls) {
    if (d.required && !out.has(d.name)) {
      return fail(ErrorCode::kInvalidArgument, "missing required parameter \"" +
                                                   std::string(d.name) + "\" (" +
                                                   std::string(param_type_name(d.type)) + ")");
    }
  }
  return out;
}

bool JobParams::has(std::string_view name) const {
  return values_.find(name) != values_.end();
}

std::string JobParams::string(std::string_view name, std::string fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const auto* v = std::get_if<std::string>(&it->second);
  return v ? *v : fallback;
}
std::int64_t JobParams::integer(std::string_view name, std::int64_t fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const auto* v = std::get_if<std::int64_t>(&it->second);
  return v ? *v : fallback;
}
bool JobParams::boolean(std::string_view name, bool fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const auto* v = std::get_if<bool>(&it->second);
  return v ? *v : fallback;
}
std::vector<std::string> JobParams::strings(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return {};
  const auto* v = std::get_if<std::vector<std::string>>(&it->second);
  return v ? *v : std::vector<std::string>{};
}
std::chrono::milliseconds JobParams::duration(std::string_view name,
                                              std::chrono::milliseconds fallback) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const auto* v = std::get_if<std::chrono::milliseconds>(&it->second);
  return v ? *v : fallback;
}

void JobKindRegistry::add(std::unique_ptr<JobKind> kind) {
  kinds_.push_back(std::move(kind));
}

const JobKind* JobKindRegistry::find(std::string_view name) const {
  for (const auto& k : kinds_) {
    if (k->name() == name) return k.get();
  }
  return nullptr;
}
JobKind* JobKindRegistry::find(std::string_view name) {
  for (const auto& k : kinds_) {
    if (k->name() == name) return k.get();
  }
  return nullptr;
}

std::vector<const JobKind*> JobKindRegistry::all() const {
  std::vector<const JobKind*> out;
  for (const auto& k : kinds_) out.push_back(k.get());
  return out;
}

JobContext::JobContext(std::string run_id, const config::Config& config,
                       const config::Target* target, JobParams params, store::Store& store,
                       Clock& clock, const std::atomic<bool>* cancel)
    : run_id_(std::move(run_id)),
      config_(config),
      target_(target),
      params_(std::move(params)),
      store_(store),
      clock_(clock),
      cancel_(cancel) {}

void JobContext::event(store::Severity severity, std::string type, std::string message,
                       std::string data_json) {
  store::EventRecord e;
  e.at = clock_.now();
  e.run_id = run_id_;
  e.target = target_ ? target_->name : "";
  e.type = std::move(type);
  e.severity = severity;
  e.message = redact::scrub(message);
  e.data_json = redact::scrub(data_json);
  auto id = store_.append_event(e);
  if (id) {
    e.id = *id;
  } else {
    log::error("cannot record event", {{"type", e.type}, {"error", id.error().to_string()}});
  }
  events_.push_back(std::move(e));
}

std::string new_run_id(std::chrono::system_clock::time_point now) {
  static constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  unsigned char random[10];
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  for (auto& b : random) b = static_cast<unsigned char>(rng());
  std::string id(26, '0');
  // 48 bits of time in 10 characters, 80 bits of randomness in 16.
  std::uint64_t t = ms;
  for (int i = 9; i >= 0; --i) {
    id[i] = kAlphabet[t & 31];
    t >>= 5;
  }
  unsigned bits = 0, acc = 0;
  int pos = 10;
  for (const unsigned char b : random) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && pos < 26) {
      id[pos++] = kAlphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return id;
}

bool transient(std::optional<ErrorCode> code) {
  // core's transient codes, and a failure that is unexpected or unknown.
  if (!code || *code == ErrorCode::kInternal) return true;
  return is_transient(Error{.code = *code});
}

std::optional<std::string> check_job(const JobKindRegistry& kinds, const config::Config& config,
                                     std::string_view kind_name, std::string_view target,
                                     std::string_view params_json) {
  const JobKind* kind = kinds.find(kind_name);
  if (!kind) {
    std::vector<std::string> names;
    for (const auto* k : kinds.all()) names.emplace_back(k->name());
    std::string msg = "unknown job kind \"" + std::string(kind_name) + "\"";
    if (auto guess = did_you_mean(kind_name, names)) msg += " (did you mean \"" + *guess + "\"?)";
    return msg;
  }
  if (kind->needs_target() && target.empty()) {
    return "job kind " + std::string(kind_name) + " needs a target; expected target: NAME";
  }
  if (!target.empty() && !config.find_target(target)) {
    return "unknown target \"" + std::string(target) + "\"";
  }
  if (auto params = JobParams::parse(params_json, kind->params()); !params) {
    return "params: " + params.error().message;
  }
  return std::nullopt;
}

}  // namespace dbops::runtime
