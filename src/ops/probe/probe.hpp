// Probe rounds: every selected target probed concurrently (with a bound),
// each through the engine's HealthProbe over a pooled session.
//
// A Prober lives as long as its owner: the CLI's one-shot `dbops probe`
// starts cold (new connections, no rates), the agent keeps one across rounds
// so that connections are reused and counters become rates.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "engine/pool.hpp"
#include "engine/probe.hpp"
#include "obs/metrics.hpp"

namespace dbops::ops::probe {

enum class Status {
  kUp,         // answered the probe
  kDown,       // could not be reached or the probe failed
  kNotProbed,  // its circuit breaker is open: left alone this round
};
std::string_view status_name(Status status);

struct TargetResult {
  std::string target;
  std::string engine;
  Status status = Status::kDown;
  std::string error;  // when down or not probed; starts with "<target>: "
  ErrorCode error_code = ErrorCode::kUnavailable;
  bool reused_connection = false;
  std::optional<double> connect_seconds;  // when it connected this round
  std::optional<double> rtt_seconds;      // a trivial round trip
  double duration_seconds = 0;            // the whole probe of this target
  std::optional<engine::ProbeSample> sample;
  // Per-second rates derived from this and the previous round's counters.
  std::map<std::string, double> rates;
};

struct RoundResult {
  std::vector<TargetResult> targets;
  double duration_seconds = 0;
  // Rates cannot be derived in the first round of a Prober.
  bool first_round = true;
};

class Prober {
 public:
  Prober(const config::ProbeConfig& config, Clock& clock);

  // Probes the targets; never fails as a whole.
  RoundResult round(const std::vector<const config::Target*>& targets);

  // Publishes a round's results as dbops_* series (removing series of
  // targets no longer probed).
  void publish(const RoundResult& round, obs::Registry& registry);

 private:
  TargetResult probe_one(const config::Target& target);
  obs::Family& engine_family(obs::Registry& registry, const std::string& engine,
                             const engine::ProbeMetric& m, std::string_view suffix);

  config::ProbeConfig config_;
  Clock& clock_;
  engine::ConnectionPool pool_;
  struct Previous {
    std::chrono::steady_clock::time_point at;
    std::map<std::string, double> counters;
  };
  std::mutex mu_;
  std::map<std::string, Previous> previous_;
  bool first_round_ = true;
  std::vector<std::string> published_targets_;
  // What publish() keeps between rounds: the registry it writes to, the
  // families of engine-specific metrics by name, each target's info labels.
  obs::Registry* published_to_ = nullptr;
  std::map<std::string, obs::Family*> engine_families_;
  std::map<std::string, obs::LabelValues> info_labels_;
};

// The round as JSON (the probe job's result, and `dbops probe --output json`).
std::string to_json(const RoundResult& round);

}  // namespace dbops::ops::probe
