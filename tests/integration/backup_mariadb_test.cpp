// Logical (mariadb-dump) and physical (mariabackup) backups of a real MariaDB
// through the dbops binary: backup, verify, drill (prepare, CHECK TABLE,
// fingerprint, canaries), restore; a backup under a running write load drills
// green; kill -9 during the stream leaves nothing listed; the documented
// grants are enough.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/launcher/launcher.hpp"
#include "support/dbops_json.hpp"
#include "support/instances.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class BackupMariadb : public ::testing::Test {
 protected:
  // scratch.nums holds 1..100000, to generate rows from.
  static void SetUpTestSuite() {
    must(mariadb(shared_mariadb(),
                 "CREATE DATABASE IF NOT EXISTS scratch; "
                 "CREATE TABLE IF NOT EXISTS scratch.d (n INT); DELETE FROM scratch.d; "
                 "INSERT INTO scratch.d VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9); "
                 "CREATE TABLE IF NOT EXISTS scratch.nums (n INT PRIMARY KEY); "
                 "INSERT IGNORE INTO scratch.nums SELECT 1 + a.n + 10 * b.n + 100 * c.n + 1000 * "
                 "e.n + 10000 * f.n FROM scratch.d a, scratch.d b, scratch.d c, scratch.d e, "
                 "scratch.d f;"));
  }

  void write_config(const std::string& database, const std::string& extra = {}) {
    auto& db = shared_mariadb();
    std::ofstream(dir_.path() / "dbops.yaml", std::ios::trunc)
        << "state: state.db\nrepository:\n  path: ./repo\n  lock_lease: 5s\n"
        << "targets:\n  - name: maria\n    engine: mysql\n    host: 127.0.0.1\n    port: "
        << db.port()
        << "\n    user: root\n    password: ${env:MARIA_PW}\n    database: " << database << "\n"
        << extra;
  }
  std::vector<std::pair<std::string, std::string>> env() {
    return {{"MARIA_PW", shared_mariadb().superuser_password().reveal()}};
  }
  json run_json(std::vector<std::string> args, int expect_exit) {
    return run_dbops_json(std::move(args), dir_.path(), env(), expect_exit);
  }
  TempDir dir_;
};

TEST_F(BackupMariadb, BackupDrillAndRestore) {
  auto& db = shared_mariadb();
  must(mariadb(db,
               "CREATE DATABASE shop; CREATE TABLE shop.orders (id INT PRIMARY KEY "
               "AUTO_INCREMENT, note VARCHAR(50), amount DECIMAL(10,2), at TIMESTAMP DEFAULT "
               "CURRENT_TIMESTAMP, raw BLOB) ENGINE=InnoDB; "
               "INSERT INTO shop.orders (note, amount, raw) SELECT CONCAT('o', n), n * 1.5, "
               "UNHEX('00FF') FROM scratch.nums WHERE n <= 5000; "
               "INSERT INTO shop.orders (note) VALUES ('before'); "
               "CREATE VIEW shop.v AS SELECT COUNT(*) AS n FROM shop.orders;"));
  write_config("shop",
               "    canaries:\n      - {name: before, sql: \"SELECT COUNT(*) FROM orders WHERE "
               "note = 'before'\", expect: \"1\"}\n");
  const json taken = run_json({"backup", "run", "--fingerprint", "full"}, 0);
  const std::string id = backup_id(taken);
  ASSERT_FALSE(id.empty()) << taken.dump();
  EXPECT_EQ(taken[0]["result"]["method"], "logical");
  must(mariadb(db, "INSERT INTO shop.orders (note) VALUES ('after')"));

  run_json({"backup", "verify", id}, 0);
  const json drill = run_json({"drill"}, 0);
  ASSERT_TRUE(drill.is_array()) << drill.dump();
  std::set<std::string> names;
  for (const auto& c : drill[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    names.insert(c["name"]);
    if (c["name"] == "fingerprint:shop") {
      // No write during the backup: still marked approximate without a binary
      // log, and the content matches.
      EXPECT_NE(c["detail"].get<std::string>().find("1 table(s) match"), std::string::npos)
          << c.dump();
    }
  }
  EXPECT_TRUE(names.contains("check_table"));
  EXPECT_TRUE(names.contains("fingerprint:shop"));
  EXPECT_TRUE(names.contains("canary:before"));

  // Restoring over the existing database is refused; after dropping it, the
  // row from before is back and the one from after is not.
  const auto refused = run_dbops({"backup", "restore", id, "--to", "maria"}, dir_.path(), env());
  EXPECT_EQ(refused.exit_code, 3) << refused.stderr_text;
  EXPECT_NE(refused.stderr_text.find("not empty"), std::string::npos) << refused.stderr_text;
  must(mariadb(db, "DROP DATABASE shop"));
  run_json({"backup", "restore", id, "--to", "maria"}, 0);
  EXPECT_EQ(must(mariadb(db, "SELECT COUNT(*) FROM shop.orders WHERE note = 'before'")), "1");
  EXPECT_EQ(must(mariadb(db, "SELECT COUNT(*) FROM shop.orders WHERE note = 'after'")), "0");
  EXPECT_EQ(must(mariadb(db, "SELECT n FROM shop.v")), "5001");
}

TEST_F(BackupMariadb, PhysicalBackupDrillAndRestoreToAPath) {
  auto& db = shared_mariadb();
  must(mariadb(db,
               "CREATE DATABASE phys; CREATE TABLE phys.t (id INT PRIMARY KEY AUTO_INCREMENT, "
               "note VARCHAR(50), n INT) ENGINE=InnoDB; CREATE TABLE phys.log (m TEXT) "
               "ENGINE=Aria; INSERT INTO phys.t (note, n) SELECT CONCAT('r', n), n FROM "
               "scratch.nums WHERE n <= 3000; INSERT INTO phys.t (note) VALUES ('before'); "
               "INSERT INTO phys.log VALUES ('aria row');"));
  write_config("phys",
               "    backup: {method: physical}\n"
               "    canaries:\n"
               "      - {name: before, sql: \"SELECT COUNT(*) FROM t WHERE note = 'before'\", "
               "expect: \"1\"}\n"
               "      - {name: after, sql: \"SELECT COUNT(*) FROM t WHERE note = 'after'\", "
               "expect: \"0\"}\n"
               "      - {name: aria, sql: \"SELECT m FROM log\", expect: \"aria row\"}\n");
  const json taken = run_json({"backup", "run"}, 0);
  const std::string id = backup_id(taken);
  ASSERT_FALSE(id.empty()) << taken.dump();
  EXPECT_EQ(taken[0]["result"]["method"], "physical");
  must(mariadb(db, "INSERT INTO phys.t (note) VALUES ('after')"));

  const json shown = run_json({"backup", "show", id}, 0);
  EXPECT_FALSE(shown["position"].value("lsn_end", "").empty()) << shown.dump();
  EXPECT_NE(shown["tool"].get<std::string>().find("mariadb-backup"), std::string::npos)
      << shown.dump();
  ASSERT_EQ(shown["objects"].size(), 1U) << shown.dump();

  run_json({"backup", "verify", id}, 0);
  const json drill = run_json({"drill"}, 0);
  std::set<std::string> names;
  for (const auto& c : drill[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    names.insert(c["name"]);
  }
  for (const char* name : {"checksums", "mariabackup_prepare", "check_table", "fingerprint:phys",
                           "canary:before", "canary:after", "canary:aria"}) {
    EXPECT_TRUE(names.contains(name)) << name << " in " << drill.dump();
  }

  // Not into the running server: to a path, extracted and prepared.
  const auto refused = run_dbops({"backup", "restore", id, "--to", "maria"}, dir_.path(), env());
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.stderr_text.find("whole data directory"), std::string::npos)
      << refused.stderr_text;
  const std::filesystem::path out = dir_.path() / "restored";
  run_json({"backup", "restore", id, "--to", out.string()}, 0);
  std::ifstream checkpoints(out / "xtrabackup_checkpoints");
  std::string first;
  std::getline(checkpoints, first);
  EXPECT_EQ(first, "backup_type = log-applied");
  // That directory is a data directory a server starts on, as the docs say.
  auto prepared = engine::launcher::prepare_mariadb_instance();
  ASSERT_TRUE(prepared) << prepared.error().to_string();
  std::filesystem::copy(out, (*prepared)->data_dir(), std::filesystem::copy_options::recursive);
  auto restored = engine::launcher::start_mariadb_restored(std::move(*prepared));
  ASSERT_TRUE(restored) << restored.error().to_string();
  EXPECT_EQ(must(mariadb(**restored, "SELECT COUNT(*) FROM phys.t WHERE note = 'before'")), "1");
  EXPECT_EQ(must(mariadb(**restored, "SELECT COUNT(*) FROM phys.t WHERE note = 'after'")), "0");
  EXPECT_EQ(must(mariadb(**restored, "SELECT COUNT(*) FROM phys.t")), "3001");
}

TEST_F(BackupMariadb, AnUnpreparedCopyIsNeverStarted) {
  auto prepared = engine::launcher::prepare_mariadb_instance();
  ASSERT_TRUE(prepared) << prepared.error().to_string();
  const auto data = (*prepared)->data_dir();
  std::filesystem::create_directories(data / "mysql");
  std::ofstream(data / "xtrabackup_checkpoints") << "backup_type = full-backuped\nfrom_lsn = 0\n";
  auto started = engine::launcher::start_mariadb_restored(std::move(*prepared));
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(started.error().message.find("not prepared"), std::string::npos)
      << started.error().message;
}

TEST_F(BackupMariadb, BackupUnderWriteLoadDrillsGreen) {
  auto& db = shared_mariadb();
  must(mariadb(
      db,
      "CREATE DATABASE busy; CREATE TABLE busy.t (id INT PRIMARY KEY AUTO_INCREMENT, v "
      "INT) ENGINE=InnoDB; INSERT INTO busy.t (v) SELECT n FROM scratch.nums WHERE n <= 20000;"));
  write_config("busy");
  for (const char* method : {"logical", "physical"}) {
    SCOPED_TRACE(method);
    std::atomic<bool> stop{false};
    std::atomic<int> written{0};
    std::thread writer([&] {
      while (!stop) {
        if (mariadb(db, "INSERT INTO busy.t (v) VALUES (1)", 5s)) ++written;
      }
    });
    const json taken = run_json({"backup", "run", "--method", method}, 0);
    stop = true;
    writer.join();
    EXPECT_GT(written.load(), 0);
    const std::string id = backup_id(taken);
    ASSERT_FALSE(id.empty()) << taken.dump();
    const json drill = run_json({"drill", "--backup", id}, 0);
    for (const auto& c : drill[0]["result"]["checks"])
      EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
  }
}

TEST_F(BackupMariadb, KilledDuringTheStreamLeavesNothingListed) {
  auto& db = shared_mariadb();
  must(mariadb(db,
               "CREATE DATABASE big; CREATE TABLE big.t (id INT PRIMARY KEY, h CHAR(32)) "
               "ENGINE=InnoDB; INSERT INTO big.t SELECT n, MD5(n) FROM scratch.nums;"));
  write_config("big");
  std::size_t good = 0;
  for (const char* method : {"logical", "physical"}) {
    SCOPED_TRACE(method);
    auto fenv = env();
    fenv.emplace_back("DBOPS_FAULT", "backup.during_stream");
    const auto killed = run_dbops({"backup", "run", "--method", method}, dir_.path(), fenv);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.stderr_text;
    EXPECT_EQ(run_json({"backup", "list"}, 0).size(), good);
    // The dead run's tool holds no lock on the server: writes go on.
    EXPECT_TRUE(
        mariadb(db, "INSERT INTO big.t VALUES (0, 'x'); DELETE FROM big.t WHERE id = 0", 10s));
    std::this_thread::sleep_for(5500ms);
    EXPECT_FALSE(backup_id(run_json({"backup", "run", "--method", method}, 0)).empty());
    ++good;
  }
  const json all = run_json({"backup", "list", "--all"}, 0);
  ASSERT_EQ(all.size(), good);
  for (const auto& b : all) EXPECT_TRUE(b["complete"].get<bool>()) << b.dump();
}

TEST_F(BackupMariadb, TheDocumentedGrantsAreEnough) {
  auto& db = shared_mariadb();
  must(mariadb(db,
               "CREATE DATABASE granted; CREATE TABLE granted.t (id INT PRIMARY KEY, v INT) "
               "ENGINE=InnoDB; INSERT INTO granted.t VALUES (1, 1), (2, 2); "
               "CREATE TRIGGER granted.tr BEFORE INSERT ON granted.t FOR EACH ROW SET NEW.v = "
               "NEW.v; CREATE VIEW granted.vw AS SELECT id FROM granted.t; "
               "CREATE USER 'dbops_backup'@'127.0.0.1' IDENTIFIED BY 'least-priv-1'; "
               "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD, BINLOG MONITOR, "
               "PROCESS ON *.* TO 'dbops_backup'@'127.0.0.1';"));
  std::ofstream(dir_.path() / "dbops.yaml", std::ios::trunc)
      << "state: state.db\nrepository:\n  path: ./repo\ntargets:\n  - name: maria\n"
         "    engine: mysql\n    host: 127.0.0.1\n    port: "
      << db.port() << "\n    user: dbops_backup\n    password: ${env:MARIA_PW}\n"
      << "    database: granted\n";
  const std::vector<std::pair<std::string, std::string>> lenv = {{"MARIA_PW", "least-priv-1"}};
  auto r = run_dbops({"--output", "json", "backup", "run"}, dir_.path(), lenv);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  r = run_dbops({"drill"}, dir_.path(), lenv);
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  // mariabackup needs no more than these either.
  r = run_dbops({"--output", "json", "backup", "run", "--method", "physical"}, dir_.path(), lenv);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  r = run_dbops({"drill"}, dir_.path(), lenv);
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  must(mariadb(db, "DROP USER 'dbops_backup'@'127.0.0.1'"));
}

TEST_F(BackupMariadb, WithABinaryLogTheFingerprintIsExactAndThePositionRecorded) {
  auto pair = engine::launcher::start_mariadb_replicated();
  ASSERT_TRUE(pair) << pair.error().to_string();
  auto& primary = *pair->primary;
  must(mariadb(primary,
               "CREATE DATABASE gt; CREATE TABLE gt.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; "
               "INSERT INTO gt.t VALUES (1, 1), (2, 2), (3, 3); "
               // The documented grants, with the binary log on.
               "CREATE USER 'dbops_backup'@'127.0.0.1' IDENTIFIED BY 'least-priv-2'; "
               "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES, RELOAD, BINLOG MONITOR, "
               "PROCESS ON *.* TO 'dbops_backup'@'127.0.0.1';"));
  std::ofstream(dir_.path() / "dbops.yaml", std::ios::trunc)
      << "state: state.db\nrepository:\n  path: ./repo\ntargets:\n  - name: maria\n"
         "    engine: mysql\n    host: 127.0.0.1\n    port: "
      << primary.port()
      << "\n    user: dbops_backup\n    password: ${env:MARIA_PW}\n    database: gt\n";
  const std::vector<std::pair<std::string, std::string>> penv = {{"MARIA_PW", "least-priv-2"}};
  for (const char* method : {"logical", "physical"}) {
    SCOPED_TRACE(method);
    auto r =
        run_dbops({"--output", "json", "backup", "run", "--method", method}, dir_.path(), penv);
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    const std::string id = backup_id(json::parse(r.stdout_text));
    r = run_dbops({"--output", "json", "backup", "show", id}, dir_.path(), penv);
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    const json m = json::parse(r.stdout_text);
    EXPECT_FALSE(m["position"].value("gtid", "").empty()) << m.dump();
    EXPECT_FALSE(m["position"].value("binlog_file", "").empty()) << m.dump();
    ASSERT_EQ(m["fingerprints"].size(), 1U) << m.dump();
    EXPECT_FALSE(m["fingerprints"][0].value("approximate", false)) << m.dump();
    r = run_dbops({"drill", "--backup", id}, dir_.path(), penv);
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  }
}

}  // namespace
}  // namespace dbops::testing
