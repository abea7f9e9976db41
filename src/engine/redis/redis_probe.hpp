// The Redis HealthProbe: one INFO round trip per sample.
//
// Everything comes from INFO (ACL: +info). Only a server older than Redis 7,
// whose INFO clients lacks maxclients, costs a second round trip (CONFIG GET
// maxclients, ACL: +config|get); without that permission max_connections is
// unavailable. A user that may not run INFO gets a sample whose fields are all
// unavailable, never a failed probe.
//
// Fields:
//   server_version        redis_version
//   role                  role:master -> "primary", role:slave -> "replica"
//   replication_lag_*     on a replica only: seconds since the primary last
//                         sent anything (master_last_io_seconds_ago; while the
//                         link is down, master_link_down_since_seconds) and
//                         bytes received but not yet applied
//                         (slave_read_repl_offset - slave_repl_offset, Redis 7;
//                         older: master_repl_offset - slave_repl_offset). A
//                         replica cannot see bytes it has not received: the
//                         primary's replica_lag_bytes_max covers those.
//   connections           connected_clients
//   max_connections       maxclients
//   database_size_bytes   used_memory (Redis keeps its dataset in memory)
//   uptime_seconds        uptime_in_seconds
// Metrics: the INFO counters and gauges in redis_probe.cpp's kMetrics, plus
// memory_used_ratio (used_memory / maxmemory, when maxmemory > 0), keys and
// expires (all databases), db<N>_keys and db<N>_expires, and on a primary
// connected_replicas, replica_lag_bytes_max and replica_lag_seconds_max (over
// online replicas). Info: redis_mode, keyspace, rdb_last_bgsave_status,
// aof_enabled, aof_last_bgrewrite_status, aof_last_write_status,
// maxmemory_policy; on a replica master_link_status and primary (host:port);
// on a primary replicas ("host:port state, ...").
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "engine/probe.hpp"

namespace dbops::engine::redis {

class RedisProbe final : public HealthProbe {
 public:
  Result<ProbeSample> probe(Session& session, Deadline deadline) const override;
};

// The process's probe object (Engine::health_probe()).
const HealthProbe& health_probe();

// INFO's "key:value" lines as a map (section headers and blank lines skipped).
std::map<std::string, std::string> parse_info(std::string_view text);

// A sample from INFO's text, without max_connections when INFO lacks
// maxclients (the probe then asks CONFIG GET).
ProbeSample sample_from_info(std::string_view text);

}  // namespace dbops::engine::redis
