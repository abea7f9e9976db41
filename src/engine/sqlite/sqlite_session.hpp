// SQLite sessions (the embedded state store and SQLite targets).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "engine/session.hpp"

namespace dbops::engine::sqlite {

struct OpenOptions {
  bool create = false;  // create the file when missing
  bool read_only = false;
  bool wal = false;  // switch the database to WAL journal mode
  std::chrono::milliseconds busy_timeout{5000};
};

Result<std::unique_ptr<SqlSession>> open(const std::string& path, const OpenOptions& options);

// The version of the linked SQLite library.
std::string library_version();

}  // namespace dbops::engine::sqlite
