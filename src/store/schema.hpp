// Where the state store's schema stands, and bringing it up to date.
//
// Every dbops process that opens the store brings its schema up to date
// (under a lock: one process migrates, the others wait and find it done), and
// migrations only expand (tables, columns, indexes and functions are added;
// nothing the previous release reads or writes is dropped or narrowed; an
// index goes only once a new one serves the same queries), so that agents of
// the previous release keep working on a migrated store while they are
// upgraded one at a time. `dbops
// store status` reads where each part stands without changing anything;
// `dbops store migrate` applies what is pending ahead of a rollout.
#pragma once

#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"

namespace dbops::store {

struct MigrationInfo {
  int version = 0;
  std::string description;
};

// One versioned part of the schema: on PostgreSQL the state store and the
// job queue migrate apart; the SQLite file has one part.
struct SchemaPart {
  std::string name;                    // "state store", "job queue"
  std::string table;                   // where its versions are recorded
  int version = 0;                     // the database's (0: not created yet)
  int known = 0;                       // the newest this dbops knows
  std::vector<MigrationInfo> pending;  // known, not applied yet, in order
};

// Read only: nothing is created or changed (a missing SQLite file is
// version 0).
Result<std::vector<SchemaPart>> schema_status(const config::StateConfig& state);
// Applies what is pending, and returns where each part stands afterwards.
Result<std::vector<SchemaPart>> migrate_schema(const config::StateConfig& state);

}  // namespace dbops::store
