#include "core/fault.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>

namespace dbops {
namespace {

using namespace std::chrono_literals;

class FaultTest : public ::testing::Test {
 protected:
  // Each death test re-runs in a fresh process, so the environment it sets is
  // what that process parses.
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
  void TearDown() override { fault::set_for_testing(""); }
};

TEST_F(FaultTest, UnsetIsANoOp) {
  fault::set_for_testing("");
  fault::point("backup.after_upload");
  fault::point("");
  SUCCEED();
}

TEST_F(FaultTest, OtherPointsAreNotAffected) {
  fault::set_for_testing("backup.after_upload");
  fault::point("backup.before_upload");
  fault::point("backup.after_upload_done");
  fault::point("backup");
  SUCCEED();
}

TEST_F(FaultTest, KillsTheProcessWithSigkill) {
  EXPECT_EXIT(
      {
        fault::set_for_testing("backup.after_upload");
        fault::point("backup.before_upload");
        fault::point("backup.after_upload");
      },
      ::testing::KilledBySignal(SIGKILL),
      "fault point backup.after_upload reached: killing process");
}

TEST_F(FaultTest, ExplicitKillAction) {
  EXPECT_EXIT(
      {
        fault::set_for_testing("restore.swap=kill");
        fault::point("restore.swap");
      },
      ::testing::KilledBySignal(SIGKILL), "fault point restore.swap reached: killing process");
}

TEST_F(FaultTest, ExitWithCode) {
  EXPECT_EXIT(
      {
        fault::set_for_testing("restore.after_swap=exit:3");
        fault::point("restore.after_swap");
      },
      ::testing::ExitedWithCode(3), "fault point restore.after_swap reached: exiting with code 3");
}

TEST_F(FaultTest, CommaSeparatedListWithSpaces) {
  EXPECT_EXIT(
      {
        fault::set_for_testing(" a.one=sleep:1 , b.two=exit:7,c.three ");
        fault::point("a.one");  // sleeps, then continues
        fault::point("b.two");
      },
      ::testing::ExitedWithCode(7), "fault point a.one reached: sleeping 1 ms\n.*b.two");
  EXPECT_EXIT(
      {
        fault::set_for_testing(" a.one=sleep:1 , b.two=exit:7,c.three ");
        fault::point("c.three");
      },
      ::testing::KilledBySignal(SIGKILL), "fault point c.three reached");
}

TEST_F(FaultTest, FirstEntryForANameWins) {
  EXPECT_EXIT(
      {
        fault::set_for_testing("x.y=exit:4,x.y=exit:5");
        fault::point("x.y");
      },
      ::testing::ExitedWithCode(4), "");
}

TEST_F(FaultTest, ReadsDbopsFaultFromTheEnvironment) {
  EXPECT_EXIT(
      {
        ::setenv("DBOPS_FAULT", "backup.after_manifest=exit:9", 1);
        fault::point("backup.after_manifest");
      },
      ::testing::ExitedWithCode(9), "fault point backup.after_manifest reached");
}

TEST_F(FaultTest, SleepContinues) {
  fault::set_for_testing("window.open=sleep:50");
  auto start = std::chrono::steady_clock::now();
  fault::point("window.open");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
}

TEST_F(FaultTest, MalformedEntriesAreIgnored) {
  ::testing::internal::CaptureStderr();
  fault::set_for_testing("a=bogus,b=exit:x,c=exit:300,d=sleep:,=exit:1");
  std::string warnings = ::testing::internal::GetCapturedStderr();
  for (const char* name : {"a", "b", "c", "d", ""}) fault::point(name);
  EXPECT_NE(warnings.find("DBOPS_FAULT: ignoring malformed entry \"a=bogus\""), std::string::npos)
      << warnings;
  EXPECT_NE(warnings.find("\"c=exit:300\""), std::string::npos) << warnings;
}

TEST_F(FaultTest, ResetDisablesAgain) {
  fault::set_for_testing("p.q");
  fault::set_for_testing("");
  fault::point("p.q");
  SUCCEED();
}

}  // namespace
}  // namespace dbops
