// Connections reused per target, and a circuit breaker per target.
//
// acquire() hands out an idle session of the target when one is open, or
// connects a new one. A session given back after a failed call, or one that
// reports !is_open(), is closed instead of kept. Each target has a circuit
// breaker: after `breaker.failure_threshold` consecutive failures the target
// is left alone for `breaker.open_duration`, and callers report it as "not
// probed" rather than as down. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/circuit_breaker.hpp"
#include "core/clock.hpp"
#include "engine/engine.hpp"

namespace dbops::engine {

struct PoolOptions {
  ConnectOptions connect;
  // Idle sessions kept per target.
  std::size_t max_idle_per_target = 2;
  CircuitBreakerOptions breaker{.failure_threshold = 3,
                                .open_duration = std::chrono::milliseconds{60'000}};
};

class ConnectionPool {
 public:
  ConnectionPool(const Registry& engines, PoolOptions options, Clock& clock);
  ~ConnectionPool();

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Session& session() { return *session_; }
    // Whether the session was reused rather than newly connected.
    bool reused() const { return reused_; }
    // How long connecting took (zero when reused).
    std::chrono::nanoseconds connect_time() const { return connect_time_; }
    // Closes the session instead of returning it (after a failed call).
    void discard() { discard_ = true; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::string key, std::unique_ptr<Session> session, bool reused,
          std::chrono::nanoseconds connect_time);
    ConnectionPool* pool_;
    std::string key_;
    std::unique_ptr<Session> session_;
    bool reused_;
    std::chrono::nanoseconds connect_time_;
    bool discard_ = false;
  };

  // Whether the target's breaker lets a call through now. A caller that gets
  // true must report the outcome with record_success/record_failure.
  bool allow(const std::string& target);
  void record_success(const std::string& target);
  void record_failure(const std::string& target);
  CircuitBreaker::State breaker_state(const std::string& target);

  // An open session of the target: an idle one, or a new connection.
  Result<Lease> acquire(const config::Target& target);

  // Closes every idle session of the target (its config changed, or it moved
  // to another agent).
  void forget(const std::string& target);
  std::size_t idle_count() const;

 private:
  void give_back(const std::string& key, std::unique_ptr<Session> session);
  CircuitBreaker& breaker(const std::string& target);

  const Registry& engines_;
  PoolOptions options_;
  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Session>>> idle_;
  std::map<std::string, std::unique_ptr<CircuitBreaker>> breakers_;
};

}  // namespace dbops::engine
