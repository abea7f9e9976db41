// The job queue on a shared PostgreSQL state store (several agents).
#pragma once

#include <cstddef>
#include <memory>

#include "core/result.hpp"
#include "core/secret.hpp"
#include "engine/postgres/postgres_session.hpp"
#include "store/queue.hpp"
#include "store/schema.hpp"

namespace dbops::store::postgres {

// Connects with `dsn` (a libpq connection string or URI), creates or migrates
// the queue's tables, and returns the queue, which keeps up to
// `max_sessions` connections open (more concurrent callers wait for one).
Result<std::unique_ptr<JobQueue>> open_postgres_queue(const Secret& dsn,
                                                      const RetryPolicy& retry = {},
                                                      std::size_t max_sessions = 4);

// Where the queue's schema stands (store/schema.hpp), read only.
Result<SchemaPart> queue_schema_part(engine::postgres::PostgresSession& s);

// The channel enqueue and release notify on.
inline constexpr const char* kJobsChannel = "dbops_jobs";

// Connects with `dsn` (direct, not through a pooler) and LISTENs on
// kJobsChannel.
Result<std::unique_ptr<JobNotifications>> listen_for_jobs(const Secret& dsn);

}  // namespace dbops::store::postgres
