// Redis.
#include "core/uri.hpp"
#include "engine/engine.hpp"

namespace dbops::engine::redis {
namespace {

class RedisEngine final : public Engine {
 public:
  std::string_view name() const override { return "redis"; }
  std::string_view description() const override { return "Redis"; }
  int default_port() const override { return 6379; }
  std::vector<std::string> dsn_schemes() const override { return {"redis", "rediss"}; }

  Result<Environment> client_environment(const config::Target& t) const override {
    std::string host = t.host, user = t.user, password = t.password.reveal(), database = t.database;
    int port = t.port;
    if (!t.dsn.empty()) {
      auto uri = parse_uri(t.dsn.reveal());
      if (!uri) return fail(ErrorCode::kConfig, uri.error().message);
      if (uri->scheme == "rediss") {
        return fail(ErrorCode::kUnsupported,
                    "rediss:// (TLS) is not supported in this build: Debian's hiredis 0.14 has "
                    "no TLS");
      }
      host = uri->host;
      port = uri->port;
      user = uri->user;
      password = uri->password;
      database = uri->path;
    }
    if (!port) port = default_port();
    auto env = detail::base_environment(t, host, port, user, database);
    // redis-cli reads the password from here instead of -a.
    if (!password.empty()) env.emplace_back("REDISCLI_AUTH", password);
    return env;
  }

  Status preflight(const config::Target& t) const override {
    DBOPS_ASSIGN(auto env, client_environment(t));
    for (const auto& [k, v] : env) {
      if (k == "DBOPS_TARGET_HOST") DBOPS_TRY(detail::check_host_resolves(v));
    }
    return ok();
  }
};

}  // namespace

void register_engine(Registry& registry) {
  registry.add(std::make_unique<RedisEngine>());
}

}  // namespace dbops::engine::redis
