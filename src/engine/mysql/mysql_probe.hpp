// The MariaDB/MySQL HealthProbe.
//
// One sample is one multi-statement round trip: server variables, SHOW
// GLOBAL STATUS, the data size from information_schema.TABLES, the replica
// status and InnoDB's history list. A statement the user may not run (no
// REPLICA MONITOR, no PROCESS) ends the server's batch; the probe then marks
// that field unavailable and sends the rest again, so a least-privileged user
// costs one extra round trip per missing privilege, never a failed probe.
//
// Fields and the privilege each needs (a monitoring user has PROCESS and
// REPLICA MONITOR, a.k.a. SLAVE MONITOR):
//   server_version, connections (Threads_connected), max_connections,
//   uptime_seconds (Uptime), metrics from SHOW GLOBAL STATUS: none
//   role, replication_lag_seconds (Seconds_Behind_Master),
//   replication_lag_bytes (read minus executed position in the source's
//   binlog), replication_backlog_transactions (GTIDs received but not yet
//   applied, MariaDB): REPLICA MONITOR or SUPER
//   history_list_length: PROCESS (information_schema.INNODB_METRICS); MariaDB
//   10.11 also reports it as the status Innodb_history_list_length, used
//   when INNODB_METRICS is out of reach
//   database_size_bytes: SELECT on the tables (information_schema.TABLES only
//   lists tables the user has a privilege on); unavailable otherwise
#pragma once

#include "engine/probe.hpp"

namespace dbops::engine::mysql {

class MysqlProbe final : public HealthProbe {
 public:
  Result<ProbeSample> probe(Session& session, Deadline deadline) const override;
};

// Parses a MariaDB GTID list ("0-1-100,1-2-7") and returns, summed over the
// replication domains, how far `applied` is behind `received`; nullopt when a
// list does not parse.
std::optional<std::int64_t> gtid_backlog(std::string_view received, std::string_view applied);

}  // namespace dbops::engine::mysql
