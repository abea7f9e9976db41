// Shared machinery of the engine launchers (private to engine/launcher/).
//
// Layout of an instance directory (<base>/dbops-<tag>-XXXXXX, mode 0700, owned
// by the user the server runs as):
//   dbops-owner   "<pid> <start time>" of the process that launched it; its
//                 death makes the directory stale (see reap_stale())
//   data/         the server's data directory
//   <engine>.log  the server's stdout and stderr
//   sockets, generated configuration files
//
// Every server process runs with its working directory inside the instance
// directory; that is how reap_stale() and the destructor find all of them,
// also the ones that were re-parented after their parent died.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/background_process.hpp"
#include "core/result.hpp"
#include "core/secret.hpp"
#include "core/subprocess.hpp"
#include "engine/launcher/launcher.hpp"

namespace dbops::engine::launcher::detail {

using Clock = std::chrono::steady_clock;

inline constexpr std::string_view kOwnerFile = "dbops-owner";
inline constexpr std::string_view kDirPrefix = "dbops-";
// Unix socket paths (sun_path) hold at most 107 bytes.
inline constexpr std::size_t kMaxSocketPath = 107;

// Who the server and its tools run as.
struct RunAs {
  // Set when dbops runs as root: drop to this user.
  std::optional<RunAsUser> user;
  std::string name;  // for messages
};

// The parent of instance directories: Options::base_dir, else
// $DBOPS_INSTANCE_DIR, else /tmp.
std::filesystem::path instance_base(const Options& options);

// Creates <base>/dbops-<tag>-XXXXXX (mode 0700) with the owner file that
// reap_stale() judges it by, owned by `as`.
Result<std::filesystem::path> make_owned_dir(const std::filesystem::path& base,
                                             std::string_view tag, const RunAs& as);

// Resolves Options::run_as (or the engine's package user, else "nobody") when
// dbops runs as root; the current user otherwise.
Result<RunAs> resolve_run_as(const Options& options, std::string_view package_user);

// The first of `names` found in $<env_var> (a directory), on PATH or in
// `extra_dirs`; an error with an installation hint otherwise.
Result<std::filesystem::path> find_tool(std::string_view engine,
                                        const std::vector<std::string>& names,
                                        const std::vector<std::filesystem::path>& extra_dirs,
                                        std::string_view hint);

// PostgreSQL's bin directory: $DBOPS_PG_BINDIR, else the newest
// /usr/lib/postgresql/<version>/bin, else where initdb is on PATH.
Result<std::filesystem::path> postgres_bindir();

// MariaDB's and Redis's programs: PATH, then the sbin directories.
Result<std::filesystem::path> mariadb_tool(const std::vector<std::string>& names);
Result<std::filesystem::path> redis_tool(const std::vector<std::string>& names);

// A random password of letters and digits.
std::string random_password(std::size_t length = 24);
// A random TCP port below the Linux ephemeral range.
int random_port();

// A process as seen in /proc.
struct ProcInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::uint64_t start_time = 0;  // clock ticks since boot (stat field 22)
};
std::optional<ProcInfo> read_proc(pid_t pid);
// pid and its descendants (through ppid links), pid first.
std::vector<ProcInfo> process_tree(pid_t pid);
// Processes whose working directory is `dir` or below it.
std::vector<ProcInfo> processes_in(const std::filesystem::path& dir);
// True when `info` still names the same live process (pid not reused).
bool still_alive(const ProcInfo& info);

// The whole file; empty when it cannot be read.
std::string read_text(const std::filesystem::path& path);
// The last `max_lines` lines of a file (at most 8 KiB), for error messages.
std::string file_tail(const std::filesystem::path& path, std::size_t max_lines = 30);
// The part of a file after byte `offset`.
std::string read_from(const std::filesystem::path& path, std::uintmax_t offset);
std::uintmax_t file_size_or_zero(const std::filesystem::path& path);

// Writes a file in the instance directory (atomic, owned by the server user).
Status write_owned_file(const std::filesystem::path& path, std::string_view contents,
                        const RunAs& as, mode_t mode = 0600);
// chown -R to the server user (no-op when no switch is needed).
Status chown_tree(const std::filesystem::path& path, const RunAs& as);

// Runs a client tool or an offline server tool to completion with captured
// output; `as` set: as that user. Non-zero exit is an error carrying the last
// stderr lines (or stdout when stderr is empty).
struct ToolRun {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::optional<std::string> stdin_data;
  std::chrono::milliseconds timeout{30'000};
  std::filesystem::path cwd;
  const RunAs* as = nullptr;
};
Result<ProcessResult> run_tool_raw(const ToolRun& run);
Result<std::string> run_tool(const ToolRun& run);

// A running throwaway server: one class for every engine; the engine-specific
// start code fills it in. Destroying it stops the server and removes the
// directory, so it is created first and owns everything made afterwards.
class LaunchedInstance final : public Instance {
 public:
  struct Shape {
    std::string engine;    // "postgres", "mysql", "redis"
    std::string log_name;  // file name of the server log in the directory
    std::string superuser;
    std::string database;        // for target()
    int stop_signal = SIGTERM;   // graceful stop
    int death_signal = SIGKILL;  // when dbops dies
    std::chrono::milliseconds stop_grace{10'000};
  };

  // Creates <base>/dbops-<tag>-XXXXXX with the owner file, owned by `as`.
  static Result<std::unique_ptr<LaunchedInstance>> create(const Options& options,
                                                          std::string_view tag, Shape shape,
                                                          RunAs as, Secret password);
  ~LaunchedInstance() override;

  std::string_view engine() const override { return shape_.engine; }
  const std::string& host() const override { return host_; }
  int port() const override { return port_; }
  const std::filesystem::path& directory() const override { return dir_; }
  const std::filesystem::path& data_dir() const override { return data_dir_; }
  int pid() const override { return static_cast<int>(server_.pid()); }
  const std::string& superuser() const override { return shape_.superuser; }
  const Secret& superuser_password() const override { return password_; }
  config::Target target(std::string name) const override;
  Status stop() override;
  Status pause() override;
  Status resume() override;

  const RunAs& run_as() const { return as_; }
  // The options the instance was created with.
  const Options& options() const { return options_; }
  // The database target() names; a restored PostgreSQL cluster may lack the
  // default one.
  const std::string& database() const { return shape_.database; }
  void set_database(std::string database) { shape_.database = std::move(database); }
  std::filesystem::path log_file() const { return dir_ / shape_.log_name; }
  // A path in the directory, checked against the socket path limit.
  Result<std::filesystem::path> socket_path(std::string_view name) const;

  // How to start the server; see start().
  struct Launch {
    std::vector<std::string> argv;
    std::vector<std::pair<std::string, std::string>> env;
    // Writes the configuration for the given port.
    std::function<Status(int port)> configure;
    // Ready to serve? false: not yet (with the reason in `why_not`, for the
    // timeout message); an error: give up.
    std::function<Result<bool>(std::string& why_not)> ready;
  };
  // Starts the server on a random port, retrying another port when the server
  // reports that it could not bind; returns once ready() says so. A failure
  // carries the tail of the server log.
  Status start(const Launch& launch, Clock::time_point deadline);

  // An error "<engine> on <port>: what" with the server log's tail appended.
  Error error_with_log(ErrorCode code, std::string what) const;

 private:
  LaunchedInstance(const Options& options, Shape shape, RunAs as, Secret password,
                   std::filesystem::path dir);
  void kill_everything();

  Options options_;
  Shape shape_;
  RunAs as_;
  Secret password_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  std::filesystem::path dir_;
  std::filesystem::path data_dir_;
  BackgroundProcess server_;
  bool stopped_ = false;
  // Processes stopped by pause(), for resume().
  std::vector<ProcInfo> paused_;
};

// Retries `probe` every `interval` until it returns true, fails, or the
// deadline passes (kTimeout error "<what>: still not done at the deadline:
// <why_not>").
Status wait_until(std::string_view what, Clock::time_point deadline,
                  const std::function<Result<bool>(std::string& why_not)>& probe,
                  std::chrono::milliseconds interval = std::chrono::milliseconds(100));

// Quotes a value for a SQL string literal ('...' with '' and \\ escaped).
std::string sql_quote(std::string_view value);

}  // namespace dbops::engine::launcher::detail
