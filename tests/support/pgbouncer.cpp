#include "support/pgbouncer.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "support/instances.hpp"
#include "support/net.hpp"

namespace dbops::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A value inside double quotes in PgBouncer's user list.
std::string userlist_value(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<std::unique_ptr<PgBouncer>> PgBouncer::start(const engine::launcher::Instance& pg,
                                                    int pool_size) {
  // Its files, readable by the user it runs as.
  TempDir dir;
  const int port = closed_port();
  std::ofstream(dir / "userlist.txt") << userlist_value(pg.superuser()) << " "
                                      << userlist_value(pg.superuser_password().reveal()) << "\n";
  ::chmod((dir / "userlist.txt").c_str(), 0600);
  std::ofstream(dir / "pgbouncer.ini")
      << "[databases]\n* = host=127.0.0.1 port=" << pg.port() << "\n"
      << "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = " << port
      << "\nunix_socket_dir =\nauth_type = scram-sha-256\nauth_file = "
      << (dir / "userlist.txt").string() << "\npool_mode = transaction\n"
      << "default_pool_size = " << pool_size << "\nmax_client_conn = 500\n"
      << "server_reset_query =\nlogfile = " << (dir / "pgbouncer.log").string() << "\n";

  BackgroundOptions options;
  options.argv = {"pgbouncer", (dir / "pgbouncer.ini").string()};
  options.output_file = dir / "pgbouncer.out";
  options.parent_death_signal = SIGKILL;
  if (::geteuid() == 0) {
    // PgBouncer refuses root: it runs as the owner of the server's files.
    struct stat st {};
    if (::stat(pg.data_dir().c_str(), &st) != 0) {
      return fail(ErrorCode::kIo, "pgbouncer: cannot stat " + pg.data_dir().string());
    }
    options.run_as = RunAsUser{.uid = st.st_uid, .gid = st.st_gid};
    for (const auto& entry : fs::recursive_directory_iterator(dir.path())) {
      (void)::chown(entry.path().c_str(), st.st_uid, st.st_gid);
    }
    (void)::chown(dir.path().c_str(), st.st_uid, st.st_gid);
  }
  auto bouncer = std::unique_ptr<PgBouncer>(new PgBouncer(pg, std::move(dir), port));
  DBOPS_ASSIGN(bouncer->process_, BackgroundProcess::spawn(options));

  // Ready when a query goes through it.
  const auto until = std::chrono::steady_clock::now() + 30s;
  std::string last;
  while (std::chrono::steady_clock::now() < until) {
    if (!bouncer->process_.running()) {
      return fail(ErrorCode::kUnavailable,
                  "pgbouncer exited (" + bouncer->process_.describe() + "): " + bouncer->log());
    }
    ProcessOptions psql_options;
    psql_options.argv = {
        "psql",
        "-X",
        "-A",
        "-t",
        "-d",
        "postgresql://" + pg.superuser() + "@127.0.0.1:" + std::to_string(port) + "/postgres",
        "-c",
        "SELECT 1"};
    psql_options.env = {{"PGPASSWORD", pg.superuser_password().reveal()}};
    psql_options.timeout = 5s;
    auto r = run_process(psql_options);
    if (r && r->exit_code == 0) return bouncer;
    last = r ? r->stderr_text : r.error().to_string();
    std::this_thread::sleep_for(100ms);
  }
  return fail(ErrorCode::kTimeout,
              "pgbouncer did not answer within 30s: " + last + "\n" + bouncer->log());
}

PgBouncer::~PgBouncer() {
  process_.stop(SIGINT, 5s);
}

std::string PgBouncer::dsn(std::string_view database) const {
  return "postgresql://" + pg_.superuser() + ":" + pg_.superuser_password().reveal() +
         "@127.0.0.1:" + std::to_string(port_) + "/" + std::string(database);
}

std::string PgBouncer::log() const {
  return read_file(dir_ / "pgbouncer.log") + read_file(dir_ / "pgbouncer.out");
}

}  // namespace dbops::testing
