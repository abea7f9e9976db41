// JSON as text for output that may carry bytes from outside (server messages,
// file names): invalid UTF-8 is replaced instead of throwing. Include only
// from .cpp files that already use nlohmann/json.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace dbops {

template <typename Json>
std::string json_text(const Json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::detail::error_handler_t::replace);
}

}  // namespace dbops
