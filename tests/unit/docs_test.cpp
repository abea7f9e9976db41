// The command reference and the config key reference in docs/ are generated
// from the declarations in src/; this fails when they fall out of date.
#include <gtest/gtest.h>

#include "cli/app.hpp"
#include "support/support.hpp"

namespace dbops {
namespace {

TEST(Docs, GeneratedReferenceIsCurrent) {
  const auto stale = cli::stale_doc_pages(testing::source_dir() / "docs");
  std::string names;
  for (const auto& s : stale) names += " docs/" + s;
  EXPECT_TRUE(stale.empty()) << "out of date:" << names
                             << "\nrun `make docs` and commit the result";
}

}  // namespace
}  // namespace dbops
