#include "engine/mysql/mysql_probe.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "core/secret.hpp"
#include "engine/mysql/mysql_dialect.hpp"
#include "engine/mysql/mysql_session.hpp"

namespace dbops::engine::mysql {
namespace {

// The statements of one sample, in the order they are sent: those that need
// no privilege first, so that a refused one ends the batch as late as possible.
enum Part { kVariables, kStatus, kSize, kReplica, kHistory, kParts };

constexpr std::string_view kStatusSql =
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('Threads_connected', 'Threads_running', "
    "'Uptime', 'Questions', 'Slow_queries', 'Aborted_connects', 'Aborted_clients', "
    "'Connections', 'Bytes_received', 'Bytes_sent', 'Created_tmp_disk_tables', "
    "'Select_full_join', 'Innodb_buffer_pool_reads', 'Innodb_buffer_pool_read_requests', "
    "'Innodb_buffer_pool_bytes_data', 'Innodb_buffer_pool_bytes_dirty', "
    "'Innodb_row_lock_waits', 'Innodb_row_lock_time', 'Innodb_deadlocks', "
    "'Innodb_history_list_length', 'Slaves_connected', 'Max_used_connections')";

// The user's quoted name as information_schema's GRANTEE columns spell it.
#define DBOPS_GRANTEE                                               \
  "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', " \
  "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"

// The size of the session's database, or of all of them without one. The two
// counts tell whether the user sees every table (global or schema SELECT).
constexpr std::string_view kSizeSql =
    "SELECT SUM(data_length + index_length), COUNT(*), "
    "(SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = " DBOPS_GRANTEE
    " AND PRIVILEGE_TYPE = 'SELECT'), "
    "(SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = " DBOPS_GRANTEE
    " AND TABLE_SCHEMA = DATABASE() AND PRIVILEGE_TYPE = 'SELECT') "
    "FROM information_schema.TABLES WHERE table_schema = DATABASE() OR (DATABASE() IS NULL "
    "AND table_schema NOT IN ('information_schema', 'performance_schema'))";
#undef DBOPS_GRANTEE

constexpr std::string_view kHistorySql =
    "SELECT COUNT FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'";

std::optional<double> to_number(const std::optional<std::string>& text) {
  if (!text || text->empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text->c_str(), &end);
  if (end == text->c_str()) return std::nullopt;
  return v;
}

// The value of a named column in a row, nullopt for NULL or a missing column.
std::optional<std::string> cell(const QueryResult& r, std::size_t row, std::string_view column) {
  const auto c = r.column(column);
  if (!c || row >= r.rows.size()) return std::nullopt;
  return r.rows[row][*c];
}

void add_metric(ProbeSample& s, std::string name, double value, ProbeMetric::Kind kind,
                std::string help) {
  s.metrics.push_back(
      ProbeMetric{.name = std::move(name), .value = value, .kind = kind, .help = std::move(help)});
}

// Why a statement was refused, for `unavailable`.
std::string refusal(const Error& error, std::string_view needs) {
  return "needs " + std::string(needs) + " (" + error.message + ")";
}

void read_variables(const QueryResult& r, const Dialect& dialect, ProbeSample& s) {
  if (r.rows.empty()) return;
  const auto& row = r.rows.front();
  auto at = [&](std::size_t i) -> std::optional<std::string> {
    return i < row.size() ? row[i] : std::nullopt;
  };
  if (auto v = at(0)) s.server_version = *v;
  if (auto v = at(1)) s.info["version_comment"] = *v;
  if (auto v = to_number(at(2))) s.max_connections = static_cast<std::int64_t>(*v);
  if (auto v = at(3)) s.info["read_only"] = *v == "1" ? "ON" : *v == "0" ? "OFF" : *v;
  if (auto v = at(4)) s.info["log_bin"] = *v == "1" ? "ON" : *v == "0" ? "OFF" : *v;
  if (auto v = at(5)) s.info["server_id"] = *v;
  if (dialect.flavor == Dialect::Flavor::kMariaDb) {
    if (auto v = at(7)) s.info["gtid_current_pos"] = *v;
    if (auto v = at(8)) s.info["gtid_slave_pos"] = *v;
    if (auto v = at(9)) s.info["gtid_binlog_pos"] = *v;
  } else if (auto v = at(7)) {
    s.info["gtid_executed"] = *v;
  }
  s.info["dialect"] = dialect.name;
}

// history_missing: why INNODB_METRICS gave no history list length ("" when
// it did).
void read_status(const QueryResult& r, ProbeSample& s, const std::string& history_missing) {
  std::map<std::string, double, std::less<>> status;
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const auto name = cell(r, i, "Variable_name");
    const auto value = to_number(cell(r, i, "Value"));
    if (name && value) status[*name] = *value;
  }
  auto get = [&](std::string_view name) -> std::optional<double> {
    const auto it = status.find(name);
    if (it == status.end()) return std::nullopt;
    return it->second;
  };
  using K = ProbeMetric::Kind;
  if (auto v = get("Threads_connected")) s.connections = static_cast<std::int64_t>(*v);
  if (auto v = get("Uptime")) s.uptime_seconds = *v;
  struct Spec {
    std::string_view status;
    std::string_view name;
    K kind;
    double scale;
    std::string_view help;
  };
  static constexpr Spec kSpecs[] = {
      {"Threads_running", "threads_running", K::kGauge, 1, "threads executing a statement"},
      {"Max_used_connections", "max_used_connections", K::kGauge, 1,
       "most connections open at once since the server started"},
      {"Slaves_connected", "replicas_connected", K::kGauge, 1, "replicas connected to this server"},
      {"Innodb_buffer_pool_bytes_data", "innodb_buffer_pool_data_bytes", K::kGauge, 1,
       "bytes of data in the InnoDB buffer pool"},
      {"Innodb_buffer_pool_bytes_dirty", "innodb_buffer_pool_dirty_bytes", K::kGauge, 1,
       "modified bytes in the InnoDB buffer pool not yet written"},
      {"Questions", "questions", K::kCounter, 1, "statements sent by clients"},
      {"Slow_queries", "slow_queries", K::kCounter, 1,
       "statements that took longer than long_query_time"},
      {"Aborted_connects", "aborted_connects", K::kCounter, 1, "failed connection attempts"},
      {"Aborted_clients", "aborted_clients", K::kCounter, 1,
       "connections dropped without closing properly"},
      {"Connections", "connection_attempts", K::kCounter, 1,
       "connection attempts, successful or not"},
      {"Bytes_received", "received_bytes", K::kCounter, 1, "bytes received from clients"},
      {"Bytes_sent", "sent_bytes", K::kCounter, 1, "bytes sent to clients"},
      {"Created_tmp_disk_tables", "created_tmp_disk_tables", K::kCounter, 1,
       "internal temporary tables written to disk"},
      {"Select_full_join", "select_full_join", K::kCounter, 1, "joins without an index"},
      {"Innodb_buffer_pool_read_requests", "innodb_buffer_pool_read_requests", K::kCounter, 1,
       "logical page reads from the InnoDB buffer pool"},
      {"Innodb_buffer_pool_reads", "innodb_buffer_pool_reads", K::kCounter, 1,
       "page reads the buffer pool could not serve (read from disk)"},
      {"Innodb_row_lock_waits", "innodb_row_lock_waits", K::kCounter, 1,
       "times a statement waited for a row lock"},
      {"Innodb_row_lock_time", "innodb_row_lock_time_seconds", K::kCounter, 0.001,
       "time spent waiting for row locks"},
      {"Innodb_deadlocks", "innodb_deadlocks", K::kCounter, 1, "InnoDB deadlocks"},
  };
  for (const auto& spec : kSpecs) {
    if (auto v = get(spec.status)) {
      add_metric(s, std::string(spec.name), *v * spec.scale, spec.kind, std::string(spec.help));
    }
  }
  // Since start; the caller can derive the current ratio from the two counters.
  const auto requests = get("Innodb_buffer_pool_read_requests");
  const auto reads = get("Innodb_buffer_pool_reads");
  if (requests && reads && *requests > 0) {
    add_metric(s, "innodb_buffer_pool_hit_ratio", std::clamp(1.0 - *reads / *requests, 0.0, 1.0),
               K::kGauge, "share of InnoDB page reads served from the buffer pool since start");
  } else {
    s.unavailable["innodb_buffer_pool_hit_ratio"] =
        requests ? "no buffer pool reads yet" : "the server reports no InnoDB buffer pool";
  }
  // MariaDB 10.11 reports the history list as a status without any privilege.
  if (!history_missing.empty()) {
    if (auto v = get("Innodb_history_list_length")) {
      add_metric(s, "history_list_length", *v, K::kGauge,
                 "undo log entries not yet purged (InnoDB history list length)");
    } else {
      s.unavailable["history_list_length"] = history_missing;
    }
  }
}

void read_size(const QueryResult& r, const std::string& user, ProbeSample& s) {
  if (r.rows.empty()) return;
  const auto& row = r.rows.front();
  const double tables = to_number(row.size() > 1 ? row[1] : std::nullopt).value_or(0);
  const double global_select = to_number(row.size() > 2 ? row[2] : std::nullopt).value_or(0);
  const double schema_select = to_number(row.size() > 3 ? row[3] : std::nullopt).value_or(0);
  if (global_select > 0 || schema_select > 0) {
    s.database_size_bytes =
        static_cast<std::int64_t>(to_number(row.empty() ? std::nullopt : row[0]).value_or(0));
    return;
  }
  s.unavailable["database_size_bytes"] =
      "needs SELECT on the data: information_schema.TABLES lists only the tables user '" + user +
      "' has privileges on (" + std::to_string(static_cast<long long>(tables)) + " visible)";
}

void read_replica(const QueryResult& r, const Dialect& dialect, ProbeSample& s) {
  if (r.rows.empty()) {
    s.role = "primary";
    s.unavailable["replication_lag_seconds"] = "not a replica";
    s.unavailable["replication_lag_bytes"] = "not a replica";
    return;
  }
  s.role = "replica";
  std::optional<double> lag_seconds = 0.0;
  std::string lag_reason;
  std::optional<double> lag_bytes;
  std::string bytes_reason;
  std::optional<std::int64_t> backlog;
  std::vector<std::string> io_running, sql_running, sources, channels;
  const std::string applied =
      s.info.contains("gtid_slave_pos") ? s.info["gtid_slave_pos"] : std::string();
  for (std::size_t i = 0; i < r.rows.size(); ++i) {
    const std::string channel = cell(r, i, dialect.channel_column).value_or("");
    const std::string label = channel.empty() ? "" : " on connection '" + channel + "'";
    if (!channel.empty()) channels.push_back(channel);
    const std::string io = cell(r, i, dialect.io_running_column).value_or("");
    const std::string sql = cell(r, i, dialect.sql_running_column).value_or("");
    io_running.push_back(io);
    sql_running.push_back(sql);
    sources.push_back(cell(r, i, dialect.source_host_column).value_or("") + ":" +
                      cell(r, i, dialect.source_port_column).value_or(""));
    // Seconds behind: NULL while either thread is stopped.
    if (const auto lag = to_number(cell(r, i, dialect.lag_column))) {
      if (lag_seconds) lag_seconds = std::max(*lag_seconds, *lag);
    } else {
      lag_seconds.reset();
      if (sql != "Yes") {
        lag_reason = "the replica's SQL thread is not running" + label + " (" +
                     dialect.sql_running_column + "=" + sql + "); see replication_lag_bytes";
      } else if (io != "Yes") {
        lag_reason = "the replica's IO thread is not running" + label + " (" +
                     dialect.io_running_column + "=" + io + ")";
      } else {
        lag_reason = dialect.lag_column + " is NULL" + label;
      }
    }
    // Bytes: how far the SQL thread trails the IO thread in the source's binlog.
    const auto read_file = cell(r, i, dialect.read_file_column);
    const auto exec_file = cell(r, i, dialect.exec_file_column);
    const auto read_pos = to_number(cell(r, i, dialect.read_pos_column));
    const auto exec_pos = to_number(cell(r, i, dialect.exec_pos_column));
    if (read_file && exec_file && *read_file == *exec_file && read_pos && exec_pos) {
      lag_bytes = std::max(lag_bytes.value_or(0), std::max(0.0, *read_pos - *exec_pos));
    } else if (read_file && exec_file && *read_file != *exec_file) {
      bytes_reason = "the SQL thread is on binlog " + *exec_file + " while the IO thread is on " +
                     *read_file + label + "; the distance needs the source's file sizes";
    }
    // Transactions received but not applied (MariaDB GTID).
    if (!dialect.gtid_io_pos_column.empty()) {
      const auto received = cell(r, i, dialect.gtid_io_pos_column);
      if (received && !received->empty()) {
        if (const auto b = gtid_backlog(*received, applied)) backlog = backlog.value_or(0) + *b;
      }
    }
    if (const auto e = cell(r, i, dialect.last_sql_error_column); e && !e->empty()) {
      s.info["replica_last_sql_error" + (channel.empty() ? "" : "." + channel)] = redact::scrub(*e);
    }
    if (const auto e = cell(r, i, dialect.last_io_error_column); e && !e->empty()) {
      s.info["replica_last_io_error" + (channel.empty() ? "" : "." + channel)] = redact::scrub(*e);
    }
    if (!dialect.gtid_io_pos_column.empty()) {
      if (const auto g = cell(r, i, dialect.gtid_io_pos_column); g && !g->empty()) {
        s.info["gtid_io_pos" + (channel.empty() ? "" : "." + channel)] = *g;
      }
    }
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  };
  s.info["replica_io_running"] = join(io_running);
  s.info["replica_sql_running"] = join(sql_running);
  s.info["replica_source"] = join(sources);
  if (!channels.empty()) s.info["replica_connections"] = join(channels);
  if (lag_seconds) {
    s.replication_lag_seconds = lag_seconds;
  } else {
    s.unavailable["replication_lag_seconds"] = lag_reason;
  }
  if (lag_bytes && bytes_reason.empty()) {
    s.replication_lag_bytes = lag_bytes;
  } else {
    s.unavailable["replication_lag_bytes"] =
        bytes_reason.empty() ? "the replica reports no binlog positions" : bytes_reason;
  }
  if (backlog) {
    add_metric(s, "replication_backlog_transactions", static_cast<double>(*backlog),
               ProbeMetric::Kind::kGauge,
               "transactions the replica received (GTID) but has not applied yet");
  }
}

}  // namespace

std::optional<std::int64_t> gtid_backlog(std::string_view received, std::string_view applied) {
  // domain -> highest sequence number
  auto parse = [](std::string_view list) -> std::optional<std::map<std::int64_t, std::int64_t>> {
    std::map<std::int64_t, std::int64_t> out;
    while (!list.empty()) {
      const auto comma = list.find(',');
      std::string_view item = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) {
        item.remove_prefix(1);
      }
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) {
        item.remove_suffix(1);
      }
      if (item.empty()) continue;
      const auto d1 = item.find('-');
      const auto d2 = item.rfind('-');
      if (d1 == std::string_view::npos || d1 == d2) return std::nullopt;
      std::int64_t domain = 0, seq = 0;
      const auto domain_text = item.substr(0, d1);
      const auto seq_text = item.substr(d2 + 1);
      if (std::from_chars(domain_text.data(), domain_text.data() + domain_text.size(), domain).ec !=
              std::errc() ||
          std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), seq).ec !=
              std::errc()) {
        return std::nullopt;
      }
      out[domain] = std::max(out[domain], seq);
    }
    return out;
  };
  const auto r = parse(received);
  const auto a = parse(applied);
  if (!r || !a) return std::nullopt;
  std::int64_t total = 0;
  for (const auto& [domain, seq] : *r) {
    const auto it = a->find(domain);
    const std::int64_t done = it == a->end() ? 0 : it->second;
    total += std::max<std::int64_t>(0, seq - done);
  }
  return total;
}

Result<ProbeSample> MysqlProbe::probe(Session& session, Deadline deadline) const {
  auto* s = dynamic_cast<MysqlSession*>(&session);
  if (!s) {
    return fail(ErrorCode::kInvalidArgument,
                "the mysql probe needs a mysql session, got " + std::string(session.engine()));
  }
  const Dialect dialect = dialect_for(s->server_version());
  const std::string statements[kParts] = {dialect.variables_sql, std::string(kStatusSql),
                                          std::string(kSizeSql), dialect.replica_status_sql,
                                          std::string(kHistorySql)};

  // One round trip, plus one per statement the server refuses; a refusal is
  // remembered on the session, so later rounds skip the statement.
  std::optional<QueryResult> results[kParts];
  std::optional<Error> errors[kParts];
  std::vector<std::string> sent;
  std::vector<std::size_t> parts;
  for (std::size_t i = 0; i < kParts; ++i) {
    if (const Error* known = s->refused(statements[i])) {
      errors[i] = *known;
    } else {
      sent.push_back(statements[i]);
      parts.push_back(i);
    }
  }
  std::size_t next = 0;
  while (next < sent.size()) {
    DBOPS_ASSIGN(BatchResult batch,
                 s->batch(std::span<const std::string>(sent).subspan(next), deadline));
    if (batch.results.empty() && !batch.error) break;  // the server ran nothing
    for (auto& r : batch.results) results[parts[next++]] = std::move(r);
    if (batch.error && next < sent.size()) {
      const std::size_t part = parts[next++];
      if (part != kVariables && part != kStatus) {
        s->remember_refused(statements[part], *batch.error);
      }
      errors[part] = std::move(batch.error);
    }
  }
  // The first two need no privilege: their failure is the probe's.
  for (const Part part : {kVariables, kStatus}) {
    if (errors[part]) {
      Error e = *errors[part];
      e.with_context("probe");
      return fail(std::move(e));
    }
    if (!results[part]) {
      return fail(make_error(ErrorCode::kInternal, "the server answered fewer statements than sent")
                      .with_context("probe")
                      .with_context(s->params().target));
    }
  }
  auto why_not = [&](Part part, std::string_view needs) -> std::string {
    return errors[part] ? refusal(*errors[part], needs) : "the server sent no result";
  };

  ProbeSample sample;
  sample.server_version = s->server_version();
  read_variables(*results[kVariables], dialect, sample);

  // Replica status before the rest: it reads gtid_slave_pos from info.
  if (results[kReplica]) {
    read_replica(*results[kReplica], dialect, sample);
  } else {
    const std::string why = why_not(kReplica, dialect.replica_status_privilege);
    sample.unavailable["role"] = why;
    sample.unavailable["replication_lag_seconds"] = why;
    sample.unavailable["replication_lag_bytes"] = why;
  }

  bool history_done = false;
  if (results[kHistory] && !results[kHistory]->rows.empty()) {
    if (const auto v = to_number(results[kHistory]->rows.front().front())) {
      add_metric(sample, "history_list_length", *v, ProbeMetric::Kind::kGauge,
                 "undo log entries not yet purged (InnoDB history list length)");
      history_done = true;
    }
  }
  read_status(*results[kStatus], sample, history_done ? "" : why_not(kHistory, "PROCESS"));

  if (results[kSize]) {
    read_size(*results[kSize], s->params().user, sample);
  } else {
    sample.unavailable["database_size_bytes"] = why_not(kSize, "access to information_schema");
  }
  return sample;
}

}  // namespace dbops::engine::mysql
