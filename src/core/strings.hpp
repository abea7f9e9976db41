// Small string helpers used across layers.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dbops {

std::string_view trim(std::string_view text);
std::vector<std::string> split(std::string_view text, char sep);
std::string to_lower(std::string_view text);
std::string join(std::span<const std::string> parts, std::string_view sep);

// An SQL identifier in `quote` characters, any inside doubled: "a""b" for
// PostgreSQL and SQLite, `a``b` for MariaDB.
std::string quote_identifier(std::string_view name, char quote = '"');

// RFC 3986: unreserved characters stay, everything else becomes %XX.
std::string percent_encode(std::string_view text);
// Decodes %XX sequences; returns nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text);
// Standard base64 with padding.
std::string base64_encode(std::string_view data);

// Levenshtein distance.
std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within a small distance of word, if any.
std::optional<std::string> did_you_mean(std::string_view word,
                                        std::span<const std::string> candidates);

}  // namespace dbops
