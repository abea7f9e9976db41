// The embedded state store: one SQLite file in WAL mode.
#pragma once

#include <memory>
#include <string>

#include "store/store.hpp"

namespace dbops::store::sqlite {

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace dbops::store::sqlite
