#include "core/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/child_process.hpp"
#include "core/sigpipe_guard.hpp"

namespace dbops {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kChunkSize = 256 * 1024;
// Streamed stdout and stdin pipes get this capacity (best effort; the default
// is 64 KiB), so that a fast producer such as pg_basebackup blocks less often
// and each read moves more.
constexpr int kStreamPipeSize = 1 << 20;
constexpr std::chrono::milliseconds kCancelPollInterval{50};
constexpr std::chrono::milliseconds kMaxExitPollInterval{50};

using child::raise_above_stdio;
using child::UniqueFd;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// A close-on-exec pipe; the parent's end (`parent_reads` picks which) is made
// non-blocking, the child's end stays blocking.
Result<Pipe> make_pipe(bool parent_reads, std::string_view what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(errno_error(what, errno));
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  DBOPS_TRY(raise_above_stdio(p.read, what));
  DBOPS_TRY(raise_above_stdio(p.write, what));
  int parent_fd = parent_reads ? p.read.get() : p.write.get();
  int flags = ::fcntl(parent_fd, F_GETFL);
  if (flags < 0 || ::fcntl(parent_fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return fail(errno_error(what, errno));
  }
  return p;
}

std::string format_seconds(std::chrono::nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1fs", std::chrono::duration<double>(d).count());
  return buf;
}

// One output stream of the child, on the parent's side.
struct OutputStream {
  UniqueFd fd;
  const OutputSink* sink = nullptr;
  std::string* text = nullptr;
  bool* truncated = nullptr;

  Status deliver(std::string_view chunk) {
    switch (sink->kind()) {
      case OutputSink::Kind::kDiscard:
        return ok();
      case OutputSink::Kind::kCapture: {
        std::size_t room = sink->limit() - std::min(sink->limit(), text->size());
        if (chunk.size() > room) *truncated = true;
        text->append(chunk.substr(0, room));
        return ok();
      }
      case OutputSink::Kind::kCaptureTail: {
        std::size_t limit = sink->limit();
        if (chunk.size() >= limit) {
          if (chunk.size() > limit || !text->empty()) *truncated = true;
          text->assign(chunk.substr(chunk.size() - limit));
          return ok();
        }
        text->append(chunk);
        // Trim lazily: only once twice the limit is held.
        if (text->size() > 2 * limit) {
          text->erase(0, text->size() - limit);
          *truncated = true;
        }
        return ok();
      }
      case OutputSink::Kind::kCallback:
        return sink->fn()(chunk);
    }
    return ok();
  }

  void finish() {
    if (sink->kind() == OutputSink::Kind::kCaptureTail && text->size() > sink->limit()) {
      text->erase(0, text->size() - sink->limit());
      *truncated = true;
    }
  }
};

class Runner {
 public:
  Runner(const ProcessOptions& options, ProcessResult& result)
      : options_(options), result_(result), buf_(new char[kChunkSize]) {}
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;
  // Never leaves a child behind, even on an unexpected early return.
  ~Runner() {
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }

  Status run();

 private:
  Status spawn();
  Status loop();
  void poll_once();
  // Reads one chunk; false at EOF, on EAGAIN or on an error.
  bool read_output(OutputStream& out);
  void feed_stdin();
  void start_kill();
  void record_error(Error error);
  bool check_exited();

  const std::string& program() const { return options_.argv[0]; }

  const ProcessOptions& options_;
  ProcessResult& result_;
  std::unique_ptr<char[]> buf_;
  SigpipeGuard sigpipe_;

  pid_t pid_ = -1;
  bool reaped_ = false;
  UniqueFd pidfd_;
  UniqueFd stdin_fd_;
  OutputStream stdout_;
  OutputStream stderr_;

  // Pending stdin bytes: a view into stdin_data or into stdin_buf_.
  std::string_view stdin_pending_;
  std::unique_ptr<char[]> stdin_buf_;
  bool stdin_source_done_ = false;

  Clock::time_point start_;
  std::optional<Clock::time_point> deadline_;
  std::optional<Clock::time_point> sigkill_at_;
  bool kill_started_ = false;
  bool sigkill_sent_ = false;
  bool exited_ = false;
  std::chrono::milliseconds exit_poll_{1};
  std::optional<Error> error_;
};

Status Runner::spawn() {
  if (options_.argv.empty()) return fail(ErrorCode::kInvalidArgument, "run_process: empty argv");
  if (options_.stdin_data && options_.stdin_source) {
    return fail(ErrorCode::kInvalidArgument,
                program() + ": both stdin_data and stdin_source are set");
  }
  for (const OutputSink* sink : {&options_.stdout_sink, &options_.stderr_sink}) {
    if (sink->kind() == OutputSink::Kind::kCallback && !sink->fn()) {
      return fail(ErrorCode::kInvalidArgument, program() + ": output callback is empty");
    }
  }

  child::Spec spec;
  spec.argv = options_.argv;
  DBOPS_ASSIGN(spec.env, child::environment(program(), options_.env, options_.clear_env));
  spec.cwd = options_.cwd;
  if (options_.run_as) {
    if (::geteuid() != 0) {
      return fail(ErrorCode::kInvalidArgument, program() + ": running as another user needs root");
    }
    spec.switch_user = true;
    spec.uid = options_.run_as->uid;
    spec.gid = options_.run_as->gid;
  }

  // The child's ends: pipes where output is kept or input fed, else /dev/null.
  const std::string what = program() + ": create pipe";
  DBOPS_ASSIGN(UniqueFd dev_null, child::open_dev_null(program()));
  std::optional<Pipe> in_pipe, out_pipe, err_pipe;
  spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = dev_null.get();
  if (options_.stdin_data || options_.stdin_source) {
    DBOPS_ASSIGN(in_pipe, make_pipe(/*parent_reads=*/false, what));
    spec.stdin_fd = in_pipe->read.get();
    if (options_.stdin_source) (void)::fcntl(in_pipe->write.get(), F_SETPIPE_SZ, kStreamPipeSize);
  }
  if (options_.stdout_sink.kind() != OutputSink::Kind::kDiscard) {
    DBOPS_ASSIGN(out_pipe, make_pipe(/*parent_reads=*/true, what));
    spec.stdout_fd = out_pipe->write.get();
    if (options_.stdout_sink.kind() == OutputSink::Kind::kCallback) {
      (void)::fcntl(out_pipe->read.get(), F_SETPIPE_SZ, kStreamPipeSize);
    }
  }
  if (options_.stderr_sink.kind() != OutputSink::Kind::kDiscard) {
    DBOPS_ASSIGN(err_pipe, make_pipe(/*parent_reads=*/true, what));
    spec.stderr_fd = err_pipe->write.get();
  }

  start_ = Clock::now();
  DBOPS_ASSIGN(pid_, child::start(spec));

  // Close the child's ends so that EOF and EPIPE work.
  dev_null.reset();
  if (in_pipe) in_pipe->read.reset();
  if (out_pipe) out_pipe->write.reset();
  if (err_pipe) err_pipe->write.reset();
  if (in_pipe) stdin_fd_ = std::move(in_pipe->write);
  if (out_pipe) stdout_.fd = std::move(out_pipe->read);
  if (err_pipe) stderr_.fd = std::move(err_pipe->read);
  return ok();
}

void Runner::record_error(Error error) {
  if (!error_) error_ = std::move(error);
  start_kill();
}

void Runner::start_kill() {
  if (kill_started_) return;
  kill_started_ = true;
  stdin_fd_.reset();  // EOF helps a well-behaved child finish
  if (exited_) return;
  if (options_.kill_grace.count() <= 0) {
    ::kill(-pid_, SIGKILL);
    sigkill_sent_ = true;
  } else {
    ::kill(-pid_, SIGTERM);
    sigkill_at_ = Clock::now() + options_.kill_grace;
  }
}

// Notices the child's exit without reaping it, so its pid (and so its process
// group id) cannot be reused while we may still signal the group.
bool Runner::check_exited() {
  if (exited_) return true;
  siginfo_t info;
  std::memset(&info, 0, sizeof(info));
  while (true) {
    int rc = ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT);
    if (rc == 0) break;
    if (errno == EINTR) continue;
    // ECHILD: someone else reaped it (SIGCHLD ignored?); treat as gone.
    exited_ = true;
    return true;
  }
  exited_ = info.si_pid == pid_;
  return exited_;
}

bool Runner::read_output(OutputStream& out) {
  while (out.fd.valid()) {
    ssize_t n = ::read(out.fd.get(), buf_.get(), kChunkSize);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0) {
      record_error(errno_error(program() + ": read output", errno));
      out.fd.reset();
      return false;
    }
    if (n == 0) {
      out.fd.reset();
      return false;
    }
    // After an error everything is drained and dropped.
    if (!error_) {
      Status s = out.deliver(std::string_view(buf_.get(), static_cast<std::size_t>(n)));
      if (!s) record_error(std::move(s).error());
    }
    return true;
  }
  return false;
}

void Runner::feed_stdin() {
  while (stdin_fd_.valid()) {
    if (stdin_pending_.empty()) {
      if (options_.stdin_data || stdin_source_done_) {
        stdin_fd_.reset();
        return;
      }
      if (!stdin_buf_) stdin_buf_.reset(new char[kChunkSize]);
      Result<std::size_t> n = options_.stdin_source(stdin_buf_.get(), kChunkSize);
      if (!n) {
        record_error(std::move(n).error());
        return;
      }
      if (*n > kChunkSize) {
        record_error(Error{.code = ErrorCode::kInternal,
                           .message = program() + ": stdin source returned more than asked for",
                           .context = {},
                           .hint = {}});
        return;
      }
      if (*n == 0) {
        stdin_source_done_ = true;
        continue;
      }
      stdin_pending_ = std::string_view(stdin_buf_.get(), *n);
    }
    ssize_t n = ::write(stdin_fd_.get(), stdin_pending_.data(), stdin_pending_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EPIPE) {
      sigpipe_.consume();
      result_.stdin_closed_early = true;
      stdin_fd_.reset();
      return;
    }
    if (n < 0) {
      record_error(errno_error(program() + ": write stdin", errno));
      return;
    }
    stdin_pending_.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Runner::poll_once() {
  std::array<pollfd, 4> fds{};
  nfds_t count = 0;
  int stdin_slot = -1, stdout_slot = -1, stderr_slot = -1;
  if (stdin_fd_.valid()) {
    stdin_slot = static_cast<int>(count);
    fds[count++] = pollfd{stdin_fd_.get(), POLLOUT, 0};
  }
  if (stdout_.fd.valid()) {
    stdout_slot = static_cast<int>(count);
    fds[count++] = pollfd{stdout_.fd.get(), POLLIN, 0};
  }
  if (stderr_.fd.valid()) {
    stderr_slot = static_cast<int>(count);
    fds[count++] = pollfd{stderr_.fd.get(), POLLIN, 0};
  }
  if (pidfd_.valid()) fds[count++] = pollfd{pidfd_.get(), POLLIN, 0};

  // How long we may sleep: until the next deadline of any kind.
  auto now = Clock::now();
  std::optional<Clock::duration> wait;
  auto shorten = [&](Clock::duration d) {
    if (d < Clock::duration::zero()) d = Clock::duration::zero();
    if (!wait || d < *wait) wait = d;
  };
  if (!kill_started_ && deadline_) shorten(*deadline_ - now);
  if (!kill_started_ && options_.cancel != nullptr) shorten(kCancelPollInterval);
  if (sigkill_at_ && !sigkill_sent_) shorten(*sigkill_at_ - now);
  if (!pidfd_.valid()) {
    shorten(exit_poll_);
    exit_poll_ = std::min(exit_poll_ * 2, kMaxExitPollInterval);
  }
  int timeout_ms = -1;
  if (wait) {
    // Round up so that we do not wake just before a deadline and spin.
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(*wait).count();
    timeout_ms = static_cast<int>(std::min<long long>((us + 999) / 1000, 3'600'000));
  }

  int rc = ::poll(fds.data(), count, timeout_ms);
  if (rc < 0) {
    if (errno != EINTR) record_error(errno_error(program() + ": poll", errno));
    return;
  }
  if (rc > 0) {
    if (stdin_slot >= 0 && fds[stdin_slot].revents != 0) feed_stdin();
    if (stdout_slot >= 0 && fds[stdout_slot].revents != 0) read_output(stdout_);
    if (stderr_slot >= 0 && fds[stderr_slot].revents != 0) read_output(stderr_);
  }
}

Status Runner::loop() {
  if (options_.timeout.count() > 0) deadline_ = start_ + options_.timeout;
  if (stdin_fd_.valid()) {
    if (options_.stdin_data) stdin_pending_ = *options_.stdin_data;
    feed_stdin();
  }
  // A pidfd makes the child's exit wake poll(); without one (old kernels) we
  // poll waitid() with a growing interval.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd >= 0) pidfd_.reset(pidfd);

  while (!check_exited()) {
    poll_once();
    auto now = Clock::now();
    if (!kill_started_) {
      if (deadline_ && now >= *deadline_) {
        result_.timed_out = true;
        start_kill();
      } else if (options_.cancel != nullptr && options_.cancel->load()) {
        result_.cancelled = true;
        start_kill();
      }
    } else if (!sigkill_sent_ && sigkill_at_ && now >= *sigkill_at_) {
      ::kill(-pid_, SIGKILL);
      sigkill_sent_ = true;
    }
  }

  // The child has exited but is not reaped yet, so its process group id is
  // still ours. When we were stopping it, finish off whatever it left behind.
  if (kill_started_ && !sigkill_sent_) ::kill(-pid_, SIGKILL);

  // Collect what the child wrote before exiting. Its data is at most one pipe
  // buffer; the bound keeps a grandchild that keeps writing from holding us.
  for (OutputStream* out : {&stdout_, &stderr_}) {
    if (!out->fd.valid()) continue;
    int pipe_size = ::fcntl(out->fd.get(), F_GETPIPE_SZ);
    std::size_t budget = pipe_size > 0 ? static_cast<std::size_t>(pipe_size) : (1u << 20);
    budget += kChunkSize;
    std::size_t reads = budget / kChunkSize + 1;
    while (reads-- > 0 && read_output(*out)) {
    }
    // Output written later by processes the child left behind is not collected.
    out->fd.reset();
  }
  stdin_fd_.reset();

  int status = 0;
  pid_t rc;
  while ((rc = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  result_.duration = Clock::now() - start_;
  if (rc < 0) {
    return fail(errno_error(program() + ": wait for child", errno));
  }
  if (WIFEXITED(status)) {
    result_.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result_.signal = WTERMSIG(status);
  }
  stdout_.finish();
  stderr_.finish();
  if (error_) return fail(std::move(*error_));
  return ok();
}

Status Runner::run() {
  stdout_.sink = &options_.stdout_sink;
  stdout_.text = &result_.stdout_text;
  stdout_.truncated = &result_.stdout_truncated;
  stderr_.sink = &options_.stderr_sink;
  stderr_.text = &result_.stderr_text;
  stderr_.truncated = &result_.stderr_truncated;

  DBOPS_TRY(spawn());
  return loop();
}

}  // namespace

OutputSink OutputSink::capture(std::size_t limit) {
  OutputSink s;
  s.kind_ = Kind::kCapture;
  s.limit_ = limit;
  return s;
}

OutputSink OutputSink::capture_tail(std::size_t limit) {
  OutputSink s;
  s.kind_ = Kind::kCaptureTail;
  s.limit_ = limit;
  return s;
}

OutputSink OutputSink::callback(Callback fn) {
  OutputSink s;
  s.kind_ = Kind::kCallback;
  s.fn_ = std::move(fn);
  return s;
}

bool ProcessResult::succeeded() const {
  return !timed_out && !cancelled && signal == 0 && exit_code == 0;
}

std::string ProcessResult::describe() const {
  if (timed_out) return "timed out after " + format_seconds(timeout);
  if (cancelled) return "cancelled";
  if (signal != 0) return "killed by signal " + std::to_string(signal);
  return "exited " + std::to_string(exit_code);
}

Status ProcessResult::check(std::string_view program) const {
  if (succeeded()) return ok();
  std::string message = std::string(program) + ": " + describe();
  // The last non-empty line of stderr usually says why.
  std::string_view err = stderr_text;
  while (!err.empty() && (err.back() == '\n' || err.back() == '\r' || err.back() == ' ')) {
    err.remove_suffix(1);
  }
  if (!err.empty()) {
    std::size_t nl = err.find_last_of('\n');
    std::string_view line = nl == std::string_view::npos ? err : err.substr(nl + 1);
    constexpr std::size_t kMaxLine = 500;
    if (line.size() > kMaxLine) line = line.substr(line.size() - kMaxLine);
    message += ": ";
    message += line;
  }
  ErrorCode code = timed_out   ? ErrorCode::kTimeout
                   : cancelled ? ErrorCode::kCancelled
                               : ErrorCode::kIo;
  return fail(code, std::move(message));
}

Result<ProcessResult> run_process(const ProcessOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return fail(ErrorCode::kInvalidArgument, "run_process: empty argv");
  }
  ProcessResult result;
  result.timeout = options.timeout;
  if (options.cancel != nullptr && options.cancel->load()) {
    result.cancelled = true;
    return result;
  }
  Runner runner(options, result);
  DBOPS_TRY(runner.run());
  return result;
}

Result<RunAsUser> user_by_name(std::string_view name) {
  const std::string n(name);
  const passwd* pw = ::getpwnam(n.c_str());
  if (pw == nullptr) return fail(ErrorCode::kConfig, "there is no user \"" + n + "\"");
  return RunAsUser{.uid = pw->pw_uid, .gid = pw->pw_gid};
}

}  // namespace dbops
