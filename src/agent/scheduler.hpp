// The agent's scheduler: turns the config's `schedules:` into queued jobs.
//
// Every fire time of a schedule enqueues one job whose idempotency key is
//
//   schedule:<name>:<fire time, UTC, RFC 3339 to the second>
//   e.g. schedule:pg-main-nightly:2026-03-29T01:00:00Z
//
// with run_at = the fire time, so that any number of agents sharing a state
// store enqueue each fire time once between them: the queue returns the first
// job for a key it already holds. Fire times come from core/cron.hpp, with its
// time zones and Debian cron's daylight-saving rules.
//
// Missed fire times. A tick enqueues the fire times that came due since the
// previous tick. A fire time that is more than `misfire_threshold` old when a
// tick first sees it (no agent ran, the agent was suspended or its clock
// jumped, the store could not be reached) is missed, and the schedule's
// catch_up policy decides: skip enqueues nothing for it, once enqueues one job
// for the most recent missed fire time. On the first tick after start, a
// schedule resumes after its newest job in the queue (JobQueue::newest_key):
// the fire times between that job and now are the ones missed. A schedule
// without any job in the queue (new, renamed, or its jobs all purged) starts
// from now and catches up nothing.
//
// A clock that goes back is waited out: fire times up to the latest instant a
// tick has seen were handled already and are not enqueued again.
//
// Thread safety: every method may be called from any thread; start() runs
// tick() on a thread of its own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/config/config.hpp"
#include "core/cron.hpp"
#include "core/result.hpp"
#include "store/queue.hpp"

namespace dbops::runtime {
class JobKindRegistry;
}

namespace dbops::agent {

using TimePoint = std::chrono::system_clock::time_point;

// Whether queued jobs of a kind are exclusive (runtime::JobKind::exclusive()).
using ExclusiveKind = std::function<bool(std::string_view kind)>;

struct SchedulerOptions {
  // A fire time older than this when a tick sees it is missed and follows the
  // schedule's catch_up; a younger one is enqueued whatever catch_up says.
  std::chrono::milliseconds misfire_threshold{60'000};
  // The longest start()'s thread sleeps between ticks, so that a wall clock
  // that jumps is noticed soon.
  std::chrono::milliseconds max_sleep{1'000};
  // Called after a tick that created jobs (e.g. the worker's wake()), outside
  // the scheduler's lock; empty: nothing.
  std::function<void()> on_enqueued;
};

// "schedule:<name>:<fire time as 2026-03-29T01:00:00Z>".
std::string schedule_key(std::string_view name, TimePoint fire_time);

// Checks what the config loader cannot know, for every schedule (disabled
// ones too): its kind exists, a kind that needs a target has one, its params
// fit the kind (and, again, its cron expression and target are valid).
// kConfig listing every problem, one per line, each naming the schedule and
// its line in the config file. Call it at agent start, before the Scheduler.
Status check_schedules(const config::Config& config, const runtime::JobKindRegistry& kinds);

class Scheduler {
 public:
  // Disabled schedules are left out. `exclusive` is asked once per schedule.
  // The queue and the clock must outlive the scheduler.
  Scheduler(std::vector<config::Schedule> schedules, store::JobQueue& queue, Clock& clock,
            ExclusiveKind exclusive, SchedulerOptions options = {});
  // Exclusivity from the registry's kinds (an unknown kind: not exclusive;
  // check_schedules() refuses those first).
  Scheduler(std::vector<config::Schedule> schedules, store::JobQueue& queue, Clock& clock,
            const runtime::JobKindRegistry& kinds, SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Enqueues what came due since the last tick (see the top of this file);
  // returns how many jobs it created (fire times another agent enqueued
  // first do not count). A schedule whose enqueue fails keeps its place and
  // is tried again at the next tick; the other schedules go on, and the error
  // (the first, with the schedule's name) is returned.
  Result<std::size_t> tick();

  // How long until a tick has something to do: the earliest next fire time
  // of any schedule, rounded up to a millisecond; zero before the first tick
  // or when one is due; 24h when no schedule will fire.
  std::chrono::milliseconds until_next() const;

  // Runs tick() on its own thread, sleeping until the next fire time but at
  // most options.max_sleep at a time (after a failed tick: max_sleep). Errors
  // are logged, once until they change.
  void start();
  // Stops the thread promptly (a tick in progress finishes first).
  void stop();

  // The names of the schedules it runs (the enabled ones), in config order.
  std::vector<std::string> names() const;

 private:
  struct Entry {
    config::Schedule config;
    cron::Schedule cron;
    bool exclusive = false;
    std::string key_prefix;  // "schedule:<name>:"
    // Fire times up to here were handled (enqueued, or missed and dealt
    // with); unset until the first tick found where the schedule stands.
    std::optional<TimePoint> done_until;
  };

  Result<std::size_t> tick_one(Entry& entry, TimePoint now);
  Status resume(Entry& entry, TimePoint now);
  void loop();

  store::JobQueue& queue_;
  Clock& clock_;
  const SchedulerOptions options_;

  mutable std::mutex mu_;  // guards entries_
  std::vector<Entry> entries_;

  std::mutex run_mu_;  // guards stopping_ and thread_
  std::condition_variable run_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace dbops::agent
