// Publishing probe rounds as metric series: engine-specific families, info
// labels that follow version and role, and series of targets no longer probed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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

// The registry keeps a series' label values packed into one string: values
// that contain the packing's own bytes, or are prefixes of one another, come
// back out unchanged, in order, and are removed by value.
TEST(ProbePublish, LabelValuesSurviveThePackedSeriesKeys) {
  obs::Registry registry;
  auto& g = registry.gauge("g", "h", {"target", "engine"});
  const std::string nul("x\0y", 3);
  const std::string soh("x\x01y", 3);
  g.set({"ab", "postgres"}, 1);
  g.set({"a", "redis"}, 2);
  g.set({nul, "postgres"}, 3);
  g.set({soh, "postgres"}, 4);
  g.set({"q\"uote", "postgres"}, 5);
  EXPECT_EQ(g.value({"a", "redis"}), 2);
  EXPECT_EQ(g.value({nul, "postgres"}), 3);
  EXPECT_EQ(g.value({soh, "postgres"}), 4);
  EXPECT_FALSE(g.has({"x", "postgres"}));
  EXPECT_EQ(registry.expose(),
            "# HELP g h\n# TYPE g gauge\n"
            "g{target=\"a\",engine=\"redis\"} 2\n"
            "g{target=\"ab\",engine=\"postgres\"} 1\n"
            "g{target=\"q\\\"uote\",engine=\"postgres\"} 5\n"
            "g{target=\"" +
                nul +
                "\",engine=\"postgres\"} 3\n"
                "g{target=\"" +
                soh + "\",engine=\"postgres\"} 4\n");
  g.remove_where("target", nul);
  g.remove_where("engine", "redis");
  EXPECT_FALSE(g.has({nul, "postgres"}));
  EXPECT_FALSE(g.has({"a", "redis"}));
  EXPECT_TRUE(g.has({soh, "postgres"}));
  EXPECT_TRUE(g.has({"ab", "postgres"}));
  auto& h = registry.histogram("d", "h", {"target"}, {1});
  h.observe({"a"}, 0.5);
  h.observe({"a"}, 2);
  EXPECT_NE(registry.expose().find("d_bucket{target=\"a\",le=\"1\"} 1\n"
                                   "d_bucket{target=\"a\",le=\"+Inf\"} 2\n"
                                   "d_sum{target=\"a\"} 2.5\nd_count{target=\"a\"} 2\n"),
            std::string::npos)
      << registry.expose();
}

// The streamed exposition is the same text, one family per piece, and the
// writer runs without the registry's locks: a probe round may publish while
// a slow scraper reads.
TEST(ProbePublish, StreamedExpositionIsTheSameTextAFamilyAtATime) {
  FakeClock clock;
  Prober prober(config::ProbeConfig{}, clock);
  obs::Registry registry;
  prober.publish(
      RoundResult{.targets = {up("a", "15.1", "primary", 100), up("b", "15.1", "replica", 7)}},
      registry);
  const std::string whole = registry.expose();
  std::string streamed;
  int pieces = 0;
  auto& up_family = *registry.find("dbops_target_up");
  registry.expose([&](std::string_view piece) {
    EXPECT_TRUE(piece.starts_with("# HELP ")) << piece;
    streamed += piece;
    ++pieces;
    up_family.set({"a", "postgres"}, 1);  // would deadlock under the family's lock
  });
  EXPECT_EQ(streamed, whole);
  EXPECT_GT(pieces, 10);
}

// Fields a probe carried over from an earlier round are named in the JSON
// with their age; a target that read everything has no such key.
TEST(ProbeJson, CarriedFieldsAreNamedWithTheirAge) {
  TargetResult carried = up("a", "15.1", "primary", 100);
  carried.sample->carried_seconds = {{"database_size_bytes", 42.5}, {"xid_age", 42.5}};
  const TargetResult fresh = up("b", "15.1", "primary", 100);
  const auto j = nlohmann::json::parse(to_json(RoundResult{.targets = {carried, fresh}}));
  ASSERT_EQ(j["targets"].size(), 2u);
  EXPECT_EQ(j["targets"][0]["carried_over_seconds"]["database_size_bytes"], 42.5);
  EXPECT_EQ(j["targets"][0]["carried_over_seconds"]["xid_age"], 42.5);
  EXPECT_FALSE(j["targets"][1].contains("carried_over_seconds"));
}

}  // namespace
}  // namespace dbops::ops::probe
