#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace dbops {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return st.st_mode & 07777;
}

// Makes writes beyond `bytes` fail with EFBIG instead of raising SIGXFSZ, the
// way a full disk makes them fail with ENOSPC.
void limit_file_size(rlim_t bytes) {
  ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit;
  limit.rlim_cur = bytes;
  limit.rlim_max = bytes;
  ::setrlimit(RLIMIT_FSIZE, &limit);
}

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/dbops_atomic_file_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path dir_;
};

TEST_F(AtomicFileTest, WritesNewFile) {
  fs::path target = dir_ / "state.json";
  ASSERT_TRUE(write_file_atomic(target, "{\"a\": 1}\n").has_value());
  EXPECT_EQ(read_file(target), "{\"a\": 1}\n");
  EXPECT_EQ(mode_of(target), 0644u);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"state.json"});
}

TEST_F(AtomicFileTest, WritesEmptyAndLargeContents) {
  fs::path empty = dir_ / "empty";
  ASSERT_TRUE(write_file_atomic(empty, "").has_value());
  EXPECT_TRUE(fs::exists(empty));
  EXPECT_EQ(fs::file_size(empty), 0u);

  std::string big(5 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  fs::path large = dir_ / "large";
  ASSERT_TRUE(write_file_atomic(large, big).has_value());
  EXPECT_EQ(read_file(large), big);
}

TEST_F(AtomicFileTest, ReplacesExistingContentAtomically) {
  fs::path target = dir_ / "config";
  ASSERT_TRUE(write_file_atomic(target, "old contents\n").has_value());

  // A reader that opened the old file keeps seeing the old contents: the file is
  // replaced by a rename, not rewritten in place.
  int reader = ::open(target.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  ASSERT_TRUE(write_file_atomic(target, "new\n").has_value());
  char buf[64] = {};
  ssize_t n = ::pread(reader, buf, sizeof(buf), 0);
  ::close(reader);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "old contents\n");

  EXPECT_EQ(read_file(target), "new\n");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"config"});
}

TEST_F(AtomicFileTest, HonoursModeWhateverTheUmask) {
  mode_t old_umask = ::umask(077);
  Status a = write_file_atomic(dir_ / "shared", "x", 0664);
  ::umask(old_umask);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(mode_of(dir_ / "shared"), 0664u);

  ASSERT_TRUE(write_file_atomic(dir_ / "secret", "pw", 0600).has_value());
  EXPECT_EQ(mode_of(dir_ / "secret"), 0600u);

  // Replacing a file gives the new mode, not the old one.
  ASSERT_TRUE(write_file_atomic(dir_ / "secret", "pw2", 0640).has_value());
  EXPECT_EQ(mode_of(dir_ / "secret"), 0640u);
}

TEST_F(AtomicFileTest, MissingDirectoryIsAClearError) {
  fs::path target = dir_ / "no" / "such" / "dir" / "file";
  Status s = write_file_atomic(target, "data");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kIo);
  EXPECT_EQ(s.error().message, "create " + target.string() + ": No such file or directory");
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(AtomicFileTest, UnwritableLocationIsAnError) {
  // Root ignores permission bits, but not /proc.
  Status s = write_file_atomic("/proc/dbops_atomic_file_test", "data");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message.rfind("create /proc/dbops_atomic_file_test: ", 0), 0u)
      << s.error().message;
}

TEST_F(AtomicFileTest, RejectsPathsWithoutFileName) {
  EXPECT_EQ(write_file_atomic("", "x").error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(write_file_atomic(dir_.string() + "/", "x").error().code, ErrorCode::kInvalidArgument);
}

TEST_F(AtomicFileTest, StreamingWriteThenCommit) {
  fs::path target = dir_ / "dump.sql";
  Result<AtomicFile> opened = AtomicFile::open(target, 0600);
  ASSERT_TRUE(opened.has_value()) << opened.error().to_string();
  AtomicFile file = std::move(*opened);

  std::string prefix = target.string() + ".tmp." + std::to_string(::getpid()) + ".";
  EXPECT_EQ(file.temp_path().string().rfind(prefix, 0), 0u) << file.temp_path();
  EXPECT_EQ(file.temp_path().parent_path(), dir_);
  EXPECT_EQ(file.path(), target);

  std::string expected;
  for (int i = 0; i < 1000; ++i) {
    std::string chunk = "line " + std::to_string(i) + "\n";
    expected += chunk;
    ASSERT_TRUE(file.write(chunk).has_value());
  }
  EXPECT_EQ(file.bytes_written(), expected.size());
  EXPECT_FALSE(fs::exists(target));  // nothing visible before commit
  EXPECT_TRUE(fs::exists(file.temp_path()));

  ASSERT_TRUE(file.commit().has_value());
  EXPECT_TRUE(file.committed());
  EXPECT_TRUE(file.temp_path().empty());
  EXPECT_EQ(read_file(target), expected);
  EXPECT_EQ(mode_of(target), 0600u);
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"dump.sql"});

  // The object is spent.
  EXPECT_FALSE(file.commit().has_value());
  EXPECT_FALSE(file.write("more").has_value());
  EXPECT_EQ(read_file(target), expected);
}

TEST_F(AtomicFileTest, AbandonedFileRemovesTempAndKeepsTarget) {
  fs::path target = dir_ / "state";
  ASSERT_TRUE(write_file_atomic(target, "committed").has_value());
  fs::path temp;
  {
    Result<AtomicFile> file = AtomicFile::open(target);
    ASSERT_TRUE(file.has_value());
    temp = file->temp_path();
    ASSERT_TRUE(file->write("half-written").has_value());
    EXPECT_TRUE(fs::exists(temp));
  }  // destroyed without commit
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(read_file(target), "committed");
  EXPECT_EQ(entries(dir_), std::vector<std::string>{"state"});

  Result<AtomicFile> file = AtomicFile::open(target);
  ASSERT_TRUE(file.has_value());
  temp = file->temp_path();
  file->abandon();
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(file->commit().has_value());
  EXPECT_EQ(read_file(target), "committed");
}

TEST_F(AtomicFileTest, MovedFromObjectDoesNotRemoveTheTempFile) {
  fs::path target = dir_ / "moved";
  Result<AtomicFile> opened = AtomicFile::open(target);
  ASSERT_TRUE(opened.has_value());
  AtomicFile a = std::move(*opened);
  ASSERT_TRUE(a.write("abc").has_value());
  AtomicFile b = std::move(a);
  { AtomicFile sink = std::move(a); }  // destroying moved-from objects is harmless
  ASSERT_TRUE(b.write("def").has_value());
  ASSERT_TRUE(b.commit().has_value());
  EXPECT_EQ(read_file(target), "abcdef");

  // Move-assigning over a live file abandons it.
  Result<AtomicFile> first = AtomicFile::open(dir_ / "first");
  Result<AtomicFile> second = AtomicFile::open(dir_ / "second");
  ASSERT_TRUE(first.has_value() && second.has_value());
  fs::path first_temp = first->temp_path();
  *first = std::move(*second);
  EXPECT_FALSE(fs::exists(first_temp));
  ASSERT_TRUE(first->commit().has_value());
  EXPECT_TRUE(fs::exists(dir_ / "second"));
  EXPECT_FALSE(fs::exists(dir_ / "first"));
}

TEST_F(AtomicFileTest, WriteFailureNamesThePathAndCleansUp) {
  // A file size limit makes write() fail the way a full disk does; the child
  // reports the error and how many directory entries were left behind.
  fs::path target = dir_ / "big";
  EXPECT_EXIT(
      {
        limit_file_size(4096);
        Status s = write_file_atomic(target, std::string(100000, 'x'));
        std::fprintf(stderr, "%s\n", s ? "ok" : s.error().message.c_str());
        std::exit(static_cast<int>(entries(dir_).size()));
      },
      ::testing::ExitedWithCode(0), "write .*/big: File too large");
  EXPECT_TRUE(entries(dir_).empty());
}

TEST_F(AtomicFileTest, FailedWriteMakesCommitFail) {
  fs::path target = dir_ / "partial";
  EXPECT_EXIT(
      {
        limit_file_size(4096);
        Result<AtomicFile> file = AtomicFile::open(target);
        if (!file) std::exit(10);
        if (file->write(std::string(10000, 'x'))) std::exit(11);
        Status again = file->write("y");
        Status commit = file->commit();
        std::fprintf(stderr, "%s|%s\n", again ? "ok" : again.error().message.c_str(),
                     commit ? "ok" : commit.error().message.c_str());
        std::exit(static_cast<int>(entries(dir_).size()));
      },
      ::testing::ExitedWithCode(0),
      "write .*/partial: an earlier write failed.*commit .*/partial: an earlier write failed");
  EXPECT_FALSE(fs::exists(target));
}

TEST_F(AtomicFileTest, FsyncDirectory) {
  EXPECT_TRUE(fsync_directory(dir_).has_value());
  Status s = fsync_directory(dir_ / "missing");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message,
            "open directory " + (dir_ / "missing").string() + ": No such file or directory");
}

}  // namespace
}  // namespace dbops
