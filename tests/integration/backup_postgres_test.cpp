// Backups of a real PostgreSQL through the dbops binary: logical and physical
// backups, verify, restore and drills; a drill that must fail on a removed
// row; backups while pgbench writes; least-privilege roles; a drill of a
// primary that archives writes nothing to its archive; kill -9 at named fault
// points leaves nothing listed and the next run succeeds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/subprocess.hpp"
#include "engine/launcher/launcher.hpp"
#include "repo/manifest.hpp"
#include "support/dbops_json.hpp"
#include "support/instances.hpp"
#include "support/net.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace std::chrono_literals;

// A config with one repository and the given targets (YAML list items).
void write_config(const TempDir& dir, const std::string& targets, const std::string& extra = {}) {
  std::ofstream(dir.path() / "dbops.yaml") << "state: state.db\n"
                                              "repository:\n"
                                              "  path: ./repo\n"
                                              "  lock_lease: 5s\n"
                                           << extra << "targets:\n"
                                           << targets;
}

std::string pg_target(const engine::launcher::Instance& pg, const std::string& name,
                      const std::string& database, const std::string& user = "dbops",
                      const std::string& password_env = "PG_PASSWORD") {
  return "  - name: " + name +
         "\n    engine: postgres\n    host: 127.0.0.1\n    port: " + std::to_string(pg.port()) +
         "\n    user: " + user + "\n    password: ${env:" + password_env +
         "}\n    database: " + database + "\n";
}

std::vector<std::pair<std::string, std::string>> env_of(const engine::launcher::Instance& pg) {
  return {{"PG_PASSWORD", pg.superuser_password().reveal()}};
}

TEST(BackupPostgres, LogicalBackupRestoreAndDrill) {
  auto& pg = shared_postgres();
  must(psql(pg, "CREATE DATABASE app"));
  must(psql(pg,
            "CREATE TABLE orders(id serial PRIMARY KEY, note text, at timestamptz DEFAULT now(), "
            "amount numeric, raw bytea); "
            "INSERT INTO orders(note, amount, raw) SELECT 'o' || g, g * 1.5, '\\x00ff' FROM "
            "generate_series(1, 20000) g; INSERT INTO orders(note) VALUES ('before');",
            30s, "app"));
  TempDir dir;
  write_config(dir,
               pg_target(pg, "pg", "app") +
                   "    canaries:\n      - name: before-row\n        sql: SELECT count(*) FROM "
                   "orders WHERE note = 'before'\n        expect: \"1\"\n" +
                   pg_target(pg, "pg-restore", "app_restored"));
  const auto env = env_of(pg);

  const json taken = run_dbops_json({"backup", "run", "--target", "pg", "--fingerprint", "full"},
                                    dir.path(), env, 0);
  const std::string id = backup_id(taken);
  ASSERT_FALSE(id.empty()) << taken.dump();
  EXPECT_EQ(taken[0]["result"]["method"], "logical");
  EXPECT_EQ(taken[0]["result"]["fingerprint"]["tables"], 1);
  must(psql(pg, "INSERT INTO orders(note) VALUES ('after')", 30s, "app"));

  // Verify, drill (with the canary and the fingerprint), list.
  run_dbops_json({"backup", "verify", id}, dir.path(), env, 0);
  const json drill = run_dbops_json({"drill", "--target", "pg"}, dir.path(), env, 0);
  ASSERT_TRUE(drill.is_array()) << drill.dump();
  std::set<std::string> passed;
  for (const auto& c : drill[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    passed.insert(c["name"]);
  }
  EXPECT_TRUE(passed.contains("checksums"));
  EXPECT_TRUE(passed.contains("amcheck"));
  EXPECT_TRUE(passed.contains("fingerprint:app"));
  EXPECT_TRUE(passed.contains("canary:before-row"));
  const json listed = run_dbops_json({"backup", "list"}, dir.path(), env, 0);
  ASSERT_EQ(listed.size(), 1U);
  EXPECT_TRUE(listed[0]["drill"]["passed"].get<bool>());

  // Restore into an empty database: the row from before is there, the one
  // written after the backup is not.
  must(psql(pg, "CREATE DATABASE app_restored"));
  run_dbops_json({"backup", "restore", id, "--to", "pg-restore"}, dir.path(), env, 0);
  EXPECT_EQ(
      must(psql(pg, "SELECT count(*) FROM orders WHERE note = 'before'", 30s, "app_restored")),
      "1");
  EXPECT_EQ(must(psql(pg, "SELECT count(*) FROM orders WHERE note = 'after'", 30s, "app_restored")),
            "0");
  // A second restore into the now non-empty database is refused.
  const auto again = run_dbops({"backup", "restore", id, "--to", "pg-restore"}, dir.path(), env);
  EXPECT_EQ(again.exit_code, 3) << again.stderr_text;
  EXPECT_NE(again.stderr_text.find("not empty"), std::string::npos) << again.stderr_text;
}

TEST(BackupPostgres, DrillFailsNamingTheTableWhenARowIsMissing) {
  auto& pg = shared_postgres();
  must(psql(pg, "CREATE DATABASE shop"));
  must(psql(pg,
            "CREATE TABLE items(id int PRIMARY KEY, name text); CREATE TABLE other(x int); "
            "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g; "
            "INSERT INTO other VALUES (1)",
            30s, "shop"));
  TempDir dir;
  write_config(dir, pg_target(pg, "shop", "shop"));
  const auto env = env_of(pg);
  const std::string full = backup_id(run_dbops_json({"backup", "run"}, dir.path(), env, 0));
  must(psql(pg, "DELETE FROM items WHERE id = 250", 30s, "shop"));
  const std::string less = backup_id(run_dbops_json({"backup", "run"}, dir.path(), env, 0));
  ASSERT_FALSE(full.empty());
  ASSERT_FALSE(less.empty());

  // The first backup's data replaced by the second's, its checksums re-sealed:
  // every object checks out, but a row is gone.
  const fs::path a = dir.path() / "repo" / "shop" / full, b = dir.path() / "repo" / "shop" / less;
  auto ma = repo::manifest_from_json(read_file(a / "manifest.json"));
  auto mb = repo::manifest_from_json(read_file(b / "manifest.json"));
  ASSERT_TRUE(ma && mb);
  ma->objects = mb->objects;
  fs::copy_file(b / "shop.dump", a / "shop.dump", fs::copy_options::overwrite_existing);
  std::ofstream(a / "manifest.json", std::ios::trunc) << repo::to_json(*ma);
  run_dbops_json({"backup", "verify", full}, dir.path(), env, 0);

  const auto r = run_dbops({"drill", "--backup", full}, dir.path(), env);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("fingerprint:shop"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("public.items has 499 rows, the backup had 500"), std::string::npos)
      << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find("public.other"), std::string::npos) << r.stderr_text;
}

TEST(BackupPostgres, PhysicalBackupAndDrillWhilePgbenchWrites) {
  auto& pg = shared_postgres();
  must(psql(pg, "CREATE DATABASE bench"));
  const auto pgbench = engine::launcher::tool_path("postgres", "pgbench");
  ASSERT_TRUE(pgbench) << pgbench.error().to_string();
  std::vector<std::pair<std::string, std::string>> pgenv = {
      {"PGHOST", "127.0.0.1"},
      {"PGPORT", std::to_string(pg.port())},
      {"PGUSER", "dbops"},
      {"PGPASSWORD", pg.superuser_password().reveal()},
      {"PGDATABASE", "bench"}};
  auto init = run_process(
      {.argv = {pgbench->string(), "-i", "-s", "2", "-q"}, .env = pgenv, .timeout = 120s});
  ASSERT_TRUE(init && init->succeeded()) << (init ? init->stderr_text : init.error().message);

  // Least privilege: a REPLICATION role for physical, pg_read_all_data for
  // logical.
  must(psql(pg,
            "CREATE ROLE phys LOGIN REPLICATION PASSWORD 'phys-secret-1'; "
            "CREATE ROLE logi LOGIN PASSWORD 'logi-secret-1'; GRANT pg_read_all_data TO logi"));
  TempDir dir;
  write_config(dir, pg_target(pg, "bench-phys", "bench", "phys", "PHYS_PW") +
                        "    backup: {method: physical}\n" +
                        pg_target(pg, "bench-logi", "bench", "logi", "LOGI_PW") +
                        "    backup: {fingerprint: sampled}\n");
  const std::vector<std::pair<std::string, std::string>> env = {{"PHYS_PW", "phys-secret-1"},
                                                                {"LOGI_PW", "logi-secret-1"}};

  // Writers for the whole time of both backups.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    (void)run_process({.argv = {pgbench->string(), "-c", "2", "-T", "25", "-n"},
                       .env = pgenv,
                       .timeout = 60s,
                       .cancel = &stop});
  });
  std::this_thread::sleep_for(1s);
  const json phys = run_dbops_json({"backup", "run", "--target", "bench-phys"}, dir.path(), env, 0);
  const json logi = run_dbops_json({"backup", "run", "--target", "bench-logi"}, dir.path(), env, 0);
  stop = true;
  writer.join();
  ASSERT_FALSE(backup_id(phys).empty()) << phys.dump();
  ASSERT_FALSE(backup_id(logi).empty()) << logi.dump();
  EXPECT_EQ(phys[0]["result"]["method"], "physical");
  EXPECT_TRUE(phys[0]["result"]["position"].contains("lsn")) << phys.dump();
  // The temporary slot went away with the backup's session.
  EXPECT_EQ(must(psql(pg,
                      "SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE "
                      "'dbops_backup_%'")),
            "0");

  const json d1 = run_dbops_json({"drill", "--target", "bench-phys"}, dir.path(), env, 0);
  std::set<std::string> names;
  for (const auto& c : d1[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    names.insert(c["name"]);
  }
  EXPECT_TRUE(names.contains("pg_verifybackup")) << d1.dump();
  const json d2 = run_dbops_json({"drill", "--target", "bench-logi"}, dir.path(), env, 0);
  for (const auto& c : d2[0]["result"]["checks"]) EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();

  // Physical restore into a path.
  const fs::path to = dir.path() / "restored";
  run_dbops_json({"backup", "restore", backup_id(phys), "--to", to.string()}, dir.path(), env, 0);
  EXPECT_TRUE(fs::exists(to / "PG_VERSION"));
  EXPECT_TRUE(fs::exists(to / "backup_label"));
}

TEST(BackupPostgres, DrillOfAnArchivingPrimaryWritesNothingToItsArchive) {
  TempDir archive;
  fs::permissions(archive.path(), fs::perms::all);
  engine::launcher::Options options;
  options.settings = {{"archive_mode", "on"},
                      {"archive_command", "cp %p " + archive.path().string() + "/%f"}};
  auto primary = engine::launcher::start_postgres(options);
  ASSERT_TRUE(primary) << primary.error().to_string();
  auto& pg = **primary;
  must(psql(pg, "CREATE TABLE t(id int PRIMARY KEY); INSERT INTO t VALUES (1)"));
  TempDir dir;
  write_config(dir, pg_target(pg, "arch", "postgres") + "    backup: {method: physical}\n");
  const auto env = env_of(pg);
  run_dbops_json({"backup", "run"}, dir.path(), env, 0);
  // Let the primary archive what the backup switched out.
  std::this_thread::sleep_for(3s);
  const auto count = [&] {
    return std::distance(fs::directory_iterator(archive.path()), fs::directory_iterator{});
  };
  const auto before = count();
  EXPECT_GT(before, 0) << "the primary archives";
  run_dbops_json({"drill"}, dir.path(), env, 0);
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(count(), before);
}

// Debian's pg_createcluster keeps postgresql.conf and pg_hba.conf in
// /etc/postgresql/<version>/<name>: the base backup holds none.
TEST(BackupPostgres, DrillOfADebianLayoutClusterPasses) {
  const std::string name = "dbopsit" + std::to_string(getpid());
  const std::string port = std::to_string(closed_port());
  const auto run = [](std::vector<std::string> argv) {
    auto r = run_process({.argv = std::move(argv),
                          .timeout = 120s,
                          .stdout_sink = OutputSink::capture(),
                          .stderr_sink = OutputSink::capture()});
    EXPECT_TRUE(r && r->succeeded())
        << (r ? r->describe() + ": " + r->stderr_text : r.error().to_string());
    return r && r->succeeded();
  };
  ASSERT_TRUE(run({"pg_createcluster", "-p", port, "15", name, "--", "--auth-local=peer",
                   "--auth-host=scram-sha-256"}));
  struct Drop {
    std::string name;
    ~Drop() {
      (void)run_process(
          {.argv = {"pg_dropcluster", "--stop", "15", name}, .timeout = std::chrono::seconds(60)});
    }
  } drop{name};
  ASSERT_TRUE(run({"pg_ctlcluster", "15", name, "start"}));
  ASSERT_TRUE(
      run({"runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-p", port, "-c",
           "ALTER USER postgres PASSWORD 'debian-layout-1'; CREATE TABLE t AS SELECT 1 AS x"}));
  const fs::path data = "/var/lib/postgresql/15/" + name;
  ASSERT_TRUE(fs::exists(data / "PG_VERSION"));
  ASSERT_FALSE(fs::exists(data / "postgresql.conf")) << "not the Debian layout";

  TempDir dir;
  write_config(dir, "  - name: deb\n    engine: postgres\n    host: 127.0.0.1\n    port: " + port +
                        "\n    user: postgres\n    password: ${env:DEB_PW}\n    database: "
                        "postgres\n    backup: {method: physical}\n    canaries:\n      - {name: "
                        "t, sql: SELECT x FROM t, expect: \"1\"}\n");
  const std::vector<std::pair<std::string, std::string>> env = {{"DEB_PW", "debian-layout-1"}};
  run_dbops_json({"backup", "run"}, dir.path(), env, 0);
  const json drill = run_dbops_json({"drill"}, dir.path(), env, 0);
  ASSERT_TRUE(drill.is_array()) << drill.dump();
  std::set<std::string> names;
  for (const auto& c : drill[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    names.insert(c["name"]);
  }
  EXPECT_TRUE(names.contains("pg_verifybackup"));
  EXPECT_TRUE(names.contains("canary:t"));
}

TEST(BackupPostgres, KilledBackupsLeaveNothingListedAndTheNextRunSucceeds) {
  auto& pg = shared_postgres();
  must(psql(pg, "CREATE DATABASE killme"));
  must(psql(pg,
            "CREATE TABLE big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, "
            "200000) g",
            60s, "killme"));
  TempDir dir;
  write_config(dir, pg_target(pg, "k", "killme"));
  auto env = env_of(pg);
  std::size_t good = 0;
  for (const char* point :
       {"backup.during_stream", "backup.after_upload", "backup.before_manifest"}) {
    SCOPED_TRACE(point);
    auto fenv = env;
    fenv.emplace_back("DBOPS_FAULT", point);
    const auto killed = run_dbops({"backup", "run"}, dir.path(), fenv);
    EXPECT_EQ(killed.signal, SIGKILL) << killed.stderr_text;
    EXPECT_EQ(run_dbops_json({"backup", "list"}, dir.path(), env, 0).size(), good);
    // The lock of the dead run holds until its lease (5s) expires.
    const auto blocked = run_dbops({"backup", "run"}, dir.path(), env);
    EXPECT_EQ(blocked.exit_code, 3) << blocked.stderr_text;
    EXPECT_NE(blocked.stderr_text.find("lock"), std::string::npos) << blocked.stderr_text;
    std::this_thread::sleep_for(5500ms);
    const json ok = run_dbops_json({"backup", "run"}, dir.path(), env, 0);
    EXPECT_FALSE(backup_id(ok).empty());
    ++good;
    const json all = run_dbops_json({"backup", "list", "--all"}, dir.path(), env, 0);
    for (const auto& b : all) EXPECT_TRUE(b["complete"].get<bool>()) << b.dump();
  }
  EXPECT_EQ(run_dbops_json({"backup", "list"}, dir.path(), env, 0).size(), 3U);
}

}  // namespace
}  // namespace dbops::testing
