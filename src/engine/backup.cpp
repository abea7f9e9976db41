#include "engine/backup.hpp"

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

}  // namespace dbops::engine
