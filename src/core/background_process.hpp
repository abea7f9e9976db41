// Long-running children: database servers started by the engine launcher,
// helpers that must outlive one call. run_process() (subprocess.hpp) is for
// programs that run to completion; BackgroundProcess starts a program and
// returns at once, leaving the caller to watch, signal and stop it.
//
// How the child is started:
// - argv[0] without a slash is looked up on dbops's own PATH; a missing or
//   non-executable program, a bad working directory or a failed credential
//   switch is an Error from spawn(), never a child that exits 127.
// - Its stdout and stderr are appended to BackgroundOptions::output_file (the
//   server's log), or go to /dev/null; stdin is /dev/null. It inherits no other
//   file descriptor.
// - It starts with default signal dispositions and an empty signal mask, and
//   in its own process group (a terminal's Ctrl-C reaches dbops only).
// - When dbops runs as root and BackgroundOptions::run_as is set, it drops to
//   that user and group (supplementary groups: just that group) before exec.
// - With parent_death_signal set, the kernel sends it that signal when dbops
//   dies (PR_SET_PDEATHSIG), so a killed test does not leave servers behind.
//   The kernel ties this to the thread that forked, not the process, so such
//   children are forked on a thread that lives as long as the process: a
//   worker thread that exits does not take the child down with it.
//
// A BackgroundProcess owns the child: it is the only one to reap it, and
// destroying it kills (SIGKILL to its process group) and reaps a child still
// running. Use stop() for a graceful end. SIGCHLD must not be ignored.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "core/subprocess.hpp"

namespace dbops {

struct BackgroundOptions {
  // The program and its arguments; must not be empty.
  std::vector<std::string> argv;
  // Added to the inherited environment, replacing variables of the same name.
  std::vector<std::pair<std::string, std::string>> env;
  // Start from PATH, HOME, LANG and TZ only (those set); `env` is applied on top.
  bool clear_env = false;
  // Working directory of the child; empty keeps dbops's.
  std::filesystem::path cwd;
  // Credentials to drop to before exec; needs root (an Error otherwise).
  std::optional<RunAsUser> run_as;
  // stdout and stderr are appended here (created with mode 0640 when missing,
  // owned by run_as when set); empty: /dev/null.
  std::filesystem::path output_file;
  // Sent to the child when dbops dies; 0: none.
  int parent_death_signal = 0;
};

class BackgroundProcess {
 public:
  // Starts the child; see the top of this file.
  static Result<BackgroundProcess> spawn(const BackgroundOptions& options);

  BackgroundProcess() = default;
  BackgroundProcess(BackgroundProcess&& other) noexcept;
  BackgroundProcess& operator=(BackgroundProcess&& other) noexcept;
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  // Kills (SIGKILL to the process group) and reaps a child still running.
  ~BackgroundProcess();

  // The child's pid (also its process group id); 0 for an empty object.
  pid_t pid() const { return pid_; }
  // The program, for messages.
  const std::string& program() const { return program_; }

  // False once the child exited (it is then reaped) or for an empty object.
  bool running();
  // Waits up to `timeout` for the child to exit; true when it has.
  bool wait_for(std::chrono::milliseconds timeout);
  // Sends `sig` to the child only / to its whole process group. Signalling a
  // child that already exited is not an error.
  Status signal(int sig);
  Status signal_group(int sig);
  // Sends `sig` to the child, waits up to `grace`, then SIGKILLs its process
  // group and reaps it. Does nothing when it already exited.
  void stop(int sig, std::chrono::milliseconds grace);

  // The raw wait status once exited.
  std::optional<int> wait_status() const { return status_; }
  // "running", "exited 1", "killed by signal 9".
  std::string describe() const;

 private:
  bool reap(bool block);

  pid_t pid_ = 0;
  std::string program_;
  std::optional<int> status_;
};

}  // namespace dbops
