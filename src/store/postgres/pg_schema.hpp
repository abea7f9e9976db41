// What the PostgreSQL queue and state store share: times as microseconds,
// transactions, and versioned expand-only migrations under an advisory lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "engine/postgres/postgres_session.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"

namespace dbops::store::postgres {

// The target a store component connects to: `dsn`, named `name` in errors.
config::Target store_target(const Secret& dsn, std::string name);

std::int64_t to_us(TimePoint t);
TimePoint from_us(std::int64_t us);
// SQL for a timestamptz column as microseconds since the epoch (exact on
// PostgreSQL 14+, where extract() returns numeric).
std::string us(std::string_view column);
// SQL for a timestamptz from microseconds since the epoch in parameter `param`.
std::string at(std::string_view param);

// `body` between BEGIN and COMMIT; ROLLBACK when it fails.
template <typename Body>
auto in_transaction(engine::postgres::PostgresSession& s, Body body) -> decltype(body()) {
  DBOPS_TRY(s.exec("BEGIN"));
  auto result = body();
  if (!result) {
    (void)s.exec("ROLLBACK");
    return result;
  }
  if (auto commit = s.exec("COMMIT"); !commit) return std::unexpected(std::move(commit).error());
  return result;
}

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Brings a component's schema up to date: its migrations are recorded in
// `table` (version, description, applied_at). Several processes may open at
// once: the migrations run in one transaction under a transaction-scoped
// advisory lock named after `table` (PgBouncer-safe), and the version is read
// again once the lock is held. A database already current needs no lock and no
// DDL (nor the CREATE privilege). A newer version is accepted (migrations only
// expand) and returned. `what` names the component in logs and errors.
Result<int> migrate(engine::postgres::PostgresSession& s, std::string_view table,
                    std::span<const Migration> migrations, std::string_view what);

// Where a component's schema stands (store/schema.hpp), read only: its
// version from `table` (0 when the table does not exist) and what of
// `migrations` is pending.
Result<SchemaPart> read_schema_part(engine::postgres::PostgresSession& s, std::string name,
                                    std::string table, std::span<const Migration> migrations);

}  // namespace dbops::store::postgres
