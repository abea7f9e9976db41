#include "core/time_format.hpp"

#include <gtest/gtest.h>

namespace dbops {
namespace {

TEST(TimeFormat, Utc) {
  const auto t =
      std::chrono::system_clock::time_point{std::chrono::milliseconds{1'790'000'000'042}};
  EXPECT_EQ(format_utc(t), "2026-09-21T14:13:20Z");
  EXPECT_EQ(format_utc(t, true), "2026-09-21T14:13:20.042Z");
  EXPECT_EQ(format_utc(std::chrono::system_clock::time_point{}), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace dbops
