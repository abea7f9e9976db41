#include "core/background_process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace dbops {
namespace {

// Runs fork() requests on one thread that lives as long as the process, so
// that PR_SET_PDEATHSIG (tied to the forking thread) fires only when the
// process dies. The object is leaked on purpose: it must outlive every static
// destructor that could still spawn.
class SpawnerThread {
 public:
  static SpawnerThread& instance() {
    static SpawnerThread* spawner = new SpawnerThread();
    return *spawner;
  }

  Result<pid_t> run(std::function<Result<pid_t>()> fn) {
    std::packaged_task<Result<pid_t>()> task(std::move(fn));
    std::future<Result<pid_t>> done = task.get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return done.get();
  }

 private:
  SpawnerThread() {
    std::thread([this] { loop(); }).detach();
  }

  [[noreturn]] void loop() {
    for (;;) {
      std::packaged_task<Result<pid_t>()> task;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return !queue_.empty(); });
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<Result<pid_t>()>> queue_;
};

enum class ChildStage : int { kSetup, kCredentials, kChdir, kExec };

struct ChildReport {
  ChildStage stage;
  int err;
};

// Everything the child needs, prepared before fork() so that the child only
// makes async-signal-safe calls.
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;  // null: keep
  int null_fd = -1;
  int out_fd = -1;
  int report_fd = -1;
  bool set_credentials = false;
  uid_t uid = 0;
  gid_t gid = 0;
  int death_signal = 0;
  pid_t parent_pid = 0;
  int max_fd = 0;
};

[[noreturn]] void child_fail(const ChildPlan& plan, ChildStage stage, int err) {
  ChildReport report{stage, err};
  const char* p = reinterpret_cast<const char*>(&report);
  std::size_t left = sizeof(report);
  while (left > 0) {
    ssize_t n = ::write(plan.report_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::_exit(127);
}

void close_range_fallback(unsigned first, unsigned last, int max_fd) {
  if (first > last) return;
  if (::close_range(first, last, 0) == 0) return;
  unsigned stop = std::min(last, static_cast<unsigned>(max_fd));
  for (unsigned fd = first; fd <= stop; ++fd) ::close(static_cast<int>(fd));
}

// Runs in the child between fork() and exec: async-signal-safe calls only.
[[noreturn]] void child_exec(const ChildPlan& plan) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t empty;
  ::sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  ::setpgid(0, 0);

  if (::dup2(plan.null_fd, 0) < 0 || ::dup2(plan.out_fd, 1) < 0 || ::dup2(plan.out_fd, 2) < 0) {
    child_fail(plan, ChildStage::kSetup, errno);
  }
  if (plan.set_credentials) {
    if (::setgroups(1, &plan.gid) != 0 || ::setgid(plan.gid) != 0 || ::setuid(plan.uid) != 0) {
      child_fail(plan, ChildStage::kCredentials, errno);
    }
  }
  // After the credential switch, which clears the parent-death signal.
  if (plan.death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, plan.death_signal) != 0) {
      child_fail(plan, ChildStage::kSetup, errno);
    }
    // The parent died before prctl(): nobody would ever stop us.
    if (::getppid() != plan.parent_pid) ::_exit(1);
  }
  // As the target user, so that an unreachable directory is reported here.
  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) child_fail(plan, ChildStage::kChdir, errno);

  const unsigned report = static_cast<unsigned>(plan.report_fd);
  close_range_fallback(3, report - 1, plan.max_fd);
  close_range_fallback(report + 1, ~0U, plan.max_fd);

  ::execve(plan.path, plan.argv, plan.envp);
  child_fail(plan, ChildStage::kExec, errno);
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Moves fd to a number >= 3 (close-on-exec), so that dup2() onto 0, 1 and 2 in
// the child never clobbers it.
Status raise_above_stdio(Fd& fd, std::string_view what) {
  if (fd.get() >= 3) return ok();
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return fail(errno_error(what, errno));
  fd.reset(moved);
  return ok();
}

std::string_view env_name(std::string_view entry) {
  return entry.substr(0, std::min(entry.find('='), entry.size()));
}

Result<std::vector<std::string>> build_env(const BackgroundOptions& options) {
  std::vector<std::string> env;
  if (options.clear_env) {
    for (const char* name : {"PATH", "HOME", "LANG", "TZ"}) {
      if (const char* value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
    }
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  }
  for (const auto& [name, value] : options.env) {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
      return fail(ErrorCode::kInvalidArgument,
                  options.argv[0] + ": invalid environment variable \"" + name + "\"");
    }
    std::erase_if(env, [&](const std::string& entry) { return env_name(entry) == name; });
    env.push_back(name + "=" + value);
  }
  return env;
}

Result<std::string> find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) {
    if (::access(program.c_str(), X_OK) != 0) return fail(errno_error(program, errno));
    return program;
  }
  const char* path_env = std::getenv("PATH");
  std::string path = path_env != nullptr ? path_env : "/bin:/usr/bin";
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return fail(ErrorCode::kNotFound, program + ": not found on PATH");
}

std::string_view stage_text(ChildStage stage) {
  switch (stage) {
    case ChildStage::kSetup:
      return "set up child";
    case ChildStage::kCredentials:
      return "switch user";
    case ChildStage::kChdir:
      return "change directory";
    case ChildStage::kExec:
      return "exec";
  }
  return "start";
}

}  // namespace

Result<BackgroundProcess> BackgroundProcess::spawn(const BackgroundOptions& options) {
  if (options.argv.empty()) {
    return fail(ErrorCode::kInvalidArgument, "background process: empty argv");
  }
  const std::string& program = options.argv[0];
  for (const auto& arg : options.argv) {
    if (arg.find('\0') != std::string::npos) {
      return fail(ErrorCode::kInvalidArgument, program + ": argument contains a NUL byte");
    }
  }
  if (options.run_as && ::geteuid() != 0) {
    return fail(
        ErrorCode::kInvalidArgument,
        program + ": switching to uid " + std::to_string(options.run_as->uid) + " needs root");
  }
  DBOPS_ASSIGN(std::string path, find_program(program));
  DBOPS_ASSIGN(std::vector<std::string> env, build_env(options));

  Fd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (null_fd.get() < 0) return fail(errno_error(program + ": open /dev/null", errno));
  DBOPS_TRY(raise_above_stdio(null_fd, program + ": open /dev/null"));
  Fd out_fd;
  if (options.output_file.empty()) {
    out_fd.reset(::fcntl(null_fd.get(), F_DUPFD_CLOEXEC, 3));
    if (out_fd.get() < 0) return fail(errno_error(program + ": dup", errno));
  } else {
    out_fd.reset(
        ::open(options.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (out_fd.get() < 0) {
      return fail(errno_error(program + ": open " + options.output_file.string(), errno));
    }
    DBOPS_TRY(raise_above_stdio(out_fd, program + ": open " + options.output_file.string()));
    if (options.run_as && ::fchown(out_fd.get(), options.run_as->uid, options.run_as->gid) != 0) {
      return fail(errno_error(program + ": chown " + options.output_file.string(), errno));
    }
  }
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(errno_error(program + ": pipe", errno));
  Fd report_read(pipe_fds[0]);
  Fd report_write(pipe_fds[1]);
  DBOPS_TRY(raise_above_stdio(report_write, program + ": pipe"));

  std::vector<char*> argv;
  for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : env) envp.push_back(const_cast<char*>(entry.c_str()));
  envp.push_back(nullptr);
  const std::string cwd = options.cwd.string();

  ChildPlan plan;
  plan.path = path.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.cwd = cwd.empty() ? nullptr : cwd.c_str();
  plan.null_fd = null_fd.get();
  plan.out_fd = out_fd.get();
  plan.report_fd = report_write.get();
  if (options.run_as) {
    plan.set_credentials = true;
    plan.uid = options.run_as->uid;
    plan.gid = options.run_as->gid;
  }
  plan.death_signal = options.parent_death_signal;
  plan.parent_pid = ::getpid();
  long max_fd = ::sysconf(_SC_OPEN_MAX);
  plan.max_fd = max_fd > 0 && max_fd < 65536 ? static_cast<int>(max_fd) : 65536;

  auto do_fork = [&]() -> Result<pid_t> {
    pid_t pid = ::fork();
    if (pid < 0) return fail(errno_error(program + ": fork", errno));
    if (pid == 0) child_exec(plan);
    return pid;
  };
  Result<pid_t> forked = (options.parent_death_signal != 0 && ::gettid() != ::getpid())
                             ? SpawnerThread::instance().run(do_fork)
                             : do_fork();
  if (!forked) return fail(std::move(forked).error());
  const pid_t pid = *forked;
  // Also set from the parent, so that signalling the group right after
  // spawn() returns cannot miss a child that has not run setpgid() yet.
  ::setpgid(pid, pid);
  report_write.reset();

  ChildReport report{};
  std::size_t got = 0;
  while (got < sizeof(report)) {
    ssize_t n =
        ::read(report_read.get(), reinterpret_cast<char*>(&report) + got, sizeof(report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  BackgroundProcess process;
  process.pid_ = pid;
  process.program_ = program;
  if (got == sizeof(report)) {
    process.reap(true);
    std::string what = program + ": " + std::string(stage_text(report.stage));
    if (report.stage == ChildStage::kCredentials && options.run_as) {
      what += " to uid " + std::to_string(options.run_as->uid);
    } else if (report.stage == ChildStage::kChdir) {
      what += " to " + cwd;
    }
    return fail(errno_error(what, report.err));
  }
  return process;
}

BackgroundProcess::BackgroundProcess(BackgroundProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, 0)),
      program_(std::move(other.program_)),
      status_(std::exchange(other.status_, std::nullopt)) {}

BackgroundProcess& BackgroundProcess::operator=(BackgroundProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ != 0 && !status_) stop(SIGKILL, std::chrono::milliseconds(0));
    pid_ = std::exchange(other.pid_, 0);
    program_ = std::move(other.program_);
    status_ = std::exchange(other.status_, std::nullopt);
  }
  return *this;
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ != 0 && !status_) stop(SIGKILL, std::chrono::milliseconds(0));
}

bool BackgroundProcess::reap(bool block) {
  if (pid_ == 0 || status_) return true;
  int status = 0;
  pid_t rc;
  while ((rc = ::waitpid(pid_, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
  }
  if (rc == pid_) {
    status_ = status;
    return true;
  }
  if (rc < 0) {
    // ECHILD: reaped by someone else (a waitpid(-1) elsewhere); it is gone.
    status_ = 0;
    return true;
  }
  return false;
}

bool BackgroundProcess::running() {
  return pid_ != 0 && !reap(false);
}

bool BackgroundProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(2);
  for (;;) {
    if (!running()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

Status BackgroundProcess::signal(int sig) {
  if (!running()) return ok();
  if (::kill(pid_, sig) != 0 && errno != ESRCH) {
    return fail(errno_error(program_ + ": kill " + std::to_string(pid_), errno));
  }
  return ok();
}

Status BackgroundProcess::signal_group(int sig) {
  if (pid_ == 0) return ok();
  // The group may outlive its leader, so no running() check here.
  if (::kill(-pid_, sig) != 0 && errno != ESRCH) {
    return fail(errno_error(program_ + ": kill group " + std::to_string(pid_), errno));
  }
  return ok();
}

void BackgroundProcess::stop(int sig, std::chrono::milliseconds grace) {
  if (!running()) return;
  if (sig != SIGKILL) {
    ::kill(pid_, sig);
    ::kill(pid_, SIGCONT);  // a stopped child would not act on `sig`
    if (wait_for(grace)) return;
  }
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  reap(true);
}

std::string BackgroundProcess::describe() const {
  if (pid_ == 0) return "not started";
  if (!status_) return "running";
  if (WIFEXITED(*status_)) return "exited " + std::to_string(WEXITSTATUS(*status_));
  if (WIFSIGNALED(*status_)) return "killed by signal " + std::to_string(WTERMSIG(*status_));
  return "ended";
}

}  // namespace dbops
