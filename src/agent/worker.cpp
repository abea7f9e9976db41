#include "agent/worker.hpp"

#include <algorithm>
#include <optional>

#include "agent/queue_launcher.hpp"
#include "core/log.hpp"
#include "notify/notifier.hpp"
#include "runtime/job.hpp"
#include "runtime/runner.hpp"

namespace dbops::agent {
namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

struct Worker::Running {
  store::QueuedJob job;
  bool waits_on_children = false;
  std::atomic<bool> cancel{false};
  std::atomic<bool> lease_lost{false};
  std::atomic<bool> timed_out{false};
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> done{false};
  std::thread thread;
};

Worker::Worker(store::JobQueue& queue, runtime::JobKindRegistry& kinds,
               const config::Config& config, store::Store& store, Clock& clock,
               notify::Dispatcher* dispatcher, WorkerOptions options)
    : queue_(queue),
      kinds_(kinds),
      config_(config),
      store_(store),
      clock_(clock),
      dispatcher_(dispatcher),
      options_(std::move(options)),
      poll_(options_.poll) {
  if (options_.concurrency == 0) options_.concurrency = 1;
  // Only the kinds this agent knows: during an upgrade, jobs of kinds a
  // newer release added are left to the agents that know them.
  for (const auto* k : kinds_.all()) {
    (k->waits_on_children() ? waiting_kinds_ : other_kinds_).emplace_back(k->name());
  }
}

Worker::~Worker() {
  stop();
}

void Worker::start() {
  std::lock_guard lock(mu_);
  if (loop_.joinable()) return;
  stopping_ = false;
  loop_ = std::thread([this] { loop(); });
  if (options_.listen) listener_ = std::thread([this] { listen_loop(); });
}

void Worker::listen_loop() {
  std::unique_ptr<store::JobNotifications> notifications;
  std::string last_error;
  const auto set_poll = [this](std::chrono::milliseconds poll) {
    std::lock_guard lock(mu_);
    poll_ = poll;
  };
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    if (!notifications) {
      auto opened = store::listen_for_jobs(*options_.listen);
      if (opened) {
        notifications = std::move(*opened);
        last_error.clear();
        log::info("listening for new jobs");
        // Notifications bring new jobs; polling, no faster than once a
        // second, finds those that come due later.
        set_poll(std::max(options_.poll, std::chrono::milliseconds(1000)));
        wake();  // whatever was enqueued while not listening
      } else if (opened.error().message != last_error) {
        last_error = opened.error().message;
        log::warn("cannot listen for new jobs; polling only",
                  {{"error", opened.error().to_string()}});
      }
    }
    if (notifications) {
      auto woke = notifications->wait(std::chrono::milliseconds(500));
      if (woke && *woke) {
        wake();
      } else if (!woke) {
        log::warn("listening for new jobs stopped; listening again",
                  {{"error", woke.error().to_string()}});
        notifications.reset();
        set_poll(options_.poll);
      }
      continue;
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.poll * 5, [&] { return stopping_; });
  }
}

void Worker::wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

std::size_t Worker::running() const {
  std::lock_guard lock(mu_);
  return static_cast<std::size_t>(std::count_if(running_.begin(), running_.end(),
                                                [](const auto& r) { return !r->done.load(); }));
}

WorkerStats Worker::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Worker::loop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (stopping_) return;
    }
    auto claimed = poll_once();
    if (!claimed) {
      log::warn("queue worker: claiming failed", {{"error", claimed.error().to_string()}});
    }
    std::unique_lock lock(mu_);
    if (stopping_) return;
    // Look again at once while there may be more due jobs and room for them.
    if (claimed && *claimed > 0 && running_.size() < options_.concurrency) continue;
    cv_.wait_for(lock, poll_, [&] { return stopping_ || woken_; });
    woken_ = false;
  }
}

void Worker::collect_finished() {
  std::list<std::unique_ptr<Running>> finished;
  {
    std::lock_guard lock(mu_);
    for (auto it = running_.begin(); it != running_.end();) {
      if ((*it)->done) {
        finished.push_back(std::move(*it));
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& r : finished) {
    if (r->thread.joinable()) r->thread.join();
  }
}

void Worker::reap() {
  auto dead = queue_.reap_expired();
  if (!dead) {
    log::warn("queue worker: reaping expired leases failed", {{"error", dead.error().to_string()}});
    return;
  }
  for (const auto& job : *dead) {
    record_dead(
        job, "",
        "job " + std::to_string(job.id) + " (" + job.spec.kind + ") is dead: " + job.last_error);
    log::error("job dead",
               {{"job_id", job.id}, {"kind", job.spec.kind}, {"error", job.last_error}});
  }
}

void Worker::record_dead(const store::QueuedJob& job, const std::string& run_id,
                         const std::string& message) {
  store::EventRecord e;
  e.at = clock_.now();
  e.run_id = run_id;
  e.target = job.spec.target;
  e.type = "job.dead";
  e.severity = store::Severity::kError;
  e.message = message;
  e.data_json = "{\"job_id\":" + std::to_string(job.id) + "}";
  if (auto st = store_.append_event(e); !st) {
    log::warn("queue worker: recording an event failed", {{"error", st.error().to_string()}});
  }
  if (dispatcher_) {
    (void)dispatcher_->dispatch(notify::Event{.at = e.at,
                                              .run_id = e.run_id,
                                              .target = e.target,
                                              .type = e.type,
                                              .severity = "error",
                                              .message = e.message,
                                              .data_json = e.data_json});
  }
}

Result<std::size_t> Worker::poll_once() {
  collect_finished();
  reap();
  std::size_t room = 0;
  std::size_t waiting_room = 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return 0;
    const auto waiting = static_cast<std::size_t>(std::count_if(
        running_.begin(), running_.end(), [](const auto& r) { return r->waits_on_children; }));
    const std::size_t others = running_.size() - waiting;
    room = options_.concurrency - std::min(options_.concurrency, others);
    waiting_room = options_.waiting_jobs - std::min(options_.waiting_jobs, waiting);
  }
  // Two claims; a failure of the second must not lose what the first got
  // (those jobs would sit under this agent's lease with nothing running).
  std::vector<store::QueuedJob> jobs;
  std::optional<Error> error;
  const auto claim_into = [&](const std::vector<std::string>& kinds, std::size_t max_jobs) {
    if (max_jobs == 0 || kinds.empty()) return;
    auto claimed = queue_.claim(
        {.owner = options_.owner, .max_jobs = max_jobs, .lease = options_.lease, .kinds = kinds});
    if (!claimed) {
      if (!error) error = std::move(claimed).error();
      return;
    }
    for (auto& job : *claimed) jobs.push_back(std::move(job));
  };
  claim_into(other_kinds_, room);
  const std::size_t others = jobs.size();
  claim_into(waiting_kinds_, waiting_room);
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto r = std::make_unique<Running>();
    r->job = std::move(jobs[i]);
    r->waits_on_children = i >= others;
    Running* raw = r.get();
    running_.push_back(std::move(r));
    ++stats_.claimed;
    raw->thread = std::thread([this, raw] { run_job(*raw); });
  }
  if (error && jobs.empty()) return std::unexpected(std::move(*error));
  if (error) log::warn("queue worker: claiming failed", {{"error", error->to_string()}});
  return jobs.size();
}

void Worker::run_job(Running& r) {
  const store::QueuedJob& job = r.job;
  const std::string job_id = std::to_string(job.id);
  log::info("job claimed", {{"job_id", job.id},
                            {"kind", job.spec.kind},
                            {"target", job.spec.target},
                            {"attempt", job.attempt}});

  // The heartbeat, and the timeout, on a thread of their own.
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool finished = false;
  const auto started = SteadyClock::now();
  std::thread heartbeat([&] {
    const auto every =
        std::max<std::chrono::milliseconds>(std::chrono::milliseconds(50), options_.lease / 3);
    auto next_beat = SteadyClock::now() + every;
    std::unique_lock lock(hb_mu);
    while (!finished) {
      auto wake = next_beat;
      if (job.spec.timeout.count() > 0) wake = std::min(wake, started + job.spec.timeout);
      hb_cv.wait_until(lock, wake, [&] { return finished; });
      if (finished) break;
      const auto now = SteadyClock::now();
      if (job.spec.timeout.count() > 0 && now >= started + job.spec.timeout && !r.timed_out) {
        r.timed_out = true;
        r.cancel = true;
        log::warn("job timed out", {{"job_id", job.id}, {"timeout_ms", job.spec.timeout.count()}});
      }
      if (now >= next_beat) {
        next_beat = now + every;
        lock.unlock();
        auto st = queue_.heartbeat(job.id, job.lease_token, options_.lease);
        lock.lock();
        if (!st && st.error().code == ErrorCode::kConflict) {
          r.lease_lost = true;
          r.cancel = true;
          log::warn("job lease lost; stopping it",
                    {{"job_id", job.id}, {"error", st.error().message}});
        } else if (!st) {
          log::warn("job heartbeat failed", {{"job_id", job.id}, {"error", st.error().message}});
        }
      }
    }
  });

  runtime::JobSpec spec{.kind = job.spec.kind,
                        .target = job.spec.target,
                        .params_json = job.spec.params_json,
                        .idempotency_key = job.spec.idempotency_key.empty()
                                               ? "queue:" + job_id
                                               : job.spec.idempotency_key};
  // A job that starts children puts them on the queue. They are stopped with
  // it only when it was cancelled or timed out: a run that lost its lease (or
  // is given back at shutdown) is picked up again, and waits for them.
  std::optional<QueueLauncher> launcher;
  if (r.waits_on_children) {
    launcher.emplace(queue_, store_, kinds_,
                     std::min(options_.poll, std::chrono::milliseconds(500)), [this, &r] {
                       if (r.timed_out) return true;
                       auto now = queue_.get(r.job.id);
                       return now && *now && (*now)->state == store::JobState::kCancelled;
                     });
  }
  runtime::Runner runner(kinds_, config_, store_, clock_,
                         runtime::RunnerOptions{.dispatcher = dispatcher_,
                                                .cancel = &r.cancel,
                                                .launcher = launcher ? &*launcher : nullptr});
  auto report = runner.run(spec);
  {
    std::lock_guard lock(hb_mu);
    finished = true;
  }
  hb_cv.notify_all();
  heartbeat.join();

  Status reported = ok();
  std::string outcome;
  if (r.lease_lost) {
    outcome = "lease lost";
  } else if (r.shutting_down && !r.timed_out &&
             (!report || report->run.state != store::RunState::kSucceeded)) {
    reported = queue_.release(job.id, job.lease_token);
    outcome = "released";
  } else if (report && report->run.state == store::RunState::kSucceeded) {
    reported = queue_.succeed(job.id, job.lease_token, report->run.result_json);
    outcome = "succeeded";
  } else {
    std::string error;
    bool retry = false;
    if (!report) {
      error = report.error().to_string();
      retry = runtime::transient(report.error().code);
    } else if (report->run.state == store::RunState::kCheckFailed) {
      error = report->run.error.empty() ? report->run.summary : report->run.error;
      retry = false;
    } else {
      error = report->run.error;
      retry = runtime::transient(report->error_code);
    }
    if (r.timed_out) {
      error = "timed out after " + std::to_string(job.spec.timeout.count()) + " ms: " + error;
      // Tried again, unless its timeout bounds a whole run whose tasks were
      // stopped with it (a workflow): another attempt would only find them
      // cancelled.
      retry = !r.waits_on_children;
    }
    auto state = queue_.fail_attempt(job.id, job.lease_token, error, retry);
    if (state) {
      outcome = std::string(store::job_state_name(*state));
      if (*state == store::JobState::kDead) {
        record_dead(job, report ? report->run.run_id : "",
                    "job " + job_id + " (" + job.spec.kind + ") is dead after " +
                        std::to_string(job.attempt) + " attempt(s): " + error);
      }
    } else {
      reported = std::unexpected(std::move(state).error());
    }
  }
  if (!reported) {
    log::warn("job outcome not recorded",
              {{"job_id", job.id}, {"outcome", outcome}, {"error", reported.error().to_string()}});
    outcome = "lease lost";
  }
  {
    // Under the lock, so that wait_idle() cannot miss it.
    std::lock_guard lock(mu_);
    r.done = true;
    if (outcome == "succeeded") {
      ++stats_.succeeded;
    } else if (outcome == "lease lost") {
      ++stats_.lost;
    } else if (outcome == "released") {
      ++stats_.released;
    } else {
      ++stats_.failed;
    }
  }
  log::info("job finished", {{"job_id", job.id}, {"kind", job.spec.kind}, {"outcome", outcome}});
  cv_.notify_all();
  // Room for another job.
  wake();
}

bool Worker::wait_idle(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, deadline, [&] {
    return std::all_of(running_.begin(), running_.end(),
                       [](const auto& r) { return r->done.load(); });
  });
}

void Worker::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !loop_.joinable() && running_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (listener_.joinable()) listener_.join();
  if (!wait_idle(options_.shutdown_grace)) {
    std::lock_guard lock(mu_);
    for (auto& r : running_) {
      if (!r->done) {
        log::warn("stopping job at shutdown", {{"job_id", r->job.id}});
        r->shutting_down = true;
        r->cancel = true;
      }
    }
  }
  wait_idle(std::chrono::hours(1));
  collect_finished();
}

}  // namespace dbops::agent
