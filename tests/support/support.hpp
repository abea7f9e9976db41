// Helpers shared by the test binaries.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "core/subprocess.hpp"

namespace dbops::testing {

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }
  // Writes a file relative to the directory and returns its path.
  std::filesystem::path write(std::string_view name, std::string_view contents) const;

 private:
  std::filesystem::path path_;
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

}  // namespace dbops::testing
