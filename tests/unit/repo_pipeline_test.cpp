#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/fault.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "repo/pipeline.hpp"
#include "support/support.hpp"

namespace dbops::repo {
namespace {

namespace fs = std::filesystem;
using dbops::testing::TempDir;

constexpr std::size_t kMiB = std::size_t{1} << 20;

// Alternating 64 KiB blocks: random bytes, then text-like repetitive data.
std::string mixed_data(std::size_t size, std::uint64_t seed) {
  std::string out(size, '\0');
  std::mt19937_64 rng(seed);
  const std::string text = "INSERT INTO accounts VALUES (42, 'alice', 'active', 1024.50);\n";
  for (std::size_t off = 0; off < size; off += 64 << 10) {
    std::size_t end = std::min(size, off + (64 << 10));
    bool random = ((off >> 16) % 2) == 0;
    for (std::size_t i = off; i < end; ++i) {
      out[i] = random ? static_cast<char>(rng()) : text[i % text.size()];
    }
  }
  return out;
}

std::string random_data(std::size_t size, std::uint64_t seed) {
  std::string out(size, '\0');
  std::mt19937_64 rng(seed);
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

// sha256sum of bytes, independent of the code under test.
std::string sha256_of(std::string_view data) {
  auto r = run_process({.argv = {"sha256sum"},
                        .timeout = std::chrono::seconds(60),
                        .stdin_data = std::string(data),
                        .stdout_sink = OutputSink::capture(4096)});
  EXPECT_TRUE(r && r->succeeded()) << (r ? r->describe() : r.error().to_string());
  return r ? r->stdout_text.substr(0, 64) : std::string();
}

Secret test_key(char fill) {
  return Secret(std::string(32, fill));
}

class RepoPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto storage = open_posix(dir_ / "repo");
    ASSERT_TRUE(storage) << storage.error().to_string();
    storage_ = std::move(*storage);
  }

  Result<ObjectEntry> store(const std::string& key, std::string_view data,
                            const PipelineOptions& options, std::size_t piece = 100000) {
    DBOPS_ASSIGN(auto sink,
                 ObjectSink::open(*storage_, key, fs::path(key).filename().string(), options));
    for (std::size_t off = 0; off < data.size(); off += piece) {
      DBOPS_TRY(sink->write(data.substr(off, piece)));
    }
    EXPECT_EQ(sink->plain_bytes(), data.size());
    return sink->finish();
  }

  Result<std::string> load(const std::string& key, const ObjectEntry& entry,
                           const std::optional<Secret>& k) {
    std::string out;
    DBOPS_TRY(read_object(*storage_, key, entry, k, [&](std::string_view plain) -> Status {
      out.append(plain);
      return ok();
    }));
    return out;
  }

  std::string stored_bytes(const std::string& key) {
    return testing::read_file(dir_ / "repo" / key);
  }
  void overwrite(const std::string& key, const std::string& bytes) {
    std::ofstream(dir_ / "repo" / key, std::ios::binary | std::ios::trunc) << bytes;
  }

  TempDir dir_;
  std::unique_ptr<Storage> storage_;
};

struct RoundTripCase {
  std::size_t size;
  bool encrypted;
  int threads;
};

class RepoPipelineRoundTripTest : public RepoPipelineTest,
                                  public ::testing::WithParamInterface<RoundTripCase> {};

TEST_P(RepoPipelineRoundTripTest, RoundTrip) {
  const RoundTripCase c = GetParam();
  const std::string data = mixed_data(c.size, c.size + 7);
  PipelineOptions options;
  options.zstd_threads = c.threads;
  if (c.encrypted) options.key = test_key('k');

  auto entry = store("t/20261126T101522Z-3f9a/data.bin", data, options, 300000);
  ASSERT_TRUE(entry) << entry.error().to_string();
  EXPECT_EQ(entry->name, "data.bin");
  EXPECT_EQ(entry->plain_size, data.size());
  EXPECT_EQ(entry->chunk_size, kChunkSize);
  std::string stored = stored_bytes("t/20261126T101522Z-3f9a/data.bin");
  EXPECT_EQ(entry->stored_size, stored.size());
  EXPECT_EQ(entry->plain_chunks.size(), (data.size() + kChunkSize - 1) / kChunkSize);
  EXPECT_EQ(entry->stored_chunks.size(), (stored.size() + kChunkSize - 1) / kChunkSize);
  EXPECT_EQ(entry->compression, "zstd");
  EXPECT_EQ(entry->compression_level, 3);
  // Each chunk's digest is that of its bytes; the list digest is that of the
  // digests, one per line (what `split --filter=sha256sum` gives).
  std::string list;
  for (std::size_t i = 0; i < entry->plain_chunks.size(); ++i) {
    EXPECT_EQ(entry->plain_chunks[i],
              sha256_of(std::string_view(data).substr(i * kChunkSize, kChunkSize)));
    list += entry->plain_chunks[i] + "\n";
  }
  EXPECT_EQ(entry->plain_list_sha256, sha256_of(list));
  EXPECT_EQ(entry->stored_sha256, sha256_of(stored));
  if (!stored.empty()) {
    EXPECT_EQ(entry->stored_chunks[0], sha256_of(std::string_view(stored).substr(0, kChunkSize)));
  }
  if (c.encrypted) {
    EXPECT_EQ(entry->encryption, "xchacha20poly1305-secretstream");
    EXPECT_EQ(entry->key_id, key_id(*options.key));
    EXPECT_TRUE(stored.starts_with("DBOPSENC1"));
    EXPECT_EQ(stored.find("INSERT INTO accounts"), std::string::npos);
  } else {
    EXPECT_EQ(entry->encryption, "none");
    EXPECT_TRUE(entry->key_id.empty());
    EXPECT_TRUE(stored.starts_with("\x28\xb5\x2f\xfd")) << "not a zstd frame";
  }

  auto back = load("t/20261126T101522Z-3f9a/data.bin", *entry, options.key);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_TRUE(*back == data) << "plaintext differs";

  // Verify only.
  EXPECT_TRUE(
      read_object(*storage_, "t/20261126T101522Z-3f9a/data.bin", *entry, options.key, nullptr));
}

INSTANTIATE_TEST_SUITE_P(
    Sizes, RepoPipelineRoundTripTest,
    ::testing::Values(RoundTripCase{0, false, 0}, RoundTripCase{0, true, 0},
                      RoundTripCase{1, false, 0}, RoundTripCase{1, true, 0},
                      RoundTripCase{kChunkSize, false, 0}, RoundTripCase{kChunkSize, true, 0},
                      RoundTripCase{kChunkSize + 1, false, 0},
                      RoundTripCase{kChunkSize + 1, true, 0}, RoundTripCase{20 * kMiB, false, 0},
                      RoundTripCase{20 * kMiB, true, 0}, RoundTripCase{20 * kMiB, false, 2},
                      RoundTripCase{20 * kMiB, true, 2}),
    [](const ::testing::TestParamInfo<RoundTripCase>& info) {
      return "bytes" + std::to_string(info.param.size) +
             (info.param.encrypted ? "_encrypted" : "_plain") + "_threads" +
             std::to_string(info.param.threads);
    });

TEST_F(RepoPipelineTest, KnownDigests) {
  auto empty = store("t/empty", "", {});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->plain_list_sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(empty->plain_chunks.empty());
  auto one = store("t/one", "a", {});
  ASSERT_TRUE(one);
  EXPECT_EQ(one->plain_list_sha256,
            sha256_of("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb\n"));
  EXPECT_EQ(
      one->plain_chunks,
      std::vector<std::string>{"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"});
}

TEST_F(RepoPipelineTest, StoredObjectIsAValidZstdFrame) {
  // The zstd command (scripts/setup test installs it) decodes what dbops
  // stored: a missing command fails the test.
  std::string data = mixed_data(3 * kMiB, 5);
  auto entry = store("t/x.zst", data, {});
  ASSERT_TRUE(entry);
  auto decoded = run_process({.argv = {"zstd", "-q", "-d", "-c", (dir_ / "repo/t/x.zst").string()},
                              .timeout = std::chrono::seconds(60),
                              .stdout_sink = OutputSink::capture(8 * kMiB)});
  ASSERT_TRUE(decoded) << decoded.error().to_string();
  ASSERT_TRUE(decoded->succeeded()) << decoded->describe() << ": " << decoded->stderr_text;
  EXPECT_TRUE(decoded->stdout_text == data) << "decoded bytes differ";
}

// Flips one byte in the second stored chunk.
void flip(std::string& bytes, std::size_t offset) {
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x40);
}

TEST_F(RepoPipelineTest, FlippedByteNamesTheChunk) {
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    PipelineOptions options;
    if (encrypted) options.key = test_key('e');
    std::string data = random_data(10 * kMiB, 11);  // stores ~10 MiB: 3 chunks
    auto entry = store("t/obj.bin", data, options);
    ASSERT_TRUE(entry) << entry.error().to_string();
    ASSERT_EQ(entry->stored_chunks.size(), 3U);
    std::string stored = stored_bytes("t/obj.bin");
    flip(stored, kChunkSize + 12345);
    overwrite("t/obj.bin", stored);

    std::size_t consumed = 0;
    auto st = read_object(*storage_, "t/obj.bin", *entry, options.key,
                          [&](std::string_view plain) -> Status {
                            consumed += plain.size();
                            return ok();
                          });
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
    EXPECT_EQ(st.error().message,
              "object obj.bin: stored chunk 1 (bytes 4194304..8388608) does not match its "
              "checksum");
    // Nothing beyond the first (good) chunk reached the consumer.
    EXPECT_LE(consumed, kChunkSize);
  }
}

TEST_F(RepoPipelineTest, LastChunkOffsetsAreExact) {
  std::string data = random_data(5 * kMiB, 3);
  auto entry = store("t/obj", data, {});
  ASSERT_TRUE(entry);
  std::string stored = stored_bytes("t/obj");
  flip(stored, stored.size() - 1);
  overwrite("t/obj", stored);
  auto st = read_object(*storage_, "t/obj", *entry, std::nullopt, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "object obj: stored chunk 1 (bytes 4194304.." +
                                    std::to_string(stored.size()) +
                                    ") does not match its checksum");
}

TEST_F(RepoPipelineTest, TruncatedObject) {
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    PipelineOptions options;
    if (encrypted) options.key = test_key('t');
    auto entry = store("t/obj", mixed_data(6 * kMiB, 1), options);
    ASSERT_TRUE(entry);
    std::string stored = stored_bytes("t/obj");
    overwrite("t/obj", stored.substr(0, stored.size() - 100));
    auto st = read_object(*storage_, "t/obj", *entry, options.key, nullptr);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
    EXPECT_NE(st.error().message.find("truncated"), std::string::npos) << st.error().message;
    EXPECT_TRUE(st.error().message.starts_with("object obj: ")) << st.error().message;
  }
}

// The manifest agrees with the truncated bytes (stored checksums recomputed):
// the stream itself must still be found incomplete.
TEST_F(RepoPipelineTest, TruncatedStreamIsDetectedEvenWithMatchingChecksums) {
  for (bool encrypted : {false, true}) {
    SCOPED_TRACE(encrypted ? "encrypted" : "plain");
    PipelineOptions options;
    if (encrypted) options.key = test_key('s');
    std::string data = mixed_data(3 * kMiB, 9);
    auto entry = store("t/obj", data, options, 1 << 20);
    ASSERT_TRUE(entry);
    std::string stored = stored_bytes("t/obj");
    // Encrypted: drop the final message (an empty one: 4 + 17 bytes).
    // Plain: drop the frame's last bytes.
    std::string cut = stored.substr(0, stored.size() - (encrypted ? 21 : 8));
    overwrite("t/obj", cut);
    ObjectEntry forged = *entry;
    forged.stored_size = cut.size();
    forged.stored_sha256 = sha256_of(cut);
    forged.stored_chunks = {sha256_of(cut)};
    auto st = read_object(*storage_, "t/obj", forged, options.key, nullptr);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
    EXPECT_NE(st.error().message.find("truncated"), std::string::npos) << st.error().message;
  }
}

TEST_F(RepoPipelineTest, AlteredCiphertextFailsDecryption) {
  PipelineOptions options;
  options.key = test_key('a');
  auto entry = store("t/obj", mixed_data(2 * kMiB, 4), options);
  ASSERT_TRUE(entry);
  std::string stored = stored_bytes("t/obj");
  flip(stored, 1000);
  overwrite("t/obj", stored);
  ObjectEntry forged = *entry;
  forged.stored_sha256 = sha256_of(stored);
  forged.stored_chunks = {forged.stored_sha256};
  auto st = read_object(*storage_, "t/obj", forged, options.key, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(st.error().message,
            "object obj: decryption failed for encrypted message 0 at stored byte 33: the data "
            "was altered");
}

TEST_F(RepoPipelineTest, PlaintextChunkMismatch) {
  std::string data = mixed_data(kChunkSize + 10, 2);
  auto entry = store("t/obj", data, {});
  ASSERT_TRUE(entry);
  ObjectEntry forged = *entry;
  forged.plain_chunks[1] = std::string(64, '0');
  auto st = read_object(*storage_, "t/obj", forged, std::nullopt, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
  EXPECT_EQ(st.error().message,
            "object obj: plaintext chunk 1 (bytes 4194304..4194314) does not match its checksum");

  forged = *entry;
  forged.plain_list_sha256 = std::string(64, '0');
  st = read_object(*storage_, "t/obj", forged, std::nullopt, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "object obj: the plaintext does not match its checksum");

  forged = *entry;
  forged.plain_size -= 1;
  st = read_object(*storage_, "t/obj", forged, std::nullopt, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kCorrupt);
}

TEST_F(RepoPipelineTest, WrongKeyIsNamedBeforeDecrypting) {
  PipelineOptions options;
  options.key = test_key('1');
  auto entry = store("t/obj", "secret data", options);
  ASSERT_TRUE(entry);
  std::optional<Secret> other = test_key('2');
  bool consumed = false;
  auto st = read_object(*storage_, "t/obj", *entry, other, [&](std::string_view) -> Status {
    consumed = true;
    return ok();
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kConfig);
  EXPECT_EQ(st.error().message, "wrong encryption key: backup was written with key id " +
                                    key_id(test_key('1')) + ", the configured key has id " +
                                    key_id(test_key('2')));
  EXPECT_FALSE(consumed);
}

TEST_F(RepoPipelineTest, MissingKey) {
  PipelineOptions options;
  options.key = test_key('1');
  auto entry = store("t/obj", "secret data", options);
  ASSERT_TRUE(entry);
  auto st = read_object(*storage_, "t/obj", *entry, std::nullopt, nullptr);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, ErrorCode::kConfig);
  EXPECT_NE(st.error().message.find("is encrypted"), std::string::npos);
  EXPECT_NE(st.error().message.find("no encryption key"), std::string::npos);
}

TEST_F(RepoPipelineTest, ConsumerErrorStopsReading) {
  auto entry = store("t/obj", mixed_data(9 * kMiB, 1), {});
  ASSERT_TRUE(entry);
  int calls = 0;
  auto st = read_object(*storage_, "t/obj", *entry, std::nullopt, [&](std::string_view) -> Status {
    ++calls;
    return fail(ErrorCode::kIo, "disk full on restore");
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "disk full on restore");
  EXPECT_EQ(calls, 1);
}

TEST_F(RepoPipelineTest, AbandonedSinkLeavesNothing) {
  {
    auto sink = ObjectSink::open(*storage_, "t/obj", "obj", {});
    ASSERT_TRUE(sink);
    ASSERT_TRUE((*sink)->write(mixed_data(3 * kMiB, 1)));
    EXPECT_GT((*sink)->stored_bytes(), 0U);
  }
  EXPECT_TRUE(storage_->list("")->empty());
  EXPECT_TRUE(fs::is_empty(dir_ / "repo/t"));
  auto sink = ObjectSink::open(*storage_, "t/obj", "obj", {});
  ASSERT_TRUE(sink);
  ASSERT_TRUE((*sink)->write("abc"));
  (*sink)->abandon();
  EXPECT_FALSE((*sink)->write("more"));
  EXPECT_FALSE((*sink)->finish());
  EXPECT_TRUE(fs::is_empty(dir_ / "repo/t"));
}

TEST_F(RepoPipelineTest, BadOptions) {
  PipelineOptions options;
  options.key = Secret("short");
  auto sink = ObjectSink::open(*storage_, "t/obj", "obj", options);
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, ErrorCode::kConfig);
  options = {};
  options.zstd_level = 99;
  sink = ObjectSink::open(*storage_, "t/obj", "obj", options);
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, ErrorCode::kConfig);
  EXPECT_TRUE(fs::is_empty(dir_ / "repo/t"));
}

class RepoPipelineFaultTest : public RepoPipelineTest {
 protected:
  void SetUp() override {
    RepoPipelineTest::SetUp();
    // "fast": the child is a fork that shares this test's repository
    // directory (no threads are running here).
    GTEST_FLAG_SET(death_test_style, "fast");
  }
  void TearDown() override { fault::set_for_testing(""); }
};

TEST_F(RepoPipelineFaultTest, DuringStream) {
  EXPECT_EXIT(
      {
        fault::set_for_testing("backup.during_stream=exit:7");
        auto sink = ObjectSink::open(*storage_, "t/obj", "obj", {});
        if (!sink) std::_Exit(1);
        if (!(*sink)->write(std::string(kMiB, 'x'))) std::_Exit(2);
        if (!(*sink)->write("y")) std::_Exit(3);
        std::_Exit(4);
      },
      ::testing::ExitedWithCode(7), "fault point backup.during_stream reached");
  // The killed writer left a temporary file at most, never the object.
  EXPECT_TRUE(storage_->list("")->empty());
}

TEST_F(RepoPipelineFaultTest, AfterUploadTheObjectIsThere) {
  EXPECT_EXIT(
      {
        fault::set_for_testing("backup.after_upload=exit:9");
        auto sink = ObjectSink::open(*storage_, "t/obj", "obj", {});
        if (!sink) std::_Exit(1);
        if (!(*sink)->write("payload")) std::_Exit(2);
        (void)(*sink)->finish();
        std::_Exit(3);
      },
      ::testing::ExitedWithCode(9), "fault point backup.after_upload reached");
  auto objects = storage_->list("");
  ASSERT_EQ(objects->size(), 1U);
  EXPECT_EQ((*objects)[0].key, "t/obj");
}

TEST(RepoKeyParseTest, HexAndBase64) {
  std::string raw;
  for (int i = 0; i < 32; ++i) raw.push_back(static_cast<char>(i * 7 + 1));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex += kHex[c >> 4];
    hex += kHex[c & 0xF];
  }
  auto from_hex = parse_encryption_key(Secret(hex));
  ASSERT_TRUE(from_hex) << from_hex.error().to_string();
  EXPECT_EQ(from_hex->reveal(), raw);
  std::string upper = hex;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(parse_encryption_key(Secret(upper))->reveal(), raw);

  auto from_b64 = parse_encryption_key(Secret(base64_encode(raw) + "\n"));
  ASSERT_TRUE(from_b64) << from_b64.error().to_string();
  EXPECT_EQ(from_b64->reveal(), raw);
  EXPECT_EQ(parse_encryption_key(Secret("  " + base64_encode(raw) + " \r\n"))->reveal(), raw);
}

TEST(RepoKeyParseTest, RejectsWithoutEchoing) {
  const std::vector<std::string> bad = {
      "",
      "not-a-key-at-all",
      std::string(63, 'a'),
      std::string(64, 'g'),
      base64_encode(std::string(16, 'x')),
      base64_encode(std::string(33, 'x')),
      base64_encode(std::string(32, 'x')) + "!!",
  };
  for (const auto& text : bad) {
    auto parsed = parse_encryption_key(Secret(text));
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().code, ErrorCode::kConfig);
    std::string shown = parsed.error().to_string();
    if (text.size() >= 4) {
      EXPECT_EQ(shown.find(text), std::string::npos) << shown;
    }
  }
}

TEST(RepoKeyParseTest, KeyIds) {
  std::string a = key_id(test_key('a'));
  EXPECT_EQ(a.size(), 16U);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(a, key_id(test_key('a')));
  EXPECT_NE(a, key_id(test_key('b')));
  EXPECT_EQ(a.find(test_key('a').reveal().substr(0, 4)), std::string::npos);
}

}  // namespace
}  // namespace dbops::repo
