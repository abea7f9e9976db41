// MariaDB and MySQL.
#include "core/uri.hpp"
#include "engine/engine.hpp"

namespace dbops::engine::mysql {
namespace {

class MysqlEngine final : public Engine {
 public:
  std::string_view name() const override { return "mysql"; }
  std::vector<std::string> aliases() const override { return {"mariadb"}; }
  std::string_view description() const override { return "MariaDB and MySQL"; }
  int default_port() const override { return 3306; }
  std::vector<std::string> dsn_schemes() const override { return {"mysql", "mariadb"}; }

  Result<Environment> client_environment(const config::Target& t) const override {
    std::string host = t.host, user = t.user, password = t.password.reveal(), database = t.database;
    int port = t.port;
    if (!t.dsn.empty()) {
      auto uri = parse_uri(t.dsn.reveal());
      if (!uri) return fail(ErrorCode::kConfig, uri.error().message);
      host = uri->host;
      port = uri->port;
      user = uri->user;
      password = uri->password;
      database = uri->path;
    }
    if (!port) port = default_port();
    auto env = detail::base_environment(t, host, port, user, database);
    // The MariaDB and MySQL clients read these.
    if (!host.empty()) env.emplace_back("MYSQL_HOST", host);
    env.emplace_back("MYSQL_TCP_PORT", std::to_string(port));
    if (!password.empty()) env.emplace_back("MYSQL_PWD", password);
    return env;
  }

  Status preflight(const config::Target& t) const override {
    DBOPS_ASSIGN(auto env, client_environment(t));
    for (const auto& [k, v] : env) {
      if (k == "MYSQL_HOST") DBOPS_TRY(detail::check_host_resolves(v));
    }
    return ok();
  }
};

}  // namespace

void register_engine(Registry& registry) {
  registry.add(std::make_unique<MysqlEngine>());
}

}  // namespace dbops::engine::mysql
