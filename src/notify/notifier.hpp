// Notifiers deliver events (a failed backup, a failed drill, a dead job) to
// people: a generic JSON webhook and Slack's incoming webhooks.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/result.hpp"

namespace dbops::notify {

struct Event {
  std::chrono::system_clock::time_point at{};
  std::string run_id;
  std::string target;
  std::string type;      // "job.failed"
  std::string severity;  // info | warn | error
  std::string message;
  std::string data_json = "{}";
};

class Notifier {
 public:
  virtual ~Notifier() = default;
  virtual const std::string& name() const = 0;
  // Least severe event this channel wants.
  virtual const std::string& min_severity() const = 0;
  virtual Status deliver(const Event& event) = 0;
};

// Delivers each event to every channel that wants it.
class Dispatcher {
 public:
  Dispatcher() = default;
  explicit Dispatcher(std::vector<std::unique_ptr<Notifier>> channels);
  // Delivers to every interested channel; a failed channel does not stop the
  // others. Returns the failures merged into one error.
  Status dispatch(const Event& event);
  std::size_t size() const { return channels_.size(); }

 private:
  std::vector<std::unique_ptr<Notifier>> channels_;
};

// The channels the config's `notify` section declares.
Result<std::vector<std::unique_ptr<Notifier>>> make_notifiers(const config::Config& config);

// Whether an event of `severity` reaches a channel with `min_severity`.
bool severity_reaches(std::string_view severity, std::string_view min_severity);

}  // namespace dbops::notify
