// The embedded state store: one SQLite file in WAL mode.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "engine/session.hpp"
#include "store/schema.hpp"
#include "store/store.hpp"

namespace dbops::store::sqlite {

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

// Where the file's schema stands, read only (store/schema.hpp).
Result<SchemaPart> schema_status(const std::string& path);

// A connection to the state file at `path` (created, WAL mode, its schema
// brought up to date), for the store and the queue to own one each.
struct OpenedState {
  std::unique_ptr<engine::SqlSession> session;
  int version = 0;
};
Result<OpenedState> open_state_file(const std::string& path);

// Runs `body` in one write transaction (BEGIN IMMEDIATE) on `session`:
// committed when it succeeds, rolled back when it fails.
Status write_transaction(engine::SqlSession& session, const std::function<Status()>& body);

}  // namespace dbops::store::sqlite
