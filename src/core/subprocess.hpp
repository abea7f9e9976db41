// Running external programs: the layer through which dbops drives pg_dump,
// mariabackup, redis-cli and friends.
//
// run_process() starts argv directly (never through a shell), feeds its stdin,
// streams its stdout and stderr, enforces a timeout and a cancellation flag, and
// always reaps it. Secrets reach the child through the environment (PGPASSWORD,
// MYSQL_PWD, REDISCLI_AUTH), never through argv, which other users can read in
// /proc.
//
// How the child is started:
// - argv[0] without a slash is looked up on PATH like execvp(3) does, using the
//   PATH of the child's environment (the inherited one unless overridden in
//   ProcessOptions::env; "/bin:/usr/bin" when there is none). Files without a
//   "#!" line are not retried through /bin/sh.
// - A missing executable, a non-executable file or a bad working directory is
//   an Error ("pg_dump: not found on PATH"), never an exit code 127.
// - The child gets its own process group, so a timeout or cancellation kills
//   the grandchildren it started too; it also means a terminal's Ctrl-C reaches
//   dbops only, which then cancels the child through ProcessOptions::cancel.
// - The child starts with default dispositions for every signal and an empty
//   signal mask, whatever dbops itself ignores or blocks.
// - The child inherits no file descriptor except 0, 1 and 2: stdin is /dev/null
//   or a pipe, stdout and stderr are /dev/null (discarded) or pipes.
//
// SIGPIPE: while run_process() runs it blocks SIGPIPE in the calling thread and
// discards the one its own write to the child's stdin raised, so a child that
// closes stdin early cannot kill dbops. Such an EPIPE is not an error: the rest
// of the input is dropped, ProcessResult::stdin_closed_early is set and the exit
// status decides. dbops's signal dispositions are left untouched.
//
// run_process() may be called from several threads at once. It needs SIGCHLD
// not to be ignored (the kernel would reap the child before we can).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace dbops {

// A user to run a child as (dbops must be root to switch).
struct RunAsUser {
  uid_t uid = 0;
  gid_t gid = 0;
};
// The user and primary group of `name`; kConfig when there is no such user.
Result<RunAsUser> user_by_name(std::string_view name);

// Where one of the child's output streams (stdout or stderr) goes.
class OutputSink {
 public:
  enum class Kind {
    kDiscard,      // to /dev/null
    kCapture,      // the first `limit` bytes into ProcessResult
    kCaptureTail,  // the last `limit` bytes into ProcessResult
    kCallback,     // every chunk to a callback, as it arrives
  };
  // Called on the run_process() thread with each chunk read, in order. An error
  // stops the child (SIGTERM, then SIGKILL after the grace period) and is what
  // run_process() returns.
  using Callback = std::function<Status(std::string_view chunk)>;

  static constexpr std::size_t kDefaultCaptureLimit = std::size_t{1} << 20;  // 1 MiB

  // Discards the stream.
  OutputSink() = default;

  static OutputSink discard() { return OutputSink(); }
  // Keeps the first `limit` bytes; later output is read and dropped, and the
  // result's *_truncated flag is set.
  static OutputSink capture(std::size_t limit = kDefaultCaptureLimit);
  // Keeps the last `limit` bytes, which is where error messages usually are;
  // the *_truncated flag is set when earlier bytes were dropped.
  static OutputSink capture_tail(std::size_t limit = kDefaultCaptureLimit);
  static OutputSink callback(Callback fn);

  Kind kind() const { return kind_; }
  std::size_t limit() const { return limit_; }
  const Callback& fn() const { return fn_; }

 private:
  Kind kind_ = Kind::kDiscard;
  std::size_t limit_ = 0;
  Callback fn_;
};

struct ProcessOptions {
  // The program and its arguments; argv[0] is looked up on PATH when it has no
  // slash. Must not be empty and no element may contain a NUL byte.
  std::vector<std::string> argv;

  // Added to the inherited environment, replacing variables of the same name.
  std::vector<std::pair<std::string, std::string>> env;
  // Start from an environment holding only PATH, HOME, LANG and TZ (those that
  // are set) instead of everything dbops inherited; `env` is applied on top.
  bool clear_env = false;
  // Working directory of the child; empty keeps dbops's. A relative argv[0]
  // with a slash ("./bin/x") is resolved against it.
  std::string cwd;
  // Run the child as this user and its group (supplementary groups: none);
  // needs root, an Error otherwise.
  std::optional<RunAsUser> run_as;

  // After this the child's process group gets SIGTERM and, kill_grace later,
  // SIGKILL; the result then has timed_out set. Zero means no timeout.
  std::chrono::milliseconds timeout{0};
  // Time between SIGTERM and SIGKILL when stopping the child for any reason.
  std::chrono::milliseconds kill_grace{2000};
  // When set and it becomes true, the child is stopped like on a timeout and the
  // result has cancelled set. Checked at least every 100 ms; when it is already
  // true the child is not started at all. Must outlive the call.
  const std::atomic<bool>* cancel = nullptr;

  // The child's stdin: /dev/null unless one of these two is set (setting both is
  // an error).
  // - stdin_data: written in full, then stdin is closed.
  std::optional<std::string> stdin_data;
  // - stdin_source: pulled into `buf` (up to `cap` bytes) whenever the pipe can
  //   take more; returns the number of bytes written, 0 at end of input. An
  //   error stops the child and is what run_process() returns. It runs on the
  //   run_process() thread and may block, but output is not drained meanwhile.
  std::function<Result<std::size_t>(char* buf, std::size_t cap)> stdin_source;

  OutputSink stdout_sink;                                    // discarded by default
  OutputSink stderr_sink = OutputSink::capture_tail(65536);  // for error messages
};

struct ProcessResult {
  // The exit status when the child exited, -1 when a signal ended it.
  int exit_code = -1;
  // The signal that ended the child, 0 when it exited.
  int signal = 0;
  // run_process() stopped the child because ProcessOptions::timeout passed.
  bool timed_out = false;
  // run_process() stopped the child because ProcessOptions::cancel became true.
  bool cancelled = false;
  // Writing the child's stdin failed with EPIPE: it closed stdin or exited
  // before taking all input (not set when it exited before we noticed).
  bool stdin_closed_early = false;
  // From just before the child started until it was reaped.
  std::chrono::nanoseconds duration{};
  // The timeout that was in force, for describe().
  std::chrono::milliseconds timeout{0};

  // Captured output, for kCapture / kCaptureTail sinks.
  std::string stdout_text;
  std::string stderr_text;
  bool stdout_truncated = false;
  bool stderr_truncated = false;

  // Exited with status 0 and was neither timed out nor cancelled.
  bool succeeded() const;
  // "exited 0", "exited 1", "killed by signal 9", "timed out after 2.0s",
  // "cancelled".
  std::string describe() const;
  // OK when succeeded(); otherwise an Error "<program>: <describe()>" followed by
  // ": <last line of stderr_text>" when there is one. The code is kTimeout,
  // kCancelled, or kIo for a failed or killed child.
  Status check(std::string_view program) const;
};

// Runs the program described by `options` to completion (see the top of this
// file). Returns an Error when the child could not be started, when a stdin
// source or output callback failed, or on an unexpected system failure; a child
// that ran and failed, timed out or was cancelled is a ProcessResult.
Result<ProcessResult> run_process(const ProcessOptions& options);

}  // namespace dbops

namespace dbops {

// Runs a program whose stdin is fed by a producer that pushes bytes (rather
// than run_process's pull-based stdin_source): `produce` runs on a second
// thread and gets a Write that blocks while the child is behind (a few MiB
// are buffered). When the child exits before taking everything, the Write
// fails and `produce`'s error is dropped in favour of the child's result; a
// failing `produce` stops the child and is what this returns.
using PushWrite = std::function<Status(std::string_view bytes)>;
Result<ProcessResult> run_process_fed(ProcessOptions options,
                                      const std::function<Status(const PushWrite&)>& produce);

}  // namespace dbops
