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

std::string time_text(std::chrono::system_clock::time_point t) {
  return iso_time_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

}  // namespace dbops::cli
