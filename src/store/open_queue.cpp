// open_queue() on its own: the SQLite and PostgreSQL implementations are
// linked only into what opens a queue by configuration.
#include "store/postgres/postgres_queue.hpp"
#include "store/queue.hpp"
#include "store/sqlite/sqlite_queue.hpp"

namespace dbops::store {

Result<std::unique_ptr<JobQueue>> open_queue(const config::StateConfig& state,
                                             const RetryPolicy& retry) {
  if (state.is_postgres()) return postgres::open_postgres_queue(state.postgres_dsn, retry);
  return sqlite::open_sqlite_queue(state.sqlite_path, retry);
}

Result<std::unique_ptr<JobNotifications>> listen_for_jobs(const config::StateConfig& state) {
  if (!state.is_postgres() || state.listen_dsn.empty()) {
    return fail(ErrorCode::kConfig,
                "job notifications need state_listen: a direct connection to "
                "the PostgreSQL state store");
  }
  return postgres::listen_for_jobs(state.listen_dsn);
}

}  // namespace dbops::store
