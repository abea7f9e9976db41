// Publishing probe rounds as metric series: engine-specific families, info
// labels that follow version and role, and series of targets no longer probed.
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "obs/metrics.hpp"
#include "ops/probe/probe.hpp"

namespace dbops::ops::probe {
namespace {

TargetResult up(std::string target, std::string version, std::string role, double wal) {
  TargetResult t;
  t.target = std::move(target);
  t.engine = "postgres";
  t.status = Status::kUp;
  engine::ProbeSample s;
  s.server_version = std::move(version);
  s.role = std::move(role);
  s.metrics.push_back({.name = "wal_bytes",
                       .value = wal,
                       .kind = engine::ProbeMetric::Kind::kCounter,
                       .help = "WAL written."});
  s.metrics.push_back({.name = "xid_age", .value = 5, .help = "Oldest xid age."});
  t.sample = std::move(s);
  t.rates["wal_bytes"] = 10;
  return t;
}

TEST(ProbePublish, EngineSeriesInfoAndGoneTargets) {
  FakeClock clock;
  Prober prober(config::ProbeConfig{}, clock);
  obs::Registry registry;

  prober.publish(RoundResult{.targets = {up("a", "15.1", "primary", 100)}}, registry);
  EXPECT_EQ(registry.find("dbops_postgres_wal_bytes_total")->value({"a", "postgres"}), 100);
  EXPECT_EQ(registry.find("dbops_postgres_wal_bytes_per_second")->value({"a", "postgres"}), 10);
  EXPECT_EQ(registry.find("dbops_postgres_xid_age")->value({"a", "postgres"}), 5);
  auto* info = registry.find("dbops_target_info");
  EXPECT_TRUE(info->has({"a", "postgres", "15.1", "primary"}));

  // A promoted, upgraded target: one info series, with the new labels.
  prober.publish(RoundResult{.targets = {up("a", "15.2", "replica", 200)}}, registry);
  EXPECT_FALSE(info->has({"a", "postgres", "15.1", "primary"}));
  EXPECT_TRUE(info->has({"a", "postgres", "15.2", "replica"}));
  EXPECT_EQ(registry.find("dbops_postgres_wal_bytes_total")->value({"a", "postgres"}), 200);

  // `a` is no longer probed here: every series of it goes, engine ones too.
  prober.publish(RoundResult{.targets = {up("b", "15.2", "primary", 1)}}, registry);
  for (const char* family :
       {"dbops_postgres_wal_bytes_total", "dbops_postgres_wal_bytes_per_second",
        "dbops_postgres_xid_age", "dbops_target_up"}) {
    EXPECT_FALSE(registry.find(family)->has({"a", "postgres"})) << family;
    EXPECT_TRUE(registry.find(family)->has({"b", "postgres"})) << family;
  }
  EXPECT_FALSE(info->has({"a", "postgres", "15.2", "replica"}));
  const std::string text = registry.expose();
  EXPECT_EQ(text.find("target=\"a\""), std::string::npos) << text;
}

}  // namespace
}  // namespace dbops::ops::probe
