#include "engine/redis/redis_backup.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "core/clock.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "engine/engine.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/redis/rdb.hpp"
#include "engine/redis/redis_session.hpp"

namespace dbops::engine::redis {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// redis-cli --rdb writes the diskless transfer's end marker after the RDB.
constexpr std::size_t kEofMarkSize = 40;
// The RDB prefix kept to read its aux fields and per-database key counts.
constexpr std::size_t kSummaryPrefix = std::size_t{64} << 20;

Result<std::string> tool(std::string_view name) {
  DBOPS_ASSIGN(auto path, launcher::tool_path("redis", name));
  return path.string();
}

Result<std::unique_ptr<CommandSession>> open_session(const config::Target& target) {
  DBOPS_ASSIGN(auto params, resolve_params(target));
  ConnectOptions options;
  options.application_name = "dbops backup";
  return connect(params, options);
}

Result<std::string> command_text(CommandSession& session, const std::vector<std::string>& argv) {
  DBOPS_ASSIGN(auto reply, session.command(argv, Deadline::after(std::chrono::seconds(30))));
  if (auto e = reply_error(reply, argv.front())) return std::unexpected(*e);
  switch (reply.type) {
    case Reply::Type::kNil:
      return std::string("(nil)");
    case Reply::Type::kInteger:
      return std::to_string(reply.integer);
    case Reply::Type::kArray: {
      std::string out;
      for (const auto& e : reply.elements) {
        if (!out.empty()) out += '\n';
        out += e.type == Reply::Type::kInteger ? std::to_string(e.integer) : e.str;
      }
      return out;
    }
    default:
      return reply.str;
  }
}

// db -> keys, from INFO keyspace ("db0:keys=3,expires=0,avg_ttl=0").
Result<std::map<int, std::int64_t>> keyspace(CommandSession& session) {
  DBOPS_ASSIGN(auto info, command_text(session, {"INFO", "keyspace"}));
  std::map<int, std::int64_t> out;
  static const std::regex line_re(R"(db(\d+):keys=(\d+))");
  for (auto it = std::sregex_iterator(info.begin(), info.end(), line_re);
       it != std::sregex_iterator(); ++it) {
    out[std::stoi((*it)[1])] = std::stoll((*it)[2]);
  }
  return out;
}

class RedisBackupDriver final : public BackupDriver {
 public:
  std::vector<std::string> methods() const override { return {"rdb"}; }

  Result<BackupResult> backup(const config::Target& target, const BackupRequest& request,
                              BackupOutput& output) const override {
    if (!request.method.empty() && request.method != "rdb") {
      return fail(ErrorCode::kUnsupported,
                  "redis has no backup method \"" + request.method + "\"; it has: rdb");
    }
    DBOPS_ASSIGN(const std::string cli, tool("redis-cli"));
    DBOPS_ASSIGN(auto params, resolve_params(target));
    DBOPS_ASSIGN(auto env, Registry::global().find("redis")->client_environment(target));
    BackupResult result;
    {
      DBOPS_ASSIGN(auto session, open_session(target));
      result.server_version = session->server_version();
    }
    std::vector<std::string> argv = {cli};
    if (params.unix_socket()) {
      argv.insert(argv.end(), {"-s", params.host});
    } else {
      argv.insert(argv.end(), {"-h", params.host, "-p", std::to_string(params.port)});
    }
    if (!params.user.empty()) argv.insert(argv.end(), {"--user", params.user});
    argv.insert(argv.end(), {"--rdb", "-"});

    // The last kEofMarkSize bytes are held back until the end: they are the
    // transfer's end marker when redis-cli wrote one.
    std::string held;
    std::string prefix;
    std::uint64_t total = 0;
    std::string stderr_text;
    DBOPS_TRY(
        output.object("dump.rdb", "redis rdb", [&](const BackupOutput::Write& write) -> Status {
          DBOPS_ASSIGN(
              auto r,
              run_process(
                  {.argv = argv,
                   .env = env,
                   .timeout = request.timeout,
                   .cancel = output.cancel(),
                   .stdout_sink = OutputSink::callback([&](std::string_view bytes) -> Status {
                     total += bytes.size();
                     held.append(bytes);
                     if (held.size() <= kEofMarkSize) return ok();
                     const std::size_t out = held.size() - kEofMarkSize;
                     const std::string_view ready(held.data(), out);
                     if (prefix.size() < kSummaryPrefix) {
                       prefix.append(ready.substr(0, kSummaryPrefix - prefix.size()));
                     }
                     DBOPS_TRY(write(ready));
                     held.erase(0, out);
                     return ok();
                   })}));
          DBOPS_TRY(r.check("redis-cli --rdb"));
          stderr_text = r.stderr_text;
          // "Transfer finished with success after N bytes": N is the RDB alone.
          static const std::regex done_re(R"(after (\d+) bytes)");
          std::smatch m;
          if (!std::regex_search(stderr_text, m, done_re)) {
            return fail(ErrorCode::kIo, "redis-cli --rdb did not report the transfer's size: " +
                                            std::string(trim(stderr_text)));
          }
          const std::uint64_t rdb_size = std::stoull(m[1]);
          if (rdb_size + kEofMarkSize == total) return ok();  // drop the marker
          if (rdb_size == total) {
            if (prefix.size() < kSummaryPrefix) prefix.append(held);
            return write(held);
          }
          return fail(ErrorCode::kIo, "redis-cli --rdb wrote " + std::to_string(total) +
                                          " bytes for an RDB of " + std::to_string(rdb_size));
        }));

    const RdbSummary summary = summarize_rdb(prefix);
    if (summary.version == 0)
      return fail(ErrorCode::kCorrupt, "redis-cli --rdb: " + summary.problem);
    result.tool = "redis-cli --rdb (RDB version " + std::to_string(summary.version) + ")";
    for (const char* key : {"repl-id", "repl-offset"}) {
      if (const auto it = summary.aux.find(key); it != summary.aux.end()) {
        result.position[key] = it->second;
      }
    }
    for (const char* key : {"redis-ver", "ctime", "used-mem"}) {
      if (const auto it = summary.aux.find(key); it != summary.aux.end()) {
        result.details[std::string("rdb.") + key] = it->second;
      }
    }
    for (const auto& [db, keys] : summary.keys) {
      result.details["keys.db" + std::to_string(db)] = std::to_string(keys);
    }
    result.details["keys.complete"] = summary.complete ? "true" : "false";
    if (!summary.complete) result.details["keys.note"] = summary.problem;
    return result;
  }
};

Result<std::string> rdb_object(BackupInput& input) {
  for (const auto& [name, content] : input.objects()) {
    if (content == "redis rdb") return name;
  }
  return fail(ErrorCode::kCorrupt, "the backup has no RDB object");
}

class RedisDrill final : public DrillInstance {
 public:
  RedisDrill(std::unique_ptr<launcher::Instance> instance,
             std::map<std::string, std::string> details, DrillCheck rdb_check)
      : instance_(std::move(instance)),
        details_(std::move(details)),
        rdb_check_(std::move(rdb_check)) {}

  config::Target target(std::string_view database) const override {
    config::Target t = instance_->target("drill");
    if (!database.empty()) t.database = std::string(database);
    return t;
  }
  std::vector<std::string> databases() const override { return {"0"}; }

  std::vector<DrillCheck> verify() override {
    std::vector<DrillCheck> checks = {rdb_check_};
    DrillCheck keys{.name = "key_counts"};
    const auto start = Clock::now();
    auto session = open_session(instance_->target("drill"));
    auto loaded = session ? keyspace(**session)
                          : Result<std::map<int, std::int64_t>>(std::unexpected(session.error()));
    if (!loaded) {
      keys.detail = loaded.error().message;
    } else {
      std::vector<std::string> problems;
      std::size_t compared = 0;
      for (const auto& [key, value] : details_) {
        if (!key.starts_with("keys.db")) continue;
        const int db = std::atoi(key.c_str() + 7);
        const std::int64_t want = std::stoll(value);
        const std::int64_t got = loaded->contains(db) ? loaded->at(db) : 0;
        ++compared;
        if (got != want) {
          problems.push_back("db" + std::to_string(db) + " has " + std::to_string(got) +
                             " keys, the backup had " + std::to_string(want));
        }
      }
      keys.passed = problems.empty();
      keys.detail = problems.empty()
                        ? std::to_string(compared) + " database(s) match" +
                              (details_["keys.complete"] == "true"
                                   ? ""
                                   : " (the RDB walk stopped early: " + details_["keys.note"] + ")")
                        : join(problems, "; ");
    }
    keys.seconds = seconds_since(start);
    checks.push_back(std::move(keys));
    return checks;
  }

  Result<DatabaseFingerprint> fingerprint(std::string_view, FingerprintMode) override {
    return fail(ErrorCode::kUnsupported, "redis backups have key counts, not a fingerprint");
  }

  // A canary is a command ("GET order:1"), split on blanks; db from `database`.
  Result<std::string> query(std::string_view database, std::string_view command) override {
    DBOPS_ASSIGN(auto session, open_session(target(database)));
    std::vector<std::string> argv;
    for (const auto& word : split(std::string(trim(command)), ' ')) {
      if (!word.empty()) argv.push_back(word);
    }
    if (argv.empty()) return fail(ErrorCode::kInvalidArgument, "empty canary command");
    return command_text(*session, argv);
  }

 private:
  std::unique_ptr<launcher::Instance> instance_;
  std::map<std::string, std::string> details_;
  DrillCheck rdb_check_;
};

class RedisRestoreTarget final : public RestoreTarget {
 public:
  Status restore_into(const config::Target& destination, BackupInput&,
                      const RestoreOptions&) const override {
    return fail(ErrorCode::kUnsupported,
                "an RDB is not loaded into a running Redis (target " + destination.name + ")",
                "restore it to a path, put it in place as the server's dump.rdb and restart "
                "the server (docs/backup.md)");
  }

  Status restore_to_path(const fs::path& path, BackupInput& input,
                         const RestoreOptions&) const override {
    std::error_code ec;
    if (fs::exists(path, ec)) return fail(ErrorCode::kConflict, path.string() + " already exists");
    DBOPS_ASSIGN(auto object, rdb_object(input));
    return write_object_file(input, object, path, /*durable=*/true);
  }

  Result<std::unique_ptr<DrillInstance>> start_drill(BackupInput& input,
                                                     const DrillOptions& options) const override {
    DBOPS_ASSIGN(auto object, rdb_object(input));
    const fs::path rdb = input.spool_dir() / "dump.rdb";
    DBOPS_TRY(write_object_file(input, object, rdb, /*durable=*/false));
    DrillCheck check{.name = "redis-check-rdb"};
    const auto start = Clock::now();
    DBOPS_ASSIGN(const std::string checker, tool("redis-check-rdb"));
    DBOPS_ASSIGN(auto r, run_process({.argv = {checker, rdb.string()},
                                      .timeout = std::chrono::hours(6),
                                      .stdout_sink = OutputSink::capture_tail(8192)}));
    check.passed = r.succeeded() && r.stdout_text.find("RDB looks OK") != std::string::npos;
    std::string last;
    for (const auto& line : split(r.stdout_text, '\n')) {
      if (!trim(line).empty()) last = std::string(trim(line));
    }
    check.detail = check.passed ? "redis-check-rdb: RDB looks OK"
                                : "redis-check-rdb " + r.describe() + ": " + last;
    check.seconds = seconds_since(start);
    launcher::Options lo{.run_as = options.run_as, .base_dir = options.base_dir};
    lo.redis_rdb = rdb;
    DBOPS_ASSIGN(auto instance, launcher::start_redis(lo));
    return std::unique_ptr<DrillInstance>(
        std::make_unique<RedisDrill>(std::move(instance), input.details(), std::move(check)));
  }
};

}  // namespace

const BackupDriver& backup_driver() {
  static const RedisBackupDriver driver;
  return driver;
}

const RestoreTarget& restore_target() {
  static const RedisRestoreTarget target;
  return target;
}

}  // namespace dbops::engine::redis
