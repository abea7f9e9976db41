// Walking an RDB for its aux fields and per-database key counts.
#include "engine/redis/rdb.hpp"

#include <gtest/gtest.h>

namespace dbops::engine::redis {
namespace {

std::string str(std::string_view s) {
  return std::string(1, static_cast<char>(s.size())) + std::string(s);
}

std::string sample(bool with_stream) {
  std::string r = "REDIS0011";
  r += "\xFA" + str("redis-ver") + str("7.0.15");
  r += "\xFA" + str("repl-offset") + std::string("\xC1\x39\x30", 3);  // int16 12345
  r += "\xFA" + str("repl-id") + str("8f2c");
  r += std::string("\xFE\x00\xFB\x02\x01", 5);
  r += std::string("\xFC", 1) + std::string(8, '\x01') + '\x00' + str("a") + str("1");  // expiry
  r += '\x00' + str("b") + std::string("\xC0\x05", 2);  // int8 value
  if (with_stream) r += '\x15' + str("s") + str("garbage");
  r += std::string("\xFE\x03\xFB\x01\x00", 5);
  r += '\x04' + str("h") + '\x01' + str("f") + str("v");                // hash
  r += '\x05' + str("z") + '\x01' + str("m") + std::string(8, '\x00');  // zset2
  r += '\x12' + str("l") + '\x01' + '\x02' + str("listpack-bytes");     // quicklist 2
  r += '\x00' + str("lzf") + std::string("\xC3\x03\x05", 3) + "abc";    // LZF string
  r += '\xFF' + std::string(8, '\x00');
  return r;
}

TEST(Rdb, ReadsAuxFieldsAndKeyCountsOfEveryDatabase) {
  const auto s = summarize_rdb(sample(false));
  EXPECT_TRUE(s.complete) << s.problem;
  EXPECT_EQ(s.version, 11);
  EXPECT_EQ(s.aux.at("redis-ver"), "7.0.15");
  EXPECT_EQ(s.aux.at("repl-offset"), "12345");
  EXPECT_EQ(s.aux.at("repl-id"), "8f2c");
  EXPECT_EQ(s.keys, (std::map<int, std::int64_t>{{0, 2}, {3, 1}}));
}

TEST(Rdb, AStreamEndsTheWalkWithTheDatabasesSoFar) {
  const auto s = summarize_rdb(sample(true));
  EXPECT_FALSE(s.complete);
  EXPECT_NE(s.problem.find("value type 21"), std::string::npos) << s.problem;
  EXPECT_EQ(s.keys, (std::map<int, std::int64_t>{{0, 2}}));
}

TEST(Rdb, APrefixCountsWhatItReaches) {
  const std::string whole = sample(false);
  const auto s = summarize_rdb(std::string_view(whole).substr(0, whole.size() - 20));
  EXPECT_FALSE(s.complete);
  EXPECT_EQ(s.keys.at(0), 2);
  EXPECT_EQ(s.keys.at(3), 1);
}

TEST(Rdb, RejectsWhatIsNotAnRdb) {
  EXPECT_EQ(summarize_rdb("hello").version, 0);
  EXPECT_FALSE(summarize_rdb("hello").problem.empty());
  EXPECT_EQ(summarize_rdb("").version, 0);
}

}  // namespace
}  // namespace dbops::engine::redis
