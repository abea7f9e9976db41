// Agent processes on one PostgreSQL state store, every test twice: with a
// direct connection to the store (agents poll), and through PgBouncer in
// transaction pooling mode (agents LISTEN on a direct connection,
// state_listen).
//
// - Three agents run 2,000 queued jobs (1,000 through PgBouncer) whose effect
//   is an INSERT into a table without a unique constraint, while one agent is
//   killed with -9 twice (and restarted) and another is frozen past its
//   leases and thawed. Afterwards every job has succeeded; a job ran more
//   than once only if its attempt was interrupted (attempt > 1), and the
//   frozen agent's late completions were refused.
// - A killed leader is replaced in the next term; terms never overlap.
// - Each target is exported by exactly one of three agents, and moves when
//   its agent dies.
// - A workflow run whose agent is killed mid-run is finished by another
//   agent, without running again the tasks that had succeeded.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/background_process.hpp"
#include "core/config/config.hpp"
#include "core/strings.hpp"
#include "store/queue.hpp"
#include "support/instances.hpp"
#include "support/pgbouncer.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// How the agents reach the store.
struct Route {
  std::string name;
  bool pgbouncer = false;
  int jobs = 2000;  // of the kill test
};

// One PgBouncer for the binary, started on first use.
PgBouncer& shared_pgbouncer() {
  static auto bouncer = [] {
    auto b = PgBouncer::start(shared_postgres(), 40);
    EXPECT_TRUE(b) << b.error().to_string();
    return b ? std::move(*b) : nullptr;
  }();
  if (!bouncer) throw std::runtime_error("pgbouncer did not start");
  return *bouncer;
}

class Agents : public ::testing::TestWithParam<Route> {
 protected:
  void SetUp() override {
    auto& pg = shared_postgres();
    static int databases = 0;
    state_db_ = "agents_state_" + std::to_string(::getpid()) + "_" + std::to_string(++databases);
    // One statement per psql run: DROP and CREATE DATABASE refuse a
    // transaction block.
    for (const std::string& sql :
         {"DROP DATABASE IF EXISTS " + state_db_ + " WITH (FORCE)", "CREATE DATABASE " + state_db_,
          std::string("DROP DATABASE IF EXISTS agents_effects WITH (FORCE)"),
          std::string("CREATE DATABASE agents_effects")}) {
      must(psql(pg, sql));
    }
    must(psql(pg,
              "CREATE TABLE effects (job int NOT NULL, at timestamptz DEFAULT clock_timestamp())",
              30s, "agents_effects"));
    direct_dsn_ = "postgresql://" + pg.superuser() + ":" + pg.superuser_password().reveal() +
                  "@127.0.0.1:" + std::to_string(pg.port()) + "/" + state_db_;
    dsn_ = GetParam().pgbouncer ? shared_pgbouncer().dsn(state_db_) : direct_dsn_;
    write_config("");
  }

  // The agents' config: the store (and, through PgBouncer, state_listen),
  // the target pg on the effects database, and `extra` at the end.
  void write_config(const std::string& extra, const std::string& poll = "100ms") {
    auto& pg = shared_postgres();
    std::ofstream(dir_.path() / "dbops.yaml", std::ios::trunc)
        << "state: ${env:STATE_DSN}\n"
        << (GetParam().pgbouncer ? "state_listen: ${env:STATE_DIRECT_DSN}\n" : "")
        << "agent:\n  workers: 4\n  lease: 2s\n  poll_interval: " << poll
        << "\n  shutdown_grace: 1s\n"
           "  probe_interval: 1h\n"
           "targets:\n  - name: pg\n    engine: postgres\n    host: 127.0.0.1\n    port: "
        << pg.port() << "\n    user: " << pg.superuser()
        << "\n    password: ${env:PG_PW}\n    database: agents_effects\n"
        << extra;
  }

  std::vector<std::pair<std::string, std::string>> env() const {
    return {{"STATE_DSN", dsn_},
            {"STATE_DIRECT_DSN", direct_dsn_},
            {"PG_PW", shared_postgres().superuser_password().reveal()}};
  }

  // The test's own view of the queue, through the same route as the agents.
  std::unique_ptr<store::JobQueue> open_queue() {
    config::StateConfig state;
    state.postgres_dsn = Secret(dsn_);
    auto opened = store::open_queue(state);
    EXPECT_TRUE(opened) << opened.error().to_string();
    return opened ? std::move(*opened) : nullptr;
  }

  BackgroundProcess start_agent(const std::string& name) {
    BackgroundOptions options;
    options.argv = {dbops_binary(), "--config", (dir_.path() / "dbops.yaml").string(),
                    "agent",        "--listen", "127.0.0.1:0"};
    options.env = env();
    options.output_file = dir_.path() / (name + ".log");
    options.parent_death_signal = SIGKILL;
    auto p = BackgroundProcess::spawn(options);
    EXPECT_TRUE(p) << p.error().to_string();
    return p ? std::move(*p) : BackgroundProcess{};
  }

  std::map<store::JobState, std::int64_t> counts(store::JobQueue& q) {
    std::map<store::JobState, std::int64_t> out;
    if (auto c = q.counts()) {
      for (const auto& [s, n] : *c) out[s] = n;
    }
    return out;
  }

  // How many times each job's effect ran: the rows of the effects table, by
  // job number.
  std::map<int, int> executions_per_job() {
    const std::string rows =
        must(psql(shared_postgres(), "SELECT job, count(*) FROM effects GROUP BY job", 30s,
                  "agents_effects"));
    std::map<int, int> out;
    for (const auto& line : split(rows, '\n')) {
      const auto bar = line.find('|');
      if (bar != std::string::npos)
        out[std::stoi(line.substr(0, bar))] = std::stoi(line.substr(bar + 1));
    }
    return out;
  }

  // Waits until at least `n` jobs succeeded (or `limit` passes).
  bool wait_succeeded(store::JobQueue& q, std::int64_t n, std::chrono::seconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (counts(q)[store::JobState::kSucceeded] >= n) return true;
      std::this_thread::sleep_for(200ms);
    }
    return false;
  }

  TempDir dir_;
  std::string state_db_;
  std::string dsn_;
  std::string direct_dsn_;
};

INSTANTIATE_TEST_SUITE_P(Routes, Agents,
                         ::testing::Values(Route{.name = "direct"}, Route{.name = "pgbouncer",
                                                                          .pgbouncer = true,
                                                                          .jobs = 1000}),
                         [](const auto& info) { return info.param.name; });

TEST_P(Agents, ThreeAgentsRunEveryJobThroughKillsAndAFreeze) {
  const int kJobs = GetParam().jobs;
  auto opened = open_queue();
  ASSERT_NE(opened, nullptr);
  auto& queue = *opened;

  std::vector<store::JobSpec> specs;
  for (int i = 1; i <= kJobs; ++i) {
    store::JobSpec s;
    s.kind = "command";
    s.target = "pg";
    s.params_json = nlohmann::json{
        {"argv",
         {"psql", "-X", "-q", "-c",
          "INSERT INTO effects (job) VALUES (" + std::to_string(i) +
              ")"}}}.dump();
    s.idempotency_key = "effect-" + std::to_string(i);
    s.max_attempts = 5;
    // Not exclusive: the point is many jobs on one target at once.
    s.exclusive = false;
    specs.push_back(std::move(s));
  }
  auto ids = queue.enqueue_batch(specs);
  ASSERT_TRUE(ids) << ids.error().to_string();
  ASSERT_EQ(ids->size(), static_cast<std::size_t>(kJobs));
  std::map<std::int64_t, int> job_number;
  for (int i = 0; i < kJobs; ++i) job_number[(*ids)[i].id] = i + 1;

  auto a = start_agent("a");
  auto b = start_agent("b");
  auto c = start_agent("c");

  // kill -9 agent a twice, restarting it each time.
  ASSERT_TRUE(wait_succeeded(queue, kJobs * 15 / 100, 180s)) << read_file(dir_.path() / "a.log");
  ASSERT_TRUE(a.signal(SIGKILL));
  a.wait_for(10s);
  a = start_agent("a2");
  ASSERT_TRUE(wait_succeeded(queue, kJobs * 40 / 100, 180s));
  ASSERT_TRUE(a.signal(SIGKILL));
  a.wait_for(10s);
  a = start_agent("a3");

  // Freeze agent c past its leases (2s), then let it go on: whatever it was
  // running was claimed again by the others, and its late completions must
  // be refused.
  ASSERT_TRUE(wait_succeeded(queue, kJobs * 60 / 100, 180s));
  ASSERT_TRUE(c.signal(SIGSTOP));
  std::this_thread::sleep_for(5s);
  ASSERT_TRUE(c.signal(SIGCONT));

  ASSERT_TRUE(wait_succeeded(queue, kJobs, 300s))
      << "succeeded: " << counts(queue)[store::JobState::kSucceeded];
  for (auto* p : {&a, &b, &c}) {
    ASSERT_TRUE(p->signal(SIGTERM));
    EXPECT_TRUE(p->wait_for(30s));
  }

  // Every job succeeded, nothing else is left.
  const auto final_counts = counts(queue);
  EXPECT_EQ(final_counts.size(), 1U);
  EXPECT_EQ(final_counts.at(store::JobState::kSucceeded), kJobs);

  // Executions per job.
  const auto executions = executions_per_job();
  EXPECT_EQ(executions.size(), static_cast<std::size_t>(kJobs));
  std::map<int, int> attempts;
  auto jobs = queue.list({.limit = static_cast<std::size_t>(kJobs) + 10});
  ASSERT_TRUE(jobs) << jobs.error().to_string();
  for (const auto& j : *jobs) attempts[job_number[j.id]] = j.attempt;
  int repeated = 0;
  for (const auto& [job, n] : executions) {
    if (n > 1) {
      ++repeated;
      // A second execution only where an attempt was interrupted.
      EXPECT_GT(attempts[job], 1) << "job " << job << " ran " << n << " times";
    }
    EXPECT_LE(n, attempts[job]) << "job " << job;
  }
  int retried = 0;
  for (const auto& [job, n] : attempts) retried += n > 1 ? 1 : 0;
  EXPECT_GT(retried, 0) << "the kills and the freeze interrupted no job";
  RecordProperty("jobs_run_more_than_once", repeated);
  RecordProperty("jobs_with_more_than_one_attempt", retried);
  std::printf("[ figures  ] %d jobs: %d with more than one attempt, %d executed more than once\n",
              kJobs, retried, repeated);

  // Through PgBouncer, the agents listened for new jobs on their direct
  // connection.
  if (GetParam().pgbouncer) {
    EXPECT_NE(read_file(dir_.path() / "b.log").find("listening for new jobs"), std::string::npos);
  }
  // The frozen agent came back to leases that were no longer its own.
  const std::string c_log = read_file(dir_.path() / "c.log");
  EXPECT_NE(c_log.find("lease lost"), std::string::npos) << c_log.substr(0, 4000);
  // No password in any agent's log.
  for (const char* log : {"a.log", "a2.log", "a3.log", "b.log", "c.log"}) {
    EXPECT_EQ(read_file(dir_.path() / log).find(shared_postgres().superuser_password().reveal()),
              std::string::npos)
        << log;
  }
}

TEST_P(Agents, WhenTheLeaderIsKilledAnotherLeadsInTheNextTerm) {
  auto opened = open_queue();
  ASSERT_NE(opened, nullptr);
  auto& queue = *opened;
  std::vector<BackgroundProcess> agents;
  agents.push_back(start_agent("l1"));
  agents.push_back(start_agent("l2"));
  // The leader, by member id (host:pid).
  auto leader = [&]() -> std::string {
    auto members = queue.members();
    if (!members) return "";
    for (const auto& m : *members) {
      if (m.leader && m.alive) return m.id;
    }
    return "";
  };
  auto wait_leader = [&](const std::string& not_this) {
    for (int i = 0; i < 100; ++i) {
      const std::string l = leader();
      if (!l.empty() && l != not_this) return l;
      std::this_thread::sleep_for(100ms);
    }
    return std::string();
  };
  const std::string first = wait_leader("");
  ASSERT_FALSE(first.empty());
  const auto term1 = queue.leader_terms(1);
  ASSERT_TRUE(term1 && !term1->empty());
  // Kill -9 the leader: its lease (2s) runs out and the other agent leads.
  const int pid = std::stoi(first.substr(first.rfind(':') + 1));
  BackgroundProcess* victim = nullptr;
  for (auto& a : agents) {
    if (a.pid() == pid) victim = &a;
  }
  ASSERT_NE(victim, nullptr) << first;
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(victim->signal(SIGKILL));
  const std::string second = wait_leader(first);
  ASSERT_FALSE(second.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 8s);
  const auto terms = queue.leader_terms(10);
  ASSERT_TRUE(terms && terms->size() >= 2);
  EXPECT_EQ((*terms)[0].holder, second);
  EXPECT_EQ((*terms)[0].term, term1->front().term + 1);
  for (std::size_t i = 0; i + 1 < terms->size(); ++i) {
    EXPECT_GE((*terms)[i].started_at, (*terms)[i + 1].held_until) << "term " << (*terms)[i].term;
  }
  // The members list shows the dead one as not alive once its lease is gone.
  std::this_thread::sleep_for(2500ms);
  auto members = queue.members();
  ASSERT_TRUE(members);
  for (const auto& m : *members) {
    if (m.id == first) {
      EXPECT_FALSE(m.alive);
    }
    if (m.id == second) {
      EXPECT_TRUE(m.alive && m.leader);
    }
  }
  for (auto& a : agents) {
    if (a.running()) {
      ASSERT_TRUE(a.signal(SIGTERM));
      EXPECT_TRUE(a.wait_for(20s));
    }
  }
  // SIGTERM leaves: the survivor is gone from the members.
  members = queue.members();
  ASSERT_TRUE(members);
  for (const auto& m : *members) EXPECT_NE(m.id, second);
}

// The port an agent logged ("agent listening"), once it has.
int agent_port(const fs::path& log) {
  for (int i = 0; i < 200; ++i) {
    const std::string text = read_file(log);
    const auto pos = text.find("\"msg\":\"agent listening\"");
    if (pos != std::string::npos) {
      const auto port_pos = text.find("\"port\":", pos);
      if (port_pos != std::string::npos) return std::atoi(text.c_str() + port_pos + 7);
    }
    std::this_thread::sleep_for(100ms);
  }
  return 0;
}

// The targets whose dbops_target_up series an agent exports.
std::set<std::string> exported_targets(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  std::set<std::string> out;
  auto res = client.Get("/metrics");
  if (!res) return out;
  for (const auto& line : split(res->body, '\n')) {
    if (!line.starts_with("dbops_target_up{")) continue;
    const auto pos = line.find("target=\"");
    if (pos == std::string::npos) continue;
    out.insert(line.substr(pos + 8, line.find('"', pos + 8) - pos - 8));
  }
  return out;
}

TEST_P(Agents, EveryTargetIsExportedByExactlyOneAgentAndMovesWhenItsAgentDies) {
  std::ofstream config(dir_.path() / "dbops.yaml", std::ios::trunc);
  config << "state: ${env:STATE_DSN}\n"
         << (GetParam().pgbouncer ? "state_listen: ${env:STATE_DIRECT_DSN}\n" : "")
         << "agent:\n  lease: 2s\n  poll_interval: 200ms\n  shutdown_grace: 1s\n"
            "  probe_interval: 500ms\n"
            "targets:\n";
  std::set<std::string> all;
  for (int i = 0; i < 8; ++i) {
    const std::string name = "lite-" + std::to_string(i);
    all.insert(name);
    config << "  - {name: " << name << ", engine: sqlite, path: ./" << name << ".db}\n";
    std::ofstream(dir_.path() / (name + ".db"));
  }
  config.close();
  std::vector<BackgroundProcess> agents;
  std::vector<int> ports;
  for (const char* name : {"r1", "r2", "r3"}) {
    agents.push_back(start_agent(name));
    ports.push_back(agent_port(dir_.path() / (std::string(name) + ".log")));
    ASSERT_GT(ports.back(), 0) << read_file(dir_.path() / (std::string(name) + ".log"));
  }
  // Each target in exactly one agent's /metrics, all targets covered.
  auto spread_ok = [&](const std::vector<std::size_t>& live, std::string* why) {
    std::map<std::string, int> seen;
    for (const auto i : live) {
      for (const auto& t : exported_targets(ports[i])) ++seen[t];
    }
    std::set<std::string> covered;
    for (const auto& [t, n] : seen) {
      covered.insert(t);
      if (n != 1) {
        *why = t + " exported by " + std::to_string(n) + " agents";
        return false;
      }
    }
    if (covered != all) {
      *why = std::to_string(covered.size()) + " of " + std::to_string(all.size()) +
             " targets exported";
      return false;
    }
    return true;
  };
  // On failure: what the agents warned about.
  const auto warnings = [&] {
    std::string out;
    for (const char* name : {"r1", "r2", "r3"}) {
      for (const auto& line : split(read_file(dir_.path() / (std::string(name) + ".log")), '\n')) {
        if (line.find("\"level\":\"warn") != std::string::npos ||
            line.find("\"level\":\"error") != std::string::npos) {
          out += std::string(name) + ": " + line + "\n";
        }
      }
    }
    return out.substr(0, 8000);
  };
  std::string why;
  bool ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    ok = spread_ok({0, 1, 2}, &why);
    if (!ok) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(ok) << why << "\n" << warnings();
  // With three agents, the work is shared.
  EXPECT_LT(exported_targets(ports[0]).size(), all.size());

  // kill -9 one: within its lease (2s) and a round, its targets are exported
  // by the others, still each by one.
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(agents[2].signal(SIGKILL));
  agents[2].wait_for(10s);
  ok = false;
  for (int i = 0; i < 100 && !ok; ++i) {
    ok = spread_ok({0, 1}, &why);
    if (!ok) std::this_thread::sleep_for(200ms);
  }
  ASSERT_TRUE(ok) << why << "\n" << warnings();
  EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 10s);
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(agents[i].signal(SIGTERM));
    EXPECT_TRUE(agents[i].wait_for(20s));
  }
}

// Two real agents share a schedule that fires every minute; the leader is
// killed with -9 between two fire times. Every fire time from the first to
// the last is enqueued exactly once (no gap across the change of leader),
// and each ran once. Direct connection only: it takes two minutes, and the
// PgBouncer route runs the same code.
class AgentSchedules : public Agents {};
INSTANTIATE_TEST_SUITE_P(Direct, AgentSchedules, ::testing::Values(Route{.name = "direct"}),
                         [](const auto& info) { return info.param.name; });

TEST_P(AgentSchedules, TwoAgentsEnqueueEveryTickOnceAcrossALeaderKill) {
  write_config(
      "schedules:\n  - name: every-minute\n    cron: '* * * * *'\n    kind: command\n"
      "    target: pg\n    params:\n      argv: [psql, -X, -q, -c, 'INSERT INTO effects (job) "
      "VALUES (1)']\n");
  auto queue = open_queue();
  ASSERT_NE(queue, nullptr);
  std::vector<BackgroundProcess> agents;
  agents.push_back(start_agent("s1"));
  agents.push_back(start_agent("s2"));
  const auto ticks = [&] {
    std::vector<store::QueuedJob> out;
    if (auto jobs = queue->list({.limit = 100})) {
      for (const auto& j : *jobs) {
        if (j.spec.idempotency_key.starts_with("schedule:every-minute:")) out.push_back(j);
      }
    }
    return out;
  };
  const auto wait_ticks = [&](std::size_t n) {
    for (int i = 0; i < 1500; ++i) {
      if (ticks().size() >= n) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  };
  ASSERT_TRUE(wait_ticks(1)) << read_file(dir_.path() / "s1.log");
  // Kill the leader: the other one leads in the next term and goes on with
  // the schedule from the newest tick in the queue.
  std::string leader;
  if (auto members = queue->members()) {
    for (const auto& m : *members) {
      if (m.leader && m.alive) leader = m.id;
    }
  }
  ASSERT_FALSE(leader.empty());
  const int pid = std::stoi(leader.substr(leader.rfind(':') + 1));
  for (auto& a : agents) {
    if (a.pid() == pid) {
      ASSERT_TRUE(a.signal(SIGKILL));
      a.wait_for(10s);
    }
  }
  ASSERT_TRUE(wait_ticks(2)) << read_file(dir_.path() / "s2.log");
  // Every minute from the first tick to the last is there, once.
  auto jobs = ticks();
  std::set<std::string> keys;
  for (const auto& j : jobs) EXPECT_TRUE(keys.insert(j.spec.idempotency_key).second);
  ASSERT_GE(keys.size(), 2U);
  std::vector<std::chrono::system_clock::time_point> fire_times;
  for (const auto& j : jobs) fire_times.push_back(j.run_at);
  std::sort(fire_times.begin(), fire_times.end());
  for (std::size_t i = 1; i < fire_times.size(); ++i) {
    EXPECT_EQ(fire_times[i] - fire_times[i - 1], std::chrono::minutes(1)) << "a tick was skipped";
  }
  // Each ran (the command inserts a row per run): once, or once more when the
  // killed leader was running it (at-least-once: never more than its
  // attempts).
  for (int i = 0; i < 300; ++i) {
    bool all_done = true;
    for (const auto& j : ticks()) all_done = all_done && store::job_state_final(j.state);
    if (all_done) break;
    std::this_thread::sleep_for(100ms);
  }
  int attempts = 0;
  for (const auto& j : ticks()) {
    EXPECT_EQ(j.state, store::JobState::kSucceeded) << j.last_error;
    attempts += j.attempt;
  }
  const std::string rows =
      must(psql(shared_postgres(), "SELECT count(*) FROM effects", 30s, "agents_effects"));
  EXPECT_GE(std::stoul(rows), ticks().size());
  EXPECT_LE(std::stoi(rows), attempts);
  for (auto& a : agents) {
    if (a.running()) {
      ASSERT_TRUE(a.signal(SIGTERM));
      EXPECT_TRUE(a.wait_for(20s));
    }
  }
}

// A workflow run through the queue: its tasks are jobs of their own, which
// any agent runs. The agent running the workflow itself is killed with -9
// while its second task runs; the run's lease passes, another agent claims
// it and goes on where it was: the first task is not run again.
TEST_P(Agents, AWorkflowRunOutlivesItsAgent) {
  // Each task inserts its number; the second sleeps, so that it is running
  // when the kill comes. A task whose agent dies has used an attempt: one
  // retry lets it run again when the killed agent was running it.
  const auto task = [](int n, const std::string& depends, const std::string& then) {
    return "      - name: t" + std::to_string(n) +
           "\n        kind: command\n        target: pg\n        retries: 1\n" +
           (depends.empty() ? "" : "        depends_on: [" + depends + "]\n") +
           "        params:\n          argv: [sh, -c, 'psql -X -q -c \"INSERT INTO effects (job) "
           "VALUES (" +
           std::to_string(n) + ")\"" + then + "']\n";
  };
  write_config("workflows:\n  - name: chain\n    tasks:\n" + task(1, "", "") +
               task(2, "t1", " && sleep 4") + task(3, "t2", ""));
  auto queue = open_queue();
  ASSERT_NE(queue, nullptr);
  std::vector<BackgroundProcess> agents;
  agents.push_back(start_agent("w1"));
  agents.push_back(start_agent("w2"));

  // Queued from the command line, as a user would.
  const auto enqueued = run_dbops({"--config", (dir_.path() / "dbops.yaml").string(), "--output",
                                   "json", "workflow", "run", "chain", "--enqueue"},
                                  dir_.path(), env());
  ASSERT_EQ(enqueued.exit_code, 0) << enqueued.stdout_text << enqueued.stderr_text;
  const auto id = nlohmann::json::parse(enqueued.stdout_text).at("id").get<std::int64_t>();
  const std::string key = "queue:" + std::to_string(id);

  // Wait for t2 to run, then kill the agent that holds the workflow run.
  std::string owner;
  for (int i = 0; i < 300 && owner.empty(); ++i) {
    auto t2 = queue->list({.state = store::JobState::kRunning, .limit = 100});
    if (t2) {
      for (const auto& j : *t2) {
        if (j.spec.idempotency_key != "task:" + key + "/t2") continue;
        auto run = queue->get(id);
        if (run && *run && (*run)->state == store::JobState::kRunning) owner = (*run)->lease_owner;
      }
    }
    if (owner.empty()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(owner.empty()) << read_file(dir_.path() / "w1.log");
  const int pid = std::stoi(owner.substr(owner.rfind(':') + 1));
  BackgroundProcess* victim = nullptr;
  for (auto& a : agents) {
    if (a.pid() == pid) victim = &a;
  }
  ASSERT_NE(victim, nullptr) << owner;
  ASSERT_TRUE(victim->signal(SIGKILL));
  victim->wait_for(10s);

  // The other agent finishes the run.
  std::optional<store::QueuedJob> run;
  for (int i = 0; i < 600; ++i) {
    auto got = queue->get(id);
    if (got && *got && store::job_state_final((*got)->state)) {
      run = **got;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(run) << read_file(dir_.path() / "w2.log");
  EXPECT_EQ(run->state, store::JobState::kSucceeded) << run->last_error;
  EXPECT_EQ(run->attempt, 2);  // the killed attempt, then the one that finished
  auto executions = executions_per_job();
  EXPECT_EQ(executions[1], 1);  // succeeded before the kill: not run again
  EXPECT_GE(executions[2], 1);  // again only if the killed agent was running it
  EXPECT_EQ(executions[3], 1);

  // `dbops workflow show` by the job's id: every task succeeded.
  const auto shown = run_dbops({"--config", (dir_.path() / "dbops.yaml").string(), "--output",
                                "json", "workflow", "show", std::to_string(id)},
                               dir_.path(), env());
  ASSERT_EQ(shown.exit_code, 0) << shown.stderr_text;
  const auto status = nlohmann::json::parse(shown.stdout_text);
  EXPECT_EQ(status.at("state"), "succeeded");
  EXPECT_EQ(status.at("run_key"), key);
  ASSERT_EQ(status.at("tasks").size(), 3U);
  for (const auto& t : status.at("tasks")) EXPECT_EQ(t.at("state"), "succeeded") << t.dump();
  for (auto& a : agents) {
    if (a.running()) {
      ASSERT_TRUE(a.signal(SIGTERM));
      EXPECT_TRUE(a.wait_for(20s));
    }
  }
}

}  // namespace
}  // namespace dbops::testing
