#include "obs/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace dbops::obs {
namespace {

TEST(Metrics, CounterAndGaugeExposition) {
  Registry r;
  auto& probes = r.counter("dbops_probes_total", "Probes by result.", {"target", "result"});
  auto& up = r.gauge("dbops_target_up", "1 when the target answered.", {"target"});
  probes.add({"pg-main", "ok"});
  probes.add({"pg-main", "ok"}, 2);
  probes.add({"pg-main", "ok"}, -5);  // counters never go down
  up.set({"pg-main"}, 1);
  up.set({"cache"}, 0);
  EXPECT_EQ(r.expose(),
            "# HELP dbops_probes_total Probes by result.\n"
            "# TYPE dbops_probes_total counter\n"
            "dbops_probes_total{target=\"pg-main\",result=\"ok\"} 3\n"
            "# HELP dbops_target_up 1 when the target answered.\n"
            "# TYPE dbops_target_up gauge\n"
            "dbops_target_up{target=\"cache\"} 0\n"
            "dbops_target_up{target=\"pg-main\"} 1\n");
}

TEST(Metrics, HistogramHasCumulativeBucketsInfSumAndCount) {
  Registry r;
  auto& h = r.histogram("dbops_probe_duration_seconds", "Probe time.", {"target"}, {0.1, 0.01, 1});
  h.observe({"a"}, 0.005);
  h.observe({"a"}, 0.05);
  h.observe({"a"}, 5);
  EXPECT_EQ(r.expose(),
            "# HELP dbops_probe_duration_seconds Probe time.\n"
            "# TYPE dbops_probe_duration_seconds histogram\n"
            "dbops_probe_duration_seconds_bucket{target=\"a\",le=\"0.01\"} 1\n"
            "dbops_probe_duration_seconds_bucket{target=\"a\",le=\"0.1\"} 2\n"
            "dbops_probe_duration_seconds_bucket{target=\"a\",le=\"1\"} 2\n"
            "dbops_probe_duration_seconds_bucket{target=\"a\",le=\"+Inf\"} 3\n"
            "dbops_probe_duration_seconds_sum{target=\"a\"} 5.055\n"
            "dbops_probe_duration_seconds_count{target=\"a\"} 3\n");
}

TEST(Metrics, LabelAndHelpEscaping) {
  Registry r;
  auto& g = r.gauge("x", "line one\nback\\slash", {"v"});
  g.set({"a\"b\\c\nd"}, 1.5);
  EXPECT_EQ(r.expose(),
            "# HELP x line one\\nback\\\\slash\n"
            "# TYPE x gauge\n"
            "x{v=\"a\\\"b\\\\c\\nd\"} 1.5\n");
}

TEST(Metrics, RedeclaringReturnsTheSameFamily) {
  Registry r;
  auto& a = r.gauge("g", "h", {"t"});
  auto& b = r.gauge("g", "h", {"t"});
  EXPECT_EQ(&a, &b);
  a.set({"x"}, 1);
  const std::string out = r.expose();
  EXPECT_EQ(out.find("# TYPE g gauge"), out.rfind("# TYPE g gauge"));  // no duplicate family
}

TEST(Metrics, RemoveSeries) {
  Registry r;
  auto& g = r.gauge("g", "h", {"target", "engine"});
  g.set({"a", "postgres"}, 1);
  g.set({"b", "redis"}, 2);
  g.remove_where("target", "a");
  EXPECT_FALSE(g.has({"a", "postgres"}));
  EXPECT_TRUE(g.has({"b", "redis"}));
  g.clear();
  EXPECT_EQ(r.expose(), "# HELP g h\n# TYPE g gauge\n");
}

TEST(Metrics, ValueFormatting) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.1), "0.1");
  EXPECT_EQ(format_value(1e20), "1e+20");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(Metrics, NameValidation) {
  EXPECT_TRUE(valid_metric_name("dbops_up"));
  EXPECT_TRUE(valid_metric_name("a:b_c9"));
  EXPECT_FALSE(valid_metric_name("9a"));
  EXPECT_FALSE(valid_metric_name("a-b"));
  EXPECT_TRUE(valid_label_name("target"));
  EXPECT_FALSE(valid_label_name("__name"));
  EXPECT_FALSE(valid_label_name("a:b"));
}

TEST(MetricsDeathTest, BadDeclarationsAbort) {
  Registry r;
  EXPECT_DEATH(r.counter("dbops_probes", "counter without _total"), "ends in _total");
  EXPECT_DEATH(r.gauge("bad-name", "h"), "invalid metric declaration");
  EXPECT_DEATH(r.histogram("h", "h", {"le"}, {1}), "reserved");
}

}  // namespace
}  // namespace dbops::obs
