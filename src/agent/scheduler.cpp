#include "agent/scheduler.hpp"

#include <algorithm>
#include <cstdio>

#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/time_format.hpp"
#include "runtime/job.hpp"

namespace dbops::agent {
namespace {

using namespace std::chrono_literals;

// The smallest step of a time point: `t - kTick` is the last instant before t.
constexpr TimePoint::duration kTick{1};
constexpr std::chrono::milliseconds kNothingToDo = 24h;

// The fire time at the end of a schedule's key, or nullopt when the key does
// not end in one written by schedule_key().
std::optional<TimePoint> key_time(std::string_view text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  char z = 0;
  const std::string copy(text);
  if (text.size() != 20 ||
      std::sscanf(copy.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) != 7) {
    return std::nullopt;
  }
  const std::chrono::year_month_day day{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!day.ok()) return std::nullopt;
  const TimePoint t = std::chrono::sys_days{day} + std::chrono::hours{h} +
                      std::chrono::minutes{mi} + std::chrono::seconds{s};
  // Only the exact form schedule_key() writes.
  if (format_utc(t) != text) return std::nullopt;
  return t;
}

// The latest fire time in (after, until], looking back through growing
// windows so that a long outage costs a few steps, not one per fire time;
// nullopt when there is none (or none within the cron search horizon).
std::optional<TimePoint> last_fire_in(const cron::Schedule& cron, TimePoint after,
                                      TimePoint until) {
  constexpr std::chrono::hours kWindows[] = {
      1h, 24h, 7 * 24h, 32 * 24h, 367 * 24h, std::chrono::hours{cron::Schedule::kSearchHorizon}};
  for (const auto window : kWindows) {
    const TimePoint from = until - after > window ? until - window : after;
    std::optional<TimePoint> last;
    for (auto f = cron.next_after(from); f && *f <= until; f = cron.next_after(*f)) last = f;
    if (last || from == after) return last;
  }
  return std::nullopt;
}

std::string location_text(const config::Config& config, const config::Schedule& s) {
  std::string out = config.file.string();
  if (s.location.line > 0) out += ":" + std::to_string(s.location.line);
  return out;
}

}  // namespace

std::string schedule_key(std::string_view name, TimePoint fire_time) {
  return "schedule:" + std::string(name) + ":" +
         format_utc(std::chrono::floor<std::chrono::seconds>(fire_time));
}

Status check_schedules(const config::Config& config, const runtime::JobKindRegistry& kinds) {
  std::vector<std::string> problems;
  for (const auto& s : config.schedules) {
    const std::string where = "schedule \"" + s.name + "\" (" + location_text(config, s) + "): ";
    if (auto cron = cron::Schedule::parse(s.cron, s.time_zone); !cron) {
      problems.push_back(where + cron.error().message);
    }
    if (auto problem = runtime::check_job(kinds, config, s.kind, s.target, s.params_json)) {
      problems.push_back(where + *problem);
    }
  }
  if (problems.empty()) return ok();
  std::string message;
  for (const auto& p : problems) message += (message.empty() ? "" : "\n") + p;
  return fail(ErrorCode::kConfig, message,
              "Fix the schedules in the config file; `dbops jobs kinds` lists the job kinds and "
              "their parameters.");
}

Scheduler::Scheduler(std::vector<config::Schedule> schedules, store::JobQueue& queue, Clock& clock,
                     ExclusiveKind exclusive, SchedulerOptions options)
    : queue_(queue), clock_(clock), options_(options) {
  for (auto& s : schedules) {
    if (!s.enabled) continue;
    auto cron = cron::Schedule::parse(s.cron, s.time_zone);
    if (!cron) {
      // The config loader and check_schedules() refuse these first.
      log::error("schedule: not run, its cron expression is invalid",
                 {{"schedule", s.name}, {"error", cron.error().to_string()}});
      continue;
    }
    const bool is_exclusive = exclusive ? exclusive(s.kind) : false;
    std::string prefix = "schedule:" + s.name + ":";
    entries_.push_back(Entry{.config = std::move(s),
                             .cron = std::move(*cron),
                             .exclusive = is_exclusive,
                             .key_prefix = std::move(prefix)});
  }
}

Scheduler::Scheduler(std::vector<config::Schedule> schedules, store::JobQueue& queue, Clock& clock,
                     const runtime::JobKindRegistry& kinds, SchedulerOptions options)
    : Scheduler(
          std::move(schedules), queue, clock,
          [&kinds](std::string_view kind) {
            const runtime::JobKind* k = kinds.find(kind);
            return k != nullptr && k->exclusive();
          },
          options) {}

Scheduler::~Scheduler() {
  stop();
}

std::vector<std::string> Scheduler::names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.config.name);
  return out;
}

Result<std::size_t> Scheduler::tick() {
  std::size_t created = 0;
  std::optional<Error> first_error;
  {
    std::lock_guard lock(mu_);
    const TimePoint now = clock_.now();
    for (auto& entry : entries_) {
      auto r = tick_one(entry, now);
      if (!r) {
        if (!first_error) {
          first_error = std::move(r).error().with_context("schedule " + entry.config.name);
        }
        continue;
      }
      created += *r;
    }
  }
  if (created > 0 && options_.on_enqueued) options_.on_enqueued();
  if (first_error) return std::unexpected(std::move(*first_error));
  return created;
}

// Where the schedule stands: after its newest job in the queue, or (none)
// from now on.
Status Scheduler::resume(Entry& entry, TimePoint now) {
  DBOPS_ASSIGN(auto key, queue_.newest_key(entry.key_prefix));
  std::optional<TimePoint> newest;
  if (key) {
    newest = key_time(std::string_view(*key).substr(entry.key_prefix.size()));
    if (!newest) {
      log::warn("schedule: the newest job's key does not end in a fire time; starting from now",
                {{"schedule", entry.config.name}, {"key", *key}});
    }
  }
  if (newest) {
    log::info("schedule: resuming after its newest job",
              {{"schedule", entry.config.name}, {"fire_time", format_utc(*newest)}});
    entry.done_until = *newest;
  } else {
    entry.done_until = now - kTick;  // a fire time at `now` is due, not missed
  }
  return ok();
}

Result<std::size_t> Scheduler::tick_one(Entry& entry, TimePoint now) {
  if (!entry.done_until) DBOPS_TRY(resume(entry, now));
  const TimePoint from = *entry.done_until;
  if (now <= from) return std::size_t{0};  // nothing new (or the clock went back)
  const config::Schedule& sc = entry.config;

  std::vector<TimePoint> fires;
  // Fire times before the cutoff were missed: catch_up decides.
  const TimePoint cutoff = now - options_.misfire_threshold;
  TimePoint due_after = from;
  if (from < cutoff - kTick) {
    due_after = cutoff - kTick;
    if (const auto first = entry.cron.next_after(from); first && *first < cutoff) {
      std::optional<TimePoint> caught_up;
      if (sc.catch_up == config::CatchUp::kOnce) {
        caught_up = last_fire_in(entry.cron, from, due_after);
        if (caught_up) fires.push_back(*caught_up);
      }
      log::warn("schedule: fire times were missed",
                {{"schedule", sc.name},
                 {"first_missed", format_utc(*first)},
                 {"catch_up", std::string(config::catch_up_name(sc.catch_up))},
                 {"enqueued", caught_up ? format_utc(*caught_up) : std::string("none")}});
    }
  }
  for (auto f = entry.cron.next_after(due_after); f && *f <= now; f = entry.cron.next_after(*f)) {
    fires.push_back(*f);
  }

  std::vector<store::JobSpec> specs;
  specs.reserve(fires.size());
  for (const TimePoint fire : fires) {
    specs.push_back(store::JobSpec{.kind = sc.kind,
                                   .target = sc.target,
                                   .params_json = sc.params_json,
                                   .idempotency_key = schedule_key(sc.name, fire),
                                   .priority = sc.priority,
                                   .run_at = fire,
                                   .max_attempts = sc.max_attempts,
                                   .timeout = sc.timeout,
                                   .exclusive = entry.exclusive});
  }
  std::size_t created = 0;
  if (!specs.empty()) {
    DBOPS_ASSIGN(auto results, queue_.enqueue_batch(specs));
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (!results[i].created) continue;  // another agent was first
      ++created;
      log::info("schedule: job enqueued", {{"schedule", sc.name},
                                           {"fire_time", format_utc(fires[i])},
                                           {"job", results[i].id},
                                           {"kind", sc.kind},
                                           {"target", sc.target}});
    }
  }
  entry.done_until = now;
  return created;
}

std::chrono::milliseconds Scheduler::until_next() const {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  std::optional<TimePoint> next;
  for (const auto& e : entries_) {
    if (!e.done_until) return 0ms;  // the first tick is due
    const auto f = e.cron.next_after(*e.done_until);
    if (f && (!next || *f < *next)) next = f;
  }
  if (!next) return kNothingToDo;
  if (*next <= now) return 0ms;
  return std::min(std::chrono::ceil<std::chrono::milliseconds>(*next - now), kNothingToDo);
}

void Scheduler::start() {
  std::lock_guard lock(run_mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Scheduler::stop() {
  std::thread thread;
  {
    std::lock_guard lock(run_mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    thread = std::move(thread_);
  }
  run_cv_.notify_all();
  thread.join();
}

void Scheduler::loop() {
  std::string last_error;
  while (true) {
    auto ticked = tick();
    std::chrono::milliseconds wait = options_.max_sleep;
    if (ticked) {
      if (!last_error.empty()) log::info("schedule: ticks work again");
      last_error.clear();
      wait = std::min(until_next(), options_.max_sleep);
    } else if (const std::string text = ticked.error().to_string(); text != last_error) {
      log::error("schedule: tick failed; retrying", {{"error", text}});
      last_error = text;
    }
    std::unique_lock lock(run_mu_);
    if (run_cv_.wait_for(lock, wait, [this] { return stopping_; })) return;
  }
}

}  // namespace dbops::agent
