#include "support/instances.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>

#include "core/subprocess.hpp"

namespace dbops::testing {
namespace {

namespace launcher = engine::launcher;
using namespace std::chrono_literals;

struct Shared {
  std::unique_ptr<launcher::Instance> instance;
  std::string error;
};

Shared start_shared(const std::function<Result<std::unique_ptr<launcher::Instance>>()>& start) {
  Shared shared;
  auto result = start();
  if (result) {
    shared.instance = std::move(*result);
  } else {
    shared.error = result.error().to_string();
  }
  return shared;
}

launcher::Instance& get(const Shared& shared, std::string_view engine) {
  if (!shared.instance) {
    ADD_FAILURE() << "cannot start the shared " << engine << " instance: " << shared.error;
    throw std::runtime_error("shared " + std::string(engine) +
                             " instance unavailable (see the failure above)");
  }
  return *shared.instance;
}

// The connect timeout in whole seconds (at least 1) for a client run.
std::string connect_seconds(std::chrono::milliseconds timeout) {
  return std::to_string(std::max<long long>(1, (timeout.count() + 999) / 1000));
}

// Runs a client; `limit` bounds the whole run.
Result<std::string> run_client(ProcessOptions options, std::chrono::milliseconds limit) {
  options.clear_env = true;
  options.timeout = limit;
  options.kill_grace = 500ms;
  options.stdout_sink = OutputSink::capture();
  options.stderr_sink = OutputSink::capture_tail(16384);
  DBOPS_ASSIGN(ProcessResult result, run_process(options));
  if (!result.succeeded()) {
    std::string message = options.argv[0] + ": " + result.describe();
    std::string err = result.stderr_text.empty() ? result.stdout_text : result.stderr_text;
    while (!err.empty() && err.back() == '\n') err.pop_back();
    if (!err.empty()) message += ": " + err;
    return fail(result.timed_out ? ErrorCode::kTimeout : ErrorCode::kUnavailable, message);
  }
  std::string out = std::move(result.stdout_text);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

launcher::Instance& shared_postgres() {
  static const Shared shared = start_shared([] { return launcher::start_postgres(); });
  return get(shared, "postgres");
}

launcher::Instance& shared_mariadb() {
  static const Shared shared = start_shared([] { return launcher::start_mariadb(); });
  return get(shared, "mariadb");
}

launcher::Instance& shared_redis() {
  static const Shared shared = start_shared([] { return launcher::start_redis(); });
  return get(shared, "redis");
}

Result<std::string> psql(const launcher::Instance& pg, std::string_view sql,
                         std::chrono::milliseconds timeout, std::string_view database) {
  DBOPS_ASSIGN(auto program, launcher::tool_path("postgres", "psql"));
  ProcessOptions options;
  options.argv = {program.string(),
                  "-X",
                  "-q",
                  "-A",
                  "-t",
                  "-v",
                  "ON_ERROR_STOP=1",
                  "-h",
                  pg.host(),
                  "-p",
                  std::to_string(pg.port()),
                  "-U",
                  pg.superuser(),
                  "-d",
                  std::string(database),
                  "-c",
                  std::string(sql)};
  options.env = {{"PGPASSWORD", pg.superuser_password().reveal()},
                 {"PGCONNECT_TIMEOUT", connect_seconds(timeout)},
                 {"PGSSLMODE", "disable"}};
  // libpq rounds a connect timeout of 1 s up to 2 s; let it report first.
  return run_client(std::move(options), timeout + 2s);
}

Result<std::string> mariadb(const launcher::Instance& db, std::string_view sql,
                            std::chrono::milliseconds timeout) {
  DBOPS_ASSIGN(auto program, launcher::tool_path("mysql", "mariadb"));
  ProcessOptions options;
  options.argv = {program.string(),
                  "--no-defaults",
                  "--protocol=TCP",
                  "--host=" + db.host(),
                  "--port=" + std::to_string(db.port()),
                  "--user=" + db.superuser(),
                  "--batch",
                  "--skip-column-names",
                  "--connect-timeout=" + connect_seconds(timeout)};
  options.env = {{"MYSQL_PWD", db.superuser_password().reveal()}};
  options.stdin_data = std::string(sql);
  return run_client(std::move(options), timeout + 2s);
}

Result<std::string> redis_cli(const launcher::Instance& redis, const std::vector<std::string>& args,
                              std::chrono::milliseconds timeout) {
  DBOPS_ASSIGN(auto program, launcher::tool_path("redis", "redis-cli"));
  ProcessOptions options;
  // redis-cli has no connect timeout option: run_process's timeout bounds it.
  options.argv = {program.string(), "-h", redis.host(), "-p", std::to_string(redis.port())};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.env = {{"REDISCLI_AUTH", redis.superuser_password().reveal()}};
  return run_client(std::move(options), timeout);
}

}  // namespace dbops::testing
