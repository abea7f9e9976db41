#include "core/result.hpp"

#include <cstring>

namespace dbops {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kConfig:
      return "config";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kCheckFailed:
      return "check_failed";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kCancelled:
      return "cancelled";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "internal";
}

int exit_code_for(ErrorCode code) {
  switch (code) {
    case ErrorCode::kCheckFailed:
    case ErrorCode::kCorrupt:
      return 1;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kConfig:
    case ErrorCode::kNotFound:
    case ErrorCode::kUnsupported:
      return 2;
    default:
      return 3;
  }
}

Error& Error::with_context(std::string element) & {
  context.insert(context.begin(), std::move(element));
  return *this;
}
Error&& Error::with_context(std::string element) && {
  context.insert(context.begin(), std::move(element));
  return std::move(*this);
}
Error& Error::with_hint(std::string text) & {
  hint = std::move(text);
  return *this;
}
Error&& Error::with_hint(std::string text) && {
  hint = std::move(text);
  return std::move(*this);
}

std::string Error::to_string() const {
  std::string out;
  for (const auto& c : context) {
    out += c;
    out += ": ";
  }
  out += message;
  if (!hint.empty()) {
    out += "\nHINT: ";
    out += hint;
  }
  return out;
}

Error errno_error(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return make_error(ErrorCode::kIo, std::move(msg));
}

}  // namespace dbops
