// A small metrics registry and the Prometheus text exposition format (0.0.4).
//
// Families are declared once with their label names; series are addressed by
// label values. Label sets must stay bounded: target, engine, role, result —
// never a query text or a run id. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dbops::obs {

using LabelValues = std::vector<std::string>;

enum class MetricType { kCounter, kGauge, kHistogram };

class Family {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::vector<double> buckets);

  const std::string& name() const { return name_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Counter: adds a non-negative amount. Gauge: adds any amount.
  void add(const LabelValues& labels, double amount = 1);
  // Gauge; or a counter mirroring a cumulative count kept elsewhere (a
  // server's own counter, which may reset when that server restarts).
  void set(const LabelValues& labels, double value);
  // Histogram only.
  void observe(const LabelValues& labels, double value);

  // The current value of a counter or gauge series (0 when absent; tests).
  double value(const LabelValues& labels) const;
  bool has(const LabelValues& labels) const;
  // Removes one series, or every series whose label `label` equals `value`.
  void remove(const LabelValues& labels);
  void remove_where(std::string_view label, std::string_view value);
  void clear();

  void expose(std::string& out) const;

 private:
  struct Histogram {
    std::vector<double> bucket_counts;  // cumulative at exposition
    double sum = 0;
    std::uint64_t count = 0;
  };
  struct Series {
    double value = 0;                      // counter, gauge
    std::unique_ptr<Histogram> histogram;  // histogram only
  };
  Series& series(const LabelValues& labels);

  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
  std::vector<double> buckets_;
  mutable std::mutex mu_;
  // By their label values packed into one string (see key() in
  // metrics.cpp): an agent keeps tens of thousands of series, and one short
  // string needs no allocation where a vector of strings needs one or more.
  std::map<std::string, Series, std::less<>> series_;
};

class Registry {
 public:
  // Declares a family; declaring the same name again returns the existing
  // one (the type and labels must match). Names are validated: a bad name is
  // a programming error and aborts.
  Family& counter(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  Family& histogram(std::string name, std::string help, std::vector<std::string> label_names,
                    std::vector<double> buckets);
  Family* find(std::string_view name);

  // The whole registry in the Prometheus text format, families in the order
  // they were declared.
  std::string expose() const;
  // The same text handed to `write` one family at a time, for a server that
  // streams the response (chunked): an agent with hundreds of targets has an
  // exposition of megabytes, and a whole copy of it per scrape (and another
  // in the HTTP library) is memory the process keeps afterwards. `write` is
  // called without any of the registry's locks held, so a slow client never
  // holds up the probe rounds that update the series.
  void expose(const std::function<void(std::string_view)>& write) const;

 private:
  Family& declare(std::string name, std::string help, MetricType type,
                  std::vector<std::string> label_names, std::vector<double> buckets);
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;
};

// Prometheus' default latency buckets (seconds).
std::vector<double> default_buckets();

bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
// Label value escaping: backslash, double quote and newline.
std::string escape_label_value(std::string_view value);
// Go-style float formatting as Prometheus expects: "+Inf", "-Inf", "NaN".
std::string format_value(double value);

}  // namespace dbops::obs
