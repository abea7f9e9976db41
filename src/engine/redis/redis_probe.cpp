#include "engine/redis/redis_probe.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <vector>

#include "core/secret.hpp"
#include "engine/redis/redis_session.hpp"

namespace dbops::engine::redis {
namespace {

using Kind = ProbeMetric::Kind;

std::optional<double> number(const std::map<std::string, std::string>& info, const char* key) {
  const auto it = info.find(key);
  if (it == info.end() || it->second.empty()) return std::nullopt;
  double value = 0;
  const auto* first = it->second.data();
  const auto* last = first + it->second.size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (ec != std::errc() || end != last) return std::nullopt;
  return value;
}

std::optional<std::string> text(const std::map<std::string, std::string>& info, const char* key) {
  const auto it = info.find(key);
  if (it == info.end()) return std::nullopt;
  return it->second;
}

// "ip=127.0.0.1,port=6380,state=online" -> {ip: ..., port: ..., state: ...}
std::map<std::string, std::string> split_fields(std::string_view line) {
  std::map<std::string, std::string> out;
  while (!line.empty()) {
    const auto comma = line.find(',');
    const auto item = line.substr(0, comma);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos) {
      out.emplace(std::string(item.substr(0, eq)), std::string(item.substr(eq + 1)));
    }
    if (comma == std::string_view::npos) break;
    line.remove_prefix(comma + 1);
  }
  return out;
}

std::optional<double> field_number(const std::map<std::string, std::string>& fields,
                                   const char* key) {
  return number(fields, key);
}

void add(ProbeSample& s, std::string name, double value, Kind kind, std::string help) {
  s.metrics.push_back(ProbeMetric{std::move(name), value, kind, std::move(help)});
}

void all_unavailable(ProbeSample& s, const std::string& why) {
  for (const char* field :
       {"server_version", "role", "replication_lag_seconds", "replication_lag_bytes", "connections",
        "max_connections", "database_size_bytes", "uptime_seconds", "metrics"}) {
    s.unavailable[field] = why;
  }
}

void replication(const std::map<std::string, std::string>& info, ProbeSample& s) {
  const auto role = text(info, "role");
  if (!role) {
    s.unavailable["role"] = "INFO has no role field";
    s.unavailable["replication_lag_seconds"] = s.unavailable["replication_lag_bytes"] =
        "INFO has no replication section";
    return;
  }
  if (*role == "master") {
    s.role = "primary";
  } else if (*role == "slave") {
    s.role = "replica";
  } else {
    s.role = *role;
  }
  if (*role == "slave") {
    const auto link = text(info, "master_link_status").value_or("");
    s.info["master_link_status"] = link;
    if (auto host = text(info, "master_host")) {
      s.info["primary"] = *host + ":" + text(info, "master_port").value_or("?");
    }
    const auto syncing = number(info, "master_sync_in_progress").value_or(0) != 0;
    const auto down_since = number(info, "master_link_down_since_seconds");
    const auto last_io = number(info, "master_last_io_seconds_ago");
    if (link != "up" && down_since && *down_since >= 0) {
      s.replication_lag_seconds = *down_since;
    } else if (link == "up" && last_io && *last_io >= 0) {
      s.replication_lag_seconds = *last_io;
    } else {
      s.unavailable["replication_lag_seconds"] =
          syncing ? "the replica is in its initial sync with the primary"
                  : "the replica has not yet connected to its primary (master_link_status:" + link +
                        ")";
    }
    if (link != "up") {
      s.unavailable["replication_lag_bytes"] =
          syncing ? "the replica is in its initial sync with the primary"
                  : "the link to the primary is down (master_link_status:" + link + ")";
    } else {
      const auto applied = number(info, "slave_repl_offset");
      auto received = number(info, "slave_read_repl_offset");
      if (!received) received = number(info, "master_repl_offset");
      if (applied && received) {
        s.replication_lag_bytes = std::max(0.0, *received - *applied);
      } else {
        s.unavailable["replication_lag_bytes"] = "INFO replication has no slave_repl_offset";
      }
    }
    return;
  }
  const std::string why = "not a replica (role " + s.role + ")";
  s.unavailable["replication_lag_seconds"] =
      why + "; replica_lag_seconds_max is the replicas' lag as the primary sees it";
  s.unavailable["replication_lag_bytes"] =
      why + "; replica_lag_bytes_max is the replicas' lag as the primary sees it";
  if (*role != "master") return;
  const auto primary_offset = number(info, "master_repl_offset").value_or(0);
  add(s, "connected_replicas", number(info, "connected_slaves").value_or(0), Kind::kGauge,
      "replicas connected to this primary (connected_slaves)");
  std::optional<double> max_bytes, max_seconds;
  std::string replicas;
  for (int i = 0;; ++i) {
    const auto line = text(info, ("slave" + std::to_string(i)).c_str());
    if (!line) break;
    const auto fields = split_fields(*line);
    const auto state = fields.count("state") ? fields.at("state") : std::string("?");
    if (!replicas.empty()) replicas += ", ";
    replicas += (fields.count("ip") ? fields.at("ip") : "?") + ":" +
                (fields.count("port") ? fields.at("port") : "?") + " " + state;
    if (state != "online") continue;
    if (const auto offset = field_number(fields, "offset")) {
      const double lag = std::max(0.0, primary_offset - *offset);
      max_bytes = std::max(max_bytes.value_or(0), lag);
    }
    if (const auto lag = field_number(fields, "lag")) {
      max_seconds = std::max(max_seconds.value_or(0), *lag);
    }
  }
  if (!replicas.empty()) s.info["replicas"] = replicas;
  if (max_bytes) {
    add(s, "replica_lag_bytes_max", *max_bytes, Kind::kGauge,
        "largest master_repl_offset minus an online replica's acknowledged offset");
  }
  if (max_seconds) {
    add(s, "replica_lag_seconds_max", *max_seconds, Kind::kGauge,
        "longest time since an online replica last acknowledged (lag in INFO's slaveN lines)");
  }
}

struct MetricSpec {
  const char* key;   // INFO field
  const char* name;  // metric name
  Kind kind;
  const char* help;
};

// The numeric INFO fields reported as metrics as they are.
constexpr MetricSpec kMetrics[] = {
    {"used_memory", "used_memory_bytes", Kind::kGauge,
     "memory allocated by Redis (used_memory); also the sample's database_size_bytes, since "
     "Redis keeps its dataset in memory"},
    {"used_memory_rss", "used_memory_rss_bytes", Kind::kGauge,
     "resident memory of the Redis process (used_memory_rss)"},
    {"maxmemory", "maxmemory_bytes", Kind::kGauge, "the maxmemory limit; 0 means no limit"},
    {"mem_fragmentation_ratio", "mem_fragmentation_ratio", Kind::kGauge,
     "used_memory_rss divided by used_memory"},
    {"blocked_clients", "blocked_clients", Kind::kGauge,
     "clients waiting in a blocking command (BLPOP, XREAD BLOCK, WAIT ...)"},
    {"instantaneous_ops_per_sec", "ops_per_second", Kind::kGauge,
     "commands per second over the server's last samples"},
    {"rdb_changes_since_last_save", "rdb_changes_since_last_save", Kind::kGauge,
     "writes since the last RDB snapshot"},
    {"rdb_last_save_time", "rdb_last_save_timestamp_seconds", Kind::kGauge,
     "Unix time of the last successful RDB snapshot"},
    {"evicted_keys", "evicted_keys", Kind::kCounter, "keys evicted because of maxmemory"},
    {"expired_keys", "expired_keys", Kind::kCounter, "keys removed because their TTL passed"},
    {"rejected_connections", "rejected_connections", Kind::kCounter,
     "connections refused because maxclients was reached"},
    {"total_connections_received", "connections_received", Kind::kCounter, "connections accepted"},
    {"total_commands_processed", "commands_processed", Kind::kCounter, "commands processed"},
    {"total_error_replies", "error_replies", Kind::kCounter, "error replies sent to clients"},
    {"keyspace_hits", "keyspace_hits", Kind::kCounter, "successful key lookups"},
    {"keyspace_misses", "keyspace_misses", Kind::kCounter, "failed key lookups"},
    {"total_net_input_bytes", "net_input_bytes", Kind::kCounter, "bytes read from the network"},
    {"total_net_output_bytes", "net_output_bytes", Kind::kCounter, "bytes written to the network"},
};

}  // namespace

std::map<std::string, std::string> parse_info(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    const auto eol = text.find('\n');
    auto line = text.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && line.front() != '#') {
      const auto colon = line.find(':');
      if (colon != std::string_view::npos) {
        out.insert_or_assign(std::string(line.substr(0, colon)),
                             std::string(line.substr(colon + 1)));
      }
    }
    if (eol == std::string_view::npos) break;
    text.remove_prefix(eol + 1);
  }
  return out;
}

ProbeSample sample_from_info(std::string_view info_text) {
  const auto info = parse_info(info_text);
  ProbeSample s;
  if (auto v = text(info, "redis_version")) {
    s.server_version = *v;
  } else {
    s.unavailable["server_version"] = "INFO has no redis_version";
  }
  replication(info, s);
  if (auto v = number(info, "connected_clients")) {
    s.connections = static_cast<std::int64_t>(*v);
  } else {
    s.unavailable["connections"] = "INFO has no connected_clients";
  }
  if (auto v = number(info, "maxclients")) s.max_connections = static_cast<std::int64_t>(*v);
  if (auto v = number(info, "used_memory")) {
    s.database_size_bytes = static_cast<std::int64_t>(*v);
  } else {
    s.unavailable["database_size_bytes"] = "INFO has no used_memory";
  }
  if (auto v = number(info, "uptime_in_seconds")) {
    s.uptime_seconds = *v;
  } else {
    s.unavailable["uptime_seconds"] = "INFO has no uptime_in_seconds";
  }
  for (const auto& m : kMetrics) {
    if (auto v = number(info, m.key)) add(s, m.name, *v, m.kind, m.help);
  }
  const auto used = number(info, "used_memory");
  const auto max = number(info, "maxmemory");
  if (used && max && *max > 0) {
    add(s, "memory_used_ratio", *used / *max, Kind::kGauge, "used_memory divided by maxmemory");
  }
  // Keyspace: "db0:keys=1,expires=0,avg_ttl=0".
  double keys = 0, expires = 0;
  std::string keyspace;
  for (const auto& [key, value] : info) {
    if (!key.starts_with("db") || key.size() < 3 ||
        !std::all_of(key.begin() + 2, key.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    const auto fields = split_fields(value);
    const double k = field_number(fields, "keys").value_or(0);
    const double e = field_number(fields, "expires").value_or(0);
    keys += k;
    expires += e;
    add(s, key + "_keys", k, Kind::kGauge, "keys in database " + key.substr(2));
    add(s, key + "_expires", e, Kind::kGauge, "keys with a TTL in database " + key.substr(2));
    if (!keyspace.empty()) keyspace += " ";
    keyspace += key + ":" + value;
  }
  add(s, "keys", keys, Kind::kGauge, "keys in all databases");
  add(s, "expires", expires, Kind::kGauge, "keys with a TTL in all databases");
  s.info["keyspace"] = keyspace;
  for (const char* key : {"redis_mode", "rdb_last_bgsave_status", "maxmemory_policy",
                          "aof_last_bgrewrite_status", "aof_last_write_status"}) {
    if (auto v = text(info, key)) s.info[key] = *v;
  }
  if (auto v = text(info, "aof_enabled")) s.info["aof_enabled"] = *v == "1" ? "yes" : "no";
  return s;
}

Result<ProbeSample> RedisProbe::probe(Session& session, Deadline deadline) const {
  auto* commands = dynamic_cast<CommandSession*>(&session);
  if (!commands || session.engine() != "redis") {
    return fail(ErrorCode::kInvalidArgument,
                "the redis probe needs a redis session, got " + std::string(session.engine()));
  }
  const std::vector<std::string> info_cmd{"INFO"};
  DBOPS_ASSIGN(Reply reply, commands->command(info_cmd, deadline));
  if (reply.type == Reply::Type::kError) {
    const auto prefix = reply.str.substr(0, reply.str.find(' '));
    if (prefix == "NOPERM" || prefix == "NOAUTH") {
      ProbeSample s;
      all_unavailable(
          s, "INFO is not permitted (" + prefix + "); grant it with ACL SETUSER <user> +info");
      s.server_version = session.server_version();
      if (!s.server_version.empty()) s.unavailable.erase("server_version");
      return s;
    }
    return fail(*reply_error(reply, "INFO"));
  }
  if (reply.type != Reply::Type::kString) {
    return fail(ErrorCode::kInternal, "INFO: expected a bulk string reply");
  }
  ProbeSample s = sample_from_info(reply.str);
  if (!s.max_connections) {
    // Redis < 7 has no maxclients in INFO clients.
    const std::vector<std::string> config_cmd{"CONFIG", "GET", "maxclients"};
    DBOPS_ASSIGN(Reply config, commands->command(config_cmd, deadline));
    if (config.type == Reply::Type::kArray && config.elements.size() == 2 &&
        config.elements[1].type == Reply::Type::kString) {
      s.max_connections = std::strtoll(config.elements[1].str.c_str(), nullptr, 10);
    } else if (config.type == Reply::Type::kError) {
      s.unavailable["max_connections"] =
          "INFO has no maxclients (Redis < 7) and CONFIG GET maxclients failed: " +
          redact::scrub(config.str) + "; grant +config|get";
    } else {
      s.unavailable["max_connections"] = "INFO has no maxclients and CONFIG GET returned none";
    }
  }
  return s;
}

const HealthProbe& health_probe() {
  static const RedisProbe probe;
  return probe;
}

}  // namespace dbops::engine::redis
