#include "repo/storage.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "repo/internal.hpp"

namespace dbops::repo {
namespace {

constexpr std::size_t kMaxKeyLength = 1024;
constexpr std::size_t kMaxSegmentLength = 255;

// Keys are shown in messages; keep what is invalid readable.
std::string quoted(std::string_view key) {
  std::string out = "\"";
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

Status validate_key(std::string_view key) {
  auto invalid = [&](std::string_view why) {
    return fail(ErrorCode::kInvalidArgument,
                "invalid object key " + quoted(key) + ": " + std::string(why));
  };
  if (key.empty()) return invalid("empty");
  if (key.size() > kMaxKeyLength) return invalid("longer than 1024 bytes");
  if (key.front() == '/') return invalid("starts with '/'");
  std::string_view rest = key;
  while (true) {
    std::size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    if (segment.empty()) return invalid("empty path segment");
    if (segment == "." || segment == "..") return invalid("'.' or '..' segment");
    if (segment.size() > kMaxSegmentLength) return invalid("segment longer than 255 bytes");
    for (char c : segment) {
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u > 0x7e) return invalid("not printable ASCII");
    }
    if (internal::is_temp_name(segment)) return invalid("looks like a temporary file name");
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return ok();
}

Status Storage::put_bytes(std::string_view key, std::string_view data) {
  DBOPS_ASSIGN(auto writer, put(key));
  if (auto written = writer->write(data); !written) {
    writer->abandon();
    return written;
  }
  return writer->commit();
}

Result<std::string> Storage::get_bytes(std::string_view key, std::size_t limit) {
  DBOPS_ASSIGN(auto reader, get(key));
  if (reader->size() > limit) {
    return fail(ErrorCode::kInvalidArgument, "object " + std::string(key) + " in " + describe() +
                                                 " is " + std::to_string(reader->size()) +
                                                 " bytes, more than the " + std::to_string(limit) +
                                                 " expected");
  }
  std::string out;
  out.resize(static_cast<std::size_t>(reader->size()));
  std::size_t filled = 0;
  while (true) {
    if (filled == out.size()) {
      // The object may have grown since it was opened.
      if (out.size() >= limit) {
        char probe = 0;
        DBOPS_ASSIGN(std::size_t n, reader->read(&probe, 1));
        if (n == 0) break;
        return fail(ErrorCode::kInvalidArgument, "object " + std::string(key) + " in " +
                                                     describe() + " is more than the " +
                                                     std::to_string(limit) + " bytes expected");
      }
      out.resize(std::min(limit, std::max<std::size_t>(out.size() * 2, 4096)));
    }
    DBOPS_ASSIGN(std::size_t n, reader->read(out.data() + filled, out.size() - filled));
    if (n == 0) break;
    filled += n;
  }
  out.resize(filled);
  return out;
}

Status Storage::remove_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.back() != '/') {
    return fail(ErrorCode::kInvalidArgument,
                "remove_prefix: prefix \"" + std::string(prefix) + "\" must end with '/'");
  }
  DBOPS_ASSIGN(auto objects, list(prefix));
  for (const auto& object : objects) DBOPS_TRY(remove(object.key));
  return ok();
}

}  // namespace dbops::repo
