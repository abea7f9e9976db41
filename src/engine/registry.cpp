#include <netdb.h>
#include <sys/socket.h>

#include <filesystem>

#include "engine/engine.hpp"

namespace dbops::engine {

const Registry& Registry::global() {
  static const Registry registry = [] {
    Registry r;
    register_builtin_engines(r);
    return r;
  }();
  return registry;
}

void Registry::add(std::unique_ptr<Engine> engine) {
  engines_.push_back(std::move(engine));
}

const Engine* Registry::find(std::string_view name) const {
  for (const auto& e : engines_) {
    if (e->name() == name) return e.get();
    for (const auto& alias : e->aliases()) {
      if (alias == name) return e.get();
    }
  }
  return nullptr;
}

std::vector<const Engine*> Registry::all() const {
  std::vector<const Engine*> out;
  for (const auto& e : engines_) out.push_back(e.get());
  return out;
}

std::vector<config::EngineShape> Registry::shapes() const {
  std::vector<config::EngineShape> out;
  for (const auto& e : engines_) {
    out.push_back(config::EngineShape{.name = std::string(e->name()),
                                      .aliases = e->aliases(),
                                      .file_based = e->file_based(),
                                      .dsn_schemes = e->dsn_schemes(),
                                      .accepts_key_value_dsn = e->accepts_key_value_dsn()});
  }
  return out;
}

namespace detail {

Status check_host_resolves(std::string_view host) {
  if (host.empty()) return ok();
  if (host.front() == '/') {
    std::error_code ec;
    if (!std::filesystem::is_directory(host, ec)) {
      return fail(ErrorCode::kUnavailable,
                  "socket directory " + std::string(host) + " does not exist");
    }
    return ok();
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* result = nullptr;
  const std::string h(host);
  const int rc = getaddrinfo(h.c_str(), nullptr, &hints, &result);
  if (result) freeaddrinfo(result);
  if (rc != 0) {
    return fail(ErrorCode::kUnavailable, "host " + h + " does not resolve: " + gai_strerror(rc));
  }
  return ok();
}

Environment base_environment(const config::Target& target, std::string_view host, int port,
                             std::string_view user, std::string_view database) {
  Environment env{{"DBOPS_TARGET", target.name}, {"DBOPS_TARGET_ENGINE", target.engine}};
  if (!host.empty()) env.emplace_back("DBOPS_TARGET_HOST", std::string(host));
  if (port) env.emplace_back("DBOPS_TARGET_PORT", std::to_string(port));
  if (!user.empty()) env.emplace_back("DBOPS_TARGET_USER", std::string(user));
  if (!database.empty()) env.emplace_back("DBOPS_TARGET_DATABASE", std::string(database));
  if (!target.path.empty()) env.emplace_back("DBOPS_TARGET_PATH", target.path);
  return env;
}

}  // namespace detail
}  // namespace dbops::engine
