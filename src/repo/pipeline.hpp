// The streaming pipeline every backup method goes through, and its reverse.
//
// Writing (ObjectSink): plaintext in -> SHA-256 of the plaintext (whole and
// per chunk) -> zstd (level, worker threads) -> optional encryption (libsodium
// crypto_secretstream_xchacha20poly1305) -> SHA-256 of the stored bytes (whole
// and per chunk) -> a Storage object. Memory stays bounded (a few chunks),
// whatever the size of the backup.
//
// Stored format: a zstd frame (with its content checksum); encrypted, that
// frame is cut into messages: "DBOPSENC1" (9 bytes), the secretstream header
// (24 bytes), then per message a 4-byte big-endian length and the ciphertext;
// the last message carries the FINAL tag, so truncation is detected.
//
// Reading (read_object): the reverse, comparing every stored chunk and every
// plaintext chunk against the ObjectEntry from the manifest as it goes. The
// first mismatch is a kCorrupt error naming the object, the chunk and its
// byte offset, e.g. "object base.tar: stored chunk 3 (bytes 12582912..
// 16777216) does not match its checksum". A wrong key is a kConfig error that
// says so (the key id differs) before any byte is decrypted.
//
// SHA-256 is OpenSSL's EVP interface; zstd is libzstd's streaming API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "core/secret.hpp"
#include "repo/manifest.hpp"
#include "repo/storage.hpp"

namespace dbops::repo {

inline constexpr std::size_t kChunkSize = std::size_t{4} << 20;  // 4 MiB

struct PipelineOptions {
  int zstd_level = 3;    // 1..19 (negative: faster levels)
  int zstd_threads = 0;  // zstd worker threads; 0: compress on the caller's thread
  // 32 raw bytes; nullopt: not encrypted.
  std::optional<Secret> key;
};

// Parses an encryption key as configured: 64 hex digits or the base64 of 32
// bytes (e.g. `head -c 32 /dev/urandom | base64`). kConfig otherwise, without
// echoing the value.
Result<Secret> parse_encryption_key(const Secret& text);
// A short public id of a key (16 hex digits of a keyed BLAKE2b), recorded in
// manifests so a wrong key is named before decrypting.
std::string key_id(const Secret& key);

class ObjectSink {
 public:
  // Opens storage.put(key); `name` is the object's name in the manifest
  // (usually the last segment of the key).
  static Result<std::unique_ptr<ObjectSink>> open(Storage& storage, std::string key,
                                                  std::string name, const PipelineOptions& options);
  virtual ~ObjectSink() = default;
  // Takes the next plaintext bytes.
  virtual Status write(std::string_view plain) = 0;
  // Flushes, commits the storage object and returns its manifest entry.
  virtual Result<ObjectEntry> finish() = 0;
  // Abandons the object.
  virtual void abandon() = 0;
  virtual std::uint64_t plain_bytes() const = 0;
  virtual std::uint64_t stored_bytes() const = 0;
};

// Reads an object back through the pipeline, checking it against `entry`,
// and hands the plaintext to `consume` in order (may be null: verify only).
// `key` must be given when entry says the object is encrypted.
Status read_object(Storage& storage, std::string_view key, const ObjectEntry& entry,
                   const std::optional<Secret>& encryption_key,
                   const std::function<Status(std::string_view plain)>& consume);

}  // namespace dbops::repo
