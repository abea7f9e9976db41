#include "store/schema.hpp"

#include "store/postgres/postgres_queue.hpp"
#include "store/postgres/postgres_store.hpp"
#include "store/queue.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"

namespace dbops::store {

Result<std::vector<SchemaPart>> schema_status(const config::StateConfig& state) {
  if (state.is_postgres()) return postgres::schema_status(state.postgres_dsn);
  DBOPS_ASSIGN(auto part, sqlite::schema_status(state.sqlite_path));
  return std::vector<SchemaPart>{std::move(part)};
}

Result<std::vector<SchemaPart>> migrate_schema(const config::StateConfig& state) {
  // Opening migrates (the store and the queue each their own part).
  DBOPS_TRY(open_store(state));
  DBOPS_TRY(open_queue(state));
  return schema_status(state);
}

}  // namespace dbops::store
