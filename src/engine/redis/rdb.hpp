// Reading the facts dbops records about a Redis RDB file: its version, its
// auxiliary fields (redis-ver, repl-id, repl-offset ...) and the key count of
// each database (the RESIZEDB record that follows each SELECTDB), consistent
// with the snapshot by construction.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace dbops::engine::redis {

struct RdbSummary {
  int version = 0;
  std::map<std::string, std::string> aux;
  std::map<int, std::int64_t> keys;  // database number -> keys
  // Every database was reached (the EOF record was seen); otherwise the key
  // counts cover the databases that start within the bytes given.
  bool complete = false;
  std::string problem;  // why the walk stopped early, empty when complete
};

// Walks the RDB bytes in `data` (a prefix of the file, or all of it). Value
// encodings it cannot skip (streams, modules) end the walk with a problem.
RdbSummary summarize_rdb(std::string_view data);

}  // namespace dbops::engine::redis
