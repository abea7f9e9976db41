// A private temporary directory removed with everything in it when the object
// goes away: spool space for backups, restores and drills.
#pragma once

#include <filesystem>
#include <string_view>

#include "core/result.hpp"

namespace dbops {

class TempDirectory {
 public:
  // Creates "<base>/<prefix>XXXXXX" with mode 0700; base empty: $TMPDIR, else
  // /tmp.
  static Result<TempDirectory> create(const std::filesystem::path& base, std::string_view prefix);

  TempDirectory() = default;
  TempDirectory(TempDirectory&& other) noexcept : path_(std::move(other.path_)) {
    other.path_.clear();
  }
  TempDirectory& operator=(TempDirectory&& other) noexcept;
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  ~TempDirectory() { remove(); }

  const std::filesystem::path& path() const { return path_; }
  // Removes the directory now; idempotent.
  void remove();

 private:
  explicit TempDirectory(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace dbops
