// One test suite for every Store implementation: a binary instantiates it
// with a factory that returns a new, empty store location for each test.
//
//   [[maybe_unused]] const int kSuite = link_store_suite();
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreSuite,
//                            ::testing::Values(StoreImpl{"sqlite", make_location, version}),
//                            [](const auto& info) { return info.param.name; });
//
// The suite's tests live in the static test-support library; the reference
// to link_store_suite() makes the linker keep them.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "store/store.hpp"

namespace dbops::testing {

// Where one test's store lives (a SQLite file, a PostgreSQL database).
struct StoreLocation {
  // Opens the store, creating it on first use; each call opens it anew.
  std::function<Result<std::unique_ptr<store::Store>>()> open;
  // Through a connection of its own, makes every later insert of a catalog
  // entry with id "BAD" fail with an error that says "rejected by test
  // trigger" (a failure inside replace_backups()'s transaction).
  std::function<Status()> reject_bad_backups;
};

struct StoreImpl {
  std::string name;
  // A new, empty location for each test.
  std::function<StoreLocation()> make;
  // The schema version a new store reports.
  int schema_version = 0;
};

int link_store_suite();

class StoreSuite : public ::testing::TestWithParam<StoreImpl> {
 protected:
  void SetUp() override;
  // The test's store, opened once more.
  std::unique_ptr<store::Store> reopen();

  StoreLocation location_;
  std::unique_ptr<store::Store> store_;
};

// Records for the tests; times are whole seconds after 1'700'000'000 s.
store::TimePoint at_second(int s);
store::RunRecord make_run(std::string id, std::string key = "");
store::BackupRecord make_backup(std::string repository, std::string target, std::string id,
                                int finished_second);
store::DrillRecord make_drill(std::string run_id, std::string target, std::string backup_id,
                              bool passed, int finished_second);

}  // namespace dbops::testing
