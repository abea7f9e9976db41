#include "support/support.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace dbops::testing {

TempDir::TempDir() {
  auto dir = TempDirectory::create({}, "dbops-test-");
  if (!dir) throw std::runtime_error(dir.error().to_string());
  dir_ = std::move(*dir);
}

std::filesystem::path TempDir::write(std::string_view name, std::string_view contents) const {
  const auto p = dir_.path() / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << contents;
  return p;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path source_dir() {
  return DBOPS_SOURCE_DIR;
}
std::string dbops_binary() {
  return DBOPS_BINARY;
}

ProcessResult run_dbops(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                        const std::vector<std::pair<std::string, std::string>>& env) {
  ProcessOptions options;
  options.argv.push_back(dbops_binary());
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.cwd = cwd.string();
  options.env = env;
  options.env.emplace_back("NO_COLOR", "1");
  options.timeout = std::chrono::seconds(60);
  options.stdout_sink = OutputSink::capture();
  options.stderr_sink = OutputSink::capture();
  auto result = run_process(options);
  if (!result) {
    ADD_FAILURE() << "cannot run dbops: " << result.error().to_string();
    return ProcessResult{};
  }
  return *result;
}

std::vector<std::string> split_command(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (const char c : line) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

std::string must(Result<std::string> r) {
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? std::move(*r) : std::string();
}

void expect_not_in_any_argv(std::string_view secret) {
  ASSERT_FALSE(secret.empty());
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(cmdline.find(secret), std::string::npos) << "pid " << name << ": " << cmdline;
  }
}

}  // namespace dbops::testing
