// The state store on PostgreSQL, shared by several agents.
#pragma once

#include <memory>
#include <vector>

#include "core/result.hpp"
#include "core/secret.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"

namespace dbops::store::postgres {

// Connects with `dsn` (a libpq connection string or URI), creates or migrates
// the store's tables (dbops_job_runs, dbops_events, dbops_backups,
// dbops_drills; versions in dbops_store_migrations, apart from the job
// queue's), and returns the store. An unreachable server is kUnavailable.
Result<std::unique_ptr<Store>> open_postgres_store(const Secret& dsn);

// The newest schema version this binary creates (the PostgreSQL store's own
// sequence, not the SQLite store's current_schema_version()).
int postgres_store_schema_version();

// Where the store's and the queue's schemas stand (store/schema.hpp), read
// only.
Result<std::vector<SchemaPart>> schema_status(const Secret& dsn);

}  // namespace dbops::store::postgres
