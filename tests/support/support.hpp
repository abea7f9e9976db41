// Helpers shared by the test binaries.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "core/subprocess.hpp"
#include "core/temp_dir.hpp"

namespace dbops::testing {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  const std::filesystem::path& path() const { return dir_.path(); }
  std::filesystem::path operator/(std::string_view name) const { return dir_.path() / name; }
  // Writes a file relative to the directory and returns its path.
  std::filesystem::path write(std::string_view name, std::string_view contents) const;

 private:
  TempDirectory dir_;
};

std::string read_file(const std::filesystem::path& path);

// Runs the dbops binary built next to the tests.
ProcessResult run_dbops(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                        const std::vector<std::pair<std::string, std::string>>& env = {});

// The source tree (for examples/ and docs/).
std::filesystem::path source_dir();
std::string dbops_binary();

// Splits a command line the way a shell would for simple quoting ('...', "...").
std::vector<std::string> split_command(std::string_view line);

// The value of a Result, or "" after recording a test failure with its error.
std::string must(Result<std::string> r);

// Records a failure for every process whose command line holds `secret`.
void expect_not_in_any_argv(std::string_view secret);

// ASSERT_OK_AND_ASSIGN(auto x, expr): assigns the value of a Result, or fails
// the test (returning from it) with the error.
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                          \
  auto&& DBOPS_CONCAT_(assigned_, __LINE__) = (expr);            \
  ASSERT_TRUE(DBOPS_CONCAT_(assigned_, __LINE__).has_value())    \
      << DBOPS_CONCAT_(assigned_, __LINE__).error().to_string(); \
  lhs = std::move(*DBOPS_CONCAT_(assigned_, __LINE__))

}  // namespace dbops::testing
