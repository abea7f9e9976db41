#include "ops/probe/probe.hpp"

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/json_text.hpp"
#include "core/log.hpp"
#include "engine/engine.hpp"

namespace dbops::ops::probe {
namespace {

double seconds(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

// How long slow fields (the database size, wraparound ages ...; see
// engine::ProbeOptions) may be carried over between the rounds of an agent.
// They change over hours, not seconds, and reading them is most of the
// server's work for a probe of a large database (PostgreSQL stats every file
// of it); a restart, a new connection and a one-shot probe read them afresh.
constexpr std::chrono::milliseconds kSlowFieldsMaxAge{60'000};

}  // namespace

std::string_view status_name(Status status) {
  switch (status) {
    case Status::kUp:
      return "up";
    case Status::kDown:
      return "down";
    case Status::kNotProbed:
      return "not_probed";
  }
  return "down";
}

Prober::Prober(const config::ProbeConfig& config, Clock& clock)
    : config_(config),
      clock_(clock),
      pool_(engine::Registry::global(),
            engine::PoolOptions{.connect = {.connect_timeout = config.connect_timeout,
                                            .statement_timeout = config.query_timeout},
                                .max_idle_per_target = 1,
                                .breaker = {.failure_threshold = config.breaker_failures,
                                            .open_duration = config.breaker_open}},
            clock) {}

TargetResult Prober::probe_one(const config::Target& target) {
  TargetResult r;
  r.target = target.name;
  r.engine = target.engine;
  const auto started = clock_.steady_now();
  const auto finish = [&]() -> TargetResult {
    r.duration_seconds = seconds(clock_.steady_now() - started);
    // Every error names its target once: engine errors already do.
    if (!r.error.empty() && !r.error.starts_with(target.name + ":")) {
      r.error = target.name + ": " + r.error;
    }
    return r;
  };

  // A target whose breaker is open is left alone.
  if (!pool_.allow(target.name)) {
    r.status = Status::kNotProbed;
    r.error = "circuit breaker open after repeated failures; not probed this round";
    return finish();
  }
  const engine::Engine* engine = engine::Registry::global().find(target.engine);
  const engine::HealthProbe* health = engine ? engine->health_probe() : nullptr;
  if (!health) {
    pool_.record_success(target.name);
    r.status = Status::kDown;
    r.error_code = ErrorCode::kUnsupported;
    r.error = "engine " + target.engine + " has no health probe in this build";
    return finish();
  }

  // Connect (or reuse), round-trip, probe.
  const engine::Deadline deadline = engine::Deadline::after(config_.query_timeout);
  auto lease = pool_.acquire(target);
  if (!lease) {
    pool_.record_failure(target.name);
    r.status = Status::kDown;
    r.error_code = lease.error().code;
    r.error = lease.error().to_string();
    return finish();
  }
  r.reused_connection = lease->reused();
  if (!lease->reused()) r.connect_seconds = seconds(lease->connect_time());
  auto sample = health->probe_with(
      lease->session(),
      engine::ProbeOptions{.deadline = deadline, .slow_fields_max_age = kSlowFieldsMaxAge});
  // A trivial round trip, unless the engine's probe measured one itself.
  if (sample && sample->rtt_seconds) {
    r.rtt_seconds = sample->rtt_seconds;
  } else if (sample) {
    const auto ping_started = clock_.steady_now();
    if (auto ping = lease->session().ping(deadline); !ping) {
      sample = std::unexpected(std::move(ping).error());
    } else {
      r.rtt_seconds = seconds(clock_.steady_now() - ping_started);
    }
  }
  if (!sample) {
    lease->discard();
    pool_.record_failure(target.name);
    r.status = Status::kDown;
    r.error_code = sample.error().code;
    r.error = sample.error().to_string();
    return finish();
  }
  pool_.record_success(target.name);
  r.status = Status::kUp;

  // Rates from the previous round's counters.
  const auto now = clock_.steady_now();
  std::map<std::string, double> counters;
  for (const auto& m : sample->metrics) {
    if (m.kind == engine::ProbeMetric::Kind::kCounter) counters[m.name] = m.value;
  }
  {
    std::lock_guard lock(mu_);
    const auto it = previous_.find(target.name);
    if (it != previous_.end()) {
      const double dt = seconds(now - it->second.at);
      for (const auto& [name, value] : counters) {
        const auto prev = it->second.counters.find(name);
        // A counter that went down means the server restarted: no rate this round.
        if (prev != it->second.counters.end() && dt > 0 && value >= prev->second) {
          r.rates[name] = (value - prev->second) / dt;
        }
      }
    }
    previous_[target.name] = Previous{.at = now, .counters = std::move(counters)};
  }
  r.sample = std::move(*sample);
  return finish();
}

RoundResult Prober::round(const std::vector<const config::Target*>& targets) {
  RoundResult round;
  const auto started = clock_.steady_now();
  round.targets.resize(targets.size());
  std::atomic<std::size_t> next{0};
  const std::size_t workers =
      std::min<std::size_t>(targets.size(), static_cast<std::size_t>(config_.concurrency));
  const auto work = [&] {
    while (true) {
      const std::size_t i = next.fetch_add(1);
      if (i >= targets.size()) return;
      log::Scope scope("", targets[i]->name, "probe");
      round.targets[i] = probe_one(*targets[i]);
    }
  };
  std::vector<std::jthread> threads;
  for (std::size_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();
  threads.clear();
  round.duration_seconds = seconds(clock_.steady_now() - started);
  round.first_round = first_round_;
  first_round_ = false;
  return round;
}

obs::Family& Prober::engine_family(obs::Registry& registry, const std::string& engine,
                                   const engine::ProbeMetric& m, std::string_view suffix) {
  std::string name = "dbops_" + engine + "_" + m.name;
  name += suffix;
  auto& cached = engine_families_[name];
  if (cached) return *cached;
  const std::vector<std::string> te = {"target", "engine"};
  if (suffix == "_total") {
    cached = &registry.counter(name, m.help + " (the server's own cumulative count)", te);
  } else if (suffix == "_per_second") {
    cached = &registry.gauge(name, m.help + " per second, between the last two probes", te);
  } else {
    cached = &registry.gauge(name, m.help, te);
  }
  return *cached;
}

void Prober::publish(const RoundResult& round, obs::Registry& registry) {
  // The families below live in `registry`; a different one starts afresh.
  if (published_to_ != &registry) {
    engine_families_.clear();
    info_labels_.clear();
    published_to_ = &registry;
  }
  const std::vector<std::string> te = {"target", "engine"};
  auto& up = registry.gauge("dbops_target_up",
                            "1 when the target answered its last probe, 0 when it did not; absent "
                            "while its circuit breaker is open.",
                            te);
  auto& breaker =
      registry.gauge("dbops_target_circuit_open",
                     "1 while the target's circuit breaker is open and it is not probed.", te);
  auto& probes =
      registry.counter("dbops_probes_total", "Probes by result (ok, error, timeout, not_probed).",
                       {"target", "engine", "result"});
  auto& duration = registry.histogram("dbops_probe_duration_seconds",
                                      "Time to probe one target, connecting included.", te,
                                      config_.duration_buckets);
  auto& connect = registry.gauge("dbops_connect_seconds",
                                 "Time the last new connection to the target took.", te);
  auto& rtt = registry.gauge("dbops_rtt_seconds",
                             "Round-trip time of a trivial query in the last probe.", te);
  auto& info =
      registry.gauge("dbops_target_info", "Always 1; the labels tell the server version and role.",
                     {"target", "engine", "version", "role"});
  auto& lag_s = registry.gauge("dbops_replication_lag_seconds",
                               "Replication lag in seconds where the engine reports it.", te);
  auto& lag_b = registry.gauge("dbops_replication_lag_bytes",
                               "Replication lag in bytes where the engine reports it.", te);
  auto& conns = registry.gauge("dbops_connections", "Connections in use.", te);
  auto& max_conns = registry.gauge("dbops_max_connections", "Connections allowed.", te);
  auto& size = registry.gauge("dbops_database_size_bytes",
                              "Size of the database (PostgreSQL: the connected database; MariaDB: "
                              "visible tables; Redis: used memory; SQLite: the file).",
                              te);
  auto& uptime = registry.gauge("dbops_uptime_seconds", "Time since the server started.", te);

  std::vector<std::string> seen;
  for (const auto& t : round.targets) {
    const obs::LabelValues labels = {t.target, t.engine};
    seen.push_back(t.target);
    duration.observe(labels, t.duration_seconds);
    std::string result = t.status == Status::kUp               ? "ok"
                         : t.status == Status::kNotProbed      ? "not_probed"
                         : t.error_code == ErrorCode::kTimeout ? "timeout"
                                                               : "error";
    probes.add({t.target, t.engine, result});
    breaker.set(labels, t.status == Status::kNotProbed ? 1 : 0);
    if (t.status == Status::kNotProbed) {
      up.remove(labels);
      continue;
    }
    up.set(labels, t.status == Status::kUp ? 1 : 0);
    if (t.connect_seconds) connect.set(labels, *t.connect_seconds);
    if (t.rtt_seconds) rtt.set(labels, *t.rtt_seconds);
    if (!t.sample) continue;
    const auto& s = *t.sample;
    // A new version or role replaces the target's info series.
    obs::LabelValues info_labels = {t.target, t.engine, s.server_version, s.role};
    auto& last_info = info_labels_[t.target];
    if (last_info != info_labels) {
      if (!last_info.empty()) info.remove(last_info);
      last_info = info_labels;
    }
    info.set(info_labels, 1);
    const auto set_opt = [&](obs::Family& f, const auto& v) {
      if (v) {
        f.set(labels, static_cast<double>(*v));
      } else {
        f.remove(labels);
      }
    };
    set_opt(lag_s, s.replication_lag_seconds);
    set_opt(lag_b, s.replication_lag_bytes);
    set_opt(conns, s.connections);
    set_opt(max_conns, s.max_connections);
    set_opt(size, s.database_size_bytes);
    set_opt(uptime, s.uptime_seconds);
    for (const auto& m : s.metrics) {
      const bool counter = m.kind == engine::ProbeMetric::Kind::kCounter;
      engine_family(registry, t.engine, m, counter ? "_total" : "").set(labels, m.value);
      if (const auto it = t.rates.find(m.name); counter && it != t.rates.end()) {
        engine_family(registry, t.engine, m, "_per_second").set(labels, it->second);
      }
    }
  }
  // Targets no longer probed by this process lose their series.
  for (const auto& old : published_targets_) {
    if (std::find(seen.begin(), seen.end(), old) != seen.end()) continue;
    pool_.forget(old);
    for (auto* f : {&up, &breaker, &connect, &rtt, &info, &lag_s, &lag_b, &conns, &max_conns, &size,
                    &uptime, &probes, &duration}) {
      f->remove_where("target", old);
    }
    for (auto& [name, f] : engine_families_) f->remove_where("target", old);
    info_labels_.erase(old);
  }
  published_targets_ = std::move(seen);
}

std::string to_json(const RoundResult& round) {
  nlohmann::ordered_json out;
  out["duration_seconds"] = round.duration_seconds;
  out["targets"] = nlohmann::ordered_json::array();
  for (const auto& t : round.targets) {
    nlohmann::ordered_json j;
    j["target"] = t.target;
    j["engine"] = t.engine;
    j["status"] = std::string(status_name(t.status));
    if (!t.error.empty()) j["error"] = t.error;
    j["duration_seconds"] = t.duration_seconds;
    j["reused_connection"] = t.reused_connection;
    if (t.connect_seconds) j["connect_seconds"] = *t.connect_seconds;
    if (t.rtt_seconds) j["rtt_seconds"] = *t.rtt_seconds;
    if (t.sample) {
      const auto& s = *t.sample;
      j["version"] = s.server_version;
      j["role"] = s.role;
      const auto opt = [&](const char* key, const auto& v) {
        if (v) j[key] = *v;
      };
      opt("replication_lag_seconds", s.replication_lag_seconds);
      opt("replication_lag_bytes", s.replication_lag_bytes);
      opt("connections", s.connections);
      opt("max_connections", s.max_connections);
      opt("database_size_bytes", s.database_size_bytes);
      opt("uptime_seconds", s.uptime_seconds);
      nlohmann::ordered_json metrics = nlohmann::ordered_json::object();
      for (const auto& m : s.metrics) metrics[m.name] = m.value;
      j["metrics"] = metrics;
      nlohmann::ordered_json rates = nlohmann::ordered_json::object();
      for (const auto& [k, v] : t.rates) rates[k + "_per_second"] = v;
      j["rates"] = rates;
      j["info"] = s.info;
      nlohmann::ordered_json unavailable = s.unavailable;
      if (round.first_round || t.rates.empty()) {
        for (const auto& m : s.metrics) {
          if (m.kind == engine::ProbeMetric::Kind::kCounter) {
            unavailable[m.name + "_per_second"] =
                "a rate needs two samples; the agent derives it between rounds";
          }
        }
      }
      j["unavailable"] = unavailable;
      if (!s.carried_seconds.empty()) j["carried_over_seconds"] = s.carried_seconds;
    }
    out["targets"].push_back(j);
  }
  return json_text(out);
}

}  // namespace dbops::ops::probe
