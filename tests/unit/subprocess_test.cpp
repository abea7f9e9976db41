#include "core/subprocess.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/strings.hpp"

namespace dbops {
namespace {

using namespace std::chrono_literals;

ProcessOptions sh(std::string script) {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", std::move(script)};
  o.stdout_sink = OutputSink::capture();
  o.stderr_sink = OutputSink::capture();
  return o;
}

ProcessResult run_ok(const ProcessOptions& o) {
  Result<ProcessResult> r = run_process(o);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().to_string());
  return r ? *r : ProcessResult{};
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// While alive, makes this process the parent of orphaned descendants, so a test
// can reap the grandchildren of a child (and learn how they ended) instead of
// leaving them to init.
class Subreaper {
 public:
  Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~Subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
  Subreaper(const Subreaper&) = delete;
  Subreaper& operator=(const Subreaper&) = delete;
};

// Waits up to 5 s for `pid` (a child or adopted orphan) to end; its wait status.
std::optional<int> reap(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

// Waits up to 5 s until this process has no children left at all.
bool reap_all() {
  for (int i = 0; i < 500; ++i) {
    pid_t r = ::waitpid(-1, nullptr, WNOHANG);
    if (r < 0 && errno == ECHILD) return true;
    if (r == 0) std::this_thread::sleep_for(10ms);
  }
  return false;
}

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                       "/dbops_subprocess_test_XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(Subprocess, ExitCodes) {
  for (int code : {0, 1, 42}) {
    ProcessResult r = run_ok(sh("exit " + std::to_string(code)));
    EXPECT_EQ(r.exit_code, code);
    EXPECT_EQ(r.signal, 0);
    EXPECT_EQ(r.succeeded(), code == 0);
    EXPECT_EQ(r.describe(), "exited " + std::to_string(code));
    EXPECT_FALSE(r.timed_out);
    EXPECT_FALSE(r.cancelled);
  }
}

TEST(Subprocess, KilledBySignal) {
  ProcessResult r = run_ok(sh("kill -9 $$"));
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.describe(), "killed by signal 9");
}

TEST(Subprocess, CapturesStdoutAndStderrSeparately) {
  ProcessResult r = run_ok(sh("echo out; echo err >&2; echo more"));
  EXPECT_EQ(r.stdout_text, "out\nmore\n");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_FALSE(r.stdout_truncated);
  EXPECT_FALSE(r.stderr_truncated);
}

TEST(Subprocess, DefaultSinksDiscardStdoutAndKeepStderr) {
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "echo out; echo err >&2"};
  ProcessResult r = run_ok(o);
  EXPECT_EQ(r.stdout_text, "");
  EXPECT_EQ(r.stderr_text, "err\n");
}

TEST(Subprocess, PassesArgumentsVerbatimWithoutShell) {
  ProcessOptions o;
  o.argv = {"/usr/bin/printf", "%s|", "a b", "$HOME", "'q'", "*"};
  o.stdout_sink = OutputSink::capture();
  ProcessResult r = run_ok(o);
  EXPECT_EQ(r.stdout_text, "a b|$HOME|'q'|*|");
}

TEST(Subprocess, LooksUpProgramOnPath) {
  ProcessOptions o;
  o.argv = {"echo", "hello"};
  o.stdout_sink = OutputSink::capture();
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.stdout_text, "hello\n");
}

TEST(Subprocess, UsesThePathOfTheChildEnvironment) {
  TempDir dir;
  auto script = dir.path() / "dbops-test-tool";
  {
    std::ofstream f(script);
    f << "#!/bin/sh\necho tool ran\n";
  }
  ::chmod(script.c_str(), 0755);
  ProcessOptions o;
  o.argv = {"dbops-test-tool"};
  o.env = {{"PATH", "/nonexistent:" + dir.path().string() + ":/usr/bin:/bin"}};
  o.stdout_sink = OutputSink::capture();
  ProcessResult r = run_ok(o);
  EXPECT_EQ(r.stdout_text, "tool ran\n");
}

TEST(Subprocess, MissingExecutableIsAClearError) {
  ProcessOptions o;
  o.argv = {"dbops-no-such-program-xyz", "--version"};
  Result<ProcessResult> r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "dbops-no-such-program-xyz: not found on PATH");
  EXPECT_NE(r.error().hint.find("PATH"), std::string::npos);
}

TEST(Subprocess, MissingExecutableWithSlashIsAClearError) {
  ProcessOptions o;
  o.argv = {"/nonexistent/dir/pg_dump"};
  Result<ProcessResult> r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message, "/nonexistent/dir/pg_dump: No such file or directory");
}

TEST(Subprocess, NonExecutableFileIsPermissionDenied) {
  TempDir dir;
  auto file = dir.path() / "not-executable";
  {
    std::ofstream f(file);
    f << "#!/bin/sh\nexit 0\n";
  }
  ::chmod(file.c_str(), 0644);
  ProcessOptions o;
  o.argv = {file.string()};
  Result<ProcessResult> r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, file.string() + ": cannot execute: Permission denied");

  // The same through a PATH search.
  o.argv = {"not-executable"};
  o.env = {{"PATH", dir.path().string()}};
  r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "not-executable: cannot execute: Permission denied");
}

TEST(Subprocess, RejectsInvalidOptions) {
  ProcessOptions o;
  Result<ProcessResult> r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  o.argv = {"/bin/cat"};
  o.stdin_data = "x";
  o.stdin_source = [](char*, std::size_t) -> Result<std::size_t> { return 0; };
  r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  ProcessOptions e;
  e.argv = {"/bin/true"};
  e.env = {{"A=B", "c"}};
  r = run_process(e);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);

  ProcessOptions n;
  n.argv = {"/bin/echo", std::string("a\0b", 3)};
  r = run_process(n);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
}

TEST(Subprocess, TimeoutKillsTheChildQuickly) {
  ProcessOptions o;
  o.argv = {"/bin/sleep", "60"};
  o.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  ProcessResult r = run_ok(o);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 10s);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_EQ(r.describe(), "timed out after 0.2s");
  EXPECT_GE(r.duration, 200ms);
  Status s = r.check("sleep");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kTimeout);
  EXPECT_EQ(s.error().message, "sleep: timed out after 0.2s");
}

TEST(Subprocess, TimeoutKillsGrandchildrenInTheProcessGroup) {
  Subreaper subreaper;
  ProcessOptions o = sh("sleep 60 & echo $!; wait");
  o.timeout = 1000ms;  // ample time for the shell to start the grandchild
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.timed_out);
  auto out = lines(r.stdout_text);
  ASSERT_EQ(out.size(), 1u) << r.stdout_text;
  pid_t grandchild = std::stoi(out[0]);
  ASSERT_GT(grandchild, 1);
  // The shell is gone, so the grandchild is ours now; it died of the SIGTERM
  // sent to the whole process group.
  std::optional<int> status = reap(grandchild);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGTERM);
}

TEST(Subprocess, ChildIgnoringSigtermIsKilledAfterTheGrace) {
  // The child reports once its trap is in place; the callback then cancels it, so
  // the test does not depend on how fast the shell starts.
  Subreaper subreaper;
  std::atomic<bool> cancel{false};
  ProcessOptions o;
  o.argv = {"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"};
  o.kill_grace = 300ms;
  o.cancel = &cancel;
  o.stdout_sink = OutputSink::callback([&](std::string_view chunk) -> Status {
    if (chunk.find("ready") != std::string_view::npos) cancel = true;
    return ok();
  });
  auto start = std::chrono::steady_clock::now();
  ProcessResult r = run_ok(o);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(r.cancelled);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 10s);
  // The `sleep 1` the shell was running (also ignoring SIGTERM) was killed too.
  EXPECT_TRUE(reap_all());
}

TEST(Subprocess, ZeroGraceKillsAtOnce) {
  ProcessOptions o;
  o.argv = {"/bin/sleep", "60"};
  o.timeout = 100ms;
  o.kill_grace = 0ms;
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
}

TEST(Subprocess, CancellationFromAnotherThread) {
  std::atomic<bool> cancel{false};
  ProcessOptions o;
  o.argv = {"/bin/sleep", "60"};
  o.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(150ms);
    cancel = true;
  });
  auto start = std::chrono::steady_clock::now();
  ProcessResult r = run_ok(o);
  auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_FALSE(r.succeeded());
  EXPECT_EQ(r.describe(), "cancelled");
  EXPECT_LT(took, 10s);
  EXPECT_EQ(r.check("sleep").error().code, ErrorCode::kCancelled);
}

TEST(Subprocess, AlreadyCancelledDoesNotStart) {
  std::atomic<bool> cancel{true};
  TempDir dir;
  ProcessOptions o = sh("touch started");
  o.cwd = dir.path().string();
  o.cancel = &cancel;
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "started"));
}

TEST(Subprocess, LargeOutputStreamsThroughCallback) {
  constexpr std::size_t kBytes = 50'000'000;
  std::size_t total = 0;
  bool all_zero = true;
  ProcessOptions o;
  o.argv = {"head", "-c", std::to_string(kBytes), "/dev/zero"};
  o.stdout_sink = OutputSink::callback([&](std::string_view chunk) -> Status {
    total += chunk.size();
    if (chunk.find_first_not_of('\0') != std::string_view::npos) all_zero = false;
    return ok();
  });
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.succeeded()) << r.describe();
  EXPECT_EQ(total, kBytes);
  EXPECT_TRUE(all_zero);
  EXPECT_TRUE(r.stdout_text.empty());
}

TEST(Subprocess, CatEchoesLargeStdinFromSourceWithoutDeadlock) {
  constexpr std::size_t kBytes = 8 << 20;
  std::size_t produced = 0;
  std::size_t consumed = 0;
  bool in_order = true;
  auto byte_at = [](std::size_t i) { return static_cast<char>((i * 7 + i / 251) & 0xff); };
  ProcessOptions o;
  // cat copies stdin to stdout and also writes to stderr as it goes, so all three
  // pipes are busy at once.
  o.argv = {"/bin/sh", "-c", "cat; head -c 300000 /dev/zero >&2"};
  o.stdin_source = [&](char* buf, std::size_t cap) -> Result<std::size_t> {
    std::size_t n = std::min(cap, kBytes - produced);
    for (std::size_t i = 0; i < n; ++i) buf[i] = byte_at(produced + i);
    produced += n;
    return n;
  };
  o.stdout_sink = OutputSink::callback([&](std::string_view chunk) -> Status {
    for (char c : chunk) {
      if (c != byte_at(consumed++)) in_order = false;
    }
    return ok();
  });
  o.stderr_sink = OutputSink::capture(1000);
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.succeeded()) << r.describe();
  EXPECT_EQ(produced, kBytes);
  EXPECT_EQ(consumed, kBytes);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(r.stderr_text.size(), 1000u);
  EXPECT_TRUE(r.stderr_truncated);
  EXPECT_FALSE(r.stdin_closed_early);
}

TEST(Subprocess, StdinDataIsWrittenInFull) {
  std::string data(3 << 20, 'x');
  for (std::size_t i = 0; i < data.size(); i += 4096) data[i] = '\n';
  ProcessOptions o;
  o.argv = {"/bin/cat"};
  o.stdin_data = data;
  o.stdout_sink = OutputSink::capture(16 << 20);
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.succeeded());
  EXPECT_EQ(r.stdout_text, data);
}

TEST(Subprocess, ChildClosingStdinEarlyDoesNotKillUs) {
  sigset_t before;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &before);

  ProcessOptions o;
  o.argv = {"head", "-c", "10"};
  o.stdin_data = std::string(8 << 20, 'a');
  o.stdout_sink = OutputSink::capture();
  ProcessResult r = run_ok(o);
  EXPECT_TRUE(r.succeeded()) << r.describe();
  EXPECT_EQ(r.stdout_text, "aaaaaaaaaa");
  EXPECT_TRUE(r.stdin_closed_early);

  // The caller's signal mask is restored and no SIGPIPE is left pending.
  sigset_t after;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &after);
  EXPECT_EQ(sigismember(&before, SIGPIPE), sigismember(&after, SIGPIPE));
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

TEST(Subprocess, ChildGetsDefaultSigpipeEvenWhenWeIgnoreIt) {
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  // yes dies of SIGPIPE once head has read enough, as in a shell.
  ProcessResult r = run_ok(sh("yes | head -c 5 >/dev/null; echo done"));
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_TRUE(r.succeeded()) << r.describe() << r.stderr_text;
  EXPECT_EQ(r.stdout_text, "done\n");
  EXPECT_EQ(r.stderr_text, "");  // no "yes: standard output: Broken pipe"
}

TEST(Subprocess, CaptureLimitTruncates) {
  ProcessOptions o;
  o.argv = {"head", "-c", "1000", "/dev/zero"};
  o.stdout_sink = OutputSink::capture(100);
  ProcessResult r = run_ok(o);
  EXPECT_EQ(r.stdout_text.size(), 100u);
  EXPECT_TRUE(r.stdout_truncated);

  o.stdout_sink = OutputSink::capture(1000);
  r = run_ok(o);
  EXPECT_EQ(r.stdout_text.size(), 1000u);
  EXPECT_FALSE(r.stdout_truncated);
}

TEST(Subprocess, CaptureTailKeepsTheEnd) {
  ProcessOptions o;
  o.argv = {"seq", "1", "100000"};
  o.stdout_sink = OutputSink::capture_tail(13);
  ProcessResult r = run_ok(o);
  EXPECT_EQ(r.stdout_text, "99999\n100000\n");
  EXPECT_TRUE(r.stdout_truncated);

  o.argv = {"seq", "1", "3"};
  r = run_ok(o);
  EXPECT_EQ(r.stdout_text, "1\n2\n3\n");
  EXPECT_FALSE(r.stdout_truncated);
}

TEST(Subprocess, ExtraEnvironmentReachesChildButNotArgv) {
  ::setenv("DBOPS_TEST_OVERRIDDEN", "parent", 1);
  ProcessOptions o =
      sh("echo \"$DBOPS_TEST_SECRET\"; echo \"$DBOPS_TEST_OVERRIDDEN\"; env | grep -c "
         "DBOPS_TEST_OVERRIDDEN; tr '\\0' ' ' </proc/$$/cmdline");
  o.env = {{"DBOPS_TEST_SECRET", "hunter2"}, {"DBOPS_TEST_OVERRIDDEN", "child"}};
  ProcessResult r = run_ok(o);
  ::unsetenv("DBOPS_TEST_OVERRIDDEN");
  auto out = lines(r.stdout_text);
  ASSERT_EQ(out.size(), 4u) << r.stdout_text;
  EXPECT_EQ(out[0], "hunter2");
  EXPECT_EQ(out[1], "child");
  EXPECT_EQ(out[2], "1");
  EXPECT_EQ(out[3].find("hunter2"), std::string::npos);
}

TEST(Subprocess, InheritsEnvironmentByDefault) {
  ::setenv("DBOPS_TEST_INHERITED", "yes", 1);
  ProcessResult r = run_ok(sh("echo \"${DBOPS_TEST_INHERITED:-unset}\""));
  ::unsetenv("DBOPS_TEST_INHERITED");
  EXPECT_EQ(r.stdout_text, "yes\n");
}

TEST(Subprocess, ClearEnvKeepsOnlyTheEssentials) {
  ::setenv("DBOPS_TEST_INHERITED", "yes", 1);
  ProcessOptions o;
  o.argv = {"/usr/bin/env"};
  o.clear_env = true;
  o.env = {{"PGPASSWORD", "s3cret"}};
  o.stdout_sink = OutputSink::capture();
  ProcessResult r = run_ok(o);
  ::unsetenv("DBOPS_TEST_INHERITED");
  std::set<std::string> names;
  for (const auto& line : lines(r.stdout_text)) names.insert(line.substr(0, line.find('=')));
  EXPECT_FALSE(names.contains("DBOPS_TEST_INHERITED"));
  EXPECT_TRUE(names.contains("PGPASSWORD"));
  if (std::getenv("PATH") != nullptr) {
    EXPECT_TRUE(names.contains("PATH"));
  }
  for (const auto& name : names) {
    EXPECT_TRUE(name == "PATH" || name == "HOME" || name == "LANG" || name == "TZ" ||
                name == "PGPASSWORD")
        << name;
  }
}

TEST(Subprocess, WorkingDirectory) {
  TempDir dir;
  ProcessOptions o;
  o.argv = {"/bin/pwd", "-P"};
  o.cwd = dir.path().string();
  o.stdout_sink = OutputSink::capture();
  ProcessResult r = run_ok(o);
  EXPECT_EQ(r.stdout_text, std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(Subprocess, MissingWorkingDirectoryIsAnError) {
  ProcessOptions o;
  o.argv = {"/bin/true"};
  o.cwd = "/nonexistent/dbops/dir";
  Result<ProcessResult> r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(r.error().message,
            "/bin/true: cannot change directory to /nonexistent/dbops/dir: No such file or "
            "directory");
}

TEST(Subprocess, NoFileDescriptorLeaksIntoTheChild) {
  // A descriptor without O_CLOEXEC, as a careless library might leave.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  ProcessOptions o;
  o.argv = {"/bin/ls", "/proc/self/fd"};
  o.stdout_sink = OutputSink::capture();
  ProcessResult r = run_ok(o);
  ::close(leaky);
  ASSERT_TRUE(r.succeeded()) << r.stderr_text;
  // 0, 1, 2 and the directory ls itself opened to list /proc/self/fd.
  std::vector<std::string> expected = {"0", "1", "2", "3"};
  EXPECT_EQ(lines(r.stdout_text), expected);
}

TEST(Subprocess, NoDescriptorsLeakInTheParent) {
  auto count_fds = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
  };
  std::size_t before = count_fds();
  for (int i = 0; i < 5; ++i) {
    ProcessOptions o = sh("echo hi; echo there >&2");
    o.stdin_data = "input";
    run_ok(o);
    ProcessOptions missing;
    missing.argv = {"dbops-no-such-program-xyz"};
    EXPECT_FALSE(run_process(missing).has_value());
  }
  EXPECT_EQ(count_fds(), before);
}

TEST(Subprocess, NoZombiesAfterManyRuns) {
  for (int i = 0; i < 30; ++i) {
    ProcessOptions o;
    o.argv = {i % 2 == 0 ? "/bin/true" : "/bin/false"};
    run_ok(o);
  }
  ProcessOptions missing;
  missing.argv = {"dbops-no-such-program-xyz"};
  EXPECT_FALSE(run_process(missing).has_value());
  ProcessOptions timeout;
  timeout.argv = {"/bin/sleep", "30"};
  timeout.timeout = 50ms;
  run_ok(timeout);

  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(Subprocess, CallbackErrorStopsTheChild) {
  std::size_t seen = 0;
  ProcessOptions o;
  o.argv = {"/usr/bin/yes"};
  o.stdout_sink = OutputSink::callback([&](std::string_view chunk) -> Status {
    seen += chunk.size();
    if (seen > (1 << 20)) return fail(ErrorCode::kIo, "upload: connection reset");
    return ok();
  });
  auto start = std::chrono::steady_clock::now();
  Result<ProcessResult> r = run_process(o);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "upload: connection reset");
  errno = 0;
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
}

TEST(Subprocess, StdinSourceErrorStopsTheChild) {
  int calls = 0;
  ProcessOptions o;
  o.argv = {"/bin/cat"};
  o.stdin_source = [&](char* buf, std::size_t cap) -> Result<std::size_t> {
    if (++calls > 3) return fail(ErrorCode::kIo, "read dump: connection lost");
    std::fill(buf, buf + cap, 'z');
    return cap;
  };
  Result<ProcessResult> r = run_process(o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "read dump: connection lost");
}

TEST(Subprocess, ReturnsWhenChildExitsEvenIfAGrandchildHoldsItsOutput) {
  Subreaper subreaper;
  // The background sleep inherits stdout and keeps the pipe open after the
  // shell exits; run_process() must not wait for it.
  ProcessOptions o = sh("sleep 30 & echo $!");
  auto start = std::chrono::steady_clock::now();
  ProcessResult r = run_ok(o);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);
  EXPECT_TRUE(r.succeeded());
  auto out = lines(r.stdout_text);
  ASSERT_EQ(out.size(), 1u) << r.stdout_text;
  pid_t grandchild = std::stoi(out[0]);
  // A normal exit leaves the rest of the group alone.
  EXPECT_EQ(::kill(grandchild, 0), 0);
  ::kill(grandchild, SIGKILL);
  EXPECT_TRUE(reap(grandchild).has_value());
}

TEST(Subprocess, CheckTurnsFailuresIntoErrors) {
  ProcessResult r =
      run_ok(sh("echo 'pg_dump: detail' >&2; echo 'pg_dump: error: boom' >&2; exit 3"));
  Status s = r.check("pg_dump");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code, ErrorCode::kIo);
  EXPECT_EQ(s.error().message, "pg_dump: exited 3: pg_dump: error: boom");

  r = run_ok(sh("exit 0"));
  EXPECT_TRUE(r.check("x").has_value());

  r = run_ok(sh("exit 1"));
  EXPECT_EQ(r.check("x").error().message, "x: exited 1");
}

TEST(Subprocess, ConcurrentRunsFromSeveralThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        ProcessOptions o;
        o.argv = {"/bin/cat"};
        o.stdin_data = "thread " + std::to_string(t);
        o.stdout_sink = OutputSink::capture();
        Result<ProcessResult> r = run_process(o);
        if (r && r->stdout_text == "thread " + std::to_string(t)) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good.load(), 20);
}

TEST(Subprocess, RunsAsAnotherUser) {
  ASSERT_EQ(::geteuid(), 0U) << "switching users needs root; the test suite runs as root";
  auto nobody = user_by_name("nobody");
  ASSERT_TRUE(nobody) << nobody.error().to_string();
  auto r = run_process({.argv = {"id", "-u"},
                        .run_as = *nobody,
                        .timeout = std::chrono::seconds(10),
                        .stdout_sink = OutputSink::capture()});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(std::string(trim(r->stdout_text)), std::to_string(nobody->uid));
  EXPECT_EQ(user_by_name("no-such-user-dbops").error().code, ErrorCode::kConfig);
}

}  // namespace
}  // namespace dbops
