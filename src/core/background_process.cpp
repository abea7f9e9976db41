#include "core/background_process.hpp"

#include <fcntl.h>
#include <signal.h>
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

#include "core/child_process.hpp"

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

}  // namespace

Result<BackgroundProcess> BackgroundProcess::spawn(const BackgroundOptions& options) {
  if (options.argv.empty()) {
    return fail(ErrorCode::kInvalidArgument, "background process: empty argv");
  }
  const std::string& program = options.argv[0];
  child::Spec spec;
  spec.argv = options.argv;
  DBOPS_ASSIGN(spec.env, child::environment(program, options.env, options.clear_env));
  spec.cwd = options.cwd.string();
  if (options.run_as) {
    spec.switch_user = true;
    spec.uid = options.run_as->uid;
    spec.gid = options.run_as->gid;
  }
  spec.death_signal = options.parent_death_signal;

  // stdin is /dev/null; stdout and stderr go to the output file (or /dev/null).
  DBOPS_ASSIGN(child::UniqueFd null_fd, child::open_dev_null(program));
  child::UniqueFd out_fd;
  if (!options.output_file.empty()) {
    const std::string what = program + ": open " + options.output_file.string();
    out_fd.reset(
        ::open(options.output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
    if (!out_fd.valid()) return fail(errno_error(what, errno));
    DBOPS_TRY(child::raise_above_stdio(out_fd, what));
    if (options.run_as && ::fchown(out_fd.get(), options.run_as->uid, options.run_as->gid) != 0) {
      return fail(errno_error(program + ": chown " + options.output_file.string(), errno));
    }
  }
  spec.stdin_fd = null_fd.get();
  spec.stdout_fd = spec.stderr_fd = out_fd.valid() ? out_fd.get() : null_fd.get();

  // A child with a parent-death signal is forked on a thread that lives as
  // long as the process.
  child::ForkRunner fork_runner;
  if (options.parent_death_signal != 0 && ::gettid() != ::getpid()) {
    fork_runner = [](const std::function<Result<pid_t>()>& do_fork) {
      return SpawnerThread::instance().run(do_fork);
    };
  }
  DBOPS_ASSIGN(const pid_t pid, child::start(spec, fork_runner));
  BackgroundProcess process;
  process.pid_ = pid;
  process.program_ = program;
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
