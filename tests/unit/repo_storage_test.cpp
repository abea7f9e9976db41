#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "repo/storage.hpp"
#include "support/support.hpp"

namespace dbops::repo {
namespace {

namespace fs = std::filesystem;
using dbops::testing::TempDir;

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Every file under dir, relative, sorted (temporary files included).
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(e.path().lexically_relative(dir).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> keys_of(const std::vector<ObjectInfo>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects) out.push_back(o.key);
  return out;
}

std::unique_ptr<Storage> open_or_die(const fs::path& root) {
  auto storage = open_posix(root);
  if (!storage) {
    ADD_FAILURE() << storage.error().to_string();
    return nullptr;
  }
  return std::move(*storage);
}

class RepoStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "repo";
    storage_ = open_or_die(root_);
    ASSERT_NE(storage_, nullptr);
  }
  TempDir dir_;
  fs::path root_;
  std::unique_ptr<Storage> storage_;
};

TEST(RepoKeyTest, AcceptsAndRejects) {
  for (const char* good : {"a", "pg-main/20261126T101522Z-3f9a/manifest.json", "t/a b/c",
                           "x/.hidden", "a/b.tmp", "a/b.tmp.12"}) {
    EXPECT_TRUE(validate_key(good)) << good;
  }
  for (const char* bad : {"", "/a", "a/", "a//b", "./a", "a/../b", "a/.", "a/\x01", "a/\xc3\xa9",
                          "t/obj.tmp.123.abcdef01", "obj.tmp.1.a"}) {
    auto st = validate_key(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(validate_key(std::string(256, 'a')));
  EXPECT_TRUE(validate_key(std::string(255, 'a')));
  EXPECT_FALSE(validate_key(std::string(5, 'a') + "/" + std::string(1100, 'b')));
}

TEST_F(RepoStorageTest, DescribesItself) {
  EXPECT_EQ(storage_->driver(), "posix");
  EXPECT_EQ(storage_->describe(), "posix:" + root_.string());
  EXPECT_EQ(mode_of(root_), 0700U);
  unsigned all = kFeatureAtomicPut | kFeatureExclusiveCreate | kFeatureRangeRead | kFeatureDurable |
                 kFeatureRename;
  EXPECT_EQ(storage_->features(), all);
}

TEST_F(RepoStorageTest, PutGetRoundTripWithModes) {
  ASSERT_TRUE(storage_->put_bytes("t/id/obj", "hello"));
  EXPECT_EQ(testing::read_file(root_ / "t/id/obj"), "hello");
  EXPECT_EQ(mode_of(root_ / "t/id/obj"), 0600U);
  EXPECT_EQ(mode_of(root_ / "t"), 0700U);
  EXPECT_EQ(mode_of(root_ / "t/id"), 0700U);
  auto bytes = storage_->get_bytes("t/id/obj");
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  EXPECT_EQ(*bytes, "hello");

  // Replacing.
  ASSERT_TRUE(storage_->put_bytes("t/id/obj", "bye"));
  EXPECT_EQ(*storage_->get_bytes("t/id/obj"), "bye");

  auto info = storage_->stat("t/id/obj");
  ASSERT_TRUE(info);
  ASSERT_TRUE(info->has_value());
  EXPECT_EQ((*info)->size, 3U);
  EXPECT_EQ((*info)->key, "t/id/obj");

  auto missing = storage_->get("t/id/none");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  auto missing_stat = storage_->stat("t/none/x");
  ASSERT_TRUE(missing_stat);
  EXPECT_FALSE(missing_stat->has_value());
  EXPECT_EQ(storage_->get_bytes("t/id/none").error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(storage_->put("../escape"));
}

TEST_F(RepoStorageTest, NothingVisibleBeforeCommitAndNothingLeftWhenAbandoned) {
  {
    auto writer = storage_->put("t/obj");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write("partial"));
    EXPECT_EQ((*writer)->bytes_written(), 7U);
    EXPECT_FALSE(*storage_->stat("t/obj"));
    EXPECT_TRUE(storage_->list("")->empty());
    // A temporary file exists, and is not listed.
    EXPECT_EQ(files_under(root_).size(), 1U);
  }
  EXPECT_TRUE(files_under(root_).empty());
  {
    auto writer = storage_->put("t/obj");
    ASSERT_TRUE(writer);
    ASSERT_TRUE((*writer)->write("partial"));
    (*writer)->abandon();
    EXPECT_TRUE(files_under(root_).empty());
    EXPECT_FALSE((*writer)->commit());
  }
  auto writer = storage_->put("t/obj");
  ASSERT_TRUE(writer);
  ASSERT_TRUE((*writer)->write("full"));
  ASSERT_TRUE((*writer)->commit());
  EXPECT_EQ(files_under(root_), std::vector<std::string>{"t/obj"});
}

TEST_F(RepoStorageTest, ListIsRecursiveSortedAndSkipsTemporaryFiles) {
  for (const char* key : {"b/2", "a/z/1", "a/y", "a-b/x", "top", "ab/c"}) {
    ASSERT_TRUE(storage_->put_bytes(key, key));
  }
  // A killed writer's leftover.
  dir_.write("repo/a/y.tmp.4242.0123456789abcdef", "junk");
  auto all = storage_->list("");
  ASSERT_TRUE(all) << all.error().to_string();
  EXPECT_EQ(keys_of(*all),
            (std::vector<std::string>{"a-b/x", "a/y", "a/z/1", "ab/c", "b/2", "top"}));
  EXPECT_EQ(keys_of(*storage_->list("a/")), (std::vector<std::string>{"a/y", "a/z/1"}));
  EXPECT_EQ(keys_of(*storage_->list("a")),
            (std::vector<std::string>{"a-b/x", "a/y", "a/z/1", "ab/c"}));
  EXPECT_EQ(keys_of(*storage_->list("a/z")), (std::vector<std::string>{"a/z/1"}));
  EXPECT_TRUE(storage_->list("nothing/")->empty());
  EXPECT_TRUE(storage_->list("top/")->empty());
  auto sizes = *storage_->list("b/");
  ASSERT_EQ(sizes.size(), 1U);
  EXPECT_EQ(sizes[0].size, 3U);
}

TEST_F(RepoStorageTest, RangeRead) {
  ASSERT_TRUE(storage_->put_bytes("t/obj", "0123456789"));
  auto reader = storage_->get("t/obj", 4);
  ASSERT_TRUE(reader);
  EXPECT_EQ((*reader)->size(), 6U);
  char buf[32];
  auto n = (*reader)->read(buf, sizeof buf);
  ASSERT_TRUE(n);
  EXPECT_EQ(std::string(buf, *n), "456789");
  EXPECT_EQ(*(*reader)->read(buf, sizeof buf), 0U);
  EXPECT_FALSE(storage_->get("t/obj", 11));
}

TEST_F(RepoStorageTest, GetBytesLimit) {
  ASSERT_TRUE(storage_->put_bytes("t/obj", std::string(100, 'x')));
  auto too_big = storage_->get_bytes("t/obj", 99);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(storage_->get_bytes("t/obj", 100)->size(), 100U);
}

TEST_F(RepoStorageTest, RemoveIsIdempotent) {
  ASSERT_TRUE(storage_->put_bytes("t/obj", "x"));
  ASSERT_TRUE(storage_->remove("t/obj"));
  EXPECT_FALSE(*storage_->stat("t/obj"));
  EXPECT_TRUE(storage_->remove("t/obj"));
  EXPECT_TRUE(storage_->remove("none/at/all"));
}

TEST_F(RepoStorageTest, CreateExclusive) {
  auto first = storage_->create_exclusive("t/lock", "one");
  ASSERT_TRUE(first) << first.error().to_string();
  EXPECT_TRUE(*first);
  auto second = storage_->create_exclusive("t/lock", "two");
  ASSERT_TRUE(second);
  EXPECT_FALSE(*second);
  EXPECT_EQ(*storage_->get_bytes("t/lock"), "one");
  EXPECT_EQ(mode_of(root_ / "t/lock"), 0600U);
  EXPECT_EQ(files_under(root_), std::vector<std::string>{"t/lock"});
}

TEST_F(RepoStorageTest, CreateExclusiveHasExactlyOneWinner) {
  constexpr int kThreads = 8;
  for (int round = 0; round < 20; ++round) {
    std::string key = "t/race" + std::to_string(round);
    std::atomic<int> winners{0};
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        start.arrive_and_wait();
        auto created = storage_->create_exclusive(key, "writer " + std::to_string(i));
        ASSERT_TRUE(created);
        if (*created) ++winners;
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(winners.load(), 1);
    EXPECT_TRUE(storage_->get_bytes(key)->starts_with("writer "));
  }
  EXPECT_EQ(files_under(root_).size(), 20U);
}

TEST_F(RepoStorageTest, RenameNeverReplaces) {
  ASSERT_TRUE(storage_->put_bytes("t/a", "a"));
  ASSERT_TRUE(storage_->put_bytes("t/b", "b"));
  auto conflict = storage_->rename("t/a", "t/b");
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
  EXPECT_EQ(*storage_->get_bytes("t/b"), "b");
  EXPECT_EQ(*storage_->get_bytes("t/a"), "a");

  ASSERT_TRUE(storage_->rename("t/a", "u/v/c"));
  EXPECT_FALSE(*storage_->stat("t/a"));
  EXPECT_EQ(*storage_->get_bytes("u/v/c"), "a");

  auto missing = storage_->rename("t/none", "t/other");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST_F(RepoStorageTest, RemovePrefixTakesTemporaryFilesAndDirectories) {
  ASSERT_TRUE(storage_->put_bytes("t/id/obj", "x"));
  ASSERT_TRUE(storage_->put_bytes("t/id/pins/run", "x"));
  ASSERT_TRUE(storage_->put_bytes("t/other/obj", "x"));
  dir_.write("repo/t/id/big.tmp.99.00aa", "killed writer");
  ASSERT_TRUE(storage_->remove_prefix("t/id/"));
  EXPECT_FALSE(fs::exists(root_ / "t/id"));
  EXPECT_EQ(files_under(root_), std::vector<std::string>{"t/other/obj"});
  EXPECT_TRUE(storage_->remove_prefix("t/id/"));
  EXPECT_FALSE(storage_->remove_prefix("t/id"));
}

TEST_F(RepoStorageTest, PutStreamsLargeObjects) {
  std::string block(1 << 20, 'q');
  auto writer = storage_->put("t/big");
  ASSERT_TRUE(writer);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE((*writer)->write(block));
  ASSERT_TRUE((*writer)->commit());
  EXPECT_EQ((*storage_->stat("t/big"))->size, 8U << 20);
}

// A full disk: a 1 MiB tmpfs.
class RepoStorageFullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_ = dir_ / "small";
    fs::create_directories(mount_);
    if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=1m") != 0) {
      int err = errno;
      FAIL() << "cannot mount a 1 MiB tmpfs on " << mount_ << ": " << std::strerror(err)
             << " (this test needs root or CAP_SYS_ADMIN to simulate a full disk)";
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
  }
  TempDir dir_;
  fs::path mount_;
  bool mounted_ = false;
};

TEST_F(RepoStorageFullDiskTest, PutFailsClearlyAndLeavesNothing) {
  auto storage = open_or_die(mount_ / "repo");
  ASSERT_NE(storage, nullptr);
  std::string data(2 << 20, '\0');
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    std::uint64_t v = rng();
    std::memcpy(data.data() + i, &v, 8);
  }

  auto writer = storage->put("t/id/base.tar.zst");
  ASSERT_TRUE(writer) << writer.error().to_string();
  Status written = ok();
  for (std::size_t off = 0; off < data.size() && written; off += 256 << 10) {
    written = (*writer)->write(std::string_view(data).substr(off, 256 << 10));
  }
  ASSERT_FALSE(written) << "2 MiB fit on a 1 MiB tmpfs";
  EXPECT_EQ(written.error().code, ErrorCode::kIo);
  std::string message = written.error().to_string();
  EXPECT_NE(message.find("t/id/base.tar.zst"), std::string::npos) << message;
  EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  // Nothing left behind, even before the writer is destroyed.
  EXPECT_TRUE(files_under(mount_).empty());
  EXPECT_FALSE((*writer)->commit());
  writer->reset();
  EXPECT_TRUE(files_under(mount_).empty());

  // The convenience form fails the same way.
  auto put = storage->put_bytes("t/id/other", data);
  ASSERT_FALSE(put);
  EXPECT_NE(put.error().to_string().find("No space left on device"), std::string::npos);
  EXPECT_NE(put.error().to_string().find("t/id/other"), std::string::npos);
  EXPECT_TRUE(files_under(mount_).empty());

  // The disk is usable again for small objects.
  EXPECT_TRUE(storage->put_bytes("t/id/small", "ok"));
}

TEST_F(RepoStorageFullDiskTest, CreateExclusiveFailsClearlyAndLeavesNothing) {
  auto storage = open_or_die(mount_ / "repo");
  ASSERT_NE(storage, nullptr);
  std::string data(2 << 20, 'z');
  auto created = storage->create_exclusive("t/lock", data);
  ASSERT_FALSE(created);
  EXPECT_NE(created.error().to_string().find("No space left on device"), std::string::npos);
  EXPECT_NE(created.error().to_string().find("t/lock"), std::string::npos);
  EXPECT_TRUE(files_under(mount_).empty());
}

}  // namespace
}  // namespace dbops::repo
