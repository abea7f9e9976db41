// Redis backups through the dbops binary: redis-cli --rdb into the
// repository with the end marker stripped, drills that load the RDB into a
// throwaway redis-server (redis-check-rdb, key counts, canaries), restore to a
// path, and a backup under a write load.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/subprocess.hpp"
#include "engine/launcher/launcher.hpp"
#include "support/dbops_json.hpp"
#include "support/instances.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

class BackupRedis : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& rd = shared_redis();
    must(redis_cli(rd, {"FLUSHALL"}));
    std::ofstream(dir_.path() / "dbops.yaml", std::ios::trunc)
        << "state: state.db\nrepository:\n  path: ./repo\n  lock_lease: 5s\n"
        << "targets:\n  - name: cache\n    engine: redis\n    host: 127.0.0.1\n    port: "
        << rd.port() << "\n    password: ${env:REDIS_PW}\n"
        << "    canaries:\n      - {name: before, sql: GET before, expect: \"1\"}\n";
  }
  std::vector<std::pair<std::string, std::string>> env() {
    return {{"REDIS_PW", shared_redis().superuser_password().reveal()}};
  }
  json run_json(std::vector<std::string> args, int expect_exit) {
    return run_dbops_json(std::move(args), dir_.path(), env(), expect_exit);
  }
  TempDir dir_;
};

TEST_F(BackupRedis, BackupDrillAndRestoreToAPath) {
  auto& rd = shared_redis();
  // Every common value type, in two databases.
  std::string script;
  for (int i = 0; i < 500; ++i) {
    script += "SET key:" + std::to_string(i) + " value-" + std::to_string(i) + "\n";
  }
  script +=
      "HSET h f1 v1 f2 v2\nRPUSH l a b c\nSADD s x y z\nZADD z 1 a 2 b\nSET before 1\n"
      "SELECT 3\nSET other 1\nSET other2 2\n";
  {
    auto r = run_process({.argv = {engine::launcher::tool_path("redis", "redis-cli")->string(),
                                   "-h", "127.0.0.1", "-p", std::to_string(rd.port())},
                          .env = {{"REDISCLI_AUTH", rd.superuser_password().reveal()}},
                          .timeout = 30s,
                          .stdin_data = script});
    ASSERT_TRUE(r && r->succeeded());
  }
  const json taken = run_json({"backup", "run"}, 0);
  ASSERT_TRUE(taken.is_array()) << taken.dump();
  const std::string id = taken[0]["result"].value("backup_id", "");
  ASSERT_FALSE(id.empty()) << taken.dump();
  EXPECT_EQ(taken[0]["result"]["method"], "rdb");
  EXPECT_TRUE(taken[0]["result"]["position"].contains("repl-id")) << taken.dump();
  must(redis_cli(rd, {"SET", "after", "1"}));

  const json shown = run_json({"backup", "show", id}, 0);
  EXPECT_EQ(shown["details"]["keys.db0"], "505") << shown.dump();
  EXPECT_EQ(shown["details"]["keys.db3"], "2") << shown.dump();
  EXPECT_EQ(shown["details"]["keys.complete"], "true") << shown.dump();

  const json drill = run_json({"drill"}, 0);
  std::set<std::string> names;
  for (const auto& c : drill[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    names.insert(c["name"]);
  }
  EXPECT_EQ(names,
            (std::set<std::string>{"checksums", "redis-check-rdb", "key_counts", "canary:before"}));

  // The restored RDB is the RDB alone (no end marker) and holds the key from
  // before but not the one from after.
  const fs::path to = dir_.path() / "restored.rdb";
  run_json({"backup", "restore", id, "--to", to.string()}, 0);
  const std::string rdb = read_file(to);
  EXPECT_EQ(rdb.rfind("REDIS", 0), 0U);
  EXPECT_EQ(static_cast<unsigned char>(rdb[rdb.size() - 9]), 0xFF) << "ends with EOF + CRC64";
  engine::launcher::Options lo;
  lo.redis_rdb = to;
  auto loaded = engine::launcher::start_redis(lo);
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  EXPECT_EQ(must(redis_cli(**loaded, {"GET", "before"})), "1");
  EXPECT_EQ(must(redis_cli(**loaded, {"EXISTS", "after"})), "0");
  EXPECT_EQ(must(redis_cli(**loaded, {"DBSIZE"})), "505");
}

TEST_F(BackupRedis, AStreamStopsTheKeyWalkButNotTheDrill) {
  auto& rd = shared_redis();
  must(redis_cli(rd, {"SET", "before", "1"}));
  must(redis_cli(rd, {"XADD", "events", "*", "k", "v"}));
  const json taken = run_json({"backup", "run"}, 0);
  const std::string id = taken[0]["result"].value("backup_id", "");
  const json shown = run_json({"backup", "show", id}, 0);
  EXPECT_EQ(shown["details"]["keys.complete"], "false") << shown.dump();
  const json drill = run_json({"drill"}, 0);
  for (const auto& c : drill[0]["result"]["checks"])
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
}

TEST_F(BackupRedis, BackupUnderWriteLoadDrillsGreen) {
  auto& rd = shared_redis();
  must(redis_cli(rd, {"SET", "before", "1"}));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int i = 0;
    while (!stop) (void)redis_cli(rd, {"SET", "w:" + std::to_string(i++), "x"}, 5s);
  });
  std::this_thread::sleep_for(300ms);
  const json taken = run_json({"backup", "run"}, 0);
  stop = true;
  writer.join();
  EXPECT_FALSE(taken[0]["result"].value("backup_id", "").empty()) << taken.dump();
  const json drill = run_json({"drill"}, 0);
  for (const auto& c : drill[0]["result"]["checks"])
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
}

TEST_F(BackupRedis, KilledDuringTheStreamLeavesNothingListed) {
  auto& rd = shared_redis();
  // Over 1 MiB of incompressible values, so that the stream's fault point is
  // reached.
  std::string script;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string value;
    for (int j = 0; j < 64; ++j) value += std::to_string(rng() % 100000000);
    script += "SET big:" + std::to_string(i) + " " + value + "\n";
  }
  auto r = run_process({.argv = {engine::launcher::tool_path("redis", "redis-cli")->string(), "-h",
                                 "127.0.0.1", "-p", std::to_string(rd.port())},
                        .env = {{"REDISCLI_AUTH", rd.superuser_password().reveal()}},
                        .timeout = 60s,
                        .stdin_data = script});
  ASSERT_TRUE(r && r->succeeded());
  auto fenv = env();
  fenv.emplace_back("DBOPS_FAULT", "backup.during_stream");
  const auto killed = run_dbops({"backup", "run"}, dir_.path(), fenv);
  EXPECT_EQ(killed.signal, SIGKILL) << killed.stderr_text;
  EXPECT_EQ(run_json({"backup", "list"}, 0).size(), 0U);
  std::this_thread::sleep_for(5500ms);
  const json taken = run_json({"backup", "run"}, 0);
  EXPECT_FALSE(taken[0]["result"].value("backup_id", "").empty()) << taken.dump();
  const json all = run_json({"backup", "list", "--all"}, 0);
  ASSERT_EQ(all.size(), 1U);
  EXPECT_TRUE(all[0]["complete"].get<bool>());
}

}  // namespace
}  // namespace dbops::testing
