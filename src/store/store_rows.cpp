#include "store/store_rows.hpp"

namespace dbops::store {

RunRecord run_from_row(const engine::QueryResult& r, std::size_t i,
                       TimePoint (*time)(std::int64_t)) {
  RunRecord run;
  run.run_id = r.text(i, 0);
  run.kind = r.text(i, 1);
  run.target = r.text(i, 2);
  run.idempotency_key = r.text(i, 3);
  run.params_json = r.text(i, 4);
  run.state = parse_run_state(r.text(i, 5)).value_or(RunState::kFailed);
  run.started_at = time(r.integer(i, 6));
  if (!r.is_null(i, 7)) run.finished_at = time(r.integer(i, 7));
  run.summary = r.text(i, 8);
  run.result_json = r.text(i, 9);
  run.error = r.text(i, 10);
  run.host = r.text(i, 11);
  run.pid = static_cast<int>(r.integer(i, 12));
  return run;
}

BackupRecord backup_from_row(const engine::QueryResult& r, std::size_t i,
                             TimePoint (*time)(std::int64_t)) {
  BackupRecord b;
  b.repository = r.text(i, 0);
  b.target = r.text(i, 1);
  b.id = r.text(i, 2);
  b.engine = r.text(i, 3);
  b.method = r.text(i, 4);
  b.started_at = time(r.integer(i, 5));
  b.finished_at = time(r.integer(i, 6));
  b.plain_size = static_cast<std::uint64_t>(r.integer(i, 7));
  b.stored_size = static_cast<std::uint64_t>(r.integer(i, 8));
  b.run_id = r.text(i, 9);
  b.manifest_json = r.text(i, 10);
  return b;
}

DrillRecord drill_from_row(const engine::QueryResult& r, std::size_t i,
                           TimePoint (*time)(std::int64_t)) {
  DrillRecord d;
  d.run_id = r.text(i, 0);
  d.target = r.text(i, 1);
  d.backup_id = r.text(i, 2);
  d.started_at = time(r.integer(i, 3));
  d.finished_at = time(r.integer(i, 4));
  d.passed = r.integer(i, 5) != 0;
  d.rto_seconds = r.number(i, 6);
  d.rpo_seconds = r.number(i, 7);
  d.failed_check = r.text(i, 8);
  d.evidence_json = r.text(i, 9);
  return d;
}

}  // namespace dbops::store
