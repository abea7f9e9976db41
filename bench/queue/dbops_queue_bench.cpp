// bench/queue/run's dbops side: enqueue N no-op jobs into dbops's PostgreSQL
// job queue from C threads, then drain them with C worker threads, each
// claiming and completing the way the agent's worker does (store/queue.hpp).
//
//   dbops_queue_bench --dsn postgresql://USER@HOST:PORT/DB --jobs N
//                     --concurrency C --mode unbatched|batched
//                     [--claim-batch K]
//
// The password comes from PGPASSWORD (libpq reads it), never from argv. The
// database must hold no queue yet; the queue's tables are created first (not
// timed).
//
//   enqueue  unbatched: one enqueue() per job (one transaction each);
//            batched: enqueue_batch() of up to 1,000 jobs.
//   drain    unbatched: each of C threads claims one job at a time and
//            completes it (succeed(), its own transaction); batched: a local
//            queue of K jobs (default 100) as graphile-worker's: one fetcher
//            claims up to K at once, C worker threads take jobs from it, one
//            completer writes what they finished with one succeed_batch() at
//            a time.
//
// A job counts when its completion has committed; the server runs with
// synchronous_commit on, so a committed completion is durable. Prints one
// JSON line.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/secret.hpp"
#include "core/version.hpp"
#include "store/postgres/postgres_queue.hpp"
#include "store/queue.hpp"

namespace {

using namespace dbops;
using SteadyClock = std::chrono::steady_clock;

struct Options {
  std::string dsn;
  long jobs = 0;
  int concurrency = 0;
  std::string mode;
  int claim_batch = 0;
};

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr,
               "dbops_queue_bench: %s\nusage: dbops_queue_bench --dsn DSN --jobs N "
               "--concurrency C --mode unbatched|batched [--claim-batch K]\n",
               message.c_str());
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string key = argv[i];
    if (i + 1 >= argc) usage(key + " needs a value");
    const std::string value = argv[i + 1];
    if (key == "--dsn") {
      o.dsn = value;
    } else if (key == "--jobs") {
      o.jobs = std::atol(value.c_str());
    } else if (key == "--concurrency") {
      o.concurrency = std::atoi(value.c_str());
    } else if (key == "--mode") {
      o.mode = value;
    } else if (key == "--claim-batch") {
      o.claim_batch = std::atoi(value.c_str());
    } else {
      usage("unknown option " + key);
    }
  }
  if (o.dsn.empty()) usage("--dsn is required");
  if (o.jobs < 1) usage("--jobs must be a positive integer");
  if (o.concurrency < 1) usage("--concurrency must be a positive integer");
  if (o.mode != "unbatched" && o.mode != "batched") usage("--mode must be unbatched or batched");
  if (o.claim_batch <= 0) o.claim_batch = 100;
  return o;
}

[[noreturn]] void die(const std::string& what, const Error& error) {
  std::fprintf(stderr, "dbops_queue_bench: %s: %s\n", what.c_str(), error.to_string().c_str());
  std::exit(1);
}

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Runs fn(i) on `n` threads and waits for them.
template <typename Fn>
void on_threads(int n, Fn fn) {
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (auto& t : threads) t.join();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const bool batched = o.mode == "batched";
  // Sessions: one per thread, so that the pool is not what is measured.
  auto opened = store::postgres::open_postgres_queue(Secret(o.dsn), {},
                                                     static_cast<std::size_t>(o.concurrency) + 1);
  if (!opened) die("opening the queue", opened.error());
  store::JobQueue& queue = **opened;
  auto counts = queue.counts();
  if (!counts) die("counting jobs", counts.error());
  if (!counts->empty()) {
    std::fprintf(stderr, "dbops_queue_bench: the queue is not empty: give it an empty database\n");
    return 1;
  }
  // Warm every session before the clock starts.
  on_threads(o.concurrency, [&](int) { (void)queue.counts(); });

  // Enqueue: C clients, N split evenly.
  const store::JobSpec noop{.kind = "noop"};
  const auto share = [&](int i) { return o.jobs / o.concurrency + (i < o.jobs % o.concurrency); };
  const auto enqueue_start = SteadyClock::now();
  on_threads(o.concurrency, [&](int i) {
    const long n = share(i);
    if (!batched) {
      for (long k = 0; k < n; ++k) {
        if (auto r = queue.enqueue(noop); !r) die("enqueue", r.error());
      }
      return;
    }
    for (long done = 0; done < n; done += 1000) {
      const std::vector<store::JobSpec> batch(static_cast<std::size_t>(std::min(1000L, n - done)),
                                              noop);
      if (auto r = queue.enqueue_batch(batch); !r) die("enqueue_batch", r.error());
    }
  });
  const double enqueue_seconds = seconds_since(enqueue_start);

  // Drain: C workers claim and complete until every job has been completed.
  std::atomic<long> completed{0};
  const auto drain_start = SteadyClock::now();
  if (!batched) {
    // Each worker claims one job at a time and completes it.
    on_threads(o.concurrency, [&](int i) {
      const std::string owner = "bench-" + std::to_string(i);
      while (completed.load() < o.jobs) {
        auto claimed = queue.claim({.owner = owner, .max_jobs = 1});
        if (!claimed) die("claim", claimed.error());
        if (claimed->empty()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        for (const auto& job : *claimed) {
          if (auto r = queue.succeed(job.id, job.lease_token, "{}"); !r) die("succeed", r.error());
        }
        completed += static_cast<long>(claimed->size());
      }
    });
  } else {
    // A local queue of K jobs, as graphile-worker's: one fetcher claims up
    // to K minus what is still queued locally, C workers take jobs from it,
    // one completer records what they finished in one succeed_batch() per
    // round (whatever finished while the previous batch was being written).
    std::mutex mu;
    std::condition_variable cv;
    std::deque<store::QueuedJob> local;
    std::vector<store::Completion> finished;
    bool fetching_done = false;
    std::thread fetcher([&] {
      long fetched = 0;
      while (fetched < o.jobs) {
        std::size_t room = 0;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return local.size() < static_cast<std::size_t>(o.claim_batch) / 2; });
          room = static_cast<std::size_t>(o.claim_batch) - local.size();
        }
        auto claimed = queue.claim({.owner = "bench-fetcher", .max_jobs = room});
        if (!claimed) die("claim", claimed.error());
        if (claimed->empty()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
          continue;
        }
        fetched += static_cast<long>(claimed->size());
        {
          std::lock_guard lock(mu);
          for (auto& job : *claimed) local.push_back(std::move(job));
        }
        cv.notify_all();
      }
      std::lock_guard lock(mu);
      fetching_done = true;
      cv.notify_all();
    });
    std::thread completer([&] {
      while (completed.load() < o.jobs) {
        std::vector<store::Completion> batch;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !finished.empty(); });
          batch.swap(finished);
        }
        auto r = queue.succeed_batch(batch);
        if (!r) die("succeed_batch", r.error());
        completed += static_cast<long>(batch.size());
      }
      cv.notify_all();
    });
    on_threads(o.concurrency, [&](int) {
      while (true) {
        store::QueuedJob job;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !local.empty() || fetching_done; });
          if (local.empty()) return;
          job = std::move(local.front());
          local.pop_front();
          finished.push_back({job.id, job.lease_token, "{}"});
        }
        cv.notify_all();  // the task does nothing: it is finished at once
      }
    });
    fetcher.join();
    completer.join();
  }
  const double drain_seconds = seconds_since(drain_start);

  const nlohmann::ordered_json line = {
      {"tool", "dbops"},
      {"version", std::string(version())},
      {"mode", o.mode},
      {"concurrency", o.concurrency},
      {"jobs", o.jobs},
      {"enqueue_seconds", enqueue_seconds},
      {"enqueue_per_s", static_cast<double>(o.jobs) / enqueue_seconds},
      {"drain_seconds", drain_seconds},
      {"drain_per_s", static_cast<double>(o.jobs) / drain_seconds},
      {"claim_batch", batched ? o.claim_batch : 1},
  };
  std::printf("%s\n", line.dump().c_str());
  return 0;
}
