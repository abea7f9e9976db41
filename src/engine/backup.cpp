#include "engine/backup.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/atomic_file.hpp"

namespace dbops::engine {

std::string_view fingerprint_mode_name(FingerprintMode mode) {
  switch (mode) {
    case FingerprintMode::kOff:
      return "off";
    case FingerprintMode::kSampled:
      return "sampled";
    case FingerprintMode::kFull:
      return "full";
  }
  return "off";
}

std::optional<FingerprintMode> parse_fingerprint_mode(std::string_view text) {
  if (text == "off") return FingerprintMode::kOff;
  if (text == "sampled") return FingerprintMode::kSampled;
  if (text == "full") return FingerprintMode::kFull;
  return std::nullopt;
}

Status write_object_file(BackupInput& input, std::string_view name,
                         const std::filesystem::path& path, bool durable) {
  if (durable) {
    DBOPS_ASSIGN(AtomicFile file, AtomicFile::open(path, 0600));
    DBOPS_TRY(input.read(name, [&](std::string_view bytes) { return file.write(bytes); }));
    return file.commit();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return fail(ErrorCode::kIo, "create " + path.string() + ": " + std::strerror(errno));
  DBOPS_TRY(input.read(name, [&](std::string_view bytes) -> Status {
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) return fail(ErrorCode::kIo, "write " + path.string() + ": " + std::strerror(errno));
    return ok();
  }));
  out.close();
  if (!out) return fail(ErrorCode::kIo, "write " + path.string() + ": " + std::strerror(errno));
  return ok();
}

}  // namespace dbops::engine
