#include "core/config/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "core/config/schema.hpp"
#include "engine/engine.hpp"
#include "support/support.hpp"

namespace dbops::config {
namespace {

using dbops::testing::TempDir;

LoadOptions options() {
  LoadOptions o;
  o.engines = engine::Registry::global().shapes();
  return o;
}

struct Parsed {
  Result<Config> config;
  std::vector<Problem> problems;
};

Parsed parse(std::string_view yaml, const std::filesystem::path& file = "/tmp/cfg/dbops.yaml") {
  std::vector<Problem> problems;
  auto c = parse_config(yaml, file, options(), &problems);
  return {std::move(c), std::move(problems)};
}

std::string all(const std::vector<Problem>& problems) {
  std::string out;
  for (const auto& p : problems) out += p.to_string() + "\n";
  return out;
}

TEST(Config, EmptyFileGetsDefaults) {
  auto p = parse("");
  ASSERT_TRUE(p.config) << all(p.problems);
  EXPECT_EQ(p.config->state.sqlite_path, "/tmp/cfg/dbops-state.db");
  EXPECT_TRUE(p.config->targets.empty());
}

TEST(Config, FullExampleLoads) {
  auto p = parse(R"(
state: ./var/state.db
targets:
  - name: pg-main
    engine: postgresql
    dsn: postgresql://app@db1:5432/app?sslmode=verify-full
    tags: {env: prod, team: payments}
  - name: orders
    engine: mariadb
    host: db2
    port: 3307
    user: backup
    password: hunter2-long
    database: shop
    tls:
      mode: verify-ca
      ca_file: certs/ca.pem
      verify_server_cert: true
  - name: sample
    engine: sqlite
    path: ./sample.db
notify:
  - name: oncall
    type: slack
    url: https://hooks.example.com/services/T000/B000/XXXX
    min_severity: warn
    timeout: 1m30s
)");
  ASSERT_TRUE(p.config) << all(p.problems);
  const Config& c = *p.config;
  EXPECT_EQ(c.state.sqlite_path, "/tmp/cfg/var/state.db");
  ASSERT_EQ(c.targets.size(), 3u);
  EXPECT_EQ(c.targets[0].engine, "postgres");  // alias resolved
  EXPECT_EQ(c.targets[0].tags.at("team"), "payments");
  EXPECT_EQ(c.targets[1].engine, "mysql");
  EXPECT_EQ(c.targets[1].port, 3307);
  EXPECT_EQ(c.targets[1].password.reveal(), "hunter2-long");
  EXPECT_EQ(c.targets[1].tls.ca_file, "/tmp/cfg/certs/ca.pem");
  EXPECT_EQ(c.targets[1].tls.verify_server_cert, true);
  EXPECT_EQ(c.targets[2].path, "/tmp/cfg/sample.db");
  EXPECT_EQ(c.targets[1].location.line, 8);
  ASSERT_EQ(c.notify.size(), 1u);
  EXPECT_EQ(c.notify[0].timeout, std::chrono::seconds(90));
  EXPECT_EQ(c.find_target("orders"), &c.targets[1]);
  EXPECT_EQ(c.find_target("nope"), nullptr);
}

TEST(Config, PostgresStateDsn) {
  auto p = parse("state: postgresql://dbops:statepw-123@store/dbops\n");
  ASSERT_TRUE(p.config) << all(p.problems);
  EXPECT_TRUE(p.config->state.is_postgres());
  EXPECT_EQ(to_yaml(*p.config).find("statepw-123"), std::string::npos);
}

TEST(Config, ThreeMistakesAllReportedWithPositions) {
  auto p = parse(R"(targets:
  - name: a
    engine: postgress
    host: h
  - name: b
    engine: redis
    host: h
    prot: 1
  - name: a
    engine: sqlite
    path: x.db
)");
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.problems.size(), 3u) << all(p.problems);
  EXPECT_EQ(p.problems[0].line, 3);
  EXPECT_EQ(p.problems[0].column, 13);
  EXPECT_EQ(p.problems[0].key_path, "targets[0].engine");
  EXPECT_NE(p.problems[0].message.find("did you mean \"postgres\""), std::string::npos);
  EXPECT_EQ(p.problems[1].line, 8);
  EXPECT_EQ(p.problems[1].column, 5);
  EXPECT_NE(p.problems[1].message.find("did you mean \"port\""), std::string::npos);
  EXPECT_EQ(p.problems[2].line, 9);
  EXPECT_NE(p.problems[2].message.find("duplicate target name \"a\" (first defined at line 2)"),
            std::string::npos);
  EXPECT_EQ(p.config.error().code, ErrorCode::kConfig);
  EXPECT_EQ(exit_code_for(p.config.error().code), 2);
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* key_path;
  const char* message_part;
};

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, Reported) {
  const BadCase& c = GetParam();
  auto p = parse(c.yaml);
  ASSERT_FALSE(p.config) << c.name;
  bool found = false;
  for (const auto& problem : p.problems) {
    if (problem.key_path == c.key_path &&
        problem.message.find(c.message_part) != std::string::npos) {
      found = true;
      EXPECT_GT(problem.line, 0) << problem.to_string();
    }
  }
  EXPECT_TRUE(found) << c.name << ": expected " << c.key_path << ": ..." << c.message_part
                     << "\ngot:\n"
                     << all(p.problems);
}

const BadCase kBadCases[] = {
    {"unknown top key", "stat: x\n", "stat", "did you mean \"state\""},
    {"targets not a list", "targets: 3\n", "targets", "expected a list of mappings"},
    {"target not a map", "targets: [3]\n", "targets[0]", "expected a mapping"},
    {"missing name", "targets:\n  - engine: sqlite\n    path: x\n", "targets[0].name",
     "missing required key"},
    {"missing engine", "targets:\n  - name: a\n    path: x\n", "targets[0].engine",
     "missing required key"},
    {"bad name", "targets:\n  - name: Bad Name\n    engine: sqlite\n    path: x\n",
     "targets[0].name", "invalid name"},
    {"port not int", "targets:\n  - {name: a, engine: redis, host: h, port: abc}\n",
     "targets[0].port", "expected an integer"},
    {"port range", "targets:\n  - {name: a, engine: redis, host: h, port: 70000}\n",
     "targets[0].port", "out of range 1..65535"},
    {"bool", "targets:\n  - {name: a, engine: mysql, host: h, tls: {verify_server_cert: maybe}}\n",
     "targets[0].tls.verify_server_cert", "expected a boolean"},
    {"tls mode", "targets:\n  - {name: a, engine: postgres, host: h, tls: {mode: verify_full}}\n",
     "targets[0].tls.mode", "did you mean \"verify-full\""},
    {"tls unknown key", "targets:\n  - {name: a, engine: postgres, host: h, tls: {ca: x}}\n",
     "targets[0].tls.ca", "unknown key"},
    {"sqlite needs path", "targets:\n  - {name: a, engine: sqlite}\n", "targets[0].path",
     "missing required key for engine sqlite"},
    {"sqlite no host", "targets:\n  - {name: a, engine: sqlite, path: p, host: h}\n",
     "targets[0].host", "not used by engine sqlite"},
    {"network needs address", "targets:\n  - {name: a, engine: postgres}\n", "targets[0]",
     "expected dsn or host"},
    {"dsn excludes host",
     "targets:\n  - {name: a, engine: postgres, dsn: 'postgresql://h/d', host: h}\n",
     "targets[0].dsn", "dsn excludes host"},
    {"dsn scheme", "targets:\n  - {name: a, engine: redis, dsn: 'postgresql://h/d'}\n",
     "targets[0].dsn", "does not fit engine redis"},
    {"path on network engine", "targets:\n  - {name: a, engine: redis, host: h, path: p}\n",
     "targets[0].path", "not file-based"},
    {"tags not map", "targets:\n  - {name: a, engine: redis, host: h, tags: [a]}\n",
     "targets[0].tags", "expected a mapping of strings"},
    {"unknown engine no guess", "targets:\n  - {name: a, engine: oraclex9, host: h}\n",
     "targets[0].engine", "expected one of: postgres"},
    {"env missing", "targets:\n  - {name: a, engine: redis, host: '${env:DBOPS_TEST_UNSET_VAR}'}\n",
     "targets[0].host", "environment variable DBOPS_TEST_UNSET_VAR is not set"},
    {"file missing",
     "targets:\n  - {name: a, engine: redis, host: h, password: '${file:nope.txt}'}\n",
     "targets[0].password", "cannot read /tmp/cfg/nope.txt"},
    {"unknown ref", "state: '${vault:x}'\n", "state", "unknown reference ${vault:x}"},
    {"unterminated ref", "state: '${env:X'\n", "state", "unterminated reference"},
    {"notify type", "notify:\n  - {name: n, type: email, url: 'https://x'}\n", "notify[0].type",
     "expected one of: webhook, slack"},
    {"notify url", "notify:\n  - {name: n, type: webhook, url: 'ftp://x'}\n", "notify[0].url",
     "expected an http:// or https:// URL"},
    {"notify duration", "notify:\n  - {name: n, type: webhook, url: 'https://x', timeout: soon}\n",
     "notify[0].timeout", "expected a duration"},
    {"notify dup",
     "notify:\n  - {name: n, type: webhook, url: 'https://x'}\n  - {name: n, type: slack, url: "
     "'https://y'}\n",
     "notify[1].name", "duplicate notify channel name"},
    {"schedule bad cron", "schedules:\n  - {name: s, cron: '61 * * * *', kind: probe}\n",
     "schedules[0].cron", "cron \"61 * * * *\": minute field: 61 is out of range 0-59"},
    {"schedule bad zone",
     "schedules:\n  - {name: s, cron: '0 3 * * *', time_zone: Europe/Pariss, kind: probe}\n",
     "schedules[0].time_zone",
     "unknown time zone \"Europe/Pariss\"; did you mean \"Europe/Paris\"?"},
    {"schedule missing cron", "schedules:\n  - {name: s, kind: probe}\n", "schedules[0].cron",
     "missing required key"},
    {"schedule missing kind", "schedules:\n  - {name: s, cron: '@daily'}\n", "schedules[0].kind",
     "missing required key"},
    {"schedule empty kind", "schedules:\n  - {name: s, cron: '@daily', kind: ''}\n",
     "schedules[0].kind", "expected a job kind"},
    {"schedule bad name", "schedules:\n  - {name: 'Nightly Backup', cron: '@daily', kind: probe}\n",
     "schedules[0].name", "invalid name"},
    {"schedule unknown target",
     "targets:\n  - {name: pg-main, engine: postgres, host: h}\nschedules:\n  - {name: s, cron: "
     "'@daily', kind: backup, target: pg-mian}\n",
     "schedules[0].target", "unknown target \"pg-mian\" (did you mean \"pg-main\"?)"},
    {"schedule target without targets",
     "schedules:\n  - {name: s, cron: '@daily', kind: backup, target: pg-main}\n",
     "schedules[0].target", "no targets are configured"},
    {"schedule catch_up", "schedules:\n  - {name: s, cron: '@daily', kind: probe, catch_up: all}\n",
     "schedules[0].catch_up", "expected one of: skip, once"},
    {"schedule params not a map",
     "schedules:\n  - {name: s, cron: '@daily', kind: probe, params: [a]}\n", "schedules[0].params",
     "expected a mapping of parameters"},
    {"schedule params nested",
     "schedules:\n  - {name: s, cron: '@daily', kind: probe, params: {a: {b: c}}}\n",
     "schedules[0].params.a", "expected a string or a list of strings"},
    {"schedule max_attempts",
     "schedules:\n  - {name: s, cron: '@daily', kind: probe, max_attempts: 0}\n",
     "schedules[0].max_attempts", "out of range 1..100"},
    {"schedule timeout", "schedules:\n  - {name: s, cron: '@daily', kind: probe, timeout: 0s}\n",
     "schedules[0].timeout", "expected a duration above zero"},
    {"schedule enabled", "schedules:\n  - {name: s, cron: '@daily', kind: probe, enabled: maybe}\n",
     "schedules[0].enabled", "expected a boolean"},
    {"schedule unknown key",
     "schedules:\n  - {name: s, cron: '@daily', kind: probe, timezone: UTC}\n",
     "schedules[0].timezone", "did you mean \"time_zone\""},
    {"workflow unknown dependency",
     "workflows:\n  - name: w\n    tasks:\n      - {name: a, kind: probe}\n      - {name: b, "
     "kind: probe, depends_on: [aa]}\n",
     "workflows[0].tasks[1].depends_on", "unknown task \"aa\" (did you mean \"a\"?)"},
    {"workflow self dependency",
     "workflows:\n  - name: w\n    tasks:\n      - {name: a, kind: probe, depends_on: [a]}\n",
     "workflows[0].tasks[0].depends_on", "task \"a\" depends on itself"},
    {"workflow duplicate task",
     "workflows:\n  - name: w\n    tasks:\n      - {name: a, kind: probe}\n      - {name: a, "
     "kind: check}\n",
     "workflows[0].tasks[1].name", "duplicate task name \"a\""},
    {"workflow without tasks", "workflows:\n  - {name: w, tasks: []}\n", "workflows[0].tasks",
     "expected at least one task"},
    {"workflow missing tasks", "workflows:\n  - {name: w}\n", "workflows[0].tasks",
     "missing required key"},
    {"workflow nested", "workflows:\n  - name: w\n    tasks:\n      - {name: a, kind: workflow}\n",
     "workflows[0].tasks[0].kind", "workflows do not nest"},
    {"workflow bad trigger",
     "workflows:\n  - name: w\n    trigger: '0 25 * * *'\n    tasks:\n      - {name: a, kind: "
     "probe}\n",
     "workflows[0].trigger", "hour field"},
    {"workflow retries",
     "workflows:\n  - name: w\n    tasks:\n      - {name: a, kind: probe, "
     "retries: 101}\n",
     "workflows[0].tasks[0].retries", "out of range 0..100"},
    {"workflow trigger takes a schedule name",
     "schedules:\n  - {name: workflow.w, cron: '@daily', kind: probe}\nworkflows:\n  - name: w\n"
     "    trigger: '@daily'\n    tasks:\n      - {name: a, kind: probe}\n",
     "schedules[].name", "is taken by the trigger of workflow w"},
    {"duplicate key", "state: a\nstate: b\n", "state", "duplicate key"},
    {"scalar expected", "state: [1, 2]\n", "state", "expected connection string, got a list"},
};

INSTANTIATE_TEST_SUITE_P(All, ConfigErrors, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

TEST(Config, SchedulesLoad) {
  auto p = parse(R"(targets:
  - {name: pg-main, engine: postgres, host: db1}
schedules:
  - name: pg-main-nightly
    cron: 0 3 * * *
    time_zone: Europe/Paris
    kind: backup
    target: pg-main
    params:
      method: pg_dump
      databases: [app, billing]
    catch_up: once
    priority: 10
    max_attempts: 5
    timeout: 2h
  - name: pg-main-drill
    cron: 0 5 * * sun
    kind: drill
    target: pg-main
    enabled: false
)");
  ASSERT_TRUE(p.config) << all(p.problems);
  const auto& s = p.config->schedules;
  ASSERT_EQ(s.size(), 2U);
  EXPECT_EQ(s[0].name, "pg-main-nightly");
  EXPECT_EQ(s[0].cron, "0 3 * * *");
  EXPECT_EQ(s[0].time_zone, "Europe/Paris");
  EXPECT_EQ(s[0].kind, "backup");
  EXPECT_EQ(s[0].target, "pg-main");
  EXPECT_EQ(s[0].params_json, R"({"method":"pg_dump","databases":["app","billing"]})");
  EXPECT_EQ(s[0].catch_up, CatchUp::kOnce);
  EXPECT_EQ(s[0].priority, 10);
  EXPECT_EQ(s[0].max_attempts, 5);
  EXPECT_EQ(s[0].timeout, std::chrono::hours(2));
  EXPECT_TRUE(s[0].enabled);
  EXPECT_EQ(s[0].location.line, 4);
  // Defaults.
  EXPECT_EQ(s[1].time_zone, "UTC");
  EXPECT_EQ(s[1].params_json, "{}");
  EXPECT_EQ(s[1].catch_up, CatchUp::kSkip);
  EXPECT_EQ(s[1].priority, 0);
  EXPECT_EQ(s[1].max_attempts, 3);
  EXPECT_EQ(s[1].timeout.count(), 0);
  EXPECT_FALSE(s[1].enabled);
  const std::string yaml = to_yaml(*p.config);
  EXPECT_NE(yaml.find("schedules:\n  - name: pg-main-nightly\n    cron: 0 3 * * *\n"
                      "    time_zone: Europe/Paris\n"),
            std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("catch_up: once"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("enabled: false"), std::string::npos) << yaml;
  const std::string json = to_json(*p.config);
  EXPECT_NE(json.find(R"("params": {)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("timeout": "2h")"), std::string::npos) << json;
}

TEST(Config, WorkflowsLoad) {
  auto p = parse(R"(targets:
  - {name: pg-main, engine: postgres, host: db1}
workflows:
  - name: nightly
    trigger: 0 3 * * *
    time_zone: Europe/Paris
    catch_up: once
    timeout: 8h
    max_attempts: 5
    tasks:
      - name: backup
        kind: backup
        target: pg-main
        params: {method: physical}
      - name: verify
        kind: backup.verify
        target: pg-main
        depends_on: [backup]
        retries: 2
        timeout: 1h
      - name: drill
        kind: drill
        target: pg-main
        depends_on: [verify, backup]
  - name: adhoc
    tasks:
      - {name: probe, kind: probe, target: pg-main}
)");
  ASSERT_TRUE(p.config) << all(p.problems);
  const auto& w = p.config->workflows;
  ASSERT_EQ(w.size(), 2U);
  EXPECT_EQ(w[0].name, "nightly");
  EXPECT_EQ(w[0].trigger, "0 3 * * *");
  EXPECT_FALSE(w[0].manual());
  EXPECT_EQ(w[0].time_zone, "Europe/Paris");
  EXPECT_EQ(w[0].catch_up, CatchUp::kOnce);
  EXPECT_EQ(w[0].timeout, std::chrono::hours(8));
  EXPECT_EQ(w[0].max_attempts, 5);
  ASSERT_EQ(w[0].tasks.size(), 3U);
  EXPECT_EQ(w[0].tasks[0].params_json, R"({"method":"physical"})");
  EXPECT_EQ(w[0].tasks[1].depends_on, std::vector<std::string>{"backup"});
  EXPECT_EQ(w[0].tasks[1].retries, 2);
  EXPECT_EQ(w[0].tasks[1].timeout, std::chrono::hours(1));
  EXPECT_EQ(w[0].tasks[2].depends_on, (std::vector<std::string>{"verify", "backup"}));
  EXPECT_EQ(w[0].tasks[2].location.line, 21);
  EXPECT_EQ(p.config->find_workflow("nightly")->find_task("verify"), &w[0].tasks[1]);
  // Defaults.
  EXPECT_TRUE(w[1].manual());
  EXPECT_EQ(w[1].max_attempts, 3);
  EXPECT_EQ(w[1].timeout.count(), 0);
  EXPECT_EQ(w[1].tasks[0].retries, 0);
  const std::string yaml = to_yaml(*p.config);
  EXPECT_NE(yaml.find("workflows:\n  - name: nightly\n    trigger: 0 3 * * *\n"), std::string::npos)
      << yaml;
  EXPECT_NE(yaml.find("depends_on:\n          - verify\n          - backup"), std::string::npos)
      << yaml;
}

TEST(Config, WorkflowCycleNamesItsTasksAndLine) {
  auto p = parse(R"(workflows:
  - name: w
    tasks:
      - name: a
        kind: probe
        depends_on: [c]
      - name: b
        kind: probe
        depends_on: [a]
      - name: c
        kind: probe
        depends_on: [b]
      - name: d
        kind: probe
)");
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.problems.size(), 1U) << all(p.problems);
  const auto& problem = p.problems[0];
  EXPECT_EQ(problem.key_path, "workflows[0].tasks[1].depends_on");
  EXPECT_EQ(problem.line, 9);
  EXPECT_NE(problem.message.find("cycle: a -> c -> b -> a"), std::string::npos) << problem.message;
}

TEST(Config, ScheduleProblemsNameTheirLine) {
  auto p = parse(R"(targets:
  - {name: pg-main, engine: postgres, host: db1}
schedules:
  - name: nightly
    cron: 0 25 * * *
    kind: backup
    target: pg-main
  - name: nightly
    cron: '@daily'
    kind: backup
    target: pg-replica
)");
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.problems.size(), 3U) << all(p.problems);
  EXPECT_EQ(p.problems[0].line, 5);
  EXPECT_EQ(p.problems[0].key_path, "schedules[0].cron");
  EXPECT_NE(p.problems[0].message.find("hour field"), std::string::npos);
  EXPECT_EQ(p.problems[1].line, 8);
  EXPECT_EQ(p.problems[1].message, "duplicate schedule name \"nightly\" (first defined at line 4)");
  EXPECT_EQ(p.problems[2].line, 11);
  EXPECT_EQ(p.problems[2].key_path, "schedules[1].target");
}

TEST(Config, InvalidYamlReportsPosition) {
  auto p = parse("targets: [\n  - a\n");
  ASSERT_FALSE(p.config);
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_GT(p.problems[0].line, 0);
  EXPECT_NE(p.problems[0].message.find("invalid YAML"), std::string::npos);
}

TEST(Config, ReferencesResolveFromEnvFileAndDotenv) {
  TempDir dir;
  dir.write("pw.txt", "from-file-secret\n\n");
  dir.write(".env",
            "# comment\nexport DOTENV_HOST='db.from.dotenv'\nDBOPS_TEST_PRECEDENCE=dotenv\n");
  ::setenv("DBOPS_TEST_PRECEDENCE", "process", 1);
  const auto file = dir.write("dbops.yaml", R"(targets:
  - name: a
    engine: postgres
    host: ${env:DOTENV_HOST}
    user: ${env:DBOPS_TEST_PRECEDENCE}
    password: ${file:pw.txt}
    database: lit$${eral}
)");
  std::vector<Problem> problems;
  auto c = load_config(file, options(), &problems);
  ::unsetenv("DBOPS_TEST_PRECEDENCE");
  ASSERT_TRUE(c) << all(problems);
  EXPECT_EQ(c->targets[0].host, "db.from.dotenv");
  EXPECT_EQ(c->targets[0].user, "process");  // the process environment wins
  EXPECT_EQ(c->targets[0].password.reveal(), "from-file-secret");
  EXPECT_EQ(c->targets[0].database, "lit${eral}");
}

TEST(Config, MissingFileIsAClearError) {
  auto c = load_config("/nonexistent/dbops.yaml", options());
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("cannot read config file /nonexistent/dbops.yaml"),
            std::string::npos);
  EXPECT_FALSE(c.error().hint.empty());
}

TEST(Config, ShowRedactsSecrets) {
  auto p = parse(R"(targets:
  - name: a
    engine: postgres
    dsn: postgresql://app:dsn-Secret-1@db1/app
  - name: b
    engine: mysql
    host: h
    password: field-Secret-2
notify:
  - {name: n, type: webhook, url: 'https://hooks.example.com/T0/secret-path-3'}
)");
  ASSERT_TRUE(p.config) << all(p.problems);
  for (const std::string& out : {to_yaml(*p.config), to_json(*p.config)}) {
    EXPECT_EQ(out.find("dsn-Secret-1"), std::string::npos) << out;
    EXPECT_EQ(out.find("field-Secret-2"), std::string::npos) << out;
    EXPECT_EQ(out.find("secret-path-3"), std::string::npos) << out;
    EXPECT_NE(out.find("postgresql://app:[redacted]@db1/app"), std::string::npos) << out;
  }
}

TEST(Config, ResolveConfigPathPrecedence) {
  ::setenv("DBOPS_CONFIG", "/from/env.yaml", 1);
  EXPECT_EQ(resolve_config_path("/from/flag.yaml"), "/from/flag.yaml");
  EXPECT_EQ(resolve_config_path(""), "/from/env.yaml");
  ::unsetenv("DBOPS_CONFIG");
  EXPECT_EQ(resolve_config_path(""), "dbops.yaml");
}

TEST(Config, Durations) {
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("30s"), std::chrono::seconds(30));
  EXPECT_EQ(parse_duration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(parse_duration("2d"), std::chrono::hours(48));
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("5 minutes"));
  EXPECT_FALSE(parse_duration("m"));
  EXPECT_EQ(format_duration(std::chrono::seconds(90)), "1m30s");
  EXPECT_EQ(format_duration(std::chrono::milliseconds(0)), "0s");
}

TEST(ConfigSchema, EveryDeclaredKeyIsDocumented) {
  for (const auto& decl : schema()) {
    EXPECT_FALSE(decl.description.empty()) << decl.path;
    if (decl.type == KeyType::kEnum) {
      EXPECT_FALSE(decl.choices.empty()) << decl.path;
    }
  }
  const std::string md = schema_markdown();
  for (const auto& decl : schema()) {
    EXPECT_NE(md.find("`" + std::string(decl.path) + "`"), std::string::npos) << decl.path;
  }
}

}  // namespace
}  // namespace dbops::config
