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
  // Fields carried over from an earlier probe on the same session instead of
  // read this time (see ProbeOptions::slow_fields_max_age), each with the age
  // of its value in seconds. Empty when every field was read now.
  std::map<std::string, double> carried_seconds;
  // The round-trip time of a trivial statement, when the engine's probe
  // measured it itself; the caller then needs no ping of its own.
  std::optional<double> rtt_seconds;

  // The metric of that name, or nullptr.
  const ProbeMetric* find_metric(std::string_view name) const {
    for (const auto& m : metrics) {
      if (m.name == name) return &m;
    }
    return nullptr;
  }
};

// What a caller that probes the same sessions again and again (the agent's
// rounds) lets a probe save. The defaults read every field afresh.
struct ProbeOptions {
  Deadline deadline = Deadline::never();
  // Fields that change slowly and cost the server more than the rest to read
  // (PostgreSQL: the database size, the wraparound ages, the size of pg_wal
  // and settings that only change with a restart) may be carried over from
  // an earlier probe on the same session while their value is younger than
  // this. Every carried field is named in ProbeSample::carried_seconds; a
  // new session (a one-shot `dbops probe`) reads everything. Zero: never carry.
  std::chrono::milliseconds slow_fields_max_age{0};
};

class HealthProbe {
 public:
  virtual ~HealthProbe() = default;
  // Reads one sample over an open session of this engine, every field afresh.
  virtual Result<ProbeSample> probe(Session& session, Deadline deadline) const = 0;
  // The same with options; an engine that has nothing to save reads
  // everything.
  virtual Result<ProbeSample> probe_with(Session& session, const ProbeOptions& options) const {
    return probe(session, options.deadline);
  }
};

}  // namespace dbops::engine
