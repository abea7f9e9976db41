// Starting PostgreSQL on a data directory restored from a base backup
// (pg_basebackup -Ft -X fetch), as restore drills do: the data survives, the
// restored server is cut off from its source (no archiving, no slots, no
// standby), it starts without the source's configuration files, without a
// "postgres" database, and refuses what it cannot restore safely.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "core/subprocess.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/launcher/launcher_internal.hpp"
#include "support/instances.hpp"
#include "support/support.hpp"

namespace dbops {
namespace {

namespace fs = std::filesystem;
namespace launcher = engine::launcher;
using namespace std::chrono_literals;

#define ASSERT_OK(expr)                                                    \
  do {                                                                     \
    auto&& ok_result_ = (expr);                                            \
    ASSERT_TRUE(ok_result_.has_value()) << ok_result_.error().to_string(); \
  } while (false)

// A directory outside any instance that the servers' user can write to: the
// source's WAL archive.
class ArchiveDir {
 public:
  ArchiveDir() {
    std::string tmpl = "/tmp/pgarchive-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
    auto as = launcher::detail::resolve_run_as({}, "postgres");
    if (!as) throw std::runtime_error(as.error().to_string());
    if (as->user && ::chown(path_.c_str(), as->user->uid, as->user->gid) != 0) {
      throw std::runtime_error("chown " + path_.string() + " failed");
    }
  }
  ~ArchiveDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::set<std::string> files() const {
    std::set<std::string> out;
    for (const auto& entry : fs::directory_iterator(path_)) {
      out.insert(entry.path().filename().string());
    }
    return out;
  }

 private:
  fs::path path_;
};

// psql as another user than the instance's superuser.
Status psql_as(const launcher::Instance& pg, const std::string& user, const std::string& password,
               const std::string& statement) {
  DBOPS_ASSIGN(fs::path program, launcher::tool_path("postgres", "psql"));
  ProcessOptions options;
  options.argv = {
      program.string(),          "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.host(), "-p",
      std::to_string(pg.port()), "-U", user, "-d", "postgres",        "-c", statement};
  options.env = {{"PGPASSWORD", password}, {"PGCONNECT_TIMEOUT", "10"}, {"PGSSLMODE", "disable"}};
  options.clear_env = true;
  options.timeout = 30s;
  DBOPS_ASSIGN(ProcessResult result, run_process(options));
  return result.check("psql");
}

// pg_basebackup -Ft -X fetch -D - of `source`, streamed into `tar_file`; the
// password goes through PGPASSWORD.
Status take_base_backup(const launcher::Instance& source, const fs::path& tar_file,
                        const std::string& user, const std::string& password) {
  DBOPS_ASSIGN(fs::path program, launcher::tool_path("postgres", "pg_basebackup"));
  std::ofstream out(tar_file, std::ios::binary | std::ios::trunc);
  if (!out) return fail(ErrorCode::kIo, "cannot create " + tar_file.string());
  ProcessOptions options;
  options.argv = {program.string(),
                  "-h",
                  source.host(),
                  "-p",
                  std::to_string(source.port()),
                  "-U",
                  user,
                  "-D",
                  "-",
                  "-F",
                  "t",
                  "-X",
                  "fetch",
                  "-c",
                  "fast"};
  options.env = {{"PGPASSWORD", password}, {"PGCONNECT_TIMEOUT", "10"}, {"PGSSLMODE", "disable"}};
  options.clear_env = true;
  options.timeout = 120s;
  options.stdout_sink = OutputSink::callback([&](std::string_view chunk) -> Status {
    out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (!out) return fail(ErrorCode::kIo, "write " + tar_file.string());
    return ok();
  });
  DBOPS_ASSIGN(ProcessResult result, run_process(options));
  DBOPS_TRY(result.check("pg_basebackup"));
  out.close();
  if (!out) return fail(ErrorCode::kIo, "close " + tar_file.string());
  return ok();
}

Status take_base_backup(const launcher::Instance& source, const fs::path& tar_file) {
  return take_base_backup(source, tar_file, source.superuser(),
                          source.superuser_password().reveal());
}

// Extracts as root with root as the owner (as a drill extracting a stream from
// the repository does), so that start_postgres_restored() must hand the files
// to the server's user.
Status extract(const fs::path& tar_file, const fs::path& dir) {
  ProcessOptions options;
  options.argv = {"tar", "--no-same-owner", "-x", "-f", tar_file.string(), "-C", dir.string()};
  options.timeout = 120s;
  DBOPS_ASSIGN(ProcessResult result, run_process(options));
  return result.check("tar");
}

Result<std::string> sql(const launcher::Instance& pg, std::string_view statement,
                        std::string_view database = "postgres") {
  return testing::psql(pg, statement, 30s, database);
}

TEST(LauncherRestore, RestoredInstanceHasTheDataAndIsCutOffFromTheSource) {
  ArchiveDir archive;
  testing::TempDir tmp;
  launcher::Options source_options;
  source_options.settings = {{"archive_mode", "on"},
                             {"archive_command", "cp %p " + archive.path().string() + "/%f"}};
  ASSERT_OK_AND_ASSIGN(auto source, launcher::start_postgres(source_options));
  ASSERT_OK(sql(*source, "create table drill_t (id int primary key, v text)"));
  ASSERT_OK(sql(*source, "insert into drill_t values (1, 'before the backup')"));
  ASSERT_OK(sql(*source, "select pg_create_physical_replication_slot('drill_slot', true)"));
  ASSERT_OK_AND_ASSIGN(auto source_slots,
                       sql(*source, "select count(*) from pg_replication_slots"));
  EXPECT_EQ(source_slots, "1");

  const fs::path tar_file = tmp / "base.tar";
  ASSERT_OK(take_base_backup(*source, tar_file));
  ASSERT_OK(sql(*source, "insert into drill_t values (2, 'after the backup')"));

  ASSERT_OK_AND_ASSIGN(auto prepared, launcher::prepare_postgres_instance());
  const fs::path data = prepared->data_dir();
  ASSERT_TRUE(fs::is_directory(data));
  EXPECT_TRUE(fs::is_empty(data));
  EXPECT_EQ(data.parent_path(), prepared->directory());
  ASSERT_OK(extract(tar_file, data));
  ASSERT_TRUE(fs::exists(data / "backup_label"));
  ASSERT_TRUE(fs::exists(data / "PG_VERSION"));

  // What a copy of the source's files could also bring along: its slot (with
  // max_replication_slots=0 the server would refuse to start with it), standby
  // and recovery settings pointing at the source, a lock file of a live
  // process, the source's archive_command in postgresql.auto.conf, and
  // permissions the server refuses.
  fs::copy(source->data_dir() / "pg_replslot" / "drill_slot", data / "pg_replslot" / "drill_slot",
           fs::copy_options::recursive);
  {
    std::ofstream(data / "standby.signal") << "";
    std::ofstream(data / "recovery.signal") << "";
    std::ofstream(data / "postgresql.auto.conf")
        << "primary_conninfo = 'host=127.0.0.1 port=" << source->port() << " user=dbops'\n"
        << "archive_mode = on\n"
        << "archive_command = 'cp %p " << archive.path().string() << "/%f'\n";
    std::ofstream(data / "postmaster.pid") << "1\n" << data.string() << "\n";
    std::ofstream(data / "postmaster.opts") << "/usr/lib/postgresql/15/bin/postgres\n";
  }
  fs::permissions(data, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);

  // The source stops, so that everything it archives is in the archive before
  // the restored server runs.
  ASSERT_OK(source->stop());
  const std::set<std::string> archived = archive.files();
  EXPECT_FALSE(archived.empty()) << "the source archived nothing: the archive check below would "
                                    "prove nothing";

  ASSERT_OK_AND_ASSIGN(auto restored, launcher::start_postgres_restored(std::move(prepared)));
  EXPECT_EQ(restored->engine(), "postgres");
  EXPECT_EQ(restored->host(), "127.0.0.1");
  EXPECT_GT(restored->port(), 0);
  EXPECT_GT(restored->pid(), 0);
  EXPECT_EQ(restored->data_dir(), data);
  config::Target target = restored->target("drill");
  EXPECT_EQ(target.user, "dbops");
  EXPECT_EQ(target.database, "postgres");
  EXPECT_EQ(target.port, restored->port());
  testing::expect_not_in_any_argv(restored->superuser_password().reveal());

  // The data of the backup, and nothing written after it.
  ASSERT_OK_AND_ASSIGN(auto rows, sql(*restored, "select id || ':' || v from drill_t order by id"));
  EXPECT_EQ(rows, "1:before the backup");

  // The recovery from backup_label happened (in single-user mode, before the
  // server listened).
  EXPECT_FALSE(fs::exists(data / "backup_label"));
  EXPECT_TRUE(fs::exists(data / "backup_label.old"));
  const std::string log = testing::read_file(restored->directory() / "postgres.log");
  EXPECT_NE(log.find("consistent recovery state reached"), std::string::npos) << log;
  EXPECT_EQ(log.find(restored->superuser_password().reveal()), std::string::npos);

  // Cut off from the source.
  ASSERT_OK_AND_ASSIGN(auto recovery, sql(*restored, "select pg_is_in_recovery()"));
  EXPECT_EQ(recovery, "f");
  ASSERT_OK_AND_ASSIGN(auto archive_mode, sql(*restored, "show archive_mode"));
  EXPECT_EQ(archive_mode, "off");
  ASSERT_OK_AND_ASSIGN(auto archive_command, sql(*restored, "show archive_command"));
  EXPECT_EQ(archive_command, "(disabled)");  // what SHOW says with archive_mode off
  ASSERT_OK_AND_ASSIGN(auto conninfo, sql(*restored, "show primary_conninfo"));
  EXPECT_EQ(conninfo, "");
  ASSERT_OK_AND_ASSIGN(auto slots, sql(*restored, "select count(*) from pg_replication_slots"));
  EXPECT_EQ(slots, "0");
  EXPECT_TRUE(fs::is_empty(data / "pg_replslot"));
  ASSERT_OK_AND_ASSIGN(auto limits,
                       sql(*restored,
                           "select current_setting('max_wal_senders') || ',' || "
                           "current_setting('max_replication_slots') || ',' || "
                           "current_setting('max_logical_replication_workers') || ',' || "
                           "current_setting('listen_addresses')"));
  EXPECT_EQ(limits, "0,0,0,127.0.0.1");
  EXPECT_FALSE(fs::exists(data / "postgresql.auto.conf"));
  EXPECT_FALSE(fs::exists(data / "standby.signal"));
  EXPECT_FALSE(fs::exists(data / "recovery.signal"));
  struct stat st {};
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  struct stat base_st {};
  ASSERT_EQ(::stat((data / "base").c_str(), &base_st), 0);
  EXPECT_EQ(base_st.st_uid, st.st_uid);
  if (::geteuid() == 0) {
    EXPECT_NE(st.st_uid, 0u) << "the data directory is still root's";
  }

  // Writes and a WAL switch on the restored server reach no archive.
  ASSERT_OK(sql(*restored, "create table after_restore as select generate_series(1, 10000) g"));
  ASSERT_OK(sql(*restored, "select pg_switch_wal()"));
  ASSERT_OK(sql(*restored, "checkpoint"));
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(archive.files(), archived);
  ASSERT_OK_AND_ASSIGN(auto archiver, sql(*restored,
                                          "select archived_count || ',' || failed_count "
                                          "from pg_stat_archiver"));
  EXPECT_EQ(archiver, "0,0");

  // Teardown removes the instance directory.
  const fs::path dir = restored->directory();
  restored.reset();
  EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST(LauncherRestore, StartsWithoutTheSourcesConfigurationFiles) {
  // A Debian cluster keeps postgresql.conf and pg_hba.conf in /etc: its base
  // backup has none of them.
  auto& source = testing::shared_postgres();
  testing::TempDir tmp;
  ASSERT_OK(sql(source, "create table debian_t (v text)"));
  ASSERT_OK(sql(source, "insert into debian_t values ('kept')"));
  const fs::path tar_file = tmp / "base.tar";
  ASSERT_OK(take_base_backup(source, tar_file));

  ASSERT_OK_AND_ASSIGN(auto prepared, launcher::prepare_postgres_instance());
  const fs::path data = prepared->data_dir();
  ASSERT_OK(extract(tar_file, data));
  for (const char* name :
       {"postgresql.conf", "pg_hba.conf", "pg_ident.conf", "postgresql.auto.conf"}) {
    fs::remove(data / name);
  }
  ASSERT_OK_AND_ASSIGN(auto restored, launcher::start_postgres_restored(std::move(prepared)));
  ASSERT_OK_AND_ASSIGN(auto value, sql(*restored, "select v from debian_t"));
  EXPECT_EQ(value, "kept");
  ASSERT_OK_AND_ASSIGN(auto archive_mode, sql(*restored, "show archive_mode"));
  EXPECT_EQ(archive_mode, "off");
  EXPECT_TRUE(fs::exists(data / "postgresql.conf"));
  EXPECT_TRUE(fs::exists(data / "pg_hba.conf"));
  testing::expect_not_in_any_argv(restored->superuser_password().reveal());
  ASSERT_OK(sql(source, "drop table debian_t"));
}

TEST(LauncherRestore, ClusterWithoutThePostgresDatabase) {
  ASSERT_OK_AND_ASSIGN(auto source, launcher::start_postgres());
  testing::TempDir tmp;
  ASSERT_OK(sql(*source, "drop database postgres", "template1"));
  ASSERT_OK(sql(*source, "create table t1_t (v text)", "template1"));
  ASSERT_OK(sql(*source, "insert into t1_t values ('in template1')", "template1"));
  // A role of the source: kept as it is.
  ASSERT_OK(sql(*source, "create role app_owner login", "template1"));
  const fs::path tar_file = tmp / "base.tar";
  ASSERT_OK(take_base_backup(*source, tar_file));
  source.reset();

  ASSERT_OK_AND_ASSIGN(auto prepared, launcher::prepare_postgres_instance());
  ASSERT_OK(extract(tar_file, prepared->data_dir()));
  ASSERT_OK_AND_ASSIGN(auto restored, launcher::start_postgres_restored(std::move(prepared)));
  EXPECT_EQ(restored->target("x").database, "template1");
  ASSERT_OK_AND_ASSIGN(auto value, sql(*restored, "select v from t1_t", "template1"));
  EXPECT_EQ(value, "in template1");
  ASSERT_OK_AND_ASSIGN(auto roles, sql(*restored,
                                       "select string_agg(rolname || ':' || rolsuper, ',' "
                                       "order by rolname) from pg_roles "
                                       "where rolname in ('app_owner', 'dbops')",
                                       "template1"));
  EXPECT_EQ(roles, "app_owner:false,dbops:true");
}

TEST(LauncherRestore, SourceWithoutTheDbopsRole) {
  // The source has no role "dbops" (its bootstrap superuser is "boot"): the
  // launcher creates it, with the instance's fresh password. Single-user mode
  // runs as the bootstrap superuser whatever its name.
  ASSERT_OK_AND_ASSIGN(auto source, launcher::start_postgres());
  testing::TempDir tmp;
  ASSERT_OK(sql(*source, "create role other_admin superuser login password 'other-pw'"));
  ASSERT_OK(psql_as(*source, "other_admin", "other-pw", "alter role dbops rename to boot"));
  const fs::path tar_file = tmp / "base.tar";
  ASSERT_OK(take_base_backup(*source, tar_file, "other_admin", "other-pw"));
  source.reset();

  ASSERT_OK_AND_ASSIGN(auto prepared, launcher::prepare_postgres_instance());
  ASSERT_OK(extract(tar_file, prepared->data_dir()));
  ASSERT_OK_AND_ASSIGN(auto restored, launcher::start_postgres_restored(std::move(prepared)));
  ASSERT_OK_AND_ASSIGN(auto me, sql(*restored,
                                    "select current_user || ':' || rolsuper from "
                                    "pg_roles where rolname = current_user"));
  EXPECT_EQ(me, "dbops:true");
  ASSERT_OK_AND_ASSIGN(auto others,
                       sql(*restored,
                           "select string_agg(rolname || ':' || rolsuper, ',' order by rolname) "
                           "from pg_roles where rolname in ('boot', 'other_admin')"));
  EXPECT_EQ(others, "boot:true,other_admin:true");
}

TEST(LauncherRestore, RefusesAnotherMajorVersion) {
  ASSERT_OK_AND_ASSIGN(auto prepared, launcher::prepare_postgres_instance());
  const fs::path dir = prepared->directory();
  std::ofstream(prepared->data_dir() / "PG_VERSION") << "9.6\n";
  auto restored = launcher::start_postgres_restored(std::move(prepared));
  ASSERT_FALSE(restored.has_value());
  EXPECT_EQ(restored.error().code, ErrorCode::kUnsupported);
  const std::string message = restored.error().to_string();
  EXPECT_NE(message.find("PostgreSQL 9.6"), std::string::npos) << message;
  EXPECT_NE(message.find("installed server is PostgreSQL"), std::string::npos) << message;
  // The failed instance is torn down.
  EXPECT_FALSE(fs::exists(dir)) << dir;
}

TEST(LauncherRestore, RefusesAnEmptyDataDirectory) {
  ASSERT_OK_AND_ASSIGN(auto prepared, launcher::prepare_postgres_instance());
  auto restored = launcher::start_postgres_restored(std::move(prepared));
  ASSERT_FALSE(restored.has_value());
  EXPECT_EQ(restored.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(restored.error().message.find("PG_VERSION"), std::string::npos)
      << restored.error().to_string();
}

TEST(LauncherRestore, RefusesTablespaceLinks) {
  auto& source = testing::shared_postgres();
  ASSERT_OK_AND_ASSIGN(auto prepared, launcher::prepare_postgres_instance());
  const fs::path data = prepared->data_dir();
  fs::copy_file(source.data_dir() / "PG_VERSION", data / "PG_VERSION");
  fs::create_directory(data / "pg_tblspc");
  fs::create_directory_symlink("/var/lib/postgresql/tablespace", data / "pg_tblspc" / "16384");
  auto restored = launcher::start_postgres_restored(std::move(prepared));
  ASSERT_FALSE(restored.has_value());
  EXPECT_EQ(restored.error().code, ErrorCode::kUnsupported);
  EXPECT_NE(restored.error().message.find("pg_tblspc/16384"), std::string::npos)
      << restored.error().to_string();
}

TEST(LauncherRestore, RefusesAnInstanceItDidNotPrepare) {
  auto started = launcher::start_postgres_restored(nullptr);
  ASSERT_FALSE(started.has_value());
  EXPECT_EQ(started.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace dbops
