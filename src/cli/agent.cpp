// The agent: a probe round every agent.probe_interval through the job runner,
// queue workers that run the jobs queued in the state store, and /metrics,
// /healthz and /readyz over HTTP.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/api.hpp"
#include "agent/ownership.hpp"
#include "agent/scheduler.hpp"
#include "agent/worker.hpp"
#include "cli/commands.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/version.hpp"
#include "obs/metrics.hpp"
#include "ops/backup/backup.hpp"
#include "ops/workflow/workflow.hpp"
#include "runtime/runner.hpp"

namespace dbops::cli {
namespace {

struct Shutdown {
  std::mutex mu;
  std::condition_variable cv;
  bool requested = false;
  int signal = 0;
};

}  // namespace

int cmd_agent(Session& s, const AgentArgs& args) {
  // Block SIGTERM and SIGINT in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto cfg = s.config();
  if (!cfg) return report(cfg.error());
  auto store = s.store();
  if (!store) return report(store.error());
  auto queue = s.queue();
  if (!queue) return report(queue.error());
  const config::Config& config = **cfg;
  const std::string listen = args.listen.empty() ? config.agent.listen : args.listen;
  const auto colon = listen.rfind(':');
  const std::string host = listen.substr(0, colon);
  const int port = colon == std::string::npos ? 0 : std::atoi(listen.c_str() + colon + 1);
  if (colon == std::string::npos || port < 0 || port > 65535 ||
      listen.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    return report(
        make_error(ErrorCode::kConfig, "agent: listen address " + listen + " is not host:port"));
  }

  // Metrics and the job kinds that publish into them.
  obs::Registry metrics;
  metrics
      .gauge("dbops_build_info", "Always 1; the labels tell the dbops version and commit.",
             {"version", "commit"})
      .set({std::string(version()), std::string(git_commit())}, 1);
  auto& rounds = metrics.counter("dbops_agent_probe_rounds_total", "Probe rounds run by the agent.",
                                 {"result"});
  auto& round_seconds =
      metrics.gauge("dbops_agent_probe_round_seconds", "Duration of the last probe round.");
  auto& targets_gauge = metrics.gauge("dbops_agent_targets", "Targets this agent probes.");
  auto& queue_gauge =
      metrics.gauge("dbops_queue_jobs", "Jobs in the state store's queue, by state.", {"state"});
  auto& worker_jobs =
      metrics.gauge("dbops_agent_jobs",
                    "Queued jobs this agent claimed since it started, by outcome.", {"outcome"});
  runtime::JobKindRegistry& kinds = s.kinds(ops::Environment{.metrics = &metrics});
  // Schedules name job kinds and parameters that only the registry knows.
  if (auto st = agent::check_schedules(config, kinds); !st) return report(st.error());
  if (auto st = ops::workflow::check_workflows(config, kinds); !st) return report(st.error());
  runtime::Runner runner(kinds, config, **store, real_clock(),
                         runtime::RunnerOptions{.dispatcher = s.dispatcher()});

  // HTTP: bind first, so that a taken port is an immediate, clear error.
  httplib::Server server;
  std::atomic<bool> ready{false};
  // Streamed a family at a time (chunked): an agent with hundreds of targets
  // exposes megabytes, and a whole copy per scrape is memory it would keep.
  server.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider(
        "text/plain; version=0.0.4; charset=utf-8",
        [&metrics](std::size_t, httplib::DataSink& sink) {
          metrics.expose([&sink](std::string_view part) { sink.write(part.data(), part.size()); });
          sink.done();
          return true;
        });
  });
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz", [&](const httplib::Request&, httplib::Response& res) {
    if (ready) {
      res.set_content("ready\n", "text/plain");
    } else {
      res.status = 503;
      res.set_content("waiting for the first probe round\n", "text/plain");
    }
  });
  // Queue workers, under a member id unique to this process.
  char hostname[256] = {};
  if (gethostname(hostname, sizeof hostname - 1) != 0) std::snprintf(hostname, 8, "unknown");
  const std::string worker_id = std::string(hostname) + ":" + std::to_string(getpid());
  agent::Worker worker(
      **queue, kinds, config, **store, real_clock(), s.dispatcher(),
      agent::WorkerOptions{.owner = worker_id,
                           .concurrency = static_cast<std::size_t>(config.agent.workers),
                           .lease = config.agent.lease,
                           .poll = config.agent.poll_interval,
                           .shutdown_grace = config.agent.shutdown_grace,
                           // New jobs wake it at once where a direct connection
                           // to a PostgreSQL store is configured (state_listen).
                           .listen = config.state.listen_dsn.empty()
                                         ? std::nullopt
                                         : std::optional<config::StateConfig>(config.state)});
  agent::register_api(server, **queue, **store, kinds, config,
                      agent::ApiOptions{.token = config.agent.token,
                                        .member_id = worker_id,
                                        .enqueued = [&worker] { worker.wake(); }});
  // Port 0 lets the kernel choose; the chosen port is logged.
  const int bound =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return report(
        make_error(ErrorCode::kUnavailable, "agent: cannot listen on " + listen)
            .with_hint("another process may hold the port; set agent.listen or --listen"));
  }
  std::thread http([&] { server.listen_after_bind(); });
  log::info("agent listening", {{"listen", host + ":" + std::to_string(bound)},
                                {"port", bound},
                                {"targets", static_cast<int>(config.targets.size())}});

  Shutdown shutdown;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    {
      std::lock_guard lock(shutdown.mu);
      shutdown.requested = true;
      shutdown.signal = sig;
    }
    shutdown.cv.notify_all();
  });

  worker.start();
  // The leader runs the schedules (and purges the queue). A fire time's
  // idempotency key keeps one job per tick even while a leadership changes
  // hands.
  // Workflows with a cron trigger fire as schedules of their own.
  std::vector<config::Schedule> schedules = config.schedules;
  for (auto& trigger : ops::workflow::trigger_schedules(config)) {
    schedules.push_back(std::move(trigger));
  }
  agent::Scheduler scheduler(std::move(schedules), **queue, real_clock(), kinds,
                             agent::SchedulerOptions{.on_enqueued = [&worker] { worker.wake(); }});
  std::atomic<bool> leading{false};
  const std::string member_info = "{\"version\":\"" + std::string(version()) + "\",\"listen\":\"" +
                                  host + ":" + std::to_string(bound) + "\"}";
  // Membership: a heartbeat and a try for the leader lease every third of
  // the lease.
  std::thread membership([&] {
    std::unique_lock lock(shutdown.mu);
    while (!shutdown.requested) {
      lock.unlock();
      if (auto st = (*queue)->heartbeat_member(worker_id, member_info, config.agent.lease); !st) {
        log::warn("member heartbeat failed", {{"error", st.error().to_string()}});
      }
      auto led = (*queue)->lead(worker_id, config.agent.lease);
      if (led && led->leader && !leading) {
        leading = true;
        log::info("agent leads", {{"term", led->term}});
        scheduler.start();
      } else if ((!led || !led->leader) && leading) {
        // Renewal failed or someone else holds the lease: stop scheduling at
        // once (the lease may still run, but its renewal is in doubt).
        leading = false;
        log::warn("agent no longer leads",
                  {{"error", led ? "the lease is held by " + led->holder : led.error().message}});
        scheduler.stop();
      }
      lock.lock();
      shutdown.cv.wait_for(lock, config.agent.lease / 3, [&] { return shutdown.requested; });
    }
  });

  // Probe rounds until asked to stop.
  while (true) {
    const auto started = std::chrono::steady_clock::now();
    // This agent probes (and exports) the targets that rendezvous hashing
    // gives it among the live members; all of them when it is alone, or when
    // the members cannot be read (twice the work rather than a gap).
    std::vector<std::string> all_targets;
    for (const auto& t : config.targets) all_targets.push_back(t.name);
    std::vector<std::string> owned = all_targets;
    if (auto members = (*queue)->members()) {
      std::vector<std::string> alive;
      for (const auto& m : *members) {
        if (m.alive) alive.push_back(m.id);
      }
      owned = agent::owned_targets(all_targets, alive, worker_id);
    }
    targets_gauge.set({}, static_cast<double>(owned.size()));
    // Only the targets that are not up are kept with each round's run.
    nlohmann::json params{{"detail", false}, {"publish", true}, {"targets", owned}};
    Result<runtime::RunReport> round = fail(ErrorCode::kNotFound, "no target of its own");
    if (!owned.empty()) {
      round = runner.run(runtime::JobSpec{.kind = "probe", .params_json = params.dump()});
    } else {
      ready = true;
    }
    if (!round && owned.empty()) {
      // Nothing of its own to probe this round.
    } else if (!round) {
      rounds.add({"error"});
      log::error("probe round could not run", {{"error", round.error().to_string()}});
    } else {
      rounds.add({round->run.state == store::RunState::kSucceeded ? "ok" : "error"});
      ready = true;
    }
    round_seconds.set(
        {}, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    // Backups and drills run from cron show up too: the gauges come from the
    // store.
    if (auto st = ops::backup::publish_metrics(config, **store, metrics); !st) {
      log::warn("backup metrics not updated", {{"error", st.error().to_string()}});
    }
    // The queue: its size by state, and finished jobs past their retention
    // deleted a batch at a time (so that the table never bloats and no
    // statement runs long).
    if (auto counts = (*queue)->counts()) {
      for (const char* state : {"scheduled", "available", "running", "retrying", "succeeded",
                                "failed", "dead", "cancelled"}) {
        std::int64_t n = 0;
        for (const auto& [st, count] : *counts) {
          if (store::job_state_name(st) == state) n = count;
        }
        queue_gauge.set({state}, static_cast<double>(n));
      }
    }
    const auto stats = worker.stats();
    worker_jobs.set({"succeeded"}, static_cast<double>(stats.succeeded));
    worker_jobs.set({"failed"}, static_cast<double>(stats.failed));
    worker_jobs.set({"lease_lost"}, static_cast<double>(stats.lost));
    worker_jobs.set({"released"}, static_cast<double>(stats.released));
    for (int batch = 0; batch < 10 && leading; ++batch) {
      auto purged = (*queue)->purge_finished(
          std::chrono::system_clock::now() - config.agent.job_retention, 1000);
      if (!purged || *purged < 1000) break;
    }
    std::unique_lock lock(shutdown.mu);
    if (shutdown.cv.wait_until(lock, started + config.agent.probe_interval,
                               [&] { return shutdown.requested; })) {
      break;
    }
  }

  // Clean shutdown: stop serving, join the threads.
  log::info("agent stopping", {{"signal", shutdown.signal}});
  membership.join();
  scheduler.stop();
  worker.stop();
  // Gone from the members, and the leader lease (if held) free at once.
  if (auto st = (*queue)->leave_member(worker_id); !st) {
    log::warn("leaving the members failed", {{"error", st.error().to_string()}});
  }
  server.stop();
  http.join();
  waiter.join();
  return 0;
}

}  // namespace dbops::cli
