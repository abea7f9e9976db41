#include "engine/mysql/mysql_dialect.hpp"

#include <charconv>
#include <tuple>

namespace dbops::engine::mysql {
namespace {

// Reads "a.b.c" from the front of text; returns how many numbers it read.
int read_triplet(std::string_view text, int (&out)[3]) {
  int count = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  while (count < 3 && p < end) {
    int value = 0;
    const auto [next, ec] = std::from_chars(p, end, value);
    if (ec != std::errc() || next == p) break;
    out[count++] = value;
    p = next;
    if (p < end && *p == '.') {
      ++p;
    } else {
      break;
    }
  }
  return count;
}

}  // namespace

bool ServerVersion::at_least(int maj, int min, int pat) const {
  return std::tie(major, minor, patch) >= std::tie(maj, min, pat);
}

ServerVersion parse_server_version(std::string_view version) {
  ServerVersion v;
  v.mariadb = version.find("MariaDB") != std::string_view::npos ||
              version.find("mariadb") != std::string_view::npos;
  // Old MariaDB servers prefix "5.5.5-" so that old clients accept them.
  if (v.mariadb && version.starts_with("5.5.5-")) version.remove_prefix(6);
  int parts[3] = {0, 0, 0};
  read_triplet(version, parts);
  v.major = parts[0];
  v.minor = parts[1];
  v.patch = parts[2];
  return v;
}

Dialect dialect_for(const ServerVersion& version) {
  Dialect d;
  d.last_sql_error_column = "Last_SQL_Error";
  d.last_io_error_column = "Last_IO_Error";
  if (version.mariadb) {
    d.flavor = Dialect::Flavor::kMariaDb;
    d.name = "MariaDB";
    d.live_tested = true;
    // ALL: every multi-source connection, one row each.
    d.replica_status_sql = "SHOW ALL SLAVES STATUS";
    d.replica_status_privilege = "the REPLICA MONITOR (SLAVE MONITOR) or SUPER privilege";
    d.channel_column = "Connection_name";
    d.gtid_io_pos_column = "Gtid_IO_Pos";
    d.variables_sql =
        "SELECT @@version, @@version_comment, @@max_connections, @@read_only, @@log_bin, "
        "@@server_id, DATABASE(), @@gtid_current_pos, @@gtid_slave_pos, @@gtid_binlog_pos";
  } else {
    const bool renamed = version.at_least(8, 0, 22);
    d.flavor = renamed ? Dialect::Flavor::kMysqlReplica : Dialect::Flavor::kMysqlLegacy;
    d.name = renamed ? "MySQL 8" : "MySQL before 8.0.22";
    d.live_tested = false;
    d.replica_status_sql = renamed ? "SHOW REPLICA STATUS" : "SHOW SLAVE STATUS";
    d.replica_status_privilege = "the REPLICATION CLIENT or SUPER privilege";
    d.channel_column = "Channel_Name";
    // MySQL has one GTID set, @@gtid_executed; the slave/binlog split is MariaDB's.
    d.variables_sql =
        "SELECT @@version, @@version_comment, @@max_connections, @@read_only, @@log_bin, "
        "@@server_id, DATABASE(), @@gtid_executed, NULL, NULL";
  }
  const bool source = d.flavor == Dialect::Flavor::kMysqlReplica;
  d.lag_column = source ? "Seconds_Behind_Source" : "Seconds_Behind_Master";
  d.io_running_column = source ? "Replica_IO_Running" : "Slave_IO_Running";
  d.sql_running_column = source ? "Replica_SQL_Running" : "Slave_SQL_Running";
  d.source_host_column = source ? "Source_Host" : "Master_Host";
  d.source_port_column = source ? "Source_Port" : "Master_Port";
  d.read_file_column = source ? "Source_Log_File" : "Master_Log_File";
  d.read_pos_column = source ? "Read_Source_Log_Pos" : "Read_Master_Log_Pos";
  d.exec_file_column = source ? "Relay_Source_Log_File" : "Relay_Master_Log_File";
  d.exec_pos_column = source ? "Exec_Source_Log_Pos" : "Exec_Master_Log_Pos";
  return d;
}

}  // namespace dbops::engine::mysql
