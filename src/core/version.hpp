// What this dbops binary is: its version and the commit it was built from.
#pragma once

#include <string_view>

namespace dbops {

std::string_view version();     // "0.1.0"
std::string_view git_commit();  // short hash, or "unknown" outside a checkout

}  // namespace dbops
