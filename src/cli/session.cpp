#include "cli/session.hpp"

#include <cstdio>

namespace dbops::cli {

int report(const Error& error) {
  std::string text = redact::scrub(error.to_string());
  std::fprintf(stderr, "dbops: %s\n", text.c_str());
  return exit_code_for(error.code);
}

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace dbops::cli
