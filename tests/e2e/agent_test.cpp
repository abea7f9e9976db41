// The agent run as a user would: its /metrics pass promtool, and a real
// Prometheus scrapes it and answers a query about dbops_target_up.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/background_process.hpp"
#include "core/subprocess.hpp"
#include "engine/sqlite/sqlite_session.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

using namespace std::chrono_literals;

// Polls `fn` until it returns true or `limit` passes.
template <typename Fn>
bool eventually(std::chrono::milliseconds limit, Fn&& fn) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (fn()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return fn();
}

class Agent : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = engine::sqlite::open((dir_ / "local.db").string(), {.create = true});
    ASSERT_TRUE(db) << db.error().to_string();
    ASSERT_TRUE((*db)->exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)"));
    dir_.write("dbops.yaml", R"(state: ./state.db
repository:
  path: ./repo
agent:
  probe_interval: 1s
  poll_interval: 100ms
  shutdown_grace: 1s
  token: test-token-0123456789abcdef
probe:
  connect_timeout: 2s
targets:
  - {name: local, engine: sqlite, path: ./local.db}
  - {name: gone, engine: redis, host: 127.0.0.1, port: 9}
workflows:
  - name: nightly
    tasks:
      - {name: backup, kind: backup, target: local}
      - {name: verify, kind: backup.verify, target: local, depends_on: [backup]}
      - {name: drill, kind: drill, target: local, depends_on: [verify]}
      - {name: broken, kind: command, target: local, params: {argv: [sh, -c, 'exit 3']}}
      - {name: after-broken, kind: check, target: local, depends_on: [broken]}
)");
    // A backup and a drill run from "cron": the agent's gauges come from the
    // store, so they show up too.
    for (const auto& args : {std::vector<std::string>{"backup", "run", "--target", "local"},
                             std::vector<std::string>{"drill", "--target", "local"}}) {
      const auto r = run_dbops(args, dir_.path());
      ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    }
    BackgroundOptions options;
    options.argv = {dbops_binary(), "--config", (dir_ / "dbops.yaml").string(),
                    "agent",        "--listen", "127.0.0.1:0"};
    options.output_file = dir_ / "agent.log";
    options.parent_death_signal = SIGKILL;
    auto agent = BackgroundProcess::spawn(options);
    ASSERT_TRUE(agent) << agent.error().to_string();
    agent_ = std::move(*agent);
    // The agent logs the port the kernel gave it.
    ASSERT_TRUE(eventually(20s, [&] {
      const std::string log = read_file(dir_ / "agent.log");
      const auto pos = log.find("\"msg\":\"agent listening\"");
      if (pos == std::string::npos) return false;
      const auto port_pos = log.find("\"port\":", pos);
      port_ = std::atoi(log.c_str() + port_pos + 7);
      return port_ > 0;
    })) << read_file(dir_ / "agent.log");
  }

  void TearDown() override {
    if (agent_.running()) agent_.stop(SIGKILL, 1s);
  }

  std::string get(const std::string& path, int* status = nullptr) {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(2);
    client.set_read_timeout(5);
    auto res = client.Get(path.c_str());
    if (status) *status = res ? res->status : 0;
    return res ? res->body : "";
  }

  httplib::Result post(const std::string& path, const std::string& body,
                       const std::string& token = "test-token-0123456789abcdef") {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(2);
    client.set_read_timeout(5);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client.Post(path.c_str(), headers, body, "application/json");
  }

  TempDir dir_;
  BackgroundProcess agent_;
  int port_ = 0;
};

TEST_F(Agent, MetricsPassPromtoolAndPrometheusScrapesThem) {
  // Ready once the first round completed.
  ASSERT_TRUE(eventually(20s, [&] {
    int status = 0;
    get("/readyz", &status);
    return status == 200;
  })) << read_file(dir_ / "agent.log");
  int health = 0;
  EXPECT_EQ(get("/healthz", &health), "ok\n");
  EXPECT_EQ(health, 200);

  const std::string metrics = get("/metrics");
  EXPECT_NE(metrics.find("dbops_target_up{target=\"local\",engine=\"sqlite\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("dbops_target_up{target=\"gone\",engine=\"redis\"} 0"), std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find(
          "dbops_probe_duration_seconds_bucket{target=\"local\",engine=\"sqlite\",le=\"+Inf\"}"),
      std::string::npos);
  for (const char* series : {"dbops_backup_last_success_timestamp_seconds{target=\"local\"}",
                             "dbops_backup_size_bytes{target=\"local\"}",
                             "dbops_backup_failures_total{target=\"gone\"} 0",
                             "dbops_drill_rto_seconds{target=\"local\"}",
                             "dbops_drill_last_success_timestamp_seconds{target=\"local\"}"}) {
    EXPECT_NE(metrics.find(series), std::string::npos) << series << "\n" << metrics;
  }

  // promtool's own checks of the exposition.
  ProcessOptions promtool;
  promtool.argv = {"promtool", "check", "metrics"};
  promtool.stdin_data = metrics;
  promtool.stdout_sink = OutputSink::capture();
  promtool.stderr_sink = OutputSink::capture();
  promtool.timeout = 30s;
  auto checked = run_process(promtool);
  ASSERT_TRUE(checked) << checked.error().to_string();
  EXPECT_EQ(checked->exit_code, 0) << checked->stdout_text << checked->stderr_text;

  // A real Prometheus scrapes the agent; bind-and-retry on its port.
  dir_.write("prometheus.yml",
             "global:\n  scrape_interval: 1s\nscrape_configs:\n"
             "  - job_name: dbops\n    static_configs:\n"
             "      - targets: ['127.0.0.1:" +
                 std::to_string(port_) + "']\n");
  std::mt19937 rng{std::random_device{}()};
  BackgroundProcess prometheus;
  int prom_port = 0;
  for (int attempt = 0; attempt < 5 && !prometheus.running(); ++attempt) {
    prom_port = std::uniform_int_distribution<int>(20000, 60000)(rng);
    BackgroundOptions options;
    options.argv = {"prometheus", "--config.file=" + (dir_ / "prometheus.yml").string(),
                    "--storage.tsdb.path=" + (dir_ / "tsdb").string(),
                    "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)};
    options.output_file = dir_ / ("prometheus-" + std::to_string(attempt) + ".log");
    options.parent_death_signal = SIGKILL;
    auto spawned = BackgroundProcess::spawn(options);
    ASSERT_TRUE(spawned) << spawned.error().to_string();
    prometheus = std::move(*spawned);
    eventually(10s, [&] {
      const std::string log = read_file(options.output_file);
      return !prometheus.running() ||
             log.find("Server is ready to receive web requests") != std::string::npos;
    });
  }
  ASSERT_TRUE(prometheus.running()) << "prometheus did not start";
  httplib::Client api("127.0.0.1", prom_port);
  api.set_read_timeout(5);
  std::string last;
  const bool seen = eventually(30s, [&] {
    auto res = api.Get("/api/v1/query?query=dbops_target_up%7Btarget%3D%22local%22%7D");
    if (!res || res->status != 200) return false;
    last = res->body;
    const auto j = nlohmann::json::parse(res->body, nullptr, false);
    if (j.is_discarded() || j["data"]["result"].empty()) return false;
    return j["data"]["result"][0]["value"][1] == "1";
  });
  EXPECT_TRUE(seen) << "last answer: " << last;
  prometheus.stop(SIGTERM, 5s);

  // SIGTERM: a clean exit 0.
  ASSERT_TRUE(agent_.signal(SIGTERM));
  ASSERT_TRUE(agent_.wait_for(15s)) << read_file(dir_ / "agent.log");
  ASSERT_TRUE(agent_.wait_status());
  EXPECT_TRUE(WIFEXITED(*agent_.wait_status()) && WEXITSTATUS(*agent_.wait_status()) == 0)
      << agent_.describe();
  EXPECT_NE(read_file(dir_ / "agent.log").find("agent stopping"), std::string::npos);
}

TEST_F(Agent, RunsQueuedJobsAndGivesBackWhatSigtermInterrupts) {
  auto enqueue = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--output", "json", "jobs", "enqueue"});
    const auto r = run_dbops(args, dir_.path());
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
    return j.is_array() && !j.empty() ? j[0].value("id", 0) : 0;
  };
  auto state_of = [&](int id) {
    const auto r = run_dbops({"--output", "json", "jobs", "show", std::to_string(id)}, dir_.path());
    const auto j = nlohmann::json::parse(r.stdout_text, nullptr, false);
    return j.is_object() ? j : nlohmann::json::object();
  };
  const int backup = enqueue({"backup", "--target", "local", "--idempotency-key", "b1"});
  EXPECT_EQ(enqueue({"backup", "--target", "local", "--idempotency-key", "b1"}), backup);
  const int check = enqueue({"check", "--target", "local"});
  const int slow = enqueue({"command", "--target", "local", "--", "sleep", "60"});
  ASSERT_GT(backup * check * slow, 0);
  EXPECT_TRUE(eventually(30s,
                         [&] {
                           return state_of(backup).value("state", "") == "succeeded" &&
                                  state_of(check).value("state", "") == "succeeded" &&
                                  state_of(slow).value("state", "") == "running";
                         }))
      << state_of(backup).dump() << state_of(slow).dump() << read_file(dir_ / "agent.log");
  EXPECT_EQ(state_of(backup).value("exclusive", false), true);
  EXPECT_TRUE(eventually(5s, [&] {
    return get("/metrics").find("dbops_queue_jobs{state=\"succeeded\"} 2") != std::string::npos;
  })) << get("/metrics");

  // SIGTERM: the grace (1s) passes, the command is stopped and its job given
  // back without counting the attempt.
  const auto stopped_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(agent_.signal(SIGTERM));
  ASSERT_TRUE(agent_.wait_for(20s));
  EXPECT_EQ(agent_.describe(), "exited 0");
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 15s);
  const auto j = state_of(slow);
  EXPECT_EQ(j.value("state", ""), "available") << j.dump();
  EXPECT_EQ(j.value("attempt", -1), 0) << j.dump();
}

TEST_F(Agent, TheApiNeedsTheTokenToChangeAndRefusesBadInput) {
  using nlohmann::json;
  int status = 0;
  EXPECT_EQ(get("/api/v1/jobs", &status), "[]\n");
  EXPECT_EQ(status, 200);

  const std::string check = R"({"kind":"check","target":"local","idempotency_key":"api-1"})";
  auto r = post("/api/v1/jobs", check, "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = post("/api/v1/jobs", check, "test-token-0123456789abcdeX");
  EXPECT_EQ(r->status, 401);
  r = post("/api/v1/jobs", check);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  const int id = json::parse(r->body).value("id", 0);
  ASSERT_GT(id, 0);
  r = post("/api/v1/jobs", check);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body).value("id", 0), id);
  EXPECT_FALSE(json::parse(r->body).value("created", true));

  struct Bad {
    std::string body;
    int status;
    std::string says;
  };
  for (const auto& bad : std::vector<Bad>{
           {"{not json", 400, "not valid JSON"},
           {"[1,2]", 400, "JSON object"},
           {R"({"kind":"check","target":"local","colour":"red"})", 400, "unknown field \"colour\""},
           {R"({"kind":"check","target":"local","priority":"high"})", 400, "\"priority\" must be"},
           {R"({"kind":"check","target":"local","in":"soon"})", 400, "not a duration"},
           {R"({"target":"local"})", 400, "\"kind\" is required"},
           {R"({"kind":"bakup","target":"local"})", 404, "unknown job kind"},
           {R"({"kind":"check","target":"nowhere"})", 404, "unknown target"},
           {R"({"kind":"check"})", 400, "needs a target"},
           {R"({"kind":"check","target":"local","params":{"x":1}})", 400, "x"},
       }) {
    SCOPED_TRACE(bad.body);
    r = post("/api/v1/jobs", bad.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, bad.status) << r->body;
    const auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_NE(j.value("error", "").find(bad.says), std::string::npos) << r->body;
  }
  r = post("/api/v1/jobs", std::string(100 * 1024, ' '));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;

  EXPECT_TRUE(eventually(20s, [&] {
    const auto j = json::parse(get("/api/v1/jobs/" + std::to_string(id)), nullptr, false);
    return j.is_object() && j.value("state", "") == "succeeded";
  })) << get("/api/v1/jobs/" + std::to_string(id));
  const auto listed = json::parse(get("/api/v1/jobs?state=succeeded"));
  ASSERT_EQ(listed.size(), 1U);
  get("/api/v1/jobs?state=sleeping", &status);
  EXPECT_EQ(status, 400);
  get("/api/v1/jobs/abc", &status);
  EXPECT_EQ(status, 400);
  get("/api/v1/jobs/999999", &status);
  EXPECT_EQ(status, 404);
  EXPECT_NE(get("/api/v1/nothing", &status).find("no such endpoint"), std::string::npos);
  EXPECT_EQ(status, 404);

  r = post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "", "");
  EXPECT_EQ(r->status, 401);
  r = post("/api/v1/jobs/" + std::to_string(id) + "/cancel", "");
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(json::parse(r->body).value("cancelled", true)) << r->body;
  r = post("/api/v1/jobs/424242/cancel", "");
  EXPECT_EQ(r->status, 404) << r->body;

  const auto members = json::parse(get("/api/v1/members"));
  ASSERT_EQ(members.size(), 1U);
  EXPECT_FALSE(members[0].value("id", "").empty());

  ASSERT_TRUE(agent_.signal(SIGTERM));
  ASSERT_TRUE(agent_.wait_for(15s));
  EXPECT_EQ(read_file(dir_ / "agent.log").find("test-token-0123456789abcde"), std::string::npos);
}

// A workflow run started over the API: auth, bad input, the run's tasks as
// queued jobs, and its state through the API and `dbops workflow show`.
TEST_F(Agent, WorkflowsRunOverTheApi) {
  using nlohmann::json;
  int status = 0;
  const auto listed = json::parse(get("/api/v1/workflows", &status));
  EXPECT_EQ(status, 200);
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_EQ(listed[0].value("name", ""), "nightly");
  EXPECT_EQ(listed[0].value("trigger", ""), "manual");
  EXPECT_EQ(listed[0].at("tasks").size(), 5U);
  EXPECT_TRUE(listed[0].at("last_run").is_null());

  auto r = post("/api/v1/workflows/nightly/runs", "", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = post("/api/v1/workflows/nightlyy/runs", "");
  EXPECT_EQ(r->status, 404) << r->body;
  r = post("/api/v1/workflows/nightly/runs", R"({"key":"x"})");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(json::parse(r->body).value("error", "").find("unknown field \"key\""),
            std::string::npos)
      << r->body;
  r = post("/api/v1/workflows/nightly/runs", R"({"idempotency_key":"nightly-api-1"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  const auto id = json::parse(r->body).value("id", 0);
  ASSERT_GT(id, 0);
  r = post("/api/v1/workflows/nightly/runs", R"({"idempotency_key":"nightly-api-1"})");
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body).value("id", 0), id);

  // The run ends check_failed: the broken branch failed (and skipped its
  // dependent), the backup branch went through.
  json runs;
  ASSERT_TRUE(eventually(
      60s,
      [&] {
        runs = json::parse(get("/api/v1/workflows/nightly/runs"), nullptr, false);
        return runs.is_array() && !runs.empty() && runs[0].value("state", "") != "running";
      }))
      << get("/api/v1/workflows/nightly/runs") << read_file(dir_ / "agent.log");
  const auto& run = runs[0];
  EXPECT_EQ(run.value("state", ""), "check_failed") << run.dump();
  EXPECT_EQ(run.value("run_key", ""), "nightly-api-1");
  std::map<std::string, std::string> states;
  for (const auto& t : run.at("tasks")) states[t.value("name", "")] = t.value("state", "");
  EXPECT_EQ(states["backup"], "succeeded") << run.dump();
  EXPECT_EQ(states["verify"], "succeeded");
  EXPECT_EQ(states["drill"], "succeeded");
  EXPECT_NE(states["broken"], "succeeded");
  EXPECT_EQ(states["after-broken"], "skipped");
  // Each task was a queued job of its own, keyed under the run.
  const auto jobs = json::parse(get("/api/v1/jobs?limit=100"));
  int task_jobs = 0;
  for (const auto& j : jobs) {
    if (j.value("idempotency_key", "").starts_with("task:nightly-api-1/")) ++task_jobs;
  }
  EXPECT_EQ(task_jobs, 4);  // after-broken never ran
  const auto last = json::parse(get("/api/v1/workflows"));
  EXPECT_EQ(last[0].at("last_run").value("run_id", ""), run.value("run_id", ""));

  // The command line shows the same run, by the job's id.
  const auto shown = run_dbops({"workflow", "show", std::to_string(id)}, dir_.path());
  EXPECT_EQ(shown.exit_code, 0) << shown.stderr_text;
  EXPECT_NE(shown.stdout_text.find("after-broken"), std::string::npos) << shown.stdout_text;
  EXPECT_NE(shown.stdout_text.find("skipped"), std::string::npos) << shown.stdout_text;
  get("/api/v1/workflows/nope/runs", &status);
  EXPECT_EQ(status, 404);
}

TEST_F(Agent, SigintAlsoStopsIt) {
  ASSERT_TRUE(agent_.signal(SIGINT));
  ASSERT_TRUE(agent_.wait_for(15s));
  EXPECT_EQ(agent_.describe(), "exited 0");
}

}  // namespace
}  // namespace dbops::testing
