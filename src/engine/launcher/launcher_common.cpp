#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "core/atomic_file.hpp"
#include "core/log.hpp"
#include "engine/launcher/launcher_internal.hpp"

namespace dbops::engine::launcher {
namespace detail {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kPortAttempts = 8;
constexpr std::string_view kBindErrors[] = {
    "could not bind",                                // PostgreSQL
    "Address already in use",                        // all of them
    "Bind on TCP/IP port",                           // MariaDB
    "Could not create server TCP listening socket",  // Redis
};

// The pid namespace of this process ("pid:[4026531836]"); owner files from
// another namespace (a container sharing /tmp) are never judged stale.
std::string pid_namespace() {
  std::error_code ec;
  fs::path ns = fs::read_symlink("/proc/self/ns/pid", ec);
  return ec ? std::string() : ns.string();
}

std::string basename_of(const std::string& program) {
  return fs::path(program).filename().string();
}

// The last lines of `text`, at most `max_lines`.
std::string last_lines(std::string_view text, std::size_t max_lines) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::size_t pos = text.size();
  std::size_t lines = 0;
  while (pos > 0) {
    std::size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string_view::npos) {
      pos = 0;
      break;
    }
    if (++lines == max_lines) {
      pos = nl + 1;
      break;
    }
    pos = nl;
  }
  return std::string(text.substr(pos));
}

// Can `uid`/`gid` search every directory from / down to `dir`?
Status check_reachable(const fs::path& dir, const RunAs& as) {
  if (!as.user) return ok();
  fs::path current;
  for (const auto& part : fs::absolute(dir)) {
    current /= part;
    struct stat st;
    if (::stat(current.c_str(), &st) != 0) return fail(errno_error(current.string(), errno));
    mode_t need = st.st_uid == as.user->uid   ? S_IXUSR
                  : st.st_gid == as.user->gid ? S_IXGRP
                                              : S_IXOTH;
    if ((st.st_mode & need) == 0) {
      return fail(ErrorCode::kConfig,
                  "instance directory base " + dir.string() + ": " + current.string() +
                      " is not searchable by user " + as.name,
                  "Point $DBOPS_INSTANCE_DIR (or Options::base_dir) at a directory the user can "
                  "reach, such as /tmp.");
    }
  }
  return ok();
}

}  // namespace

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<RunAs> resolve_run_as(const Options& options, std::string_view package_user) {
  RunAs as;
  if (::geteuid() != 0) {
    if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr) as.name = pw->pw_name;
    return as;
  }
  std::vector<std::string> candidates;
  if (!options.run_as.empty()) {
    candidates = {options.run_as};
  } else {
    candidates = {std::string(package_user), "nobody"};
  }
  for (const auto& name : candidates) {
    passwd pw;
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found) continue;
    if (pw.pw_uid == 0) {
      return fail(ErrorCode::kConfig, "launcher: run_as user \"" + name + "\" is root",
                  "PostgreSQL and MariaDB refuse to run as root; name an unprivileged user.");
    }
    as.user = RunAsUser{pw.pw_uid, pw.pw_gid};
    as.name = name;
    return as;
  }
  return fail(ErrorCode::kConfig,
              "launcher: run_as user \"" + candidates.front() + "\" does not exist",
              "Create the user or set Options::run_as to an existing unprivileged user.");
}

Result<fs::path> find_tool(std::string_view engine, const std::vector<std::string>& names,
                           const std::vector<fs::path>& extra_dirs, std::string_view hint) {
  std::vector<fs::path> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    std::size_t start = 0;
    while (start <= p.size()) {
      std::size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      if (end > start) dirs.emplace_back(p.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
  for (const auto& name : names) {
    for (const auto& dir : dirs) {
      fs::path candidate = dir / name;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return fail(ErrorCode::kNotFound, std::string(engine) + ": " + names.front() + " not found",
              std::string(hint));
}

Result<fs::path> mariadb_tool(const std::vector<std::string>& names) {
  return find_tool("mysql", names, {"/usr/sbin", "/usr/libexec", "/usr/local/sbin"},
                   "Install MariaDB (scripts/setup test installs mariadb-server and "
                   "mariadb-client).");
}

Result<fs::path> redis_tool(const std::vector<std::string>& names) {
  return find_tool("redis", names, {"/usr/sbin", "/usr/local/sbin"},
                   "Install Redis (scripts/setup test installs redis-server and redis-tools).");
}

std::string random_password(std::size_t length) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::uniform_int_distribution<std::size_t> pick(0, kAlphabet.size() - 1);
  std::string out;
  out.reserve(length);
  for (std::size_t i = 0; i < length; ++i) out += kAlphabet[pick(rd)];
  return out;
}

int random_port() {
  // Below 32768, where Linux picks ephemeral ports for outgoing connections.
  std::random_device rd;
  return std::uniform_int_distribution<int>(20000, 32000)(rd);
}

std::optional<ProcInfo> read_proc(pid_t pid) {
  std::string text = read_text("/proc/" + std::to_string(pid) + "/stat");
  std::size_t close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(text.substr(close + 2));
  // Fields from 3 on: state ppid pgrp session tty tpgid flags minflt cminflt
  // majflt cmajflt utime stime cutime cstime priority nice threads itreal
  // starttime.
  std::string state;
  ProcInfo info;
  info.pid = pid;
  in >> state >> info.ppid;
  std::string skip;
  for (int field = 5; field < 22 && in; ++field) in >> skip;
  in >> info.start_time;
  if (!in) return std::nullopt;
  if (state == "Z" || state == "X") return std::nullopt;  // already dead
  return info;
}

namespace {

std::vector<ProcInfo> all_processes() {
  std::vector<ProcInfo> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 0) continue;
    if (auto info = read_proc(static_cast<pid_t>(pid))) out.push_back(*info);
  }
  ::closedir(dir);
  return out;
}

bool is_within(const fs::path& path, const fs::path& dir) {
  const std::string p = path.string();
  const std::string d = dir.string();
  return p == d || (p.size() > d.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/');
}

}  // namespace

std::vector<ProcInfo> process_tree(pid_t pid) {
  std::vector<ProcInfo> out;
  auto root = read_proc(pid);
  if (!root) return out;
  out.push_back(*root);
  std::vector<ProcInfo> all = all_processes();
  std::set<pid_t> members = {pid};
  bool grew = true;
  while (grew) {
    grew = false;
    for (const auto& p : all) {
      if (members.count(p.ppid) != 0 && members.insert(p.pid).second) {
        out.push_back(p);
        grew = true;
      }
    }
  }
  return out;
}

std::vector<ProcInfo> processes_in(const fs::path& dir) {
  std::vector<ProcInfo> out;
  const pid_t self = ::getpid();
  for (const auto& p : all_processes()) {
    if (p.pid == self) continue;
    std::error_code ec;
    fs::path cwd = fs::read_symlink("/proc/" + std::to_string(p.pid) + "/cwd", ec);
    if (ec) continue;
    std::string text = cwd.string();
    constexpr std::string_view kDeleted = " (deleted)";
    if (text.ends_with(kDeleted)) text.resize(text.size() - kDeleted.size());
    if (is_within(text, dir)) out.push_back(p);
  }
  return out;
}

bool still_alive(const ProcInfo& info) {
  auto now = read_proc(info.pid);
  return now && now->start_time == info.start_time;
}

std::uintmax_t file_size_or_zero(const fs::path& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

std::string read_from(const fs::path& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string file_tail(const fs::path& path, std::size_t max_lines) {
  constexpr std::uintmax_t kMaxBytes = 8192;
  std::uintmax_t size = file_size_or_zero(path);
  std::string text = read_from(path, size > kMaxBytes ? size - kMaxBytes : 0);
  return last_lines(text, max_lines);
}

Status write_owned_file(const fs::path& path, std::string_view contents, const RunAs& as,
                        mode_t mode) {
  DBOPS_TRY(write_file_atomic(path, contents, mode));
  if (as.user && ::chown(path.c_str(), as.user->uid, as.user->gid) != 0) {
    return fail(errno_error("chown " + path.string(), errno));
  }
  return ok();
}

Status chown_tree(const fs::path& path, const RunAs& as) {
  if (!as.user) return ok();
  auto chown_one = [&](const fs::path& p) -> Status {
    if (::lchown(p.c_str(), as.user->uid, as.user->gid) != 0) {
      return fail(errno_error("chown " + p.string(), errno));
    }
    return ok();
  };
  DBOPS_TRY(chown_one(path));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    DBOPS_TRY(chown_one(it->path()));
  }
  if (ec) return fail(ErrorCode::kIo, "chown " + path.string() + ": " + ec.message());
  return ok();
}

Result<ProcessResult> run_tool_raw(const ToolRun& run) {
  ProcessOptions options;
  options.argv = run.argv;
  if (run.as != nullptr) options.run_as = run.as->user;
  options.env = run.env;
  options.clear_env = true;
  options.cwd = run.cwd.string();
  options.timeout = run.timeout;
  options.kill_grace = 1s;
  options.stdin_data = run.stdin_data;
  options.stdout_sink = OutputSink::capture();
  options.stderr_sink = OutputSink::capture_tail(16384);
  auto result = run_process(options);
  if (!result) return fail(std::move(result).error().with_context(basename_of(run.argv[0])));
  return result;
}

Result<std::string> run_tool(const ToolRun& run) {
  DBOPS_ASSIGN(ProcessResult result, run_tool_raw(run));
  if (result.succeeded()) return std::move(result.stdout_text);
  std::string detail = last_lines(result.stderr_text, 10);
  if (detail.empty()) detail = last_lines(result.stdout_text, 10);
  std::string message = basename_of(run.argv[0]) + ": " + result.describe();
  if (!detail.empty()) message += ": " + detail;
  return fail(result.timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable, message);
}

Status wait_until(std::string_view what, Clock::time_point deadline,
                  const std::function<Result<bool>(std::string& why_not)>& probe,
                  std::chrono::milliseconds interval) {
  std::string why_not;
  for (;;) {
    why_not.clear();
    DBOPS_ASSIGN(bool done, probe(why_not));
    if (done) return ok();
    if (Clock::now() >= deadline) {
      std::string message = std::string(what) + ": still not done at the deadline";
      if (!why_not.empty()) message += ": " + why_not;
      return fail(ErrorCode::kTimeout, message);
    }
    std::this_thread::sleep_for(interval);
  }
}

std::string sql_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') {
      out += "''";
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

// --- LaunchedInstance ---

LaunchedInstance::LaunchedInstance(const Options& options, Shape shape, RunAs as, Secret password,
                                   fs::path dir)
    : options_(options),
      shape_(std::move(shape)),
      as_(std::move(as)),
      password_(std::move(password)),
      dir_(std::move(dir)),
      data_dir_(dir_ / "data") {}

fs::path instance_base(const Options& options) {
  if (!options.base_dir.empty()) return options.base_dir;
  if (const char* env = std::getenv("DBOPS_INSTANCE_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/tmp";
}

Result<fs::path> make_owned_dir(const fs::path& base, std::string_view tag, const RunAs& as) {
  DBOPS_TRY(check_reachable(base, as));
  std::string tmpl = (base / (std::string(kDirPrefix) + std::string(tag) + "-XXXXXX")).string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return fail(errno_error("launcher: create a directory in " + base.string(), errno));
  }
  const fs::path dir = tmpl;
  auto self = read_proc(::getpid());
  std::string owner = std::to_string(::getpid()) + " " +
                      std::to_string(self ? self->start_time : 0) + " " + pid_namespace() + "\n";
  Status status = write_file_atomic(dir / kOwnerFile, owner, 0644);
  if (status && as.user && ::chown(dir.c_str(), as.user->uid, as.user->gid) != 0) {
    status = fail(errno_error("launcher: chown " + dir.string(), errno));
  }
  if (!status) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    return fail(std::move(status).error());
  }
  return dir;
}

Result<std::unique_ptr<LaunchedInstance>> LaunchedInstance::create(const Options& options,
                                                                   std::string_view tag,
                                                                   Shape shape, RunAs as,
                                                                   Secret password) {
  const fs::path base = instance_base(options);
  reap_stale(base);
  DBOPS_ASSIGN(fs::path dir, make_owned_dir(base, tag, as));
  return std::unique_ptr<LaunchedInstance>(new LaunchedInstance(
      options, std::move(shape), std::move(as), std::move(password), std::move(dir)));
}

LaunchedInstance::~LaunchedInstance() {
  if (auto status = stop(); !status) {
    log::warn("launcher: stopping the instance failed",
              {{"dir", dir_.string()}, {"error", status.error().to_string()}});
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
  if (ec) {
    log::warn("launcher: cannot remove the instance directory",
              {{"dir", dir_.string()}, {"error", ec.message()}});
  }
}

config::Target LaunchedInstance::target(std::string name) const {
  config::Target t;
  t.name = std::move(name);
  t.engine = shape_.engine;
  t.host = host_;
  t.port = port_;
  t.user = shape_.superuser;
  t.password = password_;
  t.database = shape_.database;
  return t;
}

Result<fs::path> LaunchedInstance::socket_path(std::string_view name) const {
  fs::path path = dir_ / name;
  if (path.string().size() > kMaxSocketPath) {
    return fail(ErrorCode::kInvalidArgument,
                shape_.engine + ": socket path " + path.string() + " is longer than " +
                    std::to_string(kMaxSocketPath) + " bytes",
                "Use a shorter base directory (Options::base_dir or $DBOPS_INSTANCE_DIR), "
                "such as /tmp.");
  }
  return path;
}

void LaunchedInstance::kill_everything() {
  std::vector<ProcInfo> victims = processes_in(dir_);
  if (server_.pid() != 0) {
    for (const auto& p : process_tree(server_.pid())) victims.push_back(p);
  }
  for (const auto& p : victims) {
    if (still_alive(p)) ::kill(p.pid, SIGKILL);
  }
}

Status LaunchedInstance::stop() {
  if (stopped_) return ok();
  stopped_ = true;
  (void)resume();
  Status status;
  if (server_.running()) {
    server_.stop(shape_.stop_signal, shape_.stop_grace);
    const std::optional<int> ws = server_.wait_status();
    if (ws && WIFSIGNALED(*ws) && WTERMSIG(*ws) == SIGKILL) {
      status = fail(ErrorCode::kTimeout,
                    shape_.engine + " instance " + dir_.string() + ": no clean shutdown within " +
                        std::to_string(shape_.stop_grace.count()) + " ms; killed");
    }
  }
  // Whatever is left (children of a killed server, a paused tool).
  kill_everything();
  return status;
}

Status LaunchedInstance::pause() {
  if (!paused_.empty()) return ok();
  if (!server_.running()) {
    return fail(ErrorCode::kUnavailable, shape_.engine + " instance " + dir_.string() +
                                             ": server is not running (" + server_.describe() +
                                             ")");
  }
  // The main process first, so that it cannot start new children meanwhile.
  std::set<pid_t> seen;
  for (int round = 0; round < 5; ++round) {
    std::vector<ProcInfo> procs = process_tree(server_.pid());
    for (const auto& p : processes_in(dir_)) procs.push_back(p);
    bool added = false;
    for (const auto& p : procs) {
      if (!seen.insert(p.pid).second) continue;
      if (::kill(p.pid, SIGSTOP) == 0) {
        paused_.push_back(p);
        added = true;
      }
    }
    if (!added) break;
  }
  return ok();
}

Status LaunchedInstance::resume() {
  // Children first, the main process last.
  for (auto it = paused_.rbegin(); it != paused_.rend(); ++it) {
    if (still_alive(*it)) ::kill(it->pid, SIGCONT);
  }
  paused_.clear();
  return ok();
}

Error LaunchedInstance::error_with_log(ErrorCode code, std::string what) const {
  std::string message = shape_.engine + " instance " + dir_.string();
  if (port_ != 0) message += " (port " + std::to_string(port_) + ")";
  message += ": " + what;
  const std::string tail = file_tail(log_file());
  if (!tail.empty()) message += "\n--- last lines of " + log_file().string() + " ---\n" + tail;
  return make_error(code, std::move(message));
}

Status LaunchedInstance::start(const Launch& launch, Clock::time_point deadline) {
  std::string last_bind_error;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    const int port = random_port();
    port_ = port;
    DBOPS_TRY(launch.configure(port));
    const std::uintmax_t log_offset = file_size_or_zero(log_file());

    BackgroundOptions bg;
    bg.argv = launch.argv;
    bg.env = launch.env;
    bg.clear_env = true;
    bg.cwd = dir_;
    bg.run_as = as_.user;
    bg.output_file = log_file();
    bg.parent_death_signal = shape_.death_signal;
    auto spawned = BackgroundProcess::spawn(bg);
    if (!spawned) return fail(error_with_log(spawned.error().code, spawned.error().message));
    server_ = std::move(*spawned);
    stopped_ = false;

    bool retry = false;
    for (;;) {
      if (!server_.running()) {
        const std::string text = read_from(log_file(), log_offset);
        if (std::ranges::any_of(kBindErrors, [&](std::string_view marker) {
              return text.find(marker) != std::string::npos;
            })) {
          log::debug("launcher: port taken, retrying with another",
                     {{"engine", shape_.engine}, {"port", port}});
          last_bind_error = last_lines(text, 3);
          retry = true;
          break;
        }
        return fail(error_with_log(ErrorCode::kUnavailable,
                                   "server exited during start (" + server_.describe() + ")"));
      }
      std::string why_not;
      auto ready = launch.ready(why_not);
      if (!ready) {
        return fail(error_with_log(ready.error().code, ready.error().to_string()));
      }
      if (*ready) {
        log::debug("launcher: server ready", {{"engine", shape_.engine},
                                              {"dir", dir_.string()},
                                              {"port", port},
                                              {"pid", static_cast<int>(server_.pid())}});
        return ok();
      }
      if (Clock::now() >= deadline) {
        std::string what = "server not ready in time";
        if (!why_not.empty()) what += " (" + why_not + ")";
        return fail(error_with_log(ErrorCode::kTimeout, what)
                        .with_hint("Raise Options::start_timeout on a slow machine, or read the "
                                   "server log above."));
      }
      std::this_thread::sleep_for(50ms);
    }
    if (!retry) break;
  }
  return fail(error_with_log(
      ErrorCode::kUnavailable,
      "no free port after " + std::to_string(kPortAttempts) + " attempts: " + last_bind_error));
}

}  // namespace detail

Result<std::filesystem::path> tool_path(std::string_view engine, std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos) {
    return fail(ErrorCode::kInvalidArgument,
                std::string(engine) + ": invalid tool name \"" + std::string(name) + "\"");
  }
  if (engine == "postgres") {
    DBOPS_ASSIGN(std::filesystem::path bindir, detail::postgres_bindir());
    std::filesystem::path path = bindir / name;
    if (::access(path.c_str(), X_OK) != 0) {
      return fail(ErrorCode::kNotFound,
                  "postgres: " + std::string(name) + " not found in " + bindir.string(),
                  "Install the PostgreSQL client and server packages of that version.");
    }
    return path;
  }
  if (engine == "mysql" || engine == "mariadb") return detail::mariadb_tool({std::string(name)});
  if (engine == "redis") return detail::redis_tool({std::string(name)});
  return fail(ErrorCode::kUnsupported,
              "launcher: no tools known for engine \"" + std::string(engine) + "\"");
}

void reap_stale(const std::filesystem::path& base_dir) {
  namespace fs = std::filesystem;
  const std::string my_namespace = detail::pid_namespace();
  std::error_code ec;
  for (auto it =
           fs::directory_iterator(base_dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::end(it); it.increment(ec)) {
    const fs::path dir = it->path();
    if (!dir.filename().string().starts_with(detail::kDirPrefix)) continue;
    std::error_code type_ec;
    if (!it->is_directory(type_ec) || it->is_symlink(type_ec)) continue;
    std::ifstream owner_in(dir / detail::kOwnerFile);
    long pid = 0;
    std::uint64_t start_time = 0;
    std::string ns;
    if (!(owner_in >> pid >> start_time)) continue;  // not ours, or being created
    owner_in >> ns;
    if (ns != my_namespace || pid <= 0) continue;
    if (detail::still_alive({static_cast<pid_t>(pid), 0, start_time})) continue;

    for (const auto& p : detail::processes_in(dir)) ::kill(p.pid, SIGKILL);
    // Killed processes may take a moment to release the directory.
    for (int i = 0; i < 50 && !detail::processes_in(dir).empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::error_code rm_ec;
    fs::remove_all(dir, rm_ec);
    if (rm_ec) {
      log::debug("launcher: cannot remove a stale instance directory",
                 {{"dir", dir.string()}, {"error", rm_ec.message()}});
    } else {
      log::info("launcher: removed a stale instance directory",
                {{"dir", dir.string()}, {"owner_pid", static_cast<std::int64_t>(pid)}});
    }
  }
}

}  // namespace dbops::engine::launcher
