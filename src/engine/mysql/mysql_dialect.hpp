// Which SQL a MariaDB or MySQL server understands, chosen from its version
// string.
//
// MariaDB (the version contains "MariaDB") reports replication through SHOW
// ALL SLAVES STATUS with Master_ field names and keeps its GTID position in
// @@gtid_current_pos / @@gtid_slave_pos. MySQL renamed the statement to SHOW
// REPLICA STATUS and the fields to Source_/Replica_ in 8.0.22; older MySQL
// keeps SHOW SLAVE STATUS. Only the MariaDB variant runs against a live server
// in the test suite (no MySQL 8 package here); the MySQL variants are covered
// by unit tests of this selection.
#pragma once

#include <string>
#include <string_view>

namespace dbops::engine::mysql {

struct ServerVersion {
  bool mariadb = false;
  int major = 0;
  int minor = 0;
  int patch = 0;

  // True when this version is at least major.minor.patch.
  bool at_least(int maj, int min, int pat) const;
};

// Parses "10.11.6-MariaDB-0+deb12u1", "5.5.5-10.11.6-MariaDB" (the prefix old
// MariaDB servers send to old clients), "8.0.36", "8.0.36-28" (Percona) ...
// Unparsable numbers stay 0.
ServerVersion parse_server_version(std::string_view version);

struct Dialect {
  enum class Flavor {
    kMariaDb,       // MariaDB, any version
    kMysqlLegacy,   // MySQL before 8.0.22: SHOW SLAVE STATUS, Master_ fields
    kMysqlReplica,  // MySQL 8.0.22 and later: SHOW REPLICA STATUS, Source_ fields
  };
  Flavor flavor = Flavor::kMariaDb;
  // For the capability matrix and the probe's info: "MariaDB", "MySQL 8".
  std::string name;
  // Whether the test suite runs this variant against a live server.
  bool live_tested = false;

  // One row per replication channel/connection; no rows on a primary.
  std::string replica_status_sql;
  // What a user needs to run it, for messages.
  std::string replica_status_privilege;
  // The columns of that statement's rows.
  std::string lag_column;             // Seconds_Behind_Master | Seconds_Behind_Source
  std::string io_running_column;      // Slave_IO_Running | Replica_IO_Running
  std::string sql_running_column;     // Slave_SQL_Running | Replica_SQL_Running
  std::string source_host_column;     // Master_Host | Source_Host
  std::string source_port_column;     // Master_Port | Source_Port
  std::string read_file_column;       // Master_Log_File | Source_Log_File
  std::string read_pos_column;        // Read_Master_Log_Pos | Read_Source_Log_Pos
  std::string exec_file_column;       // Relay_Master_Log_File | Relay_Source_Log_File
  std::string exec_pos_column;        // Exec_Master_Log_Pos | Exec_Source_Log_Pos
  std::string last_sql_error_column;  // Last_SQL_Error
  std::string last_io_error_column;   // Last_IO_Error
  // MariaDB only: the GTID position the IO thread has received ("" elsewhere).
  std::string gtid_io_pos_column;
  // MariaDB multi-source: the connection's name ("" elsewhere).
  std::string channel_column;

  // A one-row SELECT of server variables; columns: version, version_comment,
  // max_connections, read_only, log_bin, server_id, current_database,
  // gtid_current_pos, gtid_slave_pos, gtid_binlog_pos (NULL where the server
  // has no such variable).
  std::string variables_sql;
};

Dialect dialect_for(const ServerVersion& version);
inline Dialect dialect_for(std::string_view version) {
  return dialect_for(parse_server_version(version));
}

}  // namespace dbops::engine::mysql
