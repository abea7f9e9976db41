#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

namespace dbops {
namespace {

constexpr int kCreateAttempts = 16;
// Linux transfers at most about 2 GiB per write(); stay well below.
constexpr std::size_t kMaxWrite = std::size_t{1} << 30;

std::uint64_t random_u64() {
  std::uint64_t value = 0;
  if (::getrandom(&value, sizeof(value), GRND_NONBLOCK) == static_cast<ssize_t>(sizeof(value))) {
    return value;
  }
  // No entropy yet (early boot): unique enough together with pid and O_EXCL.
  static std::atomic<std::uint64_t> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return static_cast<std::uint64_t>(now) * 0x9E3779B97F4A7C15ull + counter.fetch_add(1);
}

std::string temp_name_for(const std::filesystem::path& path) {
  char suffix[64];
  std::snprintf(suffix, sizeof(suffix), ".tmp.%ld.%016llx", static_cast<long>(::getpid()),
                static_cast<unsigned long long>(random_u64()));
  return path.string() + suffix;
}

std::filesystem::path directory_of(const std::filesystem::path& path) {
  std::filesystem::path dir = path.parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

}  // namespace

Status fsync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(errno_error("open directory " + dir.string(), errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) return fail(errno_error("fsync directory " + dir.string(), err));
  return ok();
}

Result<AtomicFile> AtomicFile::open(const std::filesystem::path& path, mode_t mode) {
  if (path.empty() || !path.has_filename()) {
    return fail(ErrorCode::kInvalidArgument, "write \"" + path.string() + "\": not a file path");
  }
  for (int attempt = 0; attempt < kCreateAttempts; ++attempt) {
    std::string temp = temp_name_for(path);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode & 07777);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      return fail(errno_error("create " + path.string(), errno));
    }
    // Exactly `mode`, whatever the umask.
    if (::fchmod(fd, mode & 07777) != 0) {
      int err = errno;
      ::close(fd);
      ::unlink(temp.c_str());
      return fail(errno_error("chmod " + path.string(), err));
    }
    return AtomicFile(path, std::move(temp), fd);
  }
  return fail(errno_error("create " + path.string(), EEXIST));
}

AtomicFile::AtomicFile(std::filesystem::path path, std::filesystem::path temp_path, int fd)
    : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::exchange(other.temp_path_, {})),
      fd_(std::exchange(other.fd_, -1)),
      bytes_written_(other.bytes_written_),
      failed_(other.failed_),
      committed_(other.committed_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    abandon();
    path_ = std::move(other.path_);
    temp_path_ = std::exchange(other.temp_path_, {});
    fd_ = std::exchange(other.fd_, -1);
    bytes_written_ = other.bytes_written_;
    failed_ = other.failed_;
    committed_ = other.committed_;
  }
  return *this;
}

AtomicFile::~AtomicFile() {
  abandon();
}

void AtomicFile::abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

Status AtomicFile::write(std::string_view data) {
  if (fd_ < 0) {
    return fail(ErrorCode::kInternal, "write " + path_.string() + ": file is not open");
  }
  if (failed_) {
    return fail(ErrorCode::kIo, "write " + path_.string() + ": an earlier write failed");
  }
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), std::min(data.size(), kMaxWrite));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      failed_ = true;
      // write() returning 0 for a non-empty buffer means no progress is possible.
      return fail(errno_error("write " + path_.string(), n < 0 ? errno : EIO));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    bytes_written_ += static_cast<std::uint64_t>(n);
  }
  return ok();
}

Status AtomicFile::commit() {
  if (committed_) {
    return fail(ErrorCode::kInternal, "commit " + path_.string() + ": already committed");
  }
  if (fd_ < 0) {
    return fail(ErrorCode::kInternal, "commit " + path_.string() + ": file is not open");
  }
  if (failed_) {
    abandon();
    return fail(ErrorCode::kIo, "commit " + path_.string() + ": an earlier write failed");
  }
  if (::fsync(fd_) != 0) {
    int err = errno;
    abandon();
    return fail(errno_error("fsync " + path_.string(), err));
  }
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0 && errno != EINTR) {
    int err = errno;
    abandon();
    return fail(errno_error("close " + path_.string(), err));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    std::string temp = temp_path_.string();
    abandon();
    return fail(errno_error("rename " + temp + " to " + path_.string(), err));
  }
  temp_path_.clear();
  committed_ = true;
  return fsync_directory(directory_of(path_));
}

Status write_file_atomic(const std::filesystem::path& path, std::string_view contents,
                         mode_t mode) {
  DBOPS_ASSIGN(AtomicFile file, AtomicFile::open(path, mode));
  DBOPS_TRY(file.write(contents));
  return file.commit();
}

}  // namespace dbops
