#include "core/version.hpp"

// Set for this file only (src/CMakeLists.txt), so that a new commit rebuilds
// one file rather than every file of the layer.
#ifndef DBOPS_VERSION
#define DBOPS_VERSION "0.0.0"
#endif
#ifndef DBOPS_GIT_COMMIT
#define DBOPS_GIT_COMMIT "unknown"
#endif

namespace dbops {

std::string_view version() {
  return DBOPS_VERSION;
}
std::string_view git_commit() {
  return DBOPS_GIT_COMMIT;
}

}  // namespace dbops
