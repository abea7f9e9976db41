#include "engine/pool.hpp"

namespace dbops::engine {

ConnectionPool::ConnectionPool(const Registry& engines, PoolOptions options, Clock& clock)
    : engines_(engines), options_(std::move(options)), clock_(clock) {}

ConnectionPool::~ConnectionPool() = default;

ConnectionPool::Lease::Lease(ConnectionPool* pool, std::string key,
                             std::unique_ptr<Session> session, bool reused,
                             std::chrono::nanoseconds connect_time)
    : pool_(pool),
      key_(std::move(key)),
      session_(std::move(session)),
      reused_(reused),
      connect_time_(connect_time) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_),
      key_(std::move(other.key_)),
      session_(std::move(other.session_)),
      reused_(other.reused_),
      connect_time_(other.connect_time_),
      discard_(other.discard_) {
  other.pool_ = nullptr;
}

ConnectionPool::Lease::~Lease() {
  if (!pool_ || !session_) return;
  if (discard_ || !session_->is_open()) return;  // closed with the unique_ptr
  pool_->give_back(key_, std::move(session_));
}

CircuitBreaker& ConnectionPool::breaker(const std::string& target) {
  auto& b = breakers_[target];
  if (!b) b = std::make_unique<CircuitBreaker>(options_.breaker, clock_);
  return *b;
}

bool ConnectionPool::allow(const std::string& target) {
  std::lock_guard lock(mu_);
  return breaker(target).allow();
}
void ConnectionPool::record_success(const std::string& target) {
  std::lock_guard lock(mu_);
  breaker(target).record_success();
}
void ConnectionPool::record_failure(const std::string& target) {
  std::lock_guard lock(mu_);
  breaker(target).record_failure();
}
CircuitBreaker::State ConnectionPool::breaker_state(const std::string& target) {
  std::lock_guard lock(mu_);
  return breaker(target).state();
}

Result<ConnectionPool::Lease> ConnectionPool::acquire(const config::Target& target) {
  {
    std::lock_guard lock(mu_);
    auto& idle = idle_[target.name];
    while (!idle.empty()) {
      std::unique_ptr<Session> s = std::move(idle.back());
      idle.pop_back();
      if (s->is_open()) return Lease(this, target.name, std::move(s), true, {});
    }
  }
  const Engine* engine = engines_.find(target.engine);
  if (!engine) {
    return fail(ErrorCode::kUnsupported, "engine " + target.engine + " is not in this build");
  }
  const auto started = clock_.steady_now();
  DBOPS_ASSIGN(auto session, engine->connect(target, options_.connect));
  return Lease(this, target.name, std::move(session), false, clock_.steady_now() - started);
}

void ConnectionPool::give_back(const std::string& key, std::unique_ptr<Session> session) {
  std::lock_guard lock(mu_);
  auto& idle = idle_[key];
  if (idle.size() < options_.max_idle_per_target) idle.push_back(std::move(session));
}

void ConnectionPool::forget(const std::string& target) {
  std::vector<std::unique_ptr<Session>> closing;
  std::lock_guard lock(mu_);
  if (auto it = idle_.find(target); it != idle_.end()) {
    closing = std::move(it->second);
    idle_.erase(it);
  }
}

std::size_t ConnectionPool::idle_count() const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [k, v] : idle_) n += v.size();
  return n;
}

}  // namespace dbops::engine
