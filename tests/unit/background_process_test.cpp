#include "core/background_process.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "support/support.hpp"

namespace dbops {
namespace {

using namespace std::chrono_literals;

BackgroundOptions sh(std::string script, const std::filesystem::path& out = {}) {
  BackgroundOptions o;
  o.argv = {"/bin/sh", "-c", std::move(script)};
  o.output_file = out;
  return o;
}

BackgroundProcess spawn_ok(const BackgroundOptions& o) {
  auto p = BackgroundProcess::spawn(o);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error().to_string());
  return p ? std::move(*p) : BackgroundProcess();
}

// The process state letter from /proc/<pid>/stat ('R', 'S', 'T', 'Z'), or 0
// when there is no such process.
char proc_state(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return 0;
  return text[close + 2];
}

bool gone(pid_t pid, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    char s = proc_state(pid);
    if (s == 0 || s == 'Z' || s == 'X') return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(BackgroundProcess, RunsAndReportsExitWithOutputInFile) {
  testing::TempDir dir;
  auto p = spawn_ok(sh("echo out; echo err >&2; exit 3", dir / "log"));
  ASSERT_GT(p.pid(), 0);
  ASSERT_TRUE(p.wait_for(5s));
  EXPECT_FALSE(p.running());
  EXPECT_EQ(p.describe(), "exited 3");
  EXPECT_EQ(testing::read_file(dir / "log"), "out\nerr\n");
}

TEST(BackgroundProcess, OutputFileIsAppended) {
  testing::TempDir dir;
  dir.write("log", "before\n");
  auto p = spawn_ok(sh("echo after", dir / "log"));
  ASSERT_TRUE(p.wait_for(5s));
  EXPECT_EQ(testing::read_file(dir / "log"), "before\nafter\n");
}

TEST(BackgroundProcess, MissingProgramIsAnError) {
  BackgroundOptions o;
  o.argv = {"dbops-no-such-program"};
  auto p = BackgroundProcess::spawn(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, ErrorCode::kNotFound);
  EXPECT_NE(p.error().message.find("dbops-no-such-program"), std::string::npos);
}

TEST(BackgroundProcess, BadWorkingDirectoryIsAnError) {
  auto o = sh("exit 0");
  o.cwd = "/nonexistent/dir";
  auto p = BackgroundProcess::spawn(o);
  ASSERT_FALSE(p.has_value());
  EXPECT_NE(p.error().message.find("change directory to /nonexistent/dir"), std::string::npos)
      << p.error().message;
}

TEST(BackgroundProcess, EnvironmentIsPassed) {
  testing::TempDir dir;
  auto o = sh("echo \"$DBOPS_BG_TEST\"", dir / "log");
  o.env = {{"DBOPS_BG_TEST", "value 1"}};
  auto p = spawn_ok(o);
  ASSERT_TRUE(p.wait_for(5s));
  EXPECT_EQ(testing::read_file(dir / "log"), "value 1\n");
}

TEST(BackgroundProcess, StopSendsSignalFirst) {
  auto p = spawn_ok(sh("exec sleep 30"));
  const auto start = std::chrono::steady_clock::now();
  p.stop(SIGTERM, 5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_EQ(p.describe(), "killed by signal 15");
}

TEST(BackgroundProcess, StopEscalatesToSigkillOfTheGroup) {
  testing::TempDir dir;
  auto p = spawn_ok(sh("trap '' TERM; sleep 30 & echo $! > " + (dir / "pid").string() + "; wait"));
  std::string pid_text;
  for (int i = 0; i < 200 && pid_text.empty(); ++i) {
    std::this_thread::sleep_for(10ms);
    pid_text = testing::read_file(dir / "pid");
  }
  ASSERT_FALSE(pid_text.empty());
  p.stop(SIGTERM, 200ms);
  EXPECT_EQ(p.describe(), "killed by signal 9");
  EXPECT_TRUE(gone(std::stoi(pid_text), 2s)) << "grandchild survived";
}

TEST(BackgroundProcess, DestructorKillsAndReaps) {
  pid_t pid = 0;
  {
    auto p = spawn_ok(sh("exec sleep 30"));
    pid = p.pid();
    ASSERT_TRUE(p.running());
  }
  EXPECT_TRUE(gone(pid, 2s));
  EXPECT_LT(::waitpid(pid, nullptr, WNOHANG), 0);  // already reaped
}

TEST(BackgroundProcess, SignalStopsAndContinues) {
  auto p = spawn_ok(sh("exec sleep 30"));
  ASSERT_TRUE(p.signal(SIGSTOP).has_value());
  char state = 0;
  for (int i = 0; i < 100 && state != 'T'; ++i) {
    std::this_thread::sleep_for(10ms);
    state = proc_state(p.pid());
  }
  EXPECT_EQ(state, 'T');
  ASSERT_TRUE(p.signal(SIGCONT).has_value());
  for (int i = 0; i < 100 && state == 'T'; ++i) {
    std::this_thread::sleep_for(10ms);
    state = proc_state(p.pid());
  }
  EXPECT_NE(state, 'T');
  // A stopped child still ends on stop().
  ASSERT_TRUE(p.signal(SIGSTOP).has_value());
  p.stop(SIGTERM, 5s);
  EXPECT_FALSE(p.running());
}

TEST(BackgroundProcess, OwnProcessGroup) {
  auto p = spawn_ok(sh("exec sleep 30"));
  EXPECT_EQ(::getpgid(p.pid()), p.pid());
}

TEST(BackgroundProcess, ChildOutlivesTheThreadThatSpawnedIt) {
  BackgroundProcess p;
  std::thread([&] {
    auto o = sh("exec sleep 30");
    o.parent_death_signal = SIGKILL;
    p = spawn_ok(o);
  }).join();
  ASSERT_GT(p.pid(), 0);
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(p.running()) << p.describe();
}

TEST(BackgroundProcess, ParentDeathSignalReachesTheChild) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    ::close(fds[0]);
    auto o = sh("exec sleep 30");
    o.parent_death_signal = SIGKILL;
    auto p = BackgroundProcess::spawn(o);
    pid_t pid = p ? p->pid() : 0;
    (void)!::write(fds[1], &pid, sizeof(pid));
    ::_exit(0);  // no destructors: only the kernel can stop the child now
  }
  ::close(fds[1]);
  pid_t child = 0;
  ASSERT_EQ(::read(fds[0], &child, sizeof(child)), static_cast<ssize_t>(sizeof(child)));
  ::close(fds[0]);
  ::waitpid(parent, nullptr, 0);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(gone(child, 5s)) << "child survived its parent";
}

TEST(BackgroundProcess, RunAsDropsPrivileges) {
  testing::TempDir dir;
  auto o = sh("id -u; id -G", dir / "log");
  o.run_as = RunAsUser{65534, 65534};
  o.cwd = "/";
  auto p = BackgroundProcess::spawn(o);
  if (::geteuid() != 0) {
    ASSERT_FALSE(p.has_value());
    EXPECT_NE(p.error().message.find("needs root"), std::string::npos);
    return;
  }
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  ASSERT_TRUE(p->wait_for(5s));
  EXPECT_EQ(p->describe(), "exited 0");
  EXPECT_EQ(testing::read_file(dir / "log"), "65534\n65534\n");
}

}  // namespace
}  // namespace dbops
