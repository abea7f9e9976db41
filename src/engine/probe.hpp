// HealthProbe: the capability behind `dbops probe` and the agent's metrics.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session.hpp"

namespace dbops::engine {

// An engine-specific measurement. Counters are cumulative since server start;
// the probe round derives rates from two samples.
struct ProbeMetric {
  enum class Kind { kGauge, kCounter };
  std::string name;  // snake_case with unit suffix: "wal_bytes", "oldest_xact_age_seconds"
  double value = 0;
  Kind kind = Kind::kGauge;
  std::string help;  // one line for docs and # HELP
};

struct ProbeSample {
  std::string server_version;
  std::string role;  // primary | replica | standalone
  std::optional<double> replication_lag_seconds;
  std::optional<double> replication_lag_bytes;
  std::optional<std::int64_t> connections;
  std::optional<std::int64_t> max_connections;
  std::optional<std::int64_t> database_size_bytes;
  std::optional<double> uptime_seconds;
  std::vector<ProbeMetric> metrics;
  // Non-numeric facts ("journal_mode": "wal", "quick_check": "ok").
  std::map<std::string, std::string> info;
  // Fields the engine could not give, each with why (missing privilege,
  // not a replica, needs two samples ...).
  std::map<std::string, std::string> unavailable;

  // The metric of that name, or nullptr.
  const ProbeMetric* find_metric(std::string_view name) const {
    for (const auto& m : metrics) {
      if (m.name == name) return &m;
    }
    return nullptr;
  }
};

class HealthProbe {
 public:
  virtual ~HealthProbe() = default;
  // Reads one sample over an open session of this engine.
  virtual Result<ProbeSample> probe(Session& session, Deadline deadline) const = 0;
};

}  // namespace dbops::engine
