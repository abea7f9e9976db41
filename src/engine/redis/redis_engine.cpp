// Redis, through hiredis 0.14's non-blocking API (see redis_session.hpp).
#include "core/uri.hpp"
#include "engine/engine.hpp"
#include "engine/redis/redis_backup.hpp"
#include "engine/redis/redis_probe.hpp"
#include "engine/redis/redis_session.hpp"

namespace dbops::engine::redis {
namespace {

class RedisEngine final : public Engine {
 public:
  std::string_view name() const override { return "redis"; }
  std::string_view description() const override { return "Redis"; }
  int default_port() const override { return 6379; }
  std::vector<std::string> dsn_schemes() const override { return {"redis", "rediss"}; }
  std::string client_library() const override { return "hiredis " + library_version(); }

  Result<Environment> client_environment(const config::Target& t) const override {
    DBOPS_ASSIGN(auto params, resolve_params(t));
    auto env = detail::base_environment(t, params.host, params.port, params.user,
                                        params.db ? std::to_string(params.db) : "");
    // redis-cli reads the password from here instead of -a.
    if (!params.password.empty()) env.emplace_back("REDISCLI_AUTH", params.password.reveal());
    return env;
  }

  Status preflight(const config::Target& t) const override {
    DBOPS_ASSIGN(auto params, resolve_params(t));
    if (auto st = detail::check_host_resolves(params.host); !st) {
      return fail(std::move(st).error().with_context(t.name));
    }
    return ok();
  }

  Result<std::unique_ptr<Session>> connect(const config::Target& t,
                                           const ConnectOptions& options) const override {
    DBOPS_ASSIGN(auto params, resolve_params(t));
    DBOPS_ASSIGN(auto session, redis::connect(params, options));
    return std::unique_ptr<Session>(std::move(session));
  }

  const HealthProbe* health_probe() const override { return &redis::health_probe(); }
  const BackupDriver* backup_driver() const override { return &redis::backup_driver(); }
  const RestoreTarget* restore_target() const override { return &redis::restore_target(); }

  std::vector<CapabilityStatus> capabilities() const override {
    return {
        {"connect", "", true, true,
         "hiredis non-blocking API; AUTH [user] password and SELECT within the connect deadline"},
        {"connect", "ACL user (Redis 6+)", true, true, "AUTH user password"},
        {"connect", "Unix socket", true, true, "host given as a socket path"},
        {"connect", "TLS (rediss://)", false, false, std::string(kNoTlsMessage)},
        {"connect", "Redis Cluster / Sentinel", false, false,
         "MOVED/ASK redirects come back as error replies; no Sentinel discovery"},
        {"HealthProbe", "", true, true, "one INFO round trip; a monitoring user needs only +info"},
        {"HealthProbe", "Redis < 7", true, false,
         "maxclients is not in INFO; one more round trip (CONFIG GET, +config|get)"},
        {"BackupDriver", "rdb", true, true,
         "redis-cli --rdb -, end marker stripped; repl-id/offset and key counts from the RDB"},
        {"RestoreTarget", "", true, true,
         "drills load the RDB into a throwaway redis-server; restores go to a path"},
    };
  }
};

}  // namespace

void register_engine(Registry& registry) {
  registry.add(std::make_unique<RedisEngine>());
}

}  // namespace dbops::engine::redis
