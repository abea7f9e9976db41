// Rendezvous hashing of targets over agents.
#include "agent/ownership.hpp"

#include <gtest/gtest.h>

#include <map>

namespace dbops::agent {
namespace {

std::vector<std::string> targets(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back("pg-" + std::to_string(i));
  return out;
}

TEST(Ownership, EveryTargetHasExactlyOneOwnerAndTheShareIsFair) {
  const std::vector<std::string> members = {"db1:100", "db2:200", "db3:300"};
  const auto all = targets(600);
  std::map<std::string, int> count;
  for (const auto& m : members) {
    for (const auto& t : owned_targets(all, members, m)) ++count[t];
  }
  EXPECT_EQ(count.size(), all.size());
  for (const auto& [t, n] : count) EXPECT_EQ(n, 1) << t;
  for (const auto& m : members) {
    const auto share = owned_targets(all, members, m).size();
    EXPECT_GT(share, 150U) << m;
    EXPECT_LT(share, 250U) << m;
  }
}

TEST(Ownership, AMemberLeavingMovesOnlyItsTargets) {
  const std::vector<std::string> three = {"a:1", "b:2", "c:3"};
  const std::vector<std::string> two = {"a:1", "b:2"};
  for (const auto& t : targets(300)) {
    const std::string before = owner_of(t, three);
    const std::string after = owner_of(t, two);
    if (before != "c:3") {
      EXPECT_EQ(before, after) << t;
    }
    EXPECT_NE(after, "c:3");
  }
}

TEST(Ownership, AloneAnAgentOwnsEverythingAndTheWeightIsStable) {
  EXPECT_EQ(owned_targets(targets(5), {}, "solo:1").size(), 5U);
  EXPECT_EQ(owned_targets(targets(5), {"other:2"}, "solo:1").size() +
                owned_targets(targets(5), {"solo:1"}, "other:2").size(),
            5U);
  // A fixed value: the weight must not change between builds or releases,
  // or agents of two versions would disagree on owners.
  EXPECT_EQ(rendezvous_weight("a", "b"), 0xeb38c838c62d597eULL);
  EXPECT_NE(rendezvous_weight("a", "b"), rendezvous_weight("b", "a"));
  EXPECT_EQ(owner_of("x", {}), "");
}

}  // namespace
}  // namespace dbops::agent
