// The engine launcher against real servers: standalone start and stop per
// engine, directory cleanup, pause/resume, stale-directory reaping and the
// replicated topologies (a write on the primary is read on the replicas).
#include "engine/launcher/launcher.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "core/background_process.hpp"
#include "engine/launcher/launcher_internal.hpp"
#include "support/instances.hpp"
#include "support/support.hpp"

namespace dbops {
namespace {

namespace fs = std::filesystem;
namespace launcher = engine::launcher;
using namespace std::chrono_literals;

// Process state letter from /proc/<pid>/stat; 0 when there is no such process.
char proc_state(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() ? 0 : text[close + 2];
}

bool process_gone(int pid, std::chrono::milliseconds within = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  for (;;) {
    char s = proc_state(pid);
    if (s == 0 || s == 'Z' || s == 'X') return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
}

// Polls `read` until it returns `expected` (replication is asynchronous).
::testing::AssertionResult eventually_equals(const std::function<Result<std::string>()>& read,
                                             const std::string& expected,
                                             std::chrono::milliseconds within = 15s) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  std::string last;
  for (;;) {
    auto value = read();
    last = value ? *value : "error: " + value.error().to_string();
    if (value && *value == expected) return ::testing::AssertionSuccess();
    if (std::chrono::steady_clock::now() > deadline) {
      return ::testing::AssertionFailure() << "expected \"" << expected << "\" within "
                                           << within.count() << " ms; last \"" << last << "\"";
    }
    std::this_thread::sleep_for(50ms);
  }
}

// Checks common to every standalone instance; stops it and checks cleanup.
void check_instance_and_destroy(std::unique_ptr<launcher::Instance> instance,
                                std::string_view engine) {
  EXPECT_EQ(instance->engine(), engine);
  EXPECT_EQ(instance->host(), "127.0.0.1");
  EXPECT_GT(instance->port(), 0);
  EXPECT_GT(instance->pid(), 0);
  const fs::path dir = instance->directory();
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_TRUE(fs::is_directory(instance->data_dir()));
  EXPECT_EQ(instance->data_dir().parent_path(), dir);
  testing::expect_not_in_any_argv(instance->superuser_password().reveal());

  config::Target target = instance->target("t1");
  EXPECT_EQ(target.name, "t1");
  EXPECT_EQ(target.engine, engine);
  EXPECT_EQ(target.host, "127.0.0.1");
  EXPECT_EQ(target.port, instance->port());
  EXPECT_EQ(target.user, instance->superuser());
  EXPECT_EQ(target.password, instance->superuser_password());

  const int pid = instance->pid();
  const auto start = std::chrono::steady_clock::now();
  instance.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  EXPECT_FALSE(fs::exists(dir)) << dir;
  EXPECT_TRUE(process_gone(pid));
}

TEST(Launcher, PostgresStartsAndStops) {
  ASSERT_OK_AND_ASSIGN(auto pg, launcher::start_postgres());
  auto out = testing::psql(*pg,
                           "select current_user, current_setting('fsync'), "
                           "current_setting('archive_mode'), current_setting('listen_addresses')");
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(*out, "dbops|off|off|127.0.0.1");
  EXPECT_EQ(pg->target("x").database, "postgres");
  check_instance_and_destroy(std::move(pg), "postgres");
}

TEST(Launcher, PostgresRejectsAWrongPassword) {
  auto& pg = testing::shared_postgres();
  ProcessOptions o;
  ASSERT_OK_AND_ASSIGN(auto psql, launcher::tool_path("postgres", "psql"));
  o.argv = {psql.string(), "-X",    "-h", pg.host(),  "-p", std::to_string(pg.port()),
            "-U",          "dbops", "-d", "postgres", "-c", "select 1"};
  o.env = {{"PGPASSWORD", "wrong"}, {"PGCONNECT_TIMEOUT", "5"}};
  o.clear_env = true;
  o.timeout = 10s;
  o.stderr_sink = OutputSink::capture();
  ASSERT_OK_AND_ASSIGN(auto result, run_process(o));
  EXPECT_FALSE(result.succeeded());
  EXPECT_NE(result.stderr_text.find("password authentication failed"), std::string::npos)
      << result.stderr_text;
}

TEST(Launcher, MariadbStartsAndStops) {
  ASSERT_OK_AND_ASSIGN(auto db, launcher::start_mariadb());
  auto out = testing::mariadb(*db,
                              "SELECT CURRENT_USER(), @@performance_schema, @@event_scheduler, "
                              "@@log_bin, @@bind_address, "
                              "(SELECT COUNT(*) FROM mysql.user WHERE User = '')");
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(*out, "root@127.0.0.1\t1\tOFF\t0\t127.0.0.1\t0");
  EXPECT_EQ(db->target("x").engine, "mysql");
  EXPECT_EQ(db->superuser(), "root");
  check_instance_and_destroy(std::move(db), "mysql");
}

TEST(Launcher, RedisStartsAndStops) {
  ASSERT_OK_AND_ASSIGN(auto redis, launcher::start_redis());
  auto out = testing::redis_cli(*redis, {"CONFIG", "GET", "save"});
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(*out, "save\n");
  auto ping = testing::redis_cli(*redis, {"PING"});
  ASSERT_TRUE(ping.has_value()) << ping.error().to_string();
  EXPECT_EQ(*ping, "PONG");
  check_instance_and_destroy(std::move(redis), "redis");
}

TEST(Launcher, StartFailureCarriesTheServerLog) {
  launcher::Options options;
  options.settings = {{"no-such-directive", "1"}};
  auto redis = launcher::start_redis(options);
  ASSERT_FALSE(redis.has_value());
  const std::string message = redis.error().to_string();
  EXPECT_NE(message.find("server exited during start"), std::string::npos) << message;
  EXPECT_NE(message.find("no-such-directive"), std::string::npos) << message;
}

// The start loop with a stand-in server (a shell script), to drive the paths
// real servers rarely take.
class FakeServer : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace detail = launcher::detail;
    auto as = detail::resolve_run_as({}, "nobody");
    ASSERT_TRUE(as.has_value()) << as.error().to_string();
    detail::LaunchedInstance::Shape shape;
    shape.engine = "fake";
    shape.log_name = "fake.log";
    shape.superuser = "nobody";
    shape.stop_grace = 2s;
    auto created = detail::LaunchedInstance::create({}, "ft", shape, *as, Secret());
    ASSERT_TRUE(created.has_value()) << created.error().to_string();
    instance_ = std::move(*created);
  }

  std::unique_ptr<launcher::detail::LaunchedInstance> instance_;
};

TEST_F(FakeServer, RetriesAnotherPortWhenTheServerCannotBind) {
  std::vector<int> ports;
  launcher::detail::LaunchedInstance::Launch launch;
  launch.argv = {"/bin/sh", "-c",
                 "if [ -e tried ]; then touch up; exec sleep 30; fi; touch tried; "
                 "echo 'FATAL:  could not bind IPv4 address \"127.0.0.1\": Address already in "
                 "use'; exit 1"};
  launch.configure = [&](int port) -> Status {
    ports.push_back(port);
    return {};
  };
  launch.ready = [&](std::string&) -> Result<bool> {
    return fs::exists(instance_->directory() / "up");
  };
  auto started = instance_->start(launch, launcher::detail::Clock::now() + 20s);
  ASSERT_TRUE(started.has_value()) << started.error().to_string();
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(instance_->port(), ports.back());
  EXPECT_NE(testing::read_file(instance_->log_file()).find("Address already in use"),
            std::string::npos);
}

TEST_F(FakeServer, NotReadyInTimeIsATimeoutWithTheLog) {
  launcher::detail::LaunchedInstance::Launch launch;
  launch.argv = {"/bin/sh", "-c", "echo 'still recovering'; exec sleep 30"};
  launch.configure = [](int) -> Status { return {}; };
  launch.ready = [](std::string& why_not) -> Result<bool> {
    why_not = "probe says no";
    return false;
  };
  auto started = instance_->start(launch, launcher::detail::Clock::now() + 300ms);
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::kTimeout);
  const std::string message = started.error().to_string();
  EXPECT_NE(message.find("probe says no"), std::string::npos) << message;
  EXPECT_NE(message.find("still recovering"), std::string::npos) << message;
  const int pid = instance_->pid();
  const fs::path dir = instance_->directory();
  instance_.reset();
  EXPECT_TRUE(process_gone(pid));
  EXPECT_FALSE(fs::exists(dir));
}

TEST(Launcher, SettingsReachTheServer) {
  launcher::Options options;
  options.settings = {{"max_connections", "33"}, {"TimeZone", "America/New_York"}};
  ASSERT_OK_AND_ASSIGN(auto pg, launcher::start_postgres(options));
  auto out = testing::psql(
      *pg, "select current_setting('max_connections') || ' ' || current_setting('TimeZone')");
  ASSERT_TRUE(out.has_value()) << out.error().to_string();
  EXPECT_EQ(*out, "33 America/New_York");
}

// Resumes on scope exit, so that a failed assertion cannot leave a shared
// server stopped for the tests that follow.
class ResumeGuard {
 public:
  explicit ResumeGuard(launcher::Instance& instance) : instance_(instance) {}
  ~ResumeGuard() { (void)instance_.resume(); }

 private:
  launcher::Instance& instance_;
};

TEST(Launcher, PausedPostgresStopsAnsweringUntilResumed) {
  auto& pg = testing::shared_postgres();
  ASSERT_TRUE(testing::psql(pg, "select 1").has_value());
  ResumeGuard guard(pg);
  ASSERT_TRUE(pg.pause().has_value());
  auto paused = testing::psql(pg, "select 1", 1s);
  EXPECT_FALSE(paused.has_value()) << "a paused server answered";
  ASSERT_TRUE(pg.resume().has_value());
  auto resumed = testing::psql(pg, "select 1", 10s);
  ASSERT_TRUE(resumed.has_value()) << resumed.error().to_string();
  EXPECT_EQ(*resumed, "1");
}

TEST(Launcher, PausedMariadbStopsAnsweringUntilResumed) {
  auto& db = testing::shared_mariadb();
  ASSERT_TRUE(testing::mariadb(db, "SELECT 1").has_value());
  ResumeGuard guard(db);
  ASSERT_TRUE(db.pause().has_value());
  EXPECT_FALSE(testing::mariadb(db, "SELECT 1", 1s).has_value()) << "a paused server answered";
  ASSERT_TRUE(db.resume().has_value());
  auto resumed = testing::mariadb(db, "SELECT 1", 10s);
  ASSERT_TRUE(resumed.has_value()) << resumed.error().to_string();
}

TEST(Launcher, PausedRedisStopsAnsweringUntilResumed) {
  auto& redis = testing::shared_redis();
  ASSERT_TRUE(testing::redis_cli(redis, {"PING"}).has_value());
  ResumeGuard guard(redis);
  ASSERT_TRUE(redis.pause().has_value());
  EXPECT_FALSE(testing::redis_cli(redis, {"PING"}, 1s).has_value()) << "a paused server answered";
  ASSERT_TRUE(redis.resume().has_value());
  auto resumed = testing::redis_cli(redis, {"PING"}, 10s);
  ASSERT_TRUE(resumed.has_value()) << resumed.error().to_string();
  EXPECT_EQ(*resumed, "PONG");
}

TEST(Launcher, StopIsIdempotentAndTheDirectoryGoesWithTheObject) {
  ASSERT_OK_AND_ASSIGN(auto redis, launcher::start_redis());
  const fs::path dir = redis->directory();
  const int pid = redis->pid();
  ASSERT_TRUE(redis->stop().has_value());
  EXPECT_TRUE(process_gone(pid));
  ASSERT_TRUE(redis->stop().has_value());
  EXPECT_TRUE(fs::exists(dir));
  redis.reset();
  EXPECT_FALSE(fs::exists(dir));
}

// A launching process killed without running destructors: its servers die
// with it (parent-death signal) and the next launcher reaps its directory,
// killing whatever still runs in it.
TEST(Launcher, ReapsDirectoriesOfDeadOwners) {
  testing::TempDir base;
  fs::permissions(base.path(), fs::perms(0755));  // reachable by the server's user
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(fds[0]);
    launcher::Options options;
    options.base_dir = base.path();
    std::string report = "error";
    // Both objects are leaked on purpose: nothing may clean up behind the test.
    if (auto redis = launcher::start_redis(options)) {
      auto* instance = redis->release();
      // A straggler that ignores the parent's death, running in the directory.
      BackgroundOptions straggler;
      straggler.argv = {"/bin/sleep", "60"};
      straggler.cwd = instance->directory();
      if (auto sleeper = BackgroundProcess::spawn(straggler)) {
        auto* kept = new BackgroundProcess(std::move(*sleeper));
        report = instance->directory().string() + "\n" + std::to_string(instance->pid()) + "\n" +
                 std::to_string(kept->pid()) + "\n";
      }
    }
    (void)!::write(fds[1], report.data(), report.size());
    ::_exit(0);  // no destructors
  }
  ::close(fds[1]);
  std::string report;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof(buf))) > 0;) report.append(buf, n);
  ::close(fds[0]);
  ::waitpid(owner, nullptr, 0);
  std::istringstream in(report);
  std::string dir;
  int server_pid = 0;
  int straggler_pid = 0;
  ASSERT_TRUE(in >> dir >> server_pid >> straggler_pid) << report;

  EXPECT_TRUE(process_gone(server_pid)) << "the server outlived its launcher";
  EXPECT_TRUE(fs::exists(dir));
  EXPECT_FALSE(process_gone(straggler_pid, 0ms));

  launcher::reap_stale(base.path());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(process_gone(straggler_pid));
}

TEST(Launcher, ReapLeavesLiveInstancesAlone) {
  testing::TempDir base;
  fs::permissions(base.path(), fs::perms(0755));
  launcher::Options options;
  options.base_dir = base.path();
  ASSERT_OK_AND_ASSIGN(auto redis, launcher::start_redis(options));
  launcher::reap_stale(base.path());
  EXPECT_TRUE(fs::exists(redis->directory()));
  auto ping = testing::redis_cli(*redis, {"PING"});
  EXPECT_TRUE(ping.has_value()) << ping.error().to_string();
}

TEST(Topology, PostgresReplicasStreamWrites) {
  ASSERT_OK_AND_ASSIGN(auto topology, launcher::start_postgres_replicated(2));
  ASSERT_EQ(topology.replicas.size(), 2u);
  auto& primary = *topology.primary;
  auto senders = testing::psql(primary,
                               "select string_agg(application_name || ':' || state, ',' order by "
                               "application_name) from pg_stat_replication");
  ASSERT_TRUE(senders.has_value()) << senders.error().to_string();
  EXPECT_EQ(*senders, "replica1:streaming,replica2:streaming");
  auto hints = testing::psql(primary, "select current_setting('wal_log_hints')");
  ASSERT_TRUE(hints.has_value());
  EXPECT_EQ(*hints, "on");

  auto write = testing::psql(primary,
                             "create table smoke (id int primary key, v text); "
                             "insert into smoke values (1, 'replicated')");
  ASSERT_TRUE(write.has_value()) << write.error().to_string();
  for (auto& replica : topology.replicas) {
    EXPECT_EQ(replica->superuser_password(), primary.superuser_password());
    EXPECT_NE(replica->port(), primary.port());
    auto recovery = testing::psql(*replica, "select pg_is_in_recovery()");
    ASSERT_TRUE(recovery.has_value()) << recovery.error().to_string();
    EXPECT_EQ(*recovery, "t");
    EXPECT_TRUE(eventually_equals(
        [&] { return testing::psql(*replica, "select v from smoke where id = 1"); }, "replicated"));
    testing::expect_not_in_any_argv(replica->superuser_password().reveal());
  }
}

TEST(Topology, MariadbReplicaAppliesWrites) {
  ASSERT_OK_AND_ASSIGN(auto pair, launcher::start_mariadb_replicated());
  auto settings = testing::mariadb(*pair.primary,
                                   "SELECT @@log_bin, @@log_slave_updates, @@gtid_strict_mode, "
                                   "@@binlog_format, @@server_id");
  ASSERT_TRUE(settings.has_value()) << settings.error().to_string();
  EXPECT_EQ(*settings, "1\t1\t1\tROW\t1");
  auto write = testing::mariadb(*pair.primary,
                                "CREATE DATABASE smoke; "
                                "CREATE TABLE smoke.t (id INT PRIMARY KEY, v VARCHAR(20)); "
                                "INSERT INTO smoke.t VALUES (1, 'replicated');");
  ASSERT_TRUE(write.has_value()) << write.error().to_string();
  EXPECT_TRUE(eventually_equals(
      [&] { return testing::mariadb(*pair.replica, "SELECT v FROM smoke.t WHERE id = 1"); },
      "replicated"));
  auto gtid = testing::mariadb(*pair.replica, "SELECT @@server_id, @@gtid_slave_pos <> ''");
  ASSERT_TRUE(gtid.has_value()) << gtid.error().to_string();
  EXPECT_EQ(*gtid, "2\t1");
}

TEST(Topology, RedisReplicaFollowsThePrimary) {
  ASSERT_OK_AND_ASSIGN(auto pair, launcher::start_redis_replicated());
  auto set = testing::redis_cli(*pair.primary, {"SET", "smoke", "replicated"});
  ASSERT_TRUE(set.has_value()) << set.error().to_string();
  EXPECT_TRUE(eventually_equals(
      [&] {
        return testing::redis_cli(*pair.replica, {"GET", "smoke"});
      },
      "replicated"));
  auto role = testing::redis_cli(*pair.replica, {"ROLE"});
  ASSERT_TRUE(role.has_value()) << role.error().to_string();
  EXPECT_EQ(role->substr(0, 5), "slave");
}

}  // namespace
}  // namespace dbops
