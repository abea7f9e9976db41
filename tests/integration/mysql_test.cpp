// MariaDB engine against real servers: sessions with dbops's deadlines, bound
// parameters, cancellation, hung and broken servers, the HealthProbe (each
// field against a condition the test creates) and a least-privileged user.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <set>
#include <thread>

#include "core/clock.hpp"
#include "core/subprocess.hpp"
#include "engine/engine.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/mysql/mysql_dialect.hpp"
#include "engine/mysql/mysql_probe.hpp"
#include "engine/mysql/mysql_session.hpp"
#include "support/instances.hpp"
#include "support/net.hpp"
#include "support/support.hpp"

using dbops::testing::closed_port;
using dbops::testing::SilentListener;

namespace dbops::engine::mysql {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA,
// readable by the server's unprivileged user.
struct Certificates {
  dbops::testing::TempDir dir;
  std::string ca, cert, key, other_ca;
  std::string client_cert, client_key;  // signed by ca
};

Status make_certificates(Certificates& c) {
  std::filesystem::permissions(c.dir.path(), std::filesystem::perms(0755));
  const std::string d = c.dir.path().string() + "/";
  c.dir.write("ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  const std::vector<std::vector<std::string>> steps = {
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", d + "ca.key", "-out", d + "ca.pem", "-days", "2", "-subj",
       "/CN=dbops test CA"},
      {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-keyout", d + "other.key", "-out", d + "other.pem", "-days", "2", "-subj",
       "/CN=another CA"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", d + "server.key", "-out", d + "server.csr", "-subj", "/CN=127.0.0.1"},
      {"openssl", "x509", "-req", "-in", d + "server.csr", "-CA", d + "ca.pem", "-CAkey",
       d + "ca.key", "-CAcreateserial", "-out", d + "server.pem", "-days", "2", "-extfile",
       d + "ext.cnf"},
      {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", d + "client.key", "-out", d + "client.csr", "-subj", "/CN=dbops client"},
      {"openssl", "x509", "-req", "-in", d + "client.csr", "-CA", d + "ca.pem", "-CAkey",
       d + "ca.key", "-CAcreateserial", "-out", d + "client.pem", "-days", "2"},
  };
  for (const auto& argv : steps) {
    DBOPS_ASSIGN(auto result, run_process(ProcessOptions{.argv = argv, .timeout = 30s}));
    DBOPS_TRY(result.check("openssl"));
  }
  for (const char* f : {"ca.pem", "other.pem", "server.pem", "server.key"}) {
    std::filesystem::permissions(d + f, std::filesystem::perms(0644));
  }
  c.ca = d + "ca.pem";
  c.cert = d + "server.pem";
  c.key = d + "server.key";
  c.other_ca = d + "other.pem";
  c.client_cert = d + "client.pem";
  c.client_key = d + "client.key";
  return ok();
}

// Servers beyond the shared one start in the background as soon as a test
// first needs a server, so that their start overlaps the tests before them: a
// primary/replica pair, and a server with TLS that the hung-server test
// freezes at the end.
struct ExtraServers {
  Certificates certs;
  std::future<Result<std::unique_ptr<launcher::Instance>>> tls =
      std::async(std::launch::async, [this]() -> Result<std::unique_ptr<launcher::Instance>> {
        DBOPS_TRY(make_certificates(certs));
        launcher::Options options;
        options.settings = {{"ssl_cert", certs.cert}, {"ssl_key", certs.key}, {"ssl_ca", certs.ca}};
        return launcher::start_mariadb(options);
      });
  std::future<Result<launcher::ReplicatedPair>> pair =
      std::async(std::launch::async, [] { return launcher::start_mariadb_replicated(); });

  // The TLS server, or nullptr (with a test failure) when it did not start.
  launcher::Instance* tls_server() {
    if (tls.valid()) {
      auto r = tls.get();
      if (r) {
        tls_instance = std::move(*r);
      } else {
        tls_error = r.error().to_string();
      }
    }
    EXPECT_NE(tls_instance, nullptr) << tls_error;
    return tls_instance.get();
  }
  std::unique_ptr<launcher::Instance> tls_instance;
  std::string tls_error;
};

ExtraServers& extra_servers() {
  static ExtraServers servers;
  return servers;
}

// The binary's shared server; the first call also starts the extra ones.
launcher::Instance& server() {
  extra_servers();
  return dbops::testing::shared_mariadb();
}

const Engine& engine() {
  const Engine* e = Registry::global().find("mysql");
  EXPECT_NE(e, nullptr);
  return *e;
}

// A session on the target, or a test failure.
std::unique_ptr<MysqlSession> open(const config::Target& target,
                                   std::chrono::milliseconds timeout = 10s) {
  auto params = connect_params(target);
  EXPECT_TRUE(params) << params.error().to_string();
  if (!params) return nullptr;
  auto session = connect(*params, Deadline::after(timeout));
  EXPECT_TRUE(session) << session.error().to_string();
  if (!session) return nullptr;
  return std::move(*session);
}

std::unique_ptr<MysqlSession> open_root(const launcher::Instance& instance,
                                        const std::string& database = "") {
  auto target = instance.target("my-test");
  target.database = database;
  return open(target);
}

void run(SqlSession& s, std::string_view sql) {
  auto st = s.exec(sql, Deadline::after(30s));
  ASSERT_TRUE(st) << sql << ": " << st.error().to_string();
}

std::string scalar(SqlSession& s, std::string_view sql) {
  auto r = s.query(sql, {}, Deadline::after(30s));
  EXPECT_TRUE(r) << sql << ": " << r.error().to_string();
  if (!r || r->empty()) return "";
  return r->text(0, 0);
}

Result<ProbeSample> probe(Session& s) {
  const HealthProbe* p = engine().health_probe();
  EXPECT_NE(p, nullptr);
  return p->probe(s, Deadline::after(10s));
}

// A metric's value, or nullopt when the sample lacks it.
std::optional<double> value_of(const ProbeSample& s, std::string_view name) {
  const auto* m = s.find_metric(name);
  return m ? std::optional<double>(m->value) : std::nullopt;
}

ProbeSample must_probe(Session& s) {
  auto sample = probe(s);
  EXPECT_TRUE(sample) << sample.error().to_string();
  return sample ? *sample : ProbeSample{};
}

// Polls until pred() holds or the time is up.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds within = 10s) {
  const auto end = Clock::now() + within;
  while (Clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

// A TCP proxy to a local port: each chunk waits `delay` before it is passed
// on (a slow link), and after `client_limit` bytes from the client nothing
// more reaches the server (a server that stalls mid-conversation).
class Proxy {
 public:
  struct Options {
    std::chrono::milliseconds delay{0};
    std::size_t client_limit = SIZE_MAX;
  };
  Proxy(int target_port, Options options) : target_port_(target_port), options_(options) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_, 16), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~Proxy() {
    stop_ = true;
    thread_.join();
    for (const auto& link : links_) {
      ::close(link.client);
      ::close(link.server);
    }
    ::close(listen_);
  }
  int port() const { return port_; }

 private:
  struct Link {
    int client;
    int server;
    std::size_t to_server = 0;
  };

  void serve() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_, POLLIN, 0}};
      for (const auto& link : links_) {
        fds.push_back({link.client, POLLIN, 0});
        fds.push_back({link.server, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      if (fds[0].revents & POLLIN) accept_one();
      for (std::size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Link& link = links_[(i - 1) / 2];
        const bool from_client = (i - 1) % 2 == 0;
        char buf[16384];
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          ::shutdown(from_client ? link.server : link.client, SHUT_WR);
          continue;
        }
        std::this_thread::sleep_for(options_.delay);
        std::size_t pass = static_cast<std::size_t>(n);
        if (from_client) {
          pass = std::min(pass,
                          options_.client_limit - std::min(options_.client_limit, link.to_server));
          link.to_server += pass;
        }
        const int to = from_client ? link.server : link.client;
        for (std::size_t off = 0; off < pass;) {
          const ssize_t w = ::send(to, buf + off, pass - off, MSG_NOSIGNAL);
          if (w <= 0) break;
          off += static_cast<std::size_t>(w);
        }
      }
    }
  }

  void accept_one() {
    const int client = ::accept(listen_, nullptr, nullptr);
    if (client < 0) return;
    const int server = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(target_port_));
    if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(client);
      ::close(server);
      return;
    }
    links_.push_back({client, server});
  }

  int target_port_;
  Options options_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<Link> links_;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// Dialect selection (no server)

TEST(MysqlDialect, MariaDbVersionsUseSlaveStatusWithMasterFields) {
  for (const char* v : {"10.11.6-MariaDB-0+deb12u1", "5.5.5-10.11.6-MariaDB", "11.4.2-MariaDB",
                        "10.3.39-MariaDB-log"}) {
    const Dialect d = dialect_for(std::string_view(v));
    EXPECT_EQ(d.flavor, Dialect::Flavor::kMariaDb) << v;
    EXPECT_EQ(d.replica_status_sql, "SHOW ALL SLAVES STATUS") << v;
    EXPECT_EQ(d.lag_column, "Seconds_Behind_Master") << v;
    EXPECT_EQ(d.sql_running_column, "Slave_SQL_Running") << v;
    EXPECT_EQ(d.gtid_io_pos_column, "Gtid_IO_Pos") << v;
    EXPECT_NE(d.variables_sql.find("@@gtid_slave_pos"), std::string::npos) << v;
    EXPECT_TRUE(d.live_tested) << v;
  }
  const auto v = parse_server_version("5.5.5-10.11.6-MariaDB");
  EXPECT_TRUE(v.mariadb);
  EXPECT_EQ(v.major, 10);
  EXPECT_EQ(v.minor, 11);
  EXPECT_EQ(v.patch, 6);
}

TEST(MysqlDialect, MySql8022AndLaterUseReplicaStatusWithSourceFields) {
  for (const char* v : {"8.0.22", "8.0.36-28", "8.4.0", "9.1.0-commercial"}) {
    const Dialect d = dialect_for(std::string_view(v));
    EXPECT_EQ(d.flavor, Dialect::Flavor::kMysqlReplica) << v;
    EXPECT_EQ(d.replica_status_sql, "SHOW REPLICA STATUS") << v;
    EXPECT_EQ(d.lag_column, "Seconds_Behind_Source") << v;
    EXPECT_EQ(d.io_running_column, "Replica_IO_Running") << v;
    EXPECT_EQ(d.sql_running_column, "Replica_SQL_Running") << v;
    EXPECT_EQ(d.read_pos_column, "Read_Source_Log_Pos") << v;
    EXPECT_EQ(d.exec_pos_column, "Exec_Source_Log_Pos") << v;
    EXPECT_EQ(d.exec_file_column, "Relay_Source_Log_File") << v;
    EXPECT_EQ(d.name, "MySQL 8") << v;
    EXPECT_NE(d.replica_status_privilege.find("REPLICATION CLIENT"), std::string::npos) << v;
    EXPECT_FALSE(d.live_tested) << v;
    EXPECT_EQ(d.variables_sql.find("gtid_slave_pos"), std::string::npos) << v;
  }
}

TEST(MysqlDialect, OlderMySqlUsesSlaveStatus) {
  for (const char* v : {"8.0.21", "5.7.44-log", "5.6.51"}) {
    const Dialect d = dialect_for(std::string_view(v));
    EXPECT_EQ(d.flavor, Dialect::Flavor::kMysqlLegacy) << v;
    EXPECT_EQ(d.replica_status_sql, "SHOW SLAVE STATUS") << v;
    EXPECT_EQ(d.lag_column, "Seconds_Behind_Master") << v;
    EXPECT_FALSE(d.live_tested) << v;
  }
}

TEST(MysqlDialect, CapabilitiesMarkMySql8AsNeverRunLive) {
  bool mysql8 = false, mariadb = false, connect = false;
  for (const auto& c : engine().capabilities()) {
    if (c.capability == "connect") connect = c.implemented && c.live_tested;
    if (c.capability == "HealthProbe" && c.variant == "MySQL 8") {
      mysql8 = c.implemented && !c.live_tested;
    }
    if (c.capability == "HealthProbe" && c.variant == "MariaDB") {
      mariadb = c.implemented && c.live_tested;
    }
  }
  EXPECT_TRUE(connect);
  EXPECT_TRUE(mysql8);
  EXPECT_TRUE(mariadb);
  EXPECT_TRUE(engine().client_library().starts_with("MariaDB Connector/C 3."))
      << engine().client_library();
}

TEST(MysqlGtid, BacklogSumsDomains) {
  EXPECT_EQ(gtid_backlog("0-1-100", "0-1-97"), 3);
  EXPECT_EQ(gtid_backlog("0-1-100,1-2-7", "0-1-100,1-2-5"), 2);
  EXPECT_EQ(gtid_backlog("0-1-100", ""), 100);
  EXPECT_EQ(gtid_backlog("0-1-5", "0-1-9"), 0);
  EXPECT_EQ(gtid_backlog("", ""), 0);
  EXPECT_EQ(gtid_backlog("garbage", "0-1-1"), std::nullopt);
}

TEST(MysqlParams, DsnAndTlsParameters) {
  config::Target t;
  t.name = "m";
  t.dsn = Secret("mariadb://u:p%40ss@db.example:3307/app?ssl-mode=verify-full&ssl-ca=/ca.pem");
  auto p = connect_params(t);
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->host, "db.example");
  EXPECT_EQ(p->port, 3307);
  EXPECT_EQ(p->user, "u");
  EXPECT_EQ(p->password.reveal(), "p@ss");
  EXPECT_EQ(p->database, "app");
  EXPECT_EQ(p->tls.mode, "verify-full");
  EXPECT_EQ(p->tls.ca_file, "/ca.pem");
  t.dsn = Secret("mysql://u@h/db?ssl-mode=VERIFY_IDENTITY");
  EXPECT_EQ(connect_params(t)->tls.mode, "verify-full");
  t.dsn = Secret("mysql://u@h/db?ssl-mode=REQUIRED");
  EXPECT_EQ(connect_params(t)->tls.mode, "require");
  t.dsn = Secret("mysql://u@h/db?sslmode=bogus");
  EXPECT_FALSE(connect_params(t));
  t.dsn = Secret("mysql://u@h/db?colour=blue");
  auto bad = connect_params(t);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, ErrorCode::kConfig);
}

// ---------------------------------------------------------------------------
// 1. connect

TEST(MysqlConnect, StructuredFields) {
  auto target = server().target("my-main");
  ConnectOptions options;
  options.connect_timeout = 10s;
  auto session = engine().connect(target, options);
  ASSERT_TRUE(session) << session.error().to_string();
  EXPECT_EQ((*session)->engine(), "mysql");
  EXPECT_NE((*session)->server_version().find("MariaDB"), std::string::npos);
  EXPECT_TRUE((*session)->is_open());
  EXPECT_TRUE((*session)->ping(Deadline::after(5s)));
}

TEST(MysqlConnect, Dsn) {
  const auto base = server().target("my-dsn");
  for (const char* scheme : {"mysql", "mariadb"}) {
    config::Target t;
    t.name = "my-dsn";
    t.engine = "mysql";
    t.dsn = Secret(std::string(scheme) + "://" + base.user + ":" + base.password.reveal() + "@" +
                   base.host + ":" + std::to_string(base.port) + "/mysql");
    auto session = engine().connect(t, ConnectOptions{});
    ASSERT_TRUE(session) << session.error().to_string();
    auto* sql = dynamic_cast<SqlSession*>(session->get());
    ASSERT_NE(sql, nullptr);
    EXPECT_EQ(scalar(*sql, "SELECT DATABASE()"), "mysql") << scheme;
  }
}

TEST(MysqlConnect, UnixSocket) {
  auto target = server().target("my-socket");
  target.host = (server().directory() / "mysqld.sock").string();
  target.port = 0;
  auto s = open(target);
  ASSERT_TRUE(s);
  // root@localhost: the server saw a local socket connection, not TCP.
  EXPECT_EQ(scalar(*s, "SELECT CURRENT_USER()"), "root@localhost");
  auto env = engine().client_environment(target);
  ASSERT_TRUE(env);
  bool socket_var = false;
  for (const auto& [k, v] : *env) socket_var |= k == "MYSQL_UNIX_PORT" && v == target.host;
  EXPECT_TRUE(socket_var);
  EXPECT_TRUE(engine().preflight(target));
}

TEST(MysqlConnect, WrongPasswordIsUnavailableWithoutThePassword) {
  auto target = server().target("my-badpw");
  const std::string wrong = "Wr0ng-Pa55word-" + std::to_string(::getpid());
  target.password = Secret(wrong);
  const auto start = Clock::now();
  auto session = engine().connect(target, ConnectOptions{});
  ASSERT_FALSE(session);
  EXPECT_LT(seconds_since(start), 5);
  const Error& e = session.error();
  EXPECT_EQ(e.code, ErrorCode::kUnavailable);
  const std::string text = e.to_string();
  EXPECT_NE(text.find("access denied"), std::string::npos) << text;
  EXPECT_NE(text.find("my-badpw"), std::string::npos) << text;
  EXPECT_NE(e.hint.find("password"), std::string::npos) << text;
  EXPECT_EQ(text.find(wrong), std::string::npos) << text;
}

TEST(MysqlConnect, RefusedPortIsUnavailableQuickly) {
  config::Target t = server().target("my-refused");
  t.port = closed_port();
  const auto start = Clock::now();
  auto session = engine().connect(t, ConnectOptions{.connect_timeout = 10s});
  ASSERT_FALSE(session);
  EXPECT_LT(seconds_since(start), 2);
  EXPECT_EQ(session.error().code, ErrorCode::kUnavailable);
  const std::string text = session.error().to_string();
  EXPECT_NE(text.find("cannot connect to 127.0.0.1:" + std::to_string(t.port)), std::string::npos)
      << text;
}

TEST(MysqlConnect, TlsRequiredOnAServerWithoutTlsFailsClearly) {
  config::Target t = server().target("my-tls");
  t.tls.mode = "require";
  auto session = engine().connect(t, ConnectOptions{});
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().code, ErrorCode::kUnavailable);
  const std::string text = session.error().to_string();
  EXPECT_TRUE(text.find("TLS") != std::string::npos || text.find("SSL") != std::string::npos)
      << text;
}

// ---------------------------------------------------------------------------
// 2. parameters and errors

TEST(MysqlQuery, BoundParametersRoundTrip) {
  auto s = open_root(server());
  ASSERT_TRUE(s);
  const std::string tricky = "it's \"quoted\" \\ back\\slash\\' ; DROP TABLE t; -- \n\t\x01 ü";
  const std::vector<Param> params = {std::string("text"), std::int64_t{-9007199254740993}, nullptr,
                                     tricky, 2.5};
  auto r = s->query("SELECT ?, ?, ?, ?, ?", params, Deadline::after(5s));
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->rows.size(), 1u);
  EXPECT_EQ(r->text(0, 0), "text");
  EXPECT_EQ(r->integer(0, 1), -9007199254740993);
  EXPECT_TRUE(r->is_null(0, 2));
  EXPECT_EQ(r->text(0, 3), tricky);
  EXPECT_DOUBLE_EQ(r->number(0, 4), 2.5);

  // Stored and found again by a bound comparison: the value is data, not SQL.
  run(*s, "CREATE DATABASE IF NOT EXISTS dbops_params");
  run(*s, "CREATE OR REPLACE TABLE dbops_params.t (id INT PRIMARY KEY, v TEXT, n BIGINT)");
  const std::vector<Param> insert = {std::int64_t{1}, tricky, nullptr};
  auto ins = s->query("INSERT INTO dbops_params.t VALUES (?, ?, ?)", insert, Deadline::after(5s));
  ASSERT_TRUE(ins) << ins.error().to_string();
  EXPECT_EQ(ins->affected_rows, 1);
  const std::vector<Param> find = {tricky};
  auto found =
      s->query("SELECT id, v, n FROM dbops_params.t WHERE v = ?", find, Deadline::after(5s));
  ASSERT_TRUE(found) << found.error().to_string();
  ASSERT_EQ(found->rows.size(), 1u);
  EXPECT_EQ(found->text(0, 1), tricky);
  EXPECT_TRUE(found->is_null(0, 2));
  EXPECT_EQ(scalar(*s, "SELECT COUNT(*) FROM dbops_params.t"), "1");

  // A long value comes back whole.
  const std::string big(100'000, 'x');
  const std::vector<Param> one = {big};
  auto echoed = s->query("SELECT ?", one, Deadline::after(5s));
  ASSERT_TRUE(echoed) << echoed.error().to_string();
  EXPECT_EQ(echoed->text(0, 0), big);

  const std::vector<Param> too_few = {std::int64_t{1}};
  auto mismatch = s->query("SELECT ?, ?", too_few, Deadline::after(5s));
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(s->is_open());
}

TEST(MysqlQuery, SyntaxErrorIsInvalidArgument) {
  auto s = open_root(server());
  ASSERT_TRUE(s);
  auto r = s->query("SELEC 1", {}, Deadline::after(5s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message.find("SQL syntax"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().message.find("SELEC 1"), std::string::npos) << r.error().to_string();
  const std::vector<Param> p = {std::int64_t{1}};
  auto prepared = s->query("SELEC ?", p, Deadline::after(5s));
  ASSERT_FALSE(prepared);
  EXPECT_EQ(prepared.error().code, ErrorCode::kInvalidArgument);
  auto e = s->exec("SELECT 1; SELEC 2", Deadline::after(5s));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, ErrorCode::kInvalidArgument);
  // The session stays in sync after each error.
  EXPECT_TRUE(s->is_open());
  EXPECT_EQ(scalar(*s, "SELECT 41 + 1"), "42");
}

// ---------------------------------------------------------------------------
// 3. deadlines and cancel

// Whether a server thread still runs a statement.
bool running(SqlSession& observer, unsigned long thread_id) {
  return scalar(observer, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                              std::to_string(thread_id) + " AND COMMAND = 'Query'") != "0";
}

TEST(MysqlDeadline, LongSleepIsCutAndKilled) {
  auto observer = open_root(server());
  auto s = open_root(server());
  ASSERT_TRUE(s && observer);
  const unsigned long id = s->thread_id();
  const auto start = Clock::now();
  auto r = s->query("SELECT SLEEP(30)", {}, Deadline::after(1s));
  const double took = seconds_since(start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5);
  EXPECT_NE(r.error().to_string().find("no answer within 1.0s"), std::string::npos)
      << r.error().to_string();
  EXPECT_FALSE(s->is_open());
  auto again = s->query("SELECT 1", {}, Deadline::after(1s));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);
  // KILL QUERY reached the server: the sleep no longer runs there.
  EXPECT_TRUE(eventually([&] { return !running(*observer, id); }, 3s));
}

TEST(MysqlDeadline, PreparedStatementIsCutToo) {
  auto s = open_root(server());
  ASSERT_TRUE(s);
  const std::vector<Param> p = {std::int64_t{30}};
  const auto start = Clock::now();
  auto r = s->query("SELECT SLEEP(?)", p, Deadline::after(1s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_LT(seconds_since(start), 5);
  EXPECT_FALSE(s->is_open());
}

TEST(MysqlDeadline, CancelFromAnotherThreadStopsTheStatement) {
  auto observer = open_root(server());
  auto s = open_root(server());
  ASSERT_TRUE(s && observer);
  const unsigned long id = s->thread_id();
  std::thread canceller([&] {
    eventually([&] { return running(*observer, id); }, 5s);
    s->cancel();
  });
  const auto start = Clock::now();
  auto r = s->query("SELECT SLEEP(30)", {}, Deadline::after(30s));
  canceller.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled) << r.error().to_string();
  EXPECT_LT(seconds_since(start), 5);
  // The session survives a cancel.
  EXPECT_TRUE(s->is_open());
  EXPECT_EQ(scalar(*s, "SELECT 'still here'"), "still here");
}

// ---------------------------------------------------------------------------
// TLS settings reach the library

std::string cipher(SqlSession& s) {
  auto r = s.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'", {}, Deadline::after(5s));
  EXPECT_TRUE(r) << r.error().to_string();
  return r && !r->empty() ? r->text(0, 1) : "";
}

TEST(MysqlTls, ModesAndCertificates) {
  launcher::Instance* instance = extra_servers().tls_server();
  ASSERT_NE(instance, nullptr);
  const Certificates& certs = extra_servers().certs;
  auto with = [&](std::string mode, std::string ca) {
    auto t = instance->target("my-tls");
    t.tls.mode = std::move(mode);
    t.tls.ca_file = std::move(ca);
    return t;
  };
  {
    auto s = open(with("verify-full", certs.ca));
    ASSERT_TRUE(s);
    EXPECT_FALSE(cipher(*s).empty());
  }
  {
    auto s = open(with("", ""));  // prefer: TLS when the server offers it
    ASSERT_TRUE(s);
    EXPECT_FALSE(cipher(*s).empty());
  }
  {
    auto s = open(with("require", ""));
    ASSERT_TRUE(s);
    EXPECT_FALSE(cipher(*s).empty());
  }
  {
    auto s = open(with("disable", ""));
    ASSERT_TRUE(s);
    EXPECT_EQ(cipher(*s), "");
  }
  // A server certificate from another CA is refused.
  auto refused = engine().connect(with("verify-ca", certs.other_ca), ConnectOptions{});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(refused.error().hint.find("tls"), std::string::npos) << refused.error().to_string();
  // Over the DSN too.
  config::Target dsn;
  dsn.name = "my-tls-dsn";
  const auto base = instance->target("x");
  dsn.dsn = Secret("mysql://" + base.user + ":" + base.password.reveal() + "@127.0.0.1:" +
                   std::to_string(base.port) + "/?ssl-mode=verify-full&ssl-ca=" + certs.ca);
  auto via_dsn = open(dsn);
  ASSERT_TRUE(via_dsn);
  EXPECT_FALSE(cipher(*via_dsn).empty());

  // A client certificate reaches the server: an account that requires one.
  auto admin = open_root(*instance);
  ASSERT_TRUE(admin);
  run(*admin, "DROP USER IF EXISTS dbops_x509@'127.0.0.1'");
  run(*admin, "CREATE USER dbops_x509@'127.0.0.1' IDENTIFIED BY 'x509-pw' REQUIRE X509");
  auto x509 = with("verify-full", certs.ca);
  x509.user = "dbops_x509";
  x509.password = Secret("x509-pw");
  auto no_cert = engine().connect(x509, ConnectOptions{});
  ASSERT_FALSE(no_cert);
  EXPECT_EQ(no_cert.error().code, ErrorCode::kUnavailable);
  x509.tls.cert_file = certs.client_cert;
  x509.tls.key_file = certs.client_key;
  auto with_cert = open(x509);
  ASSERT_TRUE(with_cert);
  EXPECT_EQ(scalar(*with_cert, "SELECT CURRENT_USER()"), "dbops_x509@127.0.0.1");
}

TEST(MysqlTls, DeadlineAndCancelHoldOverTls) {
  launcher::Instance* instance = extra_servers().tls_server();
  ASSERT_NE(instance, nullptr);
  auto target = instance->target("my-tls");
  target.tls.mode = "require";
  auto observer = open_root(*instance);
  auto s = open(target);
  ASSERT_TRUE(s && observer);
  ASSERT_FALSE(cipher(*s).empty());
  const unsigned long id = s->thread_id();
  auto start = Clock::now();
  auto r = s->query("SELECT SLEEP(30)", {}, Deadline::after(1s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_LT(seconds_since(start), 5);
  EXPECT_FALSE(s->is_open());
  EXPECT_TRUE(eventually([&] { return !running(*observer, id); }, 3s));

  auto c = open(target);
  ASSERT_TRUE(c);
  std::thread canceller([&] {
    eventually([&] { return running(*observer, c->thread_id()); }, 5s);
    c->cancel();
  });
  start = Clock::now();
  auto cancelled = c->query("SELECT SLEEP(30)", {}, Deadline::after(30s));
  canceller.join();
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(cancelled.error().code, ErrorCode::kCancelled);
  EXPECT_LT(seconds_since(start), 5);
  EXPECT_EQ(scalar(*c, "SELECT 'tls still here'"), "tls still here");
}

TEST(MysqlTls, SlowLinkAndStalledHandshake) {
  launcher::Instance* instance = extra_servers().tls_server();
  ASSERT_NE(instance, nullptr);
  auto target = instance->target("my-tls-slow");
  target.tls.mode = "verify-full";
  target.tls.ca_file = extra_servers().certs.ca;
  {
    // 25 ms each way: the TLS handshake waits for its replies.
    Proxy slow(instance->port(), {.delay = 25ms});
    target.port = slow.port();
    auto s = open(target);
    ASSERT_TRUE(s);
    EXPECT_FALSE(cipher(*s).empty());
    const std::vector<Param> p = {std::string("slow")};
    auto r = s->query("SELECT ?", p, Deadline::after(10s));
    ASSERT_TRUE(r) << r.error().to_string();
    EXPECT_EQ(r->text(0, 0), "slow");
  }
  {
    // The server gets the TLS request (one 36-byte packet) and then nothing:
    // both sides wait inside the handshake.
    Proxy stalled(instance->port(), {.client_limit = 36});
    target.port = stalled.port();
    const auto start = Clock::now();
    auto session = engine().connect(target, ConnectOptions{.connect_timeout = 1s});
    const double took = seconds_since(start);
    ASSERT_FALSE(session);
    EXPECT_EQ(session.error().code, ErrorCode::kTimeout) << session.error().to_string();
    EXPECT_GE(took, 0.9);
    EXPECT_LT(took, 3);
  }
}

// ---------------------------------------------------------------------------
// 4. hung servers

TEST(MysqlHung, FrozenServerTimesOutConnectAndQuery) {
  launcher::Instance* instance = extra_servers().tls_server();
  ASSERT_NE(instance, nullptr);
  auto plain = open_root(*instance);
  auto tls_target = instance->target("my-frozen");
  tls_target.tls.mode = "require";
  auto before = open(tls_target);
  ASSERT_TRUE(plain && before);
  ASSERT_TRUE(instance->pause());

  auto start = Clock::now();
  auto session =
      engine().connect(instance->target("my-frozen"), ConnectOptions{.connect_timeout = 1s});
  double took = seconds_since(start);
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().code, ErrorCode::kTimeout) << session.error().to_string();
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5);
  EXPECT_NE(session.error().to_string().find("my-frozen: connect: no answer"), std::string::npos)
      << session.error().to_string();

  start = Clock::now();
  auto r = before->query("SELECT 1", {}, Deadline::after(1s));
  took = seconds_since(start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_LT(took, 5);
  EXPECT_FALSE(before->is_open());

  start = Clock::now();
  const std::vector<Param> p = {std::int64_t{1}};
  r = plain->query("SELECT ?", p, Deadline::after(1s));
  took = seconds_since(start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout) << r.error().to_string() << " after " << took;
  EXPECT_LT(took, 5);
  EXPECT_FALSE(plain->is_open());

  start = Clock::now();
  auto tls_connect = engine().connect(tls_target, ConnectOptions{.connect_timeout = 1s});
  ASSERT_FALSE(tls_connect);
  EXPECT_EQ(tls_connect.error().code, ErrorCode::kTimeout);
  EXPECT_LT(seconds_since(start), 5);
  ASSERT_TRUE(instance->resume());
}

TEST(MysqlHung, SilentListenerTimesOutConnect) {
  SilentListener silent;
  config::Target t = server().target("my-silent");
  t.port = silent.port();
  const auto start = Clock::now();
  auto session = engine().connect(t, ConnectOptions{.connect_timeout = 1s});
  const double took = seconds_since(start);
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().code, ErrorCode::kTimeout) << session.error().to_string();
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5);
}

// ---------------------------------------------------------------------------
// 5. broken connections

TEST(MysqlBroken, KilledConnectionIsNoLongerOpen) {
  auto victim = open_root(server());
  auto killer = open_root(server());
  ASSERT_TRUE(victim && killer);
  run(*killer, "KILL CONNECTION " + std::to_string(victim->thread_id()));
  auto r = victim->query("SELECT 1", {}, Deadline::after(5s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable) << r.error().to_string();
  EXPECT_FALSE(victim->is_open());
  EXPECT_FALSE(victim->ping(Deadline::after(1s)));
}

// ---------------------------------------------------------------------------
// 6. the probe

TEST(MysqlProbe, PrimaryFieldsFollowTheServer) {
  auto s = open_root(server());
  auto admin = open_root(server());
  ASSERT_TRUE(s && admin);

  // max_connections: set to a value of our own, then restored.
  const std::string old_max = scalar(*admin, "SELECT @@max_connections");
  run(*admin, "SET GLOBAL max_connections = 77");
  ProbeSample a = must_probe(*s);
  run(*admin, "SET GLOBAL max_connections = " + old_max);
  EXPECT_EQ(a.max_connections, 77);

  EXPECT_EQ(a.server_version, s->server_version());
  EXPECT_NE(a.server_version.find("MariaDB"), std::string::npos);
  EXPECT_EQ(a.role, "primary");
  EXPECT_FALSE(a.replication_lag_seconds);
  EXPECT_EQ(a.unavailable["replication_lag_seconds"], "not a replica");
  EXPECT_EQ(a.info["dialect"], "MariaDB");
  ASSERT_TRUE(a.uptime_seconds);
  EXPECT_GT(*a.uptime_seconds, 0);

  const auto hit = value_of(a, "innodb_buffer_pool_hit_ratio");
  ASSERT_TRUE(hit) << a.unavailable["innodb_buffer_pool_hit_ratio"];
  EXPECT_GT(*hit, 0);
  EXPECT_LE(*hit, 1);

  // Uptime moves on and counters count.
  std::this_thread::sleep_for(1100ms);
  run(*admin, "SET SESSION long_query_time = 0");
  run(*admin, "SELECT 1");
  ProbeSample b = must_probe(*s);
  ASSERT_TRUE(b.uptime_seconds);
  EXPECT_GT(*b.uptime_seconds, *a.uptime_seconds);
  const ProbeMetric* questions = b.find_metric("questions");
  ASSERT_NE(questions, nullptr);
  EXPECT_EQ(questions->kind, ProbeMetric::Kind::kCounter);
  EXPECT_GT(questions->value, *value_of(a, "questions"));
  EXPECT_GT(*value_of(b, "slow_queries"), *value_of(a, "slow_queries"));
  EXPECT_EQ(b.find_metric("threads_running")->kind, ProbeMetric::Kind::kGauge);
  EXPECT_FALSE(b.unavailable.contains("history_list_length"));
}

TEST(MysqlProbe, ThreadsRunningRisesWithASleepingStatement) {
  auto s = open_root(server());
  auto sleeper = open_root(server());
  auto observer = open_root(server());
  ASSERT_TRUE(s && sleeper && observer);
  // Threads_running is server-wide: other sessions (and the server's own
  // housekeeping) come and go. The quietest of several samples is the
  // baseline; while the sleeper runs, no sample can fall to it.
  double before = 1e9;
  for (int i = 0; i < 5; ++i) {
    before = std::min(before, value_of(must_probe(*s), "threads_running").value_or(-1));
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_GE(before, 1);  // the probe's own statement
  std::thread t([&] { (void)sleeper->query("SELECT SLEEP(20)", {}, Deadline::after(30s)); });
  EXPECT_TRUE(eventually([&] { return running(*observer, sleeper->thread_id()); }, 5s));
  double during = 1e9;
  for (int i = 0; i < 3; ++i) {
    during = std::min(during, value_of(must_probe(*s), "threads_running").value_or(-1));
  }
  sleeper->cancel();
  t.join();
  EXPECT_GE(during, before + 1);
}

TEST(MysqlProbe, ConnectionsRiseWithMoreSessions) {
  auto s = open_root(server());
  ASSERT_TRUE(s);
  // Let connections closed by earlier tests leave the server first.
  std::int64_t steady = -1;
  eventually([&] {
    const auto now = must_probe(*s).connections.value_or(-1);
    const bool same = now == steady;
    steady = now;
    std::this_thread::sleep_for(100ms);
    return same;
  });
  const std::int64_t before = must_probe(*s).connections.value_or(-1);
  std::vector<std::unique_ptr<MysqlSession>> more;
  for (int i = 0; i < 4; ++i) more.push_back(open_root(server()));
  const std::int64_t during = must_probe(*s).connections.value_or(-1);
  EXPECT_EQ(during, before + 4);
}

TEST(MysqlProbe, DatabaseSizeGrowsWithRows) {
  {
    auto admin = open_root(server());
    ASSERT_TRUE(admin);
    run(*admin, "DROP DATABASE IF EXISTS dbops_size");
    run(*admin, "CREATE DATABASE dbops_size");
  }
  auto s = open_root(server(), "dbops_size");
  ASSERT_TRUE(s);
  run(*s, "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(400)) ENGINE=InnoDB");
  run(*s, "ANALYZE TABLE t");
  ProbeSample before = must_probe(*s);
  ASSERT_TRUE(before.database_size_bytes) << before.unavailable["database_size_bytes"];
  run(*s, "INSERT INTO t (v) SELECT REPEAT('x', 400) FROM seq_1_to_5000");
  run(*s, "ANALYZE TABLE t");
  ProbeSample after = must_probe(*s);
  ASSERT_TRUE(after.database_size_bytes);
  EXPECT_GE(*after.database_size_bytes, *before.database_size_bytes + 1'000'000)
      << *before.database_size_bytes << " -> " << *after.database_size_bytes;
}

TEST(MysqlProbe, HistoryListGrowsBehindAnOpenSnapshot) {
  auto s = open_root(server());
  auto reader = open_root(server());
  auto writer = open_root(server());
  ASSERT_TRUE(s && reader && writer);
  run(*writer, "CREATE DATABASE IF NOT EXISTS dbops_history");
  run(*writer, "CREATE OR REPLACE TABLE dbops_history.t (id INT PRIMARY KEY, v INT)");
  run(*writer, "INSERT INTO dbops_history.t SELECT seq, 0 FROM dbops_history.seq_1_to_200");
  // An old read view keeps purge from removing what the updates leave behind.
  run(*reader, "START TRANSACTION WITH CONSISTENT SNAPSHOT");
  run(*reader, "SELECT COUNT(*) FROM dbops_history.t");
  for (int i = 0; i < 5; ++i) run(*writer, "UPDATE dbops_history.t SET v = v + 1");
  ProbeSample sample = must_probe(*s);
  run(*reader, "COMMIT");
  const auto history = value_of(sample, "history_list_length");
  ASSERT_TRUE(history) << sample.unavailable["history_list_length"];
  EXPECT_GE(*history, 5);
}

TEST(MysqlProbe, RowLockWaitsAndAbortedConnectsCount) {
  auto s = open_root(server());
  auto holder = open_root(server());
  auto waiter = open_root(server());
  ASSERT_TRUE(s && holder && waiter);
  run(*holder, "CREATE DATABASE IF NOT EXISTS dbops_locks");
  run(*holder, "CREATE OR REPLACE TABLE dbops_locks.t (id INT PRIMARY KEY, v INT)");
  run(*holder, "INSERT INTO dbops_locks.t VALUES (1, 0)");
  const ProbeSample before = must_probe(*s);

  run(*holder, "BEGIN");
  run(*holder, "UPDATE dbops_locks.t SET v = 1 WHERE id = 1");
  run(*waiter, "SET SESSION innodb_lock_wait_timeout = 1");
  auto blocked = waiter->exec("UPDATE dbops_locks.t SET v = 2 WHERE id = 1", Deadline::after(10s));
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, ErrorCode::kConflict) << blocked.error().to_string();
  run(*holder, "ROLLBACK");

  auto bad = server().target("my-aborted");
  bad.password = Secret("not-the-password-at-all");
  ASSERT_FALSE(engine().connect(bad, ConnectOptions{}));

  const ProbeSample after = must_probe(*s);
  EXPECT_GE(*value_of(after, "innodb_row_lock_waits"),
            *value_of(before, "innodb_row_lock_waits") + 1);
  EXPECT_GT(*value_of(after, "innodb_row_lock_time_seconds"),
            *value_of(before, "innodb_row_lock_time_seconds") + 0.5);
  EXPECT_GE(*value_of(after, "aborted_connects"), *value_of(before, "aborted_connects") + 1);
}

// Replication: role and lag on a primary/replica pair of our own.
class MysqlReplication : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pair = extra_servers().pair.get();
    ASSERT_TRUE(pair) << pair.error().to_string();
    pair_ = new launcher::ReplicatedPair(std::move(*pair));
  }
  static void TearDownTestSuite() {
    delete pair_;
    pair_ = nullptr;
  }
  static launcher::ReplicatedPair* pair_;
};
launcher::ReplicatedPair* MysqlReplication::pair_ = nullptr;

TEST_F(MysqlReplication, RoleLagAndBacklog) {
  ASSERT_NE(pair_, nullptr);
  auto primary = open_root(*pair_->primary);
  auto replica = open_root(*pair_->replica);
  ASSERT_TRUE(primary && replica);

  run(*primary, "CREATE DATABASE dbops_repl");
  run(*primary, "CREATE TABLE dbops_repl.t (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT)");
  ProbeSample p = must_probe(*primary);
  EXPECT_EQ(p.role, "primary");
  EXPECT_EQ(value_of(p, "replicas_connected"), 1);

  // Caught up: no lag in seconds, bytes or transactions.
  ProbeSample r;
  ASSERT_TRUE(eventually([&] {
    r = must_probe(*replica);
    return r.replication_lag_bytes == 0.0 &&
           value_of(r, "replication_backlog_transactions") == 0.0 &&
           r.info["gtid_slave_pos"] == p.info["gtid_binlog_pos"];
  })) << r.info["gtid_slave_pos"]
      << " vs " << p.info["gtid_binlog_pos"];
  EXPECT_EQ(r.role, "replica");
  ASSERT_TRUE(r.replication_lag_seconds) << r.unavailable["replication_lag_seconds"];
  EXPECT_EQ(*r.replication_lag_seconds, 0);
  EXPECT_EQ(r.info["replica_sql_running"], "Yes");
  EXPECT_EQ(r.info["replica_source"], "127.0.0.1:" + std::to_string(pair_->primary->port()));

  // The SQL thread stops, the primary writes: the IO thread still receives.
  run(*replica, "STOP SLAVE SQL_THREAD");
  for (int i = 0; i < 3; ++i) {
    run(*primary,
        "INSERT INTO dbops_repl.t (v) SELECT REPEAT('y', 1000) FROM dbops_repl.seq_1_to_50");
  }
  const std::string primary_pos = scalar(*primary, "SELECT @@gtid_binlog_pos");
  ASSERT_TRUE(eventually([&] {
    r = must_probe(*replica);
    return r.info["gtid_io_pos"] == primary_pos;
  })) << r.info["gtid_io_pos"]
      << " vs " << primary_pos;
  EXPECT_EQ(r.role, "replica");
  EXPECT_EQ(r.info["replica_sql_running"], "No");
  EXPECT_FALSE(r.replication_lag_seconds);
  EXPECT_NE(r.unavailable["replication_lag_seconds"].find("SQL thread is not running"),
            std::string::npos)
      << r.unavailable["replication_lag_seconds"];
  ASSERT_TRUE(r.replication_lag_bytes) << r.unavailable["replication_lag_bytes"];
  EXPECT_GT(*r.replication_lag_bytes, 150'000);  // three transactions of 50 kB
  EXPECT_EQ(value_of(r, "replication_backlog_transactions"), 3);

  // Started again, it catches up.
  run(*replica, "START SLAVE SQL_THREAD");
  ASSERT_TRUE(eventually([&] {
    r = must_probe(*replica);
    return r.replication_lag_bytes == 0.0 && value_of(r, "replication_backlog_transactions") == 0.0;
  }));
  ASSERT_TRUE(r.replication_lag_seconds) << r.unavailable["replication_lag_seconds"];
  EXPECT_LT(*r.replication_lag_seconds, 5);
}

// ---------------------------------------------------------------------------
// 7. least privilege

void create_monitor(SqlSession& admin, const std::string& password) {
  run(admin, "DROP USER IF EXISTS dbops_mon@'127.0.0.1'");
  run(admin, "CREATE USER dbops_mon@'127.0.0.1' IDENTIFIED BY '" + password + "'");
  run(admin, "GRANT PROCESS, SLAVE MONITOR ON *.* TO dbops_mon@'127.0.0.1'");
}

config::Target monitor_target(const launcher::Instance& instance, const std::string& password) {
  auto t = instance.target("my-mon");
  t.user = "dbops_mon";
  t.password = Secret(password);
  t.database = "";
  return t;
}

TEST(MysqlLeastPrivilege, MonitoringUserGetsEverythingButTheDataSize) {
  auto admin = open_root(server());
  ASSERT_TRUE(admin);
  const std::string password = "mon-pw-" + std::to_string(::getpid());
  create_monitor(*admin, password);
  auto mon = open(monitor_target(server(), password));
  ASSERT_TRUE(mon);
  const ProbeSample s = must_probe(*mon);
  EXPECT_EQ(s.role, "primary");
  EXPECT_TRUE(s.connections);
  EXPECT_TRUE(s.max_connections);
  EXPECT_TRUE(s.uptime_seconds);
  EXPECT_FALSE(s.server_version.empty());
  for (const char* m : {"threads_running", "innodb_buffer_pool_hit_ratio", "history_list_length",
                        "questions", "slow_queries", "aborted_connects", "innodb_row_lock_waits"}) {
    EXPECT_TRUE(value_of(s, m)) << m;
  }
  // Documented: the size needs SELECT on the data; lag needs a replica.
  std::set<std::string> unavailable;
  for (const auto& [field, why] : s.unavailable) unavailable.insert(field);
  EXPECT_EQ(unavailable, (std::set<std::string>{"database_size_bytes", "replication_lag_bytes",
                                                "replication_lag_seconds"}));
  EXPECT_FALSE(s.database_size_bytes);
  EXPECT_NE(s.unavailable.at("database_size_bytes").find("needs SELECT"), std::string::npos);
}

TEST(MysqlLeastPrivilege, UserWithoutPrivilegesStillGetsAProbe) {
  auto admin = open_root(server());
  ASSERT_TRUE(admin);
  run(*admin, "DROP USER IF EXISTS dbops_nobody@'127.0.0.1'");
  run(*admin, "CREATE USER dbops_nobody@'127.0.0.1' IDENTIFIED BY 'nobody-pw'");
  auto t = server().target("my-nobody");
  t.user = "dbops_nobody";
  t.password = Secret("nobody-pw");
  auto s = open(t);
  ASSERT_TRUE(s);
  auto status = [&](const char* name) {
    return std::stoll(scalar(*admin, std::string("SELECT VARIABLE_VALUE FROM "
                                                 "information_schema.GLOBAL_STATUS WHERE "
                                                 "VARIABLE_NAME = '") +
                                         name + "'"));
  };
  const auto first = status("COM_SHOW_SLAVE_STATUS");
  const ProbeSample sample = must_probe(*s);
  EXPECT_TRUE(sample.connections);
  EXPECT_TRUE(sample.uptime_seconds);
  EXPECT_TRUE(value_of(sample, "threads_running"));
  // MariaDB's status variable stands in for INNODB_METRICS without PROCESS.
  EXPECT_TRUE(value_of(sample, "history_list_length"));
  EXPECT_EQ(sample.role, "");
  EXPECT_NE(sample.unavailable.at("role").find("REPLICA MONITOR"), std::string::npos);
  EXPECT_TRUE(sample.unavailable.contains("database_size_bytes"));

  // The refusal is remembered: the next round does not send the statement.
  const auto second = status("COM_SHOW_SLAVE_STATUS");
  EXPECT_GT(second, first);
  const ProbeSample again = must_probe(*s);
  EXPECT_EQ(status("COM_SHOW_SLAVE_STATUS"), second);
  EXPECT_EQ(again.unavailable, sample.unavailable);
  EXPECT_TRUE(again.connections);
}

TEST_F(MysqlReplication, MonitoringUserSeesReplicaRoleAndLag) {
  ASSERT_NE(pair_, nullptr);
  auto primary = open_root(*pair_->primary);
  auto replica = open_root(*pair_->replica);
  ASSERT_TRUE(primary && replica);
  const std::string password = "mon-pw-repl";
  create_monitor(*primary, password);  // replicated to the replica
  // The replica has applied the account and its grant.
  const std::string pos = scalar(*primary, "SELECT @@gtid_binlog_pos");
  ASSERT_EQ(scalar(*replica, "SELECT MASTER_GTID_WAIT('" + pos + "', 20)"), "0");
  auto mon = open(monitor_target(*pair_->replica, password));
  ASSERT_TRUE(mon);
  const ProbeSample s = must_probe(*mon);
  EXPECT_EQ(s.role, "replica");
  EXPECT_TRUE(s.replication_lag_seconds) << s.unavailable.count("replication_lag_seconds");
  EXPECT_TRUE(s.replication_lag_bytes);
  EXPECT_TRUE(value_of(s, "replication_backlog_transactions"));
  EXPECT_FALSE(s.unavailable.contains("role"));
  // Only the size needs more than PROCESS and REPLICA MONITOR.
  std::set<std::string> unavailable;
  for (const auto& [field, why] : s.unavailable) unavailable.insert(field);
  EXPECT_EQ(unavailable, std::set<std::string>{"database_size_bytes"});
}

}  // namespace
}  // namespace dbops::engine::mysql
