// The row forms of the store's records, shared by the SQLite and PostgreSQL
// stores: their column lists put the fields in this order, with times as
// integers that `time` converts (milliseconds in SQLite, microseconds in
// PostgreSQL).
#pragma once

#include <cstdint>

#include "engine/session.hpp"
#include "store/store.hpp"

namespace dbops::store {

// run_id, kind, target, idempotency_key, params_json, state, started_at,
// finished_at, summary, result_json, error, host, pid
RunRecord run_from_row(const engine::QueryResult& r, std::size_t i,
                       TimePoint (*time)(std::int64_t));
// repository, target, id, engine, method, started_at, finished_at, plain_size,
// stored_size, run_id, manifest_json
BackupRecord backup_from_row(const engine::QueryResult& r, std::size_t i,
                             TimePoint (*time)(std::int64_t));
// run_id, target, backup_id, started_at, finished_at, passed, rto_seconds,
// rpo_seconds, failed_check, evidence_json
DrillRecord drill_from_row(const engine::QueryResult& r, std::size_t i,
                           TimePoint (*time)(std::int64_t));

}  // namespace dbops::store
