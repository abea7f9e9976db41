#include "engine/sqlite/sqlite_session.hpp"

#include <sqlite3.h>

#include <atomic>
#include <map>

namespace dbops::engine::sqlite {
namespace {

class SqliteSession final : public SqlSession {
 public:
  SqliteSession(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {
    version_ = sqlite3_libversion();
    // The deadline is checked every 1000 virtual machine steps.
    sqlite3_progress_handler(
        db_, 1000,
        [](void* self) -> int {
          const auto* s = static_cast<SqliteSession*>(self);
          return s->deadline_.expired() ? 1 : 0;
        },
        this);
  }
  ~SqliteSession() override {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  std::string_view engine() const override { return "sqlite"; }
  const std::string& server_version() const override { return version_; }
  bool is_open() const override { return true; }
  Status ping(Deadline deadline) override {
    DBOPS_TRY(query("SELECT 1", {}, deadline));
    return ok();
  }

  using SqlSession::exec;
  using SqlSession::query;

  Result<QueryResult> query(std::string_view sql, std::span<const Param> params,
                            Deadline deadline) override {
    deadline_ = deadline;
    // Statements are prepared once per session and reset after each use: the
    // state store runs the same few statements over and over.
    sqlite3_stmt* stmt = nullptr;
    bool cached = false;
    if (const auto it = statements_.find(sql); it != statements_.end()) {
      stmt = it->second;
      cached = true;
    } else {
      const char* tail = nullptr;
      if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                             SQLITE_PREPARE_PERSISTENT, &stmt, &tail) != SQLITE_OK) {
        return error("prepare");
      }
      if (stmt && statements_.size() < kMaxCachedStatements) {
        statements_.emplace(std::string(sql), stmt);
        cached = true;
      }
    }
    struct Release {
      sqlite3_stmt* s;
      bool cached;
      ~Release() {
        if (cached) {
          sqlite3_reset(s);
          sqlite3_clear_bindings(s);
        } else {
          sqlite3_finalize(s);
        }
      }
    } release{stmt, cached};
    if (!stmt) return QueryResult{};
    for (std::size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      int rc = SQLITE_OK;
      if (std::holds_alternative<std::nullptr_t>(params[i])) {
        rc = sqlite3_bind_null(stmt, index);
      } else if (const auto* n = std::get_if<std::int64_t>(&params[i])) {
        rc = sqlite3_bind_int64(stmt, index, *n);
      } else if (const auto* d = std::get_if<double>(&params[i])) {
        rc = sqlite3_bind_double(stmt, index, *d);
      } else {
        const auto& s = std::get<std::string>(params[i]);
        rc = sqlite3_bind_text64(stmt, index, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) return error("bind parameter " + std::to_string(index));
    }
    QueryResult result;
    const int ncols = sqlite3_column_count(stmt);
    for (int c = 0; c < ncols; ++c) result.columns.emplace_back(sqlite3_column_name(stmt, c));
    while (true) {
      const int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return error("step");
      auto& row = result.rows.emplace_back();
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (sqlite3_column_type(stmt, c) == SQLITE_NULL) {
          row.emplace_back(std::nullopt);
        } else {
          const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, c));
          row.emplace_back(std::string(data ? data : "", sqlite3_column_bytes(stmt, c)));
        }
      }
    }
    result.affected_rows = sqlite3_changes64(db_);
    return result;
  }

  Status exec(std::string_view sql, Deadline deadline) override {
    deadline_ = deadline;
    const std::string text(sql);
    char* err = nullptr;
    if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return fail(code_for(sqlite3_errcode(db_)), path_ + ": " + msg);
    }
    return ok();
  }

  void cancel() override { sqlite3_interrupt(db_); }

 private:
  static ErrorCode code_for(int rc) {
    switch (rc & 0xff) {
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return ErrorCode::kConflict;
      case SQLITE_INTERRUPT:
        return ErrorCode::kCancelled;
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB:
        return ErrorCode::kCorrupt;
      case SQLITE_FULL:
      case SQLITE_IOERR:
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
        return ErrorCode::kIo;
      default:
        return ErrorCode::kInternal;
    }
  }

  std::unexpected<Error> error(const std::string& step) const {
    if ((sqlite3_extended_errcode(db_) & 0xff) == SQLITE_INTERRUPT && deadline_.expired()) {
      return fail(ErrorCode::kTimeout, path_ + ": " + step + ": statement passed its deadline");
    }
    return fail(code_for(sqlite3_extended_errcode(db_)),
                path_ + ": " + step + ": " + sqlite3_errmsg(db_));
  }

  static constexpr std::size_t kMaxCachedStatements = 64;

  sqlite3* db_;
  std::string path_;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
  std::string version_;
  Deadline deadline_ = Deadline::never();
};

}  // namespace

Result<std::unique_ptr<SqlSession>> open(const std::string& path, const OpenOptions& options) {
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return fail(ErrorCode::kIo, "cannot open sqlite database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, static_cast<int>(options.busy_timeout.count()));
  sqlite3_extended_result_codes(db, 1);
  auto session = std::make_unique<SqliteSession>(db, path);
  // Fail early on a file that is not a database.
  DBOPS_TRY(session->query("SELECT count(*) FROM sqlite_schema", {},
                           Deadline::after(options.busy_timeout + std::chrono::seconds(5))));
  if (options.wal) {
    DBOPS_ASSIGN(auto mode, session->query("PRAGMA journal_mode=WAL"));
    if (mode.empty() || mode.text(0, 0) != "wal") {
      return fail(ErrorCode::kIo, "cannot switch " + path + " to WAL journal mode");
    }
    DBOPS_TRY(session->exec("PRAGMA synchronous=NORMAL"));
  }
  DBOPS_TRY(session->exec("PRAGMA foreign_keys=ON"));
  return std::unique_ptr<SqlSession>(std::move(session));
}

std::string library_version() {
  return sqlite3_libversion();
}

}  // namespace dbops::engine::sqlite
