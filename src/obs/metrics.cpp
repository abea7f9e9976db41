#include "obs/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace dbops::obs {
namespace {

void check(bool ok, std::string_view what) {
  if (!ok) {
    std::fprintf(stderr, "dbops: bug: invalid metric declaration: %.*s\n",
                 static_cast<int>(what.size()), what.data());
    std::abort();
  }
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// A series' key: its label values in order, each followed by a NUL, with NUL
// and \x01 inside a value written as \x01 and a second byte. Keys compare
// like the values one by one (NUL sorts first), and a short key stays inside
// std::string's own buffer.
std::string key(const LabelValues& values) {
  std::string out;
  for (const auto& v : values) {
    for (const char c : v) {
      if (c == '\0' || c == '\x01') {
        out += '\x01';
        out += c == '\0' ? '0' : '1';
      } else {
        out += c;
      }
    }
    out += '\0';
  }
  return out;
}

// The index-th value of a key, still packed.
std::string_view packed_value(std::string_view key, std::size_t index) {
  std::size_t start = 0;
  for (std::size_t i = 0; i < index; ++i) start = key.find('\0', start) + 1;
  return key.substr(start, key.find('\0', start) - start);
}

// Appends one character of a label value, escaped as the text format wants.
void append_escaped(std::string& out, char c) {
  if (c == '\\') {
    out += "\\\\";
  } else if (c == '"') {
    out += "\\\"";
  } else if (c == '\n') {
    out += "\\n";
  } else {
    out += c;
  }
}

// Appends a packed value as a label value: unpacked, then escaped.
void append_value(std::string& out, std::string_view packed) {
  for (std::size_t i = 0; i < packed.size(); ++i) {
    char c = packed[i];
    if (c == '\x01' && i + 1 < packed.size()) c = packed[++i] == '0' ? '\0' : '\x01';
    append_escaped(out, c);
  }
}

void append_labels(std::string& out, const std::vector<std::string>& names, std::string_view key,
                   std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  std::size_t start = 0;
  for (const auto& name : names) {
    const std::size_t end = key.find('\0', start);
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    append_value(out, key.substr(start, end - start));
    out += '"';
    start = end + 1;
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

}  // namespace

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  for (const char c : value) append_escaped(out, c);
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", value);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  // Prefer the shortest form that reads back the same.
  for (int precision = 6; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, value);
    if (std::strtod(shorter, nullptr) == value) return shorter;
  }
  return buf;
}

std::vector<double> default_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Family::Family(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names, std::vector<double> buckets)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {
  check(valid_metric_name(name_), name_);
  for (const auto& l : label_names_) {
    check(valid_label_name(l), name_ + ": label " + l);
    check(!(type_ == MetricType::kHistogram && l == "le"), name_ + ": label le is reserved");
  }
  check(type_ != MetricType::kCounter || name_.ends_with("_total"),
        name_ + ": a counter's name ends in _total");
  std::sort(buckets_.begin(), buckets_.end());
  buckets_.erase(std::unique(buckets_.begin(), buckets_.end()), buckets_.end());
  std::erase_if(buckets_, [](double b) { return std::isinf(b) || std::isnan(b); });
}

Family::Series& Family::series(const LabelValues& labels) {
  check(labels.size() == label_names_.size(), name_ + ": wrong number of label values");
  std::string k = key(labels);
  auto it = series_.find(k);
  if (it == series_.end()) {
    Series s;
    if (type_ == MetricType::kHistogram) {
      s.histogram = std::make_unique<Histogram>();
      s.histogram->bucket_counts.assign(buckets_.size(), 0);
    }
    it = series_.emplace(std::move(k), std::move(s)).first;
  }
  return it->second;
}

void Family::add(const LabelValues& labels, double amount) {
  check(type_ != MetricType::kHistogram, name_ + ": add on a histogram");
  if (type_ == MetricType::kCounter && amount < 0) return;
  std::lock_guard lock(mu_);
  series(labels).value += amount;
}

void Family::set(const LabelValues& labels, double value) {
  check(type_ != MetricType::kHistogram, name_ + ": set on a histogram");
  std::lock_guard lock(mu_);
  series(labels).value = value;
}

void Family::observe(const LabelValues& labels, double value) {
  check(type_ == MetricType::kHistogram, name_ + ": observe on a non-histogram");
  std::lock_guard lock(mu_);
  Histogram& h = *series(labels).histogram;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    if (value <= buckets_[i]) h.bucket_counts[i] += 1;
  }
  h.sum += value;
  h.count += 1;
}

double Family::value(const LabelValues& labels) const {
  std::lock_guard lock(mu_);
  const auto it = series_.find(key(labels));
  return it == series_.end() ? 0 : it->second.value;
}

bool Family::has(const LabelValues& labels) const {
  std::lock_guard lock(mu_);
  return series_.contains(key(labels));
}

void Family::remove(const LabelValues& labels) {
  std::lock_guard lock(mu_);
  series_.erase(key(labels));
}

void Family::remove_where(std::string_view label, std::string_view value) {
  const auto pos = std::find(label_names_.begin(), label_names_.end(), label);
  if (pos == label_names_.end()) return;
  const auto index = static_cast<std::size_t>(pos - label_names_.begin());
  std::string packed = key({std::string(value)});
  packed.pop_back();  // its NUL
  std::lock_guard lock(mu_);
  std::erase_if(series_, [&](const auto& kv) { return packed_value(kv.first, index) == packed; });
}

void Family::clear() {
  std::lock_guard lock(mu_);
  series_.clear();
}

void Family::expose(std::string& out) const {
  std::lock_guard lock(mu_);
  out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
  out += "# TYPE " + name_ + " ";
  out += type_ == MetricType::kCounter ? "counter"
         : type_ == MetricType::kGauge ? "gauge"
                                       : "histogram";
  out += '\n';
  for (const auto& [labels, s] : series_) {
    if (!s.histogram) {
      out += name_;
      append_labels(out, label_names_, labels);
      out += ' ' + format_value(s.value) + '\n';
      continue;
    }
    const Histogram& h = *s.histogram;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      out += name_ + "_bucket";
      append_labels(out, label_names_, labels, "le", format_value(buckets_[i]));
      out += ' ' + format_value(h.bucket_counts[i]) + '\n';
    }
    out += name_ + "_bucket";
    append_labels(out, label_names_, labels, "le", "+Inf");
    out += ' ' + std::to_string(h.count) + '\n';
    out += name_ + "_sum";
    append_labels(out, label_names_, labels);
    out += ' ' + format_value(h.sum) + '\n';
    out += name_ + "_count";
    append_labels(out, label_names_, labels);
    out += ' ' + std::to_string(h.count) + '\n';
  }
}

Family& Registry::declare(std::string name, std::string help, MetricType type,
                          std::vector<std::string> label_names, std::vector<double> buckets) {
  std::lock_guard lock(mu_);
  for (const auto& f : families_) {
    if (f->name() == name) {
      check(f->type() == type && f->label_names() == label_names,
            name + ": declared twice with different type or labels");
      return *f;
    }
  }
  families_.push_back(std::make_unique<Family>(std::move(name), std::move(help), type,
                                               std::move(label_names), std::move(buckets)));
  return *families_.back();
}

Family& Registry::counter(std::string name, std::string help, std::vector<std::string> labels) {
  return declare(std::move(name), std::move(help), MetricType::kCounter, std::move(labels), {});
}
Family& Registry::gauge(std::string name, std::string help, std::vector<std::string> labels) {
  return declare(std::move(name), std::move(help), MetricType::kGauge, std::move(labels), {});
}
Family& Registry::histogram(std::string name, std::string help, std::vector<std::string> labels,
                            std::vector<double> buckets) {
  return declare(std::move(name), std::move(help), MetricType::kHistogram, std::move(labels),
                 std::move(buckets));
}

Family* Registry::find(std::string_view name) {
  std::lock_guard lock(mu_);
  for (const auto& f : families_) {
    if (f->name() == name) return f.get();
  }
  return nullptr;
}

std::string Registry::expose() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& f : families_) f->expose(out);
  return out;
}

void Registry::expose(const std::function<void(std::string_view)>& write) const {
  // Families are never removed, so they outlive the registry's lock.
  std::vector<const Family*> families;
  {
    std::lock_guard lock(mu_);
    families.reserve(families_.size());
    for (const auto& f : families_) families.push_back(f.get());
  }
  std::string piece;
  for (const Family* f : families) {
    piece.clear();
    f->expose(piece);
    write(piece);
  }
}

}  // namespace dbops::obs
