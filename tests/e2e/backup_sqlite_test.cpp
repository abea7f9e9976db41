// Backups of a SQLite target through the dbops binary: round trip with
// restore and drill, encryption and wrong keys, a flipped byte, a full disk,
// retention with the drilled backup protected, the catalog rebuilt from the
// repository, and the metrics textfile checked by promtool.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/mount.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/subprocess.hpp"
#include "engine/sqlite/sqlite_session.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class BackupSqlite : public ::testing::Test {
 protected:
  void SetUp() override {
    exec(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price REAL, raw BLOB);"
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) "
        "INSERT INTO items(name, price, raw) SELECT 'item ' || x, x * 0.25, randomblob(8) FROM c;"
        "INSERT INTO items(name) VALUES ('before');");
    config("");
  }

  void exec(const std::string& sql) {
    auto db = engine::sqlite::open((dir_.path() / "shop.db").string(), {.create = true});
    ASSERT_TRUE(db) << db.error().to_string();
    ASSERT_TRUE((*db)->exec(sql));
  }

  std::string query(const fs::path& file, const std::string& sql) {
    auto db = engine::sqlite::open(file.string(), {.read_only = true});
    if (!db) return "error: " + db.error().message;
    auto r = (*db)->query(sql);
    return r ? r->text(0, 0) : "error: " + r.error().message;
  }

  void config(const std::string& repository_extra, const std::string& backup = {}) {
    std::ofstream(dir_.path() / "dbops.yaml", std::ios::trunc)
        << "state: ./state.db\nrepository:\n  path: " << repo_.string() << "\n"
        << repository_extra << backup << notify_
        << "targets:\n  - name: shop\n    engine: sqlite\n    path: ./shop.db\n"
           "    canaries:\n      - {name: before, sql: \"SELECT count(*) FROM items WHERE name = "
           "'before'\", expect: \"1\"}\n";
  }

  ProcessResult dbops(std::vector<std::string> args,
                      const std::vector<std::pair<std::string, std::string>>& env = {}) {
    return run_dbops(args, dir_.path(), env);
  }

  std::string backup(const std::vector<std::pair<std::string, std::string>>& env = {}) {
    const auto r = dbops({"--output", "json", "backup", "run"}, env);
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    const json j = json::parse(r.stdout_text, nullptr, false);
    if (!j.is_array() || j.empty()) return {};
    return j[0]["result"].value("backup_id", "");
  }

  std::vector<fs::path> objects(const std::string& id) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(repo_ / "shop" / id)) {
      if (e.is_regular_file() && e.path().filename() != "manifest.json") out.push_back(e.path());
    }
    return out;
  }

  TempDir dir_;
  fs::path repo_ = dir_.path() / "repo";
  std::string notify_;
};

TEST_F(BackupSqlite, BackupVerifyDrillAndRestore) {
  const std::string id = backup();
  ASSERT_FALSE(id.empty());
  exec("INSERT INTO items(name) VALUES ('after')");
  EXPECT_TRUE(fs::exists(repo_ / "shop" / id / "manifest.json"));

  auto r = dbops({"backup", "verify", id});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  r = dbops({"--output", "json", "drill"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const json drill = json::parse(r.stdout_text);
  std::vector<std::string> names;
  for (const auto& c : drill[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    names.push_back(c["name"]);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"checksums", "integrity_check", "fingerprint:main",
                                             "canary:before"}));
  EXPECT_GT(drill[0]["result"]["rto_seconds"].get<double>(), 0);
  EXPECT_GE(drill[0]["result"]["rpo_seconds"].get<double>(), 0);

  // Into a new path: the row written before is there, the one after is not.
  r = dbops({"backup", "restore", id, "--to", "./restored.db"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(query(dir_.path() / "restored.db", "SELECT count(*) FROM items WHERE name='before'"),
            "1");
  EXPECT_EQ(query(dir_.path() / "restored.db", "SELECT count(*) FROM items WHERE name='after'"),
            "0");
  // Over the live target only with --yes.
  r = dbops({"backup", "restore", id, "--to", "shop"});
  EXPECT_EQ(r.exit_code, 3) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("already holds data"), std::string::npos) << r.stderr_text;
  r = dbops({"backup", "restore", id, "--to", "shop", "--yes"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(query(dir_.path() / "shop.db", "SELECT count(*) FROM items WHERE name='after'"), "0");
}

TEST_F(BackupSqlite, FlippedByteFailsVerifyAndDrillNamingObjectAndOffset) {
  const std::string id = backup();
  ASSERT_FALSE(id.empty());
  const auto files = objects(id);
  ASSERT_EQ(files.size(), 1U);
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(40);
    char c = 0;
    f.get(c);
    f.seekp(40);
    f.put(static_cast<char>(c ^ 0x10));
  }
  auto r = dbops({"backup", "verify", id});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_text.find("object db.sqlite"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("bytes 0.."), std::string::npos) << r.stderr_text;
  r = dbops({"drill"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.stderr_text.find("failed check checksums"), std::string::npos) << r.stderr_text;
}

TEST_F(BackupSqlite, AFailedDrillIsDeliveredToTheWebhook) {
  httplib::Server receiver;
  std::mutex mu;
  std::vector<std::string> bodies;
  receiver.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    bodies.push_back(req.body);
    res.status = 200;
  });
  const int port = receiver.bind_to_any_port("127.0.0.1");
  std::thread serve([&] { receiver.listen_after_bind(); });
  notify_ =
      "notify:\n  - {name: oncall, type: webhook, url: \"http://127.0.0.1:" + std::to_string(port) +
      "/hook\"}\n";
  config("");
  const std::string id = backup();
  ASSERT_FALSE(id.empty());
  {
    std::fstream f(objects(id).at(0), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(64);
    char c = 0;
    f.get(c);
    f.seekp(64);
    f.put(static_cast<char>(c ^ 0x01));
  }
  const auto r = dbops({"drill"});
  receiver.stop();
  serve.join();
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  std::lock_guard lock(mu);
  ASSERT_EQ(bodies.size(), 1U);
  const json event = json::parse(bodies[0], nullptr, false);
  EXPECT_EQ(event.value("type", ""), "job.check_failed") << bodies[0];
  EXPECT_EQ(event.value("target", ""), "shop") << bodies[0];
  EXPECT_NE(event.value("message", "").find("drill"), std::string::npos) << bodies[0];
}

TEST_F(BackupSqlite, EncryptedBackupsNeedTheirKey) {
  const std::string key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  const std::string other = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
  config("  encryption_key: ${env:BACKUP_KEY}\n");
  const std::string id = backup({{"BACKUP_KEY", key}});
  ASSERT_FALSE(id.empty());
  // No plaintext in the stored object.
  const std::string stored = read_file(objects(id).at(0));
  EXPECT_EQ(stored.find("item 1"), std::string::npos);
  EXPECT_EQ(stored.rfind("DBOPSENC1", 0), 0U);
  EXPECT_EQ(read_file(repo_ / "shop" / id / "manifest.json").find(key), std::string::npos);

  auto r = dbops({"backup", "verify", id}, {{"BACKUP_KEY", key}});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  r = dbops({"backup", "verify", id}, {{"BACKUP_KEY", other}});
  EXPECT_EQ(r.exit_code, 2) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("wrong encryption key"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find(other), std::string::npos);
  config("");
  r = dbops({"backup", "verify", id});
  EXPECT_EQ(r.exit_code, 2) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("encrypt"), std::string::npos) << r.stderr_text;
  // A key that is not 32 bytes is refused without being echoed.
  config("  encryption_key: ${env:BACKUP_KEY}\n");
  r = dbops({"backup", "run"}, {{"BACKUP_KEY", "not-a-real-key-value"}});
  EXPECT_EQ(r.exit_code, 2) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find("not-a-real-key-value"), std::string::npos) << r.stderr_text;
}

TEST_F(BackupSqlite, FullDiskIsAClearErrorAndNothingIsListed) {
  fs::create_directories(repo_);
  ASSERT_EQ(::mount("tmpfs", repo_.c_str(), "tmpfs", 0, "size=256k"), 0)
      << "mounting a small tmpfs needs root: " << std::strerror(errno);
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{repo_};
  // Incompressible rows, well above the 256 KiB the repository has.
  exec(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) "
      "INSERT INTO items(name, raw) SELECT 'noise', randomblob(8192) FROM c");
  auto r = dbops({"backup", "run"});
  EXPECT_EQ(r.exit_code, 3) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("No space left on device"), std::string::npos) << r.stderr_text;
  r = dbops({"--output", "json", "backup", "list", "--all"});
  EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(json::parse(r.stdout_text).size(), 0U) << r.stdout_text;
}

TEST_F(BackupSqlite, PruneKeepsTheNewestDrilledBackup) {
  config("", "backup:\n  retention: {keep_last: 1}\n");
  std::vector<std::string> ids;
  ids.push_back(backup());
  auto r = dbops({"drill", "--backup", ids[0]});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  for (int i = 0; i < 3; ++i) ids.push_back(backup());
  r = dbops({"--output", "json", "backup", "prune", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(fs::exists(repo_ / "shop" / ids[1] / "manifest.json"), true);
  r = dbops({"--output", "json", "backup", "prune"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  r = dbops({"--output", "json", "backup", "list"});
  const json listed = json::parse(r.stdout_text);
  std::vector<std::string> left;
  for (const auto& b : listed) left.push_back(b["id"]);
  EXPECT_EQ(left, (std::vector<std::string>{ids[0], ids[3]}));
}

TEST_F(BackupSqlite, ReindexAndMetricsTextfile) {
  ASSERT_FALSE(backup().empty());
  auto r = dbops({"drill", "--metrics-textfile", "./dbops.prom"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  const std::string prom = read_file(dir_.path() / "dbops.prom");
  for (const char* series :
       {"dbops_backup_last_success_timestamp_seconds{target=\"shop\"}",
        "dbops_backup_size_bytes{target=\"shop\"}",
        "dbops_backup_failures_total{target=\"shop\"} 0",
        "dbops_drill_rto_seconds{target=\"shop\"}", "dbops_drill_rpo_seconds{target=\"shop\"}",
        "dbops_drill_last_success_timestamp_seconds{target=\"shop\"}"}) {
    EXPECT_NE(prom.find(series), std::string::npos) << series << "\n" << prom;
  }
  auto promtool = run_process({.argv = {"promtool", "check", "metrics"},
                               .stdin_data = prom,
                               .stdout_sink = OutputSink::capture()});
  ASSERT_TRUE(promtool) << promtool.error().to_string();
  EXPECT_TRUE(promtool->succeeded()) << promtool->stdout_text << promtool->stderr_text;

  // The catalog comes back from the repository alone.
  fs::remove(dir_.path() / "state.db");
  r = dbops({"--output", "json", "backup", "reindex"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(json::parse(r.stdout_text)["backups"], 1);
}

}  // namespace
}  // namespace dbops::testing
