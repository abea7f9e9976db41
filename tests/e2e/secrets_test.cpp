// A password with URL-special characters must not appear in any output of
// dbops: not in `config show`, not in debug logs, not in error messages, not
// in the state store, and not on any child process's command line — neither
// in clear, nor percent-encoded, nor base64-encoded.
#include <gtest/gtest.h>

#include "core/strings.hpp"
#include "support/support.hpp"

namespace dbops::testing {
namespace {

constexpr std::string_view kPassword = "p@ss:w/rd%";

std::vector<std::string> forbidden_forms() {
  std::string b64 = base64_encode(kPassword);
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return {std::string(kPassword), percent_encode(kPassword), to_lower(percent_encode(kPassword)),
          b64};
}

void expect_clean(const std::string& what, const std::string& text) {
  for (const auto& form : forbidden_forms()) {
    EXPECT_EQ(text.find(form), std::string::npos)
        << what << " contains the password as \"" << form << "\":\n"
        << text;
  }
}

class Secrets : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string encoded = percent_encode(kPassword);
    dir_.write("pw.txt", std::string(kPassword) + "\n");
    dir_.write("dbops.yaml", R"(state: ./state/dbops.db
targets:
  - name: pg-fields
    engine: postgres
    host: 127.0.0.1
    port: 9
    user: app
    password: 'p@ss:w/rd%'
    database: app
  - name: pg-dsn
    engine: postgres
    dsn: postgresql://app:)" + encoded +
                                 R"(@127.0.0.1:9/app?sslmode=disable
  - name: pg-kv
    engine: postgres
    dsn: "host=127.0.0.1 port=9 user=app password='p@ss:w/rd%' dbname=app"
  - name: maria
    engine: mariadb
    dsn: mariadb://app:)" + encoded +
                                 R"(@127.0.0.1:9/app
  - name: cache
    engine: redis
    host: 127.0.0.1
    port: 9
    password: ${file:pw.txt}
  - name: cache-env
    engine: redis
    host: 127.0.0.1
    port: 9
    password: ${env:DBOPS_TEST_REDIS_PW}
notify:
  - name: hook
    type: webhook
    url: http://127.0.0.1:9/hooks/p@ss:w/rd%
)");
  }

  ProcessResult dbops(std::vector<std::string> args) {
    std::vector<std::string> full = {"--config", (dir_ / "dbops.yaml").string()};
    full.insert(full.end(), args.begin(), args.end());
    return run_dbops(full, dir_.path(), {{"DBOPS_TEST_REDIS_PW", std::string(kPassword)}});
  }

  TempDir dir_;
};

TEST_F(Secrets, ConfigShowRedactsEveryForm) {
  for (const char* format : {"table", "json"}) {
    auto r = dbops({"--output", format, "config", "show"});
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    EXPECT_NE(r.stdout_text.find("[redacted]"), std::string::npos) << r.stdout_text;
    expect_clean(std::string("config show --output ") + format, r.stdout_text + r.stderr_text);
  }
}

TEST_F(Secrets, DebugLogsOfAllCommandsAreClean) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--log-level", "trace", "check"},
           {"--log-level", "trace", "config", "check"},
           {"--log-level", "trace", "--output", "json", "runs", "list"},
       }) {
    auto r = dbops(args);
    expect_clean("dbops " + args.back(), r.stdout_text + r.stderr_text);
  }
}

TEST_F(Secrets, ChildGetsThePasswordOnlyThroughItsEnvironment) {
  // The child records every process's command line (dbops's included) and
  // its own environment, into files dbops never reads.
  const std::string script =
      "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f 2>/dev/null; echo; done > cmdlines.txt;"
      " tr '\\0' '\\n' < /proc/self/environ > environ.txt";
  for (const char* target : {"pg-fields", "pg-dsn", "pg-kv", "maria", "cache", "cache-env"}) {
    auto r = dbops({"--log-level", "debug", "jobs", "run", "command", "--target", target, "--",
                    "/bin/sh", "-c", script});
    EXPECT_EQ(r.exit_code, 0) << target << "\n" << r.stderr_text;
    expect_clean(std::string("output of command job on ") + target, r.stdout_text + r.stderr_text);
    // The scan sees every process on the machine, including another test of
    // this suite that ctest may run at the same time and that puts the
    // password in its own argv on purpose (the "missing program" case): its
    // lines are left out.
    std::string cmdlines;
    for (const auto& line : split(read_file(dir_ / "cmdlines.txt"), '\n')) {
      if (line.find("/nonexistent/") == std::string::npos) cmdlines += line + "\n";
    }
    EXPECT_NE(cmdlines.find("/proc/[0-9]*/cmdline"), std::string::npos) << "the scan saw itself";
    expect_clean(std::string("command lines while running on ") + target, cmdlines);
    // Positive control: the secret did reach the child, through its environment.
    const std::string environ = read_file(dir_ / "environ.txt");
    const std::string expected_var = std::string_view(target).starts_with("pg") ? "PGPASSWORD="
                                     : std::string_view(target) == "maria"      ? "MYSQL_PWD="
                                                                                : "REDISCLI_AUTH=";
    EXPECT_NE(environ.find(expected_var + std::string(kPassword)), std::string::npos)
        << target << " environment:\n"
        << environ;
  }
}

TEST_F(Secrets, ErrorMessagesAndStoredRunsAreClean) {
  // A child that prints the password into its error output and fails: dbops
  // reports the tail of stderr, redacted, and stores it redacted.
  auto r = dbops({"jobs", "run", "command", "--target", "pg-dsn", "--", "/bin/sh", "-c",
                  "echo \"auth failed for $PGPASSWORD\" >&2; exit 3"});
  EXPECT_EQ(r.exit_code, 3) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("auth failed for [redacted]"), std::string::npos) << r.stderr_text;
  expect_clean("failed command output", r.stdout_text + r.stderr_text);

  auto missing =
      dbops({"jobs", "run", "command", "--target", "maria", "--", "/nonexistent/p@ss:w/rd%"});
  EXPECT_EQ(missing.exit_code, 3) << missing.stderr_text;
  expect_clean("missing program error", missing.stdout_text + missing.stderr_text);

  auto unknown = dbops({"jobs", "run", "command", "--target", "p@ss:w/rd%", "--", "true"});
  EXPECT_EQ(unknown.exit_code, 2);
  expect_clean("unknown target error", unknown.stdout_text + unknown.stderr_text);

  auto runs = dbops({"--output", "json", "runs", "list", "--limit", "100"});
  EXPECT_EQ(runs.exit_code, 0);
  EXPECT_NE(runs.stdout_text.find("[redacted]"), std::string::npos) << runs.stdout_text;
  expect_clean("runs list", runs.stdout_text + runs.stderr_text);

  // Nothing in the state store's files either.
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "state")) {
    expect_clean("state store file " + entry.path().string(), read_file(entry.path()));
  }
}

TEST_F(Secrets, ConfigErrorsAreClean) {
  dir_.write("bad.yaml", R"(targets:
  - name: a
    engine: redis
    host: h
    password: 'p@ss:w/rd%'
    port: 'p@ss:w/rd%'
  - name: b
    engine: postgress
    dsn: postgresql://app:p%40ss%3Aw%2Frd%25@h/db
)");
  auto r = run_dbops({"--config", "bad.yaml", "config", "check"}, dir_.path());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.stderr_text.find("bad.yaml:6:11: targets[0].port: expected an integer"),
            std::string::npos)
      << r.stderr_text;
  expect_clean("config check errors", r.stdout_text + r.stderr_text);
}

}  // namespace
}  // namespace dbops::testing
