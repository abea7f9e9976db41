// Redis engine against real servers: the binary's shared instance
// (support/instances.hpp) and, where a test freezes, stops or replicates a
// server, instances of its own from the launcher.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/secret.hpp"
#include "core/strings.hpp"
#include "engine/engine.hpp"
#include "engine/launcher/launcher.hpp"
#include "engine/redis/redis_probe.hpp"
#include "engine/redis/redis_session.hpp"
#include "support/instances.hpp"
#include "support/net.hpp"
#include "support/probe_checks.hpp"

using dbops::testing::closed_port;
using dbops::testing::metric;
using dbops::testing::SilentListener;

namespace dbops::engine {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const Engine& redis_engine() {
  const Engine* e = Registry::global().find("redis");
  EXPECT_NE(e, nullptr);
  return *e;
}

launcher::Instance& shared() {
  return dbops::testing::shared_redis();
}

config::Target shared_target(std::string name = "redis-it") {
  return shared().target(std::move(name));
}

Result<std::unique_ptr<CommandSession>> open(const config::Target& target,
                                             std::chrono::milliseconds timeout = 5s) {
  ConnectOptions options;
  options.connect_timeout = timeout;
  auto session = redis_engine().connect(target, options);
  if (!session) return std::unexpected(session.error());
  auto* commands = dynamic_cast<CommandSession*>(session->get());
  if (!commands) return fail(ErrorCode::kInternal, "redis connect did not return a CommandSession");
  session->release();
  return std::unique_ptr<CommandSession>(commands);
}

std::unique_ptr<CommandSession> must_open(const config::Target& target) {
  auto s = open(target);
  EXPECT_TRUE(s) << (s ? "" : s.error().to_string());
  return s ? std::move(*s) : nullptr;
}

Result<Reply> call(CommandSession& s, std::vector<std::string> argv,
                   std::chrono::milliseconds timeout = 5s) {
  return s.command(argv, Deadline::after(timeout));
}

// A command that must succeed with a non-error reply.
Reply run(CommandSession& s, std::vector<std::string> argv) {
  const std::string name = argv.empty() ? "" : argv[0];
  auto r = call(s, std::move(argv));
  EXPECT_TRUE(r) << name << ": " << (r ? "" : r.error().to_string());
  if (!r) return Reply{};
  EXPECT_NE(r->type, Reply::Type::kError) << name << ": " << r->str;
  return *r;
}

ProbeSample probe(Session& s) {
  auto sample = redis_engine().health_probe()->probe(s, Deadline::after(5s));
  EXPECT_TRUE(sample) << (sample ? "" : sample.error().to_string());
  return sample ? *sample : ProbeSample{};
}

std::string config_get(CommandSession& s, const std::string& key) {
  Reply r = run(s, {"CONFIG", "GET", key});
  if (r.type != Reply::Type::kArray || r.elements.size() != 2) return "";
  return r.elements[1].str;
}

config::Target silent_target(const SilentListener& l) {
  config::Target t;
  t.name = "silent";
  t.engine = "redis";
  t.host = "127.0.0.1";
  t.port = l.port();
  return t;
}

// --- 1. connect ------------------------------------------------------------

TEST(RedisConnect, StructuredFields) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->engine(), "redis");
  EXPECT_TRUE(s->is_open());
  EXPECT_FALSE(s->server_version().empty());
  EXPECT_TRUE(s->ping(Deadline::after(5s)));
  // The session names itself for CLIENT LIST.
  Reply info = run(*s, {"CLIENT", "INFO"});
  EXPECT_NE(info.str.find("name=dbops "), std::string::npos) << info.str;
  EXPECT_NE(info.str.find(" db=0 "), std::string::npos) << info.str;
}

TEST(RedisConnect, UnixSocket) {
  // The launcher's instances also listen on <directory>/redis.sock.
  auto t = shared_target("redis-unix");
  t.host = (shared().directory() / "redis.sock").string();
  t.port = 0;
  auto s = must_open(t);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->ping(Deadline::after(5s)));
  Reply info = run(*s, {"CLIENT", "INFO"});
  EXPECT_NE(info.str.find("laddr=" + t.host), std::string::npos) << info.str;
}

TEST(RedisConnect, DsnWithUserAndDatabase) {
  const auto base = shared_target();
  config::Target t;
  t.name = "redis-dsn";
  t.engine = "redis";
  t.dsn = Secret("redis://" + base.user + ":" + percent_encode(base.password.reveal()) +
                 "@127.0.0.1:" + std::to_string(base.port) + "/4");
  auto s = must_open(t);
  ASSERT_TRUE(s);
  EXPECT_NE(run(*s, {"CLIENT", "INFO"}).str.find(" db=4 "), std::string::npos);

  t.dsn = Secret("redis://:" + percent_encode(base.password.reveal()) +
                 "@127.0.0.1:" + std::to_string(base.port) + "?db=5");
  s = must_open(t);
  ASSERT_TRUE(s);
  EXPECT_NE(run(*s, {"CLIENT", "INFO"}).str.find(" db=5 "), std::string::npos);
}

TEST(RedisConnect, WrongPasswordIsUnavailableAndDoesNotLeak) {
  // Neither the password nor "[redacted]" may appear: the password must never
  // reach the message in the first place, scrubbed or not.
  const std::string wrong = "wrong-Pass-8c1f";
  auto t = shared_target();
  t.password = Secret(wrong);
  const auto start = Clock::now();
  auto s = open(t);
  ASSERT_FALSE(s);
  EXPECT_LT(seconds_since(start), 2.0);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  std::string text = s.error().to_string();
  EXPECT_NE(text.find("redis-it: connect: authentication failed"), std::string::npos) << text;
  EXPECT_NE(text.find("check the user and password"), std::string::npos) << text;
  EXPECT_EQ(text.find(wrong), std::string::npos) << text;
  EXPECT_EQ(text.find(kRedacted), std::string::npos) << text;
  // The same through a DSN.
  t.password = Secret();
  t.dsn = Secret("redis://default:" + wrong + "@127.0.0.1:" + std::to_string(t.port) + "/0");
  s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  text = s.error().to_string();
  EXPECT_EQ(text.find(wrong), std::string::npos) << text;
  EXPECT_EQ(text.find(kRedacted), std::string::npos) << text;

  // No password at all on a server that needs one.
  t = shared_target();
  t.user.clear();
  t.password = Secret();
  s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("requires a password"), std::string::npos)
      << s.error().to_string();
}

TEST(RedisConnect, RefusedPortFailsFast) {
  config::Target t;
  t.name = "nobody-home";
  t.engine = "redis";
  t.host = "127.0.0.1";
  t.port = closed_port();
  const auto start = Clock::now();
  auto s = open(t, 5s);
  ASSERT_FALSE(s);
  EXPECT_LT(seconds_since(start), 1.0);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(s.error().message.find("connection refused"), std::string::npos)
      << s.error().to_string();
  EXPECT_NE(s.error().to_string().find("nobody-home: connect: "), std::string::npos);
}

TEST(RedisConnect, PeerThatHangsUpIsUnavailable) {
  SilentListener listener(/*close_at_once=*/true);
  auto s = open(silent_target(listener), 5s);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable) << s.error().to_string();
}

TEST(RedisConnect, TlsIsUnsupportedInThisBuild) {
  config::Target t;
  t.name = "tls";
  t.engine = "redis";
  t.dsn = Secret("rediss://:pw@127.0.0.1:6380/0");
  auto s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
  EXPECT_EQ(s.error().message, redis::kNoTlsMessage);

  t = shared_target();
  t.tls.mode = "require";
  s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
  t.tls.mode = "prefer";  // falls back to plain, as libpq's prefer does
  EXPECT_TRUE(open(t));

  bool row = false;
  for (const auto& c : redis_engine().capabilities()) {
    if (c.capability == "connect" && c.variant.find("TLS") != std::string::npos) {
      row = true;
      EXPECT_FALSE(c.implemented);
      EXPECT_EQ(c.note, redis::kNoTlsMessage);
    }
    if (c.variant.empty()) {
      EXPECT_TRUE(c.implemented) << c.capability;
      EXPECT_TRUE(c.live_tested) << c.capability;
    }
  }
  EXPECT_TRUE(row);
  EXPECT_EQ(redis_engine().client_library(), "hiredis 0.14.1");
}

TEST(RedisConnect, BadTargetsAreConfigErrors) {
  config::Target t;
  t.name = "bad";
  t.engine = "redis";
  t.dsn = Secret("redis://127.0.0.1:6379/zero");
  auto s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kConfig);
  t.dsn = Secret("redis://127.0.0.1:6379/0?timeout=5");
  s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kConfig);
  EXPECT_NE(s.error().message.find("timeout"), std::string::npos);
  // A database that does not exist.
  t = shared_target();
  t.database = "4000";
  s = open(t);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kConfig);
  EXPECT_NE(s.error().message.find("cannot select database 4000"), std::string::npos);
}

// --- 2. commands -----------------------------------------------------------

TEST(RedisCommand, ArgumentsRoundTripUnchanged) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  const std::string key = "it:args key with spaces";
  const std::string value =
      std::string("quote\" single' back\\slash \r\nSET it:injected 1\r\n nul:") + '\0' + "end";
  EXPECT_EQ(run(*s, {"DEL", key, "it:injected", "it:n", "it:missing"}).type, Reply::Type::kInteger);
  Reply set = run(*s, {"SET", key, value});
  EXPECT_EQ(set.type, Reply::Type::kStatus);
  EXPECT_EQ(set.str, "OK");
  Reply get = run(*s, {"GET", key});
  EXPECT_EQ(get.type, Reply::Type::kString);
  EXPECT_EQ(get.str, value);
  EXPECT_EQ(get.str.size(), value.size());
  // Nothing was spliced into a second command.
  EXPECT_EQ(run(*s, {"EXISTS", "it:injected"}).integer, 0);
  // Integers, also negative.
  Reply incr = run(*s, {"INCRBY", "it:n", "41"});
  EXPECT_EQ(incr.type, Reply::Type::kInteger);
  EXPECT_EQ(incr.integer, 41);
  EXPECT_EQ(run(*s, {"INCRBY", "it:n", "-50"}).integer, -9);
  // NULL.
  EXPECT_EQ(run(*s, {"GET", "it:missing"}).type, Reply::Type::kNil);
  run(*s, {"DEL", key, "it:n"});
}

TEST(RedisCommand, NestedRepliesConvert) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  Reply r = run(*s, {"EVAL",
                     "return {1, 'two', {3, false, {'deep'}}, redis.status_reply('fine'), "
                     "redis.error_reply('ERR inner')}",
                     "0"});
  ASSERT_EQ(r.type, Reply::Type::kArray);
  ASSERT_EQ(r.elements.size(), 5u);
  EXPECT_EQ(r.elements[0].type, Reply::Type::kInteger);
  EXPECT_EQ(r.elements[0].integer, 1);
  EXPECT_EQ(r.elements[1].type, Reply::Type::kString);
  EXPECT_EQ(r.elements[1].str, "two");
  ASSERT_EQ(r.elements[2].type, Reply::Type::kArray);
  ASSERT_EQ(r.elements[2].elements.size(), 3u);
  EXPECT_EQ(r.elements[2].elements[1].type, Reply::Type::kNil);
  ASSERT_EQ(r.elements[2].elements[2].type, Reply::Type::kArray);
  EXPECT_EQ(r.elements[2].elements[2].elements.at(0).str, "deep");
  EXPECT_EQ(r.elements[3].type, Reply::Type::kStatus);
  EXPECT_EQ(r.elements[3].str, "fine");
  EXPECT_EQ(r.elements[4].type, Reply::Type::kError);
  EXPECT_EQ(r.elements[4].str, "ERR inner");
  // An empty array.
  Reply empty = run(*s, {"EVAL", "return {}", "0"});
  EXPECT_EQ(empty.type, Reply::Type::kArray);
  EXPECT_TRUE(empty.elements.empty());
}

TEST(RedisCommand, ErrorRepliesAreRepliesAndMapToCodes) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  auto r = call(*s, {"FOOBAR", "x"});
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->type, Reply::Type::kError);
  EXPECT_NE(r->str.find("unknown command"), std::string::npos) << r->str;
  auto e = redis::reply_error(*r, "FOOBAR");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, ErrorCode::kInvalidArgument);
  EXPECT_NE(e->message.find("unknown command 'FOOBAR'"), std::string::npos) << e->message;

  r = call(*s, {"GET"});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->type, Reply::Type::kError);
  EXPECT_NE(r->str.find("wrong number of arguments"), std::string::npos) << r->str;
  EXPECT_EQ(redis::reply_error(*r, "GET")->code, ErrorCode::kInvalidArgument);

  run(*s, {"SET", "it:string", "x"});
  r = call(*s, {"LPUSH", "it:string", "y"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->str.substr(0, 9), "WRONGTYPE");
  EXPECT_FALSE(redis::reply_error(run(*s, {"PING"}), "PING"));

  auto empty = s->command({}, Deadline::after(1s));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
  // The session is fine after all of that.
  EXPECT_TRUE(s->is_open());
  EXPECT_TRUE(s->ping(Deadline::after(5s)));
}

// --- 3. deadlines and cancel -----------------------------------------------

TEST(RedisDeadline, BlockingCommandIsCutAtTheDeadline) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  const auto start = Clock::now();
  auto r = call(*s, {"BLPOP", "it:never-pushed", "20"}, 1s);
  const double took = seconds_since(start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5.0);
  EXPECT_EQ(r.error().to_string().substr(0, r.error().to_string().find('\n')),
            "redis-it: command: no answer to BLPOP within 1.0s");
  EXPECT_FALSE(s->is_open());
  auto again = call(*s, {"PING"});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, ErrorCode::kUnavailable);
}

TEST(RedisDeadline, CancelFromAnotherThread) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  // cancel() with nothing running leaves the session alone.
  s->cancel();
  EXPECT_TRUE(s->is_open());
  EXPECT_TRUE(s->ping(Deadline::after(5s)));

  const auto start = Clock::now();
  auto pending = std::async(std::launch::async, [&] {
    return call(*s, {"BLPOP", "it:never-pushed", "20"}, 20s);
  });
  std::this_thread::sleep_for(300ms);
  s->cancel();
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  auto r = pending.get();
  EXPECT_LT(seconds_since(start), 3.0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled) << r.error().to_string();
  EXPECT_FALSE(s->is_open());
}

// --- 4. hung servers ---------------------------------------------------------
// --- 5. broken connections ---------------------------------------------------

TEST(RedisHung, FrozenServerTimesOutThenStoppedServerBreaksTheSession) {
  auto instance = launcher::start_redis();
  ASSERT_TRUE(instance) << instance.error().to_string();
  const auto target = (*instance)->target("frozen");
  auto before = must_open(target);
  ASSERT_TRUE(before);
  auto victim = must_open(target);
  ASSERT_TRUE(victim);
  ASSERT_TRUE((*instance)->pause());

  auto start = Clock::now();
  auto s = open(target, 1s);
  double took = seconds_since(start);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kTimeout) << s.error().to_string();
  EXPECT_EQ(s.error().message, "no answer within 1.0s");
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5.0);

  start = Clock::now();
  auto r = call(*before, {"GET", "x"}, 1s);
  took = seconds_since(start);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout);
  EXPECT_LT(took, 5.0);
  EXPECT_FALSE(before->is_open());

  ASSERT_TRUE((*instance)->resume());
  auto after = open(target, 5s);
  ASSERT_TRUE(after) << after.error().to_string();
  EXPECT_TRUE((*after)->ping(Deadline::after(5s)));

  // The server goes away: the next call fails and the session says so.
  ASSERT_TRUE(victim->ping(Deadline::after(5s)));
  ASSERT_TRUE((*instance)->stop());
  auto gone = victim->ping(Deadline::after(5s));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::kUnavailable) << gone.error().to_string();
  EXPECT_FALSE(victim->is_open());
}

TEST(RedisHung, ListenerThatNeverAnswersTimesOut) {
  SilentListener listener;
  const auto start = Clock::now();
  auto s = open(silent_target(listener), 1s);
  const double took = seconds_since(start);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, ErrorCode::kTimeout) << s.error().to_string();
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 5.0);
  EXPECT_NE(s.error().to_string().find("silent: connect: no answer within 1.0s"),
            std::string::npos);
}

TEST(RedisBroken, KilledServerSideMakesTheSessionClosed) {
  auto victim = must_open(shared_target());
  auto killer = must_open(shared_target());
  ASSERT_TRUE(victim && killer);
  Reply id = run(*victim, {"CLIENT", "ID"});
  ASSERT_EQ(id.type, Reply::Type::kInteger);
  EXPECT_EQ(run(*killer, {"CLIENT", "KILL", "ID", std::to_string(id.integer)}).integer, 1);
  auto r = call(*victim, {"PING"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message.find("connection lost"), std::string::npos) << r.error().message;
  EXPECT_FALSE(victim->is_open());
}

// --- 6. the probe ------------------------------------------------------------

TEST(RedisProbe, EveryFieldFollowsWhatTheTestDoes) {
  auto s = must_open(shared_target());
  ASSERT_TRUE(s);
  const auto first = probe(*s);
  const auto first_at = Clock::now();

  // Identity and role.
  EXPECT_EQ(first.server_version, s->server_version());
  EXPECT_EQ(first.server_version.substr(0, 2), "7.");
  EXPECT_EQ(first.role, "primary");
  EXPECT_EQ(metric(first, "connected_replicas"), 0);
  EXPECT_NE(first.unavailable.at("replication_lag_seconds").find("not a replica"),
            std::string::npos);
  EXPECT_TRUE(first.unavailable.count("replication_lag_bytes"));
  EXPECT_FALSE(first.replication_lag_seconds);
  EXPECT_EQ(first.info.at("redis_mode"), "standalone");
  EXPECT_EQ(first.info.at("aof_enabled"), config_get(*s, "appendonly") == "yes" ? "yes" : "no");
  EXPECT_EQ(first.info.at("maxmemory_policy"), config_get(*s, "maxmemory-policy"));
  EXPECT_EQ(first.find_metric("evicted_keys")->kind, ProbeMetric::Kind::kCounter);
  EXPECT_EQ(first.find_metric("blocked_clients")->kind, ProbeMetric::Kind::kGauge);

  // connected_clients rises with more sessions.
  {
    std::vector<std::unique_ptr<CommandSession>> more;
    for (int i = 0; i < 3; ++i) more.push_back(must_open(shared_target()));
    const auto p = probe(*s);
    EXPECT_GE(*p.connections, *first.connections + 3);
  }

  // Keys per database.
  {
    auto t = shared_target();
    t.database = "7";
    auto db7 = must_open(t);
    ASSERT_TRUE(db7);
    run(*db7, {"FLUSHDB"});
    for (int i = 0; i < 5; ++i) run(*db7, {"SET", "k" + std::to_string(i), "v"});
    run(*db7, {"EXPIRE", "k0", "600"});
    run(*db7, {"EXPIRE", "k1", "600"});
    const auto p = probe(*s);
    EXPECT_EQ(metric(p, "db7_keys"), 5);
    EXPECT_EQ(metric(p, "db7_expires"), 2);
    EXPECT_GE(metric(p, "keys"), 5);
    EXPECT_NE(p.info.at("keyspace").find("db7:keys=5,expires=2,"), std::string::npos)
        << p.info.at("keyspace");
    run(*db7, {"FLUSHDB"});
    EXPECT_EQ(probe(*s).find_metric("db7_keys"), nullptr);
  }

  // used_memory (database_size_bytes) grows with a large value.
  {
    const auto before = probe(*s);
    run(*s, {"SET", "it:big", std::string(4 << 20, 'x')});
    const auto after = probe(*s);
    EXPECT_GE(*after.database_size_bytes - *before.database_size_bytes, 4'000'000);
    EXPECT_EQ(metric(after, "used_memory_bytes"), *after.database_size_bytes);
    run(*s, {"DEL", "it:big"});
  }

  // Expired keys, commands processed.
  {
    const auto before = probe(*s);
    run(*s, {"SET", "it:short", "v", "PX", "1"});
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(run(*s, {"GET", "it:short"}).type, Reply::Type::kNil);
    for (int i = 0; i < 10; ++i) run(*s, {"PING"});
    const auto after = probe(*s);
    EXPECT_GE(metric(after, "expired_keys") - metric(before, "expired_keys"), 1);
    EXPECT_GE(metric(after, "commands_processed") - metric(before, "commands_processed"), 12);
  }

  // max_connections follows maxclients; a refused connection is counted.
  {
    const std::string old = config_get(*s, "maxclients");
    const auto before = probe(*s);
    EXPECT_EQ(*before.max_connections, std::stoll(old));
    run(*s, {"CONFIG", "SET", "maxclients", std::to_string(*before.connections)});
    auto refused = open(shared_target());
    run(*s, {"CONFIG", "SET", "maxclients", old});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(refused.error().message.find("the server refused the connection: ERR max number "
                                           "of clients reached"),
              0u)
        << refused.error().to_string();
    const auto after = probe(*s);
    EXPECT_EQ(*after.max_connections, std::stoll(old));
    EXPECT_GE(metric(after, "rejected_connections") - metric(before, "rejected_connections"), 1);
  }

  // Forced eviction.
  {
    const std::string old_max = config_get(*s, "maxmemory");
    const std::string old_policy = config_get(*s, "maxmemory-policy");
    auto t = shared_target();
    t.database = "8";
    auto db8 = must_open(t);
    ASSERT_TRUE(db8);
    const auto before = probe(*s);
    const auto limit = *before.database_size_bytes + (2 << 20);
    run(*s, {"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"});
    run(*s, {"CONFIG", "SET", "maxmemory", std::to_string(limit)});
    // Write 100 kB values until the server evicts (at most 40 MB).
    const std::string chunk(100'000, 'e');
    int written = 0;
    ProbeSample after;
    while (written < 400) {
      for (int i = 0; i < 10; ++i) run(*db8, {"SET", "evict:" + std::to_string(written++), chunk});
      after = probe(*s);
      if (metric(after, "evicted_keys") > metric(before, "evicted_keys")) break;
    }
    run(*s, {"CONFIG", "SET", "maxmemory", old_max});
    run(*s, {"CONFIG", "SET", "maxmemory-policy", old_policy});
    run(*db8, {"FLUSHDB"});
    EXPECT_GT(metric(after, "evicted_keys") - metric(before, "evicted_keys"), 0);
    EXPECT_LT(metric(after, "db8_keys"), written);
    EXPECT_EQ(metric(after, "maxmemory_bytes"), static_cast<double>(limit));
    EXPECT_GT(metric(after, "memory_used_ratio"), 0.5);
    EXPECT_LT(metric(after, "memory_used_ratio"), 1.1);
    EXPECT_EQ(after.info.at("maxmemory_policy"), "allkeys-lru");
    if (old_max == "0") {
      EXPECT_EQ(probe(*s).find_metric("memory_used_ratio"), nullptr);
    }
  }

  // BGSAVE: changes since the last save drop to 0, the status is ok.
  {
    run(*s, {"SET", "it:saved", "v"});
    const auto before = probe(*s);
    EXPECT_GE(metric(before, "rdb_changes_since_last_save"), 1);
    for (int attempt = 0; attempt < 50; ++attempt) {
      auto r = call(*s, {"BGSAVE"});
      ASSERT_TRUE(r);
      if (r->type != Reply::Type::kError) break;
      std::this_thread::sleep_for(100ms);  // another save is running
    }
    ProbeSample after;
    for (int i = 0; i < 100; ++i) {
      after = probe(*s);
      if (metric(after, "rdb_last_save_timestamp_seconds") >
              metric(before, "rdb_last_save_timestamp_seconds") ||
          metric(after, "rdb_changes_since_last_save") == 0) {
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(after.info.at("rdb_last_bgsave_status"), "ok");
    EXPECT_EQ(metric(after, "rdb_changes_since_last_save"), 0);
    run(*s, {"DEL", "it:saved"});
  }

  // blocked_clients while a BLPOP waits on another connection.
  {
    auto waiter = must_open(shared_target());
    ASSERT_TRUE(waiter);
    auto pending = std::async(std::launch::async, [&] {
      return call(*waiter, {"BLPOP", "it:queue", "10"}, 15s);
    });
    double blocked = 0;
    for (int i = 0; i < 100 && blocked < 1; ++i) {
      blocked = metric(probe(*s), "blocked_clients");
      if (blocked < 1) std::this_thread::sleep_for(20ms);
    }
    EXPECT_GE(blocked, 1);
    run(*s, {"LPUSH", "it:queue", "wake"});
    auto popped = pending.get();
    ASSERT_TRUE(popped);
    ASSERT_EQ(popped->type, Reply::Type::kArray);
    EXPECT_EQ(popped->elements.at(1).str, "wake");
    EXPECT_EQ(metric(probe(*s), "blocked_clients"), blocked - 1);
  }

  // Uptime increases.
  const auto elapsed = Clock::now() - first_at;
  if (elapsed < 1100ms) std::this_thread::sleep_for(1100ms - elapsed);
  const auto last = probe(*s);
  EXPECT_GT(*last.uptime_seconds, *first.uptime_seconds);
  EXPECT_TRUE(last.unavailable.count("max_connections") == 0);
}

TEST(RedisProbe, PrimaryAndReplica) {
  launcher::Options options;
  options.settings.emplace_back("enable-debug-command", "yes");
  // The replica's first sync starts at once instead of after 5 s.
  options.settings.emplace_back("repl-diskless-sync-delay", "0");
  auto pair = launcher::start_redis_replicated(options);
  ASSERT_TRUE(pair) << pair.error().to_string();
  auto primary = must_open(pair->primary->target("primary"));
  auto replica = must_open(pair->replica->target("replica"));
  ASSERT_TRUE(primary && replica);
  for (int i = 0; i < 200; ++i) {
    if (probe(*replica).info["master_link_status"] == "up") break;
    std::this_thread::sleep_for(50ms);
  }

  // No PINGs from the primary, so that the replica's idle time only grows.
  run(*primary, {"CONFIG", "SET", "repl-ping-replica-period", "60"});
  run(*primary, {"SET", "it:repl", "1"});
  EXPECT_EQ(run(*primary, {"WAIT", "1", "5000"}).integer, 1);
  const auto synced_at = Clock::now();

  auto p = probe(*primary);
  EXPECT_EQ(p.role, "primary");
  EXPECT_EQ(metric(p, "connected_replicas"), 1);
  EXPECT_NE(p.info.at("replicas").find(":" + std::to_string(pair->replica->port()) + " online"),
            std::string::npos)
      << p.info.at("replicas");

  auto r = probe(*replica);
  EXPECT_EQ(r.role, "replica");
  EXPECT_EQ(r.info.at("master_link_status"), "up");
  EXPECT_EQ(r.info.at("primary"), "127.0.0.1:" + std::to_string(pair->primary->port()));
  ASSERT_TRUE(r.replication_lag_bytes);
  EXPECT_EQ(*r.replication_lag_bytes, 0);
  ASSERT_TRUE(r.replication_lag_seconds);
  EXPECT_LE(*r.replication_lag_seconds, 1);

  // Seconds: the primary stays silent for 2.5 s.
  std::this_thread::sleep_for(2500ms - (Clock::now() - synced_at));
  r = probe(*replica);
  ASSERT_TRUE(r.replication_lag_seconds);
  EXPECT_GE(*r.replication_lag_seconds, 2);
  EXPECT_LT(*r.replication_lag_seconds, 10);

  // Bytes: the replica sleeps (DEBUG SLEEP blocks its event loop, so it
  // cannot acknowledge) while the primary takes a 200 kB write; the primary
  // sees the replica behind by at least that much.
  auto sleeper = must_open(pair->replica->target("replica"));
  auto checker = must_open(pair->replica->target("replica"));
  ASSERT_TRUE(sleeper && checker);
  auto sleeping = std::async(std::launch::async, [&] {
    return call(*sleeper, {"DEBUG", "SLEEP", "1.5"}, 10s);
  });
  bool asleep = false;
  for (int i = 0; i < 50 && !asleep; ++i) {
    auto pong = call(*checker, {"PING"}, 200ms);
    if (!pong && pong.error().code == ErrorCode::kTimeout) asleep = true;
    if (!asleep) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(asleep) << "the replica never stopped answering";
  run(*primary, {"SET", "it:burst", std::string(200'000, 'b')});
  p = probe(*primary);
  EXPECT_GE(metric(p, "replica_lag_bytes_max"), 200'000);
  auto slept = sleeping.get();
  ASSERT_TRUE(slept) << slept.error().to_string();
  EXPECT_EQ(slept->str, "OK");
  EXPECT_EQ(run(*primary, {"WAIT", "1", "5000"}).integer, 1);
  p = probe(*primary);
  EXPECT_LT(metric(p, "replica_lag_bytes_max"), 200'000);

  // The primary goes away: the link is down, lag seconds count from then.
  ASSERT_TRUE(pair->primary->stop());
  for (int i = 0; i < 100; ++i) {
    r = probe(*replica);
    if (r.info["master_link_status"] == "down") break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(r.info.at("master_link_status"), "down");
  ASSERT_TRUE(r.replication_lag_seconds);
  EXPECT_LT(*r.replication_lag_seconds, 5);
  EXPECT_NE(r.unavailable.at("replication_lag_bytes").find("link to the primary is down"),
            std::string::npos);
}

TEST(RedisProbe, InfoParsingEdgeCases) {
  // A replica still in its first sync, and a primary with a replica that is
  // not online yet: neither invents a lag.
  auto s = redis::sample_from_info(
      "# Server\r\nredis_version:6.2.1\r\nuptime_in_seconds:12\r\n# Clients\r\n"
      "connected_clients:3\r\n# Replication\r\nrole:slave\r\nmaster_host:10.0.0.1\r\n"
      "master_port:6379\r\nmaster_link_status:down\r\nmaster_last_io_seconds_ago:-1\r\n"
      "master_sync_in_progress:1\r\nslave_repl_offset:1\r\nmaster_link_down_since_seconds:-1\r\n"
      "master_repl_offset:0\r\n");
  EXPECT_EQ(s.server_version, "6.2.1");
  EXPECT_EQ(s.role, "replica");
  EXPECT_FALSE(s.replication_lag_seconds);
  EXPECT_FALSE(s.replication_lag_bytes);
  EXPECT_NE(s.unavailable.at("replication_lag_bytes").find("initial sync"), std::string::npos);
  EXPECT_FALSE(s.max_connections);  // the probe asks CONFIG GET for Redis < 7
  EXPECT_EQ(s.info.at("primary"), "10.0.0.1:6379");

  s = redis::sample_from_info(
      "role:master\nconnected_slaves:2\nmaster_repl_offset:5000\n"
      "slave0:ip=10.0.0.2,port=6379,state=online,offset=4000,lag=1\n"
      "slave1:ip=10.0.0.3,port=6379,state=wait_bgsave,offset=0,lag=0\n"
      "used_memory:100\nmaxmemory:400\ndb0:keys=3,expires=1,avg_ttl=5\n"
      "db12:keys=4,expires=0,avg_ttl=0\n");
  EXPECT_EQ(s.role, "primary");
  EXPECT_EQ(metric(s, "connected_replicas"), 2);
  EXPECT_EQ(metric(s, "replica_lag_bytes_max"), 1000);
  EXPECT_EQ(metric(s, "replica_lag_seconds_max"), 1);
  EXPECT_EQ(metric(s, "memory_used_ratio"), 0.25);
  EXPECT_EQ(metric(s, "keys"), 7);
  EXPECT_EQ(metric(s, "db12_keys"), 4);
  EXPECT_EQ(s.info.at("replicas"), "10.0.0.2:6379 online, 10.0.0.3:6379 wait_bgsave");
}

// --- 7. least privilege ----------------------------------------------------------

TEST(RedisLeastPrivilege, MonitoringUserGetsEveryField) {
  auto admin = must_open(shared_target());
  ASSERT_TRUE(admin);
  const std::string mon_pw = "mon-Secret-41d7";
  redact::register_secret(mon_pw);
  run(*admin, {"ACL", "SETUSER", "dbops_mon", "reset", "on", ">" + mon_pw, "+info", "+ping",
               "+config|get"});
  run(*admin, {"ACL", "SETUSER", "dbops_nothing", "reset", "on", ">" + mon_pw, "+ping"});
  auto t = shared_target("redis-mon");
  t.user = "dbops_mon";
  t.password = Secret(mon_pw);
  auto mon = must_open(t);
  ASSERT_TRUE(mon);
  const auto full = probe(*admin);
  const auto limited = probe(*mon);
  EXPECT_EQ(limited.server_version, full.server_version);
  EXPECT_EQ(limited.role, full.role);
  EXPECT_EQ(limited.max_connections, full.max_connections);
  EXPECT_TRUE(limited.connections && limited.database_size_bytes && limited.uptime_seconds);
  // Only the replica-only fields are unavailable, as for the superuser.
  std::vector<std::string> unavailable;
  for (const auto& [field, why] : limited.unavailable) unavailable.push_back(field);
  EXPECT_EQ(unavailable,
            (std::vector<std::string>{"replication_lag_bytes", "replication_lag_seconds"}));
  std::vector<std::string> full_metrics, limited_metrics;
  for (const auto& m : full.metrics) full_metrics.push_back(m.name);
  for (const auto& m : limited.metrics) limited_metrics.push_back(m.name);
  EXPECT_EQ(limited_metrics, full_metrics);
  // Denied commands come back as NOPERM replies.
  auto denied = call(*mon, {"SET", "x", "y"});
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->str.substr(0, 6), "NOPERM");
  EXPECT_EQ(redis::reply_error(*denied, "SET")->code, ErrorCode::kUnavailable);

  // A user without +info: the probe still answers, every field says why not.
  t.user = "dbops_nothing";
  auto nothing = must_open(t);
  ASSERT_TRUE(nothing);
  const auto none = probe(*nothing);
  EXPECT_FALSE(none.connections);
  EXPECT_NE(none.unavailable.at("connections").find("+info"), std::string::npos)
      << none.unavailable.at("connections");
  EXPECT_NE(none.unavailable.at("uptime_seconds").find("NOPERM"), std::string::npos);

  run(*admin, {"ACL", "DELUSER", "dbops_mon", "dbops_nothing"});
}

}  // namespace
}  // namespace dbops::engine
