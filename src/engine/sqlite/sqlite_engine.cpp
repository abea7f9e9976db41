// SQLite: a database file addressed by its path.
#include <fstream>

#include "engine/engine.hpp"
#include "engine/sqlite/sqlite_session.hpp"

namespace dbops::engine::sqlite {
namespace {

class SqliteEngine final : public Engine {
 public:
  std::string_view name() const override { return "sqlite"; }
  std::vector<std::string> aliases() const override { return {"sqlite3"}; }
  std::string_view description() const override { return "SQLite database files"; }
  int default_port() const override { return 0; }
  bool file_based() const override { return true; }
  std::vector<std::string> dsn_schemes() const override { return {}; }
  std::string client_library() const override { return "sqlite " + library_version(); }

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
