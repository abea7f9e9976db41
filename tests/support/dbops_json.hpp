// Running the dbops binary for its JSON output.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace dbops::testing {

// `dbops --output json <args>` in `cwd`; records a failure when it does not
// exit with `expect_exit`, and returns its stdout parsed (discarded when it
// is not JSON).
nlohmann::json run_dbops_json(std::vector<std::string> args, const std::filesystem::path& cwd,
                              const std::vector<std::pair<std::string, std::string>>& env,
                              int expect_exit);

// The backup id of the first target's run in `dbops backup run` JSON; "" when
// there is none.
std::string backup_id(const nlohmann::json& run);

}  // namespace dbops::testing
