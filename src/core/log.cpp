#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "core/secret.hpp"
#include "core/time_format.hpp"

namespace dbops::log {
namespace {

struct ThreadContext {
  std::string run_id, target, op;
};
thread_local ThreadContext t_context;

std::atomic<Level> g_level{Level::kInfo};
std::atomic<Format> g_format{Format::kJson};
std::atomic<bool> g_color{false};

std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("dbops", sink);
    l->set_pattern("%v");
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return instance;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// The full instant in JSON lines; the time of day in the readable form.
std::string timestamp(bool with_date) {
  const std::string full = format_utc(std::chrono::system_clock::now(), /*millis=*/true);
  return with_date ? full : full.substr(11, 12);
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string render(Level level, std::string_view msg, std::initializer_list<Field> fields,
                   Format format, bool color) {
  std::string line;
  if (format == Format::kJson) {
    line += "{\"ts\":";
    append_json_string(line, timestamp(true));
    line += ",\"level\":";
    append_json_string(line, level_name(level));
    line += ",\"msg\":";
    append_json_string(line, msg);
    const auto add = [&](std::string_view key, std::string_view value) {
      if (value.empty()) return;
      line += ',';
      append_json_string(line, key);
      line += ':';
      append_json_string(line, value);
    };
    add("run_id", t_context.run_id);
    add("target", t_context.target);
    add("op", t_context.op);
    for (const auto& f : fields) {
      line += ',';
      append_json_string(line, f.key);
      line += ':';
      if (f.raw) {
        line += f.value;
      } else {
        append_json_string(line, f.value);
      }
    }
    line += '}';
  } else {
    static constexpr std::string_view kColors[] = {"\x1b[90m", "\x1b[36m", "\x1b[32m",
                                                   "\x1b[33m", "\x1b[31m", ""};
    line += timestamp(false);
    line += ' ';
    if (color) line += kColors[static_cast<int>(level)];
    std::string name(level_name(level));
    name.resize(5, ' ');
    line += name;
    if (color) line += "\x1b[0m";
    line += ' ';
    if (!t_context.target.empty()) {
      line += t_context.target;
      line += ": ";
    }
    if (!t_context.op.empty()) {
      line += t_context.op;
      line += ": ";
    }
    line += msg;
    for (const auto& f : fields) {
      line += ' ';
      line += f.key;
      line += '=';
      const bool quote = !f.raw && (f.value.find(' ') != std::string::npos || f.value.empty());
      if (quote) line += '"';
      line += f.value;
      if (quote) line += '"';
    }
    if (!t_context.run_id.empty()) {
      line += " run_id=";
      line += t_context.run_id;
    }
  }
  return redact::scrub(line);
}

}  // namespace

Field::Field(std::string_view k, double v) : key(k), raw(true) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  value = buf;
}

bool parse_level(std::string_view text, Level& out) {
  static constexpr std::pair<std::string_view, Level> kLevels[] = {
      {"trace", Level::kTrace}, {"debug", Level::kDebug},  {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"warning", Level::kWarn}, {"error", Level::kError},
      {"off", Level::kOff}};
  for (const auto& [name, level] : kLevels) {
    if (text == name) {
      out = level;
      return true;
    }
  }
  return false;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "info";
}

void init(const Options& options) {
  g_level = options.level;
  g_format = options.format;
  g_color = options.color;
  logger();
}

Level current_level() {
  return g_level.load();
}

bool enabled(Level level) {
  return level != Level::kOff && level >= g_level.load();
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  const std::string line = render(level, msg, fields, g_format.load(), g_color.load());
  logger()->log(to_spdlog(level), "{}", line);
}

Scope::Scope(std::string_view run_id, std::string_view target, std::string_view op)
    : saved_run_id_(t_context.run_id), saved_target_(t_context.target), saved_op_(t_context.op) {
  if (!run_id.empty()) t_context.run_id = run_id;
  if (!target.empty()) t_context.target = target;
  if (!op.empty()) t_context.op = op;
}

Scope::~Scope() {
  t_context.run_id = std::move(saved_run_id_);
  t_context.target = std::move(saved_target_);
  t_context.op = std::move(saved_op_);
}

std::string current_run_id() {
  return t_context.run_id;
}

std::string render_for_testing(Level level, std::string_view msg,
                               std::initializer_list<Field> fields, Format format) {
  return render(level, msg, fields, format, false);
}

}  // namespace dbops::log
