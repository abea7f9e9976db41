// The pgbackrest method on a real stanza: dbops runs pgBackRest's backup and
// verify, records the set, drills it (restore into a throwaway instance, WAL
// fetched with archive-get, amcheck, canary), and reports a corrupted
// repository file.
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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

// A directory the postgres user owns, removed at the end.
struct SharedDir {
  fs::path path = fs::path("/tmp") / ("dbops-pgbr-" + std::to_string(getpid()));
  SharedDir() {
    fs::remove_all(path);
    fs::create_directories(path);
    const passwd* pw = getpwnam("postgres");
    EXPECT_NE(pw, nullptr);
    for (const char* sub : {"", "repo", "log", "lock"}) {
      fs::create_directories(path / sub);
      if (pw) {
        EXPECT_EQ(chown((path / sub).c_str(), pw->pw_uid, pw->pw_gid), 0);
      }
    }
  }
  ~SharedDir() { fs::remove_all(path); }
};

ProcessResult as_postgres(std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  auto r = run_process({.argv = argv,
                        .timeout = 120s,
                        .stdout_sink = OutputSink::capture(),
                        .stderr_sink = OutputSink::capture()});
  EXPECT_TRUE(r) << r.error().to_string();
  return r ? *r : ProcessResult{};
}

TEST(BackupPgbackrest, BackupVerifyDrillAndCorruption) {
  ASSERT_EQ(geteuid(), 0U) << "the stanza's files belong to postgres; the test runs as root";
  SharedDir shared;
  const fs::path conf = shared.path / "pgbackrest.conf";
  engine::launcher::Options options;
  options.run_as = "postgres";
  options.settings = {
      {"archive_mode", "on"},
      {"archive_command", "pgbackrest --config=" + conf.string() + " --stanza=it archive-push %p"}};
  auto started = engine::launcher::start_postgres(options);
  ASSERT_TRUE(started) << started.error().to_string();
  auto& pg = **started;
  std::ofstream(conf) << "[global]\nrepo1-path=" << (shared.path / "repo").string()
                      << "\nlog-path=" << (shared.path / "log").string()
                      << "\nlock-path=" << (shared.path / "lock").string()
                      << "\nstart-fast=y\ncompress-type=zst\n\n[it]\npg1-path="
                      << pg.data_dir().string() << "\npg1-port=" << pg.port()
                      << "\npg1-socket-path=" << pg.directory().string() << "\npg1-user=dbops\n";
  fs::permissions(conf, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);
  auto created = as_postgres({"pgbackrest", "--config=" + conf.string(), "--stanza=it",
                              "--log-level-console=warn", "stanza-create"});
  ASSERT_TRUE(created.succeeded()) << created.stdout_text << created.stderr_text;
  must(psql(pg,
            "CREATE TABLE t(id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'v' || g "
            "FROM generate_series(1, 1000) g"));

  TempDir dir;
  std::ofstream(dir.path() / "dbops.yaml")
      << "state: state.db\nrepository:\n  path: ./repo\ndrill:\n  run_as: postgres\n"
      << "targets:\n  - name: pg\n    engine: postgres\n    host: 127.0.0.1\n    port: "
      << pg.port() << "\n    user: dbops\n    password: ${env:PG_PW}\n    database: postgres\n"
      << "    backup:\n      method: pgbackrest\n      pgbackrest: {stanza: it, config: "
      << conf.string() << "}\n"
      << "    canaries:\n      - {name: rows, sql: SELECT count(*) FROM t, expect: \"1000\"}\n";
  const std::vector<std::pair<std::string, std::string>> env = {
      {"PG_PW", pg.superuser_password().reveal()}};

  auto r = run_dbops({"--output", "json", "backup", "run"}, dir.path(), env);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const json taken = json::parse(r.stdout_text);
  const std::string id = taken[0]["result"].value("backup_id", "");
  ASSERT_FALSE(id.empty()) << r.stdout_text;
  r = run_dbops({"--output", "json", "backup", "show", id}, dir.path(), env);
  const json m = json::parse(r.stdout_text);
  EXPECT_FALSE(m["details"].value("pgbackrest.label", "").empty()) << m.dump();
  EXPECT_EQ(m["details"].value("pgbackrest.verify", ""), "passed") << m.dump();
  EXPECT_FALSE(m["position"].value("lsn", "").empty()) << m.dump();
  must(psql(pg, "INSERT INTO t VALUES (1001, 'after')"));

  r = run_dbops({"--output", "json", "drill"}, dir.path(), env);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  std::set<std::string> names;
  const json drill = json::parse(r.stdout_text);
  for (const auto& c : drill[0]["result"]["checks"]) {
    EXPECT_TRUE(c["passed"].get<bool>()) << c.dump();
    names.insert(c["name"]);
  }
  EXPECT_TRUE(names.contains("pgbackrest verify"));
  EXPECT_TRUE(names.contains("amcheck"));
  EXPECT_TRUE(names.contains("canary:rows"));

  // One flipped byte in a file of the set: pgBackRest's verify reports it
  // and dbops fails on it.
  const fs::path set = shared.path / "repo" / "backup" / "it" / m["details"]["pgbackrest.label"];
  fs::path victim;
  for (const auto& e : fs::recursive_directory_iterator(set / "pg_data")) {
    if (e.is_regular_file() && e.file_size() > 1000) {
      victim = e.path();
      break;
    }
  }
  ASSERT_FALSE(victim.empty());
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(200);
    char c = 0;
    f.get(c);
    f.seekp(200);
    f.put(static_cast<char>(c ^ 0x55));
  }
  r = run_dbops({"drill", "--backup", id}, dir.path(), env);
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("pgbackrest"), std::string::npos) << r.stderr_text;
}

}  // namespace
}  // namespace dbops::testing
