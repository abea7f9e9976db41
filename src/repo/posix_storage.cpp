// The posix storage driver: objects are files under a root directory.
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/atomic_file.hpp"
#include "repo/internal.hpp"
#include "repo/storage.hpp"

namespace dbops::repo {
namespace {

namespace fs = std::filesystem;

constexpr mode_t kDirMode = 0700;
constexpr mode_t kFileMode = 0600;
constexpr std::size_t kMaxIo = std::size_t{1} << 30;

std::chrono::system_clock::time_point mtime_of(const struct stat& st) {
  return std::chrono::system_clock::time_point{
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds{st.st_mtim.tv_sec} + std::chrono::nanoseconds{st.st_mtim.tv_nsec})};
}

Status write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), std::min(data.size(), kMaxIo));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail(errno_error(what, n < 0 ? errno : EIO));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok();
}

class PosixWriter final : public ObjectWriter {
 public:
  PosixWriter(std::string key, AtomicFile file) : key_(std::move(key)), file_(std::move(file)) {}
  ~PosixWriter() override { abandon(); }

  Status write(std::string_view data) override {
    if (done_) return unusable();
    auto written = file_.write(data);
    if (!written) {
      // Nothing stays behind: a full disk gets its space back at once.
      abandon();
      return written;
    }
    return ok();
  }

  Status commit() override {
    if (done_) return unusable();
    done_ = true;
    return file_.commit();
  }

  void abandon() override {
    done_ = true;
    file_.abandon();
  }

  std::uint64_t bytes_written() const override { return file_.bytes_written(); }

 private:
  Status unusable() const {
    return fail(ErrorCode::kInternal,
                "object " + key_ + ": writer already committed, abandoned or failed");
  }

  std::string key_;
  AtomicFile file_;
  bool done_ = false;
};

class PosixReader final : public ObjectReader {
 public:
  PosixReader(std::string key, int fd, std::uint64_t size)
      : key_(std::move(key)), fd_(fd), size_(size) {}
  ~PosixReader() override { ::close(fd_); }
  PosixReader(const PosixReader&) = delete;
  PosixReader& operator=(const PosixReader&) = delete;

  Result<std::size_t> read(char* buf, std::size_t cap) override {
    while (true) {
      ssize_t n = ::read(fd_, buf, std::min(cap, kMaxIo));
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR) return fail(errno_error("read object " + key_, errno));
    }
  }
  std::uint64_t size() const override { return size_; }

 private:
  std::string key_;
  int fd_;
  std::uint64_t size_;
};

class PosixStorage final : public Storage {
 public:
  explicit PosixStorage(fs::path root) : root_(std::move(root)) {}

  std::string_view driver() const override { return "posix"; }
  std::string describe() const override { return "posix:" + root_.string(); }
  unsigned features() const override {
    return kFeatureAtomicPut | kFeatureExclusiveCreate | kFeatureRangeRead | kFeatureDurable |
           kFeatureRename;
  }

  Result<std::unique_ptr<ObjectWriter>> put(std::string_view key) override {
    DBOPS_TRY(validate_key(key));
    DBOPS_TRY(make_parents(key));
    DBOPS_ASSIGN(AtomicFile file, AtomicFile::open(path_of(key), kFileMode));
    return std::make_unique<PosixWriter>(std::string(key), std::move(file));
  }

  Result<std::unique_ptr<ObjectReader>> get(std::string_view key, std::uint64_t offset) override {
    DBOPS_TRY(validate_key(key));
    fs::path path = path_of(key);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) return not_found(key);
      return fail(errno_error("open object " + std::string(key) + " in " + describe(), err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return fail(errno_error("stat object " + std::string(key) + " in " + describe(), err));
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return not_found(key);
    }
    auto size = static_cast<std::uint64_t>(st.st_size);
    if (offset > size) {
      ::close(fd);
      return fail(ErrorCode::kInvalidArgument,
                  "object " + std::string(key) + " has " + std::to_string(size) +
                      " bytes; cannot read from offset " + std::to_string(offset));
    }
    if (offset > 0 && ::lseek(fd, static_cast<off_t>(offset), SEEK_SET) < 0) {
      int err = errno;
      ::close(fd);
      return fail(errno_error("seek object " + std::string(key), err));
    }
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return std::make_unique<PosixReader>(std::string(key), fd, size - offset);
  }

  Result<std::vector<ObjectInfo>> list(std::string_view prefix) override {
    std::vector<ObjectInfo> out;
    std::string_view dir_part = prefix.substr(0, prefix.rfind('/') + 1);
    if (prefix.rfind('/') == std::string_view::npos) dir_part = {};
    fs::path start = root_;
    if (!dir_part.empty()) {
      std::string_view dir_key = dir_part.substr(0, dir_part.size() - 1);
      DBOPS_TRY(validate_key(dir_key));
      start = path_of(dir_key);
    }
    struct stat st {};
    if (::lstat(start.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return out;

    std::error_code ec;
    fs::recursive_directory_iterator it(start, fs::directory_options::none, ec);
    if (ec) return list_error(prefix, ec);
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) return list_error(prefix, ec);
      const fs::directory_entry& entry = *it;
      std::error_code type_ec;
      if (!entry.is_regular_file(type_ec) || entry.is_symlink(type_ec)) continue;
      std::string name = entry.path().filename().string();
      if (internal::is_temp_name(name)) continue;
      std::string key = entry.path().lexically_relative(root_).generic_string();
      if (!key.starts_with(prefix) || !validate_key(key)) continue;
      struct stat file_st {};
      if (::lstat(entry.path().c_str(), &file_st) != 0) continue;  // removed meanwhile
      if (!S_ISREG(file_st.st_mode)) continue;
      out.push_back(ObjectInfo{std::move(key), static_cast<std::uint64_t>(file_st.st_size),
                               mtime_of(file_st)});
    }
    if (ec) return list_error(prefix, ec);
    std::sort(out.begin(), out.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
  }

  Result<std::optional<ObjectInfo>> stat(std::string_view key) override {
    DBOPS_TRY(validate_key(key));
    struct stat st {};
    fs::path path = path_of(key);
    if (::lstat(path.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) return std::optional<ObjectInfo>{};
      return fail(errno_error("stat object " + std::string(key) + " in " + describe(), err));
    }
    if (!S_ISREG(st.st_mode)) return std::optional<ObjectInfo>{};
    return std::optional<ObjectInfo>{
        ObjectInfo{std::string(key), static_cast<std::uint64_t>(st.st_size), mtime_of(st)}};
  }

  Status remove(std::string_view key) override {
    DBOPS_TRY(validate_key(key));
    fs::path path = path_of(key);
    if (::unlink(path.c_str()) != 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) return ok();
      return fail(errno_error("remove object " + std::string(key) + " in " + describe(), err));
    }
    return fsync_directory(path.parent_path());
  }

  Result<bool> create_exclusive(std::string_view key, std::string_view data) override {
    DBOPS_TRY(validate_key(key));
    DBOPS_TRY(make_parents(key));
    fs::path path = path_of(key);
    // The content is complete before the name appears: a temporary file,
    // written and fsynced, is hard-linked to the key (link() never replaces).
    std::string temp;
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
      temp = path.string() + ".tmp." + std::to_string(::getpid()) + "." + internal::random_hex(16);
      fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
      if (fd < 0 && errno != EEXIST) {
        return fail(errno_error("create object " + std::string(key) + " in " + describe(), errno));
      }
    }
    if (fd < 0) {
      return fail(errno_error("create object " + std::string(key) + " in " + describe(), EEXIST));
    }
    auto cleanup = [&] {
      if (fd >= 0) ::close(fd);
      fd = -1;
      ::unlink(temp.c_str());
    };
    std::string what = "write object " + std::string(key) + " in " + describe();
    Status written = ::fchmod(fd, kFileMode) == 0 ? ok() : fail(errno_error(what, errno));
    if (written) written = write_all(fd, data, what);
    if (written && ::fsync(fd) != 0) written = fail(errno_error("fsync " + temp, errno));
    if (written) {
      int rc = ::close(fd);
      fd = -1;
      if (rc != 0 && errno != EINTR) written = fail(errno_error("close " + temp, errno));
    }
    if (!written) {
      cleanup();
      return std::unexpected(std::move(written).error());
    }
    if (::link(temp.c_str(), path.c_str()) != 0) {
      int err = errno;
      cleanup();
      if (err == EEXIST) return false;
      return fail(errno_error("create object " + std::string(key) + " in " + describe(), err));
    }
    cleanup();
    DBOPS_TRY(fsync_directory(path.parent_path()));
    return true;
  }

  Status rename(std::string_view from, std::string_view to) override {
    DBOPS_TRY(validate_key(from));
    DBOPS_TRY(validate_key(to));
    fs::path src = path_of(from);
    fs::path dst = path_of(to);
    struct stat st {};
    if (::lstat(src.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return not_found(from);
    DBOPS_TRY(make_parents(to));
    std::string what =
        "move object " + std::string(from) + " to " + std::string(to) + " in " + describe();
    if (::renameat2(AT_FDCWD, src.c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) != 0) {
      int err = errno;
      if (err == EEXIST) return exists(from, to);
      if (err == ENOENT) return not_found(from);
      if (err != EINVAL && err != ENOSYS) return fail(errno_error(what, err));
      // A file system without RENAME_NOREPLACE: link() does not replace either.
      if (::link(src.c_str(), dst.c_str()) != 0) {
        err = errno;
        if (err == EEXIST) return exists(from, to);
        if (err == ENOENT) return not_found(from);
        return fail(errno_error(what, err));
      }
      if (::unlink(src.c_str()) != 0 && errno != ENOENT) return fail(errno_error(what, errno));
    }
    DBOPS_TRY(fsync_directory(dst.parent_path()));
    if (src.parent_path() != dst.parent_path()) DBOPS_TRY(fsync_directory(src.parent_path()));
    return ok();
  }

  Status remove_prefix(std::string_view prefix) override {
    if (prefix.empty() || prefix.back() != '/') {
      return fail(ErrorCode::kInvalidArgument,
                  "remove_prefix: prefix \"" + std::string(prefix) + "\" must end with '/'");
    }
    std::string_view dir_key = prefix.substr(0, prefix.size() - 1);
    DBOPS_TRY(validate_key(dir_key));
    fs::path dir = path_of(dir_key);
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return ok();

    // Everything goes, temporary files of killed writers included; then the
    // directories, deepest first.
    std::vector<fs::path> dirs;
    std::error_code ec;
    fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
    for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      const fs::directory_entry& entry = *it;
      std::error_code type_ec;
      if (entry.is_directory(type_ec) && !entry.is_symlink(type_ec)) {
        dirs.push_back(entry.path());
        continue;
      }
      if (::unlink(entry.path().c_str()) != 0 && errno != ENOENT) {
        return fail(errno_error("remove " + entry.path().string(), errno));
      }
    }
    if (ec) return list_error(prefix, ec);
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.native().size() > b.native().size();
    });
    dirs.push_back(dir);
    for (const auto& d : dirs) {
      if (::rmdir(d.c_str()) != 0 && errno != ENOENT) {
        return fail(errno_error("remove directory " + d.string(), errno));
      }
    }
    return fsync_directory(dir.parent_path());
  }

  Status open_root() {
    DBOPS_TRY(make_dirs(root_, root_.root_path()));
    struct stat st {};
    if (::stat(root_.c_str(), &st) != 0) return fail(errno_error("open " + describe(), errno));
    if (!S_ISDIR(st.st_mode)) {
      return fail(ErrorCode::kConfig, "repository " + describe() + " is not a directory");
    }
    return ok();
  }

 private:
  fs::path path_of(std::string_view key) const { return root_ / fs::path(std::string(key)); }

  std::unexpected<Error> not_found(std::string_view key) const {
    return fail(ErrorCode::kNotFound,
                "object " + std::string(key) + " does not exist in " + describe());
  }

  std::unexpected<Error> exists(std::string_view from, std::string_view to) const {
    return fail(ErrorCode::kConflict, "cannot move object " + std::string(from) + " to " +
                                          std::string(to) + " in " + describe() +
                                          ": the destination exists");
  }

  std::unexpected<Error> list_error(std::string_view prefix, const std::error_code& ec) const {
    return fail(ErrorCode::kIo,
                "list \"" + std::string(prefix) + "\" in " + describe() + ": " + ec.message());
  }

  // Creates the directories from `base` down to `dir` (0700), fsyncing the
  // parent of each one created.
  Status make_dirs(const fs::path& dir, const fs::path& base) const {
    fs::path current = base;
    for (const auto& part : dir.lexically_relative(base)) {
      if (part.empty() || part == ".") continue;
      fs::path parent = current;
      current /= part;
      if (::mkdir(current.c_str(), kDirMode) == 0) {
        DBOPS_TRY(fsync_directory(parent));
        continue;
      }
      int err = errno;
      if (err != EEXIST) return fail(errno_error("create directory " + current.string(), err));
    }
    return ok();
  }

  Status make_parents(std::string_view key) const {
    std::size_t slash = key.rfind('/');
    if (slash == std::string_view::npos) return ok();
    return make_dirs(path_of(key.substr(0, slash)), root_);
  }

  fs::path root_;
};

}  // namespace

Result<std::unique_ptr<Storage>> open_posix(const std::filesystem::path& root) {
  if (root.empty()) return fail(ErrorCode::kConfig, "posix repository: empty path");
  std::error_code ec;
  fs::path absolute = fs::absolute(root, ec).lexically_normal();
  if (ec)
    return fail(ErrorCode::kConfig, "posix repository " + root.string() + ": " + ec.message());
  // "/var/backups/" normalises to "/var/backups/"; drop the trailing separator.
  if (!absolute.has_filename() && absolute.has_parent_path() && absolute != absolute.root_path()) {
    absolute = absolute.parent_path();
  }
  auto storage = std::make_unique<PosixStorage>(absolute);
  DBOPS_TRY(storage->open_root());
  return std::unique_ptr<Storage>(std::move(storage));
}

}  // namespace dbops::repo
