// Crash-safe file replacement: readers see the old contents or the new ones,
// never a mix, and after a successful return the new contents survive a power
// loss.
//
// The data goes to a temporary file in the target's directory
// ("<path>.tmp.<pid>.<random>"), which is written in full, fsync'ed and renamed
// over the target; then the directory is fsync'ed so the rename itself is
// durable. A symlink at `path` is replaced, not followed.
//
// Errors carry the target path and the errno text, e.g.
// "write /var/lib/dbops/state.json: No space left on device".
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "core/result.hpp"

namespace dbops {

// Replaces `path` with `contents` atomically and durably. The file gets exactly
// `mode` (the umask does not apply). On failure the target is unchanged and no
// temporary file is left behind.
Status write_file_atomic(const std::filesystem::path& path, std::string_view contents,
                         mode_t mode = 0644);

// fsyncs a directory, making renames and creations in it durable. Filesystems
// that cannot fsync directories (EINVAL) count as success.
Status fsync_directory(const std::filesystem::path& dir);

// The streaming form of write_file_atomic(), for contents produced piece by
// piece:
//
//   DBOPS_ASSIGN(AtomicFile file, AtomicFile::open(path, 0600));
//   for (...) DBOPS_TRY(file.write(chunk));
//   DBOPS_TRY(file.commit());
//
// Until commit() succeeds the target is untouched; destroying the object
// without a successful commit() removes the temporary file.
class AtomicFile {
 public:
  // Creates the temporary file next to `path` with permissions `mode`.
  static Result<AtomicFile> open(const std::filesystem::path& path, mode_t mode = 0644);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&& other) noexcept;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  // Appends `data` in full (retrying short writes and EINTR). After a failure
  // the file is unusable: later write() and commit() calls fail.
  Status write(std::string_view data);

  // fsyncs and closes the temporary file, renames it over the target and fsyncs
  // the directory. On failure before the rename the temporary file is removed
  // and the target is unchanged. A failure of the final directory fsync is
  // reported although the new contents are already in place.
  Status commit();

  // Removes the temporary file now; the target is untouched. Does nothing after
  // commit() or on a moved-from object.
  void abandon();

  // The file being replaced.
  const std::filesystem::path& path() const { return path_; }
  // The temporary file; empty once committed or abandoned.
  const std::filesystem::path& temp_path() const { return temp_path_; }
  std::uint64_t bytes_written() const { return bytes_written_; }
  bool committed() const { return committed_; }

 private:
  AtomicFile(std::filesystem::path path, std::filesystem::path temp_path, int fd);

  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
  std::uint64_t bytes_written_ = 0;
  bool failed_ = false;
  bool committed_ = false;
};

}  // namespace dbops
