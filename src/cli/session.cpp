#include "cli/session.hpp"

#include <cstdio>

namespace dbops::cli {

int run_exit_code(const store::RunRecord& run) {
  switch (run.state) {
    case store::RunState::kSucceeded:
      return 0;
    case store::RunState::kCheckFailed:
      return 1;
    default:
      return 3;
  }
}

std::string duration_text(const store::RunRecord& r) {
  if (!r.finished_at) return "-";
  const double s = std::chrono::duration<double>(*r.finished_at - r.started_at).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.3fs" : "%.1fs", s);
  return buf;
}

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
