// The dbops command line.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dbops::cli {

// Parses argv, runs the command and returns the process exit code:
// 0 ok, 1 a check or gate failed, 2 usage or configuration error,
// 3 runtime failure.
int run(int argc, char** argv);

// The generated parts of the docs/ pages, and whether they are current.
// Returns the names of pages whose generated blocks differ (empty: all current).
std::vector<std::string> stale_doc_pages(const std::filesystem::path& docs_dir);

}  // namespace dbops::cli
