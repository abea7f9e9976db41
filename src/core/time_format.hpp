// Instants as text, always UTC.
#pragma once

#include <chrono>
#include <string>

namespace dbops {

// "2026-11-26T15:04:05Z", or "2026-11-26T15:04:05.123Z" with millis.
std::string format_utc(std::chrono::system_clock::time_point t, bool millis = false);

}  // namespace dbops
