#include "engine/postgres/postgres_probe.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/postgres/postgres_session.hpp"

namespace dbops::engine::postgres {
namespace {

constexpr const char* kNeedsReadAllStats =
    "needs pg_monitor or pg_read_all_stats to see other roles' sessions";

// Wraps a statement in a read-only transaction whose server-side timeout ends
// with it (SET LOCAL: safe behind PgBouncer in transaction pooling mode). The
// server gives up a little before dbops's deadline, so that it usually
// cancels itself and no cancel request is needed; lock waits count too.
std::string in_transaction(std::string_view select, Deadline deadline) {
  const int remaining = deadline.remaining_ms();
  const int server_ms = std::max(1, remaining - std::min(250, remaining / 4));
  return "BEGIN READ ONLY; SET LOCAL statement_timeout = " + std::to_string(server_ms) + "; " +
         std::string(select) + "; COMMIT";
}

constexpr std::string_view kRoleFactsSql =
    "SELECT pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats, "
    "has_function_privilege('pg_ls_waldir()', 'EXECUTE') AS ls_waldir, "
    "has_function_privilege('pg_control_checkpoint()', 'EXECUTE') AS control_checkpoint";

// Reads the statistics functions directly instead of the system views built
// on them: pg_stat_activity and pg_stat_replication each expand to joins the
// planner has to work through on every round (the probe is planned afresh each
// time), and pg_stat_replication walks every backend a second time.
// pg_stat_get_activity(NULL) is walked once, pg_database is scanned once (for
// the wraparound ages and the current database's oid, which keys the
// pg_stat_get_db_* counters), and the replication state comes from
// pg_stat_get_wal_senders() without the join to pg_stat_activity.
std::string sample_sql(const RoleFacts& facts, int version_num) {
  // pg_current_wal_lsn() fails during recovery: each use sits in a CASE
  // branch that only a primary takes.
  std::string sql = R"(SELECT
  current_setting('server_version') AS server_version,
  version() AS version,
  current_setting('data_checksums') AS data_checksums,
  r.in_recovery,
  current_setting('max_connections')::bigint AS max_connections,
  pg_database_size(current_database()) AS database_size,
  extract(epoch FROM now() - pg_postmaster_start_time()) AS uptime,
  a.*, d.xid_age, d.mxid_age,
  pg_stat_get_db_xact_commit(d.db) AS xact_commit,
  pg_stat_get_db_xact_rollback(d.db) AS xact_rollback,
  pg_stat_get_db_deadlocks(d.db) AS deadlocks,
  pg_stat_get_db_temp_files(d.db) AS temp_files,
  pg_stat_get_db_temp_bytes(d.db) AS temp_bytes,
  pg_stat_get_db_blocks_fetched(d.db) - pg_stat_get_db_blocks_hit(d.db) AS blks_read,
  pg_stat_get_db_blocks_hit(d.db) AS blks_hit,
  pg_stat_get_db_conflict_all(d.db) AS conflicts,
)";
  if (version_num >= 170000) {
    sql +=
        "  pg_stat_get_checkpointer_num_timed() AS checkpoints_timed,\n"
        "  pg_stat_get_checkpointer_num_requested() AS checkpoints_req,\n";
  } else {
    sql +=
        "  pg_stat_get_bgwriter_timed_checkpoints() AS checkpoints_timed,\n"
        "  pg_stat_get_bgwriter_requested_checkpoints() AS checkpoints_req,\n";
  }
  sql += R"(  rep.*, sl.*, px.*,
  CASE WHEN r.in_recovery
       THEN pg_wal_lsn_diff(coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), '0/0')
       ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END AS wal_bytes,
  CASE WHEN r.in_recovery
       THEN greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)
       END AS lag_bytes,
  CASE WHEN r.in_recovery THEN
         CASE WHEN pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
              ELSE greatest(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END
       END AS lag_seconds,
  CASE WHEN r.in_recovery THEN pg_is_wal_replay_paused() END AS replay_paused)";
  if (facts.ls_waldir) {
    sql += ",\n  (SELECT sum(size) FROM pg_ls_waldir()) AS wal_directory_bytes";
  }
  if (facts.control_checkpoint) {
    sql += R"(,
  greatest(extract(epoch FROM now() - cp.checkpoint_time), 0) AS checkpoint_age,
  cp.timeline_id)";
  }
  sql += R"(
FROM (SELECT pg_is_in_recovery() AS in_recovery) r,
  (SELECT
    count(*) FILTER (WHERE backend_type = 'client backend') AS connections,
    count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waiting,
    count(*) FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)'))
      AS idle_in_xact,
    coalesce(max(greatest(extract(epoch FROM now() - xact_start), 0))
      FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()), 0)
      AS oldest_xact_age
  FROM pg_stat_get_activity(NULL)) a,
  (SELECT max(age(datfrozenxid)) AS xid_age, max(mxid_age(datminmxid)) AS mxid_age,
    max(oid) FILTER (WHERE datname = current_database()) AS db
  FROM pg_database) d,
  (SELECT count(*) AS replicas,
    max(CASE WHEN NOT pg_is_in_recovery()
             THEN greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) END)
      AS replica_lag_bytes,
    max(CASE WHEN replay_lag IS NOT NULL THEN extract(epoch FROM replay_lag)
             WHEN NOT pg_is_in_recovery() AND replay_lsn >= pg_current_wal_lsn() THEN 0 END)
      AS replica_lag_seconds
  FROM pg_stat_get_wal_senders()) rep,
  (SELECT count(*) AS slots, count(*) FILTER (WHERE NOT active) AS inactive_slots,
    max(CASE WHEN pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), restart_lsn)
             ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END) AS slot_retained_bytes
  FROM pg_get_replication_slots()) sl,
  (SELECT count(*) AS prepared_xacts,
    coalesce(max(greatest(extract(epoch FROM now() - prepared), 0)), 0) AS oldest_prepared_age
  FROM pg_prepared_xact()) px)";
  if (facts.control_checkpoint) sql += ",\n  pg_control_checkpoint() cp";
  return sql;
}

// The one row of the SELECT, by column name.
class Row {
 public:
  explicit Row(const QueryResult& r) : r_(r) {}
  std::optional<double> number(std::string_view col) const {
    const auto i = r_.column(col);
    if (!i || r_.is_null(0, *i)) return std::nullopt;
    return r_.number(0, *i);
  }
  std::optional<std::string> text(std::string_view col) const {
    const auto i = r_.column(col);
    if (!i || r_.is_null(0, *i)) return std::nullopt;
    return r_.text(0, *i);
  }
  bool flag(std::string_view col) const { return text(col).value_or("") == "t"; }

 private:
  const QueryResult& r_;
};

class Probe final : public HealthProbe {
 public:
  Result<ProbeSample> probe(Session& session, Deadline deadline) const override {
    auto* pg = dynamic_cast<PostgresSession*>(&session);
    if (!pg) return fail(ErrorCode::kInternal, "the postgres probe needs a postgres session");
    const auto where = [&](Error e) {
      e.with_context("probe").with_context(pg->target_name());
      return std::unexpected(std::move(e));
    };
    if (pg->server_version_num() < 100000) {
      Error e = make_error(ErrorCode::kUnsupported,
                           "postgres " + pg->server_version() + " is too old to probe");
      e.hint = "the probe needs postgres 10 or later.";
      return where(std::move(e));
    }
    if (!pg->transaction_idle()) {
      return where(make_error(ErrorCode::kInternal,
                              "the session is inside a transaction; the probe needs an idle one"));
    }
    RoleFacts& facts = pg->role_facts();
    if (!facts.known) {
      DBOPS_ASSIGN(auto results, run(*pg, kRoleFactsSql, deadline));
      const Row row(results);
      facts.read_all_stats = row.flag("read_all_stats");
      facts.ls_waldir = row.flag("ls_waldir");
      facts.control_checkpoint = row.flag("control_checkpoint");
      facts.known = true;
    }
    DBOPS_ASSIGN(auto result, run(*pg, sample_sql(facts, pg->server_version_num()), deadline));
    if (result.rows.size() != 1) {
      return where(make_error(ErrorCode::kInternal, "the probe query returned " +
                                                        std::to_string(result.rows.size()) +
                                                        " rows instead of one"));
    }
    return build(Row(result), facts);
  }

 private:
  // Runs one SELECT inside the probe transaction and returns its rows; rolls
  // back when the transaction was left open by a failure.
  static Result<QueryResult> run(PostgresSession& pg, std::string_view select, Deadline deadline) {
    auto results = pg.exec_results(in_transaction(select, deadline), deadline);
    if (!results) {
      if (pg.is_open() && !pg.transaction_idle()) {
        (void)pg.exec("ROLLBACK", Deadline::after(std::chrono::seconds(2)));
      }
      // "<target>: exec: ..." -> "<target>: probe: ..."
      Error e = std::move(results).error();
      if (e.context.size() >= 2) e.context[1] = "probe";
      return fail(std::move(e));
    }
    for (auto& r : *results) {
      if (!r.columns.empty()) return std::move(r);
    }
    Error e = make_error(ErrorCode::kInternal, "the probe query returned no result set");
    e.with_context("probe").with_context(pg.target_name());
    return fail(std::move(e));
  }

  static ProbeSample build(const Row& row, const RoleFacts& facts) {
    ProbeSample s;
    std::string version = row.text("server_version").value_or("");
    if (const auto space = version.find(' '); space != std::string::npos) version.resize(space);
    s.server_version = version;
    const bool replica = row.flag("in_recovery");
    s.role = replica ? "replica" : "primary";
    s.info["version"] = row.text("version").value_or("");
    s.info["data_checksums"] = row.text("data_checksums").value_or("");
    if (const auto t = row.text("timeline_id")) s.info["timeline_id"] = *t;

    const auto integer = [&](std::string_view col) -> std::optional<std::int64_t> {
      const auto v = row.number(col);
      if (!v) return std::nullopt;
      return static_cast<std::int64_t>(std::llround(*v));
    };
    s.max_connections = integer("max_connections");
    s.database_size_bytes = integer("database_size");
    s.uptime_seconds = row.number("uptime");
    if (facts.read_all_stats) {
      s.connections = integer("connections");
    } else {
      s.unavailable["connections"] = kNeedsReadAllStats;
    }

    if (replica) {
      s.info["replay_paused"] = row.flag("replay_paused") ? "true" : "false";
      s.replication_lag_bytes = row.number("lag_bytes");
      s.replication_lag_seconds = row.number("lag_seconds");
      if (!s.replication_lag_bytes) {
        s.unavailable["replication_lag_bytes"] =
            "the replica has no WAL receiver (not streaming from a primary)";
      }
      if (!s.replication_lag_seconds) {
        s.unavailable["replication_lag_seconds"] =
            "no transaction replayed since the replica started";
      }
    } else {
      for (const char* field : {"replication_lag_seconds", "replication_lag_bytes"}) {
        s.unavailable[field] = "not a replica (a primary reports replica_max_replay_lag_*)";
      }
    }

    using Kind = ProbeMetric::Kind;
    const auto add = [&](const char* name, std::string_view col, Kind kind, const char* help,
                         const char* missing = nullptr) {
      if (const auto v = row.number(col)) {
        s.metrics.push_back({.name = name, .value = *v, .kind = kind, .help = help});
      } else {
        s.unavailable[name] = missing ? missing : "not reported by the server";
      }
    };
    const auto add_private = [&](const char* name, std::string_view col, const char* help) {
      if (facts.read_all_stats) {
        add(name, col, Kind::kGauge, help);
      } else {
        s.unavailable[name] = kNeedsReadAllStats;
      }
    };
    add_private("oldest_xact_age_seconds", "oldest_xact_age",
                "Age of the oldest open transaction of a client session (holds back vacuum).");
    add_private("lock_waiting_sessions", "lock_waiting", "Sessions waiting for a lock.");
    add_private("idle_in_transaction_sessions", "idle_in_xact",
                "Sessions idle inside an open transaction.");

    add("xid_age", "xid_age", Kind::kGauge,
        "Transactions since the oldest unfrozen xid of any database (wraparound at 2^31).");
    if (const auto age = row.number("xid_age")) {
      s.metrics.push_back({.name = "xid_wraparound_remaining",
                           .value = 2147483648.0 - *age,
                           .help = "Transaction ids left before wraparound (2^31 - xid_age)."});
    } else {
      s.unavailable["xid_wraparound_remaining"] = "not reported by the server";
    }
    add("multixact_age", "mxid_age", Kind::kGauge,
        "Multixacts since the oldest unfrozen multixact of any database.");

    add("wal_bytes", "wal_bytes", Kind::kCounter,
        "WAL position in bytes (written on a primary, received on a replica).");
    add("checkpoints_timed", "checkpoints_timed", Kind::kCounter,
        "Checkpoints started by checkpoint_timeout.");
    add("checkpoints_req", "checkpoints_req", Kind::kCounter,
        "Checkpoints requested (max_wal_size reached, CHECKPOINT, ...).");
    add("xact_commit", "xact_commit", Kind::kCounter, "Transactions committed in this database.");
    add("xact_rollback", "xact_rollback", Kind::kCounter,
        "Transactions rolled back in this database.");
    add("deadlocks", "deadlocks", Kind::kCounter, "Deadlocks detected in this database.");
    add("temp_files", "temp_files", Kind::kCounter, "Temporary files written in this database.");
    add("temp_bytes", "temp_bytes", Kind::kCounter,
        "Bytes written to temporary files in this database.");
    add("blks_read", "blks_read", Kind::kCounter, "Blocks read from disk in this database.");
    add("blks_hit", "blks_hit", Kind::kCounter, "Blocks found in shared buffers in this database.");
    add("recovery_conflicts", "conflicts", Kind::kCounter,
        "Queries cancelled by recovery conflicts in this database (replicas).");

    add("replicas", "replicas", Kind::kGauge, "Standbys streaming from this server.");
    const double replicas = row.number("replicas").value_or(0);
    if (replicas > 0 && !facts.read_all_stats) {
      for (const char* name : {"replica_max_replay_lag_bytes", "replica_max_replay_lag_seconds"}) {
        s.unavailable[name] = kNeedsReadAllStats;
      }
    } else if (replicas > 0) {
      const char* unknown = "a standby has not reported its replay position yet";
      add("replica_max_replay_lag_bytes", "replica_lag_bytes", Kind::kGauge,
          "Largest replay lag of the standbys, in bytes of WAL.", unknown);
      add("replica_max_replay_lag_seconds", "replica_lag_seconds", Kind::kGauge,
          "Largest replay lag of the standbys, in seconds.", unknown);
    } else {
      for (const char* name : {"replica_max_replay_lag_bytes", "replica_max_replay_lag_seconds"}) {
        s.unavailable[name] = "no standby is streaming from this server";
      }
    }

    add("replication_slots", "slots", Kind::kGauge, "Replication slots.");
    add("replication_slots_inactive", "inactive_slots", Kind::kGauge,
        "Replication slots with no consumer connected (they retain WAL).");
    add("replication_slot_max_retained_bytes", "slot_retained_bytes", Kind::kGauge,
        "Most WAL retained by a replication slot.", "no replication slot");
    add("prepared_xacts", "prepared_xacts", Kind::kGauge, "Prepared (two-phase) transactions.");
    add("oldest_prepared_xact_age_seconds", "oldest_prepared_age", Kind::kGauge,
        "Age of the oldest prepared transaction.");
    if (facts.ls_waldir) {
      add("wal_directory_bytes", "wal_directory_bytes", Kind::kGauge,
          "Size of the files in pg_wal.");
    } else {
      s.unavailable["wal_directory_bytes"] = "needs pg_monitor (EXECUTE on pg_ls_waldir)";
    }
    if (facts.control_checkpoint) {
      add("checkpoint_age_seconds", "checkpoint_age", Kind::kGauge,
          "Time since the last checkpoint (restartpoint on a replica).");
    } else {
      s.unavailable["checkpoint_age_seconds"] = "needs EXECUTE on pg_control_checkpoint";
    }
    return s;
  }
};

}  // namespace

const HealthProbe& health_probe() {
  static const Probe probe;
  return probe;
}

}  // namespace dbops::engine::postgres
