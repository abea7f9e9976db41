// The job queue on a shared PostgreSQL state store (several agents).
#pragma once

#include <memory>

#include "core/result.hpp"
#include "core/secret.hpp"
#include "store/queue.hpp"

namespace dbops::store::postgres {

// Connects with `dsn` (a libpq connection string or URI), creates or migrates
// the queue's tables, and returns the queue.
Result<std::unique_ptr<JobQueue>> open_postgres_queue(const Secret& dsn,
                                                      const RetryPolicy& retry = {});

}  // namespace dbops::store::postgres
