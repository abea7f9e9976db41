// Structured logging.
//
// One JSON object per line on stderr (ts, level, msg, run_id, target, op and
// fields), or a readable line when stderr is a terminal. Every line passes
// through the secret scrubber before it is written, so a secret that slipped
// into a message or a field is still redacted. The run id, target and
// operation come from the innermost log::Scope on the calling thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace dbops::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Parses "trace|debug|info|warn|error|off"; returns false when unknown.
bool parse_level(std::string_view text, Level& out);
std::string_view level_name(Level level);

enum class Format { kJson, kText };

struct Options {
  Level level = Level::kInfo;
  // kText is the readable form; the CLI picks it when stderr is a terminal.
  Format format = Format::kJson;
  bool color = false;
};

// Configures the process logger; may be called again to change settings.
void init(const Options& options);
Level current_level();
bool enabled(Level level);

// A key and a value for the structured part of a line.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, std::int64_t v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, int v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, std::uint64_t v) : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, double v);
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), raw(true) {}

  std::string key;
  std::string value;
  bool raw = false;  // a JSON number or boolean, written unquoted
};

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void trace(std::string_view msg, std::initializer_list<Field> f = {}) {
  write(Level::kTrace, msg, f);
}
inline void debug(std::string_view msg, std::initializer_list<Field> f = {}) {
  write(Level::kDebug, msg, f);
}
inline void info(std::string_view msg, std::initializer_list<Field> f = {}) {
  write(Level::kInfo, msg, f);
}
inline void warn(std::string_view msg, std::initializer_list<Field> f = {}) {
  write(Level::kWarn, msg, f);
}
inline void error(std::string_view msg, std::initializer_list<Field> f = {}) {
  write(Level::kError, msg, f);
}

// Sets the run id, target and operation for log lines on this thread until
// it is destroyed. Empty arguments inherit the enclosing scope's values.
class Scope {
 public:
  Scope(std::string_view run_id, std::string_view target, std::string_view op);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  std::string saved_run_id_, saved_target_, saved_op_;
};

std::string current_run_id();

// Renders a line as write() would, without writing it (tests).
std::string render_for_testing(Level level, std::string_view msg,
                               std::initializer_list<Field> fields, Format format);

}  // namespace dbops::log
