#include "core/child_process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace dbops::child {
namespace {

std::string_view env_name(std::string_view entry) {
  return entry.substr(0, std::min(entry.find('='), entry.size()));
}

bool has_nul(std::string_view s) {
  return s.find('\0') != std::string_view::npos;
}

// The paths execve() is tried on, in order: argv[0] itself when it has a
// slash, otherwise each PATH directory joined with it ("" meaning ".").
std::vector<std::string> exec_candidates(const std::string& program,
                                         const std::vector<std::string>& env,
                                         std::string* searched_path) {
  if (program.find('/') != std::string::npos) return {program};
  std::string path = "/bin:/usr/bin";
  for (const auto& entry : env) {
    if (env_name(entry) == "PATH") path = entry.substr(5);
  }
  *searched_path = path;
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? end : end - start);
    if (dir.empty()) dir = ".";
    out.push_back(dir + "/" + program);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// Where the child stopped when it could not exec.
enum class Stage : int { kSetup = 1, kCredentials, kChdir, kExec };
struct Report {
  Stage stage;
  int err;
};

// Everything the child needs, prepared before fork() so that the child only
// makes async-signal-safe calls.
struct Plan {
  const char* const* argv = nullptr;
  const char* const* envp = nullptr;
  const char* const* candidates = nullptr;  // null-terminated
  const char* cwd = nullptr;                // null: keep
  int fds[3] = {-1, -1, -1};
  int report_fd = -1;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  int death_signal = 0;
  pid_t parent_pid = 0;
  int max_fd = 0;  // for the close() loop when close_range() is unavailable
};

[[noreturn]] void child_fail(const Plan& plan, Stage stage, int err) {
  Report report{stage, err};
  const char* p = reinterpret_cast<const char*>(&report);
  std::size_t left = sizeof(report);
  while (left > 0) {
    const ssize_t n = ::write(plan.report_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  ::_exit(127);
}

void close_from(unsigned first, unsigned last, int max_fd) {
  if (first > last) return;
  if (::close_range(first, last, 0) == 0) return;
  const unsigned stop = std::min(last, static_cast<unsigned>(max_fd));
  for (unsigned fd = first; fd <= stop; ++fd) ::close(static_cast<int>(fd));
}

// Runs in the child between fork() and exec: async-signal-safe calls only.
[[noreturn]] void child_exec(const Plan& plan) {
  // Default dispositions (ignored signals would survive exec) and an empty mask.
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

  // Sources are all >= 3, so dup2() never clobbers one; it also clears
  // FD_CLOEXEC on the target.
  for (int i = 0; i < 3; ++i) {
    if (::dup2(plan.fds[i], i) < 0) child_fail(plan, Stage::kSetup, errno);
  }
  if (plan.switch_user) {
    if (::setgroups(1, &plan.gid) != 0 || ::setgid(plan.gid) != 0 || ::setuid(plan.uid) != 0) {
      child_fail(plan, Stage::kCredentials, errno);
    }
  }
  // After the credential switch, which clears the parent-death signal.
  if (plan.death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, plan.death_signal) != 0) child_fail(plan, Stage::kSetup, errno);
    // The parent died before prctl(): nobody would ever stop us.
    if (::getppid() != plan.parent_pid) ::_exit(1);
  }
  // As the target user, so that an unreachable directory is reported here.
  if (plan.cwd != nullptr && ::chdir(plan.cwd) != 0) child_fail(plan, Stage::kChdir, errno);

  // Close everything else except the report pipe (close-on-exec).
  const unsigned report = static_cast<unsigned>(plan.report_fd);
  close_from(3, report - 1, plan.max_fd);
  close_from(report + 1, ~0U, plan.max_fd);

  // execvp()'s search: skip candidates that do not exist, remember EACCES.
  int err = ENOENT;
  bool saw_eacces = false;
  for (const char* const* c = plan.candidates; *c != nullptr; ++c) {
    ::execve(*c, const_cast<char* const*>(plan.argv), const_cast<char* const*>(plan.envp));
    err = errno;
    if (err == EACCES) {
      saw_eacces = true;
    } else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV &&
               err != ETIMEDOUT) {
      break;
    }
  }
  if (saw_eacces && (err == ENOENT || err == ENOTDIR)) err = EACCES;
  child_fail(plan, Stage::kExec, err);
}

std::vector<const char*> pointers(const std::vector<std::string>& strings) {
  std::vector<const char*> out;
  for (const auto& s : strings) out.push_back(s.c_str());
  out.push_back(nullptr);
  return out;
}

Error start_error(const Spec& spec, const Report& report, const std::string& searched_path) {
  const std::string& program = spec.argv[0];
  const int err = report.err;
  switch (report.stage) {
    case Stage::kCredentials:
      return errno_error(program + ": cannot switch to uid " + std::to_string(spec.uid), err);
    case Stage::kChdir: {
      Error e = errno_error(program + ": cannot change directory to " + spec.cwd, err);
      if (err == ENOENT || err == ENOTDIR) e.code = ErrorCode::kNotFound;
      return e;
    }
    case Stage::kExec: {
      if (err == ENOENT && program.find('/') == std::string::npos) {
        return make_error(ErrorCode::kNotFound, program + ": not found on PATH")
            .with_hint("Install " + program + " or add its directory to PATH (searched " +
                       searched_path + ").");
      }
      if (err == ENOENT || err == ENOTDIR) {
        Error e = errno_error(program, err);
        e.code = ErrorCode::kNotFound;
        return e;
      }
      return errno_error(program + ": cannot execute", err);
    }
    case Stage::kSetup:
      break;
  }
  return errno_error(program + ": set up child process", err);
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status raise_above_stdio(UniqueFd& fd, std::string_view what) {
  if (fd.get() >= 3) return ok();
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return fail(errno_error(what, errno));
  fd.reset(moved);
  return ok();
}

Result<UniqueFd> open_dev_null(std::string_view program) {
  const std::string what = std::string(program) + ": open /dev/null";
  UniqueFd fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return fail(errno_error(what, errno));
  DBOPS_TRY(raise_above_stdio(fd, what));
  return fd;
}

Result<std::vector<std::string>> environment(
    std::string_view program, const std::vector<std::pair<std::string, std::string>>& overrides,
    bool clear) {
  std::vector<std::string> env;
  if (clear) {
    for (const char* name : {"PATH", "HOME", "LANG", "TZ"}) {
      if (const char* value = std::getenv(name)) env.push_back(std::string(name) + "=" + value);
    }
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  }
  for (const auto& [name, value] : overrides) {
    if (name.empty() || name.find('=') != std::string::npos || has_nul(name) || has_nul(value)) {
      return fail(ErrorCode::kInvalidArgument,
                  std::string(program) + ": invalid environment variable name \"" + name + "\"");
    }
    std::erase_if(env, [&](const std::string& entry) { return env_name(entry) == name; });
    env.push_back(name + "=" + value);
  }
  return env;
}

Result<pid_t> start(const Spec& spec, const ForkRunner& fork_runner) {
  if (spec.argv.empty()) return fail(ErrorCode::kInvalidArgument, "child process: empty argv");
  const std::string& program = spec.argv[0];
  for (std::size_t i = 0; i < spec.argv.size(); ++i) {
    if (has_nul(spec.argv[i])) {
      return fail(ErrorCode::kInvalidArgument,
                  program + ": argument " + std::to_string(i) + " contains a NUL byte");
    }
  }
  if (has_nul(spec.cwd)) {
    return fail(ErrorCode::kInvalidArgument, program + ": working directory contains a NUL byte");
  }
  if (spec.switch_user && ::geteuid() != 0) {
    return fail(ErrorCode::kInvalidArgument,
                program + ": switching to uid " + std::to_string(spec.uid) + " needs root");
  }

  // Everything the child touches is prepared here, before fork().
  std::string searched_path;
  const auto candidates = exec_candidates(program, spec.env, &searched_path);
  const auto argv_ptrs = pointers(spec.argv);
  const auto env_ptrs = pointers(spec.env);
  const auto candidate_ptrs = pointers(candidates);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(errno_error(program + ": create pipe", errno));
  UniqueFd report_read(fds[0]);
  UniqueFd report_write(fds[1]);
  DBOPS_TRY(raise_above_stdio(report_write, program + ": create pipe"));

  Plan plan;
  plan.argv = argv_ptrs.data();
  plan.envp = env_ptrs.data();
  plan.candidates = candidate_ptrs.data();
  plan.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  plan.fds[0] = spec.stdin_fd;
  plan.fds[1] = spec.stdout_fd;
  plan.fds[2] = spec.stderr_fd;
  plan.report_fd = report_write.get();
  plan.switch_user = spec.switch_user;
  plan.uid = spec.uid;
  plan.gid = spec.gid;
  plan.death_signal = spec.death_signal;
  plan.parent_pid = ::getpid();
  plan.max_fd = 65535;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    plan.max_fd = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 1 << 20));
  }

  const std::function<Result<pid_t>()> do_fork = [&]() -> Result<pid_t> {
    const pid_t pid = ::fork();
    if (pid < 0) return fail(errno_error(program + ": fork", errno));
    if (pid == 0) child_exec(plan);
    return pid;
  };
  DBOPS_ASSIGN(const pid_t pid, fork_runner ? fork_runner(do_fork) : do_fork());
  // Also from the parent, so that signalling the group right after start()
  // returns cannot miss a child that has not run setpgid() yet.
  ::setpgid(pid, pid);
  report_write.reset();

  // EOF means exec happened (the report pipe is close-on-exec).
  Report report{};
  std::size_t got = 0;
  while (got < sizeof(report)) {
    const ssize_t n =
        ::read(report_read.get(), reinterpret_cast<char*>(&report) + got, sizeof(report) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < sizeof(report)) return pid;
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return fail(start_error(spec, report, searched_path));
}

}  // namespace dbops::child
