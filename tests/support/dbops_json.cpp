#include "support/dbops_json.hpp"

#include <gtest/gtest.h>

#include "support/support.hpp"

namespace dbops::testing {

nlohmann::json run_dbops_json(std::vector<std::string> args, const std::filesystem::path& cwd,
                              const std::vector<std::pair<std::string, std::string>>& env,
                              int expect_exit) {
  args.insert(args.begin(), {"--output", "json"});
  const auto r = run_dbops(args, cwd, env);
  EXPECT_EQ(r.exit_code, expect_exit) << "dbops " << args[2] << "\n"
                                      << r.stdout_text << "\n"
                                      << r.stderr_text;
  return nlohmann::json::parse(r.stdout_text, nullptr, false);
}

std::string backup_id(const nlohmann::json& run) {
  if (!run.is_array() || run.empty() || !run[0].contains("result")) return {};
  return run[0]["result"].value("backup_id", "");
}

}  // namespace dbops::testing
