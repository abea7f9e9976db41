// SQLite: a database file addressed by its path.
#include <fstream>

#include "engine/engine.hpp"
#include "engine/sqlite/sqlite_backup.hpp"
#include "engine/sqlite/sqlite_session.hpp"

namespace dbops::engine::sqlite {
namespace {

// Reads the database file's health: size, pages, free pages, journal mode and
// a quick_check, all read-only.
class SqliteProbe final : public HealthProbe {
 public:
  Result<ProbeSample> probe(Session& session, Deadline deadline) const override {
    auto* sql = dynamic_cast<SqlSession*>(&session);
    if (!sql) return fail(ErrorCode::kInternal, "sqlite probe needs a SQL session");
    ProbeSample s;
    s.server_version = session.server_version();
    s.role = "standalone";
    DBOPS_ASSIGN(auto pages, sql->query("SELECT page_count, page_size, freelist_count, "
                                        "journal_mode FROM pragma_page_count(), "
                                        "pragma_page_size(), pragma_freelist_count(), "
                                        "pragma_journal_mode()",
                                        {}, deadline));
    const double page_count = pages.number(0, 0);
    const double page_size = pages.number(0, 1);
    s.database_size_bytes = static_cast<std::int64_t>(page_count * page_size);
    s.metrics.push_back(
        {.name = "pages", .value = page_count, .help = "Pages in the database file."});
    s.metrics.push_back({.name = "page_size_bytes", .value = page_size, .help = "Page size."});
    s.metrics.push_back({.name = "freelist_pages",
                         .value = pages.number(0, 2),
                         .help = "Unused pages (reclaimable by VACUUM)."});
    s.info["journal_mode"] = pages.text(0, 3);
    DBOPS_ASSIGN(auto check, sql->query("PRAGMA quick_check", {}, deadline));
    std::string verdict = check.empty() ? "no result" : check.text(0, 0);
    for (std::size_t i = 1; i < check.rows.size() && i < 5; ++i) verdict += "; " + check.text(i, 0);
    s.info["quick_check"] = verdict;
    s.metrics.push_back({.name = "quick_check_ok",
                         .value = verdict == "ok" ? 1.0 : 0.0,
                         .help = "1 when PRAGMA quick_check found no problem."});
    for (const char* field : {"connections", "max_connections", "uptime_seconds",
                              "replication_lag_seconds", "replication_lag_bytes"}) {
      s.unavailable[field] = "sqlite is a file, not a server";
    }
    return s;
  }
};

class SqliteEngine final : public Engine {
 public:
  std::string_view name() const override { return "sqlite"; }
  std::vector<std::string> aliases() const override { return {"sqlite3"}; }
  std::string_view description() const override { return "SQLite database files"; }
  int default_port() const override { return 0; }
  bool file_based() const override { return true; }
  std::vector<std::string> dsn_schemes() const override { return {}; }
  std::string client_library() const override { return "sqlite " + library_version(); }

  Result<std::unique_ptr<Session>> connect(const config::Target& t,
                                           const ConnectOptions& options) const override {
    // Probes and checks only read: never create or change the file.
    DBOPS_ASSIGN(auto session, open(t.path, OpenOptions{.read_only = true,
                                                        .busy_timeout = options.connect_timeout}));
    session->set_default_timeout(options.statement_timeout);
    return std::unique_ptr<Session>(std::move(session));
  }

  const HealthProbe* health_probe() const override {
    static const SqliteProbe probe;
    return &probe;
  }

  const BackupDriver* backup_driver() const override { return &sqlite::backup_driver(); }
  const RestoreTarget* restore_target() const override { return &sqlite::restore_target(); }

  std::vector<CapabilityStatus> capabilities() const override {
    return {{.capability = "connect", .implemented = true, .live_tested = true},
            {.capability = "HealthProbe", .implemented = true, .live_tested = true},
            {.capability = "BackupDriver",
             .variant = "file",
             .implemented = true,
             .live_tested = true,
             .note = "online backup API"},
            {.capability = "RestoreTarget", .implemented = true, .live_tested = true}};
  }

  Result<Environment> client_environment(const config::Target& t) const override {
    return detail::base_environment(t, "", 0, "", "");
  }

  Status preflight(const config::Target& t) const override {
    std::ifstream in(t.path, std::ios::binary);
    if (!in) {
      return fail(ErrorCode::kUnavailable, "cannot read database file " + t.path,
                  "check the target's path and that dbops may read it");
    }
    char header[16] = {};
    in.read(header, sizeof header);
    if (in.gcount() != sizeof header ||
        std::string_view(header, sizeof header) != std::string_view("SQLite format 3\0", 16)) {
      return fail(ErrorCode::kCheckFailed, t.path + " is not a SQLite 3 database");
    }
    DBOPS_TRY(open(t.path, OpenOptions{.read_only = true}));
    return ok();
  }
};

}  // namespace

void register_engine(Registry& registry) {
  registry.add(std::make_unique<SqliteEngine>());
}

}  // namespace dbops::engine::sqlite
