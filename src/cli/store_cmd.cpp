// `dbops store status|migrate`.
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "core/json_text.hpp"
#include "core/secret.hpp"
#include "store/schema.hpp"

namespace dbops::cli {
namespace {

using json = nlohmann::ordered_json;

// "postgres postgresql://dbops:***@db1/dbops" or "sqlite /var/lib/dbops/state.db".
std::string describe_state(const config::StateConfig& state) {
  return state.is_postgres() ? "postgres " + redact::dsn(state.postgres_dsn.reveal())
                             : "sqlite " + state.sqlite_path;
}

int print_parts(Session& s, const std::vector<store::SchemaPart>& parts, std::string_view where,
                const std::vector<store::SchemaPart>* before) {
  if (s.format() == OutputFormat::kJson) {
    json out = {{"store", std::string(where)}, {"parts", json::array()}};
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const auto& p = parts[i];
      json pending = json::array();
      for (const auto& m : p.pending) {
        pending.push_back({{"version", m.version}, {"description", m.description}});
      }
      json j = {{"name", p.name},
                {"table", p.table},
                {"version", p.version},
                {"known", p.known},
                {"pending", pending}};
      if (before && i < before->size()) j["version_before"] = (*before)[i].version;
      out["parts"].push_back(std::move(j));
    }
    print(json_text(out, 2) + "\n");
    return 0;
  }
  Table t{.headers = {"PART", "VERSION", "THIS DBOPS", "PENDING", "TABLE"}};
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    std::string version = std::to_string(p.version);
    if (before && i < before->size() && (*before)[i].version != p.version) {
      version = std::to_string((*before)[i].version) + " -> " + version;
    }
    if (p.version > p.known) version += " (newer than this dbops)";
    std::string pending;
    for (const auto& m : p.pending) {
      pending += (pending.empty() ? "" : "; ") + std::to_string(m.version) + " " + m.description;
    }
    t.rows.push_back(
        {p.name, version, std::to_string(p.known), pending.empty() ? "-" : pending, p.table});
  }
  print(std::string(where) + "\n" + t.render(s.color()));
  return 0;
}

}  // namespace

int cmd_store_status(Session& s) {
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  auto parts = store::schema_status((*cfg)->state);
  if (!parts) return report(parts.error());
  return print_parts(s, *parts, describe_state((*cfg)->state), nullptr);
}

int cmd_store_migrate(Session& s) {
  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  auto before = store::schema_status((*cfg)->state);
  if (!before) return report(before.error());
  auto after = store::migrate_schema((*cfg)->state);
  if (!after) return report(after.error());
  return print_parts(s, *after, describe_state((*cfg)->state), &*before);
}

}  // namespace dbops::cli
