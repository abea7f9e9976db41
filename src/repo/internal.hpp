// Helpers shared by the repo layer's .cpp files; not part of its interface.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dbops::repo::internal {

// `digits` lowercase hex digits from the system's random source.
std::string random_hex(std::size_t digits);

// True for the name of a temporary file: "<name>.tmp.<digits>.<hex>".
bool is_temp_name(std::string_view segment);

// RFC 3339 in UTC with milliseconds: "2026-11-26T10:15:22.123Z".
std::string format_time(std::chrono::system_clock::time_point t);
// Parses RFC 3339 ("2026-11-26T10:15:22Z", fractions, "+02:00" offsets).
std::optional<std::chrono::system_clock::time_point> parse_time(std::string_view text);

// Lowercase hex of bytes.
std::string to_hex(const unsigned char* data, std::size_t size);
bool is_hex(std::string_view text, std::size_t digits);

}  // namespace dbops::repo::internal
