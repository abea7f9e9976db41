#include "repo/pipeline.hpp"

#include <openssl/evp.h>
#include <sodium.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/fault.hpp"
#include "repo/internal.hpp"

namespace dbops::repo {
namespace {

constexpr std::string_view kMagic = "DBOPSENC1";
constexpr std::string_view kEncryptionName = "xchacha20poly1305-secretstream";
constexpr std::size_t kHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;
constexpr std::size_t kABytes = crypto_secretstream_xchacha20poly1305_ABYTES;
constexpr std::size_t kKeyBytes = crypto_secretstream_xchacha20poly1305_KEYBYTES;
// Compressed bytes per encrypted message (the writer's choice; the reader
// accepts messages up to kMaxMessage).
constexpr std::size_t kMessageSize = std::size_t{1} << 20;
constexpr std::size_t kMaxMessage = std::size_t{16} << 20;
// Where the stored chunk size of a manifest is not sane, refuse to allocate it.
constexpr std::uint64_t kMaxChunkSize = std::uint64_t{64} << 20;
constexpr std::size_t kIoBuffer = std::size_t{1} << 20;
constexpr std::uint64_t kDuringStreamAfter = std::uint64_t{1} << 20;

static_assert(kHeaderBytes == 24);

Status sodium_ready() {
  static const int rc = sodium_init();
  if (rc < 0) return fail(ErrorCode::kInternal, "libsodium could not be initialised");
  return ok();
}

std::string range(std::uint64_t begin, std::uint64_t end) {
  return "(bytes " + std::to_string(begin) + ".." + std::to_string(end) + ")";
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { reset(); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void reset() {
    if (ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
      EVP_MD_CTX_free(ctx_);
      ctx_ = nullptr;
    }
  }
  bool valid() const { return ctx_ != nullptr; }
  void update(const void* data, std::size_t size) {
    if (size > 0) EVP_DigestUpdate(ctx_, data, size);
  }
  std::string hex_final() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    return internal::to_hex(md, len);
  }

 private:
  EVP_MD_CTX* ctx_;
};

// SHA-256 of each chunk of a stream, and of the whole: either of the stream's
// bytes, or (list mode, for plaintext) of the list of chunk digests, one
// lowercase hex digest and a newline per chunk, which costs no second pass
// over the data.
class ChunkedHash {
 public:
  explicit ChunkedHash(std::uint64_t chunk_size, bool list_mode = false)
      : chunk_size_(chunk_size), list_mode_(list_mode) {}

  bool valid() const { return whole_.valid() && chunk_.valid(); }

  // Calls on_chunk(index, begin, end, hex) for every chunk completed.
  template <typename OnChunk>
  Status update(std::string_view data, OnChunk&& on_chunk) {
    if (!list_mode_) whole_.update(data.data(), data.size());
    while (!data.empty()) {
      std::size_t take =
          static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), chunk_size_ - fill_));
      chunk_.update(data.data(), take);
      fill_ += take;
      total_ += take;
      data.remove_prefix(take);
      if (fill_ == chunk_size_) DBOPS_TRY(close_chunk(on_chunk));
    }
    return ok();
  }

  // Closes the last, partial chunk; returns the whole stream's hash.
  template <typename OnChunk>
  Result<std::string> finish(OnChunk&& on_chunk) {
    if (fill_ > 0) DBOPS_TRY(close_chunk(on_chunk));
    return whole_.hex_final();
  }

  std::uint64_t total() const { return total_; }
  std::size_t chunks() const { return index_; }

 private:
  template <typename OnChunk>
  Status close_chunk(OnChunk& on_chunk) {
    std::string hex = chunk_.hex_final();
    chunk_.reset();
    if (list_mode_) {
      whole_.update(hex.data(), hex.size());
      whole_.update("\n", 1);
    }
    std::uint64_t end = total_;
    std::uint64_t begin = end - fill_;
    fill_ = 0;
    return on_chunk(index_++, begin, end, std::move(hex));
  }

  std::uint64_t chunk_size_;
  bool list_mode_;
  std::uint64_t fill_ = 0;
  std::uint64_t total_ = 0;
  std::size_t index_ = 0;
  Sha256 whole_;
  Sha256 chunk_;
};

std::string zstd_error(std::size_t code) {
  return ZSTD_getErrorName(code);
}

void put_be32(unsigned char* out, std::uint32_t value) {
  out[0] = static_cast<unsigned char>(value >> 24);
  out[1] = static_cast<unsigned char>(value >> 16);
  out[2] = static_cast<unsigned char>(value >> 8);
  out[3] = static_cast<unsigned char>(value);
}

std::uint32_t get_be32(const unsigned char* in) {
  return (std::uint32_t{in[0]} << 24) | (std::uint32_t{in[1]} << 16) | (std::uint32_t{in[2]} << 8) |
         std::uint32_t{in[3]};
}

Result<std::string_view> raw_key(const Secret& key) {
  if (key.reveal().size() != kKeyBytes) {
    return fail(ErrorCode::kConfig,
                "the encryption key must be 32 bytes, not " + std::to_string(key.reveal().size()));
  }
  return std::string_view(key.reveal());
}

// ---------------------------------------------------------------------------
// Writing

auto collect(std::vector<std::string>& out) {
  return [&out](std::size_t, std::uint64_t, std::uint64_t, std::string hex) -> Status {
    out.push_back(std::move(hex));
    return ok();
  };
}

// Hashes the plaintext (whole and per chunk) on its own thread, so that the
// two SHA-256 passes overlap with compression and with the producer (a
// pg_basebackup or pg_dump feeding us) instead of stalling them.
class BackgroundHash {
 public:
  static constexpr std::size_t kMaxQueued = std::size_t{16} << 20;

  BackgroundHash() : hash_(kChunkSize, /*list_mode=*/true) {
    worker_ = std::thread([this] { run(); });
  }
  ~BackgroundHash() { stop(); }

  bool valid() const { return hash_.valid(); }

  // Small writes are gathered into blocks of kBlock before they are queued.
  void push(std::string_view data) {
    if (data.empty()) return;
    if (pending_.capacity() < kBlock) pending_.reserve(kBlock);
    pending_.append(data);
    if (pending_.size() >= kBlock) flush_pending();
  }

  // Waits for every queued byte, then returns the whole stream's hash and the
  // chunks' hashes.
  Result<std::string> finish(std::vector<std::string>& chunks) {
    flush_pending();
    stop();
    DBOPS_TRY(status_);
    auto whole = hash_.finish(collect(chunks_));
    chunks = std::move(chunks_);
    return whole;
  }

 private:
  static constexpr std::size_t kBlock = std::size_t{1} << 20;

  void flush_pending() {
    if (pending_.empty()) return;
    std::string data = std::move(pending_);
    pending_ = std::string();
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] { return queued_ < kMaxQueued; });
    queued_ += data.size();
    queue_.push_back(std::move(data));
    work_.notify_one();
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      done_ = true;
      work_.notify_one();
    }
    if (worker_.joinable()) worker_.join();
  }

  void run() {
    while (true) {
      std::string data;
      {
        std::unique_lock lock(mu_);
        work_.wait(lock, [&] { return done_ || !queue_.empty(); });
        if (queue_.empty()) return;
        data = std::move(queue_.front());
        queue_.pop_front();
      }
      if (status_) status_ = hash_.update(data, collect(chunks_));
      {
        std::lock_guard lock(mu_);
        queued_ -= data.size();
        room_.notify_one();
      }
    }
  }

  ChunkedHash hash_;
  std::vector<std::string> chunks_;
  Status status_ = ok();
  std::mutex mu_;
  std::condition_variable work_, room_;
  std::deque<std::string> queue_;
  std::size_t queued_ = 0;
  bool done_ = false;
  std::string pending_;
  std::thread worker_;
};

class Sink final : public ObjectSink {
 public:
  Sink(std::unique_ptr<ObjectWriter> writer, std::string name, const PipelineOptions& options)
      : writer_(std::move(writer)),
        name_(std::move(name)),
        level_(options.zstd_level),
        encrypted_(options.key.has_value()),
        key_id_(encrypted_ ? key_id(*options.key) : std::string()),
        stored_(kChunkSize) {}

  ~Sink() override {
    if (cctx_ != nullptr) ZSTD_freeCCtx(cctx_);
    sodium_memzero(&state_, sizeof state_);
    if (!finished_) abandon();
  }

  Status start(const PipelineOptions& options) {
    if (!plain_.valid() || !stored_.valid()) {
      return fail(ErrorCode::kInternal, "OpenSSL: SHA-256 is not available");
    }
    if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel()) {
      return fail(ErrorCode::kConfig, "zstd level " + std::to_string(options.zstd_level) +
                                          " is outside " + std::to_string(ZSTD_minCLevel()) + ".." +
                                          std::to_string(ZSTD_maxCLevel()));
    }
    if (options.zstd_threads < 0) {
      return fail(ErrorCode::kConfig, "zstd threads must not be negative");
    }
    cctx_ = ZSTD_createCCtx();
    if (cctx_ == nullptr) return fail(ErrorCode::kInternal, "zstd: out of memory");
    std::size_t rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, options.zstd_level);
    if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(rc)) return fail(ErrorCode::kInternal, "zstd: " + zstd_error(rc));
    if (options.zstd_threads > 0) {
      rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_nbWorkers, options.zstd_threads);
      if (ZSTD_isError(rc)) {
        return fail(ErrorCode::kUnsupported,
                    "zstd worker threads are not available in this libzstd: " + zstd_error(rc));
      }
    }
    zbuf_.resize(encrypted_ ? kMessageSize : kIoBuffer);
    if (encrypted_) {
      DBOPS_TRY(sodium_ready());
      DBOPS_ASSIGN(std::string_view key, raw_key(*options.key));
      cipher_.resize(4 + kMessageSize + kABytes);
      std::array<unsigned char, kMagic.size() + kHeaderBytes> head{};
      std::memcpy(head.data(), kMagic.data(), kMagic.size());
      if (crypto_secretstream_xchacha20poly1305_init_push(
              &state_, head.data() + kMagic.size(),
              reinterpret_cast<const unsigned char*>(key.data())) != 0) {
        return fail(ErrorCode::kInternal, "libsodium: secretstream init failed");
      }
      DBOPS_TRY(
          emit_stored(std::string_view(reinterpret_cast<const char*>(head.data()), head.size())));
    }
    return ok();
  }

  Status write(std::string_view plain) override {
    DBOPS_TRY(usable());
    plain_.push(plain);
    plain_bytes_ += plain.size();
    ZSTD_inBuffer in{plain.data(), plain.size(), 0};
    while (in.pos < in.size) {
      ZSTD_outBuffer out{zbuf_.data(), zbuf_.size(), zfill_};
      std::size_t rc = ZSTD_compressStream2(cctx_, &out, &in, ZSTD_e_continue);
      if (ZSTD_isError(rc)) {
        return failed_with(
            fail(ErrorCode::kInternal, "object " + name_ + ": zstd: " + zstd_error(rc)));
      }
      zfill_ = out.pos;
      if (zfill_ == zbuf_.size()) {
        if (auto flushed = flush(false); !flushed) return failed_with(flushed);
      }
    }
    if (!during_stream_reached_ && plain_bytes_ > kDuringStreamAfter) {
      during_stream_reached_ = true;
      dbops::fault::point("backup.during_stream");
    }
    return ok();
  }

  Result<ObjectEntry> finish() override {
    DBOPS_TRY(usable());
    while (true) {
      ZSTD_inBuffer in{nullptr, 0, 0};
      ZSTD_outBuffer out{zbuf_.data(), zbuf_.size(), zfill_};
      std::size_t rc = ZSTD_compressStream2(cctx_, &out, &in, ZSTD_e_end);
      if (ZSTD_isError(rc)) {
        return failed_with(
            fail(ErrorCode::kInternal, "object " + name_ + ": zstd: " + zstd_error(rc)));
      }
      zfill_ = out.pos;
      if (rc == 0) break;
      if (zfill_ == zbuf_.size()) {
        if (auto flushed = flush(false); !flushed) return failed_with(flushed);
      }
    }
    if (auto flushed = flush(true); !flushed) return failed_with(flushed);

    ObjectEntry entry;
    entry.name = name_;
    entry.plain_size = plain_bytes_;
    entry.stored_size = stored_bytes_;
    entry.chunk_size = kChunkSize;
    auto plain_hash = plain_.finish(plain_chunks_);
    auto stored_hash = stored_.finish(collect(stored_chunks_));
    if (!plain_hash || !stored_hash) {
      return failed_with(fail(ErrorCode::kInternal, "object " + name_ + ": hashing failed"));
    }
    entry.plain_list_sha256 = std::move(*plain_hash);
    entry.stored_sha256 = std::move(*stored_hash);
    entry.plain_chunks = std::move(plain_chunks_);
    entry.stored_chunks = std::move(stored_chunks_);
    entry.compression = "zstd";
    entry.compression_level = level_;
    if (encrypted_) {
      entry.encryption = std::string(kEncryptionName);
      entry.key_id = key_id_;
    }
    finished_ = true;
    if (auto committed = writer_->commit(); !committed) {
      failed_ = true;
      return std::unexpected(std::move(committed).error());
    }
    dbops::fault::point("backup.after_upload");
    return entry;
  }

  void abandon() override {
    failed_ = true;
    if (writer_) writer_->abandon();
  }

  std::uint64_t plain_bytes() const override { return plain_bytes_; }
  std::uint64_t stored_bytes() const override { return stored_bytes_; }

 private:
  Status usable() const {
    if (finished_ || failed_) {
      return fail(ErrorCode::kInternal,
                  "object " + name_ + ": the sink is finished, failed or abandoned");
    }
    return ok();
  }

  // A failed sink abandons its object at once: nothing partial stays behind.
  std::unexpected<Error> failed_with(Status status) {
    abandon();
    return std::unexpected(std::move(status).error());
  }

  // Hands the compressed bytes in zbuf_ on: as they are, or as one message.
  Status flush(bool last) {
    if (!encrypted_) {
      Status st = emit_stored(std::string_view(zbuf_.data(), zfill_));
      zfill_ = 0;
      return st;
    }
    unsigned long long clen = 0;
    auto* c = reinterpret_cast<unsigned char*>(cipher_.data());
    if (crypto_secretstream_xchacha20poly1305_push(
            &state_, c + 4, &clen, reinterpret_cast<const unsigned char*>(zbuf_.data()), zfill_,
            nullptr, 0,
            last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                 : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) != 0) {
      return fail(ErrorCode::kInternal, "object " + name_ + ": encryption failed");
    }
    zfill_ = 0;
    put_be32(c, static_cast<std::uint32_t>(clen));
    return emit_stored(std::string_view(cipher_.data(), 4 + static_cast<std::size_t>(clen)));
  }

  Status emit_stored(std::string_view data) {
    DBOPS_TRY(stored_.update(data, collect(stored_chunks_)));
    stored_bytes_ += data.size();
    return writer_->write(data);
  }

  std::unique_ptr<ObjectWriter> writer_;
  std::string name_;
  int level_;
  bool encrypted_;
  std::string key_id_;
  ZSTD_CCtx* cctx_ = nullptr;
  crypto_secretstream_xchacha20poly1305_state state_{};
  std::vector<char> zbuf_;  // compressed bytes; when encrypting, one message
  std::size_t zfill_ = 0;
  std::vector<char> cipher_;  // length prefix + ciphertext of one message
  BackgroundHash plain_;
  ChunkedHash stored_;
  std::vector<std::string> plain_chunks_;
  std::vector<std::string> stored_chunks_;
  std::uint64_t plain_bytes_ = 0;
  std::uint64_t stored_bytes_ = 0;
  bool during_stream_reached_ = false;
  bool finished_ = false;
  bool failed_ = false;
};

// ---------------------------------------------------------------------------
// Reading: stored chunk check -> decrypt -> decompress -> plaintext check.

// Reads an object's stored chunks on a helper thread and checks each one
// against the manifest before handing it over: reading and hashing the stored
// bytes overlap with decrypting, decompressing and hashing the plaintext on
// the caller's thread. The first bad chunk ends the stream with its error.
class StoredChunks {
 public:
  struct Chunk {
    std::vector<char> data;
    std::size_t size = 0;  // 0: the end, every chunk checked
    std::uint64_t offset = 0;
  };

  StoredChunks(ObjectReader& reader, const ObjectEntry& entry) : reader_(reader), entry_(entry) {}
  ~StoredChunks() { stop(); }
  StoredChunks(const StoredChunks&) = delete;
  StoredChunks& operator=(const StoredChunks&) = delete;

  Status start() {
    if (!whole_.valid() || !chunk_hash_.valid()) {
      return fail(ErrorCode::kInternal, "OpenSSL: SHA-256 is not available");
    }
    for (int i = 0; i < kBuffers; ++i) {
      free_.emplace_back(static_cast<std::size_t>(entry_.chunk_size));
    }
    thread_ = std::thread([this] { produce(); });
    return ok();
  }

  Result<Chunk> next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !ready_.empty(); });
    Result<Chunk> item = std::move(ready_.front());
    ready_.pop_front();
    return item;
  }

  void recycle(Chunk chunk) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      free_.push_back(std::move(chunk.data));
    }
    cv_.notify_all();
  }

 private:
  static constexpr int kBuffers = 3;

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  std::unexpected<Error> corrupt(const std::string& what) const {
    return fail(ErrorCode::kCorrupt, "object " + entry_.name + ": " + what);
  }

  void push(Result<Chunk> item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.push_back(std::move(item));
    }
    cv_.notify_all();
  }

  void produce() {
    Status st = produce_all();
    if (!st) {
      push(std::unexpected(std::move(st).error()));
    } else {
      push(Chunk{});
    }
  }

  Status produce_all() {
    std::uint64_t offset = 0;
    std::size_t index = 0;
    while (true) {
      std::vector<char> buffer;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return cancelled_ || !free_.empty(); });
        if (cancelled_) return ok();
        buffer = std::move(free_.back());
        free_.pop_back();
      }
      std::size_t fill = 0;
      while (fill < buffer.size()) {
        DBOPS_ASSIGN(std::size_t n, reader_.read(buffer.data() + fill, buffer.size() - fill));
        if (n == 0) break;
        fill += n;
      }
      if (fill == 0) break;
      if (index >= entry_.stored_chunks.size()) {
        return corrupt("stored object is longer than the " + std::to_string(entry_.stored_size) +
                       " bytes the manifest records");
      }
      whole_.update(buffer.data(), fill);
      chunk_hash_.reset();
      chunk_hash_.update(buffer.data(), fill);
      if (chunk_hash_.hex_final() != entry_.stored_chunks[index]) {
        return corrupt("stored chunk " + std::to_string(index) + " " +
                       range(offset, offset + fill) + " does not match its checksum");
      }
      bool last = fill < buffer.size();
      push(Chunk{std::move(buffer), fill, offset});
      offset += fill;
      ++index;
      if (last) break;
    }
    if (offset != entry_.stored_size || index != entry_.stored_chunks.size()) {
      return corrupt("stored object is truncated: read " + std::to_string(offset) +
                     " bytes, the manifest records " + std::to_string(entry_.stored_size));
    }
    if (whole_.hex_final() != entry_.stored_sha256) {
      return corrupt("stored object does not match its checksum");
    }
    return ok();
  }

  ObjectReader& reader_;
  const ObjectEntry& entry_;
  Sha256 whole_;
  Sha256 chunk_hash_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result<Chunk>> ready_;
  std::vector<std::vector<char>> free_;
  bool cancelled_ = false;
  std::thread thread_;
};

class ReadPipeline {
 public:
  ReadPipeline(const ObjectEntry& entry,
               const std::function<Status(std::string_view plain)>& consume)
      : entry_(entry), consume_(consume), plain_(entry.chunk_size, /*list_mode=*/true) {}

  ReadPipeline(const ReadPipeline&) = delete;
  ReadPipeline& operator=(const ReadPipeline&) = delete;

 private:
  std::unexpected<Error> corrupt(const std::string& what) const {
    return fail(ErrorCode::kCorrupt, "object " + entry_.name + ": " + what);
  }

  auto check_plain() {
    return [this](std::size_t index, std::uint64_t begin, std::uint64_t end,
                  std::string hex) -> Status {
      if (index >= entry_.plain_chunks.size() || hex != entry_.plain_chunks[index]) {
        return corrupt("plaintext chunk " + std::to_string(index) + " " + range(begin, end) +
                       " does not match its checksum");
      }
      return ok();
    };
  }

 public:
  ~ReadPipeline() {
    if (dctx_ != nullptr) ZSTD_freeDCtx(dctx_);
    sodium_memzero(&state_, sizeof state_);
  }

  Status run(ObjectReader& reader, const std::optional<std::string_view>& key) {
    key_ = key;
    if (!plain_.valid()) return fail(ErrorCode::kInternal, "OpenSSL: SHA-256 is not available");
    if (entry_.compression == "zstd") {
      dctx_ = ZSTD_createDCtx();
      if (dctx_ == nullptr) return fail(ErrorCode::kInternal, "zstd: out of memory");
      zout_.resize(std::max(ZSTD_DStreamOutSize(), kIoBuffer));
    }
    if (key_) {
      header_.reserve(kMagic.size() + kHeaderBytes);
      message_.reserve(kMessageSize + kABytes);
      decrypted_.resize(kMessageSize);
    }

    if (reader.size() < entry_.stored_size) {
      return corrupt("stored object is truncated: it has " + std::to_string(reader.size()) +
                     " bytes, the manifest records " + std::to_string(entry_.stored_size));
    }
    if (reader.size() > entry_.stored_size) {
      return corrupt("stored object has " + std::to_string(reader.size()) +
                     " bytes, more than the " + std::to_string(entry_.stored_size) +
                     " the manifest records");
    }

    // One stored chunk at a time, checked before any of it goes further.
    StoredChunks chunks(reader, entry_);
    DBOPS_TRY(chunks.start());
    while (true) {
      DBOPS_ASSIGN(StoredChunks::Chunk chunk, chunks.next());
      if (chunk.size == 0) break;
      Status st = stored(std::string_view(chunk.data.data(), chunk.size), chunk.offset);
      chunks.recycle(std::move(chunk));
      DBOPS_TRY(st);
    }
    return finish();
  }

 private:
  // Verified stored bytes, starting at stored offset `offset`.
  Status stored(std::string_view data, std::uint64_t offset) {
    if (!key_) return compressed(data, offset);
    while (!data.empty()) {
      if (final_seen_) {
        return corrupt("data after the final encrypted message at stored byte " +
                       std::to_string(offset));
      }
      std::size_t head = kMagic.size() + kHeaderBytes;
      if (header_.size() < head) {
        std::size_t take = std::min(head - header_.size(), data.size());
        header_.append(data.substr(0, take));
        data.remove_prefix(take);
        offset += take;
        if (header_.size() == head) DBOPS_TRY(start_decryption());
        continue;
      }
      if (length_fill_ < 4) {
        std::size_t take = std::min<std::size_t>(4 - length_fill_, data.size());
        std::memcpy(length_ + length_fill_, data.data(), take);
        length_fill_ += take;
        data.remove_prefix(take);
        offset += take;
        if (length_fill_ == 4) {
          message_length_ = get_be32(length_);
          message_offset_ = offset - 4;
          if (message_length_ < kABytes || message_length_ > kMaxMessage + kABytes) {
            return corrupt("encrypted message " + std::to_string(messages_) + " at stored byte " +
                           std::to_string(message_offset_) + " has an impossible length " +
                           std::to_string(message_length_));
          }
        }
        continue;
      }
      std::size_t need = message_length_ - message_.size();
      if (message_.empty() && data.size() >= need) {
        // The whole message is in this chunk: decrypt it in place.
        DBOPS_TRY(decrypt(data.substr(0, need)));
      } else {
        std::size_t take = std::min(need, data.size());
        message_.append(data.substr(0, take));
        if (message_.size() == message_length_) {
          DBOPS_TRY(decrypt(message_));
          message_.clear();
        }
        need = take;
      }
      data.remove_prefix(need);
      offset += need;
    }
    return ok();
  }

  Status start_decryption() {
    if (std::string_view(header_).substr(0, kMagic.size()) != kMagic) {
      return corrupt("not an encrypted dbops object (its first bytes are not \"DBOPSENC1\")");
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(
            &state_, reinterpret_cast<const unsigned char*>(header_.data()) + kMagic.size(),
            reinterpret_cast<const unsigned char*>(key_->data())) != 0) {
      return corrupt("invalid encryption header");
    }
    return ok();
  }

  Status decrypt(std::string_view cipher) {
    if (decrypted_.size() < cipher.size()) decrypted_.resize(cipher.size());
    unsigned long long mlen = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(
            &state_, reinterpret_cast<unsigned char*>(decrypted_.data()), &mlen, &tag,
            reinterpret_cast<const unsigned char*>(cipher.data()), cipher.size(), nullptr,
            0) != 0) {
      return corrupt("decryption failed for encrypted message " + std::to_string(messages_) +
                     " at stored byte " + std::to_string(message_offset_) +
                     ": the data was altered");
    }
    ++messages_;
    length_fill_ = 0;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) final_seen_ = true;
    return compressed(std::string_view(decrypted_.data(), static_cast<std::size_t>(mlen)),
                      message_offset_);
  }

  // Compressed bytes; `offset` is where they come from in the stored object.
  Status compressed(std::string_view data, std::uint64_t offset) {
    if (dctx_ == nullptr) return plain(data);
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    bool output_full = false;
    while (in.pos < in.size || output_full) {
      ZSTD_outBuffer out{zout_.data(), zout_.size(), 0};
      std::size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
      if (ZSTD_isError(rc)) {
        return corrupt("zstd: " + zstd_error(rc) + " (near stored byte " + std::to_string(offset) +
                       ")");
      }
      zstd_pending_ = rc;
      // A full output buffer may hide more output, unless the frame just
      // ended (rc 0): calling again would start waiting for a next frame.
      output_full = out.pos == out.size && rc != 0;
      if (out.pos > 0) DBOPS_TRY(plain(std::string_view(zout_.data(), out.pos)));
    }
    return ok();
  }

  Status plain(std::string_view data) {
    if (plain_.total() + data.size() > entry_.plain_size) {
      return corrupt("the plaintext is longer than the " + std::to_string(entry_.plain_size) +
                     " bytes the manifest records");
    }
    DBOPS_TRY(plain_.update(data, check_plain()));
    if (consume_) return consume_(data);
    return ok();
  }

  Status finish() {
    if (key_) {
      if (header_.size() < kMagic.size() + kHeaderBytes || !final_seen_) {
        return corrupt("the encrypted stream ends without its final message (truncated)");
      }
    }
    if (dctx_ != nullptr && zstd_pending_ != 0) {
      return corrupt("the zstd frame is incomplete (truncated)");
    }
    DBOPS_ASSIGN(std::string whole, plain_.finish(check_plain()));
    if (plain_.total() != entry_.plain_size) {
      return corrupt("the plaintext has " + std::to_string(plain_.total()) +
                     " bytes, the manifest records " + std::to_string(entry_.plain_size));
    }
    if (plain_.chunks() != entry_.plain_chunks.size()) {
      return corrupt("the plaintext has " + std::to_string(plain_.chunks()) +
                     " chunks, the manifest records " + std::to_string(entry_.plain_chunks.size()));
    }
    if (whole != entry_.plain_list_sha256)
      return corrupt("the plaintext does not match its checksum");
    return ok();
  }

  const ObjectEntry& entry_;
  const std::function<Status(std::string_view plain)>& consume_;
  std::optional<std::string_view> key_;
  ZSTD_DCtx* dctx_ = nullptr;
  std::vector<char> zout_;
  std::size_t zstd_pending_ = 1;  // ZSTD_decompressStream's last hint; 0 at a frame's end
  ChunkedHash plain_;
  // Decryption state.
  crypto_secretstream_xchacha20poly1305_state state_{};
  std::string header_;
  unsigned char length_[4] = {};
  std::size_t length_fill_ = 0;
  std::size_t message_length_ = 0;
  std::uint64_t message_offset_ = 0;
  std::string message_;
  std::vector<char> decrypted_;
  std::size_t messages_ = 0;
  bool final_seen_ = false;
};

}  // namespace

Result<Secret> parse_encryption_key(const Secret& text) {
  DBOPS_TRY(sodium_ready());
  std::string_view value = text.reveal();
  auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!value.empty() && space(value.front())) value.remove_prefix(1);
  while (!value.empty() && space(value.back())) value.remove_suffix(1);
  if (value.empty()) return fail(ErrorCode::kConfig, "the encryption key is empty");

  std::array<unsigned char, 64> bin{};
  std::size_t bin_len = 0;
  const char* end = nullptr;
  Result<Secret> result = fail(
      ErrorCode::kConfig,
      "the encryption key is neither 64 hex digits nor the base64 encoding of 32 bytes (it has " +
          std::to_string(value.size()) + " characters)",
      "Generate one with `head -c 32 /dev/urandom | base64`.");
  bool hex = value.size() == 64 && std::all_of(value.begin(), value.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
             });
  if (hex) {
    if (sodium_hex2bin(bin.data(), bin.size(), value.data(), value.size(), nullptr, &bin_len,
                       &end) == 0 &&
        bin_len == kKeyBytes && end == value.data() + value.size()) {
      result = Secret(std::string(reinterpret_cast<const char*>(bin.data()), bin_len));
    }
  } else if (sodium_base642bin(bin.data(), bin.size(), value.data(), value.size(), nullptr,
                               &bin_len, &end, sodium_base64_VARIANT_ORIGINAL) == 0 &&
             end == value.data() + value.size()) {
    if (bin_len == kKeyBytes) {
      result = Secret(std::string(reinterpret_cast<const char*>(bin.data()), bin_len));
    } else {
      result = fail(ErrorCode::kConfig,
                    "the encryption key decodes from base64 to " + std::to_string(bin_len) +
                        " bytes; it must be 32",
                    "Generate one with `head -c 32 /dev/urandom | base64`.");
    }
  }
  sodium_memzero(bin.data(), bin.size());
  return result;
}

std::string key_id(const Secret& key) {
  if (!sodium_ready()) return "";
  static constexpr unsigned char kPersonal[crypto_generichash_blake2b_PERSONALBYTES] = {
      'd', 'b', 'o', 'p', 's', '-', 'k', 'e', 'y', '-', 'i', 'd', '-', 'v', '1', 0};
  static constexpr unsigned char kSalt[crypto_generichash_blake2b_SALTBYTES] = {};
  static constexpr std::string_view kContext = "dbops repository encryption key id";
  std::array<unsigned char, 16> out{};
  const auto* k = reinterpret_cast<const unsigned char*>(key.reveal().data());
  std::size_t klen = key.reveal().size();
  if (klen >= crypto_generichash_blake2b_KEYBYTES_MIN &&
      klen <= crypto_generichash_blake2b_KEYBYTES_MAX) {
    crypto_generichash_blake2b_salt_personal(
        out.data(), out.size(), reinterpret_cast<const unsigned char*>(kContext.data()),
        kContext.size(), k, klen, kSalt, kPersonal);
  } else {
    // Not a valid key length; still give it a stable id.
    crypto_generichash_blake2b_salt_personal(out.data(), out.size(), k, klen, nullptr, 0, kSalt,
                                             kPersonal);
  }
  return internal::to_hex(out.data(), 8);
}

Result<std::unique_ptr<ObjectSink>> ObjectSink::open(Storage& storage, std::string key,
                                                     std::string name,
                                                     const PipelineOptions& options) {
  if (options.key) DBOPS_TRY(raw_key(*options.key));
  DBOPS_ASSIGN(auto writer, storage.put(key));
  auto sink = std::make_unique<Sink>(std::move(writer), std::move(name), options);
  DBOPS_TRY(sink->start(options));
  return std::unique_ptr<ObjectSink>(std::move(sink));
}

Status read_object(Storage& storage, std::string_view key, const ObjectEntry& entry,
                   const std::optional<Secret>& encryption_key,
                   const std::function<Status(std::string_view plain)>& consume) {
  std::optional<std::string_view> raw;
  if (entry.encryption == kEncryptionName) {
    if (!encryption_key) {
      return fail(ErrorCode::kConfig,
                  "object " + entry.name + " is encrypted (key id " + entry.key_id +
                      ") but no encryption key is configured",
                  "Configure the repository's encryption key that the backup was written with.");
    }
    DBOPS_TRY(sodium_ready());
    std::string configured = key_id(*encryption_key);
    if (configured != entry.key_id) {
      return fail(ErrorCode::kConfig,
                  "wrong encryption key: backup was written with key id " + entry.key_id +
                      ", the configured key has id " + configured,
                  "Configure the key the backup was written with.");
    }
    DBOPS_ASSIGN(raw, raw_key(*encryption_key));
  } else if (entry.encryption != "none") {
    return fail(ErrorCode::kUnsupported, "object " + entry.name + ": encryption \"" +
                                             entry.encryption +
                                             "\" is not supported by this dbops");
  }
  if (entry.compression != "zstd" && entry.compression != "none") {
    return fail(ErrorCode::kUnsupported, "object " + entry.name + ": compression \"" +
                                             entry.compression +
                                             "\" is not supported by this dbops");
  }
  if (entry.chunk_size == 0 || entry.chunk_size > kMaxChunkSize) {
    return fail(ErrorCode::kCorrupt, "object " + entry.name + ": chunk size " +
                                         std::to_string(entry.chunk_size) +
                                         " in the manifest is not sane");
  }
  DBOPS_ASSIGN(auto reader, storage.get(key));
  ReadPipeline pipeline(entry, consume);
  return pipeline.run(*reader, raw);
}

}  // namespace dbops::repo
