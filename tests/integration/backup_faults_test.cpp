// The fault tests of the SQLite e2e backup test, against real servers for each
// backup method: a flipped byte in a stored object fails verify (naming the
// object and the byte range) and drill; encrypted backups need their key (no
// plaintext stored, a wrong key is refused and never echoed); a full
// repository disk is a clear error and leaves nothing listed.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/subprocess.hpp"
#include "engine/launcher/launcher.hpp"
#include "support/dbops_json.hpp"
#include "support/instances.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Env = std::vector<std::pair<std::string, std::string>>;
using namespace std::chrono_literals;

// Stored with the data of every method; never to be found in an encrypted
// object. Short enough that Redis keeps it uncompressed in the RDB.
constexpr std::string_view kMarker = "plain-marker-31337";
// The repository's tmpfs in FullDisk, and how much incompressible data the
// servers get there (well above it, also after zstd).
constexpr std::uintmax_t kSmallDisk = 256 * 1024;
constexpr int kNoiseRows = 1000;
constexpr int kNoiseChars = 600;

// Random alphanumerics: about 6 bits of entropy per character, so that zstd
// cannot shrink kNoiseRows * kNoiseChars below the tmpfs's size.
std::string noise(std::mt19937_64& rng, int chars) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  out.reserve(static_cast<std::size_t>(chars));
  for (int i = 0; i < chars; ++i) out += kAlphabet[rng() % kAlphabet.size()];
  return out;
}

// One backup method against one server. The target is always named "db".
struct Method {
  std::string name;
  // The method `dbops backup run` reports for the target.
  std::string method;
  // Fills the server with fresh test data: a few thousand rows or keys, what
  // the canary `before` expects, kMarker, and with `big` kNoiseRows values of
  // kNoiseChars incompressible characters. Returns the target's section of
  // dbops.yaml (the list item under `targets:`).
  std::function<std::string(bool big)> prepare;
  // What dbops needs in its environment for the target (its password).
  std::function<Env()> env;

  friend void PrintTo(const Method& m, std::ostream* os) { *os << m.name; }
};

// MariaDB: the database `faults`, recreated; `target_extra` is appended to the
// target's section (e.g. its `backup:` settings).
Method mariadb_method(std::string name, std::string method, std::string target_extra) {
  Method m;
  m.name = std::move(name);
  m.method = std::move(method);
  m.prepare = [target_extra](bool big) {
    auto& db = shared_mariadb();
    must(mariadb(db,
                 "SET SESSION max_recursive_iterations = 10000; "
                 "DROP DATABASE IF EXISTS faults; CREATE DATABASE faults; "
                 "CREATE TABLE faults.items (id INT PRIMARY KEY AUTO_INCREMENT, note "
                 "VARCHAR(50), amount DECIMAL(10,2), raw BLOB) ENGINE=InnoDB; "
                 "INSERT INTO faults.items (note, amount, raw) WITH RECURSIVE c(x) AS (SELECT 1 "
                 "UNION ALL SELECT x + 1 FROM c WHERE x < 3000) SELECT CONCAT('item ', x), x * "
                 "0.25, UNHEX('00FF') FROM c; "
                 "INSERT INTO faults.items (note) VALUES ('before'), ('" +
                     std::string(kMarker) + "');"));
    if (big) {
      must(mariadb(db, "CREATE TABLE faults.noise (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB"));
      std::mt19937_64 rng(11);
      std::string sql;
      for (int i = 0; i < kNoiseRows; ++i) {
        sql += (i % 100 == 0 ? "INSERT INTO faults.noise VALUES " : ",");
        sql += "(" + std::to_string(i) + ",'" + noise(rng, kNoiseChars) + "')";
        if (i % 100 == 99 || i + 1 == kNoiseRows) sql += ";\n";
      }
      must(mariadb(db, sql, 60s));
    }
    return "  - name: db\n    engine: mysql\n    host: 127.0.0.1\n    port: " +
           std::to_string(db.port()) +
           "\n    user: root\n    password: ${env:MARIA_PW}\n    database: faults\n"
           "    canaries:\n      - {name: before, sql: \"SELECT COUNT(*) FROM items WHERE "
           "note = 'before'\", expect: \"1\"}\n" +
           target_extra;
  };
  m.env = [] { return Env{{"MARIA_PW", shared_mariadb().superuser_password().reveal()}}; };
  return m;
}

// Feeds a script of commands to redis-cli.
void redis_script(const std::string& script) {
  auto& rd = shared_redis();
  auto cli = engine::launcher::tool_path("redis", "redis-cli");
  ASSERT_TRUE(cli) << cli.error().to_string();
  auto r = run_process({.argv = {cli->string(), "-h", "127.0.0.1", "-p", std::to_string(rd.port())},
                        .env = {{"REDISCLI_AUTH", rd.superuser_password().reveal()}},
                        .timeout = 60s,
                        .stdin_data = script});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->succeeded()) << r->describe() << r->stderr_text;
}

// Redis: the shared server flushed (as the other Redis tests do), then
// database 0 filled.
Method redis_method() {
  Method m;
  m.name = "Redis";
  m.method = "rdb";
  m.prepare = [](bool big) {
    auto& rd = shared_redis();
    must(redis_cli(rd, {"FLUSHALL"}));
    std::string script;
    for (int i = 0; i < 3000; ++i) {
      script += "SET key:" + std::to_string(i) + " value-" + std::to_string(i) + "\n";
    }
    script += "HSET h f1 v1 f2 v2\nRPUSH l a b c\nSET before 1\nSET marker " +
              std::string(kMarker) + "\n";
    if (big) {
      std::mt19937_64 rng(13);
      for (int i = 0; i < kNoiseRows; ++i) {
        script += "SET noise:" + std::to_string(i) + " " + noise(rng, kNoiseChars) + "\n";
      }
    }
    redis_script(script);
    EXPECT_EQ(must(redis_cli(rd, {"DBSIZE"})), std::to_string(3004 + (big ? kNoiseRows : 0)));
    return "  - name: db\n    engine: redis\n    host: 127.0.0.1\n    port: " +
           std::to_string(rd.port()) +
           "\n    password: ${env:REDIS_PW}\n"
           "    canaries:\n      - {name: before, sql: GET before, expect: \"1\"}\n";
  };
  m.env = [] { return Env{{"REDIS_PW", shared_redis().superuser_password().reveal()}}; };
  return m;
}

std::vector<Method> methods() {
  return {
      // MariaDB logical (mariadb-dump), the engine's default method.
      mariadb_method("MariadbLogical", "logical", ""),
      // MariaDB physical (mariabackup --stream=xbstream).
      mariadb_method("MariadbPhysical", "physical", "    backup: {method: physical}\n"),
      // Redis RDB (redis-cli --rdb).
      redis_method(),
      // More methods go here, one entry each.
  };
}

class BackupFaults : public ::testing::TestWithParam<Method> {
 protected:
  // Fills the server and writes dbops.yaml; `repository_extra` goes into the
  // `repository:` section.
  void prepare(bool big, const std::string& repository_extra = {}) {
    target_ = GetParam().prepare(big);
    config(repository_extra);
  }

  void config(const std::string& repository_extra) {
    std::ofstream(dir_.path() / "dbops.yaml", std::ios::trunc)
        << "state: state.db\nrepository:\n  path: " << repo_.string() << "\n"
        << repository_extra << "targets:\n"
        << target_;
  }

  Env env(const Env& extra = {}) const {
    Env out = GetParam().env();
    out.insert(out.end(), extra.begin(), extra.end());
    return out;
  }

  ProcessResult dbops(const std::vector<std::string>& args, const Env& extra = {}) {
    return run_dbops(args, dir_.path(), env(extra));
  }

  std::string backup(const Env& extra = {}) {
    const auto r = dbops({"--output", "json", "backup", "run"}, extra);
    EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
    const json run = json::parse(r.stdout_text, nullptr, false);
    const std::string id = backup_id(run);
    if (!id.empty()) {
      EXPECT_EQ(run[0]["result"].value("method", ""), GetParam().method) << run.dump();
    }
    return id;
  }

  // The stored objects of a backup: its files other than manifest.json.
  std::vector<fs::path> objects(const std::string& id) const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(repo_ / "db" / id)) {
      if (e.is_regular_file() && e.path().filename() != "manifest.json") out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  TempDir dir_;
  fs::path repo_ = dir_.path() / "repo";
  std::string target_;
};

TEST_P(BackupFaults, FlippedByteFailsVerifyAndDrillNamingObjectAndOffset) {
  prepare(false);
  const std::string id = backup();
  ASSERT_FALSE(id.empty());
  const auto files = objects(id);
  ASSERT_FALSE(files.empty());
  const fs::path& file = files[0];
  const std::string name = file.filename().string();
  const auto size = fs::file_size(file);
  ASSERT_GT(size, 64U) << name;

  // Where the byte lies, by the manifest's chunks of that object.
  const json manifest = json::parse(read_file(repo_ / "db" / id / "manifest.json"), nullptr, false);
  ASSERT_TRUE(manifest.contains("objects")) << manifest.dump();
  json entry;
  for (const auto& o : manifest["objects"]) {
    if (o.value("name", "") == name) entry = o;
  }
  ASSERT_TRUE(entry.is_object()) << name << " not in " << manifest.dump();
  ASSERT_EQ(entry["stored_size"].get<std::uint64_t>(), size);
  const std::uint64_t chunk = entry["chunk_size"].get<std::uint64_t>();
  ASSERT_GT(chunk, 0U);
  const std::uint64_t offset = size / 2;
  const std::uint64_t begin = offset / chunk * chunk;
  const std::uint64_t end = std::min<std::uint64_t>(begin + chunk, size);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x10));
    ASSERT_TRUE(f.good());
  }

  auto r = dbops({"backup", "verify", id});
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("object " + name), std::string::npos) << r.stderr_text;
  const std::string bytes = "(bytes " + std::to_string(begin) + ".." + std::to_string(end) + ")";
  EXPECT_NE(r.stderr_text.find(bytes), std::string::npos) << bytes << "\n" << r.stderr_text;
  r = dbops({"drill"});
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("drill of " + id + " failed check checksums"), std::string::npos)
      << r.stderr_text;
}

TEST_P(BackupFaults, EncryptedBackupsNeedTheirKey) {
  const std::string key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  const std::string other = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
  prepare(false, "  encryption_key: ${env:BACKUP_KEY}\n");
  const std::string id = backup({{"BACKUP_KEY", key}});
  ASSERT_FALSE(id.empty());
  const auto files = objects(id);
  ASSERT_FALSE(files.empty());
  for (const auto& file : files) {
    const std::string stored = read_file(file);
    EXPECT_EQ(stored.rfind("DBOPSENC1", 0), 0U) << file;
    EXPECT_EQ(stored.find(kMarker), std::string::npos) << file;
  }
  EXPECT_EQ(read_file(repo_ / "db" / id / "manifest.json").find(key), std::string::npos);

  auto r = dbops({"backup", "verify", id}, {{"BACKUP_KEY", key}});
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  r = dbops({"backup", "verify", id}, {{"BACKUP_KEY", other}});
  EXPECT_EQ(r.exit_code, 2) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("wrong encryption key"), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find(other), std::string::npos) << r.stderr_text;
  EXPECT_EQ(r.stdout_text.find(other), std::string::npos) << r.stdout_text;
  // A drill with the wrong key is a configuration error (exit 2), not a
  // failed drill of the backup.
  r = dbops({"drill"}, {{"BACKUP_KEY", other}});
  EXPECT_EQ(r.exit_code, 2) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.stderr_text.find("failed check"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("wrong encryption key"), std::string::npos) << r.stderr_text;
  EXPECT_EQ((r.stdout_text + r.stderr_text).find(other), std::string::npos) << r.stderr_text;
  r = dbops({"drill"}, {{"BACKUP_KEY", key}});
  EXPECT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;

  // Without a key: refused, saying it is encrypted.
  config("");
  r = dbops({"backup", "verify", id});
  EXPECT_EQ(r.exit_code, 2) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("encrypt"), std::string::npos) << r.stderr_text;
  // A key that is not 32 bytes is refused without being echoed.
  config("  encryption_key: ${env:BACKUP_KEY}\n");
  r = dbops({"backup", "run"}, {{"BACKUP_KEY", "not-a-real-key-value"}});
  EXPECT_EQ(r.exit_code, 2) << r.stderr_text;
  EXPECT_EQ((r.stdout_text + r.stderr_text).find("not-a-real-key-value"), std::string::npos)
      << r.stderr_text;
}

TEST_P(BackupFaults, FullDiskIsAClearErrorAndNothingIsListed) {
  prepare(true);
  fs::create_directories(repo_);
  {
    ASSERT_EQ(
        ::mount("tmpfs", repo_.c_str(), "tmpfs", 0, ("size=" + std::to_string(kSmallDisk)).c_str()),
        0)
        << "mounting a small tmpfs needs root: " << std::strerror(errno);
    struct Unmount {
      fs::path p;
      ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{repo_};
    auto r = dbops({"backup", "run"});
    EXPECT_EQ(r.exit_code, 3) << r.stdout_text << r.stderr_text;
    EXPECT_NE(r.stderr_text.find("No space left on device"), std::string::npos) << r.stderr_text;
    const json listed = run_dbops_json({"backup", "list", "--all"}, dir_.path(), env(), 0);
    EXPECT_TRUE(listed.is_array()) << listed.dump();
    EXPECT_EQ(listed.size(), 0U) << listed.dump();
    // The partial object is gone: the space is given back.
    std::vector<std::string> left;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(repo_ / "db", ec)) {
      if (!e.is_directory()) left.push_back(e.path().string());
    }
    EXPECT_TRUE(left.empty()) << ::testing::PrintToString(left);
  }
  // With the disk back, the same data backs up, and it did not fit.
  const std::string id = backup();
  ASSERT_FALSE(id.empty());
  std::uintmax_t stored = 0;
  for (const auto& file : objects(id)) stored += fs::file_size(file);
  EXPECT_GT(stored, kSmallDisk);
  const json listed = run_dbops_json({"backup", "list", "--all"}, dir_.path(), env(), 0);
  ASSERT_EQ(listed.size(), 1U) << listed.dump();
  EXPECT_TRUE(listed[0].value("complete", false)) << listed.dump();
}

INSTANTIATE_TEST_SUITE_P(Methods, BackupFaults, ::testing::ValuesIn(methods()),
                         [](const ::testing::TestParamInfo<Method>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace dbops::testing
