#include "core/secret.hpp"

#include <gtest/gtest.h>

#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/uri.hpp"

namespace dbops {
namespace {

TEST(Secret, PrintsRedacted) {
  Secret s("correct horse battery");
  EXPECT_EQ(s.redacted(), "[redacted]");
  EXPECT_EQ(s.reveal(), "correct horse battery");
  EXPECT_EQ(Secret().redacted(), "");
}

TEST(Redact, ScrubsClearPercentAndBase64Forms) {
  const std::string pw = "p@ss:w/rd%-scrub-1";
  Secret s(pw);
  EXPECT_EQ(redact::scrub("a " + pw + " b"), "a [redacted] b");
  EXPECT_EQ(redact::scrub("x" + percent_encode(pw) + "y"), "x[redacted]y");
  EXPECT_EQ(redact::scrub("x" + to_lower(percent_encode(pw)) + "y"), "x[redacted]y");
  std::string b64 = base64_encode(pw);
  EXPECT_EQ(redact::scrub(b64).find(b64.substr(0, b64.size() - 2)), std::string::npos);
}

TEST(Redact, ShortValuesAreNotScrubbedEverywhere) {
  Secret s("ab");
  EXPECT_EQ(redact::scrub("about abba"), "about abba");
}

TEST(Redact, LongerSecretWinsOverItsPrefix) {
  Secret a("prefix-secret");
  Secret b("prefix-secret-longer");
  EXPECT_EQ(redact::scrub("prefix-secret-longer"), "[redacted]");
}

TEST(Redact, DsnUri) {
  EXPECT_EQ(redact::dsn("postgresql://app:s3cr%40t@db1:5432/app?sslmode=require"),
            "postgresql://app:[redacted]@db1:5432/app?sslmode=require");
  EXPECT_EQ(redact::dsn("postgresql://db1/app?user=x&password=qwerty99&sslmode=require"),
            "postgresql://db1/app?user=x&password=[redacted]&sslmode=require");
  EXPECT_EQ(redact::dsn("redis://:tok@cache:6379/0"), "redis://:[redacted]@cache:6379/0");
  EXPECT_EQ(redact::dsn("mysql://user@host/db"), "mysql://user@host/db");
  EXPECT_EQ(redact::dsn_password("postgresql://app:s3cr%40t@db1/app"), "s3cr@t");
}

TEST(Redact, DsnKeyValue) {
  EXPECT_EQ(redact::dsn("host=db1 password=abc123xyz dbname=app"),
            "host=db1 password=[redacted] dbname=app");
  EXPECT_EQ(redact::dsn("host=db1 password = 'it\\'s a pw' dbname=app"),
            "host=db1 password = [redacted] dbname=app");
  EXPECT_EQ(redact::dsn_password("host=db1 password='a b\\'c' x=1"), "a b'c");
  EXPECT_EQ(redact::dsn("host=db1 mypassword=notakey"), "host=db1 mypassword=notakey");
}

TEST(Redact, LogLinesAreScrubbed) {
  Secret s("log-line-secret-42");
  const std::string json = log::render_for_testing(
      log::Level::kInfo, "connecting with log-line-secret-42",
      {{"dsn", "postgresql://u:log-line-secret-42@h/d"}}, log::Format::kJson);
  EXPECT_EQ(json.find("log-line-secret-42"), std::string::npos) << json;
  EXPECT_NE(json.find("\"msg\":\"connecting with [redacted]\""), std::string::npos) << json;
  const std::string text =
      log::render_for_testing(log::Level::kWarn, "x log-line-secret-42", {}, log::Format::kText);
  EXPECT_EQ(text.find("log-line-secret-42"), std::string::npos) << text;
}

TEST(Log, JsonLineCarriesScope) {
  log::Scope scope("01RUNID", "pg-main", "backup");
  const std::string line =
      log::render_for_testing(log::Level::kError, "pg_dump exited 1",
                              {{"bytes", 42}, {"note", "a \"quoted\"\nline"}}, log::Format::kJson);
  EXPECT_NE(line.find("\"run_id\":\"01RUNID\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"target\":\"pg-main\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"op\":\"backup\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"bytes\":42"), std::string::npos) << line;
  EXPECT_NE(line.find("\"note\":\"a \\\"quoted\\\"\\nline\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"level\":\"error\""), std::string::npos) << line;
  EXPECT_EQ(log::current_run_id(), "01RUNID");
}

TEST(Log, ScopesNestAndRestore) {
  {
    log::Scope outer("RUN1", "t1", "op1");
    {
      log::Scope inner("", "t2", "");
      EXPECT_EQ(log::current_run_id(), "RUN1");
      const std::string line =
          log::render_for_testing(log::Level::kInfo, "m", {}, log::Format::kJson);
      EXPECT_NE(line.find("\"target\":\"t2\""), std::string::npos);
      EXPECT_NE(line.find("\"op\":\"op1\""), std::string::npos);
    }
    EXPECT_EQ(log::current_run_id(), "RUN1");
  }
  EXPECT_EQ(log::current_run_id(), "");
}

TEST(Log, ParseLevel) {
  log::Level l = log::Level::kInfo;
  EXPECT_TRUE(log::parse_level("debug", l));
  EXPECT_EQ(l, log::Level::kDebug);
  EXPECT_FALSE(log::parse_level("verbose", l));
}

TEST(Uri, ParsesAllParts) {
  auto u =
      parse_uri("postgresql://us%40er:p%40ss%3Aw%2Frd%25@[::1]:5433/my%20db?sslmode=require&x=");
  ASSERT_TRUE(u) << u.error().to_string();
  EXPECT_EQ(u->scheme, "postgresql");
  EXPECT_EQ(u->user, "us@er");
  EXPECT_EQ(u->password, "p@ss:w/rd%");
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 5433);
  EXPECT_EQ(u->path, "my db");
  EXPECT_EQ(u->query_value("sslmode"), "require");
  EXPECT_EQ(u->query_value("x"), "");
  EXPECT_FALSE(u->query_value("y"));
}

TEST(Uri, Errors) {
  EXPECT_FALSE(parse_uri("db1:5432"));
  EXPECT_FALSE(parse_uri("redis://h:99999"));
  EXPECT_FALSE(parse_uri("redis://h:12ab"));
  EXPECT_FALSE(parse_uri("redis://u:%zz@h"));
  auto e = parse_uri("redis://u:pw-not-in-error%zz@h");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message.find("pw-not-in-error"), std::string::npos);
}

TEST(Strings, Helpers) {
  EXPECT_EQ(trim("  a b \n"), "a b");
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(percent_encode("a b/c"), "a%20b%2Fc");
  EXPECT_EQ(percent_decode("a%20b%2fc"), "a b/c");
  EXPECT_FALSE(percent_decode("%2"));
  EXPECT_EQ(base64_encode("any carnal pleas"), "YW55IGNhcm5hbCBwbGVhcw==");
  EXPECT_EQ(base64_encode("ab"), "YWI=");
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  const std::vector<std::string> c = {"state", "targets", "notify"};
  EXPECT_EQ(did_you_mean("stat", c), "state");
  EXPECT_FALSE(did_you_mean("zzzzzzzz", c));
}

}  // namespace
}  // namespace dbops
