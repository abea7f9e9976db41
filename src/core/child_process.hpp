// The one place dbops forks and execs a child process. run_process()
// (subprocess.hpp) and BackgroundProcess (background_process.hpp) both start
// their children here, so that both get the same guarantees:
// - argv[0] is searched on the child's PATH like execvp(); a program that is
//   missing, not executable, or a bad working directory is an Error, never a
//   child exiting 127;
// - the child starts with default signal dispositions, an empty signal mask,
//   in its own process group, with stdin/stdout/stderr as given and every
//   other file descriptor closed;
// - optionally it drops to another user first and gets a parent-death signal.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace dbops::child {

// Owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Moves fd to a number >= 3 (keeping O_CLOEXEC), so that setting up the
// child's 0, 1 and 2 with dup2() can never clobber a descriptor it needs.
Status raise_above_stdio(UniqueFd& fd, std::string_view what);

// /dev/null opened read-write, close-on-exec, above stdio.
Result<UniqueFd> open_dev_null(std::string_view program);

// The child's environment as "NAME=value": dbops's own (or only PATH, HOME,
// LANG and TZ when `clear`), with `overrides` applied.
Result<std::vector<std::string>> environment(
    std::string_view program, const std::vector<std::pair<std::string, std::string>>& overrides,
    bool clear);

struct Spec {
  std::vector<std::string> argv;  // argv[0] is the program
  std::vector<std::string> env;   // "NAME=value"; its PATH is searched
  std::string cwd;                // empty: keep dbops's
  // The child's 0, 1 and 2; each must be >= 3 (see raise_above_stdio).
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  // Drop to this user and group (needs root) before exec.
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  // Sent to the child when the forking thread dies (PR_SET_PDEATHSIG); 0: none.
  int death_signal = 0;
};

// How fork() is called: by default on the calling thread; a caller may hand
// it to a thread that lives longer (the parent-death signal follows the
// forking thread).
using ForkRunner = std::function<Result<pid_t>(const std::function<Result<pid_t>()>& do_fork)>;

// Forks and execs. Returns the child's pid once exec succeeded; when the child
// could not start it has been reaped and the reason comes back as an Error.
// The caller closes its copies of the child's descriptors afterwards.
Result<pid_t> start(const Spec& spec, const ForkRunner& fork_runner = {});

}  // namespace dbops::child
