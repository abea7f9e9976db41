// Assertions on health-probe samples shared by the engine tests.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <string_view>

#include "engine/probe.hpp"

namespace dbops::testing {

// The metric's value; a test failure (naming why the engine left it out, when
// it says) and NaN when the sample lacks it.
inline double metric(const engine::ProbeSample& s, std::string_view name) {
  const auto* m = s.find_metric(name);
  const auto why = s.unavailable.find(std::string(name));
  EXPECT_NE(m, nullptr) << "metric " << name << " missing"
                        << (why != s.unavailable.end() ? ": " + why->second : "");
  return m ? m->value : std::nan("");
}

}  // namespace dbops::testing
