// Probe rounds across engines on real servers: hung targets are reported
// unreachable within their deadline while the others report normally;
// connections are reused and rates derived between rounds; a target that keeps
// failing trips its breaker and is reported as not probed; `dbops probe` exits
// 3 when a selected target is unreachable.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "core/clock.hpp"
#include "obs/metrics.hpp"
#include "ops/probe/probe.hpp"
#include "support/instances.hpp"
#include "support/net.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

using namespace std::chrono_literals;
using ops::probe::Status;

config::Target named(config::Target t, std::string name) {
  t.name = std::move(name);
  return t;
}

const ops::probe::TargetResult& find(const ops::probe::RoundResult& r, std::string_view name) {
  for (const auto& t : r.targets) {
    if (t.target == name) return t;
  }
  throw std::runtime_error("no result for " + std::string(name));
}

TEST(ProbeRound, HungTargetsTimeOutWhileOthersReport) {
  auto frozen = engine::launcher::start_postgres();
  ASSERT_TRUE(frozen) << frozen.error().to_string();
  SilentListener silent;

  std::vector<config::Target> targets = {
      named(shared_postgres().target("pg"), "pg"),
      named(shared_mariadb().target("maria"), "maria"),
      named(shared_redis().target("cache"), "cache"),
      named((*frozen)->target("frozen"), "frozen"),
  };
  config::Target hang = shared_postgres().target("silent");
  hang.port = silent.port();
  targets.push_back(hang);
  std::vector<const config::Target*> selection;
  for (const auto& t : targets) selection.push_back(&t);

  config::ProbeConfig cfg;
  cfg.connect_timeout = 1500ms;
  cfg.query_timeout = 1500ms;
  cfg.breaker_failures = 2;
  cfg.breaker_open = 60s;
  ops::probe::Prober prober(cfg, real_clock());

  // Round 1: the frozen server is frozen only now, so its connection is new.
  ASSERT_TRUE((*frozen)->pause());
  const auto r1 = prober.round(selection);
  for (const char* up : {"pg", "maria", "cache"}) {
    EXPECT_EQ(find(r1, up).status, Status::kUp) << up << ": " << find(r1, up).error;
    EXPECT_FALSE(find(r1, up).reused_connection);
  }
  for (const char* down : {"frozen", "silent"}) {
    const auto& t = find(r1, down);
    EXPECT_EQ(t.status, Status::kDown) << down;
    EXPECT_EQ(t.error_code, ErrorCode::kTimeout) << down << ": " << t.error;
    EXPECT_LT(t.duration_seconds, 1.5 + 3.0) << down << " took too long";
  }
  EXPECT_LT(r1.duration_seconds, 8.0);
  EXPECT_EQ(find(r1, "pg").sample->role, "primary");
  // Every answering target has a round-trip time: PostgreSQL's probe measures
  // its own, the others get a ping. New sessions read every field.
  for (const char* up : {"pg", "maria", "cache"}) {
    EXPECT_TRUE(find(r1, up).rtt_seconds.has_value()) << up;
    EXPECT_TRUE(find(r1, up).sample->carried_seconds.empty()) << up;
  }
  EXPECT_EQ(
      nlohmann::json::parse(ops::probe::to_json(r1))["targets"][0].count("carried_over_seconds"),
      0u);

  // Some writes, so that round 2 sees counters move.
  ASSERT_TRUE(psql(shared_postgres(),
                   "CREATE TABLE IF NOT EXISTS probe_round (x int); "
                   "INSERT INTO probe_round SELECT generate_series(1, 1000)"));
  std::this_thread::sleep_for(200ms);

  // Round 2: connections reused, rates derived; the hung targets fail again.
  const auto r2 = prober.round(selection);
  for (const char* up : {"pg", "maria", "cache"}) {
    EXPECT_EQ(find(r2, up).status, Status::kUp) << up;
    EXPECT_TRUE(find(r2, up).reused_connection) << up;
    EXPECT_FALSE(find(r2, up).connect_seconds.has_value());
  }
  const auto& pg2 = find(r2, "pg");
  ASSERT_TRUE(pg2.rates.contains("wal_bytes")) << "no WAL rate in round 2";
  EXPECT_GT(pg2.rates.at("wal_bytes"), 0);
  // The agent's rounds carry PostgreSQL's slow fields over on a reused
  // session, and the JSON names them with their age.
  EXPECT_TRUE(pg2.sample->carried_seconds.contains("database_size_bytes"));
  EXPECT_EQ(pg2.sample->database_size_bytes, find(r1, "pg").sample->database_size_bytes);
  EXPECT_TRUE(pg2.rtt_seconds.has_value());
  const auto j2 = nlohmann::json::parse(ops::probe::to_json(r2));
  bool named = false;
  for (const auto& t : j2["targets"]) {
    if (t["target"] == "pg") named = t["carried_over_seconds"].contains("database_size_bytes");
  }
  EXPECT_TRUE(named) << j2.dump();
  EXPECT_FALSE(r2.first_round);
  EXPECT_EQ(find(r2, "frozen").status, Status::kDown);

  // Round 3: two failures in a row opened their breakers.
  const auto r3 = prober.round(selection);
  EXPECT_EQ(find(r3, "frozen").status, Status::kNotProbed);
  EXPECT_EQ(find(r3, "silent").status, Status::kNotProbed);
  EXPECT_LT(find(r3, "silent").duration_seconds, 0.5);
  EXPECT_EQ(find(r3, "pg").status, Status::kUp);

  // Published series: up for answering targets, absent for not probed ones.
  obs::Registry registry;
  prober.publish(r3, registry);
  auto* up = registry.find("dbops_target_up");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->value({"pg", "postgres"}), 1);
  EXPECT_EQ(up->value({"cache", "redis"}), 1);
  EXPECT_FALSE(up->has({"frozen", "postgres"}));
  EXPECT_EQ(registry.find("dbops_target_circuit_open")->value({"frozen", "postgres"}), 1);
  const std::string text = registry.expose();
  EXPECT_NE(
      text.find(
          "dbops_probes_total{target=\"silent\",engine=\"postgres\",result=\"not_probed\"} 1"),
      std::string::npos)
      << text;

  ASSERT_TRUE((*frozen)->resume());
}

TEST(ProbeRound, CliExitCodesAndJson) {
  TempDir dir;
  const auto pg = shared_postgres().target("pg");
  const auto redis = shared_redis().target("cache");
  dir.write("dbops.yaml",
            "state: ./state.db\nprobe:\n  connect_timeout: 2s\ntargets:\n"
            "  - {name: pg, engine: postgres, host: 127.0.0.1, port: " +
                std::to_string(pg.port) + ", user: " + pg.user +
                ", password: '${env:PG_PW}', database: postgres, tags: {env: it}}\n"
                "  - {name: cache, engine: redis, host: 127.0.0.1, port: " +
                std::to_string(redis.port) +
                ", password: '${env:REDIS_PW}', tags: {env: it}}\n"
                "  - {name: closed, engine: redis, host: 127.0.0.1, port: 9}\n");
  const std::vector<std::pair<std::string, std::string>> env = {
      {"PG_PW", pg.password.reveal()}, {"REDIS_PW", redis.password.reveal()}};

  auto ok = run_dbops({"--output", "json", "probe", "--tag", "env=it"}, dir.path(), env);
  EXPECT_EQ(ok.exit_code, 0) << ok.stdout_text << ok.stderr_text;
  const auto j = nlohmann::json::parse(ok.stdout_text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << ok.stdout_text;
  ASSERT_EQ(j["targets"].size(), 2u);
  for (const auto& t : j["targets"]) {
    EXPECT_EQ(t["status"], "up") << t.dump();
    EXPECT_TRUE(t.contains("version"));
    EXPECT_TRUE(t["unavailable"].contains("wal_bytes_per_second") ||
                t["unavailable"].contains("evicted_keys_per_second"))
        << "a one-shot probe names the rates it cannot give: " << t["unavailable"].dump();
  }
  EXPECT_EQ(ok.stdout_text.find(pg.password.reveal()), std::string::npos);

  auto table = run_dbops({"probe"}, dir.path(), env);
  EXPECT_EQ(table.exit_code, 3) << table.stdout_text << table.stderr_text;
  EXPECT_NE(table.stdout_text.find("closed"), std::string::npos);
  EXPECT_NE(table.stdout_text.find("down"), std::string::npos);
  EXPECT_NE(table.stdout_text.find("error: closed"), std::string::npos) << table.stdout_text;
  EXPECT_NE(table.stdout_text.find("note: rates"), std::string::npos) << table.stdout_text;
}

}  // namespace
}  // namespace dbops::testing
