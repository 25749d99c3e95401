#pragma once
/// @file
/// @brief Small text forms shared by the config and scenario checkers:
/// durations as people write them ("30s", "12h", "7d") and JSON Pointer
/// tokens (RFC 6901), the keys error positions are looked up by.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace webpushd {

/// @brief Parses `250ms`, `30s`, `5m`, `12h`, `7d` (1–9 digits and a unit).
/// nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
/// @brief The inverse, in the largest whole unit: 86400000 ms → "1d", 90 s → "90s".
std::string format_duration(std::chrono::milliseconds d);

/// @brief RFC 3339 in UTC with milliseconds: "2026-11-27T08:00:00.000Z".
std::string format_rfc3339(std::chrono::system_clock::time_point t);

/// @brief One JSON Pointer reference token: `~` → `~0`, `/` → `~1`.
std::string json_pointer_token(std::string_view key);

}  // namespace webpushd
