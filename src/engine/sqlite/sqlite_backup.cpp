#include "engine/sqlite/sqlite_backup.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/atomic_file.hpp"
#include "core/clock.hpp"
#include "core/fault.hpp"
#include "core/strings.hpp"
#include "engine/sqlite/sqlite_session.hpp"

namespace dbops::engine::sqlite {
namespace {

namespace fs = std::filesystem;

constexpr std::int64_t kSampleRows = 10'000;
constexpr std::size_t kCopyBuffer = std::size_t{1} << 20;

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
struct StmtCloser {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtCloser>;

Error sqlite_error(sqlite3* db, std::string_view what) {
  return make_error(ErrorCode::kIo,
                    std::string(what) + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

Result<DbPtr> open_db(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return std::unexpected(sqlite_error(raw, "open " + path));
  sqlite3_busy_timeout(raw, 10'000);
  return db;
}

Result<StmtPtr> prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr) !=
      SQLITE_OK) {
    return std::unexpected(sqlite_error(db, "prepare"));
  }
  return StmtPtr(raw);
}

// 64-bit FNV-1a over the value's type and bytes, then a finaliser so that
// sums of row hashes spread over all 64 bits.
struct RowHasher {
  std::uint64_t h = 1469598103934665603ULL;
  void bytes(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 1099511628211ULL;
    }
  }
  void value(sqlite3_stmt* stmt, int col) {
    const int type = sqlite3_column_type(stmt, col);
    const unsigned char tag = static_cast<unsigned char>(type);
    bytes(&tag, 1);
    switch (type) {
      case SQLITE_INTEGER: {
        const std::uint64_t v = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, col));
        bytes(&v, sizeof v);
        break;
      }
      case SQLITE_FLOAT: {
        const std::uint64_t v = std::bit_cast<std::uint64_t>(sqlite3_column_double(stmt, col));
        bytes(&v, sizeof v);
        break;
      }
      case SQLITE_TEXT:
      case SQLITE_BLOB: {
        const void* p = type == SQLITE_TEXT
                            ? static_cast<const void*>(sqlite3_column_text(stmt, col))
                            : sqlite3_column_blob(stmt, col);
        const auto n = static_cast<std::size_t>(sqlite3_column_bytes(stmt, col));
        const std::uint64_t len = n;
        bytes(&len, sizeof len);
        if (n) bytes(p, n);
        break;
      }
      default:
        break;
    }
  }
  std::uint64_t finish() const {
    std::uint64_t z = h;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};

Result<DatabaseFingerprint> fingerprint_db(sqlite3* db, FingerprintMode mode) {
  DatabaseFingerprint fp;
  fp.database = "main";
  fp.mode = mode;
  // One read transaction: every table from the same state.
  if (sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return std::unexpected(sqlite_error(db, "begin"));
  }
  struct End {
    sqlite3* db;
    ~End() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end{db};
  DBOPS_ASSIGN(auto tables, prepare(db,
                                    "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM sqlite_schema "
                                    "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE "
                                    "'\\' ORDER BY name"));
  std::vector<std::pair<std::string, bool>> names;
  while (sqlite3_step(tables.get()) == SQLITE_ROW) {
    names.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(tables.get(), 0)),
                       sqlite3_column_int(tables.get(), 1) != 0);
  }
  for (const auto& [name, without_rowid] : names) {
    TableFingerprint t;
    t.table = name;
    DBOPS_ASSIGN(auto count, prepare(db, "SELECT count(*) FROM " + quote_identifier(name)));
    if (sqlite3_step(count.get()) != SQLITE_ROW) {
      return std::unexpected(sqlite_error(db, "count rows of " + name));
    }
    t.rows = sqlite3_column_int64(count.get(), 0);
    std::string sql = "SELECT * FROM " + quote_identifier(name);
    if (mode == FingerprintMode::kSampled && t.rows > kSampleRows) {
      // A sample chosen by content order, the same in any copy of the file.
      sql += without_rowid ? " ORDER BY 1" : " ORDER BY rowid";
      sql += " LIMIT " + std::to_string(kSampleRows);
      t.sampled = true;
    }
    DBOPS_ASSIGN(auto rows, prepare(db, sql));
    const int cols = sqlite3_column_count(rows.get());
    std::uint64_t sum = 0;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(rows.get())) == SQLITE_ROW) {
      RowHasher h;
      for (int c = 0; c < cols; ++c) h.value(rows.get(), c);
      sum += h.finish();
    }
    if (rc != SQLITE_DONE) return std::unexpected(sqlite_error(db, "read rows of " + name));
    t.hash = sum;
    fp.tables.push_back(std::move(t));
  }
  return fp;
}

// Streams a file to `write` in large pieces.
Status stream_file(const fs::path& path, const BackupOutput::Write& write) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(ErrorCode::kIo, "cannot read " + path.string());
  std::string buf(kCopyBuffer, '\0');
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = static_cast<std::size_t>(in.gcount());
    if (n) DBOPS_TRY(write(std::string_view(buf.data(), n)));
  }
  if (in.bad()) return fail(ErrorCode::kIo, "read error on " + path.string());
  return ok();
}

// Copies the one object of a SQLite backup into `path` atomically and
// durably.
Status restore_file(BackupInput& input, const fs::path& path) {
  const auto objects = input.objects();
  if (objects.size() != 1) {
    return fail(ErrorCode::kCorrupt, "a SQLite backup holds exactly one object, this one has " +
                                         std::to_string(objects.size()));
  }
  DBOPS_ASSIGN(AtomicFile file, AtomicFile::open(path, 0600));
  DBOPS_TRY(
      input.read(objects.front().first, [&](std::string_view bytes) { return file.write(bytes); }));
  fault::point("restore.before_swap");
  // A stale journal or WAL of the old file must not be applied to the new one.
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    std::error_code ec;
    fs::remove(path.string() + suffix, ec);
  }
  return file.commit();
}

class SqliteBackupDriver final : public BackupDriver {
 public:
  std::vector<std::string> methods() const override { return {"file"}; }

  Result<BackupResult> backup(const config::Target& target, const BackupRequest& request,
                              BackupOutput& output) const override {
    if (!request.method.empty() && request.method != "file") {
      return fail(ErrorCode::kUnsupported,
                  "sqlite has no backup method \"" + request.method + "\"; it has: file");
    }
    DBOPS_ASSIGN(DbPtr source, open_db(target.path, SQLITE_OPEN_READONLY));
    const fs::path copy = output.spool_dir() / "backup.sqlite";
    DBOPS_ASSIGN(DbPtr dest, open_db(copy.string(), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    // The online backup API, in one step: a consistent copy of one moment,
    // while other connections go on writing (in WAL mode; in rollback mode
    // they wait for the copy).
    sqlite3_backup* b = sqlite3_backup_init(dest.get(), "main", source.get(), "main");
    if (!b) return std::unexpected(sqlite_error(dest.get(), "start backup of " + target.path));
    int rc = SQLITE_OK;
    do {
      rc = sqlite3_backup_step(b, -1);
      if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(50);
      if (output.cancel() && output.cancel()->load()) break;
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    const int pages = sqlite3_backup_pagecount(b);
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
      if (output.cancel() && output.cancel()->load()) {
        return fail(ErrorCode::kCancelled, "backup cancelled");
      }
      return std::unexpected(sqlite_error(dest.get(), "backup of " + target.path));
    }
    BackupResult result;
    result.server_version = sqlite3_libversion();
    result.tool = std::string("sqlite3 online backup API ") + sqlite3_libversion();
    result.details["pages"] = std::to_string(pages);
    {
      DBOPS_ASSIGN(auto st, prepare(source.get(), "PRAGMA journal_mode"));
      if (sqlite3_step(st.get()) == SQLITE_ROW) {
        result.details["journal_mode"] =
            reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
      }
    }
    source.reset();
    // The fingerprint of exactly what was copied.
    if (request.fingerprint != FingerprintMode::kOff) {
      DBOPS_ASSIGN(auto fp, fingerprint_db(dest.get(), request.fingerprint));
      fp.database = "main";
      result.fingerprints.push_back(std::move(fp));
    }
    dest.reset();
    DBOPS_TRY(output.object("db.sqlite", "sqlite database", [&](const BackupOutput::Write& write) {
      return stream_file(copy, write);
    }));
    std::error_code ec;
    fs::remove(copy, ec);
    return result;
  }
};

class SqliteDrill final : public DrillInstance {
 public:
  explicit SqliteDrill(fs::path path) : path_(std::move(path)) {}

  config::Target target(std::string_view) const override {
    config::Target t;
    t.name = "drill";
    t.engine = "sqlite";
    t.path = path_.string();
    return t;
  }
  std::vector<std::string> databases() const override { return {"main"}; }

  std::vector<DrillCheck> verify() override {
    DrillCheck check{.name = "integrity_check"};
    const auto start = std::chrono::steady_clock::now();
    auto db = open_db(path_.string(), SQLITE_OPEN_READONLY);
    if (!db) {
      check.detail = db.error().message;
    } else {
      auto st = prepare(db->get(), "PRAGMA integrity_check");
      if (!st) {
        check.detail = st.error().message;
      } else {
        std::string verdict;
        while (sqlite3_step(st->get()) == SQLITE_ROW) {
          if (!verdict.empty()) verdict += "; ";
          verdict += reinterpret_cast<const char*>(sqlite3_column_text(st->get(), 0));
        }
        check.passed = verdict == "ok";
        check.detail = "PRAGMA integrity_check: " + verdict;
      }
    }
    check.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return {check};
  }

  Result<DatabaseFingerprint> fingerprint(std::string_view, FingerprintMode mode) override {
    return fingerprint_file(path_.string(), mode);
  }

  Result<std::string> query(std::string_view, std::string_view sql) override {
    DBOPS_ASSIGN(auto session, open(path_.string(), OpenOptions{.read_only = true}));
    DBOPS_ASSIGN(auto result, session->query(sql));
    return result.to_text();
  }

 private:
  fs::path path_;
};

class SqliteRestoreTarget final : public RestoreTarget {
 public:
  Status restore_into(const config::Target& destination, BackupInput& input,
                      const RestoreOptions& options) const override {
    const fs::path path = destination.path;
    std::error_code ec;
    if (fs::exists(path, ec) && !options.allow_nonempty) {
      // An existing database with tables is data to protect.
      DBOPS_ASSIGN(DbPtr db, open_db(path.string(), SQLITE_OPEN_READONLY));
      DBOPS_ASSIGN(auto st, prepare(db.get(), "SELECT count(*) FROM sqlite_schema"));
      if (sqlite3_step(st.get()) == SQLITE_ROW && sqlite3_column_int64(st.get(), 0) > 0) {
        return fail(ErrorCode::kConflict,
                    "target " + destination.name + " (" + path.string() + ") already holds data",
                    "pass --yes to replace it; stop the programs writing to it first");
      }
    }
    return restore_file(input, path);
  }

  Status restore_to_path(const fs::path& path, BackupInput& input,
                         const RestoreOptions&) const override {
    std::error_code ec;
    if (fs::exists(path, ec)) {
      return fail(ErrorCode::kConflict, path.string() + " already exists",
                  "restore to a new path, or to the target with --to TARGET --yes");
    }
    return restore_file(input, path);
  }

  Result<std::unique_ptr<DrillInstance>> start_drill(BackupInput& input,
                                                     const DrillOptions&) const override {
    const fs::path path = input.spool_dir() / "restored.sqlite";
    DBOPS_TRY(restore_file(input, path));
    return std::unique_ptr<DrillInstance>(std::make_unique<SqliteDrill>(path));
  }
};

}  // namespace

Result<DatabaseFingerprint> fingerprint_file(const std::string& path, FingerprintMode mode) {
  DBOPS_ASSIGN(DbPtr db, open_db(path, SQLITE_OPEN_READONLY));
  return fingerprint_db(db.get(), mode);
}

const BackupDriver& backup_driver() {
  static const SqliteBackupDriver driver;
  return driver;
}

const RestoreTarget& restore_target() {
  static const SqliteRestoreTarget target;
  return target;
}

}  // namespace dbops::engine::sqlite
