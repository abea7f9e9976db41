// The job queue in the embedded SQLite state store (one agent).
#pragma once

#include <memory>
#include <string>

#include "store/queue.hpp"

namespace dbops::store::sqlite {

// Opens (creating and migrating) the store at `path` and returns its queue,
// on a connection of its own. Times are the local clock's.
Result<std::unique_ptr<JobQueue>> open_sqlite_queue(const std::string& path,
                                                    const RetryPolicy& retry = {});

}  // namespace dbops::store::sqlite
