// The PostgreSQL HealthProbe.
//
// One sample is one simple-protocol string
//   BEGIN READ ONLY; SET LOCAL statement_timeout = ...;
//   SET LOCAL join_collapse_limit = 1; SELECT ...; COMMIT
// whose SELECT reads every field at once, then a SELECT 1 whose round trip is
// the sample's rtt_seconds (and which leaves a short text in pg_stat_activity
// for the idle session). The first probe on a session takes one more round
// trip to learn the role's privileges (cached on the session), because
// functions the role may not execute cannot even appear in a query.
//
// Slow fields (settings that only change with a restart, the database size,
// the wraparound ages, the size of pg_wal) may be carried over from an earlier
// probe on the same session (ProbeOptions::slow_fields_max_age): the SELECT
// then leaves them out, and they are read again as soon as the server's start
// time differs from when they were read.
//
// Works for a role with only pg_monitor; without pg_monitor (or
// pg_read_all_stats) the fields that need other roles' sessions are reported
// unavailable instead of undercounted. Needs PostgreSQL 10 or later.
//
// Fields:
//   server_version        current_setting('server_version')
//   role                  primary | replica (pg_is_in_recovery())
//   replication_lag_*     replicas only: bytes = receive LSN - replay LSN;
//                         seconds = now() - pg_last_xact_replay_timestamp(),
//                         0 while everything received is replayed
//   connections           client backends in pg_stat_activity (pg_read_all_stats)
//   max_connections       current_setting('max_connections')
//   database_size_bytes   pg_database_size(current_database())
//   uptime_seconds        now() - pg_postmaster_start_time()
//   metrics               see the list in postgres_probe.cpp (docs/probe.md)
#pragma once

#include "engine/probe.hpp"

namespace dbops::engine::postgres {

const HealthProbe& health_probe();

}  // namespace dbops::engine::postgres
