// bench/queue/graphile/bench.mjs: the graphile-worker side of bench/queue/run.
//
//   node bench.mjs --dsn postgresql://USER@HOST:PORT/DB --jobs N --concurrency C \
//     --mode unbatched|batched [--local-queue-size 100] [--complete-batch-delay 0]
//
// The password comes from PGPASSWORD (node-postgres reads it), never from the
// command line. The database must be empty: this installs graphile-worker's
// schema (not timed), then
//
//   1. enqueue: C clients (async loops over one WorkerUtils pool of C
//      connections, opened before the clock starts) add N no-op jobs, split
//      evenly. unbatched: addJob, one job per call (one transaction each);
//      batched: addJobs with up to 1,000 jobs per call. Timed from the start
//      until the last call has returned (committed).
//   2. drain: run() with `concurrency: C` and a task that does nothing. Timed
//      from the call to run() until the job table is empty, as seen from a
//      separate connection (completed jobs are deleted; with
//      synchronous_commit = on a committed completion is durable). While
//      tasks are still running, the count of `job:success` events is watched
//      (no database load); once it reaches N the table is polled every 2 ms.
//      unbatched: graphile-worker's defaults (each worker fetches one job at a
//      time, each completion is its own statement). batched:
//      preset.worker.localQueue.size and completeJobBatchDelay/failJobBatchDelay
//      (https://worker.graphile.org/docs/performance#batching).
//
// Prints one JSON line on stdout; progress notes go to stderr.
import { createRequire } from "node:module";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";

const require = createRequire(import.meta.url);
const VERSION = require("graphile-worker/package.json").version;
const SCHEMA = "graphile_worker";
const JOBS_TABLE = `${SCHEMA}._private_jobs`;
const BATCH = 1000;
const DRAIN_TIMEOUT_MS = 600_000;

function usage(msg) {
  process.stderr.write(
    `bench.mjs: ${msg}\nusage: node bench.mjs --dsn DSN --jobs N --concurrency C --mode unbatched|batched` +
      ` [--local-queue-size N] [--complete-batch-delay MS]\n`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const o = { localQueueSize: 100, completeBatchDelay: 0 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    if (v === undefined) usage(`${k} needs a value`);
    i++;
    switch (k) {
      case "--dsn": o.dsn = v; break;
      case "--jobs": o.jobs = Number(v); break;
      case "--concurrency": o.concurrency = Number(v); break;
      case "--mode": o.mode = v; break;
      case "--local-queue-size": o.localQueueSize = Number(v); break;
      case "--complete-batch-delay": o.completeBatchDelay = Number(v); break;
      default: usage(`unknown option ${k}`);
    }
  }
  if (!o.dsn) usage("--dsn is required");
  if (!Number.isInteger(o.jobs) || o.jobs < 1) usage("--jobs must be a positive integer");
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1) usage("--concurrency must be a positive integer");
  if (o.mode !== "unbatched" && o.mode !== "batched") usage("--mode must be unbatched or batched");
  if (!Number.isInteger(o.localQueueSize) || o.localQueueSize < 2) usage("--local-queue-size must be an integer >= 2");
  if (!Number.isInteger(o.completeBatchDelay) || o.completeBatchDelay < 0) usage("--complete-batch-delay must be an integer >= 0");
  return o;
}

const note = (msg) => process.stderr.write(`  .. graphile: ${msg}\n`);
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

// Warnings and errors only: the default logger prints a line per completed
// job ("Completed task ... with success"), which would measure the console.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

const opts = parseArgs(process.argv.slice(2));
const { dsn, jobs: N, concurrency: C, mode } = opts;

// The same pool size for both modes: graphile-worker's recommendation for
// maxPoolSize ("10 or concurrentJobs + 2, whichever is larger").
const workerPoolSize = Math.max(10, C + 2);
const workerPreset =
  mode === "batched"
    ? {
        localQueue: { size: opts.localQueueSize },
        completeJobBatchDelay: opts.completeBatchDelay,
        failJobBatchDelay: opts.completeBatchDelay,
      }
    : {}; // localQueue.size -1, completeJobBatchDelay -1, failJobBatchDelay -1: the defaults

const probe = new pg.Client({ connectionString: dsn, application_name: "bench-probe" });
await probe.connect();
const countJobs = async () => Number((await probe.query(`select count(*) as n from ${JOBS_TABLE}`)).rows[0].n);

// ------------------------------------------------------------------ enqueue
const utils = await makeWorkerUtils({ connectionString: dsn, maxPoolSize: C, logger });
await utils.migrate();
const before = await countJobs();
if (before !== 0) throw new Error(`the job table already holds ${before} jobs: give bench.mjs an empty database`);
// Open the C connections before the clock starts.
await Promise.all(Array.from({ length: C }, () => utils.withPgClient((c) => c.query("select 1"))));

const share = (i) => Math.floor(N / C) + (i < N % C ? 1 : 0);
async function client(i) {
  const n = share(i);
  if (mode === "unbatched") {
    for (let k = 0; k < n; k++) await utils.addJob("noop", {});
  } else {
    for (let done = 0; done < n; done += BATCH) {
      const size = Math.min(BATCH, n - done);
      await utils.addJobs(Array.from({ length: size }, () => ({ identifier: "noop", payload: {} })));
    }
  }
}
const te = process.hrtime.bigint();
await Promise.all(Array.from({ length: C }, (_, i) => client(i)));
const enqueueSeconds = seconds(te);
await utils.release();
const queued = await countJobs();
if (queued !== N) throw new Error(`enqueued ${N} jobs but the job table holds ${queued}`);
note(`${mode} C=${C}: enqueued ${N} in ${enqueueSeconds.toFixed(3)} s`);

// -------------------------------------------------------------------- drain
const events = new EventEmitter();
let succeeded = 0;
let failure = null;
events.on("job:success", () => {
  succeeded++;
});
events.on("job:error", ({ error }) => {
  failure ??= error;
});
events.on("pool:fatalError", ({ error }) => {
  failure ??= error;
});
// Diagnostics (stderr): how often a worker found no job (it then waits for a
// notification or the next poll) and how many fetch queries ran.
let emptyFetches = 0;
let fetches = 0;
events.on("worker:getJob:empty", () => {
  emptyFetches++;
});
events.on("localQueue:getJobs:complete", () => {
  fetches++;
});
events.on("worker:getJob:start", () => {
  if (mode === "unbatched") fetches++;
});

const td = process.hrtime.bigint();
const runner = await run({
  connectionString: dsn,
  concurrency: C,
  maxPoolSize: workerPoolSize,
  noHandleSignals: true,
  logger,
  events,
  taskList: { noop: async () => {} },
  preset: { worker: workerPreset },
});
const deadline = Date.now() + DRAIN_TIMEOUT_MS;
const check = () => {
  if (failure) throw new Error(`a job failed: ${failure.message ?? failure}`);
  if (Date.now() > deadline) throw new Error(`drain: not done after ${DRAIN_TIMEOUT_MS / 1000} s (${succeeded} of ${N} tasks ran)`);
};
while (succeeded < N) {
  check();
  await sleep(5);
}
while ((await countJobs()) > 0) {
  check();
  await sleep(2);
}
const drainSeconds = seconds(td);
await runner.stop();
await probe.end();
note(
  `${mode} C=${C}: drained ${N} in ${drainSeconds.toFixed(3)} s (${fetches} fetches, ${emptyFetches} found no job)`,
);

const round = (x, d) => Number(x.toFixed(d));
process.stdout.write(
  JSON.stringify({
    tool: "graphile-worker",
    version: VERSION,
    mode,
    concurrency: C,
    jobs: N,
    enqueue_seconds: round(enqueueSeconds, 4),
    enqueue_per_s: round(N / enqueueSeconds, 1),
    drain_seconds: round(drainSeconds, 4),
    drain_per_s: round(N / drainSeconds, 1),
  }) + "\n",
);
