// PostgreSQL engine against real servers: the binary's shared instance
// (support/instances.hpp) and, where a test freezes, stops or replicates a
// server, instances of its own from the launcher.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/secret.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "engine/engine.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/postgres/postgres_probe.hpp"
#include "engine/postgres/postgres_session.hpp"
#include "support/instances.hpp"
#include "support/net.hpp"
#include "support/pgbouncer.hpp"
#include "support/probe_checks.hpp"

using dbops::testing::closed_port;
using dbops::testing::metric;
using dbops::testing::SilentListener;

namespace dbops::engine {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using postgres::PostgresSession;

const Engine& pg_engine() {
  const Engine* e = Registry::global().find("postgres");
  EXPECT_NE(e, nullptr);
  return *e;
}

launcher::Instance& shared() {
  return testing::shared_postgres();
}

config::Target shared_target(std::string name = "pg-it") {
  return shared().target(std::move(name));
}

Result<std::unique_ptr<PostgresSession>> open(const config::Target& target,
                                              std::chrono::milliseconds timeout = 5s) {
  ConnectOptions options;
  options.connect_timeout = timeout;
  return postgres::connect(target, options);
}

std::unique_ptr<PostgresSession> must_open(const config::Target& target) {
  auto s = open(target);
  EXPECT_TRUE(s) << (s ? "" : s.error().to_string());
  return s ? std::move(*s) : nullptr;
}

// A statement that must succeed.
QueryResult run(SqlSession& s, std::string_view sql, std::vector<Param> params = {}) {
  auto r = s.query(sql, params, Deadline::after(20s));
  EXPECT_TRUE(r) << sql << ": " << (r ? "" : r.error().to_string());
  return r ? std::move(*r) : QueryResult{};
}

void exec(SqlSession& s, std::string_view sql) {
  auto r = s.exec(sql, Deadline::after(20s));
  EXPECT_TRUE(r) << sql << ": " << (r ? "" : r.error().to_string());
}

// Runs statements on a session of their own that ends right after: a backend
// flushes its statistics when it exits, while a busy one may hold them back
// for up to 10 s (PostgreSQL 15's idle stats interval).
void exec_and_disconnect(const config::Target& target, std::vector<std::string_view> sqls) {
  auto s = postgres::connect(target, ConnectOptions{});
  ASSERT_TRUE(s) << s.error().to_string();
  for (const auto sql : sqls) exec(**s, sql);
}

std::int64_t scalar(SqlSession& s, std::string_view sql) {
  const auto r = run(s, sql);
  return r.empty() ? -1 : r.integer(0, 0);
}

ProbeSample probe(Session& s) {
  auto sample = pg_engine().health_probe()->probe(s, Deadline::after(10s));
  EXPECT_TRUE(sample) << (sample ? "" : sample.error().to_string());
  return sample ? *sample : ProbeSample{};
}

// Polls `condition` every 50 ms until it holds or `limit` passes.
template <typename F>
bool eventually(F condition, std::chrono::milliseconds limit = 10s) {
  const auto until = Clock::now() + limit;
  while (true) {
    if (condition()) return true;
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(50ms);
  }
}

// Probes until `condition(sample)` holds (statistics reach the cumulative
// stats system within about a second) and returns the last sample.
template <typename F>
ProbeSample probe_until(Session& s, F condition, std::chrono::milliseconds limit = 10s) {
  ProbeSample sample;
  eventually(
      [&] {
        sample = probe(s);
        return condition(sample);
      },
      limit);
  return sample;
}

config::Target silent_target(const SilentListener& l) {
  config::Target t;
  t.name = "silent";
  t.engine = "postgres";
  t.host = "127.0.0.1";
  t.port = l.port();
  t.user = "nobody";
  t.password = Secret("never-sent");
  return t;
}

// A login role with a password on the shared instance, dropped again at the
// end of the test (declare it before the sessions that use it). `grants` is
// appended to CREATE ROLE.
class TempRole {
 public:
  TempRole(std::string name, const std::string& grants)
      : name_(std::move(name)), password_("Pw-" + std::to_string(::getpid()) + "-r'\\x") {
    auto admin = must_open(shared_target());
    if (!admin) return;
    // The password goes through format('%L') server-side, never spliced here.
    const auto ddl =
        run(*admin, "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L ' || $3, $1::text, $2::text)",
            {name_, password_, grants});
    if (!ddl.empty()) exec(*admin, ddl.text(0, 0));
  }
  ~TempRole() {
    auto admin = must_open(shared_target());
    if (admin) exec(*admin, "DROP ROLE IF EXISTS \"" + name_ + "\"");
  }
  TempRole(const TempRole&) = delete;
  TempRole& operator=(const TempRole&) = delete;

  config::Target target() const {
    auto t = shared_target("pg-" + name_);
    t.user = name_;
    t.password = Secret(password_);
    return t;
  }

 private:
  std::string name_;
  std::string password_;
};

// --- 1. connect ------------------------------------------------------------

TEST(PostgresConnect, StructuredFields) {
  const auto started = Clock::now();
  auto session = pg_engine().connect(shared_target(), ConnectOptions{});
  ASSERT_TRUE(session) << session.error().to_string();
  Session& s = **session;
  EXPECT_EQ(s.engine(), "postgres");
  EXPECT_TRUE(s.is_open());
  EXPECT_LT(seconds_since(started), 5);
  // "15.8", not "15.8 (Debian ...)".
  ASSERT_FALSE(s.server_version().empty());
  EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(s.server_version()[0])));
  EXPECT_EQ(s.server_version().find(' '), std::string::npos) << s.server_version();
  EXPECT_TRUE(s.ping(Deadline::after(5s)));

  auto& sql = dynamic_cast<PostgresSession&>(s);
  EXPECT_GE(sql.server_version_num(), 100000);
  EXPECT_EQ(run(sql, "SELECT current_setting('application_name')").text(0, 0), "dbops");
  EXPECT_EQ(run(sql, "SELECT current_user").text(0, 0), shared().superuser());
  EXPECT_EQ(run(sql, "SELECT current_database()").text(0, 0), shared_target().database);
  EXPECT_TRUE(sql.transaction_idle());
}

TEST(PostgresConnect, KeyValueAndUriDsn) {
  const auto base = shared_target();
  config::Target t;
  t.name = "pg-dsn";
  t.engine = "postgres";
  // key=value with a quoted password, and application_name overriding dbops's.
  std::string quoted;
  for (const char c : base.password.reveal()) {
    if (c == '\'' || c == '\\') quoted += '\\';
    quoted += c;
  }
  t.dsn =
      Secret("host=127.0.0.1 port=" + std::to_string(base.port) + " user=" + base.user +
             " password='" + quoted + "' dbname=" + base.database + " application_name=from-dsn");
  auto kv = must_open(t);
  ASSERT_TRUE(kv);
  EXPECT_EQ(run(*kv, "SELECT current_setting('application_name')").text(0, 0), "from-dsn");

  t.dsn = Secret("postgresql://" + base.user + ":" + percent_encode(base.password.reveal()) +
                 "@127.0.0.1:" + std::to_string(base.port) + "/" + base.database +
                 "?application_name=from-uri&sslmode=disable");
  auto uri = must_open(t);
  ASSERT_TRUE(uri);
  EXPECT_EQ(run(*uri, "SELECT current_setting('application_name')").text(0, 0), "from-uri");
  EXPECT_EQ(run(*uri, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()").text(0, 0),
            "false");
}

TEST(PostgresConnect, WrongPasswordIsUnavailableAndDoesNotLeak) {
  const std::string wrong = "Wr0ng-pw-that-must-not-leak";
  auto t = shared_target("pg-wrong");
  t.password = Secret(wrong);
  auto s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  const std::string text = s.error().to_string();
  EXPECT_NE(text.find("pg-wrong: connect: "), std::string::npos) << text;
  EXPECT_NE(text.find("password authentication failed"), std::string::npos) << text;
  EXPECT_NE(text.find("HINT: check the target's user and password"), std::string::npos) << text;
  EXPECT_EQ(text.find(wrong), std::string::npos) << text;

  // The same through a connection string: the string itself holds the secret.
  config::Target d;
  d.name = "pg-wrong-dsn";
  d.engine = "postgres";
  d.dsn = Secret("postgresql://" + t.user + ":" + wrong + "@127.0.0.1:" + std::to_string(t.port) +
                 "/" + t.database);
  auto s2 = open(d);
  ASSERT_FALSE(s2);
  EXPECT_EQ(s2.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s2.error().to_string().find(wrong), std::string::npos) << s2.error().to_string();

  // No password at all: libpq says so and the hint says what to set.
  auto n = shared_target("pg-nopw");
  n.password = Secret();
  auto s3 = open(n);
  ASSERT_FALSE(s3);
  EXPECT_EQ(s3.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s3.error().hint.find("password"), std::string::npos) << s3.error().to_string();
}

TEST(PostgresConnect, RefusedPortFailsFast) {
  auto t = shared_target("pg-refused");
  t.port = closed_port();
  const auto started = Clock::now();
  auto s = open(t, 10s);
  ASSERT_FALSE(s);
  EXPECT_LT(seconds_since(started), 2);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("refused"), std::string::npos) << s.error().to_string();
  EXPECT_NE(s.error().hint.find("running"), std::string::npos) << s.error().to_string();
}

TEST(PostgresConnect, UnknownDatabaseAndBadDsn) {
  auto t = shared_target("pg-nodb");
  t.database = "no_such_db";
  auto s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("no_such_db"), std::string::npos) << s.error().to_string();
  EXPECT_NE(s.error().hint.find("database"), std::string::npos) << s.error().to_string();

  config::Target bad;
  bad.name = "pg-bad";
  bad.engine = "postgres";
  bad.dsn = Secret("host=127.0.0.1 bogus_option=1 password=bad-dsn-secret");
  auto b = open(bad);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(b.error().message.find("bogus_option"), std::string::npos) << b.error().to_string();
  EXPECT_EQ(b.error().to_string().find("bad-dsn-secret"), std::string::npos);
}

// A self-signed certificate for 127.0.0.1 (its own CA), owned by `owner_of`'s owner.
void make_certificate(const std::filesystem::path& cert, const std::filesystem::path& key,
                      const std::filesystem::path& owner_of) {
  ProcessOptions gen;
  gen.argv = {"openssl",
              "req",
              "-x509",
              "-newkey",
              "ec",
              "-pkeyopt",
              "ec_paramgen_curve:prime256v1",
              "-nodes",
              "-subj",
              "/CN=127.0.0.1",
              "-addext",
              "subjectAltName=IP:127.0.0.1",
              "-days",
              "2",
              "-keyout",
              key.string(),
              "-out",
              cert.string()};
  gen.timeout = 30s;
  auto r = run_process(gen);
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->exit_code, 0) << r->stderr_text;
  struct stat st {};
  ASSERT_EQ(::stat(owner_of.c_str(), &st), 0);
  for (const auto& f : {cert, key}) {
    ASSERT_EQ(::chown(f.c_str(), st.st_uid, st.st_gid), 0);
    ASSERT_EQ(::chmod(f.c_str(), 0600), 0);
  }
}

TEST(PostgresConnect, TlsOptionsReachLibpq) {
  // Turn TLS on in the shared instance (reloadable since PostgreSQL 10) and
  // off again at the end.
  const auto dir = shared().directory();
  const auto cert = dir / "dbops-it-server.crt", key = dir / "dbops-it-server.key";
  const auto other_cert = dir / "dbops-it-other.crt", other_key = dir / "dbops-it-other.key";
  make_certificate(cert, key, shared().data_dir());
  make_certificate(other_cert, other_key, shared().data_dir());
  auto admin = must_open(shared_target());
  ASSERT_TRUE(admin);
  struct Undo {
    PostgresSession& admin;
    ~Undo() {
      for (const char* sql : {"ALTER SYSTEM RESET ssl", "ALTER SYSTEM RESET ssl_cert_file",
                              "ALTER SYSTEM RESET ssl_key_file", "SELECT pg_reload_conf()"}) {
        exec(admin, sql);
      }
    }
  } undo{*admin};
  // ALTER SYSTEM refuses a transaction block, so one statement per call.
  exec(*admin, "ALTER SYSTEM SET ssl_cert_file = '" + cert.string() + "'");
  exec(*admin, "ALTER SYSTEM SET ssl_key_file = '" + key.string() + "'");
  exec(*admin, "ALTER SYSTEM SET ssl = on");
  exec(*admin, "SELECT pg_reload_conf()");

  auto t = shared_target("pg-tls");
  t.tls.mode = "verify-full";
  t.tls.ca_file = cert.string();
  std::unique_ptr<PostgresSession> tls;
  ASSERT_TRUE(eventually([&] {
    auto s = open(t);
    if (s) tls = std::move(*s);
    return s.has_value();
  }));
  const std::string_view ssl_sql = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
  EXPECT_EQ(run(*tls, ssl_sql).text(0, 0), "true");

  // A CA that did not sign the server's certificate: refused, with a TLS hint.
  t.tls.ca_file = other_cert.string();
  auto wrong_ca = open(t);
  ASSERT_FALSE(wrong_ca);
  EXPECT_EQ(wrong_ca.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(wrong_ca.error().message.find("certificate verify failed"), std::string::npos)
      << wrong_ca.error().to_string();
  EXPECT_NE(wrong_ca.error().hint.find("tls"), std::string::npos);

  // sslmode=disable is honoured, and a connection string overrides target.tls.
  t.tls = {.mode = "disable"};
  auto plain = must_open(t);
  ASSERT_TRUE(plain);
  EXPECT_EQ(run(*plain, ssl_sql).text(0, 0), "false");
  auto base = shared_target();
  config::Target d = t;
  d.dsn =
      Secret("postgresql://" + base.user + ":" + percent_encode(base.password.reveal()) +
             "@127.0.0.1:" + std::to_string(base.port) + "/" + base.database + "?sslmode=require");
  auto required = must_open(d);
  ASSERT_TRUE(required);
  EXPECT_EQ(run(*required, ssl_sql).text(0, 0), "true");
}

// --- 2. statements -----------------------------------------------------------

TEST(PostgresQuery, ParametersRoundTripUnchanged) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  const std::string nasty = "it's \"quoted\" \\ back\\slash $1 '); DROP TABLE x; -- \xc3\xa9";
  const auto r = run(*s,
                     "SELECT $1::text AS t, $2::bigint AS i, $3::text AS n, $4::text AS q, "
                     "$5::float8 AS d, $6::bigint AS big, length($4::text) AS len",
                     {std::string("plain text"), std::int64_t{-42}, nullptr, nasty, 2.5,
                      std::int64_t{9007199254740993}});
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.columns, (std::vector<std::string>{"t", "i", "n", "q", "d", "big", "len"}));
  EXPECT_EQ(r.text(0, 0), "plain text");
  EXPECT_EQ(r.integer(0, 1), -42);
  EXPECT_TRUE(r.is_null(0, 2));
  EXPECT_EQ(r.text(0, 3), nasty);
  EXPECT_DOUBLE_EQ(r.number(0, 4), 2.5);
  EXPECT_EQ(r.text(0, 5), "9007199254740993");
  EXPECT_EQ(r.integer(0, 6), static_cast<std::int64_t>(nasty.size()) - 1);  // é is one char

  // The value is data, never SQL: a table named by it is not dropped.
  exec(*s, "DROP TABLE IF EXISTS param_t; CREATE TABLE param_t (v text)");
  const auto ins = run(*s, "INSERT INTO param_t VALUES ($1), ($2)",
                       {std::string("'); DROP TABLE param_t; --"), nullptr});
  EXPECT_EQ(ins.affected_rows, 2);
  EXPECT_EQ(scalar(*s, "SELECT count(*) FROM param_t"), 2);
  const auto back = run(*s, "SELECT v FROM param_t WHERE v = $1", {"'); DROP TABLE param_t; --"});
  EXPECT_EQ(back.rows.size(), 1u);
  const auto nulls = run(*s, "SELECT count(*) FROM param_t WHERE v IS NULL");
  EXPECT_EQ(nulls.integer(0, 0), 1);
  // Integers bound as text infer the statement's type (substr takes int4).
  EXPECT_EQ(run(*s, "SELECT substr($1, $2)", {std::string("abcdef"), std::int64_t{3}}).text(0, 0),
            "cdef");
  const auto special =
      run(*s, "SELECT $1::float8 = 'Infinity', $2::float8 = 'NaN'",
          {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()});
  EXPECT_EQ(special.text(0, 0), "t");
  EXPECT_EQ(special.text(0, 1), "t");
  exec(*s, "DROP TABLE param_t");
}

TEST(PostgresQuery, ErrorsMapToCodesAndTheSessionStaysUsable) {
  auto s = must_open(shared_target("pg-err"));
  ASSERT_TRUE(s);
  auto syntax = s->query("SELEC 1", {}, Deadline::after(5s));
  ASSERT_FALSE(syntax);
  EXPECT_EQ(syntax.error().code, ErrorCode::kInvalidArgument);
  const std::string text = syntax.error().to_string();
  EXPECT_NE(text.find("pg-err: query: syntax error at or near \"SELEC\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("42601"), std::string::npos) << text;

  auto missing = s->query("SELECT * FROM no_such_table", {}, Deadline::after(5s));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(missing.error().message.find("\"no_such_table\" does not exist"), std::string::npos);

  // Two statements cannot be one prepared statement.
  auto two = s->query("SELECT 1; SELECT 2", {}, Deadline::after(5s));
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().code, ErrorCode::kInvalidArgument);

  const std::vector<Param> zero_param = {std::int64_t{0}};
  auto zero = s->query("SELECT 1 / $1::int", zero_param, Deadline::after(5s));
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(zero.error().message.find("division by zero"), std::string::npos);

  exec(*s, "DROP TABLE IF EXISTS uniq_t; CREATE TABLE uniq_t (id int PRIMARY KEY)");
  exec(*s, "INSERT INTO uniq_t VALUES (1)");
  auto dup = s->exec("INSERT INTO uniq_t VALUES (1)", Deadline::after(5s));
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, ErrorCode::kConflict);
  exec(*s, "DROP TABLE uniq_t");

  // Refused before it reaches the server; the session goes on.
  const std::vector<Param> too_many(70'000, Param{std::int64_t{1}});
  auto many = s->query("SELECT $1", too_many, Deadline::after(5s));
  ASSERT_FALSE(many);
  EXPECT_EQ(many.error().code, ErrorCode::kInvalidArgument) << many.error().to_string();
  const std::vector<Param> nul = {std::string("a\0b", 3)};
  auto with_nul = s->query("SELECT $1", nul, Deadline::after(5s));
  ASSERT_FALSE(with_nul);
  EXPECT_EQ(with_nul.error().code, ErrorCode::kInvalidArgument);

  EXPECT_TRUE(s->is_open());
  EXPECT_EQ(scalar(*s, "SELECT 7"), 7);
}

TEST(PostgresQuery, ExecRunsSeveralStatementsAndReturnsEachResult) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  auto results = s->exec_results(
      "CREATE TEMP TABLE multi_t (a int); INSERT INTO multi_t SELECT generate_series(1, 3); "
      "SELECT sum(a) AS total FROM multi_t; SELECT 'x' AS y WHERE false",
      Deadline::after(5s));
  ASSERT_TRUE(results) << results.error().to_string();
  ASSERT_EQ(results->size(), 4u);
  EXPECT_EQ((*results)[1].affected_rows, 3);
  EXPECT_EQ((*results)[2].columns, std::vector<std::string>{"total"});
  EXPECT_EQ((*results)[2].integer(0, 0), 6);
  EXPECT_TRUE((*results)[3].empty());
  EXPECT_EQ((*results)[3].columns, std::vector<std::string>{"y"});

  // A failure inside BEGIN leaves the transaction aborted for the caller.
  auto failed = s->exec("BEGIN; SELECT 1/0; COMMIT", Deadline::after(5s));
  ASSERT_FALSE(failed);
  EXPECT_FALSE(s->transaction_idle());
  exec(*s, "ROLLBACK");
  EXPECT_TRUE(s->transaction_idle());

  // COPY to the client is refused cleanly and the session goes on.
  auto copy = s->query("COPY (SELECT 1) TO STDOUT", {}, Deadline::after(5s));
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(scalar(*s, "SELECT 8"), 8);
  auto copy_in = s->exec("COPY multi_t FROM STDIN", Deadline::after(5s));
  ASSERT_FALSE(copy_in);
  EXPECT_EQ(copy_in.error().code, ErrorCode::kUnsupported);
  EXPECT_TRUE(s->transaction_idle());
  EXPECT_EQ(scalar(*s, "SELECT count(*) FROM multi_t"), 3);
}

// --- 3. deadlines and cancel -----------------------------------------------------

TEST(PostgresDeadline, LongStatementIsCutAtTheDeadline) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  const auto started = Clock::now();
  auto r = s->query("SELECT pg_sleep(30)", {}, Deadline::after(1s));
  const double took = seconds_since(started);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().to_string().find("pg-it: query: no answer within 1.0s"), std::string::npos)
      << r.error().to_string();
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5);
  // The server confirmed the cancel: the session is usable again.
  ASSERT_TRUE(s->is_open());
  EXPECT_EQ(scalar(*s, "SELECT 1"), 1);
  // And no statement of ours is still running.
  auto admin = must_open(shared_target());
  EXPECT_EQ(scalar(*admin,
                   "SELECT count(*) FROM pg_stat_activity WHERE query = "
                   "'SELECT pg_sleep(30)' AND state = 'active'"),
            0);
}

TEST(PostgresDeadline, ServerSideStatementTimeoutIsATimeout) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  auto r = s->exec("BEGIN; SET LOCAL statement_timeout = 100; SELECT pg_sleep(5); COMMIT",
                   Deadline::after(10s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_NE(r.error().message.find("statement timeout"), std::string::npos) << r.error().message;
  exec(*s, "ROLLBACK");
  // SET LOCAL ended with the transaction.
  EXPECT_EQ(run(*s, "SELECT current_setting('statement_timeout')").text(0, 0), "0");
}

TEST(PostgresDeadline, CancelFromAnotherThread) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    s->cancel();
  });
  const auto started = Clock::now();
  auto r = s->query("SELECT pg_sleep(30)", {}, Deadline::after(20s));
  const double took = seconds_since(started);
  canceller.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled) << r.error().to_string();
  EXPECT_LT(took, 5);
  EXPECT_TRUE(s->is_open());
  EXPECT_EQ(scalar(*s, "SELECT 2"), 2);
  // cancel() with nothing running is harmless.
  s->cancel();
  EXPECT_EQ(scalar(*s, "SELECT 3"), 3);
}

TEST(PostgresDeadline, ExpiredDeadlineSendsNothing) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  auto r = s->query("SELECT 1", {}, Deadline(Clock::now() - 1s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_TRUE(s->is_open());
  EXPECT_EQ(scalar(*s, "SELECT 4"), 4);
}

// --- 4 and 5. hung and broken servers ----------------------------------------------

TEST(PostgresHung, FrozenServerTimesOutThenStoppedServerBreaksTheSession) {
  auto instance = launcher::start_postgres();
  ASSERT_TRUE(instance) << instance.error().to_string();
  const auto target = (*instance)->target("pg-frozen");
  auto before = must_open(target);
  ASSERT_TRUE(before);

  ASSERT_TRUE((*instance)->pause());
  auto started = Clock::now();
  auto c = open(target, 1s);
  double took = seconds_since(started);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kTimeout);
  EXPECT_NE(c.error().to_string().find("pg-frozen: connect: no answer within 1.0s"),
            std::string::npos)
      << c.error().to_string();
  EXPECT_LT(took, 3);

  started = Clock::now();
  auto q = before->query("SELECT 1", {}, Deadline::after(1s));
  took = seconds_since(started);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, ErrorCode::kTimeout);
  EXPECT_LT(took, 5);
  // Nobody confirmed the cancel: the connection was given up.
  EXPECT_FALSE(before->is_open());
  auto again = before->query("SELECT 1", {}, Deadline::after(1s));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);

  ASSERT_TRUE((*instance)->resume());
  auto after = must_open(target);
  ASSERT_TRUE(after);
  EXPECT_EQ(scalar(*after, "SELECT 5"), 5);

  // A stopped server breaks the session: the next call fails, is_open() is false.
  ASSERT_TRUE((*instance)->stop());
  auto broken = after->query("SELECT 1", {}, Deadline::after(5s));
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().code, ErrorCode::kUnavailable) << broken.error().to_string();
  EXPECT_FALSE(after->is_open());
  auto refused = open(target, 5s);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
}

TEST(PostgresHung, ListenerThatNeverAnswersTimesOut) {
  SilentListener silent;
  const auto started = Clock::now();
  auto s = open(silent_target(silent), 1s);
  const double took = seconds_since(started);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kTimeout);
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 3);
}

TEST(PostgresBroken, TerminatedBackendMakesTheSessionClosed) {
  auto victim = must_open(shared_target());
  auto admin = must_open(shared_target());
  ASSERT_TRUE(victim && admin);
  const auto pid = scalar(*victim, "SELECT pg_backend_pid()");
  EXPECT_EQ(run(*admin, "SELECT pg_terminate_backend($1::int)", {pid}).text(0, 0), "t");
  auto r = victim->query("SELECT 1", {}, Deadline::after(5s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().to_string();
  EXPECT_FALSE(victim->is_open());
  EXPECT_FALSE(victim->ping(Deadline::after(1s)));
}

// --- 6. the probe ------------------------------------------------------------------

TEST(PostgresProbe, EveryFieldFollowsWhatTheTestDoes) {
  auto s = must_open(shared_target("pg-probe"));
  auto admin = must_open(shared_target());
  ASSERT_TRUE(s && admin);
  const ProbeSample first = probe(*s);

  // Identity and settings, against what the server says otherwise.
  EXPECT_EQ(first.server_version, s->server_version());
  EXPECT_EQ(first.role, "primary");
  EXPECT_EQ(first.max_connections, scalar(*admin, "SHOW max_connections"));
  EXPECT_NE(first.info.at("version").find("PostgreSQL"), std::string::npos);
  EXPECT_TRUE(first.info.at("data_checksums") == "on" || first.info.at("data_checksums") == "off");
  ASSERT_TRUE(first.uptime_seconds);
  EXPECT_GT(*first.uptime_seconds, 0);
  EXPECT_FALSE(first.replication_lag_seconds);
  EXPECT_TRUE(first.unavailable.contains("replication_lag_bytes"));
  EXPECT_EQ(metric(first, "replicas"), 0);
  EXPECT_TRUE(first.unavailable.contains("replica_max_replay_lag_seconds"));
  // xid_wraparound_remaining is derived from xid_age.
  EXPECT_GT(metric(first, "xid_age"), 0);
  EXPECT_EQ(metric(first, "xid_wraparound_remaining"), 2147483648.0 - metric(first, "xid_age"));
  EXPECT_GT(metric(first, "wal_directory_bytes"), 0);
  EXPECT_GE(metric(first, "checkpoint_age_seconds"), 0);
  for (const auto& m : first.metrics) {
    const bool counter = m.kind == ProbeMetric::Kind::kCounter;
    const bool expect_counter = m.name == "wal_bytes" || m.name.starts_with("checkpoints_") ||
                                m.name.starts_with("xact_") || m.name == "deadlocks" ||
                                m.name.starts_with("temp_") || m.name.starts_with("blks_") ||
                                m.name == "recovery_conflicts";
    EXPECT_EQ(counter, expect_counter) << m.name;
    EXPECT_FALSE(m.help.empty()) << m.name;
  }

  // Connections: once the sessions of earlier tests are gone, exactly this
  // test's two; three more sessions are three more client backends.
  const ProbeSample settled =
      probe_until(*s, [](const ProbeSample& p) { return p.connections.value_or(-1) == 2; });
  const auto c1 = settled.connections.value_or(-1);
  EXPECT_EQ(c1, 2);
  {
    std::vector<std::unique_ptr<PostgresSession>> extra;
    for (int i = 0; i < 3; ++i) extra.push_back(must_open(shared_target()));
    const auto more = probe(*s);
    EXPECT_EQ(more.connections.value_or(-1), c1 + 3);
  }

  // Writes: the database grows, WAL advances, xids are consumed, commits count.
  exec(*admin, "DROP TABLE IF EXISTS probe_t; CREATE TABLE probe_t (id int, pad text)");
  const std::string_view insert =
      "INSERT INTO probe_t SELECT g, repeat('x', 200) FROM generate_series(1, 4000) g";
  exec_and_disconnect(shared_target(), {insert, insert, insert, insert, insert});
  const ProbeSample written = probe_until(*s, [&](const ProbeSample& p) {
    return metric(p, "xact_commit") >= metric(first, "xact_commit") + 5;
  });
  EXPECT_GT(written.database_size_bytes.value_or(0),
            first.database_size_bytes.value_or(0) + 1'000'000);
  EXPECT_GT(metric(written, "wal_bytes"), metric(first, "wal_bytes") + 1'000'000);
  EXPECT_GE(metric(written, "xid_age"), metric(first, "xid_age") + 5);
  EXPECT_GE(metric(written, "xact_commit"), metric(first, "xact_commit") + 5);

  // A rollback and a spill to a temporary file.
  exec_and_disconnect(shared_target(),
                      {"BEGIN; INSERT INTO probe_t VALUES (0, ''); ROLLBACK",
                       "BEGIN; SET LOCAL work_mem = '64kB'; SELECT count(*) FROM (SELECT id "
                       "FROM probe_t ORDER BY pad DESC, id) o; COMMIT"});
  const ProbeSample spilled = probe_until(*s, [&](const ProbeSample& p) {
    return metric(p, "temp_bytes") > metric(first, "temp_bytes") &&
           metric(p, "xact_rollback") > metric(first, "xact_rollback");
  });
  EXPECT_GT(metric(spilled, "temp_bytes"), metric(first, "temp_bytes"));
  EXPECT_GT(metric(spilled, "temp_files"), metric(first, "temp_files"));
  EXPECT_GT(metric(spilled, "xact_rollback"), metric(first, "xact_rollback"));

  // CHECKPOINT is a requested checkpoint; its age restarts.
  const auto checkpoint_issued = Clock::now();
  exec(*admin, "CHECKPOINT");
  const ProbeSample checkpointed = probe_until(*s, [&](const ProbeSample& p) {
    return metric(p, "checkpoints_req") > metric(first, "checkpoints_req");
  });
  EXPECT_GT(metric(checkpointed, "checkpoints_req"), metric(first, "checkpoints_req"));
  EXPECT_LE(metric(checkpointed, "checkpoint_age_seconds"), seconds_since(checkpoint_issued) + 1);

  // A held lock: A holds it inside a transaction, B waits for it.
  EXPECT_EQ(metric(checkpointed, "lock_waiting_sessions"), 0);
  EXPECT_EQ(metric(checkpointed, "idle_in_transaction_sessions"), 0);
  auto a = must_open(shared_target());
  auto b = must_open(shared_target());
  ASSERT_TRUE(a && b);
  exec(*a, "BEGIN; LOCK TABLE probe_t IN ACCESS EXCLUSIVE MODE");
  std::atomic<bool> b_done{false};
  std::thread waiter([&] {
    auto r = b->query("SELECT count(*) FROM probe_t", {}, Deadline::after(20s));
    EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
    b_done = true;
  });
  EXPECT_TRUE(eventually([&] {
    return scalar(*admin, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") ==
           1;
  }));
  std::this_thread::sleep_for(200ms);
  const ProbeSample locked = probe(*s);
  EXPECT_EQ(metric(locked, "lock_waiting_sessions"), 1);
  EXPECT_EQ(metric(locked, "idle_in_transaction_sessions"), 1);
  EXPECT_GE(metric(locked, "oldest_xact_age_seconds"), 0.2);
  EXPECT_FALSE(b_done);
  exec(*a, "COMMIT");
  waiter.join();
  EXPECT_TRUE(b_done);
  const ProbeSample released = probe(*s);
  EXPECT_EQ(metric(released, "lock_waiting_sessions"), 0);
  EXPECT_LT(metric(released, "oldest_xact_age_seconds"), metric(locked, "oldest_xact_age_seconds"));

  // Uptime moves with the clock.
  const ProbeSample last = probe(*s);
  EXPECT_GT(*last.uptime_seconds, *first.uptime_seconds);
  exec(*admin, "DROP TABLE probe_t");
}

TEST(PostgresProbe, PrimaryAndReplica) {
  // Standbys report their replay position every second (not every 10 s), and
  // two-phase commit is on so that prepared transactions can be counted.
  launcher::Options options;
  options.settings = {{"wal_receiver_status_interval", "1s"}, {"max_prepared_transactions", "4"}};
  auto topology = launcher::start_postgres_replicated(1, options);
  ASSERT_TRUE(topology) << topology.error().to_string();
  auto primary = must_open(topology->primary->target("pg-primary"));
  auto replica = must_open(topology->replicas[0]->target("pg-replica"));
  ASSERT_TRUE(primary && replica);

  // Replayed up to date: no lag, although the primary is idle.
  exec(*primary, "CREATE TABLE lag_t (id int); INSERT INTO lag_t VALUES (1)");
  EXPECT_TRUE(eventually([&] {
    const auto r = run(*replica, "SELECT count(*) FROM pg_class WHERE relname = 'lag_t'");
    return !r.empty() && r.integer(0, 0) == 1;
  }));
  const ProbeSample caught_up = probe_until(
      *replica, [](const ProbeSample& p) { return p.replication_lag_bytes.value_or(-1) == 0; });
  EXPECT_EQ(caught_up.role, "replica");
  EXPECT_EQ(caught_up.replication_lag_bytes.value_or(-1), 0);
  EXPECT_EQ(caught_up.replication_lag_seconds.value_or(-1), 0);
  EXPECT_EQ(caught_up.info.at("replay_paused"), "false");
  EXPECT_GT(metric(caught_up, "wal_bytes"), 0);
  const ProbeSample primary_idle = probe(*primary);
  EXPECT_EQ(primary_idle.role, "primary");
  EXPECT_EQ(metric(primary_idle, "replicas"), 1);
  EXPECT_EQ(metric(primary_idle, "replication_slots"), 1);
  EXPECT_EQ(metric(primary_idle, "replication_slots_inactive"), 0);
  EXPECT_TRUE(eventually([&] {
    const auto p = probe(*primary);
    const auto* lag = p.find_metric("replica_max_replay_lag_bytes");
    return lag && lag->value == 0;
  }));

  // Replay paused, the primary writes: the replica receives but does not apply.
  exec(*replica, "SELECT pg_wal_replay_pause()");
  exec(*primary, "INSERT INTO lag_t SELECT generate_series(1, 20000)");
  const ProbeSample behind = probe_until(
      *replica, [](const ProbeSample& p) { return p.replication_lag_bytes.value_or(0) > 0; });
  EXPECT_GT(behind.replication_lag_bytes.value_or(0), 0);
  EXPECT_GT(behind.replication_lag_seconds.value_or(0), 0);
  EXPECT_EQ(behind.info.at("replay_paused"), "true");
  EXPECT_GT(metric(behind, "wal_bytes"), metric(caught_up, "wal_bytes"));
  const ProbeSample primary_busy = probe_until(*primary, [](const ProbeSample& p) {
    const auto* lag = p.find_metric("replica_max_replay_lag_bytes");
    return lag && lag->value > 0;
  });
  EXPECT_GT(metric(primary_busy, "replica_max_replay_lag_bytes"), 0);
  EXPECT_GE(metric(primary_busy, "replica_max_replay_lag_seconds"), 0);
  EXPECT_GT(metric(primary_busy, "wal_bytes"), metric(primary_idle, "wal_bytes"));

  // A prepared transaction is counted (and aged) until it is resolved.
  exec(*primary, "BEGIN; INSERT INTO lag_t VALUES (-1); PREPARE TRANSACTION 'dbops_probe_2pc'");
  std::this_thread::sleep_for(100ms);
  const ProbeSample prepared = probe(*primary);
  EXPECT_EQ(metric(prepared, "prepared_xacts"), 1);
  EXPECT_GT(metric(prepared, "oldest_prepared_xact_age_seconds"), 0.05);
  exec(*primary, "ROLLBACK PREPARED 'dbops_probe_2pc'");
  EXPECT_EQ(metric(probe(*primary), "prepared_xacts"), 0);

  // The monitoring role (created on the primary, replicated) reads the replica too.
  exec(*primary, "CREATE ROLE mon_r LOGIN PASSWORD 'mon-r-pass' IN ROLE pg_monitor");
  auto mon_target = topology->primary->target("pg-mon-primary");
  mon_target.user = "mon_r";
  mon_target.password = Secret("mon-r-pass");
  auto mon_primary = must_open(mon_target);
  ASSERT_TRUE(mon_primary);
  const ProbeSample mon_p = probe(*mon_primary);
  EXPECT_GT(metric(mon_p, "replica_max_replay_lag_bytes"), 0);
  EXPECT_EQ(mon_p.connections, primary_busy.connections.value_or(-1) + 1);

  // Replay resumes; the replica catches up again.
  exec(*replica, "SELECT pg_wal_replay_resume()");
  const ProbeSample resumed = probe_until(
      *replica, [](const ProbeSample& p) { return p.replication_lag_bytes.value_or(-1) == 0; });
  EXPECT_EQ(resumed.replication_lag_bytes.value_or(-1), 0);
  EXPECT_EQ(resumed.replication_lag_seconds.value_or(-1), 0);
  auto mon_replica_target = topology->replicas[0]->target("pg-mon-replica");
  mon_replica_target.user = "mon_r";
  mon_replica_target.password = Secret("mon-r-pass");
  auto mon_replica = must_open(mon_replica_target);
  ASSERT_TRUE(mon_replica);
  const ProbeSample mon_r = probe(*mon_replica);
  EXPECT_EQ(mon_r.role, "replica");
  EXPECT_TRUE(mon_r.replication_lag_bytes);
  EXPECT_TRUE(mon_r.replication_lag_seconds);
  EXPECT_TRUE(mon_r.connections);
}

TEST(PostgresProbe, RefusesASessionInsideATransaction) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  exec(*s, "BEGIN");
  auto sample = pg_engine().health_probe()->probe(*s, Deadline::after(5s));
  ASSERT_FALSE(sample);
  exec(*s, "ROLLBACK");
  EXPECT_TRUE(pg_engine().health_probe()->probe(*s, Deadline::after(5s)));
}

TEST(PostgresProbe, HeldLockOnACatalogIsCutByTheServerSideTimeout) {
  auto s = must_open(shared_target());
  auto blocker = must_open(shared_target());
  ASSERT_TRUE(s && blocker);
  // pg_database_size needs no lock, but pg_stat_database and friends read
  // catalogs: an exclusive lock on one makes the probe wait until the deadline.
  exec(*blocker, "BEGIN; LOCK TABLE pg_database IN ACCESS EXCLUSIVE MODE");
  const auto started = Clock::now();
  auto sample = pg_engine().health_probe()->probe(*s, Deadline::after(1s));
  const double took = seconds_since(started);
  exec(*blocker, "ROLLBACK");
  ASSERT_FALSE(sample);
  EXPECT_EQ(sample.error().code, ErrorCode::kTimeout) << sample.error().to_string();
  // The server's own SET LOCAL statement_timeout fired, before dbops's deadline.
  EXPECT_NE(sample.error().message.find("statement timeout"), std::string::npos)
      << sample.error().to_string();
  EXPECT_NE(sample.error().to_string().find(": probe: "), std::string::npos);
  EXPECT_LT(took, 4);
  // The failed probe left no transaction open.
  EXPECT_TRUE(s->is_open());
  EXPECT_TRUE(s->transaction_idle());
  EXPECT_TRUE(pg_engine().health_probe()->probe(*s, Deadline::after(5s)));
}

// The agent's probes carry the slow fields over (ProbeOptions): on a session
// that read them, while they are young enough and the server has not
// restarted. Everything else is read every time.
TEST(PostgresProbe, SlowFieldsAreCarriedOverWhileYoungAndReadAgainAfterARestart) {
  auto s = must_open(shared_target("pg-carry"));
  auto admin = must_open(shared_target());
  ASSERT_TRUE(s && admin);
  const auto probe_carrying = [&](std::chrono::milliseconds max_age) {
    auto sample = pg_engine().health_probe()->probe_with(
        *s, ProbeOptions{.deadline = Deadline::after(10s), .slow_fields_max_age = max_age});
    EXPECT_TRUE(sample) << (sample ? "" : sample.error().to_string());
    return sample ? *sample : ProbeSample{};
  };
  const std::set<std::string> slow = {
      "version", "data_checksums",           "max_connections", "database_size_bytes",
      "xid_age", "xid_wraparound_remaining", "multixact_age",   "wal_directory_bytes"};
  const auto carried = [](const ProbeSample& p) {
    std::set<std::string> names;
    for (const auto& [name, age] : p.carried_seconds) names.insert(name);
    return names;
  };

  // A new session reads everything; the next probe carries the slow fields.
  const ProbeSample first = probe_carrying(1h);
  EXPECT_TRUE(first.carried_seconds.empty());
  const ProbeSample second = probe_carrying(1h);
  EXPECT_EQ(carried(second), slow);
  EXPECT_GT(second.carried_seconds.at("database_size_bytes"), 0);
  EXPECT_EQ(second.server_version, first.server_version);
  EXPECT_EQ(second.info.at("version"), first.info.at("version"));
  EXPECT_EQ(second.max_connections, first.max_connections);
  EXPECT_EQ(metric(second, "xid_age"), metric(first, "xid_age"));
  EXPECT_EQ(metric(second, "wal_directory_bytes"), metric(first, "wal_directory_bytes"));
  EXPECT_EQ(second.metrics.size(), first.metrics.size());
  EXPECT_EQ(second.unavailable, first.unavailable);

  // The database grows and xids are consumed: a carrying probe still shows
  // the old size and age, while the fields read every time move.
  exec(*admin, "DROP TABLE IF EXISTS carry_t; CREATE TABLE carry_t (id int, pad text)");
  exec_and_disconnect(shared_target(),
                      {"INSERT INTO carry_t SELECT g, repeat('x', 200) FROM generate_series(1, "
                       "10000) g"});
  std::vector<std::unique_ptr<PostgresSession>> extra;
  for (int i = 0; i < 3; ++i) extra.push_back(must_open(shared_target()));
  const ProbeSample stale = probe_carrying(1h);
  EXPECT_EQ(carried(stale), slow);
  EXPECT_EQ(stale.database_size_bytes, first.database_size_bytes);
  EXPECT_EQ(metric(stale, "xid_age"), metric(first, "xid_age"));
  const auto with_extra = stale.connections.value_or(-1);
  extra.clear();
  ProbeSample fewer;
  EXPECT_TRUE(eventually([&] {
    fewer = probe_carrying(1h);
    return fewer.connections.value_or(-1) <= with_extra - 3;
  })) << "connections stayed at "
      << fewer.connections.value_or(-1);
  EXPECT_EQ(carried(fewer), slow);

  // A probe without options reads everything, and later ones carry that.
  const ProbeSample fresh = probe(*s);
  EXPECT_TRUE(fresh.carried_seconds.empty());
  EXPECT_GT(fresh.database_size_bytes.value_or(0),
            first.database_size_bytes.value_or(0) + 1'000'000);
  EXPECT_GT(metric(fresh, "xid_age"), metric(first, "xid_age"));
  EXPECT_EQ(probe_carrying(1h).database_size_bytes, fresh.database_size_bytes);

  // A zero budget never carries; nor does a server whose start time is not
  // the one the fields were read at (a restart behind a pooler).
  EXPECT_TRUE(probe_carrying(0ms).carried_seconds.empty());
  exec_and_disconnect(shared_target(), {"INSERT INTO carry_t VALUES (1, '')"});
  s->slow_fields().started = "0";
  const ProbeSample restarted = probe_carrying(1h);
  EXPECT_TRUE(restarted.carried_seconds.empty());
  EXPECT_GT(metric(restarted, "xid_age"), metric(fresh, "xid_age"));
  EXPECT_EQ(restarted.server_version, first.server_version);
  EXPECT_EQ(restarted.max_connections, first.max_connections);
  EXPECT_EQ(carried(probe_carrying(1h)), slow);
  exec(*admin, "DROP TABLE carry_t");
}

// The round trip that measures rtt_seconds comes last, so that the text
// pg_stat_activity keeps for the idle session is short (other probes' walks
// of pg_stat_get_activity() copy it for every session).
TEST(PostgresProbe, RoundTripTimeIsMeasuredLastAndLeavesAShortQueryText) {
  auto s = must_open(shared_target("pg-rtt"));
  auto admin = must_open(shared_target());
  ASSERT_TRUE(s && admin);
  const auto pid = scalar(*s, "SELECT pg_backend_pid()");
  const ProbeSample sample = probe(*s);
  ASSERT_TRUE(sample.rtt_seconds);
  EXPECT_GT(*sample.rtt_seconds, 0);
  EXPECT_LT(*sample.rtt_seconds, 10);
  const auto activity =
      run(*admin, "SELECT state, query FROM pg_stat_activity WHERE pid = $1::int", {pid});
  ASSERT_EQ(activity.rows.size(), 1u);
  EXPECT_EQ(activity.text(0, 0), "idle");
  EXPECT_EQ(activity.text(0, 1), "SELECT 1");
}

// Behind PgBouncer in transaction pooling mode, a client's transactions run
// on whichever server connection is free (and PgBouncer here resets nothing
// between clients): the probe leaves no session state behind, and carrying
// slow fields over still works.
TEST(PostgresProbe, WorksBehindPgBouncerInTransactionPooling) {
  auto bouncer = testing::PgBouncer::start(shared(), 2);
  ASSERT_TRUE(bouncer) << bouncer.error().to_string();
  config::Target target;
  target.name = "pg-bounced";
  target.engine = "postgres";
  target.dsn = Secret((*bouncer)->dsn("postgres"));
  auto s = must_open(target);
  auto other = must_open(target);
  ASSERT_TRUE(s && other) << (*bouncer)->log();
  for (int i = 0; i < 4; ++i) {
    auto sample = pg_engine().health_probe()->probe_with(
        *s, ProbeOptions{.deadline = Deadline::after(10s), .slow_fields_max_age = 1h});
    ASSERT_TRUE(sample) << sample.error().to_string() << "\n" << (*bouncer)->log();
    EXPECT_EQ(sample->role, "primary");
    EXPECT_TRUE(sample->connections);
    EXPECT_TRUE(sample->rtt_seconds);
    EXPECT_EQ(sample->carried_seconds.empty(), i == 0) << i;
    // The probe's settings ended with its transaction, on whichever server
    // connection either client gets next.
    for (auto* c : {s.get(), other.get()}) {
      const auto settings = run(*c,
                                "SELECT current_setting('statement_timeout'), "
                                "current_setting('join_collapse_limit'), "
                                "current_setting('transaction_read_only')");
      ASSERT_EQ(settings.rows.size(), 1u);
      EXPECT_EQ(settings.to_text(), "0|8|off");
    }
  }
}

// --- 7. least privilege ------------------------------------------------------------

TEST(PostgresLeastPrivilege, MonitoringUserGetsEveryField) {
  const TempRole role("dbops_mon", "IN ROLE pg_monitor");
  auto mon = must_open(role.target());
  auto admin = must_open(shared_target());
  ASSERT_TRUE(mon && admin);
  const ProbeSample s = probe(*mon);
  EXPECT_EQ(s.role, "primary");
  EXPECT_FALSE(s.server_version.empty());
  EXPECT_TRUE(s.connections);
  EXPECT_TRUE(s.max_connections);
  EXPECT_GT(s.database_size_bytes.value_or(0), 0);
  EXPECT_GT(s.uptime_seconds.value_or(0), 0);
  for (const char* name :
       {"oldest_xact_age_seconds", "lock_waiting_sessions", "idle_in_transaction_sessions",
        "xid_age", "xid_wraparound_remaining", "wal_bytes", "checkpoints_timed", "checkpoints_req",
        "wal_directory_bytes", "checkpoint_age_seconds", "deadlocks", "temp_bytes", "xact_commit",
        "replicas", "replication_slots", "prepared_xacts"}) {
    EXPECT_NE(s.find_metric(name), nullptr) << name;
  }
  // Only what a primary without standbys or slots cannot have.
  for (const auto& [field, why] : s.unavailable) {
    EXPECT_TRUE(field == "replication_lag_seconds" || field == "replication_lag_bytes" ||
                field == "replica_max_replay_lag_seconds" ||
                field == "replica_max_replay_lag_bytes" ||
                field == "replication_slot_max_retained_bytes")
        << field << ": " << why;
  }
  // It sees other roles' sessions: a superuser session idle in a transaction.
  exec(*admin, "BEGIN; SELECT txid_current()");
  const ProbeSample busy = probe(*mon);
  EXPECT_EQ(metric(busy, "idle_in_transaction_sessions"),
            metric(s, "idle_in_transaction_sessions") + 1);
  EXPECT_GT(metric(busy, "oldest_xact_age_seconds"), 0);
  exec(*admin, "ROLLBACK");
}

TEST(PostgresLeastPrivilege, PlainUserGetsWhatItMayAndReasonsForTheRest) {
  const TempRole role("dbops_plain", "");
  auto plain = must_open(role.target());
  ASSERT_TRUE(plain);
  const ProbeSample s = probe(*plain);
  EXPECT_EQ(s.role, "primary");
  EXPECT_TRUE(s.max_connections);
  EXPECT_GT(s.database_size_bytes.value_or(0), 0);
  EXPECT_GT(s.uptime_seconds.value_or(0), 0);
  EXPECT_NE(s.find_metric("wal_bytes"), nullptr);
  EXPECT_NE(s.find_metric("xid_age"), nullptr);
  EXPECT_FALSE(s.connections);
  for (const char* field :
       {"connections", "oldest_xact_age_seconds", "lock_waiting_sessions", "wal_directory_bytes"}) {
    ASSERT_TRUE(s.unavailable.contains(field)) << field;
    EXPECT_NE(s.unavailable.at(field).find("pg_monitor"), std::string::npos) << field;
  }
}

// --- the capability matrix -----------------------------------------------------------

TEST(PostgresEngine, CapabilitiesAndClientLibrary) {
  EXPECT_EQ(pg_engine().client_library().rfind("libpq ", 0), 0u);
  bool connect = false, probe = false;
  for (const auto& c : pg_engine().capabilities()) {
    if (c.variant.empty() && c.capability == "connect") connect = c.implemented && c.live_tested;
    if (c.variant.empty() && c.capability == "HealthProbe") probe = c.implemented && c.live_tested;
  }
  EXPECT_TRUE(connect);
  EXPECT_TRUE(probe);
  EXPECT_NE(pg_engine().health_probe(), nullptr);
}

}  // namespace
}  // namespace dbops::engine
