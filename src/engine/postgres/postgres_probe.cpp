#include "engine/postgres/postgres_probe.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <string>
#include <utility>

#include "engine/postgres/postgres_session.hpp"

namespace dbops::engine::postgres {
namespace {

using Clock = Deadline::Clock;

constexpr const char* kNeedsReadAllStats =
    "needs pg_monitor or pg_read_all_stats to see other roles' sessions";

// Wraps a SELECT in a read-only transaction whose settings end with it (SET
// LOCAL: safe behind PgBouncer in transaction pooling mode):
// - statement_timeout: the server gives up a little before dbops's deadline,
//   so that it usually cancels itself and no cancel request is needed; lock
//   waits count too.
// - join_collapse_limit = 1: the SELECT cross-joins one-row subqueries, and
//   the planner would otherwise try every order of joining them, each time:
//   a simple-protocol statement is planned afresh on every probe. Taking
//   them in the order written saves about 40% of the server's instructions
//   for the whole probe (callgrind, PostgreSQL 15).
std::string in_transaction(std::string_view select, Deadline deadline) {
  const int remaining = deadline.remaining_ms();
  const int server_ms = std::max(1, remaining - std::min(250, remaining / 4));
  return "BEGIN READ ONLY; SET LOCAL statement_timeout = " + std::to_string(server_ms) +
         "; SET LOCAL join_collapse_limit = 1; " + std::string(select) + "; COMMIT";
}

constexpr std::string_view kRoleFactsSql =
    "SELECT pg_has_role('pg_read_all_stats', 'USAGE') AS read_all_stats, "
    "has_function_privilege('pg_ls_waldir()', 'EXECUTE') AS ls_waldir, "
    "has_function_privilege('pg_control_checkpoint()', 'EXECUTE') AS control_checkpoint";

// The columns of the slow fields (see SlowFields and ProbeOptions): settings
// that only change with a restart, the database size (the server stats every
// file of the database), the wraparound ages (a scan of pg_database) and the
// size of pg_wal (a stat of every segment).
constexpr std::string_view kSlowColumns[] = {
    "server_version", "version", "data_checksums", "max_connections",
    "database_size",  "xid_age", "mxid_age",       "wal_directory_bytes"};

// The sample fields that come from the slow columns, as ProbeSample names
// them ("version" is both server_version and info "version").
constexpr const char* kSlowFields[] = {
    "version", "data_checksums",           "max_connections", "database_size_bytes",
    "xid_age", "xid_wraparound_remaining", "multixact_age",   "wal_directory_bytes"};

// Which parts of the sample one SELECT reads.
struct Parts {
  bool fast = true;  // everything but the slow fields
  bool slow = true;  // the slow fields
};

// Reads the statistics functions directly instead of the system views built
// on them: pg_stat_activity and pg_stat_replication each expand to joins the
// planner has to work through on every round (the probe is planned afresh each
// time), and pg_stat_replication walks every backend a second time.
// pg_stat_get_activity(NULL) is walked once (it also gives this session's
// database oid, which keys the pg_stat_get_db_* counters), pg_database is
// scanned only for the slow wraparound ages, and the replication state comes
// from pg_stat_get_wal_senders() without the join to pg_stat_activity. Every
// SELECT also returns the server's start time, which tells whether slow fields
// read earlier still hold.
std::string sample_sql(const RoleFacts& facts, int version_num, Parts parts) {
  std::string select = "SELECT extract(epoch FROM pg_postmaster_start_time()) AS started";
  std::string from = "\nFROM (SELECT pg_is_in_recovery() AS in_recovery) r";
  if (parts.fast) {
    // pg_current_wal_lsn() fails during recovery: each use sits in a CASE
    // branch that only a primary takes.
    select += R"(,
  r.in_recovery,
  extract(epoch FROM now() - pg_postmaster_start_time()) AS uptime,
  a.connections, a.lock_waiting, a.idle_in_xact, a.oldest_xact_age,
  pg_stat_get_db_xact_commit(a.db) AS xact_commit,
  pg_stat_get_db_xact_rollback(a.db) AS xact_rollback,
  pg_stat_get_db_deadlocks(a.db) AS deadlocks,
  pg_stat_get_db_temp_files(a.db) AS temp_files,
  pg_stat_get_db_temp_bytes(a.db) AS temp_bytes,
  pg_stat_get_db_blocks_fetched(a.db) - pg_stat_get_db_blocks_hit(a.db) AS blks_read,
  pg_stat_get_db_blocks_hit(a.db) AS blks_hit,
  pg_stat_get_db_conflict_all(a.db) AS conflicts,
)";
    if (version_num >= 170000) {
      select +=
          "  pg_stat_get_checkpointer_num_timed() AS checkpoints_timed,\n"
          "  pg_stat_get_checkpointer_num_requested() AS checkpoints_req,\n";
    } else {
      select +=
          "  pg_stat_get_bgwriter_timed_checkpoints() AS checkpoints_timed,\n"
          "  pg_stat_get_bgwriter_requested_checkpoints() AS checkpoints_req,\n";
    }
    select += R"(  rep.*, sl.*, px.*,
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
    if (facts.control_checkpoint) {
      select += R"(,
  greatest(extract(epoch FROM now() - cp.checkpoint_time), 0) AS checkpoint_age,
  cp.timeline_id)";
    }
    from += R"( CROSS JOIN
  (SELECT
    count(*) FILTER (WHERE backend_type = 'client backend') AS connections,
    count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_waiting,
    count(*) FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)'))
      AS idle_in_xact,
    coalesce(max(greatest(extract(epoch FROM now() - xact_start), 0))
      FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()), 0)
      AS oldest_xact_age,
    max(datid) FILTER (WHERE pid = pg_backend_pid()) AS db
  FROM pg_stat_get_activity(NULL)) a CROSS JOIN
  (SELECT count(*) AS replicas,
    max(CASE WHEN NOT pg_is_in_recovery()
             THEN greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) END)
      AS replica_lag_bytes,
    max(CASE WHEN replay_lag IS NOT NULL THEN extract(epoch FROM replay_lag)
             WHEN NOT pg_is_in_recovery() AND replay_lsn >= pg_current_wal_lsn() THEN 0 END)
      AS replica_lag_seconds
  FROM pg_stat_get_wal_senders()) rep CROSS JOIN
  (SELECT count(*) AS slots, count(*) FILTER (WHERE NOT active) AS inactive_slots,
    max(CASE WHEN pg_is_in_recovery() THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), restart_lsn)
             ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) END) AS slot_retained_bytes
  FROM pg_get_replication_slots()) sl CROSS JOIN
  (SELECT count(*) AS prepared_xacts,
    coalesce(max(greatest(extract(epoch FROM now() - prepared), 0)), 0) AS oldest_prepared_age
  FROM pg_prepared_xact()) px)";
    if (facts.control_checkpoint) from += " CROSS JOIN\n  pg_control_checkpoint() cp";
  }
  if (parts.slow) {
    select += R"(,
  current_setting('server_version') AS server_version,
  version() AS version,
  current_setting('data_checksums') AS data_checksums,
  current_setting('max_connections')::bigint AS max_connections,
  pg_database_size(current_database()) AS database_size,
  w.xid_age, w.mxid_age)";
    if (facts.ls_waldir) {
      select += ",\n  (SELECT sum(size) FROM pg_ls_waldir()) AS wal_directory_bytes";
    }
    from += R"( CROSS JOIN
  (SELECT max(age(datfrozenxid)) AS xid_age, max(mxid_age(datminmxid)) AS mxid_age
  FROM pg_database) w)";
  }
  return select + from;
}

static_assert(std::size(kSlowColumns) == std::tuple_size_v<decltype(SlowFields::values)>);

// Keeps the slow columns of `result` (one row) on the session.
void keep_slow_fields(SlowFields& kept, const QueryResult& result, Clock::time_point read_at) {
  for (std::size_t c = 0; c < std::size(kSlowColumns); ++c) {
    const auto i = result.column(kSlowColumns[c]);
    kept.values[c] = i ? result.rows[0][*i] : std::nullopt;
  }
  const auto started = result.column("started");
  kept.started = started ? result.rows[0][*started].value_or("") : "";
  kept.read_at = read_at;
  kept.known = true;
}

// The one row of the SELECT by column name, and the slow fields kept on the
// session for the columns it did not read.
class Row {
 public:
  explicit Row(const QueryResult& r, const SlowFields* kept = nullptr) : r_(r), kept_(kept) {}
  std::optional<double> number(std::string_view col) const {
    const auto* v = value(col);
    if (!v || !*v) return std::nullopt;
    return std::strtod((*v)->c_str(), nullptr);
  }
  std::optional<std::string> text(std::string_view col) const {
    const auto* v = value(col);
    if (!v || !*v) return std::nullopt;
    return **v;
  }
  bool flag(std::string_view col) const { return text(col).value_or("") == "t"; }

 private:
  // The column's value (nullopt for NULL), or nullptr when there is no such
  // column.
  const std::optional<std::string>* value(std::string_view col) const {
    if (const auto i = r_.column(col); i && !r_.rows.empty()) return &r_.rows[0][*i];
    if (!kept_ || !kept_->known) return nullptr;
    for (std::size_t c = 0; c < std::size(kSlowColumns); ++c) {
      if (kSlowColumns[c] == col) return &kept_->values[c];
    }
    return nullptr;
  }
  const QueryResult& r_;
  const SlowFields* kept_;
};

class Probe final : public HealthProbe {
 public:
  Result<ProbeSample> probe(Session& session, Deadline deadline) const override {
    return probe_with(session, ProbeOptions{.deadline = deadline});
  }

  Result<ProbeSample> probe_with(Session& session, const ProbeOptions& options) const override {
    const Deadline deadline = options.deadline;
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

    // The slow fields are carried over while young enough, and read with the
    // rest otherwise.
    SlowFields& kept = pg->slow_fields();
    const auto now = Clock::now();
    bool carry = kept.known && options.slow_fields_max_age.count() > 0 &&
                 now - kept.read_at < options.slow_fields_max_age;
    const int version = pg->server_version_num();
    DBOPS_ASSIGN(auto result,
                 run(*pg, sample_sql(facts, version, {.fast = true, .slow = !carry}), deadline));
    DBOPS_TRY(one_row(*pg, result));
    const auto started = result.column("started");
    if (carry && (!started || result.rows[0][*started].value_or("") != kept.started)) {
      // The server restarted since (or a pooler now hands this session to
      // another server): the kept slow fields no longer hold.
      DBOPS_ASSIGN(auto slow,
                   run(*pg, sample_sql(facts, version, {.fast = false, .slow = true}), deadline));
      DBOPS_TRY(one_row(*pg, slow));
      keep_slow_fields(kept, slow, now);
      carry = false;
    } else if (!carry) {
      keep_slow_fields(kept, result, now);
    }
    ProbeSample sample = build(Row(result, &kept), facts);
    if (carry) {
      const double age = std::chrono::duration<double>(now - kept.read_at).count();
      for (const char* field : kSlowFields) {
        if (field != std::string_view("wal_directory_bytes") || facts.ls_waldir) {
          sample.carried_seconds[field] = age;
        }
      }
    }

    // A trivial round trip last: it measures the round-trip time, and it
    // leaves "SELECT 1" as the text pg_stat_activity shows for this idle
    // session. Every probe's walk of pg_stat_get_activity() copies and clips
    // each session's text: with hundreds of dbops sessions on one server,
    // their 1 KB probe texts cost more than the rest of the walk.
    const auto ping_started = Clock::now();
    DBOPS_TRY(pg->ping(deadline));
    sample.rtt_seconds = std::chrono::duration<double>(Clock::now() - ping_started).count();
    return sample;
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

  static Status one_row(PostgresSession& pg, const QueryResult& result) {
    if (result.rows.size() == 1) return ok();
    Error e = make_error(
        ErrorCode::kInternal,
        "the probe query returned " + std::to_string(result.rows.size()) + " rows instead of one");
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
