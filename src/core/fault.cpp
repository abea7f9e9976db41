#include "core/fault.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dbops::fault {
namespace {

enum class Action { kKill, kExit, kSleep };

struct Entry {
  std::string name;
  Action action = Action::kKill;
  long arg = 0;  // exit code or milliseconds
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Writes straight to fd 2: unbuffered, and safe however the process is about
// to end.
void say(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDERR_FILENO, text.data(), text.size());
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

bool parse_number(std::string_view text, long max, long* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && *out >= 0 && *out <= max;
}

std::vector<Entry> parse(std::string_view spec) {
  std::vector<Entry> entries;
  while (!spec.empty()) {
    std::size_t comma = spec.find(',');
    std::string_view item = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;

    Entry entry;
    std::size_t eq = item.find('=');
    entry.name = std::string(trim(item.substr(0, eq)));
    std::string_view action = eq == std::string_view::npos ? "kill" : trim(item.substr(eq + 1));
    bool good = !entry.name.empty();
    if (action == "kill") {
      entry.action = Action::kKill;
    } else if (action.starts_with("exit:")) {
      entry.action = Action::kExit;
      good = good && parse_number(action.substr(5), 255, &entry.arg);
    } else if (action.starts_with("sleep:")) {
      entry.action = Action::kSleep;
      good = good && parse_number(action.substr(6), 24L * 3600 * 1000, &entry.arg);
    } else {
      good = false;
    }
    if (!good) {
      say("DBOPS_FAULT: ignoring malformed entry \"" + std::string(item) +
          "\" (want name, name=kill, name=exit:N or name=sleep:MS)\n");
      continue;
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

class State {
 public:
  State() {
    const char* env = std::getenv("DBOPS_FAULT");
    set(env == nullptr ? std::string_view() : std::string_view(env));
  }

  void set(std::string_view spec) {
    std::vector<Entry> entries = parse(spec);
    std::lock_guard lock(mu_);
    entries_ = std::move(entries);
    active_.store(!entries_.empty(), std::memory_order_release);
  }

  bool active() const { return active_.load(std::memory_order_acquire); }

  // The entry for `name`, if any (a copy: set() may replace the list).
  bool find(std::string_view name, Entry* out) const {
    std::lock_guard lock(mu_);
    for (const auto& e : entries_) {
      if (e.name == name) {
        *out = e;
        return true;
      }
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  std::atomic<bool> active_{false};
};

State& state() {
  static State s;
  return s;
}

}  // namespace

void point(std::string_view name) {
  State& s = state();
  if (!s.active()) return;
  Entry entry;
  if (!s.find(name, &entry)) return;

  std::string prefix = "fault point " + std::string(name) + " reached: ";
  switch (entry.action) {
    case Action::kKill:
      say(prefix + "killing process\n");
      ::kill(::getpid(), SIGKILL);
      // SIGKILL to ourselves cannot fail or be caught, but never return.
      ::_exit(137);
    case Action::kExit:
      say(prefix + "exiting with code " + std::to_string(entry.arg) + "\n");
      ::_exit(static_cast<int>(entry.arg));
    case Action::kSleep:
      say(prefix + "sleeping " + std::to_string(entry.arg) + " ms\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(entry.arg));
      return;
  }
}

void set_for_testing(std::string_view spec) {
  state().set(spec);
}

}  // namespace dbops::fault
